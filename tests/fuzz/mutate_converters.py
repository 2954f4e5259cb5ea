#!/usr/bin/env python3
"""mutate_converters.py: a mutation fuzzer for the weight converter (weights_tools/convert.py).

Takes the framework-written fixtures of tests/fixtures/convert/ (.pdparams pickles, zip and legacy torch
checkpoints, timm safetensors), mutates one at a time and runs

    python3 weights_tools/convert.py MUTATED --model GRAPH --out OUT [--force]

in a child process with a time and memory limit. Each run must end in one of:
  - exit 0 with the output written (a mutation the format tolerates, such as a changed weight value);
  - exit 1 or 2 with stderr holding exactly one error line "convert.py: ..." (warning lines
    "convert.py: warning: ..." may come before it), no Python traceback, and no output file left behind.
Anything else (a traceback, another exit status, a signal, a hang past the time limit, a file created
outside the run's folder) is a finding, saved with its stderr under the findings folder.

Mutations are byte-level (bit flips, interesting values, truncation, chunk deletion, duplication,
insertion, splicing two files) and format-aware, so they reach past the first checksum or parse: a member
of a zip checkpoint is mutated and the zip rewritten with valid CRCs; a number, dtype or key in a
safetensors header is replaced with the header length kept consistent; a pickle GLOBAL is swapped for
another module and name (os.system, builtins.eval, ... which must be refused, never called).

Standard library only (the converter itself uses numpy):

    python3 tests/fuzz/mutate_converters.py --seconds 600 [--seed N] [--python /usr/bin/python3]
"""
import argparse
import io
import json
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MANIFEST = os.path.join(ROOT, "tests", "fixtures", "convert", "manifest.json")
CONVERT = os.path.join(ROOT, "weights_tools", "convert.py")

INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x2E, 0x28, 0x29, 0x63, 0x71, 0x85, 0x94, 0x95]
INTERESTING_NUMBERS = ["-1", "0", "1", "255", "65536", "2147483648", "4294967296", "9223372036854775807",
                       "18446744073709551616", "1e309", "-0", "1.5", "null", "[]", "{}", "\"x\""]
DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "Q4", ""]
HOSTILE_GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
                   ("subprocess", "Popen"), ("builtins", "getattr"), ("__builtin__", "open"),
                   ("torch._utils", "_rebuild_tensor_v2"), ("collections", "OrderedDict"),
                   ("numpy.core.multiarray", "_reconstruct"), ("numpy", "dtype"), ("torch", "FloatStorage"),
                   ("torch", "HalfStorage"), ("torch", "LongStorage"), ("_codecs", "encode")]


# ---- byte-level mutations -----------------------------------------------------------------------------------

def flip_bits(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def set_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] = rng.choice(INTERESTING_BYTES)
    return bytes(data)


def set_int32(rng, data):
    if len(data) < 4:
        return data
    i = rng.randrange(len(data) - 3)
    value = rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(data), len(data) + 1, 1 << 24])
    return data[:i] + struct.pack("<I", value) + data[i + 4:]


def truncate(rng, data):
    return data[:rng.randrange(len(data))]


def delete_chunk(rng, data):
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, max(1, min(4096, len(data) - i))):]


def duplicate_chunk(rng, data):
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 512))
    k = rng.randrange(len(data))
    return data[:k] + data[i:j] + data[k:]


def insert_random(rng, data):
    k = rng.randrange(len(data) + 1)
    return data[:k] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[k:]


BYTE_MUTATIONS = [flip_bits, set_bytes, set_int32, truncate, delete_chunk, duplicate_chunk, insert_random]


def mutate_bytes(rng, data):
    if not data:
        return bytes([rng.randrange(256)])
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data = rng.choice(BYTE_MUTATIONS)(rng, data) or data[:1]
    return data


# ---- format-aware mutations --------------------------------------------------------------------------------

