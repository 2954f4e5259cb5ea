"""safetensors_np.py: read and write safetensors files with numpy alone.

Layout: 8-byte little-endian header length, JSON header (name -> dtype, shape, data_offsets; optional
__metadata__ of string -> string), one contiguous data block. The writer pads the header with spaces to a
multiple of 8 bytes and packs tensors in the order given. The reader checks the header's structure and every
span against the file, raising SafetensorsError with the tensor's name; it can also decode BF16 to float32.
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


def read(path, bf16_to_f32=False):
    """Returns (dict name -> numpy array, metadata dict). Checks spans against the file. BF16 tensors are
    refused unless bf16_to_f32, which decodes them to float32 (exactly)."""
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
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not a JSON object" % path)
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict):
        raise SafetensorsError("%s: __metadata__ is not a JSON object" % path)
    out = {}
    for name, info in header.items():
        out[name] = _read_tensor(path, name, info, data, bf16_to_f32)
    return out, meta


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _read_tensor(path, name, info, data, bf16_to_f32):
    if not isinstance(info, dict) or not isinstance(info.get("shape"), list) \
            or not all(_is_count(d) for d in info["shape"]) or not isinstance(info.get("data_offsets"), list) \
            or len(info["data_offsets"]) != 2 or not all(_is_count(v) for v in info["data_offsets"]):
        raise SafetensorsError("%s: tensor '%s': header entry needs dtype, a shape of sizes and two data_offsets"
                               % (path, name))
    bf16 = bf16_to_f32 and info.get("dtype") == "BF16"
    if info.get("dtype") not in DTYPES and not bf16:
        raise SafetensorsError("%s: tensor '%s': unsupported dtype %r" % (path, name, info.get("dtype")))
    b, e = info["data_offsets"]
    dt = np.dtype(np.uint16 if bf16 else DTYPES[info["dtype"]]).newbyteorder("<")
    count = 1
    for d in info["shape"]:
        count *= d  # Python integers: a huge shape cannot wrap around
    if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
        raise SafetensorsError("%s: tensor '%s': data_offsets %s do not fit shape %s / the file"
                               % (path, name, [b, e], info["shape"]))
    arr = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).astype(dt.newbyteorder("="))
    if bf16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr
