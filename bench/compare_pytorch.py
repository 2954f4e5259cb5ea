#!/usr/bin/env python3
# compare_pytorch.py: times ResNeSt50 and ResNeSt50_fast_1s1x64d in PyTorch (timm) on the GPU in several
# configurations, and prints them side by side with `resnest bench --json` reports.
#
# Run from the repository root on the GPU machine (needs numpy, torch and timm):
#
#   build/resnest bench --model models/resnest50d_torch.json --backend cuda --precision fp16 \
#       --batch 1,8,32,128 --json build/bench_r50_fp16.json            # ... one report per model/precision
#   python3 bench/compare_pytorch.py --resnest-json build/bench_*.json --json build/compare_pytorch.json
#   python3 bench/plot_latency.py build/compare_pytorch.json           # draws bench/latency.png
#
# Dry run on a CPU-only machine (graph and compile configurations are skipped there):
#
#   /work/fixenv/bin/python bench/compare_pytorch.py --device cpu --batch 1 --iters 2 --warmup 1
#
# Configurations (--configs): fp32 eager and fp32-graph (CUDA graph replay), both with TF32 off;
# fp16-cl eager and fp16-cl-graph in half precision, channels-last; fp16-compiled, torch.compile
# (mode "reduce-overhead", static shapes) in half precision, channels-last (--no-compile skips it; a
# failed compile is a row with its error). tf32 and tf32-graph (TF32 on) can be added with --configs.
# Each cell: warm-up, then timed runs, each between two torch.cuda.Event records and synchronised, so
# a sample is one batch's latency; median, p90, min, img/s, and peak allocated memory
# (torch.cuda.max_memory_allocated after reset_peak_memory_stats; weights included).
"""Time ResNeSt50 / ResNeSt50_fast_1s1x64d in PyTorch (timm) per configuration and batch size, and show the
results beside `resnest bench --json` reports.

Configurations: fp32 (eager, TF32 off), fp32-graph (CUDA graph replay, TF32 off), fp16-cl (eager, half,
channels-last), fp16-cl-graph (CUDA graph replay), fp16-compiled (torch.compile mode reduce-overhead,
half, channels-last); optional: tf32, tf32-graph (TF32 on). The side-by-side table gives, per model,
precision and batch, resnest's p50 (GPU time when the report has it, else host time), PyTorch's best p50
among the configurations of that precision, and their ratio (PyTorch / resnest: above 1, resnest is
faster). Exit status: 0 done, 1 a configuration failed, 2 bad usage or a missing package.
"""
import copy
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_ref  # noqa: E402
from timm_ref import UserError  # noqa: E402

PROG = "compare_pytorch.py"
DEFAULT_MODELS = ["models/resnest50d_torch.json", "models/resnest50_fast_1s1x64d_torch.json"]
CONFIGS = {
    "fp32": {"precision": "fp32", "dtype": "float32", "channels_last": False, "tf32": False, "mode": "eager"},
    "fp32-graph": {"precision": "fp32", "dtype": "float32", "channels_last": False, "tf32": False, "mode": "graph"},
    "fp16-cl": {"precision": "fp16", "dtype": "float16", "channels_last": True, "tf32": False, "mode": "eager"},
    "fp16-cl-graph": {"precision": "fp16", "dtype": "float16", "channels_last": True, "tf32": False,
                      "mode": "graph"},
    "fp16-compiled": {"precision": "fp16", "dtype": "float16", "channels_last": True, "tf32": False,
                      "mode": "compile"},
    "tf32": {"precision": "tf32", "dtype": "float32", "channels_last": False, "tf32": True, "mode": "eager"},
    "tf32-graph": {"precision": "tf32", "dtype": "float32", "channels_last": False, "tf32": True, "mode": "graph"},
}
DEFAULT_CONFIGS = ["fp32", "fp32-graph", "fp16-cl", "fp16-cl-graph", "fp16-compiled"]
PRECISION_ORDER = {"fp32": 0, "tf32": 1, "fp16": 2}
FAMILIES = {"resnest50": "ResNeSt50", "resnest50_fast_1s1x64d": "ResNeSt50_fast_1s1x64d"}


# ----------------------------------------------------------------------------------------------- arguments