def mutate_pickle_global(rng, data):
    """Replaces one GLOBAL opcode ('c' module '\\n' name '\\n') with another module and name."""
    found = [m for m in re.finditer(rb"c([A-Za-z_][\w.]*)\n([A-Za-z_][\w.]*)\n", data)]
    if not found:
        return mutate_bytes(rng, data)
    m = rng.choice(found)
    module, name = rng.choice(HOSTILE_GLOBALS)
    return data[:m.start()] + b"c" + module.encode() + b"\n" + name.encode() + b"\n" + data[m.end():]


def mutate_zip(rng, data):
    """Mutates one member of a zip checkpoint (data.pkl most often) and rewrites the archive, so the CRCs
    are right and the mutation reaches the pickle or the storage reader."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(info, z.read(info)) for info in z.infolist()]
    except Exception:  # the source is not a readable zip: fall back to bytes
        return mutate_bytes(rng, data)
    if not members:
        return mutate_bytes(rng, data)
    pickles = [i for i, (info, _) in enumerate(members) if info.filename.endswith(".pkl")]
    k = rng.choice(pickles) if pickles and rng.random() < 0.7 else rng.randrange(len(members))
    info, body = members[k]
    action = rng.random()
    if action < 0.1:
        members.pop(k)  # a member missing
    elif action < 0.15:
        members.append(members[k])  # a member twice
    elif body and info.filename.endswith(".pkl") and rng.random() < 0.4:
        members[k] = (info, mutate_pickle_global(rng, body))
    else:
        members[k] = (info, mutate_bytes(rng, body))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info, body in members:
            with z.open(info.filename, "w") as f:  # re-added under the same name, fresh CRC
                f.write(body)
    return out.getvalue()


def mutate_safetensors(rng, data):
    """Edits the JSON header (a number, a dtype, a key, its nesting) and rewrites the length prefix."""
    if len(data) < 8:
        return mutate_bytes(rng, data)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        return mutate_bytes(rng, data)
    header, rest = data[8:8 + n].decode("latin-1"), data[8 + n:]
    action = rng.random()
    if action < 0.4:
        numbers = list(re.finditer(r"-?\d+", header))
        if numbers:
            m = rng.choice(numbers)
            header = header[:m.start()] + rng.choice(INTERESTING_NUMBERS) + header[m.end():]
    elif action < 0.55:
        dtypes = list(re.finditer(r'"(F64|F32|F16|BF16|I64|I32|I16|I8|U8|BOOL)"', header))
        if dtypes:
            m = rng.choice(dtypes)
            header = header[:m.start()] + '"' + rng.choice(DTYPES) + '"' + header[m.end():]
    elif action < 0.65:
        keys = list(re.finditer(r'"(dtype|shape|data_offsets|__metadata__)"', header))
        if keys:
            m = rng.choice(keys)
            header = header[:m.start()] + '"' + rng.choice(["dtype", "shape", "data_offsets", "x", ""]) + '"' + \
                header[m.end():]
    elif action < 0.7:
        header = header.replace('"shape":', '"shape":' + "[" * 5000, 1) + "]" * 5000
    elif action < 0.8:
        rest = mutate_bytes(rng, rest) if rest else rest
    else:
        header = mutate_bytes(rng, header.encode("latin-1")).decode("latin-1")
    body = header.encode("latin-1")
    length = len(body) if rng.random() < 0.9 else rng.choice([0, len(body) + 1, 1 << 40, (1 << 64) - 1])
    return struct.pack("<Q", length) + body + rest


def mutate(rng, source, data, others):
    if rng.random() < 0.05 and others:  # splice with another fixture
        other = rng.choice(others)
        cut = rng.randrange(1, max(2, min(len(data), len(other))))
        return data[:cut] + other[cut:]
    if data[:2] == b"PK" and rng.random() < 0.8:
        return mutate_zip(rng, data)
    if source.endswith(".safetensors") and rng.random() < 0.8:
        return mutate_safetensors(rng, data)
    if b"\n" in data[:200] and rng.random() < 0.2:
        return mutate_pickle_global(rng, data)
    return mutate_bytes(rng, data)


# ---- running one case --------------------------------------------------------------------------------------

def limit_child():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a runaway allocation fails, not the machine
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def check_run(python, src, graph, work, force, timeout):
    """Returns (problem, stderr, exit status): problem is None when the run ended cleanly."""
    out = os.path.join(work, "out.safetensors")
    args = [python, CONVERT, src, "--model", graph, "--out", out] + (["--force"] if force else [])
    before = set(os.listdir(work))
    try:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=work,
                           preexec_fn=limit_child)
    except subprocess.TimeoutExpired:
        return "hang: no exit within %d s" % timeout, "", None
    err = r.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l.strip()]
    created = set(os.listdir(work)) - before - {"out.safetensors"}
    problem = None
    if "Traceback" in err:
        problem = "traceback"
    elif r.returncode == 0:
        if not os.path.exists(out):
            problem = "exit 0 but no output file"
    elif r.returncode in (1, 2):
        errors = [l for l in lines if not l.startswith("convert.py: warning:")]
        if len(errors) != 1 or not errors[0].startswith("convert.py: "):
            problem = "exit %d without exactly one 'convert.py: ...' error line" % r.returncode
        elif os.path.exists(out):
            problem = "exit %d left an output file behind" % r.returncode
    else:
        problem = "exit status %d" % r.returncode
    if created:
        problem = (problem + "; " if problem else "") + "created files: %s" % sorted(created)
    if os.path.exists(out):
        os.remove(out)
    for name in created:
        path = os.path.join(work, name)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    return problem, err, r.returncode


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="run for this long (default 120)")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many runs (0: no limit)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter with numpy for convert.py")
    parser.add_argument("--findings", default=os.path.join(ROOT, "build-fuzz", "converter-findings"))
    parser.add_argument("--timeout", type=int, default=60, help="seconds one conversion may take")
    a = parser.parse_args(argv)
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # a member twice is a wanted mutation
    seed = a.seed if a.seed is not None else int(time.time())
    rng = random.Random(seed)
    with open(MANIFEST) as f:
        fixtures = [e for e in json.load(f)["fixtures"]]
    sources = []
    for e in fixtures:
        with open(os.path.join(ROOT, e["source"]), "rb") as f:
            sources.append((e["source"], os.path.join(ROOT, e["graph"]), f.read()))
    others = [d for _, _, d in sources]
    print("mutate_converters: seed %d, %d source files, %.0f s" % (seed, len(sources), a.seconds), flush=True)

    work = tempfile.mkdtemp(prefix="resnest_mutate_")
    counts = {"runs": 0, 0: 0, 1: 0, 2: 0, "findings": 0}
    start = time.time()
    try:
        while time.time() - start < a.seconds and (a.runs == 0 or counts["runs"] < a.runs):
            source, graph, data = rng.choice(sources)
            mutated = mutate(rng, source, data, others)
            src = os.path.join(work, "input" + os.path.splitext(source)[1])
            with open(src, "wb") as f:
                f.write(mutated)
            problem, err, rc = check_run(a.python, src, graph, work, rng.random() < 0.5, a.timeout)
            counts["runs"] += 1
            if problem:
                counts["findings"] += 1
                os.makedirs(a.findings, exist_ok=True)
                base = os.path.join(a.findings, "finding-%d-%d" % (seed, counts["runs"]))
                shutil.copy(src, base + os.path.splitext(source)[1])
                with open(base + ".txt", "w") as f:
                    f.write("source: %s\ngraph: %s\nproblem: %s\n\n%s" % (source, graph, problem, err))
                print("FINDING %s: %s (from %s)" % (base, problem, source), flush=True)
            else:
                counts[rc] += 1
            os.remove(src)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.time() - start
    print("mutate_converters: %d runs in %.0f s (%.1f/s): %d converted (exit 0), %d refused (exit 1), %d refused "
          "as usage (exit 2), %d findings (seed %d)" % (counts["runs"], elapsed, counts["runs"] / max(elapsed, 1e-9),
                                                        counts[0], counts[1], counts[2], counts["findings"], seed))
    return 1 if counts["findings"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
