#!/usr/bin/env python3
"""test_convert.py: weights_tools/convert.py and inspect.py end to end, with numpy and the standard library only.

  python3 tests/converters/test_convert.py BUILD/resnest [--manifest M.json ...] [--keep DIR]

1. Framework files (tests/fixtures/convert/manifest.json, written by make_converter_fixtures.py with
   paddle.save, torch.save and safetensors): each is converted, its tensors are compared exactly with the
   seeded weights it was made from (after PaddleClas's fc1-bias fold), and `resnest run` on the CPU must
   reproduce the framework's logits: max |d| / max |ref| <= 1e-4 and the same top-1 per image.
   --manifest adds more manifests (the full-size cases from make_converter_fixtures.py --full).
2. Reader details: numpy 1.x and 2.x pickles, protocols 2 and 5, a DataParallel 'module.' prefix, BF16
   safetensors, f16 output, unexpected/missing/mis-shaped tensors, NaN, f16 overflow, pooling semantics
   refused and forced.
3. Hostile files: pickles asking for os.system, exec, eval, subprocess.Popen, getattr, a pickled model
   class, torch's own loader; a truncated or corrupt zip; pickles lying about storage or array sizes; a
   .pdparams holding non-arrays. Each must be refused with exit status 1 and one line on stderr, write no
   output, and leave no side effect: the commands they ask for would create marker files, which must not
   exist. Fake `torch` and `paddle` packages on PYTHONPATH leave a marker if anything imports them.
4. inspect.py and the command-line usage errors.

Prints one line per check and, last, "N passed, M failed"; exits 1 if any check failed.
"""
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "weights_tools"))
import pickle_asm as pa  # noqa: E402
import safetensors_np  # noqa: E402

CONVERT = os.path.join(ROOT, "weights_tools", "convert.py")
INSPECT = os.path.join(ROOT, "weights_tools", "inspect.py")
DEFAULT_MANIFEST = os.path.join(ROOT, "tests", "fixtures", "convert", "manifest.json")
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny")
TOLERANCE = 1e-4  # max |d| / max |ref|, as the CPU engine's parity tests
# f16 weights round each value to 11 significant bits (relative 2^-11 = 4.9e-4); through the tiny networks that
# moved the logits by up to 1.2e-3 of max |ref| when measured, so 5e-3 leaves room without hiding a wrong map.
F16_TOLERANCE = 5e-3


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def ok(self, name, detail=""):
        self.passed += 1
        print("ok    %s%s" % (name, ": " + detail if detail else ""))

    def fail(self, name, detail):
        self.failed += 1
        print("FAIL  %s: %s" % (name, detail))

    def expect(self, cond, name, detail):
        (self.ok if cond else self.fail)(name, detail)
        return cond


