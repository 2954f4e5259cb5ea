"""pickle_asm.py: builds pickles and torch checkpoints opcode by opcode, for the converter tests (stdlib + numpy).

A pickle that names `torch._utils._rebuild_tensor_v2` or `posix.system` is only bytes here: nothing is imported
to write it. Each helper returns the opcodes for one value; pickle_of() wraps a value into a protocol-2 pickle.

  data = pickle_of(dict_of((string("w"), call(global_("posix", "system"), string("touch /tmp/m")))))
  raw = torch_zip({"conv.weight": array})                      # what torch.save writes, without torch
  raw = torch_legacy({"conv.weight": array})                   # torch.save(..., _use_new_zipfile_serialization=False)
torch_zip/torch_legacy take hooks to make the file lie (claimed element counts, views, extra entries).
"""
import io
import struct
import zipfile

import numpy as np

MARK = b"("
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_TYPES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float16): "HalfStorage",
                 np.dtype(np.float64): "DoubleStorage", np.dtype(np.int64): "LongStorage"}


def global_(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def string(text):
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def raw_bytes(data):
    return b"B" + struct.pack("<I", len(data)) + bytes(data)


def integer(value):
    if -2 ** 31 <= value < 2 ** 31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def none():
    return b"N"


def boolean(value):
    return b"\x88" if value else b"\x89"


def tuple_of(*items):
    return MARK + b"".join(items) + b"t"


def list_of(*items):
    return b"]" + (MARK + b"".join(items) + b"e" if items else b"")


def dict_of(*pairs):
    return b"}" + (MARK + b"".join(k + v for k, v in pairs) + b"u" if pairs else b"")


def call(func, *args):
    return func + tuple_of(*args) + b"R"


def build(obj, state):
    return obj + state + b"b"


def persistent(pid):
    return pid + b"Q"


def pickle_of(value, protocol=2):
    return b"\x80" + bytes([protocol]) + value + b"."


# ------------------------------------------------------------------------------------- numpy arrays

def numpy_dtype(code="f4", byteorder="<"):
    state = tuple_of(integer(3), string(byteorder), none(), none(), none(), integer(-1), integer(-1), integer(0))
    return build(call(global_("numpy", "dtype"), string(code), boolean(False), boolean(True)), state)


def numpy_array(shape, data, code="f4", core="numpy.core"):
    """numpy's own pickle of an array (protocol 3 bytes), with whatever shape and data the test wants."""
    arr = call(global_(core + ".multiarray", "_reconstruct"), global_("numpy", "ndarray"), tuple_of(integer(0)),
               raw_bytes(b"b"))
    state = tuple_of(integer(1), tuple_of(*[integer(d) for d in shape]), numpy_dtype(code), boolean(False),
                     raw_bytes(data))
    return build(arr, state)


# ------------------------------------------------------------------------------------- torch files

def torch_tensor(key, storage_type, numel, offset, size, stride, legacy=False):
    pid = [string("storage"), global_("torch", storage_type), string(key), string("cpu"), integer(numel)]
    if legacy:
        pid.append(none())
    return call(global_("torch._utils", "_rebuild_tensor_v2"), persistent(tuple_of(*pid)), integer(offset),
                tuple_of(*[integer(d) for d in size]), tuple_of(*[integer(s) for s in stride]), boolean(False),
                call(global_("collections", "OrderedDict")))


def _contiguous_strides(shape):
    strides, step = [], 1
    for d in reversed(shape):
        strides.insert(0, step)
        step *= d
    return strides


def _state_pickle(tensors, legacy, claimed_numel, views, extra_items):
    """The state-dict pickle; returns (pickle bytes, [(storage key, array bytes, element count)])."""
    pairs, storages = [], []
    for i, (name, arr) in enumerate(tensors.items()):
        arr = np.ascontiguousarray(arr)
        key = str(i)
        numel = claimed_numel.get(name, arr.size)
        offset, size, stride = views.get(name, (0, list(arr.shape), _contiguous_strides(list(arr.shape))))
        pairs.append((string(name), torch_tensor(key, STORAGE_TYPES[arr.dtype], numel, offset, size, stride, legacy)))
        storages.append((key, arr.astype(arr.dtype.newbyteorder("<")).tobytes(), arr.size))
    pairs += list(extra_items)
    return pickle_of(dict_of(*pairs)), storages


def torch_zip(tensors, claimed_numel=None, views=None, extra_items=(), data_pkl=None, drop_entries=()):
    """A torch zip checkpoint of `tensors` (name -> array). claimed_numel: name -> element count the pickle
    claims; views: name -> (offset, size, stride); extra_items: more (key opcodes, value opcodes) pairs;
    data_pkl replaces the pickle outright; drop_entries: storage keys left out of the archive."""
    pkl, storages = _state_pickle(tensors, False, claimed_numel or {}, views or {}, extra_items)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl if data_pkl is not None else pkl)
        z.writestr("archive/byteorder", b"little")
        for key, data, _ in storages:
            if key not in drop_entries:
                z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", b"3\n")
    return buf.getvalue()


def torch_legacy(tensors, claimed_numel=None, record_numel=None, data_pkl=None):
    """A legacy torch checkpoint. record_numel: storage key -> element count written before its data."""
    pkl, storages = _state_pickle(tensors, True, claimed_numel or {}, {}, ())
    sys_info = dict_of((string("protocol_version"), integer(1001)), (string("little_endian"), boolean(True)),
                       (string("type_sizes"), dict_of((string("short"), integer(2)), (string("int"), integer(4)),
                                                      (string("long"), integer(4)))))
    out = [pickle_of(integer(LEGACY_MAGIC)), pickle_of(integer(1001)), pickle_of(sys_info),
           data_pkl if data_pkl is not None else pkl,
           pickle_of(list_of(*[string(key) for key, _, _ in storages]))]
    for key, data, numel in storages:
        out.append(struct.pack("<q", (record_numel or {}).get(key, numel)) + data)
    return b"".join(out)
