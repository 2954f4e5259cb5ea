#!/usr/bin/env python3
# parity_timm.py: checks the logits of `resnest run` against timm running the same network with the same
# weights, per model graph and precision, and exits 1 when a check fails.
#
# Run from the repository root on the GPU machine (needs numpy, torch and timm; nothing else):
#
#   python3 bench/parity_timm.py --resnest build/resnest --json build/parity_timm.json
#
# and as a dry run on a CPU-only machine with a CPU build:
#
#   /work/fixenv/bin/python bench/parity_timm.py --backend cpu --device cpu --precision fp32 --batch 2
#
# For each graph it draws seeded weights with weights_tools/random_weights.py and a fresh random-normal
# input (the seed is printed; --input-seed repeats a run), runs our CLI once per precision, and runs timm
# (bench/timm_ref.py builds it as tests/fixtures/make_fixtures.py does). The reference is timm in float32
# with TF32 off; every difference is computed in float64. Criteria:
#   fp32   max|d|/max|ref| <= 1e-4 and top-1 agreement 100 %
#   tf32   max|d|/max|ref| <= 5e-3
#   fp16   top-1 agreement >= 0.99 and minimum per-image cosine similarity >= 0.999
# timm's own result at the same precision (TF32 on; half + channels_last) is reported beside ours.
"""Check `resnest run` logits against timm (same graph, same seeded weights) per model and precision.

The reference is timm in float32 with TF32 off; differences are computed in float64. Criteria: fp32
max|d|/max|ref| <= 1e-4 and top-1 100%; tf32 max|d|/max|ref| <= 5e-3; fp16 top-1 agreement >= 0.99 and
min cosine >= 0.999. Exit status: 0 all checks pass, 1 a check failed, 2 bad usage or a missing package.
"""
import argparse
import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_ref  # noqa: E402
from timm_ref import ROOT, UserError  # noqa: E402

PROG = "parity_timm.py"
DEFAULT_MODELS = ["models/resnest50d_torch.json", "models/resnest50_fast_1s1x64d_torch.json",
                  "models/resnest50.json", "models/resnest50_fast_1s1x64d.json"]
PRECISIONS = ["fp32", "tf32", "fp16"]
CRITERIA = {
    "fp32": {"max_rel": 1e-4, "min_top1": 1.0},
    "tf32": {"max_rel": 5e-3},
    "fp16": {"min_top1": 0.99, "min_cosine": 0.999},
}
RANDOM_WEIGHTS = os.path.join(ROOT, "weights_tools", "random_weights.py")


# ----------------------------------------------------------------------------------------------- arguments

def parse_args(argv):
    p = timm_ref.Parser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="GRAPH",
                   help="resnest-graph files (default: the four committed graphs)")
    p.add_argument("--precision", nargs="+", default=["fp32", "fp16"], choices=PRECISIONS,
                   help="precisions to check (default: fp32 fp16)")
    p.add_argument("--batch", type=int, default=8, help="images per input (default 8)")
    p.add_argument("--resnest", default=os.path.join(ROOT, "build", "resnest"),
                   help="the resnest binary (default: build/resnest in the repository)")
    p.add_argument("--backend", default="cuda", choices=["cuda", "cpu"],
                   help="backend for `resnest run` (default cuda; cpu for a dry run)")
    p.add_argument("--run-flags", default="", metavar="FLAGS",
                   help='more flags for `resnest run` as one string, written with "=", e.g. '
                        '--run-flags="--no-graph --passes off"')
    p.add_argument("--device", choices=["cuda", "cpu"], default=None,
                   help="where timm runs (default: cuda when torch sees a GPU, else cpu)")
    p.add_argument("--seed", type=int, default=1, help="weight seed for random_weights.py (default 1)")
    p.add_argument("--input-seed", type=int, default=None,
                   help="seed of the random-normal input (default: a fresh one, printed)")
    p.add_argument("--workdir", default=None,
                   help="keep weights, inputs and outputs here (default: a temporary folder, removed)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds allowed for each `resnest run` (default 600)")
    p.add_argument("--no-fp64", action="store_true",
                   help="skip the float64 timm run that measures the reference's own float32 noise")
    p.add_argument("--json", default=None, metavar="FILE", help="write every number to FILE")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args):
    if args.batch < 1 or args.batch > 4096:
        raise UserError("--batch %d: give a batch size in [1, 4096]" % args.batch)
    if args.seed < 0:
        raise UserError("--seed %d: give a non-negative integer" % args.seed)
    if args.input_seed is not None and args.input_seed < 0:
        raise UserError("--input-seed %d: give a non-negative integer" % args.input_seed)
    if args.timeout <= 0:
        raise UserError("--timeout must be positive")
    if not (os.path.isfile(args.resnest) and os.access(args.resnest, os.X_OK)):
        raise UserError("--resnest %s: no executable there; build the project (cmake) or pass the binary's path"
                        % args.resnest)
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise UserError("--json %s: folder %s does not exist" % (args.json, folder))
    args.precision = list(dict.fromkeys(args.precision))
    try:
        args.run_flag_list = shlex.split(args.run_flags)
    except ValueError as e:
        raise UserError("--run-flags %r: %s" % (args.run_flags, e))
    reserved = {"--model", "--weights", "--input", "--output", "--backend", "--precision"}
    clash = [f for f in args.run_flag_list if f.split("=")[0] in reserved]
    if clash:
        raise UserError("--run-flags: %s is set by this script; use its own flags instead" % clash[0])


