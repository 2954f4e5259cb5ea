# timm_ref.py: shared helpers for bench/parity_timm.py and bench/compare_pytorch.py (not a script).
#
# Builds the timm network that computes the same function as a resnest-graph (models/*.json), loads a
# weight dict into it with strict checks, and reports errors as UserError (one line, exit status 2 in the
# scripts). torch and timm are imported inside the functions, so a script's --help works without them.
#
# The construction follows tests/fixtures/make_fixtures.py (build_timm): ResNeSt50 is timm's registered
# resnest50d; any other configuration is timm's ResNet with ResNestBottleneck, built from the graph's
# "config" (layers, radix, cardinality, bottleneck_width, stem_width, planes, avd_first, num_classes).
# For a graph with config semantics "paddle" (PaddleClas pooling), the timm pools are switched to the
# graph's semantics, as make_fixtures.py's set_timm_avd_exclude_pad does: the avd pools exclude padding,
# and the avg_down shortcut pools use the graph's ceil_mode (the same as timm's at even sizes). The
# fixtures check this switched timm network against PaddleClas itself (float64, within 1e-4).
import argparse
import datetime
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WEIGHTS_TOOLS = os.path.join(ROOT, "weights_tools")


class UserError(Exception):
    """A problem the user can fix (a flag, a file, a missing package): reported as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: 'PROG: error: MESSAGE (see --help)', exit status 2."""

    def error(self, message):
        fail_usage(self.prog, "%s (see --help)" % message)


def fail_usage(prog, message):
    """Print one error line and exit with status 2."""
    sys.stderr.write("%s: error: %s\n" % (prog, message))
    sys.exit(2)


def import_numpy():
    try:
        import numpy
    except ImportError:
        raise UserError("numpy is not installed for %s; run with a Python that has numpy, torch and timm "
                        "(e.g. /work/fixenv/bin/python)" % sys.executable)
    return numpy


def import_torch_timm():
    """(torch, timm), or UserError naming what is missing."""
    try:
        import torch
    except ImportError:
        raise UserError("torch is not installed for %s; run with a Python that has torch and timm "
                        "(e.g. /work/fixenv/bin/python)" % sys.executable)
    try:
        import timm
    except ImportError:
        raise UserError("timm is not installed for %s; pip install timm into that environment" % sys.executable)
    return torch, timm


def safetensors_module():
    """The repository's numpy-only safetensors reader (weights_tools/safetensors_np.py)."""
    if WEIGHTS_TOOLS not in sys.path:
        sys.path.insert(0, WEIGHTS_TOOLS)
    import safetensors_np
    return safetensors_np


def load_graph(path, flag="--models"):
    """The graph JSON as a dict; UserError naming the file when it cannot be used."""
    try:
        with open(path) as f:
            graph = json.load(f)
    except OSError as e:
        raise UserError("%s %s: cannot read the graph (%s); give a models/*.json file"
                        % (flag, path, e.strerror or e))
    except ValueError as e:
        raise UserError("%s %s: not valid JSON (%s); give a models/*.json file" % (flag, path, e))
    if not isinstance(graph, dict) or graph.get("format") != "resnest-graph":
        raise UserError("%s %s: not a resnest-graph file (no \"format\": \"resnest-graph\")" % (flag, path))
    config = graph.get("config", {})
    needed = ("layers", "radix", "cardinality", "bottleneck_width", "stem_width", "planes", "avd_first",
              "num_classes", "semantics")
    missing = [k for k in needed if k not in config]
    if missing:
        raise UserError("%s %s: the graph's config lacks %s; regenerate it with models/make_graph.py"
                        % (flag, path, ", ".join(missing)))
    if not (config.get("deep_stem", True) and config.get("avg_down", True) and config.get("avd", True)):
        raise UserError("%s %s: only deep_stem, avg_down, avd ResNeSt graphs have a timm counterpart" % (flag, path))
    return graph


def graph_name(graph, path):
    return graph.get("name") or os.path.splitext(os.path.basename(path))[0]


def input_chw(graph):
    """(C, H, W) of the graph's input."""
    shape = graph["input"]["shape"]
    return int(shape[1]), int(shape[2]), int(shape[3])


def is_resnest50d(config):
    return (list(config["planes"]) == [64, 128, 256, 512] and list(config["layers"]) == [3, 4, 6, 3]
            and config["stem_width"] == 32 and config["radix"] == 2 and config["cardinality"] == 1
            and config["bottleneck_width"] == 64 and not config["avd_first"])


