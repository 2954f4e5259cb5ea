#!/usr/bin/env python3
"""make_graph.py: writes a ResNeSt model as a resnest-graph v1 JSON file (see models/OPS.md).

The network follows the ResNeSt family as PaddleClas, the official ResNeSt code and timm build it
(deep stem, avg_down shortcut, avd pool, split-attention 3x3 conv); see shared spec/resnest.md.
Weight names are the official/timm state_dict names (conv1.0.weight, layer1.0.conv2.fc1.bias, ...).

Pooling semantics (--semantics):
  paddle  avd pool excludes padding from the divisor; shortcut pool in floor mode (PaddleClas weights)
  torch   avd pool divides by 9 (count_include_pad); shortcut pool ceil_mode, excluding padding
          (official ResNeSt and timm weights)

  python3 models/make_graph.py --preset resnest50 --out models/resnest50.json
  python3 models/make_graph.py --all                  # rewrites the four committed graphs
  python3 models/make_graph.py --layers 1,1,1,1 --radix 4 --cardinality 2 --stem-width 4 \
      --planes 4,8,16,32 --input-size 72 --num-classes 10 --semantics torch --out tiny.json
"""
import argparse
import json
import os
import sys

PRESETS = {
    # PaddleClas ResNeSt50 / ResNeSt50_fast_1s1x64d, PaddleClas pooling semantics.
    "resnest50": dict(radix=2, avd_first=False, semantics="paddle"),
    "resnest50_fast_1s1x64d": dict(radix=1, avd_first=True, semantics="paddle"),
    # The same networks with official ResNeSt / timm pooling semantics (timm calls ResNeSt50 resnest50d).
    "resnest50d_torch": dict(radix=2, avd_first=False, semantics="torch"),
    "resnest50_fast_1s1x64d_torch": dict(radix=1, avd_first=True, semantics="torch"),
}

DEFAULTS = dict(layers=[3, 4, 6, 3], radix=2, cardinality=1, bottleneck_width=64, deep_stem=True,
                stem_width=32, avg_down=True, avd=True, avd_first=False, planes=[64, 128, 256, 512],
                input_size=224, num_classes=1000, semantics="paddle", softmax=False)


