"""torch_reader.py: reads PyTorch checkpoints (torch.save) without torch: the zip format and the legacy one.

Zip format (torch >= 1.6): an archive with <prefix>/data.pkl, a pickle whose tensors point by persistent id
('storage', StorageType, key, location, numel) at raw little-endian storages stored as <prefix>/data/<key>
(<prefix>/byteorder may say "big").
Legacy format (torch.save(..., _use_new_zipfile_serialization=False), and every file from torch < 1.6):
five pickles in a row (magic number, protocol version 1001, system info, the object, the list of storage
keys), then each storage as an 8-byte element count followed by its bytes.

The object pickle is read with restricted_pickle. The allow-list holds only what a state dict needs:
torch._utils._rebuild_tensor(_v2/_v3) and _rebuild_parameter(_with_state), the storage types
(torch.FloatStorage, ...), torch dtypes, torch.Size and collections.OrderedDict, each replaced by a stand-in
that records the tensor's storage, offset, size and stride. Nothing from torch is imported. Afterwards every
tensor is checked against its storage (the element count the pickle claims against the bytes the file
holds, and the view against the storage's extent) and copied out as a numpy array.

  tensors, notes = read_torch_zip(raw_bytes)
  tensors, notes = read_torch_legacy(raw_bytes)
  is_torch_legacy(raw_bytes)
"""
import collections
import io
import reprlib
import struct
import zipfile
import zlib

import numpy as np

import restricted_pickle
from source_error import SourceError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage class -> (numpy type code without byte order, item size). "bf16" is decoded by hand.
STORAGE_TYPES = {"FloatStorage": ("f4", 4), "DoubleStorage": ("f8", 8), "HalfStorage": ("f2", 2),
                 "BFloat16Storage": ("bf16", 2), "LongStorage": ("i8", 8), "IntStorage": ("i4", 4),
                 "ShortStorage": ("i2", 2), "CharStorage": ("i1", 1), "ByteStorage": ("u1", 1),
                 "BoolStorage": ("b1", 1), "UntypedStorage": ("u1", 1)}
TORCH_DTYPES = {"float32": "FloatStorage", "float": "FloatStorage", "float64": "DoubleStorage",
                "double": "DoubleStorage", "float16": "HalfStorage", "half": "HalfStorage",
                "bfloat16": "BFloat16Storage", "int64": "LongStorage", "long": "LongStorage",
                "int32": "IntStorage", "int": "IntStorage", "int16": "ShortStorage", "short": "ShortStorage",
                "int8": "CharStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}

_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
               ValueError, zlib.error, struct.error)


class _Sealed:
    """Stand-ins a pickle may create but never modify: BUILD on one is refused."""

    def __setstate__(self, state):
        raise SourceError("the pickle tries to modify a %s, which a torch checkpoint never does"
                          % type(self).__name__)


class StorageType(_Sealed):
    """Stands in for torch.FloatStorage etc., and for a torch dtype (which names its storage type)."""

    def __init__(self, storage_name):
        self.name = storage_name
        self.code, self.itemsize = STORAGE_TYPES[storage_name]

    def numpy_dtype(self, byteorder):
        code = "u2" if self.code == "bf16" else self.code
        return np.dtype(code).newbyteorder("<" if byteorder == "little" else ">")


class StorageRef(_Sealed):
    """A storage as the pickle describes it: its key in the file, type, element count, and for a legacy
    storage view the element range of the root storage it covers."""

    def __init__(self, key, stype, numel, view_offset=0, view_numel=None):
        self.key, self.stype, self.numel = key, stype, numel
        self.view_offset = view_offset
        self.view_numel = numel if view_numel is None else view_numel


class TensorRef(_Sealed):
    """A tensor as the pickle describes it: a strided view of a storage."""

    def __init__(self, storage, offset, size, stride, stype=None):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.stype = stype  # set by _rebuild_tensor_v3, which names the dtype itself


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, *unused):
    return TensorRef(storage, storage_offset, size, stride, dtype if isinstance(dtype, StorageType) else False)


def _rebuild_parameter(data, *unused):
    if not isinstance(data, TensorRef):
        raise SourceError("the pickle rebuilds a parameter from something that is not a tensor")
    return data


def _size(dims=()):
    return tuple(dims)


ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
           ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
           ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
           ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
           ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
           ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
           ("torch", "Size"): _size}
for _name in STORAGE_TYPES:
    ALLOWED[("torch", _name)] = StorageType(_name)
for _name, _storage in TORCH_DTYPES.items():
    ALLOWED[("torch", _name)] = StorageType(_storage)


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


