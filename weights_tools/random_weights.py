#!/usr/bin/env python3
"""random_weights.py: seeded random weights for a resnest-graph, numpy only, the same bytes on every machine.

  python3 weights_tools/random_weights.py --model models/resnest50.json --seed 1 --out w.safetensors

Every tensor the graph names is drawn from seeded.uniform(seed, tensor name, ...), so a tensor's values
depend only on the seed and its name. The ranges keep activations O(1) through every block, so that fp16
runs later see realistic magnitudes (measured in the fixtures through the 16 blocks of the full models:
block RMS 1.3 to 5.2, peaks near 36, logit std 2 to 5):
  conv / fc1 / fc2 weights  He-uniform, +-sqrt(6 / fan_in)   (variance kept through ReLU)
  linear weight             +-sqrt(3 / fan_in)               (unit gain)
  biases                    +-0.1
  BN gamma                  [0.8, 1.2); [0.15, 0.35) on a residual branch's last BN (the first input of an
                            add), so the residual sum grows slowly over 16 blocks
  BN beta, running_mean     +-0.1
  BN running_var            [0.5, 1.5)
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graph_weights  # noqa: E402
import safetensors_np  # noqa: E402
import seeded  # noqa: E402

VERSION = "1"


def residual_branch_bns(graph):
    """Names of batch_norm nodes whose output is the first input of an add (the residual branch's end)."""
    ops = {n["name"]: n["op"] for n in graph["nodes"]}
    out = set()
    for n in graph["nodes"]:
        if n["op"] == "add" and ops.get(n["inputs"][0]) == "batch_norm":
            out.add(n["inputs"][0])
    return out


def value_range(spec, residual_bns):
    role = spec.role.replace("bn_", "") if spec.op == "split_attention" else spec.role
    if spec.role in ("weight", "fc1_weight", "fc2_weight") and spec.fan_in is not None:
        a = math.sqrt((3.0 if spec.op == "linear" else 6.0) / spec.fan_in)
        return -a, a
    if spec.op in ("batch_norm", "split_attention") and role in ("weight", "bias", "running_mean", "running_var"):
        if role == "weight":
            return (0.15, 0.35) if spec.node in residual_bns else (0.8, 1.2)
        if role == "running_var":
            return 0.5, 1.5
        return -0.1, 0.1
    return -0.1, 0.1  # conv/linear/fc1/fc2 biases


def make_weights(graph, seed):
    residual_bns = residual_branch_bns(graph)
    tensors = []
    for spec in graph_weights.weight_specs(graph):
        lo, hi = value_range(spec, residual_bns)
        tensors.append((spec.name, seeded.uniform(seed, spec.name, spec.shape, lo, hi)))
    return tensors


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="resnest-graph JSON (models/*.json)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output .safetensors")
    p.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    a = p.parse_args(argv)
    if a.seed < 0:
        p.error("--seed must be a non-negative integer")
    try:
        graph = graph_weights.load_graph(a.model)
        tensors = make_weights(graph, a.seed)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError) as e:
        sys.exit("random_weights.py: %s: cannot make weights for this graph: %s" % (a.model, getattr(e, "strerror", None) or e))
    if a.dtype == "f16":
        tensors = [(n, t.astype(np.float16)) for n, t in tensors]
    meta = {"generator": "random_weights.py", "generator_version": VERSION, "seed": str(a.seed),
            "model": graph.get("name", os.path.basename(a.model))}
    try:
        safetensors_np.write(a.out, tensors, meta)
    except OSError as e:
        sys.exit("random_weights.py: %s: cannot write --out: %s" % (a.out, e.strerror or e))
    n = sum(t.size for _, t in tensors)
    print("wrote %s: %d tensors, %d values, seed %d" % (a.out, len(tensors), n, a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
