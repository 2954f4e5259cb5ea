#!/usr/bin/env python3
"""random_input.py: a seeded random NCHW float32 input as .npy (values in (-2, 2), like normalised images).

  python3 weights_tools/random_input.py --shape 2,3,224,224 --seed 7 --out x.npy
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seeded  # noqa: E402


def make_input(shape, seed):
    """Pixel noise plus, per image, a per-channel offset and a coarse 8x8-cell pattern, so that the images
    of a batch differ in what a classifier sees (global statistics), not only in noise."""
    if len(shape) != 4:
        return seeded.uniform(seed, "input", shape, -2.0, 2.0)
    n, c, h, w = shape
    cells_h, cells_w = (h + 7) // 8, (w + 7) // 8
    noise = seeded.uniform(seed, "input", shape, -0.6, 0.6)
    offset = seeded.uniform(seed, "input.offset", [n, c, 1, 1], -0.7, 0.7)
    coarse = seeded.uniform(seed, "input.coarse", [n, c, cells_h, cells_w], -0.7, 0.7)
    coarse = coarse.repeat(8, axis=2).repeat(8, axis=3)[:, :, :h, :w]
    return (noise + offset + coarse).astype(np.float32)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, help="comma-separated, e.g. 1,3,224,224")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        shape = [int(v) for v in a.shape.split(",")]
    except ValueError:
        p.error("--shape takes comma-separated integers, e.g. 1,3,224,224")
    if any(d <= 0 for d in shape):
        p.error("--shape dimensions must be positive")
    if int(np.prod(shape, dtype=object)) > 1 << 30:  # the runtime's .npy limit (kMaxTensorElements)
        p.error("--shape %s holds more than 2^30 elements, more than resnest reads from a .npy" % a.shape)
    try:
        np.save(a.out, make_input(shape, a.seed))
    except OSError as e:
        sys.exit("random_input.py: %s: cannot write --out: %s" % (a.out, e.strerror or e))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