class _StorageTable:
    """Builds StorageRefs from persistent ids, one per key."""

    def __init__(self, legacy):
        self.legacy = legacy
        self.by_key = {}

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise SourceError("the pickle has a malformed persistent id %s" % reprlib.repr(pid))
        kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            raise SourceError("refused: the file stores a pickled model class with its source code; only a "
                              "state dict of tensors can be converted (save model.state_dict())")
        if kind != "storage" or len(pid) not in ((6,) if self.legacy else (5,)):
            raise SourceError("the pickle has a persistent id of an unknown kind %s" % reprlib.repr(kind))
        stype, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(stype, StorageType) or not isinstance(key, str) or not _is_count(numel):
            raise SourceError("the pickle has a malformed storage reference %s" % reprlib.repr(pid[1:5]))
        ref = self._root(key, stype, numel)
        view = pid[5] if self.legacy else None
        if view is None:
            return ref
        if (not isinstance(view, tuple) or len(view) != 3 or not _is_count(view[1]) or not _is_count(view[2])
                or view[1] + view[2] > numel):
            raise SourceError("storage '%s': the pickle has a malformed or out-of-range storage view %s"
                              % (key, reprlib.repr(view)))
        return StorageRef(key, stype, numel, view[1], view[2])

    def _root(self, key, stype, numel):
        old = self.by_key.get(key)
        if old is None:
            self.by_key[key] = old = StorageRef(key, stype, numel)
        elif old.stype.name != stype.name or old.numel != numel:
            raise SourceError("storage '%s' is described twice, as %d x %s and %d x %s"
                              % (key, old.numel, old.stype.name, numel, stype.name))
        return old


def _tensor_array(name, t, storage_bytes, byteorder):
    """Copies tensor t out of its storage's bytes, after checking the view fits the storage."""
    s = t.storage
    if not isinstance(s, StorageRef):
        raise SourceError("tensor '%s': the pickle rebuilds it from something that is not a storage" % name)
    if t.stype is False:
        raise SourceError("tensor '%s': the pickle gives it an unknown dtype" % name)
    stype = t.stype or s.stype
    size, stride, offset = t.size, t.stride, t.offset
    if (not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride)
            or not all(_is_count(v) for v in size + stride) or not _is_count(offset)):
        raise SourceError("tensor '%s': malformed size %s / stride %s / offset %s in the pickle"
                          % (name, reprlib.repr(size), reprlib.repr(stride), reprlib.repr(offset)))
    view_bytes = s.view_numel * s.stype.itemsize
    numel = view_bytes // stype.itemsize
    count = 1
    for d in size:
        count *= d
    if count:
        last = offset + sum((d - 1) * st for d, st in zip(size, stride))
        if last >= numel:
            raise SourceError("tensor '%s': the pickle lies about its storage: size %s, stride %s and offset %d reach "
                              "element %d of storage '%s', which has %d" % (name, list(size), list(stride), offset,
                                                                           last, s.key, numel))
    start = s.view_offset * s.stype.itemsize
    flat = np.frombuffer(storage_bytes, dtype=stype.numpy_dtype(byteorder), count=numel, offset=start)
    if count == 0:
        arr = np.zeros(size, dtype=flat.dtype)
    else:
        arr = np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                              strides=[st * flat.itemsize for st in stride])
    arr = np.array(arr, dtype=flat.dtype.newbyteorder("="))
    if stype.code == "bf16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _tensors_from(obj, what, storage_bytes_for, byteorder):
    state, nested_key = restricted_pickle.pick_state_dict(obj, lambda v: isinstance(v, TensorRef), what)
    notes = ["state dict taken from the key '%s'" % nested_key] if nested_key is not None else []
    tensors = collections.OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise SourceError("the state dict has a key of type %s; names must be strings" % type(key).__name__)
        if not isinstance(value, TensorRef):
            raise SourceError("tensor '%s' is a %s, not a tensor: the state dict must hold only tensors"
                              % (key, type(value).__name__))
        if not isinstance(value.storage, StorageRef):
            raise SourceError("tensor '%s': the pickle rebuilds it from something that is not a storage" % key)
        tensors[key] = _tensor_array(key, value, storage_bytes_for(key, value.storage), byteorder)
    return tensors, notes


