"""safetensors_np.py: read and write safetensors files with numpy alone.

Layout: 8-byte little-endian header length, JSON header (name -> dtype, shape, data_offsets; optional
__metadata__ of string -> string), one contiguous data block. The writer pads the header with spaces to a
multiple of 8 bytes and packs tensors in the order given.
"""
import json
import struct

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
NAMES = {np.dtype(v).str: k for k, v in DTYPES.items()}


class SafetensorsError(Exception):
    pass


def write(path, tensors, metadata=None):
    """tensors: list of (name, numpy array) or a dict; arrays are written little-endian, C order."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, arr in items:
        arr = np.ascontiguousarray(arr)
        le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        key = le.dtype.str.replace("|", "<")
        if key not in NAMES:
            raise SafetensorsError("%s: tensor '%s': dtype %s has no safetensors name" % (path, name, arr.dtype))
        if name in header:
            raise SafetensorsError("%s: tensor '%s' appears twice" % (path, name))
        data = le.tobytes()
        header[name] = {"dtype": NAMES[key], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read(path):
    """Returns (dict name -> numpy array, metadata dict). Checks spans against the file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SafetensorsError("%s: file is %d bytes, shorter than the 8-byte header length" % (path, len(raw)))
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise SafetensorsError("%s: header length %d is past the end of the file (%d bytes)" % (path, n, len(raw)))
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError("%s: header is not valid JSON: %s" % (path, e))
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        if info.get("dtype") not in DTYPES:
            raise SafetensorsError("%s: tensor '%s': unsupported dtype %r" % (path, name, info.get("dtype")))
        b, e = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        count = int(np.prod(info["shape"], dtype=np.int64))
        if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
            raise SafetensorsError("%s: tensor '%s': data_offsets %s do not fit shape %s / the file"
                                   % (path, name, [b, e], info["shape"]))
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).astype(dt.newbyteorder("="))
    return out, meta