def parse_args(argv):
    import argparse
    p = timm_ref.Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="GRAPH",
                   help="resnest-graph files to build in timm (default: %s)" % " ".join(DEFAULT_MODELS))
    p.add_argument("--batch", default="1,8,32,128", help="comma-separated batch sizes (default 1,8,32,128)")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help="comma-separated configurations (default %s; also: tf32, tf32-graph)"
                   % ",".join(DEFAULT_CONFIGS))
    p.add_argument("--no-compile", action="store_true", help="skip fp16-compiled")
    p.add_argument("--compile-batches", default=None,
                   help="batch sizes for fp16-compiled, each a fresh compile (default: all of --batch)")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None,
                   help="default: cuda when torch sees a GPU, else cpu (graph and compile configs are skipped)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per cell after setup (default 10)")
    p.add_argument("--iters", type=int, default=None, help="timed runs per cell (instead of --duration)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of timed runs per cell, at least 5 runs (default 2 unless --iters)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the generated weights (random_weights.py's values; default 1, as resnest bench)")
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="take DIR/<graph name>.safetensors instead of generated weights")
    p.add_argument("--resnest-json", nargs="+", default=[], metavar="FILE",
                   help="reports written by `resnest bench --json`, shown side by side")
    p.add_argument("--json", default=None, metavar="FILE", help="write every number to FILE")
    args = p.parse_args(argv)
    check_args(args)
    return args


def parse_batches(text, flag):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 or v > 4096 for v in values):
        raise UserError("%s %s: give comma-separated batch sizes in [1, 4096], e.g. 1,8,32,128" % (flag, text))
    return sorted(set(values))


def check_args(args):
    args.batches = parse_batches(args.batch, "--batch")
    args.compile_batch_list = (parse_batches(args.compile_batches, "--compile-batches")
                               if args.compile_batches else args.batches)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        raise UserError("--configs %s: unknown configuration %s; choose from %s"
                        % (args.configs, ",".join(unknown) or "(none)", ", ".join(CONFIGS)))
    if args.no_compile:
        configs = [c for c in configs if CONFIGS[c]["mode"] != "compile"]
    args.config_list = list(dict.fromkeys(configs))
    if args.iters is not None and args.duration is not None:
        raise UserError("give either --iters or --duration, not both")
    if args.iters is not None and args.iters < 1:
        raise UserError("--iters %d: give at least 1" % args.iters)
    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration must be positive")
    if args.iters is None and args.duration is None:
        args.duration = 2.0
    if args.warmup < 0:
        raise UserError("--warmup must be 0 or more")
    if args.seed < 0:
        raise UserError("--seed %d: give a non-negative integer" % args.seed)
    if args.weights_dir and not os.path.isdir(args.weights_dir):
        raise UserError("--weights-dir %s: not a folder" % args.weights_dir)
    for path in args.resnest_json:
        if not os.path.isfile(path):
            raise UserError("--resnest-json %s: no such file; write it with `resnest bench --json FILE`" % path)
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise UserError("--json %s: its folder does not exist" % args.json)


# ------------------------------------------------------------------------------------------ models, weights

