"""seeded.py: machine-independent pseudo-random tensors from (seed, name), numpy only.

Element i of the tensor called `name` is splitmix64(key + (i + 1) * golden) with key = FNV-1a(name) ^
seed * golden, reduced to 24 bits and mapped onto [lo, hi). Only integer arithmetic and one float64
multiply-add are involved, so the bytes are the same on every machine and numpy version (numpy's own
Generator streams carry no such promise across versions).
"""
import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def _fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def uniform(seed, name, shape, lo, hi):
    """float32 array of `shape`, values in [lo, hi)."""
    count = int(np.prod(shape, dtype=np.int64))
    key = (_fnv1a64(name) ^ ((seed * GOLDEN) & MASK)) & MASK
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (np.arange(1, count + 1, dtype=np.uint64) * np.uint64(GOLDEN))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) * (1.0 / (1 << 24))
    return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)
