#!/usr/bin/env python3
"""convert.py: converts ResNeSt weights you already have into the runtime's safetensors file, numpy only.

  python3 weights_tools/convert.py SRC --model MODEL.json --out W.safetensors [--dtype f32|f16] [--force]

SRC is recognised by its content, not its extension:
  PaddleClas .pdparams   ResNeSt50_pretrained.pdparams, ResNeSt50_fast_1s1x64d_pretrained.pdparams
                         (paddle.save pickles; names mapped per weights_tools/name_map.py, the classifier
                         transposed, fc1 bias written as zeros, a missing fc2 bias as zeros with a warning)
  torch checkpoint       the official ResNeSt .pth files and timm's pytorch_model.bin, zip or legacy format
                         (read without torch; only tensors are rebuilt; num_batches_tracked is ignored; a
                         state dict under 'state_dict' or 'model' is found)
  safetensors            timm's model.safetensors (names pass through)
Neither paddle nor torch is needed or imported, and nothing a file's pickle asks for is executed: only an
allow-list of tensor-rebuilding functions is honoured (weights_tools/restricted_pickle.py).

The result is checked against MODEL.json: every tensor the graph needs present, with its shape, floating
point and finite; source tensors the graph does not use are listed. PaddleClas weights need a graph in
PaddleClas pooling semantics (models/resnest50.json, models/resnest50_fast_1s1x64d.json); official and
timm weights need the torch ones (models/resnest50d_torch.json, models/resnest50_fast_1s1x64d_torch.json);
a mismatch is refused unless --force. The output's __metadata__ records the source's SHA-256, its format,
the semantics and this converter's version.

--dtype: f32 or f16 for every tensor; by default F32 and F16 tensors keep their type and others become F32.
Exit status: 0 done, 1 a file is bad or does not fit the graph, 2 bad usage (including a semantics mismatch).
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import graph_weights  # noqa: E402
import name_map  # noqa: E402
import safetensors_np  # noqa: E402
import weight_sources  # noqa: E402
from source_error import SourceError  # noqa: E402

VERSION = "1"
PROG = "convert.py"

SEMANTICS_NAMES = {"paddle": "PaddleClas pooling semantics (avd pool leaves padding out of the divisor)",
                   "torch": "official/timm pooling semantics (avd pool divides by 9)"}
SOURCE_NAMES = {"paddle": "PaddleClas", "torch": "official ResNeSt / timm"}


class UsageError(Exception):
    """Bad flags, or a graph whose pooling semantics do not fit the weights: exit status 2."""


class GraphError(Exception):
    """A problem with a file other than the source (the graph, the output); the message names it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s (see --help)" % message)


def parse_args(argv):
    p = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", metavar="SRC", help="weights to convert (.pdparams, .pth/.pt/.bin, .safetensors)")
    p.add_argument("--model", required=True, help="resnest-graph JSON the weights are for (models/*.json)")
    p.add_argument("--out", required=True, help="output .safetensors")
    p.add_argument("--dtype", choices=["f32", "f16"], help="output dtype (default: keep F32/F16, others F32)")
    p.add_argument("--force", action="store_true", help="convert even if the graph's pooling semantics do not "
                   "match the weights' (the logits will be slightly off)")
    a = p.parse_args(argv)
    def same_file(x, y):  # by any path (a symlink too); a file not there yet is no other file
        try:
            return os.path.samefile(x, y)
        except OSError:
            return os.path.abspath(x) == os.path.abspath(y)
    if same_file(a.out, a.src):
        raise UsageError("--out must not be the source file")
    if same_file(a.out, a.model):
        raise UsageError("--out must not be the --model graph file")
    return a


# ---------------------------------------------------------------------------------------------- semantics

def suggested_graph(graph, semantics):
    """A graph in `semantics` for the network `graph` describes."""
    c = graph.get("config", {})
    full = c.get("layers") == [3, 4, 6, 3] and c.get("planes") == [64, 128, 256, 512] \
        and c.get("stem_width") == 32 and c.get("cardinality") == 1 and c.get("bottleneck_width") == 64
    fast = c.get("radix") == 1 and c.get("avd_first")
    if full and (fast or (c.get("radix") == 2 and not c.get("avd_first"))):
        if semantics == "paddle":
            return "models/resnest50_fast_1s1x64d.json" if fast else "models/resnest50.json"
        return "models/resnest50_fast_1s1x64d_torch.json" if fast else "models/resnest50d_torch.json"
    return "a graph written by models/make_graph.py --semantics %s" % semantics


