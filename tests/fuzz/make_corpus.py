#!/usr/bin/env python3
"""make_corpus.py: writes the fuzz seed corpora under tests/fuzz/corpus/ (python3 standard library only).

Seeds are small valid inputs (taken from tests/fixtures/tiny/ where the format allows) plus a few malformed
ones, so the fuzzers start from every branch of each reader:

    python3 tests/fuzz/make_corpus.py    # rewrites corpus/graph, corpus/safetensors, corpus/npy, corpus/image
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny")


def put(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- graphs --------------------------------------------------------------------------------------------

SMALL_GRAPH = {
    "format": "resnest-graph", "version": 1, "name": "small",
    "input": {"name": "image", "shape": [-1, 3, 8, 8], "layout": "NCHW", "dtype": "float32"},
    "outputs": ["prob"],
    "nodes": [
        {"name": "conv", "op": "conv2d", "inputs": ["image"], "outputs": ["conv"],
         "attrs": {"in_channels": 3, "out_channels": 4, "kernel": [3, 3], "stride": 1, "pad": [1, 1],
                   "dilation": 1, "groups": 1, "bias": True},
         "weights": {"weight": "conv.weight", "bias": "conv.bias"}},
        {"name": "bn", "op": "batch_norm", "inputs": ["conv"], "outputs": ["bn"], "attrs": {"channels": 4, "eps": 1e-5},
         "weights": {"weight": "bn.w", "bias": "bn.b", "running_mean": "bn.m", "running_var": "bn.v"}},
        {"name": "relu", "op": "relu", "inputs": ["bn"], "outputs": ["relu"]},
        {"name": "mp", "op": "max_pool2d", "inputs": ["relu"], "outputs": ["mp"],
         "attrs": {"kernel": 3, "stride": 1, "pad": 1, "ceil_mode": True}},
        {"name": "ap", "op": "avg_pool2d", "inputs": ["mp"], "outputs": ["ap"],
         "attrs": {"kernel": 3, "stride": 1, "pad": 1, "count_include_pad": False}},
        {"name": "sa", "op": "split_attention", "inputs": ["ap"], "outputs": ["sa"],
         "attrs": {"radix": 2, "cardinality": 1, "channels": 2, "inter_channels": 2, "eps": 1e-5, "fc1_bias": True},
         "weights": {"fc1_weight": "sa.fc1.w", "fc1_bias": "sa.fc1.b", "bn_weight": "sa.bn.w", "bn_bias": "sa.bn.b",
                     "bn_running_mean": "sa.bn.m", "bn_running_var": "sa.bn.v", "fc2_weight": "sa.fc2.w",
                     "fc2_bias": "sa.fc2.b"}},
        {"name": "add", "op": "add", "inputs": ["sa", "sa"], "outputs": ["add"]},
        {"name": "pool", "op": "global_avg_pool", "inputs": ["add"], "outputs": ["pool"]},
        {"name": "fc", "op": "linear", "inputs": ["pool"], "outputs": ["fc"],
         "attrs": {"in_features": 2, "out_features": 3, "bias": True}, "weights": {"weight": "fc.w", "bias": "fc.b"}},
        {"name": "prob", "op": "softmax", "inputs": ["fc"], "outputs": ["prob"], "attrs": {"axis": -1}},
    ],
}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def graph_seeds(out):
    put(out, "small.json", json.dumps(SMALL_GRAPH, indent=1))
    for name in ("tiny_r1_k1_torch", "tiny_r2_k2_paddle"):
        with open(os.path.join(TINY, name + ".json")) as f:
            g = json.load(f)
        g.pop("config", None)
        put(out, name + ".json", compact(g))
    bad = json.loads(json.dumps(SMALL_GRAPH))
    bad["nodes"][0]["inputs"] = ["add"]
    put(out, "bad_cycle.json", compact(bad))
    bad = json.loads(json.dumps(SMALL_GRAPH))
    bad["nodes"][3]["attrs"]["kernel"] = 1048576
    put(out, "bad_kernel.json", compact(bad))
    bad = json.loads(json.dumps(SMALL_GRAPH))
    bad["input"]["shape"] = [-1, 65536, 65536, 65536]
    put(out, "bad_input_shape.json", compact(bad))
    put(out, "bad_truncated.json", compact(SMALL_GRAPH)[:300])
    put(out, "bad_deep.json", '{"format":"resnest-graph","version":1,"input":' + "[" * 40 + "]" * 40 + "}")


# ---- safetensors ---------------------------------------------------------------------------------------

def safetensors_bytes(entries, metadata=None, pad=True, data=None):
    """entries: list of (name, dtype, shape, raw bytes). Offsets are packed in order unless data is given."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = compact(header).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + (blob if data is None else data)