def pick_device(torch, requested):
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch %s sees no CUDA device; use --device cpu for a dry run"
                        % torch.__version__)
    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


# ------------------------------------------------------------------------------------------ inputs, weights

def make_weights(graph_path, seed, workdir):
    """Seeded weights for the graph, written by weights_tools/random_weights.py; returns the file."""
    name = os.path.splitext(os.path.basename(graph_path))[0]
    out = os.path.join(workdir, "%s.seed%d.safetensors" % (name, seed))
    cmd = [sys.executable, RANDOM_WEIGHTS, "--model", graph_path, "--seed", str(seed), "--out", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["exit status %d" % r.returncode])[-1]
        raise UserError("random_weights.py failed for %s: %s" % (graph_path, last))
    return out


def make_input(np, shape, seed, path):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    np.save(path, x)
    return x


# ------------------------------------------------------------------------------------------------ our CLI

def run_resnest(args, graph_path, weights, x_path, y_path, precision):
    """(logits or None, error text or None, seconds)."""
    np = timm_ref.import_numpy()
    cmd = [args.resnest, "run", "--model", graph_path, "--weights", weights, "--input", x_path,
           "--output", y_path, "--backend", args.backend, "--precision", precision] + args.run_flag_list
    t0 = time.time()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None, "resnest run timed out after %.0f s" % args.timeout, time.time() - t0
    seconds = time.time() - t0
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        return None, "resnest run exit %d: %s" % (r.returncode, last), seconds
    try:
        return np.load(y_path), None, seconds
    except (OSError, ValueError) as e:
        return None, "cannot read %s: %s" % (y_path, e), seconds


def resnest_version(binary):
    """`resnest --version`'s line, or None."""
    try:
        r = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None


# ---------------------------------------------------------------------------------------------------- timm

def timm_forward(torch, model, x, device, dtype="float32", channels_last=False):
    """Logits of a forward pass as a float64 numpy array."""
    t = torch.from_numpy(x).to(device)
    t = t.to({"float32": torch.float32, "float16": torch.float16, "float64": torch.float64}[dtype])
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = model(t)
    return y.double().cpu().numpy()


def timm_results(torch, model32, x, device, precisions, want_fp64):
    """{'ref': fp32 TF32-off logits, 'fp64': ..., and one entry per precision: timm at that precision}."""
    out = {}
    timm_ref.set_tf32(torch, False)
    out["ref"] = timm_forward(torch, model32, x, device)
    out["fp32"] = out["ref"]
    if want_fp64:
        m64 = copy.deepcopy(model32).double()
        out["fp64"] = timm_forward(torch, m64, x, device, "float64")
        del m64
    if "tf32" in precisions:
        timm_ref.set_tf32(torch, True)
        out["tf32"] = timm_forward(torch, model32, x, device)
        timm_ref.set_tf32(torch, False)
    if "fp16" in precisions:
        m16 = copy.deepcopy(model32).half().to(memory_format=torch.channels_last)
        out["fp16"] = timm_forward(torch, m16, x, device, "float16", channels_last=True)
        del m16
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


# ------------------------------------------------------------------------------------------------ numbers