def check_semantics(source, graph, model_path, force, warnings):
    """Refuses (UsageError) weights whose pooling semantics differ from the graph's, unless forced."""
    graph_sem = graph.get("config", {}).get("semantics")
    if source.semantics is None or graph_sem is None or source.semantics == graph_sem:
        return False
    message = ("%s holds %s weights, which need %s; %s is in %s: use %s"
               % (source.path, SOURCE_NAMES[source.semantics], SEMANTICS_NAMES[source.semantics], model_path,
                  SEMANTICS_NAMES.get(graph_sem, graph_sem), suggested_graph(graph, source.semantics)))
    if not force:
        raise UsageError(message + ", or pass --force")
    warnings.append(message + "; converting anyway (--force): logits will differ slightly from the source's")
    return True


# ---------------------------------------------------------------------------------------------- mapping

def to_official_names(source):
    """OrderedDict official name -> (array, source name), plus the source names outside the scheme."""
    mapped, unexpected = collections.OrderedDict(), []
    for name, arr in source.tensors.items():
        if source.naming == "paddle":
            m = name_map.paddle_to_official(name)
            if m is None:
                unexpected.append(name)
                continue
            official, transpose = m
            if transpose:
                if arr.ndim != 2:
                    raise SourceError("tensor '%s' has shape %s; a PaddleClas classifier weight is 2-D [in, out]"
                                      % (name, list(arr.shape)))
                arr = np.ascontiguousarray(arr.T)
        else:
            if name.endswith("num_batches_tracked"):
                continue
            official = name
        if official in mapped:
            raise SourceError("tensors '%s' and '%s' both map to '%s'" % (mapped[official][1], name, official))
        mapped[official] = (arr, name)
    return mapped, unexpected


def describe_spec(spec, source):
    where = "node '%s', %s" % (spec.node, spec.role)
    if source.naming == "paddle":
        m = name_map.official_to_paddle(spec.name)
        if m is not None:
            where += "; PaddleClas name '%s'" % m[0]
    return where


def map_to_graph(source, specs):
    """The graph's tensors in graph order. Returns (OrderedDict name -> array, report dict); raises SourceError
    naming the first missing or mis-shaped tensor."""
    mapped, unexpected = to_official_names(source)
    needed = set(s.name for s in specs)
    unexpected += [src for official, (_, src) in mapped.items() if official not in needed]
    out = collections.OrderedDict()
    report = {"fc1_bias_zeros": 0, "fc2_bias_zeros": [], "unexpected": unexpected}
    problems = []
    for s in specs:
        if s.name in out:
            continue
        if s.name in mapped:
            arr, src = mapped[s.name]
            if list(arr.shape) != list(s.shape):
                shown = "" if src == s.name else " ('%s')" % src
                problems.append("tensor '%s'%s has shape %s, the graph needs %s (%s)"
                                % (s.name, shown, list(arr.shape), list(s.shape), describe_spec(s, source)))
                continue
            if arr.dtype.kind != "f":
                problems.append("tensor '%s' has dtype %s; weights must be floating point" % (s.name, arr.dtype))
                continue
            out[s.name] = arr
        elif source.naming == "paddle" and s.op == "split_attention" and s.role == "fc1_bias":
            out[s.name] = np.zeros(s.shape, np.float32)  # Paddle's fc1 has no bias; its BN mean absorbs one
            report["fc1_bias_zeros"] += 1
        elif source.naming == "paddle" and s.op == "split_attention" and s.role == "fc2_bias":
            out[s.name] = np.zeros(s.shape, np.float32)
            report["fc2_bias_zeros"].append(s.name)
        else:
            problems.append("tensor '%s' is missing (%s)" % (s.name, describe_spec(s, source)))
    if problems:
        more = " (and %d more tensors missing or mis-shaped: is --model the right network?)" % (len(problems) - 1) \
            if len(problems) > 1 else ""
        raise SourceError(problems[0] + more)
    for name, arr in out.items():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise SourceError("tensor '%s' holds %d NaN or infinite values" % (name, bad))
    return out, report


def cast(tensors, dtype):
    """Converts to f32/f16 (or by default keeps F32/F16 and turns others into F32); refuses f16 overflow."""
    out = collections.OrderedDict()
    for name, arr in tensors.items():
        if dtype == "f16":
            target = np.float16
        elif dtype == "f32" or arr.dtype not in (np.float32, np.float16):
            target = np.float32
        else:
            target = arr.dtype
        with np.errstate(over="ignore"):
            converted = arr.astype(target)
        if target == np.float16 and np.any(np.isinf(converted)):
            raise SourceError("tensor '%s': values up to %.6g do not fit in f16 (largest 65504); use --dtype f32"
                              % (name, float(np.max(np.abs(arr)))))
        out[name] = converted
    return out


# ---------------------------------------------------------------------------------------------- output