def inter_channels(gw, radix):
    # PaddleClas and official ResNeSt: max(in * radix // reduction_factor, 32), reduction_factor 4.
    return max(gw * radix // 4, 32)


class GraphBuilder:
    def __init__(self):
        self.nodes = []

    def node(self, name, op, inputs, attrs=None, weights=None):
        n = {"name": name, "op": op, "inputs": list(inputs), "outputs": [name]}
        if attrs:
            n["attrs"] = attrs
        if weights:
            n["weights"] = weights
        self.nodes.append(n)
        return name

    def conv(self, name, x, cin, cout, k, stride=1, pad=0, groups=1, weight=None):
        attrs = {"in_channels": cin, "out_channels": cout, "kernel": k}
        if stride != 1:
            attrs["stride"] = stride
        if pad != 0:
            attrs["pad"] = pad
        if groups != 1:
            attrs["groups"] = groups
        return self.node(name, "conv2d", [x], attrs, {"weight": weight or name + ".weight"})

    def bn(self, name, x, c, prefix):
        w = {r: prefix + "." + r for r in ("weight", "bias", "running_mean", "running_var")}
        return self.node(name, "batch_norm", [x], {"channels": c}, w)

    def relu(self, name, x):
        return self.node(name, "relu", [x])


def build_bottleneck(g, cfg, T, x, inplanes, planes, stride, is_first, has_downsample):
    """One ResNeSt bottleneck (spec section 2). T is the torch module prefix, e.g. 'layer2.0'."""
    R, K = cfg["radix"], cfg["cardinality"]
    gw = int(planes * (cfg["bottleneck_width"] / 64.0)) * K
    out_ch = planes * 4
    paddle = cfg["semantics"] == "paddle"
    avd = cfg["avd"] and (stride > 1 or is_first)
    avd_attrs = {"kernel": 3, "stride": stride, "pad": 1, "count_include_pad": not paddle}

    y = g.conv(T + ".conv1", x, inplanes, gw, 1)
    y = g.bn(T + ".bn1", y, gw, T + ".bn1")
    y = g.relu(T + ".act1", y)
    if avd and cfg["avd_first"]:
        y = g.node(T + ".avd_first", "avg_pool2d", [y], avd_attrs)
    # Split-attention conv: radix conv (groups K*R) + bn0 + ReLU, then the attention op.
    # With avd active the pool downsamples and the radix conv runs at stride 1; without it the radix conv
    # strides (official ResNeSt and timm; PaddleClas never strides it, see build_graph's check).
    conv_stride = 1 if avd else stride
    y = g.conv(T + ".conv2.conv", y, gw, gw * R, 3, stride=conv_stride, pad=1, groups=K * R)
    y = g.bn(T + ".conv2.bn0", y, gw * R, T + ".conv2.bn0")
    y = g.relu(T + ".conv2.act0", y)
    S = T + ".conv2."
    y = g.node(T + ".conv2.attn", "split_attention", [y],
               {"radix": R, "cardinality": K, "channels": gw, "inter_channels": inter_channels(gw, R)},
               {"fc1_weight": S + "fc1.weight", "fc1_bias": S + "fc1.bias",
                "bn_weight": S + "bn1.weight", "bn_bias": S + "bn1.bias",
                "bn_running_mean": S + "bn1.running_mean", "bn_running_var": S + "bn1.running_var",
                "fc2_weight": S + "fc2.weight", "fc2_bias": S + "fc2.bias"})
    if avd and not cfg["avd_first"]:
        y = g.node(T + ".avd_last", "avg_pool2d", [y], avd_attrs)
    y = g.conv(T + ".conv3", y, gw, out_ch, 1)
    y = g.bn(T + ".bn3", y, out_ch, T + ".bn3")

    shortcut = x
    if has_downsample:
        s = x
        if stride != 1:
            # torch: AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False); Paddle: AvgPool2D(2, 2) floor, exclusive.
            s = g.node(T + ".downsample.0", "avg_pool2d", [s],
                       {"kernel": stride, "stride": stride, "ceil_mode": not paddle, "count_include_pad": False})
        s = g.conv(T + ".downsample.1", s, inplanes, out_ch, 1)
        shortcut = g.bn(T + ".downsample.2", s, out_ch, T + ".downsample.2")
    y = g.node(T + ".add", "add", [y, shortcut])
    return g.relu(T + ".act3", y)


def check_config(cfg):
    """Refuses configurations the reference implementations cannot build; returns an error or None."""
    if not cfg["deep_stem"] or not cfg["avg_down"]:
        return "only deep_stem=True, avg_down=True networks are supported"
    if not cfg["avd"] and cfg["semantics"] == "paddle":
        return "PaddleClas never strides the split-attention conv, so avd=False cannot downsample there"
    R, K = cfg["radix"], cfg["cardinality"]
    if min(R, K, cfg["bottleneck_width"], cfg["stem_width"], cfg["input_size"], cfg["num_classes"]) < 1 or \
            min(cfg["planes"]) < 1 or min(cfg["layers"]) < 1:
        return "every width, size and count must be positive"
    for planes in cfg["planes"]:
        gw = int(planes * (cfg["bottleneck_width"] / 64.0)) * K
        inter = inter_channels(gw, R)
        if gw < 1 or gw % (K * R) or inter % K:
            return ("planes %d gives group width %d and inter channels %d: the radix conv needs the group width "
                    "divisible by cardinality * radix = %d, and fc1/fc2 need inter channels divisible by the "
                    "cardinality" % (planes, gw, inter, K * R))
    return None


def build_graph(cfg, name):
    problem = check_config(cfg)
    if problem:
        raise SystemExit("make_graph.py: " + problem)
    g = GraphBuilder()
    sw = cfg["stem_width"]
    x = "image"
    x = g.conv("conv1.0", x, 3, sw, 3, stride=2, pad=1)
    x = g.bn("conv1.1", x, sw, "conv1.1")
    x = g.relu("conv1.2", x)
    x = g.conv("conv1.3", x, sw, sw, 3, pad=1)
    x = g.bn("conv1.4", x, sw, "conv1.4")
    x = g.relu("conv1.5", x)
    x = g.conv("conv1.6", x, sw, sw * 2, 3, pad=1)
    x = g.bn("bn1", x, sw * 2, "bn1")
    x = g.relu("act1", x)
    x = g.node("maxpool", "max_pool2d", [x], {"kernel": 3, "stride": 2, "pad": 1})
    inplanes = sw * 2
    for li, (planes, blocks) in enumerate(zip(cfg["planes"], cfg["layers"])):
        stride = 1 if li == 0 else 2
        for b in range(blocks):
            s = stride if b == 0 else 1
            has_ds = b == 0 and (s != 1 or inplanes != planes * 4)
            # is_first is False for layer1 and True for block 0 of the others (spec section 2).
            x = build_bottleneck(g, cfg, "layer%d.%d" % (li + 1, b), x, inplanes, planes, s,
                                 is_first=(b == 0 and li > 0), has_downsample=has_ds)
            inplanes = planes * 4
    x = g.node("global_pool", "global_avg_pool", [x])
    x = g.node("fc", "linear", [x], {"in_features": inplanes, "out_features": cfg["num_classes"]},
               {"weight": "fc.weight", "bias": "fc.bias"})
    if cfg["softmax"]:
        x = g.node("prob", "softmax", [x])
    config = {k: cfg[k] for k in DEFAULTS}
    return {
        "format": "resnest-graph",
        "version": 1,
        "name": name,
        "config": config,
        "input": {"name": "image", "shape": [-1, 3, cfg["input_size"], cfg["input_size"]],
                  "layout": "NCHW", "dtype": "float32"},
        "outputs": [x],
        "nodes": g.nodes,
    }


def write_graph(graph, path):
    # One top-level field and one node per line: diffs of the committed graphs stay readable.
    fields = ['  "%s": %s' % (k, json.dumps(v)) for k, v in graph.items() if k != "nodes"]
    nodes = ",\n".join("    " + json.dumps(n) for n in graph["nodes"])
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(fields) + ',\n  "nodes": [\n' + nodes + "\n  ]\n}\n")


