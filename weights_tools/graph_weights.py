"""graph_weights.py: the weight tensors a resnest-graph needs, with shapes and roles (models/OPS.md).

weight_specs(graph) returns, in node order, one WeightSpec per tensor the graph names:
  name     the tensor name in the weight file (official/timm names)
  shape    its shape, derived from the node's attributes
  op, role the node's op and the role the tensor plays there (conv2d/weight, batch_norm/running_var, ...)
  node     the node's name
  fan_in   inputs feeding one output of a conv2d/linear weight (None for other roles)
"""
import collections
import json

WeightSpec = collections.namedtuple("WeightSpec", "name shape op role node fan_in")


def _pair(v):
    return list(v) if isinstance(v, list) else [v, v]


def node_weight_shapes(node):
    """role -> (shape, fan_in) for one node."""
    a = node.get("attrs", {})
    op = node["op"]
    if op == "conv2d":
        kh, kw = _pair(a["kernel"])
        groups = a.get("groups", 1)
        cin_g = a["in_channels"] // groups
        out = {"weight": ([a["out_channels"], cin_g, kh, kw], cin_g * kh * kw)}
        if a.get("bias", False):
            out["bias"] = ([a["out_channels"]], None)
        return out
    if op == "batch_norm":
        c = a["channels"]
        return {r: ([c], None) for r in ("weight", "bias", "running_mean", "running_var")}
    if op == "split_attention":
        R, K, gw, inter = a["radix"], a.get("cardinality", 1), a["channels"], a["inter_channels"]
        out = {"fc1_weight": ([inter, gw // K, 1, 1], gw // K)}
        if a.get("fc1_bias", True):
            out["fc1_bias"] = ([inter], None)
        for r in ("bn_weight", "bn_bias", "bn_running_mean", "bn_running_var"):
            out[r] = ([inter], None)
        out["fc2_weight"] = ([R * gw, inter // K, 1, 1], inter // K)
        out["fc2_bias"] = ([R * gw], None)
        return out
    if op == "linear":
        out = {"weight": ([a["out_features"], a["in_features"]], a["in_features"])}
        if a.get("bias", True):
            out["bias"] = ([a["out_features"]], None)
        return out
    return {}


def weight_specs(graph):
    specs = []
    for node in graph["nodes"]:
        shapes = node_weight_shapes(node)
        for role, tensor in node.get("weights", {}).items():
            if role not in shapes:
                raise ValueError("node '%s' (%s): unknown weight role '%s'" % (node["name"], node["op"], role))
            shape, fan_in = shapes[role]
            specs.append(WeightSpec(tensor, shape, node["op"], role, node["name"], fan_in))
    return specs


def load_graph(path):
    with open(path) as f:
        return json.load(f)