def raw_header(text, data=b""):
    text = text.encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds(out):
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    f16 = struct.pack("<4H", 0x3C00, 0x4000, 0xC000, 0x7C00)
    put(out, "small.safetensors", safetensors_bytes(
        [("a.weight", "F32", [2, 3], f32), ("b.half", "F16", [4], f16), ("num_batches_tracked", "I64", [], b"\0" * 8),
         ("empty", "F32", [0, 5], b"")], metadata={"format": "pt"}))
    put(out, "no_tensors.safetensors", safetensors_bytes([]))
    put(out, "all_dtypes.safetensors", safetensors_bytes(
        [(d, d, [1], b"\1" * s) for d, s in (("F64", 8), ("BF16", 2), ("I32", 4), ("I16", 2), ("I8", 1), ("U64", 8),
                                              ("U32", 4), ("U16", 2), ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1),
                                              ("F8_E5M2", 1))]))
    # The tiny fixture's real tensor names, each cut to one value: a realistic header at a fuzzable size.
    with open(os.path.join(TINY, "tiny_r2_k1_torch.safetensors"), "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        names = [k for k in json.loads(f.read(n)) if k != "__metadata__"]
    put(out, "tiny_names.safetensors", safetensors_bytes([(k, "F32", [1], struct.pack("<f", 0.5)) for k in names]))
    # Malformed.
    put(out, "bad_overlap.safetensors", raw_header(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        b"\0" * 8))
    put(out, "bad_hole.safetensors", raw_header(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8))
    put(out, "bad_span.safetensors", raw_header(
        '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b"\0" * 8))
    put(out, "bad_past_end.safetensors", raw_header(
        '{"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}', b"\0" * 8))
    put(out, "bad_overflow.safetensors", raw_header(
        '{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'))
    put(out, "bad_duplicate.safetensors", raw_header(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        b"\0"))
    put(out, "bad_length.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
    put(out, "bad_not_object.safetensors", raw_header('[1, 2, {"x": null}]'))


# ---- images ---------------------------------------------------------------------------------------------

def image_seeds(out):
    """The small images of tests/fixtures/images (every format, EXIF orientations, the bad ones), plus a
    few headers that claim more than they hold."""
    images = os.path.join(ROOT, "tests", "fixtures", "images")
    for sub in ("src", "bad"):
        folder = os.path.join(images, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.getsize(path) <= 6000:
                with open(path, "rb") as f:
                    put(out, sub + "_" + name, f.read())
    put(out, "claims_huge.ppm", b"P6\n100000 100000\n255\n" + b"\x80" * 48)
    put(out, "claims_huge.bmp", b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) +
        struct.pack("<IiiHHIIiiII", 40, 100000, -100000, 1, 24, 0, 0, 2835, 2835, 0, 0) + b"\x10" * 16)
    put(out, "zero_size.pgm", b"P5\n0 0\n255\n")


# ---- npy -------------------------------------------------------------------------------------------------

def npy_bytes(dict_text, data, major=1):
    header = dict_text.encode()
    length_bytes = 2 if major == 1 else 4
    header += b" " * (63 - (6 + 2 + length_bytes + len(header)) % 64) + b"\n"
    length = struct.pack("<H" if major == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([major, 0]) + length + header + data


def npy_dict(shape, descr="<f4", fortran="False"):
    text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, text)


def npy_seeds(out):
    def floats(n):
        return struct.pack("<%df" % n, *[i * 0.5 for i in range(n)])
    put(out, "scalar.npy", npy_bytes(npy_dict([]), floats(1)))
    put(out, "vector.npy", npy_bytes(npy_dict([5]), floats(5)))
    put(out, "matrix.npy", npy_bytes(npy_dict([2, 3]), floats(6)))
    put(out, "image.npy", npy_bytes(npy_dict([1, 3, 2, 2]), floats(12)))
    put(out, "empty.npy", npy_bytes(npy_dict([0, 3]), b""))
    put(out, "v2.npy", npy_bytes(npy_dict([2]), floats(2), major=2))
    put(out, "v3_doublequotes.npy", npy_bytes('{"descr": "<f4", "shape": (3,), "fortran_order": False}', floats(3),
                                              major=3))
    put(out, "bad_f8.npy", npy_bytes(npy_dict([2], descr="<f8"), b"\0" * 16))
    put(out, "bad_fortran.npy", npy_bytes(npy_dict([2, 2], fortran="True"), floats(4)))
    put(out, "bad_truncated.npy", npy_bytes(npy_dict([4, 4]), floats(3)))
    put(out, "bad_huge.npy", npy_bytes(npy_dict([4611686018427387904, 4]), b""))
    put(out, "bad_magic.npy", b"PK\x03\x04" + b"\0" * 20)


def main():
    corpus = os.path.join(HERE, "corpus")
    for sub, make in (("graph", graph_seeds), ("safetensors", safetensors_seeds), ("npy", npy_seeds),
                      ("image", image_seeds)):
        folder = os.path.join(corpus, sub)
        shutil.rmtree(folder, ignore_errors=True)
        make(folder)
        files = os.listdir(folder)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        print("%s: %d seeds, %d bytes" % (folder, len(files), size))


if __name__ == "__main__":
    main()
