"""restricted_pickle.py: unpickling that rebuilds data and nothing else.

A pickle is a small program: its GLOBAL opcodes name any importable callable and REDUCE calls it, so
`pickle.load` on a downloaded file runs whatever the file asks for. Here every global the pickle names is
looked up in an allow-list that the caller passes in, (module, name) -> stand-in. The stand-ins are this
project's own small functions and classes: they record values (array shapes, storage keys) and neither
import nor call anything. A global outside the list stops the load before anything is called: no module
is imported, nothing the file names is run. Before unpickling, the opcodes are walked once without running
them (pickletools), so a length field claiming more bytes than the file holds is refused up front.

  obj = restricted_pickle.load(data, allowed, what="the .pdparams pickle")
  obj, end = restricted_pickle.load_from(stream, allowed, persistent_load=fn)   # several pickles in a row

Any refusal or malformed pickle raises SourceError with a one-line message.
"""
import io
import pickle
import pickletools
import reprlib
import struct

from source_error import SourceError


class RefusedGlobal(Exception):
    """Raised inside the unpickler when the pickle names a global outside the allow-list."""

    def __init__(self, module, name):
        super().__init__("%s.%s" % (module, name))
        self.qualified = "%s.%s" % (module, name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, allowed, persistent_load):
        # latin1 keeps Python 2 byte strings (array data in old pickles) as str of code points 0..255.
        super().__init__(stream, encoding="latin1")
        self._allowed = allowed
        self._persistent = persistent_load

    def find_class(self, module, name):
        stand_in = self._allowed.get((module, name))
        if stand_in is None:
            raise RefusedGlobal(module, name)
        return stand_in

    def persistent_load(self, pid):
        if self._persistent is None:
            raise pickle.UnpicklingError("the pickle uses a persistent id, which this file type never has")
        return self._persistent(pid)


# Errors a malformed pickle can raise from inside the unpickler or from a stand-in fed wrong arguments.
_BROKEN = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
           OverflowError, MemoryError, UnicodeDecodeError, struct.error, RecursionError, ImportError)


def refusal_message(qualified, what):
    hint = ""
    top = qualified.split(".", 1)[0]
    if top not in ("torch", "numpy", "collections", "builtins", "__builtin__", "_codecs"):
        hint = " (a pickled model object or code, not a state dict of tensors?)"
    return ("refused: %s asks for the global '%s', which is not on the allow-list of tensor-rebuilding "
            "functions%s; nothing was imported or executed" % (what, qualified, hint))


# Opcodes that store into the memo at an index the pickle chooses; the unpickler grows its memo table to
# that index, so a forged index of 10^9 would cost gigabytes.
_EXPLICIT_MEMO_PUTS = ("PUT", "BINPUT", "LONG_BINPUT")


def check_opcodes(stream, what):
    """Walks the pickle's opcodes without running them, so that a length field claiming more bytes than the
    file holds, or a memo index beyond any a real pickle uses (one per opcode at most), is refused before
    the unpickler allocates that much."""
    start = stream.tell()
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(stream)):
            if op.name in _EXPLICIT_MEMO_PUTS and not 0 <= arg <= count:
                raise SourceError("%s is not a valid pickle (corrupt?): memo index %d at opcode %d"
                                  % (what, arg, count))
    except (ValueError, EOFError, struct.error, UnicodeDecodeError, OverflowError) as e:
        raise SourceError("%s is not a valid pickle (truncated or corrupt?): %s" % (what, str(e).splitlines()[0]))
    stream.seek(start)


def load_from(stream, allowed, persistent_load=None, what="the pickle"):
    """Unpickles one object from a binary stream; returns (object, stream position after it)."""
    check_opcodes(stream, what)
    try:
        obj = _RestrictedUnpickler(stream, allowed, persistent_load).load()
    except RefusedGlobal as e:
        raise SourceError(refusal_message(e.qualified, what))
    except SourceError:
        raise
    except _BROKEN as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SourceError("%s is not a valid pickle (truncated or corrupt?): %s" % (what, detail))
    return obj, stream.tell()


def load(data, allowed, persistent_load=None, what="the pickle"):
    """Unpickles the single object in `data` (bytes)."""
    obj, _ = load_from(io.BytesIO(data), allowed, persistent_load, what)
    return obj


# Where training checkpoints keep the model's state dict.
NESTED_STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "params")


def pick_state_dict(obj, is_tensor, what, ignore=(), fall_back_to_top=False):
    """The state dict inside an unpickled object: the object itself when its values include tensors, else the
    dict under one of NESTED_STATE_DICT_KEYS. Returns (state dict, key it was under or None). With
    fall_back_to_top, a non-empty dict holding no tensors anywhere is returned as it is, so that the caller
    can name the first value that is not a tensor."""
    if not isinstance(obj, dict):
        raise SourceError("%s holds a %s, not a dict of tensors (a state dict)" % (what, type(obj).__name__))
    if any(is_tensor(v) for k, v in obj.items() if k not in ignore):
        return obj, None
    for key in NESTED_STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and any(is_tensor(v) for v in inner.values()):
            return inner, key
    if fall_back_to_top and any(k not in ignore for k in obj):
        return obj, None
    keys = [reprlib.repr(k) for k in list(obj.keys())[:8]]
    raise SourceError("%s holds no tensors: top-level keys %s; expected a state dict, or one under the key %s"
                      % (what, ", ".join(keys) or "(none)", " or ".join(repr(k) for k in NESTED_STATE_DICT_KEYS[:2])))
