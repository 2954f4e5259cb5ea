"""weight_sources.py: opens any weight file convert.py and inspect.py accept, recognised by its bytes.

  source = weight_sources.read_source("ResNeSt50_pretrained.pdparams")
  source.kind        "pdparams" | "torch-zip" | "torch-legacy" | "safetensors"
  source.tensors     OrderedDict name -> numpy array, names as the file has them
  source.naming      "paddle" (PaddleClas structured names) or "official" (official ResNeSt / timm names)
  source.semantics   pooling semantics the weights were trained with: "paddle", "torch" or None (unknown)
  source.notes       what the reader did (skipped keys, nested state dict, ...)
  source.sha256      of the file's bytes;  source.metadata: a safetensors file's __metadata__

Recognition, whatever the file's extension:
  zip archive (PK..)                         torch checkpoint, zip format (torch_reader)
  pickle starting with torch's magic number  torch checkpoint, legacy format (torch_reader)
  other pickle (protocol 2-5)                PaddleClas .pdparams (pdparams_reader)
  u64 header length, then '{'                safetensors (safetensors_np)
A safetensors file whose names are PaddleClas names (paddle.save(..., safetensors=True)) is read as
PaddleClas weights; one written by convert.py keeps the semantics recorded in its metadata.
"""
import collections
import hashlib
import struct

import name_map
import pdparams_reader
import safetensors_np
import torch_reader
from source_error import SourceError

KIND_LABELS = {"pdparams": "PaddleClas .pdparams (pickle)", "torch-zip": "torch checkpoint (zip format)",
               "torch-legacy": "torch checkpoint (legacy format)", "safetensors": "safetensors"}

Source = collections.namedtuple("Source", "path kind tensors naming semantics notes sha256 metadata")


def detect_kind(raw):
    """The file kind from its first bytes, or None."""
    if raw[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "torch-zip"
    if torch_reader.is_torch_legacy(raw):
        return "torch-legacy"
    if len(raw) >= 2 and raw[0] == 0x80 and 2 <= raw[1] <= 5:
        return "pdparams"
    if len(raw) >= 9 and raw[8:9] == b"{" and struct.unpack("<Q", raw[:8])[0] <= len(raw) - 8:
        return "safetensors"
    return None


def _strip_module_prefix(tensors, notes):
    """Checkpoints saved from torch.nn.DataParallel prefix every name with 'module.'."""
    if tensors and all(k.startswith("module.") for k in tensors):
        notes.append("removed the 'module.' prefix of every name")
        return collections.OrderedDict((k[len("module."):], v) for k, v in tensors.items())
    return tensors


def _structured_names(tensors, name_table, notes):
    """A .pdparams keyed by internal ParamAttr names is renamed through its StructuredToParameterName@@ table."""
    inverse = {v: k for k, v in name_table.items()}
    renamed = 0
    out = collections.OrderedDict()
    for k, v in tensors.items():
        if name_map.paddle_to_official(k) is None and k in inverse:
            k = inverse[k]
            renamed += 1
        out[k] = v
    if renamed:
        notes.append("renamed %d internal parameter names to structured names" % renamed)
    return out


def _looks_paddle(tensors):
    names = list(tensors)
    return any(name_map.paddle_to_official(k) for k in names) and not any(name_map.official_to_paddle(k)
                                                                          for k in names)


def _read_safetensors(path):
    try:
        tensors, meta = safetensors_np.read(path, bf16_to_f32=True)
    except safetensors_np.SafetensorsError as e:
        message = str(e)
        if message.startswith(path + ": "):
            message = message[len(path) + 2:]
        raise SourceError(message)
    return collections.OrderedDict(tensors), meta


def read_source(path):
    """Reads and recognises a weight file; raises SourceError with a one-line message."""
    try:
        return _read_source(path)
    except SourceError:
        raise
    except Exception as e:  # a malformed file must end in a message, never a traceback
        raise SourceError("the file is malformed (%s: %s)" % (type(e).__name__, " ".join(str(e).split())[:200]))


def _read_source(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SourceError("cannot read the file: %s" % (e.strerror or e))
    sha256 = hashlib.sha256(raw).hexdigest()
    kind = detect_kind(raw)
    notes, meta = [], {}
    if kind is None:
        raise SourceError("not a weight file this tool reads (%d bytes starting %r): expected a PaddleClas .pdparams "
                          "pickle, a torch .pth/.pt/.bin checkpoint (zip or legacy) or a .safetensors file"
                          % (len(raw), raw[:8]))
    if kind == "pdparams":
        tensors, name_table, notes = pdparams_reader.read_pdparams(raw)
        tensors = _structured_names(tensors, name_table, notes)
        naming, semantics = "paddle", "paddle"
    elif kind in ("torch-zip", "torch-legacy"):
        reader = torch_reader.read_torch_zip if kind == "torch-zip" else torch_reader.read_torch_legacy
        tensors, notes = reader(raw)
        naming, semantics = "official", "torch"
    else:
        del raw
        tensors, meta = _read_safetensors(path)
        naming = "paddle" if _looks_paddle(tensors) else "official"
        semantics = meta.get("semantics")
        if semantics not in ("paddle", "torch"):
            # timm's files carry no semantics; this project's seeded random weights fit either.
            semantics = None if meta.get("generator") == "random_weights.py" else \
                ("paddle" if naming == "paddle" else "torch")
    tensors = _strip_module_prefix(tensors, notes)
    return Source(path, kind, tensors, naming, semantics, notes, sha256, meta)