def compare(np, y, ref):
    """Differences of logits y against ref, in float64."""
    y = np.asarray(y, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    diff = np.abs(y - r)
    cos = np.sum(y * r, axis=1) / (np.linalg.norm(y, axis=1) * np.linalg.norm(r, axis=1))
    top_y, top_r = np.argmax(y, axis=1), np.argmax(r, axis=1)
    disagree = []
    for i in np.nonzero(top_y != top_r)[0]:
        i = int(i)
        sorted_r = np.sort(r[i])
        disagree.append({"image": i, "ref_top1": int(top_r[i]), "top1": int(top_y[i]),
                         "ref_margin": float(r[i, top_r[i]] - r[i, top_y[i]]),
                         "ref_top1_top2_gap": float(sorted_r[-1] - sorted_r[-2]),
                         "ref_margin_rel": float((r[i, top_r[i]] - r[i, top_y[i]]) / np.max(np.abs(r[i])))})
    return {"max_rel": float(np.max(diff) / np.max(np.abs(r))), "max_abs": float(np.max(diff)),
            "top1_agreement": float(np.mean(top_y == top_r)), "min_cosine": float(np.min(cos)),
            "cosine": [float(c) for c in cos], "disagreements": disagree}


def ref_margins(np, ref):
    """Per image: the reference's top-1 minus top-2 logit (how close each image is to a tie)."""
    s = np.sort(np.asarray(ref, dtype=np.float64), axis=1)
    return [float(v) for v in s[:, -1] - s[:, -2]]


def judge(precision, m):
    """List of failed criteria (empty when the row passes)."""
    c = CRITERIA[precision]
    failed = []
    if "max_rel" in c and not m["max_rel"] <= c["max_rel"]:
        failed.append("max rel %.3g > %.0e" % (m["max_rel"], c["max_rel"]))
    if "min_top1" in c and not m["top1_agreement"] >= c["min_top1"]:
        failed.append("top-1 %.4f < %g" % (m["top1_agreement"], c["min_top1"]))
    if "min_cosine" in c and not m["min_cosine"] >= c["min_cosine"]:
        failed.append("min cosine %.6f < %g" % (m["min_cosine"], c["min_cosine"]))
    return failed


def check_logits(np, y, n, classes):
    """An error text when our output is not (n, classes) finite float32, else None."""
    if y.shape != (n, classes):
        return "our logits have shape %s, expected %s" % (tuple(y.shape), (n, classes))
    if not np.all(np.isfinite(y)):
        return "our logits contain %d non-finite values" % int(np.sum(~np.isfinite(y)))
    return None


# ------------------------------------------------------------------------------------------------- report

HEADER = "%-30s %-5s %4s | %9s %7s %9s | %9s %7s %9s | %9s | %s" % (
    "model", "prec", "N", "rel", "top-1", "min cos", "timm rel", "top-1", "min cos", "ref-f64", "result")


def print_row(row):
    ours, same = row.get("ours"), row.get("timm_same_precision")
    if ours is None:
        cells = "%9s %7s %9s" % ("-", "-", "-")
    else:
        cells = "%9.2e %7.4f %9.6f" % (ours["max_rel"], ours["top1_agreement"], ours["min_cosine"])
    if same is None or row["precision"] == "fp32":  # timm fp32 is the reference itself
        timm_cells = "%9s %7s %9s" % ("-", "-", "-")
    else:
        timm_cells = "%9.2e %7.4f %9.6f" % (same["max_rel"], same["top1_agreement"], same["min_cosine"])
    result = "PASS" if row["passed"] else "FAIL: " + "; ".join(row["failed"])
    noise = row.get("reference_vs_fp64_max_rel")
    noise = "%9.2e" % noise if noise is not None else "%9s" % "-"
    print("%-30s %-5s %4d | %s | %s | %s | %s"
          % (row["model"], row["precision"], row["batch"], cells, timm_cells, noise, result))
    for d in (ours or {}).get("disagreements", []):
        print("    image %d: ours top-1 %d, reference top-1 %d; reference margin %.4g (%.2e of max|logit|), "
              "reference top-1/top-2 gap %.4g%s"
              % (d["image"], d["top1"], d["ref_top1"], d["ref_margin"], d["ref_margin_rel"], d["ref_top1_top2_gap"],
                 "; timm %s also disagrees here" % row["precision"] if d["image"] in row.get("timm_disagree", [])
                 else ""))


def write_json(path, report):
    try:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    except OSError as e:
        raise UserError("--json %s: cannot write (%s)" % (path, e.strerror or e))


# --------------------------------------------------------------------------------------------------- main

def check_model(ctx, graph_path, index):
    """All rows (one per precision) for one graph."""
    np, torch, args = ctx["np"], ctx["torch"], ctx["args"]
    graph = timm_ref.load_graph(graph_path)
    name = timm_ref.graph_name(graph, graph_path)
    c, h, w = timm_ref.input_chw(graph)
    classes = graph["config"]["num_classes"]
    weights_path = make_weights(graph_path, args.seed, ctx["workdir"])
    x_path = os.path.join(ctx["workdir"], "%s.input.npy" % name)
    x = make_input(np, (args.batch, c, h, w), ctx["input_seed"] + index, x_path)

    weights, _ = timm_ref.safetensors_module().read(weights_path)
    model, how = timm_ref.build_timm(graph)
    timm_ref.load_weights(model, weights)
    model = model.to(ctx["device"])
    timm_y = timm_results(torch, model, x, ctx["device"], args.precision, not args.no_fp64)
    del model
    ref = timm_y["ref"]
    fp64 = timm_y.get("fp64")

    rows = []
    for precision in args.precision:
        y_path = os.path.join(ctx["workdir"], "%s.%s.logits.npy" % (name, precision))
        y, error, seconds = run_resnest(args, graph_path, weights_path, x_path, y_path, precision)
        if error is None:
            error = check_logits(np, y, args.batch, classes)
        same = compare(np, timm_y[precision], ref)
        row = {"model": name, "graph": os.path.relpath(os.path.abspath(graph_path), ROOT),
               "semantics": graph["config"]["semantics"], "timm_network": how, "precision": precision,
               "batch": args.batch, "input_shape": [args.batch, c, h, w], "weight_seed": args.seed,
               "input_seed": ctx["input_seed"] + index, "criteria": CRITERIA[precision],
               "resnest_seconds": seconds, "error": error, "reference_top1_margins": ref_margins(np, ref),
               "timm_same_precision": same,
               "timm_disagree": [d["image"] for d in same["disagreements"]]}
        if fp64 is not None:
            row["reference_vs_fp64_max_rel"] = compare(np, ref, fp64)["max_rel"]
        if error is None:
            row["ours"] = compare(np, y, ref)
            row["ours_vs_timm_same_precision_max_rel"] = compare(np, y, timm_y[precision])["max_rel"]
            if fp64 is not None:
                row["ours_vs_fp64_max_rel"] = compare(np, y, fp64)["max_rel"]
            row["failed"] = judge(precision, row["ours"])
        else:
            row["ours"] = None
            row["failed"] = [error]
        row["passed"] = not row["failed"]
        print_row(row)
        rows.append(row)
    return rows


def setup(args):
    np = timm_ref.import_numpy()
    torch, timm = timm_ref.import_torch_timm()
    torch.set_grad_enabled(False)
    torch.backends.cudnn.benchmark = False
    device = pick_device(torch, args.device)
    for path in args.models:
        timm_ref.load_graph(path)  # every graph is checked before any work
    input_seed = args.input_seed if args.input_seed is not None else int.from_bytes(os.urandom(4), "little") >> 1
    if args.workdir:
        try:
            os.makedirs(args.workdir, exist_ok=True)
        except OSError as e:
            raise UserError("--workdir %s: cannot create it (%s)" % (args.workdir, e.strerror or e))
        workdir = args.workdir
    else:
        workdir = tempfile.mkdtemp(prefix="parity_timm_")
    return {"np": np, "torch": torch, "timm": timm, "args": args, "device": device, "input_seed": input_seed,
            "workdir": workdir}


def main(argv):
    try:
        args = parse_args(argv)
        ctx = setup(args)
    except UserError as e:
        timm_ref.fail_usage(PROG, str(e))
    np, torch, timm = ctx["np"], ctx["torch"], ctx["timm"]
    gpu = timm_ref.device_name(torch, ctx["device"])
    print("parity_timm: resnest %s (backend %s) vs timm %s / torch %s on %s; batch %d, weight seed %d, "
          "input seed %d (normal(0, 1); model i uses seed + i)"
          % (args.resnest, args.backend, timm.__version__, torch.__version__, gpu, args.batch, args.seed,
             ctx["input_seed"]))
    print("reference: timm float32, TF32 off; rel = max|d|/max|ref| in float64. 'timm' columns: timm itself at "
          "the row's precision (TF32 on; half + channels_last) against the same reference; ref-f64: the "
          "reference against timm in float64\n")
    print(HEADER)
    rows = []
    try:
        for i, path in enumerate(args.models):
            rows += check_model(ctx, path, i)
    except UserError as e:
        timm_ref.fail_usage(PROG, str(e))
    finally:
        if not args.workdir:
            shutil.rmtree(ctx["workdir"], ignore_errors=True)

    passed = all(r["passed"] for r in rows)
    if "fp16" in args.precision and args.batch < 100:
        print("\nnote: with N = %d < 100 images, one top-1 disagreement on a near-tie fails the fp16 0.99 "
              "criterion; the reference margin of each disagreeing image is printed under its row"
              % args.batch)
    print("\n%s: %d of %d checks passed" % ("PASS" if passed else "FAIL", sum(r["passed"] for r in rows), len(rows)))
    if args.json:
        report = {"tool": "bench/parity_timm.py", "date_utc": timm_ref.utc_now(),
                  "versions": timm_ref.versions(torch, timm, np), "device": ctx["device"], "gpu": gpu,
                  "resnest": args.resnest, "resnest_version": resnest_version(args.resnest),
                  "run_flags": args.run_flag_list, "backend": args.backend, "batch": args.batch,
                  "weight_seed": args.seed, "input_seed": ctx["input_seed"], "criteria": CRITERIA,
                  "passed": passed, "rows": rows}
        try:
            write_json(args.json, report)
        except UserError as e:
            timm_ref.fail_usage(PROG, str(e))
        print("wrote %s" % args.json)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