def write_atomically(path, tensors, metadata):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        safetensors_np.write(tmp, list(tensors.items()), metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def summary_lines(source, out_path, model_path, graph, tensors, report, forced):
    label = weight_sources.KIND_LABELS[source.kind]
    lines = ["read %s: %s, %d tensors%s" % (source.path, label, len(source.tensors),
                                            "; " + "; ".join(source.notes) if source.notes else "")]
    if source.naming == "paddle":
        done = "mapped PaddleClas names to official names; transposed the classifier weight (out.weight -> fc.weight)"
        if report["fc1_bias_zeros"]:
            done += "; fc1 bias set to zeros in %d blocks (PaddleClas has none; its BN mean already covers it)" \
                % report["fc1_bias_zeros"]
        lines.append(done)
    values = sum(a.size for a in tensors.values())
    nbytes = sum(a.nbytes for a in tensors.values())
    dtypes = "/".join(sorted(set(safetensors_np.NAMES[a.dtype.str.replace("|", "<")] for a in tensors.values())))
    lines.append("wrote %s: %d tensors, %s values, %s, %.1f MB" % (out_path, len(tensors), format(values, ","),
                                                                 dtypes, nbytes / 1e6))
    sem = source.semantics
    if sem in SEMANTICS_NAMES:
        lines.append("%s weights need %s: for this network that is %s%s"
                     % (SOURCE_NAMES[sem], SEMANTICS_NAMES[sem], suggested_graph(graph, sem),
                        " (converted onto %s anyway, --force)" % model_path if forced else ""))
    lines.append("run them with:")
    lines.append("  build/resnest run --model %s --weights %s --input X.npy --output Y.npy --top 5"
                 % (model_path, out_path))
    return lines


def convert(a, warnings):
    """Returns the summary lines; raises SourceError (bad file) or UsageError."""
    try:
        graph = graph_weights.load_graph(a.model)
        if not isinstance(graph, dict) or not isinstance(graph.get("config", {}), dict):
            raise ValueError("not a resnest-graph: expected a JSON object whose config is an object")
        specs = graph_weights.weight_specs(graph)
    except KeyError as e:
        raise GraphError("%s: cannot read the graph: a node lacks the key %s" % (a.model, e))
    except (OSError, ValueError, TypeError, AttributeError, ArithmeticError, RecursionError) as e:
        raise GraphError("%s: cannot read the graph: %s" % (a.model, getattr(e, "strerror", None) or e))
    source = weight_sources.read_source(a.src)
    forced = check_semantics(source, graph, a.model, a.force, warnings)
    tensors, report = map_to_graph(source, specs)
    if report["fc2_bias_zeros"]:
        warnings.append("%s has no fc2 bias (conv2.conv3.bias) in %d blocks, as in PaddleClas releases before "
                        "December 2022 whose fc2 had none: writing zeros for %s%s"
                        % (a.src, len(report["fc2_bias_zeros"]), report["fc2_bias_zeros"][0],
                           " and the others" if len(report["fc2_bias_zeros"]) > 1 else ""))
    if report["unexpected"]:
        names = report["unexpected"]
        warnings.append("%s: %d tensor%s the graph does not use, not written: %s%s"
                        % (a.src, len(names), "" if len(names) == 1 else "s", ", ".join(names[:10]),
                           ", ..." if len(names) > 10 else ""))
    tensors = cast(tensors, a.dtype)
    graph_sem = graph.get("config", {}).get("semantics")
    metadata = collections.OrderedDict([
        ("converter", "weights_tools/convert.py"), ("converter_version", VERSION),
        ("source_file", os.path.basename(a.src)), ("source_sha256", source.sha256),
        ("source_format", source.kind), ("semantics", source.semantics or graph_sem or "unknown"),
        ("model", graph.get("name", os.path.basename(a.model)))])
    if forced:
        metadata["forced_onto_semantics"] = graph_sem
    try:
        write_atomically(a.out, tensors, metadata)
    except OSError as e:
        raise GraphError("%s: cannot write: %s" % (a.out, e.strerror or e))
    return summary_lines(source, a.out, a.model, graph, tensors, report, forced)


def one_line(text):
    return " ".join(str(text).split())


def main(argv):
    warnings, errors = [], []
    status = 0
    src = argv[0] if argv else "?"
    try:
        a = parse_args(argv)
        src = a.src
        lines = convert(a, warnings)
    except UsageError as e:
        errors.append(str(e))
        status = 2
    except SourceError as e:
        errors.append("%s: %s" % (src, e))
        status = 1
    except GraphError as e:
        errors.append(str(e))
        status = 1
    for w in warnings:
        print("%s: warning: %s" % (PROG, one_line(w)), file=sys.stderr)
    for e in errors:
        print("%s: %s" % (PROG, one_line(e)), file=sys.stderr)
    if status == 0:
        print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
