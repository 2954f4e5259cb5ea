"""pdparams_reader.py: reads a PaddlePaddle .pdparams file (what paddle.save writes) without paddle.

A .pdparams file is a pickle of a dict: structured parameter name -> numpy array, plus paddle.save's extra
key `StructuredToParameterName@@` (structured name -> internal ParamAttr name). When paddle.save writes
tensors that are not in a plain state dict (a nested dict, paddle 2.1 files), each value is the tuple
(internal name, array) instead. Pickles written under numpy 1.x (numpy.core.*) and 2.x (numpy._core.*),
with any pickle protocol from 2 to 5, all load.

The pickle is read with restricted_pickle: the only globals allowed are numpy's array and dtype
reconstructors, `builtins.tuple`, `collections.OrderedDict` and `_codecs.encode` (protocol 2's way of
writing bytes), each replaced by a stand-in here that only records values. Only numeric arrays are
accepted: an object, string or structured dtype, or array data whose length does not match its shape, is
refused with the tensor's name.

  tensors, name_table, notes = read_pdparams(raw_bytes)
"""
import collections
import reprlib

import numpy as np

import restricted_pickle
from source_error import SourceError

NAME_TABLE_KEY = "StructuredToParameterName@@"

# dtype strings numpy writes in a pickled dtype, limited to plain numbers and booleans.
NUMERIC_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


class _NdarrayType:
    """Stands in for the global numpy.ndarray (only ever passed to _reconstruct)."""


class _Dtype:
    """Stands in for numpy.dtype(spec, align, copy) followed by BUILD with numpy's dtype state."""

    def __init__(self, spec, align=False, copy=False):
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2:
            raise SourceError("a pickled numpy dtype has a malformed state")
        if len(state) >= 4 and (state[2] is not None or state[3] is not None):
            self.spec = "structured"
        self.byteorder = state[1]

    def to_numpy(self):
        if not isinstance(self.spec, str) or self.spec not in NUMERIC_DTYPES:
            return None
        order = self.byteorder if self.byteorder in ("<", ">") else "="
        return np.dtype(self.spec).newbyteorder(order)

    def describe(self):
        return "dtype %s" % reprlib.repr(self.spec)


class PickledArray:
    """What the pickle said about one array: dtype, shape, Fortran order and raw bytes.
    to_numpy(tensor_name) checks all of it and returns a native-endian, C-ordered copy."""

    def __init__(self):
        self.state = None

    def __setstate__(self, state):
        self.state = state

    @classmethod
    def from_buffer(cls, buf, dtype, shape, order):
        a = cls()
        a.state = (1, shape, dtype, order == "F", buf)
        return a

    def to_numpy(self, name):
        st = self.state
        if not isinstance(st, tuple) or len(st) not in (4, 5):
            raise SourceError("tensor '%s': the pickled array has no valid state" % name)
        shape, dtype, fortran, data = st[-4:]
        if not isinstance(dtype, _Dtype):
            raise SourceError("tensor '%s': the pickled array has no numpy dtype" % name)
        dt = dtype.to_numpy()
        if dt is None:
            raise SourceError("tensor '%s' has %s; only numeric arrays are accepted" % (name, dtype.describe()))
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape):
            raise SourceError("tensor '%s': the pickled array's shape %s is not a tuple of sizes"
                              % (name, reprlib.repr(shape)))
        if isinstance(data, str):
            data = data.encode("latin1")  # Python 2 pickles, read with encoding latin1
        if not isinstance(data, (bytes, bytearray)):
            raise SourceError("tensor '%s': the pickled array holds %s, not raw numbers"
                              % (name, type(data).__name__))
        count = 1
        for d in shape:
            count *= d
        if len(data) != count * dt.itemsize:
            raise SourceError("tensor '%s': the pickle lies about the array's size: shape %s of %s needs %d bytes, "
                              "the data has %d" % (name, list(shape), dt.name, count * dt.itemsize, len(data)))
        arr = np.frombuffer(bytes(data), dtype=dt).reshape(shape, order="F" if fortran else "C")
        return np.ascontiguousarray(arr, dtype=dt.newbyteorder("="))


def _reconstruct(subtype, shape, typecode):
    if subtype is not _NdarrayType:
        raise SourceError("the pickle rebuilds an array of a type other than numpy.ndarray")
    return PickledArray()


def _frombuffer(buf, dtype, shape, order):
    return PickledArray.from_buffer(buf, dtype, shape, order)


def _codecs_encode(text, encoding="utf-8"):
    """Protocol 2 writes bytes as _codecs.encode(text, 'latin1')."""
    if not isinstance(text, str) or encoding != "latin1":
        raise SourceError("the pickle calls _codecs.encode with something other than latin1 text")
    return text.encode("latin1")


def _tuple(items=()):
    return tuple(items)


ALLOWED = {("numpy", "ndarray"): _NdarrayType, ("numpy", "dtype"): _Dtype,
           ("builtins", "tuple"): _tuple, ("__builtin__", "tuple"): _tuple,
           ("collections", "OrderedDict"): collections.OrderedDict, ("_codecs", "encode"): _codecs_encode}
for _core in ("numpy.core", "numpy._core"):
    ALLOWED[(_core + ".multiarray", "_reconstruct")] = _reconstruct
    ALLOWED[(_core + ".numeric", "_frombuffer")] = _frombuffer


def is_pickled_tensor(value):
    """An array, or paddle's (internal name, array) tuple."""
    if isinstance(value, PickledArray):
        return True
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], PickledArray)


def describe_value(value):
    if isinstance(value, (_Dtype, type)):
        return "a numpy dtype" if isinstance(value, _Dtype) else "a type"
    if isinstance(value, tuple):
        return "a tuple of %d items" % len(value)
    return "a %s" % type(value).__name__


def read_pdparams(raw):
    """Returns (OrderedDict name -> numpy array, name table dict, list of notes)."""
    obj = restricted_pickle.load(raw, ALLOWED, what="the .pdparams pickle")
    state, nested_key = restricted_pickle.pick_state_dict(obj, is_pickled_tensor, "the .pdparams pickle",
                                                          ignore=(NAME_TABLE_KEY,), fall_back_to_top=True)
    notes = []
    if nested_key is not None:
        notes.append("state dict taken from the key '%s'" % nested_key)
    name_table = {}
    tensors = collections.OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise SourceError("the .pdparams dict has a key of type %s; names must be strings" % type(key).__name__)
        if key == NAME_TABLE_KEY:
            if isinstance(value, dict):
                name_table = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
            notes.append("skipped %s" % NAME_TABLE_KEY)
            continue
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], PickledArray):
            value = value[1]
        if not isinstance(value, PickledArray):
            raise SourceError("tensor '%s' is %s, not an array: a .pdparams file must hold only arrays"
                              % (key, describe_value(value)))
        tensors[key] = value.to_numpy(key)
    return tensors, name_table, notes