def read_torch_zip(raw):
    """Returns (OrderedDict name -> numpy array, notes) for a torch zip checkpoint."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = zf.namelist()
    except _ZIP_ERRORS as e:
        raise SourceError("the torch zip archive is truncated or corrupt: %s" % e)
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise SourceError("the zip archive is not a torch checkpoint: it has %d '<folder>/data.pkl' entries, "
                          "not 1" % len(pickles))
    prefix = pickles[0][: -len("data.pkl")]

    def read_entry(entry, expected_size=None):
        try:
            info = zf.getinfo(entry)
            if expected_size is not None and info.file_size != expected_size:
                return None, info.file_size
            return zf.read(entry), info.file_size
        except KeyError:
            raise SourceError("the torch archive has no entry '%s'" % entry)
        except _ZIP_ERRORS as e:
            raise SourceError("the torch archive's entry '%s' is corrupt: %s" % (entry, e))

    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = read_entry(prefix + "byteorder")[0].decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise SourceError("the torch archive's byteorder entry says %s" % reprlib.repr(byteorder))
    table = _StorageTable(legacy=False)
    obj = restricted_pickle.load(read_entry(pickles[0])[0], ALLOWED, table.persistent_load,
                                 what="the torch archive's data.pkl")
    cache = {}

    def storage_bytes_for(name, ref):
        if ref.key not in cache:
            expected = ref.numel * ref.stype.itemsize
            data, actual = read_entry(prefix + "data/" + ref.key, expected)
            if data is None:
                raise SourceError("tensor '%s': the pickle lies about storage '%s': it claims %d x %s = %d bytes, "
                                  "the archive holds %d" % (name, ref.key, ref.numel, ref.stype.name, expected, actual))
            cache[ref.key] = data
        return cache[ref.key]

    tensors, notes = _tensors_from(obj, "the torch archive's data.pkl", storage_bytes_for, byteorder)
    if byteorder != "little":
        notes.append("big-endian storages")
    return tensors, notes


def is_torch_legacy(raw):
    """The legacy format starts with a pickled magic number: PROTO n, LONG1 of 10 bytes, the number."""
    return (len(raw) >= 14 and raw[0] == 0x80 and raw[2:4] == b"\x8a\x0a"
            and int.from_bytes(raw[4:14], "little") == LEGACY_MAGIC)


def read_torch_legacy(raw):
    """Returns (OrderedDict name -> numpy array, notes) for a legacy (non-zip) torch checkpoint."""
    stream = io.BytesIO(raw)
    what = "the legacy torch file"
    magic, _ = restricted_pickle.load_from(stream, {}, what=what + "'s header")
    protocol, _ = restricted_pickle.load_from(stream, {}, what=what + "'s header")
    sys_info, _ = restricted_pickle.load_from(stream, {}, what=what + "'s header")
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(sys_info, dict):
        raise SourceError("%s has an unknown header (magic %s, protocol %s)"
                          % (what, reprlib.repr(magic), reprlib.repr(protocol)))
    byteorder = "little" if sys_info.get("little_endian", True) else "big"
    table = _StorageTable(legacy=True)
    obj, _ = restricted_pickle.load_from(stream, ALLOWED, table.persistent_load, what=what + "'s pickle")
    keys, pos = restricted_pickle.load_from(stream, {}, what=what + "'s storage list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise SourceError("%s's storage list is not a list of keys" % what)
    data = {}
    count_format = "<q" if byteorder == "little" else ">q"
    for key in keys:
        ref = table.by_key.get(key)
        if ref is None:
            raise SourceError("%s holds data for storage '%s', which no tensor uses" % (what, key))
        if pos + 8 > len(raw):
            raise SourceError("%s is truncated: storage '%s' is missing" % (what, key))
        (numel,) = struct.unpack(count_format, raw[pos:pos + 8])
        if numel != ref.numel:
            raise SourceError("%s lies about storage '%s': the pickle claims %d elements, the data record %d"
                              % (what, key, ref.numel, numel))
        nbytes = numel * ref.stype.itemsize
        if pos + 8 + nbytes > len(raw):
            raise SourceError("%s is truncated: storage '%s' needs %d bytes, %d are left"
                              % (what, key, nbytes, len(raw) - pos - 8))
        data[key] = raw[pos + 8:pos + 8 + nbytes]
        pos += 8 + nbytes

    def storage_bytes_for(name, ref):
        if ref.key not in data:
            raise SourceError("tensor '%s': storage '%s' has no data in %s" % (name, ref.key, what))
        return data[ref.key]

    tensors, notes = _tensors_from(obj, what + "'s pickle", storage_bytes_for, byteorder)
    if pos != len(raw):
        notes.append("%d bytes after the last storage ignored" % (len(raw) - pos))
    return tensors, notes