def family(name):
    """ResNeSt50 or ResNeSt50_fast_1s1x64d for a graph name or path, in either pooling semantics."""
    base = os.path.splitext(os.path.basename(str(name)))[0].lower()
    for suffix in ("_torch", "_paddle"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base == "resnest50d":
        base = "resnest50"
    return FAMILIES.get(base, base)


def model_weights(graph, graph_path, args):
    """{tensor name: numpy array}: generated from --seed, or read from --weights-dir."""
    if args.weights_dir:
        names = [timm_ref.graph_name(graph, graph_path), os.path.splitext(os.path.basename(graph_path))[0]]
        for n in names:
            path = os.path.join(args.weights_dir, n + ".safetensors")
            if os.path.isfile(path):
                st = timm_ref.safetensors_module()
                try:
                    return st.read(path)[0], path
                except st.SafetensorsError as e:
                    raise UserError("--weights-dir: %s" % e)
        raise UserError("--weights-dir %s: no %s.safetensors; write it with weights_tools/random_weights.py "
                        "--model %s --seed 1 --out FILE" % (args.weights_dir, names[0], graph_path))
    if timm_ref.WEIGHTS_TOOLS not in sys.path:
        sys.path.insert(0, timm_ref.WEIGHTS_TOOLS)
    import random_weights
    return dict(random_weights.make_weights(graph, args.seed)), "random_weights.py values, seed %d" % args.seed


def load_models(args):
    """One entry per graph: name, family, the float32 timm network on the CPU with its weights."""
    out = []
    for path in args.models:
        graph = timm_ref.load_graph(path)
        model, how = timm_ref.build_timm(graph)
        weights, source = model_weights(graph, path, args)
        timm_ref.load_weights(model, weights)
        name = timm_ref.graph_name(graph, path)
        out.append({"name": name, "family": family(name), "graph": path, "timm_network": how,
                    "weights": source, "chw": timm_ref.input_chw(graph), "model": model})
    return out


# ------------------------------------------------------------------------------------------------- timing

def torch_dtype(torch, cfg):
    return torch.float16 if cfg["dtype"] == "float16" else torch.float32


def device_model(torch, model, cfg, device):
    m = copy.deepcopy(model).to(device=device, dtype=torch_dtype(torch, cfg))
    if cfg["channels_last"]:
        m = m.to(memory_format=torch.channels_last)
    return m.eval()


def make_input(torch, batch, chw, cfg, device):
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn((batch,) + tuple(chw), generator=gen).to(device=device, dtype=torch_dtype(torch, cfg))
    if cfg["channels_last"]:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def capture_graph(torch, model, x):
    """A CUDA graph of one forward pass: (replay function, static output, the graph)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = model(x)
    torch.cuda.synchronize()
    return graph.replay, y, graph


def compiled_runner(torch, compiled, x):
    mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    state = {}

    def run():
        if mark is not None:
            mark()
        state["y"] = compiled(x)
    return run, state


def make_runner(torch, model, x, cfg, compiled):
    """(function running one batch, function returning the last output, setup info, object to keep alive)."""
    info = {}
    if cfg["mode"] == "graph":
        t0 = time.perf_counter()
        replay, y, graph = capture_graph(torch, model, x)
        info["capture_s"] = time.perf_counter() - t0
        return replay, (lambda: y), info, graph
    if cfg["mode"] == "compile":
        run, state = compiled_runner(torch, compiled, x)
        t0 = time.perf_counter()
        for _ in range(3):  # compile, then the CUDA-graph warm-up and recording runs
            run()
        torch.cuda.synchronize()
        info["compile_and_record_s"] = time.perf_counter() - t0
        return run, (lambda: state["y"]), info, None
    state = {}

    def eager():
        state["y"] = model(x)
    return eager, (lambda: state["y"]), info, None


def time_runs(torch, run, device, args):
    """Per-run samples in ms: GPU time between two events (CUDA) and host wall time."""
    for _ in range(args.warmup):
        run()
    if device == "cuda":
        torch.cuda.synchronize()
    gpu, host = [], []
    start_all = time.perf_counter()
    while True:
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            run()
            end.record()
            end.synchronize()
            host.append((time.perf_counter() - t0) * 1e3)
            gpu.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            run()
            host.append((time.perf_counter() - t0) * 1e3)
        if args.iters is not None:
            if len(host) >= args.iters:
                break
        elif time.perf_counter() - start_all >= args.duration and len(host) >= 5:
            break
    return gpu, host


def summarize(np, samples):
    if not samples:
        return None
    a = np.asarray(samples, dtype=np.float64)
    return {"count": int(a.size), "min": float(a.min()), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean()),
            "max": float(a.max())}


def time_cell(ctx, entry, model, cfg, batch, compiled):
    """One configuration at one batch size: the timing summary and peak memory."""
    torch, np, device, args = ctx["torch"], ctx["np"], ctx["device"], ctx["args"]
    timm_ref.set_tf32(torch, cfg["tf32"])
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    x = make_input(torch, batch, entry["chw"], cfg, device)
    with torch.inference_mode():
        run, output, info, keep = make_runner(torch, model, x, cfg, compiled)
        gpu, host = time_runs(torch, run, device, args)
        finite = bool(torch.isfinite(output()).all().item())
    cell = {"gpu_ms": summarize(np, gpu), "host_ms": summarize(np, host), "finite_output": finite}
    cell.update(info)
    p50 = (cell["gpu_ms"] or cell["host_ms"])["p50"]
    cell["p50_ms"] = p50
    cell["img_s"] = batch * 1000.0 / p50
    if device == "cuda":
        cell["peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
        cell["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
    del keep, run, output, x
    return cell


def short_error(e):
    text = ("%s: %s" % (type(e).__name__, e)).strip().splitlines()[0]
    return text[:300]


def run_config(ctx, entry, name):
    """All cells (one per batch size) of one configuration for one model."""
    torch, device, args = ctx["torch"], ctx["device"], ctx["args"]
    cfg = CONFIGS[name]
    base = {"model": entry["name"], "family": entry["family"], "config": name, "precision": cfg["precision"]}
    if device == "cpu" and cfg["mode"] != "eager":
        if name not in ctx["skip_noted"]:
            print("  note: %s skipped on the CPU (CUDA graphs and the reduce-overhead compile need a GPU)" % name)
            ctx["skip_noted"].add(name)
        return [dict(base, batch=b, skipped="needs a GPU") for b in args.batches]
    cells = []
    try:
        model = device_model(torch, entry["model"], cfg, device)
    except Exception as e:  # e.g. out of memory
        return [dict(base, batch=b, error=short_error(e)) for b in args.batches]
    batches = args.compile_batch_list if cfg["mode"] == "compile" else args.batches
    for batch in batches:
        compiled = None
        try:
            if cfg["mode"] == "compile":
                torch._dynamo.reset()  # a fresh compile per batch size: static shapes, no leftover graph pools
                compiled = torch.compile(model, mode="reduce-overhead", dynamic=False)
            cell = dict(base, batch=batch, **time_cell(ctx, entry, model, cfg, batch, compiled))
        except Exception as e:  # a failed compile, capture or out-of-memory is a row, not a crash
            cell = dict(base, batch=batch, error=short_error(e))
        del compiled
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        print_cell(cell)
        cells.append(cell)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return cells


# ------------------------------------------------------------------------------------------ resnest reports

def read_resnest_json(path):
    """Rows {model, family, precision, batch, p50_ms, clock, img_s, peak_bytes, peak_key, file} from a
    `resnest bench --json` report. Tolerant of the schema: it takes every object with an integer "batch"
    and a latency, anywhere in the file; model and precision come from the object or the nearest enclosing
    object (or its "config"). Latency: "gpu_ms" (or "gpu_latency_ms") p50 when present, else "latency_ms"
    (or "host_ms") p50. Peak memory: the first of the device keys below, in the object or above it."""
    with open(path) as f:
        report = json.load(f)
    peak_keys = ("peak_device_bytes", "device_peak_bytes", "peak_gpu_bytes", "gpu_peak_bytes",
                 "device_memory_bytes", "peak_device_memory_bytes")
    rows = []

    def p50(obj, keys):
        for k in keys:
            v = obj.get(k)
            if isinstance(v, dict) and isinstance(v.get("p50"), (int, float)):
                return float(v["p50"])
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        return None

    def walk(obj, inherited):
        if isinstance(obj, list):
            for item in obj:
                walk(item, inherited)
            return
        if not isinstance(obj, dict):
            return
        ctx = dict(inherited)  # the nearest object wins; in it, the object over its "config"
        for source in (obj.get("config") if isinstance(obj.get("config"), dict) else {}, obj):
            for key, name in (("model", "model"), ("model_name", "model"), ("precision", "precision"),
                              ("backend", "backend")):
                if isinstance(source.get(key), str):
                    ctx[name] = source[key]
            for key in reversed(peak_keys):
                if isinstance(source.get(key), (int, float)) and not isinstance(source.get(key), bool):
                    ctx["peak_bytes"], ctx["peak_key"] = source[key], key
        batch = obj.get("batch")
        gpu = p50(obj, ("gpu_ms", "gpu_latency_ms"))
        host = p50(obj, ("latency_ms", "host_ms"))
        if isinstance(batch, int) and (gpu or host):
            ms = gpu or host
            img_s = obj.get("throughput_img_s", obj.get("img_s"))
            rows.append({"model": ctx.get("model", "?"), "family": family(ctx.get("model", "?")),
                         "precision": ctx.get("precision", "fp32"), "backend": ctx.get("backend"),
                         "batch": batch, "p50_ms": ms, "clock": "gpu" if gpu else "host",
                         "img_s": float(img_s) if isinstance(img_s, (int, float)) and not gpu else batch * 1e3 / ms,
                         "peak_bytes": ctx.get("peak_bytes"), "peak_key": ctx.get("peak_key"), "file": path})
            return
        for key, value in obj.items():
            if key != "config" and isinstance(value, (dict, list)):
                walk(value, ctx)

    walk(report, {})
    return rows


def load_resnest_reports(paths):
    rows = []
    for path in paths:
        try:
            found = read_resnest_json(path)
        except (OSError, ValueError) as e:
            raise UserError("--resnest-json %s: cannot read it as JSON (%s)" % (path, e))
        if not found:
            raise UserError("--resnest-json %s: no per-batch results with a p50 latency in it; is it a "
                            "`resnest bench --json` report?" % path)
        rows += found
    return rows


# ------------------------------------------------------------------------------------------- side by side

def side_by_side(cells, resnest_rows, batches):
    """One row per (family, precision, batch) for the given batch sizes: resnest p50 vs PyTorch's best."""
    keys = {}
    for c in cells:
        if "p50_ms" in c and c.get("finite_output", True):
            keys.setdefault((c["family"], c["precision"], c["batch"]), {"cells": [], "resnest": None})["cells"].append(c)
    for r in resnest_rows:
        if r["batch"] not in batches:
            continue
        slot = keys.setdefault((r["family"], r["precision"], r["batch"]), {"cells": [], "resnest": None})
        if slot["resnest"] is None or r["p50_ms"] < slot["resnest"]["p50_ms"]:
            slot["resnest"] = r
    rows = []
    for (fam, precision, batch) in sorted(keys, key=lambda k: (k[0], PRECISION_ORDER.get(k[1], 9), k[2])):
        slot = keys[(fam, precision, batch)]
        best = min(slot["cells"], key=lambda c: c["p50_ms"]) if slot["cells"] else None
        res = slot["resnest"]
        row = {"model": fam, "precision": precision, "batch": batch,
               "resnest_graph": res["model"] if res else None, "resnest_backend": res["backend"] if res else None,
               "resnest_p50_ms": res["p50_ms"] if res else None, "resnest_clock": res["clock"] if res else None,
               "resnest_img_s": res["img_s"] if res else None, "resnest_peak_bytes": res["peak_bytes"] if res else None,
               "pytorch_best_config": best["config"] if best else None,
               "pytorch_p50_ms": best["p50_ms"] if best else None, "pytorch_img_s": best["img_s"] if best else None,
               "pytorch_peak_bytes": best.get("peak_allocated_bytes") if best else None}
        row["ratio_pytorch_over_resnest"] = (row["pytorch_p50_ms"] / row["resnest_p50_ms"]
                                             if best and res else None)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------- output

def fmt(v, spec, width):
    return ("%" + str(width) + "s") % ("-" if v is None else spec % v)


def mib(v):
    return None if v is None else v / 1048576.0


CELL_HEADER = "  %-28s %-14s %5s %9s %9s %9s %10s %9s  %s" % (
    "model", "config", "batch", "p50 ms", "p90 ms", "min ms", "img/s", "peak MiB", "note")


def print_cell(c):
    if "error" in c or "skipped" in c:
        print("  %-28s %-14s %5d %s" % (c["model"], c["config"], c["batch"],
                                        "ERROR: " + c["error"] if "error" in c else "skipped: " + c["skipped"]))
        return
    s = c["gpu_ms"] or c["host_ms"]
    note = []
    if "compile_and_record_s" in c:
        note.append("compile %.1f s" % c["compile_and_record_s"])
    if not c["finite_output"]:
        note.append("NON-FINITE OUTPUT")
    if c["gpu_ms"] is None:
        note.append("host clock")
    print("  %-28s %-14s %5d %9.3f %9.3f %9.3f %10.1f %s  %s"
          % (c["model"], c["config"], c["batch"], s["p50"], s["p90"], s["min"], c["img_s"],
             fmt(mib(c.get("peak_allocated_bytes")), "%.0f", 9), ", ".join(note)))


def print_side_by_side(rows):
    print("\n%-24s %-5s %5s | %10s %-5s | %10s %-14s | %9s | %10s %10s | %9s %9s" % (
        "model", "prec", "batch", "resnest", "clock", "PyTorch", "(best config)", "PyT/res", "res img/s",
        "PyT img/s", "res MiB", "PyT MiB"))
    for r in rows:
        print("%-24s %-5s %5d | %s %-5s | %s %-14s | %s | %s %s | %s %s" % (
            r["model"], r["precision"], r["batch"], fmt(r["resnest_p50_ms"], "%.3f", 10), r["resnest_clock"] or "",
            fmt(r["pytorch_p50_ms"], "%.3f", 10), r["pytorch_best_config"] or "",
            fmt(r["ratio_pytorch_over_resnest"], "%.2fx", 9), fmt(r["resnest_img_s"], "%.1f", 10),
            fmt(r["pytorch_img_s"], "%.1f", 10), fmt(mib(r["resnest_peak_bytes"]), "%.0f", 9),
            fmt(mib(r["pytorch_peak_bytes"]), "%.0f", 9)))
    print("latencies are p50 per batch in ms; PyT/res above 1 means resnest is faster. PyTorch memory is "
          "torch.cuda.max_memory_allocated (weights included).")


# --------------------------------------------------------------------------------------------------- main

def setup(args):
    np = timm_ref.import_numpy()
    torch, timm = timm_ref.import_torch_timm()
    torch.set_grad_enabled(False)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch %s sees no CUDA device; use --device cpu for a dry run"
                        % torch.__version__)
    torch.backends.cudnn.benchmark = True
    resnest_rows = load_resnest_reports(args.resnest_json)
    return {"np": np, "torch": torch, "timm": timm, "device": device, "args": args, "resnest_rows": resnest_rows,
            "skip_noted": set()}