def build_timm(graph):
    """(model, description): timm's network for the graph, float32, on the CPU, random init."""
    _, timm = import_torch_timm()
    from timm.models.resnest import ResNestBottleneck
    from timm.models.resnet import ResNet
    c = graph["config"]
    if is_resnest50d(c):
        model = timm.create_model("resnest50d", pretrained=False, num_classes=c["num_classes"])
        how = "timm resnest50d"
    else:
        model = ResNet(block=ResNestBottleneck, layers=list(c["layers"]), channels=tuple(c["planes"]),
                       stem_type="deep", stem_width=c["stem_width"], avg_down=True, base_width=c["bottleneck_width"],
                       cardinality=c["cardinality"], num_classes=c["num_classes"],
                       block_args=dict(radix=c["radix"], avd=True, avd_first=c["avd_first"]))
        how = "timm ResNet(ResNestBottleneck)"
    if c["semantics"] == "paddle":
        use_graph_pool_semantics(model, graph)
        how += ", pools switched to PaddleClas semantics"
    check_structure(model, graph)
    return model.eval(), how


def pool_nodes(graph):
    """{node name: attrs} of the avd pools and the avg_down shortcut pools."""
    out = {}
    for n in graph["nodes"]:
        name = n["name"]
        if n["op"] == "avg_pool2d" and name.endswith((".avd_first", ".avd_last", ".downsample.0")):
            out[name] = n.get("attrs", {})
    return out


def use_graph_pool_semantics(model, graph):
    """PaddleClas semantics in timm: avd pools exclude padding, shortcut pools take the graph's ceil_mode."""
    modules = dict(model.named_modules())
    for name, attrs in pool_nodes(graph).items():
        pool = modules.get(name)
        if pool is None:
            continue  # check_structure reports it
        pool.count_include_pad = bool(attrs.get("count_include_pad", True))
        pool.ceil_mode = bool(attrs.get("ceil_mode", False))


def pair(v):
    """An int or [h, w] pair attribute as a (h, w) tuple."""
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def check_structure(model, graph):
    """The timm module tree matches the graph: inter channels, radix, groups, and every pool's semantics."""
    import torch.nn as nn
    modules = dict(model.named_modules())
    where = graph_name(graph, "graph")
    for n in graph["nodes"]:
        if n["op"] != "split_attention":
            continue
        a = n["attrs"]
        sa = modules.get(n["name"][: -len(".attn")])
        if sa is None or sa.fc1.out_channels != a["inter_channels"] or sa.radix != a["radix"] \
                or sa.fc1.groups != a.get("cardinality", 1):
            raise UserError("%s: timm's split attention at %s differs from the graph" % (where, n["name"]))
    graph_pools = pool_nodes(graph)
    timm_pools = {k for k, m in modules.items()
                  if k.endswith((".avd_first", ".avd_last", ".downsample.0")) and isinstance(m, nn.AvgPool2d)}
    if set(graph_pools) != timm_pools:
        raise UserError("%s: timm and the graph disagree on the pools %s"
                        % (where, sorted(timm_pools ^ set(graph_pools))[:4]))
    for name, a in graph_pools.items():
        p = modules[name]
        same = (pair(p.kernel_size) == pair(a["kernel"]) and pair(p.stride) == pair(a.get("stride", a["kernel"]))
                and pair(p.padding) == pair(a.get("pad", 0))
                and p.count_include_pad == a.get("count_include_pad", True)
                and p.ceil_mode == a.get("ceil_mode", False))
        if not same:
            raise UserError("%s: timm pool %s (%r) differs from the graph's %r" % (where, name, p, a))


def load_weights(model, weights):
    """Load a {name: numpy array} dict (official/timm state_dict names) into the model, strictly."""
    torch, _ = import_torch_timm()
    import numpy as np
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items()}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise UserError("the weights do not fit timm's network: missing %s, unexpected %s"
                        % (missing[:5], list(result.unexpected_keys)[:5]))
    return model.eval()


def set_tf32(torch, enabled):
    """TF32 for cuBLAS matmuls and cuDNN convolutions; returns the flags as read back."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    return {"cuda.matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32)}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def device_name(torch, device):
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return "cpu"


def versions(torch, timm, np):
    out = {"python": sys.version.split()[0], "torch": torch.__version__, "timm": timm.__version__,
           "numpy": np.__version__, "cuda": torch.version.cuda}
    try:
        out["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # no cuDNN in this torch build
        out["cudnn"] = None
    return out