class Env:
    """Temporary folder, marker paths, and an environment whose PYTHONPATH holds fake torch/paddle packages."""

    def __init__(self, binary, keep):
        self.binary = binary
        self.tmp = keep or tempfile.mkdtemp(prefix="resnest_convert_test_")
        os.makedirs(self.tmp, exist_ok=True)
        self.markers = os.path.join(self.tmp, "markers")
        os.makedirs(self.markers, exist_ok=True)
        fake = os.path.join(self.tmp, "fake_packages")
        for pkg in ("torch", "paddle"):
            os.makedirs(os.path.join(fake, pkg), exist_ok=True)
            with open(os.path.join(fake, pkg, "__init__.py"), "w") as f:
                f.write("open(%r, 'w').close()\nraise ImportError('fake %s: the converter must not import it')\n"
                        % (self.marker("imported_" + pkg), pkg))
        self.env = dict(os.environ, PYTHONPATH=fake, PYTHONDONTWRITEBYTECODE="1")

    def marker(self, name):
        return os.path.join(self.markers, name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p


def run(env, args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.env, cwd=ROOT)
    return r.returncode, r.stdout, r.stderr


def convert(env, src, model, out, *flags):
    return run(env, [sys.executable, CONVERT, src, "--model", model, "--out", out] + list(flags))


def engine_logits(env, model, weights, x_path, name):
    y_path = env.path(name + ".logits.npy")
    rc, out, err = run(env, [env.binary, "run", "--model", model, "--weights", weights, "--input", x_path,
                             "--output", y_path, "--threads", "1"])
    if rc != 0:
        return None, err.strip()
    return np.load(y_path), ""


def max_rel(y, ref):
    return float(np.max(np.abs(y.astype(np.float64) - ref.astype(np.float64))) / np.max(np.abs(ref)))


def graph_of(tiny):
    return os.path.join(TINY, tiny + ".json")


# ------------------------------------------------------------------------------------- 1. framework files

def expected_tensors(reference, entry):
    """The seeded weights as the converted file must hold them: PaddleClas has no fc1 bias (zeros) and its BN
    mean is the official mean minus that bias (make_fixtures.py's fold); a dropped fc2 bias is zeros."""
    exp = dict(reference)
    if entry["format"] == "pdparams":
        for name, bias in reference.items():
            if name.endswith(".conv2.fc1.bias"):
                mean = name[: -len("fc1.bias")] + "bn1.running_mean"
                exp[mean] = (reference[mean].astype(np.float32) - bias.astype(np.float32)).astype(np.float32)
                exp[name] = np.zeros_like(bias)
    if entry.get("zero_fc2_bias"):
        for name in reference:
            if name.endswith(".conv2.fc2.bias"):
                exp[name] = np.zeros_like(reference[name])
    return exp


def resolve(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def check_fixture(c, env, entry):
    name = "fixture %s (%s, %s)" % (entry["name"], entry["format"], entry["framework"])
    src = resolve(entry["source"])
    out = env.path(entry["name"] + ".safetensors")
    rc, stdout, stderr = convert(env, src, resolve(entry["graph"]), out)
    if not c.expect(rc == 0, name + " converts", "exit %d %s" % (rc, stderr.strip())):
        return
    warned = "no fc2 bias" in stderr
    c.expect(warned == bool(entry.get("zero_fc2_bias")), name + " fc2-bias warning",
             "warning %s, expected %s" % ("given" if warned else "absent", bool(entry.get("zero_fc2_bias"))))
    tensors, meta = safetensors_np.read(out)
    with open(src, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    c.expect(meta.get("source_sha256") == sha and meta.get("converter_version") and
             meta.get("source_format") == entry["format"] and meta.get("semantics") == entry["semantics"],
             name + " metadata", "%s" % {k: meta.get(k) for k in ("source_format", "semantics", "converter_version")})
    reference, _ = safetensors_np.read(resolve(entry["reference_weights"]))
    exp = expected_tensors(reference, entry)
    differ = [k for k in exp if k not in tensors or tensors[k].shape != exp[k].shape
              or not np.array_equal(tensors[k], exp[k])]
    extra = sorted(set(tensors) - set(exp))
    c.expect(not differ and not extra, name + " tensors equal the seeded weights",
             "%d tensors, differing %s, extra %s" % (len(tensors), differ[:3], extra[:3]))
    y, err = engine_logits(env, resolve(entry["graph"]), out, resolve(entry["input"]), entry["name"])
    if not c.expect(y is not None, name + " runs", err):
        return
    ref = np.load(resolve(entry["expected"]))
    d = max_rel(y, ref)
    same_top1 = bool(np.array_equal(np.argmax(y, 1), np.argmax(ref, 1)))
    c.expect(d <= TOLERANCE and same_top1, name + " logits vs " + entry["reference"],
             "max|d|/max|ref| %.2e (limit %.0e), same top-1 %s" % (d, TOLERANCE, same_top1))


# ------------------------------------------------------------------------------------- 2. reader details

def pdparams_arrays():
    """The arrays of the committed PaddleClas fixture, read back by the project's reader."""
    import pdparams_reader
    with open(os.path.join(ROOT, "tests", "fixtures", "convert", "paddle_r2_k1.pdparams"), "rb") as f:
        tensors, _, _ = pdparams_reader.read_pdparams(f.read())
    return tensors


def same_file_tensors(a, b):
    ta, _ = safetensors_np.read(a)
    tb, _ = safetensors_np.read(b)
    return list(ta) == list(tb) and all(np.array_equal(ta[k], tb[k]) and ta[k].dtype == tb[k].dtype for k in ta)


def check_reader_details(c, env):
    paddle_graph, torch_graph = graph_of("tiny_r2_k1_paddle"), graph_of("tiny_r2_k1_torch")
    base_src = os.path.join(ROOT, "tests", "fixtures", "convert", "paddle_r2_k1.pdparams")
    base = env.path("base.safetensors")
    rc, _, err = convert(env, base_src, paddle_graph, base)
    c.expect(rc == 0, "base PaddleClas conversion", err.strip())
    arrays = pdparams_arrays()

    # numpy 1.x (numpy.core.*) and 2.x (numpy._core.*) pickles, protocol 2 (bytes via _codecs.encode) and 5.
    p2 = pickle.dumps(dict(arrays), protocol=2)
    variants = {"numpy 1.x names, protocol 2": p2.replace(b"numpy._core.", b"numpy.core."),
                "numpy 2.x names, protocol 2": p2.replace(b"numpy.core.", b"numpy._core."),
                "protocol 5 (_frombuffer)": pickle.dumps(dict(arrays), protocol=5),
                "(name, array) tuples": pickle.dumps({k: ("generated_tensor_%d" % i, v)
                                                      for i, (k, v) in enumerate(arrays.items())}, protocol=4)}
    for label, data in variants.items():
        src = env.write("variant.pdparams", data)
        out = env.path("variant.safetensors")
        rc, _, err = convert(env, src, paddle_graph, out)
        c.expect(rc == 0 and same_file_tensors(out, base), ".pdparams with " + label, err.strip() or "same tensors")
    c.expect(b"numpy.core.multiarray" in variants["numpy 1.x names, protocol 2"]
             and b"numpy._core.multiarray" in variants["numpy 2.x names, protocol 2"]
             and b"_frombuffer" in variants["protocol 5 (_frombuffer)"], "pickle variants name what they test", "")

    # Unexpected source tensors are listed, not written.
    extra = dict(arrays, **{"head.extra.weight": np.ones(3, np.float32)})
    src = env.write("extra.pdparams", pickle.dumps(extra))
    rc, _, err = convert(env, src, paddle_graph, env.path("extra.safetensors"))
    c.expect(rc == 0 and "1 tensor the graph does not use" in err and "head.extra.weight" in err,
             "unexpected source tensor listed", err.strip())

    # Missing and mis-shaped tensors name the tensor (and its PaddleClas name).
    missing = {k: v for k, v in arrays.items() if k != "layer1.layer1_bottleneck_0.conv1._conv.weight"}
    src = env.write("missing.pdparams", pickle.dumps(missing))
    rc, _, err = convert(env, src, paddle_graph, env.path("missing.safetensors"))
    c.expect(rc == 1 and "'layer1.0.conv1.weight' is missing" in err
             and "layer1.layer1_bottleneck_0.conv1._conv.weight" in err and err.count("\n") == 1,
             "missing tensor refused", err.strip())
    rc, _, err = convert(env, base_src, graph_of("tiny_r2_k2_paddle"), env.path("shape.safetensors"))
    c.expect(rc == 1 and "has shape" in err and "the graph needs" in err and err.count("\n") == 1,
             "shape mismatch refused", err.strip())
    bad = dict(arrays)
    bad["stem.conv1._batch_norm._variance"] = np.full_like(arrays["stem.conv1._batch_norm._variance"], np.nan)
    src = env.write("nan.pdparams", pickle.dumps(bad))
    rc, _, err = convert(env, src, paddle_graph, env.path("nan.safetensors"))
    c.expect(rc == 1 and "'conv1.1.running_var' holds" in err and "NaN" in err, "NaN weights refused", err.strip())
    big = dict(arrays)
    big["out.bias"] = np.full_like(arrays["out.bias"], 1e6)
    src = env.write("big.pdparams", pickle.dumps(big))
    rc, _, err = convert(env, src, paddle_graph, env.path("big.safetensors"), "--dtype", "f16")
    c.expect(rc == 1 and "'fc.bias'" in err and "f16" in err, "f16 overflow refused", err.strip())

    # Pooling semantics: refused with exit 2 unless forced.
    out = env.path("forced.safetensors")
    rc, _, err = convert(env, base_src, torch_graph, out)
    c.expect(rc == 2 and "--force" in err and "PaddleClas" in err and err.count("\n") == 1 and not os.path.exists(out),
             "PaddleClas weights onto a torch-semantics graph refused", err.strip())
    rc, _, err = convert(env, base_src, torch_graph, out, "--force")
    meta = safetensors_np.read(out)[1] if rc == 0 else {}
    c.expect(rc == 0 and "warning" in err and meta.get("forced_onto_semantics") == "torch",
             "--force converts anyway, with a warning", err.strip())
    timm_zip = os.path.join(ROOT, "tests", "fixtures", "convert", "timm_r2_k1_zip.pth")
    rc, _, err = convert(env, timm_zip, paddle_graph, env.path("t.safetensors"))
    c.expect(rc == 2 and "official ResNeSt / timm" in err, "timm weights onto a PaddleClas graph refused",
             err.strip())

    # f16 output, then through the engine.
    tiny = "tiny_r2_k1_torch"
    out = env.path("f16.safetensors")
    rc, _, err = convert(env, timm_zip, torch_graph, out, "--dtype", "f16")
    tensors = safetensors_np.read(out)[0] if rc == 0 else {}
    all_f16 = bool(tensors) and all(t.dtype == np.float16 for t in tensors.values())
    y, e = engine_logits(env, torch_graph, out, os.path.join(TINY, tiny + ".input.npy"), "f16")
    ref = np.load(os.path.join(ROOT, "tests", "fixtures", "convert", "timm_r2_k1_zip.expected.npy"))
    d = max_rel(y, ref) if y is not None else float("inf")
    c.expect(rc == 0 and all_f16 and d <= F16_TOLERANCE, "--dtype f16 (F16 tensors, engine logits)",
             "max|d|/max|ref| %.2e (limit %.0e) %s" % (d, F16_TOLERANCE, err.strip() or e))
    # ... and back: a safetensors source converts to f32 exactly (f16 values are exact in f32).
    rc, _, err = convert(env, out, torch_graph, env.path("f32.safetensors"), "--dtype", "f32")
    back = safetensors_np.read(env.path("f32.safetensors"))[0] if rc == 0 else {}
    c.expect(rc == 0 and all(np.array_equal(back[k], tensors[k].astype(np.float32)) for k in tensors),
             "safetensors source, --dtype f32", err.strip())

    # A torch zip written without torch (pickle_asm), with a DataParallel 'module.' prefix.
    ref_weights, _ = safetensors_np.read(os.path.join(TINY, tiny + ".safetensors"))
    raw = pa.torch_zip({"module." + k: v for k, v in ref_weights.items()})
    rc, stdout, err = convert(env, env.write("module.pth", raw), torch_graph, env.path("module.safetensors"))
    got = safetensors_np.read(env.path("module.safetensors"))[0] if rc == 0 else {}
    c.expect(rc == 0 and "'module.' prefix" in stdout and all(np.array_equal(got[k], ref_weights[k]) for k in got)
             and len(got) == len(ref_weights), "hand-written torch zip with 'module.' prefix", err.strip())
    raw = pa.torch_legacy(ref_weights)
    rc, _, err = convert(env, env.write("legacy.pth", raw), torch_graph, env.path("legacy.safetensors"))
    got = safetensors_np.read(env.path("legacy.safetensors"))[0] if rc == 0 else {}
    c.expect(rc == 0 and all(np.array_equal(got[k], ref_weights[k]) for k in ref_weights),
             "hand-written legacy torch file", err.strip())

    # BF16 safetensors: decoded exactly, written as F32.
    bf16 = {k: (v.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16) for k, v in ref_weights.items()}
    src = write_bf16_safetensors(env.path("bf16.safetensors"), bf16)
    rc, _, err = convert(env, src, torch_graph, env.path("bf16_out.safetensors"))
    got = safetensors_np.read(env.path("bf16_out.safetensors"))[0] if rc == 0 else {}
    exact = bool(got) and all(np.array_equal(got[k], (bf16[k].astype(np.uint32) << 16).view(np.float32))
                              and got[k].dtype == np.float32 for k in bf16)
    c.expect(rc == 0 and exact, "BF16 safetensors source (decoded exactly, written F32)", err.strip())


def write_bf16_safetensors(path, tensors):
    """A safetensors file of BF16 tensors (name -> uint16 bit patterns); safetensors_np writes no BF16."""
    header, blobs, offset = {}, [], 0
    for name, bits in tensors.items():
        data = bits.astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(bits.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


# ------------------------------------------------------------------------------------- 3. hostile files

def hostile_cases(env):
    """(name, file bytes, text the refusal must contain, marker the file's command would create)."""
    m = {k: env.marker(k) for k in ("system_pth", "system_legacy", "system_pdparams", "exec", "eval", "popen",
                                    "getattr", "inst", "torch_loader", "numpy_gadget", "state_value")}
    touch = lambda path: pa.call(pa.global_("posix", "system"), pa.string("touch " + path))  # noqa: E731
    weights, _ = safetensors_np.read(os.path.join(TINY, "tiny_r2_k1_torch.safetensors"))
    small = {k: weights[k] for k in list(weights)[:3]}
    zip_fixture = open(os.path.join(ROOT, "tests", "fixtures", "convert", "timm_r2_k1_zip.pth"), "rb").read()
    pdparams_fixture = open(os.path.join(ROOT, "tests", "fixtures", "convert", "paddle_r2_k1.pdparams"), "rb").read()
    legacy = pa.torch_legacy(small)
    cases = [
        ("torch zip whose pickle calls os.system",
         pa.torch_zip(small, data_pkl=pa.pickle_of(pa.dict_of((pa.string("w"), touch(m["system_pth"]))))),
         "global 'posix.system'", m["system_pth"]),
        ("torch zip: os.system beside real tensors",
         pa.torch_zip(small, extra_items=[(pa.string("zz"), touch(m["state_value"]))]),
         "global 'posix.system'", m["state_value"]),
        ("legacy torch file whose pickle calls os.system",
         pa.torch_legacy(small, data_pkl=pa.pickle_of(touch(m["system_legacy"]))), "global 'posix.system'",
         m["system_legacy"]),
        (".pdparams calling os.system",
         pa.pickle_of(pa.dict_of((pa.string("stem.conv1._conv.weight"), touch(m["system_pdparams"])))),
         "global 'posix.system'", m["system_pdparams"]),
        (".pdparams calling builtins.exec",
         pa.pickle_of(pa.call(pa.global_("builtins", "exec"), pa.string("open(%r, 'w').close()" % m["exec"]))),
         "global 'builtins.exec'", m["exec"]),
        (".pdparams calling builtins.eval (protocol-2 name __builtin__)",
         pa.pickle_of(pa.call(pa.global_("__builtin__", "eval"), pa.string("open(%r, 'w')" % m["eval"]))),
         "global '__builtin__.eval'", m["eval"]),
        ("torch zip calling subprocess.Popen",
         pa.torch_zip(small, data_pkl=pa.pickle_of(pa.call(pa.global_("subprocess", "Popen"),
                                                           pa.list_of(pa.string("touch"), pa.string(m["popen"]))))),
         "global 'subprocess.Popen'", m["popen"]),
        (".pdparams reaching eval through builtins.getattr",
         pa.pickle_of(pa.call(pa.call(pa.global_("builtins", "getattr"), pa.global_("builtins", "__dict__"),
                                      pa.string("eval")), pa.string("open(%r, 'w')" % m["getattr"]))),
         "global 'builtins.getattr'", m["getattr"]),
        ("protocol-0 INST opcode naming os.system",
         b"\x80\x02(S'touch " + m["inst"].encode() + b"'\nios\nsystem\n.", "global 'os.system'", m["inst"]),
        ("torch zip asking for torch.storage._load_from_bytes (torch's own loader)",
         pa.torch_zip(small, data_pkl=pa.pickle_of(pa.call(pa.global_("torch.storage", "_load_from_bytes"),
                                                           pa.raw_bytes(b"x")))),
         "global 'torch.storage._load_from_bytes'", m["torch_loader"]),
        (".pdparams using numpy's runstring gadget",
         pa.pickle_of(pa.call(pa.global_("numpy.testing._private.utils", "runstring"),
                              pa.string("open(%r, 'w')" % m["numpy_gadget"]), pa.dict_of())),
         "global 'numpy.testing._private.utils.runstring'", m["numpy_gadget"]),
        ("torch zip holding a pickled model object",
         pa.torch_zip(small, data_pkl=pa.pickle_of(pa.call(pa.global_("copyreg", "_reconstructor"),
                                                           pa.global_("timm.models.resnet", "ResNet"),
                                                           pa.global_("builtins", "object"), pa.none()))),
         "not a state dict", None),
        ("truncated torch zip", zip_fixture[: len(zip_fixture) // 2], "truncated or corrupt", None),
        ("torch zip with a corrupted storage (CRC)", corrupt_zip_entry(zip_fixture), "Bad CRC-32", None),
        ("torch zip lying about a storage's size",
         pa.torch_zip(small, claimed_numel={list(small)[0]: 10 ** 6}), "lies about storage", None),
        ("torch zip whose tensor view runs past its storage",
         pa.torch_zip(small, views={list(small)[1]: (2, [100], [1])}), "lies about its storage", None),
        ("torch zip missing a storage entry", pa.torch_zip(small, drop_entries=("0",)), "has no entry", None),
        ("torch zip whose pickle rewrites a storage reference (BUILD)",
         pa.torch_zip(small, data_pkl=pa.pickle_of(pa.dict_of((pa.string("conv1.0.weight"), tampered_tensor())))),
         "tries to modify a StorageRef", None),
        ("legacy torch file lying about a storage's size",
         pa.torch_legacy(small, record_numel={"0": 7}), "lies about storage '0'", None),
        ("truncated legacy torch file", legacy[:-10], "truncated", None),
        (".pdparams holding a string", pa.pickle_of(pa.dict_of((pa.string("w"), pa.string("hello")))),
         "'w' is a str, not an array", None),
        (".pdparams holding a nested dict among arrays",
         pa.pickle_of(pa.dict_of((pa.string("a"), pa.numpy_array([2], b"\0" * 8)),
                                 (pa.string("b"), pa.dict_of((pa.string("c"), pa.integer(1)))))),
         "'b' is a dict, not an array", None),
        (".pdparams holding only a list", pa.pickle_of(pa.list_of(pa.integer(1))), "holds a list, not a dict", None),
        (".pdparams array lying about its size",
         pa.pickle_of(pa.dict_of((pa.string("w"), pa.numpy_array([1000], b"\0" * 16)))),
         "lies about the array's size", None),
        (".pdparams object-dtype array",
         pa.pickle_of(pa.dict_of((pa.string("w"), pa.numpy_array([1], b"\0" * 8, code="O8")))),
         "only numeric arrays", None),
        ("truncated .pdparams", pdparams_fixture[: len(pdparams_fixture) // 3], "not a valid pickle", None),
        ("pickle with a huge declared length", b"\x80\x02\x8e" + struct.pack("<Q", 2 ** 62) + b"x",
         "not a valid pickle", None),
        ("pickle whose memo index would cost gigabytes", b"\x80\x02N" + b"r" + struct.pack("<I", 2 ** 31) + b".",
         "memo index", None),
        ("empty file", b"", "not a weight file", None),
        ("text file", b"hello, world\n" * 10, "not a weight file", None),
        ("safetensors header past the end", struct.pack("<Q", 10 ** 9) + b"{}", "not a weight file", None),
        ("safetensors whose shape overflows 64 bits",
         safetensors_bytes(b'{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}', b""),
         "do not fit shape", None),
        ("safetensors with lying data_offsets",
         safetensors_bytes(b'{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}', b"\0" * 8),
         "do not fit shape", None),
    ]
    return cases


def safetensors_bytes(header, data):
    header = header + b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def tampered_tensor():
    """A tensor whose storage reference the pickle then edits with BUILD (a negative offset into the file)."""
    pid = pa.tuple_of(pa.string("storage"), pa.global_("torch", "FloatStorage"), pa.string("0"), pa.string("cpu"),
                      pa.integer(216))
    storage = pa.build(pa.persistent(pid), pa.tuple_of(pa.none(), pa.dict_of((pa.string("view_offset"),
                                                                            pa.integer(-100)))))
    return pa.call(pa.global_("torch._utils", "_rebuild_tensor_v2"), storage, pa.integer(0), pa.tuple_of(pa.integer(216)),
                   pa.tuple_of(pa.integer(1)), pa.boolean(False), pa.call(pa.global_("collections", "OrderedDict")))


def corrupt_zip_entry(raw):
    """Flips one byte inside the largest storage entry's data, leaving the zip's structure intact."""
    z = zipfile.ZipFile(io.BytesIO(raw))
    info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data = bytearray(raw)
    data[at] ^= 0x55
    return bytes(data)


def check_hostile(c, env):
    graph = graph_of("tiny_r2_k1_torch")
    for i, (name, data, expect, marker) in enumerate(hostile_cases(env)):
        src = env.write("hostile_%02d.bin" % i, data)
        out = env.path("hostile_%02d.safetensors" % i)
        rc, stdout, err = convert(env, src, graph, out, "--force")
        one_line = err.count("\n") == 1 and "Traceback" not in err
        no_effect = (marker is None or not os.path.exists(marker)) and not os.path.exists(out)
        leftovers = [f for f in os.listdir(env.tmp) if f.startswith(os.path.basename(out) + ".tmp")]
        c.expect(rc == 1 and expect in err and one_line and no_effect and not leftovers, "hostile: " + name,
                 "exit %d, %s%s" % (rc, err.strip(), "" if no_effect else " -- SIDE EFFECT"))
        if marker is not None and "system" in name and "pdparams" not in name:
            rc, _, ierr = run(env, [sys.executable, INSPECT, src])
            c.expect(rc == 1 and expect in ierr and not os.path.exists(marker), "hostile (inspect.py): " + name,
                     ierr.strip())
    written = sorted(os.listdir(env.markers))
    c.expect(written == [], "no marker file exists after the hostile files", "found %s" % written)


# ------------------------------------------------------------------------------------- 4. inspect and usage

def check_inspect_and_usage(c, env):
    graph = graph_of("tiny_r2_k1_torch")
    src = os.path.join(ROOT, "tests", "fixtures", "convert", "timm_r2_k1_legacy.pth")
    out = env.path("inspect_me.safetensors")
    convert(env, src, graph, out)
    tensors, meta = safetensors_np.read(out)
    rc, stdout, err = run(env, [sys.executable, INSPECT, out])
    name = "layer1.0.conv2.conv.weight"
    t = tensors[name].astype(np.float64)
    row = [line for line in stdout.splitlines() if line.startswith(name + " ")]
    fields = row[0].split() if row else []
    shape = "[%s]" % ", ".join(map(str, t.shape))
    want = [str(tensors[name].nbytes)] + ["%.6g" % v for v in (t.min(), t.max(), t.mean(), t.std())]
    c.expect(rc == 0 and "source_sha256: " + meta["source_sha256"] in stdout and "converter_version" in stdout
             and len(row) == 1 and fields[1] == "F32" and shape in row[0] and fields[-5:] == want,
             "inspect.py table (dtype, shape, bytes, min/max/mean/std, metadata)", " ".join(fields) or err.strip())
    rc, stdout, err = run(env, [sys.executable, INSPECT, out, "--json"])
    try:
        doc = json.loads(stdout)
        rows = {r["name"]: r for r in doc["tensors"]}
        good = len(rows) == len(tensors) and rows[name]["shape"] == list(t.shape) \
            and abs(rows[name]["std"] - t.std()) < 1e-12 and doc["metadata"] == meta
    except (ValueError, KeyError):
        good = False
    c.expect(rc == 0 and good, "inspect.py --json", err.strip() or "%d tensors" % len(tensors))
    rc, stdout, err = run(env, [sys.executable, INSPECT, os.path.join(ROOT, "tests", "fixtures", "convert",
                                                                      "paddle_r2_k2_tuples.pdparams")])
    c.expect(rc == 0 and "layer1.layer1_bottleneck_0.conv2.conv3.bias" in stdout and "key 'model'" in stdout,
             "inspect.py on a .pdparams (source names)", err.strip())

    # Graphs a converter cannot read: nested past Python's recursion limit, a convolution of 0 groups; and the
    # graph itself as --out (by a symlink).
    deep = env.path("deep.json")
    with open(deep, "w") as f:
        f.write("[" * 100000 + "]" * 100000)
    with open(graph) as f:
        doc = json.load(f)
    next(n for n in doc["nodes"] if n["op"] == "conv2d")["attrs"]["groups"] = 0
    groups0 = env.path("groups0.json")
    with open(groups0, "w") as f:
        json.dump(doc, f)
    graph_link = env.path("graph_link.json")
    shutil.copy(graph, env.path("graph_copy.json"))
    os.symlink(env.path("graph_copy.json"), graph_link)
    usage = [("no arguments", [], 2, "required"),
             ("--out is the graph", [src, "--model", env.path("graph_copy.json"), "--out", graph_link], 2,
              "must not be the --model graph file"),
             ("a graph nested too deep", [src, "--model", deep, "--out", out], 1, "cannot read the graph"),
             ("a convolution of 0 groups", [src, "--model", groups0, "--out", out], 1, "cannot read the graph"),
             ("unknown flag", [src, "--model", graph, "--out", out, "--bogus"], 2, "unrecognized"),
             ("bad --dtype", [src, "--model", graph, "--out", out, "--dtype", "f8"], 2, "invalid choice"),
             ("--out is the source", [src, "--model", graph, "--out", src], 2, "must not be the source"),
             ("missing source file", [env.path("nope.pth"), "--model", graph, "--out", out], 1, "cannot read"),
             ("missing graph", [src, "--model", env.path("nope.json"), "--out", out], 1, "cannot read the graph"),
             ("unwritable output", [src, "--model", graph, "--out", env.path("no/such/dir/w.safetensors")], 1,
              "cannot write")]
    for label, args, code, text in usage:
        rc, _, err = run(env, [sys.executable, CONVERT] + args)
        c.expect(rc == code and text in err and err.count("\n") == 1 and "Traceback" not in err,
                 "usage: " + label, "exit %d, %s" % (rc, err.strip()))
    # The random tools: one line and exit 1 or 2, never a traceback.
    tools = os.path.join(ROOT, "weights_tools")
    for label, args, code, text in [
            ("random_weights: a graph it cannot read", ["random_weights.py", "--model", groups0, "--seed", "1",
                                                        "--out", out], 1, "cannot make weights for this graph"),
            ("random_weights: unwritable --out", ["random_weights.py", "--model", graph, "--seed", "1",
                                                  "--out", env.path("no/such/dir/w.safetensors")], 1, "cannot write --out"),
            ("random_input: unwritable --out", ["random_input.py", "--shape", "1,3,8,8", "--seed", "1",
                                                "--out", env.path("no/such/dir/x.npy")], 1, "cannot write --out"),
            ("random_input: past the .npy limit", ["random_input.py", "--shape", "100000,3,224,224", "--seed", "1",
                                                   "--out", env.path("x.npy")], 2, "more than 2^30 elements")]:
        rc, _, err = run(env, [sys.executable, os.path.join(tools, args[0])] + args[1:])
        c.expect(rc == code and text in err and "Traceback" not in err, label, "exit %d, %s" % (rc, err.strip()[-300:]))
    rc, stdout, _ = run(env, [sys.executable, CONVERT, "--help"])
    c.expect(rc == 0 and "--dtype" in stdout and "PaddleClas" in stdout, "convert.py --help", "")
    rc, stdout, _ = run(env, [sys.executable, INSPECT, "--help"])
    c.expect(rc == 0 and "--json" in stdout, "inspect.py --help", "")


def main(argv):
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: test_convert.py BUILD/resnest [--manifest M.json ...] [--keep DIR]")
    binary, manifests, keep = argv[0], [DEFAULT_MANIFEST], None
    rest = argv[1:]
    while rest:
        flag = rest.pop(0)
        if flag in ("--manifest", "--keep") and rest:
            value = rest.pop(0)
            if flag == "--manifest":
                manifests.append(value)
            else:
                keep = value
        else:
            sys.exit("test_convert.py: unknown argument %r" % flag)
    env = Env(os.path.abspath(binary), keep)
    c = Checks()
    try:
        for path in manifests:
            with open(path) as f:
                for entry in json.load(f)["fixtures"]:
                    check_fixture(c, env, entry)
        check_reader_details(c, env)
        check_hostile(c, env)
        check_inspect_and_usage(c, env)
        imported = [p for p in ("torch", "paddle") if os.path.exists(env.marker("imported_" + p))]
        c.expect(not imported, "nothing imported torch or paddle", "imported: %s" % imported)
    finally:
        if keep is None:
            shutil.rmtree(env.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