def int_list(s):
    return [int(v) for v in s.split(",")]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS))
    p.add_argument("--all", action="store_true", help="write every preset into models/")
    p.add_argument("--out", help="output JSON path")
    p.add_argument("--name", help="model name stored in the graph (default: preset or file name)")
    p.add_argument("--layers", type=int_list)
    p.add_argument("--radix", type=int)
    p.add_argument("--cardinality", type=int)
    p.add_argument("--bottleneck-width", type=int)
    p.add_argument("--stem-width", type=int)
    p.add_argument("--planes", type=int_list, help="base width of the four stages (default 64,128,256,512)")
    p.add_argument("--avd-first", choices=["true", "false"])
    p.add_argument("--avd", choices=["true", "false"])
    p.add_argument("--input-size", type=int)
    p.add_argument("--num-classes", type=int)
    p.add_argument("--semantics", choices=["paddle", "torch"])
    p.add_argument("--softmax", action="store_true", help="append a softmax node (as a PaddleClas export does)")
    a = p.parse_args(argv)

    if a.all:
        here = os.path.dirname(os.path.abspath(__file__))
        for name, preset in sorted(PRESETS.items()):
            cfg = dict(DEFAULTS, **preset)
            write_graph(build_graph(cfg, name), os.path.join(here, name + ".json"))
            print("wrote", os.path.join(here, name + ".json"))
        return 0
    if not a.out:
        p.error("--out is required (or --all)")
    cfg = dict(DEFAULTS, **(PRESETS[a.preset] if a.preset else {}))
    for key in ("layers", "radix", "cardinality", "bottleneck_width", "stem_width", "planes", "input_size",
                "num_classes", "semantics"):
        v = getattr(a, key)
        if v is not None:
            cfg[key] = v
    for key in ("avd_first", "avd"):
        v = getattr(a, key)
        if v is not None:
            cfg[key] = v == "true"
    cfg["softmax"] = a.softmax
    if len(cfg["layers"]) != 4 or len(cfg["planes"]) != 4:
        p.error("--layers and --planes take four comma-separated integers")
    name = a.name or a.preset or os.path.splitext(os.path.basename(a.out))[0]
    write_graph(build_graph(cfg, name), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