def main(argv):
    try:
        args = parse_args(argv)
        ctx = setup(args)
        models = load_models(args)
    except UserError as e:
        timm_ref.fail_usage(PROG, str(e))
    torch, timm, np = ctx["torch"], ctx["timm"], ctx["np"]
    gpu = timm_ref.device_name(torch, ctx["device"])
    timing = ("%d runs" % args.iters) if args.iters is not None else ("%g s" % args.duration)
    print("compare_pytorch: timm %s / torch %s on %s; batches %s; %d warm-up runs, then %s per cell"
          % (timm.__version__, torch.__version__, gpu, ",".join(map(str, args.batches)), args.warmup, timing))
    for m in models:
        print("  %s: %s (%s), weights: %s" % (m["family"], m["graph"], m["timm_network"], m["weights"]))
    print("\n" + CELL_HEADER)
    cells = []
    for entry in models:
        for name in args.config_list:
            cells += run_config(ctx, entry, name)
    rows = side_by_side(cells, ctx["resnest_rows"], args.batches)
    print_side_by_side(rows)
    backends = sorted({r["backend"] for r in ctx["resnest_rows"] if r["backend"] and r["backend"] != ctx["device"]})
    if backends:
        print("note: some resnest reports are from the %s backend while PyTorch ran on the %s"
              % ("/".join(backends), ctx["device"]))
    failed = [c for c in cells if "error" in c or (c.get("finite_output") is False)]
    if args.json:
        report = {"tool": "bench/compare_pytorch.py", "date_utc": timm_ref.utc_now(),
                  "versions": timm_ref.versions(torch, timm, np), "device": ctx["device"], "gpu": gpu,
                  "batches": args.batches, "configs": {k: CONFIGS[k] for k in args.config_list},
                  "warmup": args.warmup, "iters": args.iters, "duration_s": args.duration,
                  "models": [{k: v for k, v in m.items() if k != "model"} for m in models],
                  "cells": cells, "resnest": ctx["resnest_rows"], "side_by_side": rows}
        try:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
                f.write("\n")
        except OSError as e:
            timm_ref.fail_usage(PROG, "--json %s: cannot write (%s)" % (args.json, e.strerror or e))
        print("wrote %s" % args.json)
    if failed:
        print("%d cell(s) failed or gave non-finite output" % len(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
