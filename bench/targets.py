#!/usr/bin/env python3
# targets.py: the performance targets table of one bench/device_check.sh call, from the JSON it left in its
# output folder: each target, what was measured, and "met" or by how much it was missed.
#
#   python3 bench/targets.py OUT_DIR                      # a Markdown table, as bench/RESULTS.md keeps it
#   python3 bench/targets.py OUT_DIR --json targets.json  # the same rows as JSON
#   python3 bench/targets.py CALL1_DIR CALL2_DIR          # a run in two calls (QUICK=1): both folders' files
#   python3 bench/targets.py bench/results/2026-11-28-h200-6ebbad4
#
# Reads (each optional; a target whose files are missing is "not measured"):
#   bench_{resnest50,resnest50_fast_1s1x64d}_{fp16,fp32}.json   `resnest bench --json` (GPU reports only)
#   compare_pytorch*.json                                        bench/compare_pytorch.py --json: every cell
#   coldstart_resnest50_{first,cached}.json                      `resnest bench --json` of a new process
# With several folders, a report in a later folder stands for the same report in an earlier one.
# PyTorch's best configuration is the fastest finite cell of the same model, precision and batch over all
# compare_pytorch*.json files run on CUDA (device_check's QUICK mode puts torch.compile in a file of its own). Ratios
# are PyTorch's p50 over resnest's (above 1: resnest is faster); memory is resnest's peak device memory over
# the peak PyTorch allocated in its best configuration. A miss says the factor between measured and target.
# Standard library only. Exit status: 0 the table printed (met or not), 2 a bad folder or a malformed file.
"""Print the performance targets table of one bench/device_check.sh output folder: each target, what was
measured (resnest bench and bench/compare_pytorch.py JSON of the same call) and whether it was met, or by
how much it was missed. Exit status: 0 printed, 2 bad usage or a malformed file."""
import argparse
import json
import math
import os
import sys

PROG = "targets.py"
R50, FAST = "ResNeSt50", "ResNeSt50_fast_1s1x64d"
GRAPHS = {R50: "resnest50", FAST: "resnest50_fast_1s1x64d"}
# The targets (H100 or H200; fp16 unless said; ratios against PyTorch's best configuration of the same call).
BS1_MS, BS1_RATIO, BS8_MS, BS128_RATIO = 0.35, 3.5, 0.6, 2.0
FP32_RATIO, TAX, MEMORY_SHARE, FIRST_S, CACHED_S = 1.5, 0.72, 0.5, 2.0, 0.3


class UserError(Exception):
    """A bad folder or file: one line, exit status 2."""


def read_json(path):
    """The report in `path`: a JSON object, or UserError."""
    try:
        with open(path) as f:
            report = json.load(f)
    except OSError as e:
        raise UserError("%s: cannot read it (%s)" % (path, e.strerror or e))
    except ValueError as e:
        raise UserError("%s: not JSON (%s); was its run cut short? Run that stage again" % (path, e))
    if not isinstance(report, dict):
        raise UserError("%s: not a report (a JSON %s, not an object)" % (path, type(report).__name__))
    return report


def need(obj, keys, path, positive=False):
    """obj[k0][k1]...: a number (above 0 with `positive`), or UserError naming the file and the key."""
    v = obj
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            raise UserError("%s: no %s; is it a resnest bench / compare_pytorch.py report?" %
                            (path, ".".join(str(x) for x in keys)))
        v = v[k]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or (positive and v <= 0):
        raise UserError("%s: %s is %r, not a%s number" % (path, ".".join(str(x) for x in keys), v,
                                                          " positive" if positive else " finite"))
    return float(v)


def items(report, key, path):
    """report[key]: a list of objects (none where the key is missing or null), or UserError."""
    v = report.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise UserError("%s: %s is not a list of objects" % (path, key))
    return v


def section(report, key):
    """report[key] where it is an object, else {} (a report without it)."""
    v = report.get(key)
    return v if isinstance(v, dict) else {}


def last_of(folders, name):
    """The path of `name` in the last folder that has it, or None."""
    for folder in reversed(folders):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def read_bench(folders, family, precision):
    """{batch: {p50_ms, img_s, memory}} of a GPU `resnest bench` report, or None where there is none."""
    path = last_of(folders, "bench_%s_%s.json" % (GRAPHS[family], precision))
    if not path:
        return None
    report = read_json(path)
    if section(report, "config").get("backend") == "cpu" or not section(report, "machine").get("gpu"):
        return None  # a CPU report (a dry run) says nothing of the targets
    rows = {}
    for r in items(report, "results", path):
        # GPU time; reports older than gpu_latency_ms gave it as latency_ms (the same numbers since).
        clock = "gpu_latency_ms" if "gpu_latency_ms" in r else "latency_ms"
        rows[int(need(r, ["batch"], path, positive=True))] = {
            "p50_ms": need(r, [clock, "p50"], path, positive=True),
            "img_s": need(r, ["throughput_img_s"], path, positive=True),
            "memory": need(r, ["device_memory_bytes"], path, positive=True)}
    return rows


def read_pytorch(folders):
    """{(family, precision, batch): best cell} over every compare_pytorch*.json in the folders."""
    best = {}
    paths = [os.path.join(f, n) for f in folders for n in sorted(os.listdir(f))
             if n.startswith("compare_pytorch") and n.endswith(".json")]
    for path in paths:
        report = read_json(path)
        if report.get("device") != "cuda":
            continue  # PyTorch on the CPU (no CUDA in its environment) says nothing of the targets
        for c in items(report, "cells", path):
            if "p50_ms" not in c or not c.get("finite_output", True):
                continue  # a failed or skipped configuration
            p50 = c["p50_ms"]
            if not isinstance(p50, (int, float)) or isinstance(p50, bool):
                raise UserError("%s: p50_ms is %r, not a number" % (path, p50))
            if not math.isfinite(p50) or p50 <= 0:
                continue  # a configuration that did not time (NaN)
            key = (c.get("family"), c.get("precision"), int(need(c, ["batch"], path)))
            cell = {"config": c.get("config"), "p50_ms": float(p50), "img_s": need(c, ["img_s"], path),
                    "memory": None if c.get("peak_allocated_bytes") is None else
                    need(c, ["peak_allocated_bytes"], path, positive=True)}
            if key not in best or p50 < best[key]["p50_ms"]:
                best[key] = cell
    return best


def read_coldstart(folders, kind):
    """(first_result_s, process_first_result_s or None) of a coldstart report, or None without one."""
    path = last_of(folders, "coldstart_resnest50_%s.json" % kind)
    if not path:
        return None
    report = read_json(path)
    process = None  # since the process started: only in reports of newer binaries
    if "process_first_result_s" in report:
        process = need(report, ["process_first_result_s"], path, positive=True)
    return need(report, ["first_result_s"], path, positive=True), process


def missed_by(factor):
    return "missed by %.2fx" % factor


def row(target, measured, verdict):
    return {"target": target, "measured": measured, "verdict": verdict}


NOT_MEASURED = "not measured"


def latency_rows(bench, torch):
    """ResNeSt50 fp16 at batch 1 (time and ratio), batch 8 (time) and batch 128 (ratio)."""
    rows = []
    fp16 = bench.get((R50, "fp16"))
    r1, t1 = (fp16 or {}).get(1), torch.get((R50, "fp16", 1))
    target = "ResNeSt50 bs1 <= %.2f ms and >= %.1fx PyTorch's best" % (BS1_MS, BS1_RATIO)
    if r1 and t1:
        ratio = t1["p50_ms"] / r1["p50_ms"]
        misses = []
        if r1["p50_ms"] > BS1_MS:
            misses.append(missed_by(r1["p50_ms"] / BS1_MS) + " in time")
        if ratio < BS1_RATIO:
            misses.append(missed_by(BS1_RATIO / ratio) + " in ratio")
        rows.append(row(target, "%.3f ms, %.2fx %s (%.3f ms)" % (r1["p50_ms"], ratio, t1["config"], t1["p50_ms"]),
                        ", ".join(misses) or "met"))
    elif r1:  # PyTorch not measured (its stage cut): the time is judged alone
        time = "time met" if r1["p50_ms"] <= BS1_MS else missed_by(r1["p50_ms"] / BS1_MS) + " in time"
        rows.append(row(target, "%.3f ms, PyTorch not measured" % r1["p50_ms"], time + ", ratio not measured"))
    else:
        rows.append(row(target, NOT_MEASURED, NOT_MEASURED))
    r8 = (fp16 or {}).get(8)
    target = "ResNeSt50 bs8 <= %.2f ms" % BS8_MS
    rows.append(row(target, "%.3f ms" % r8["p50_ms"], "met" if r8["p50_ms"] <= BS8_MS else
                    missed_by(r8["p50_ms"] / BS8_MS)) if r8 else row(target, NOT_MEASURED, NOT_MEASURED))
    r128, t128 = (fp16 or {}).get(128), torch.get((R50, "fp16", 128))
    target = "ResNeSt50 bs128 >= %.1fx PyTorch's best" % BS128_RATIO
    if r128 and t128:
        ratio = t128["p50_ms"] / r128["p50_ms"]
        rows.append(row(target, "%.2fx %s (%.3f / %.3f ms, %.0f img/s)" % (ratio, t128["config"], t128["p50_ms"],
                                                                            r128["p50_ms"], r128["img_s"]),
                        "met" if ratio >= BS128_RATIO else missed_by(BS128_RATIO / ratio)))
    else:
        rows.append(row(target, NOT_MEASURED, NOT_MEASURED))
    return rows


def fp32_row(bench, torch):
    """ResNeSt50 fp32 against PyTorch fp32 at every batch both measured (the fast model's ratios beside)."""
    target = "ResNeSt50 fp32 >= %.1fx PyTorch fp32, every batch" % FP32_RATIO
    parts, worst, counted, met = [], None, 0, 0
    for family in (R50, FAST):
        ratios = []
        for batch, r in sorted((bench.get((family, "fp32")) or {}).items()):
            t = torch.get((family, "fp32", batch))
            if not t:
                continue
            ratio = t["p50_ms"] / r["p50_ms"]
            ratios.append("bs%d %.2fx" % (batch, ratio))
            if family == R50:
                counted += 1
                met += ratio >= FP32_RATIO
                worst = ratio if worst is None else min(worst, ratio)
        if ratios:
            parts.append("%s %s" % ("ResNeSt50" if family == R50 else "fast", ", ".join(ratios)))
    if not counted:
        return row(target, NOT_MEASURED, NOT_MEASURED)
    verdict = "met" if met == counted else "met at %d of %d batches; %s" % (met, counted,
                                                                           missed_by(FP32_RATIO / worst))
    return row(target, "; ".join(parts), verdict)


def tax_row(bench):
    target = "split-attention tax img/s(ResNeSt50) / img/s(fast), fp16 bs128 >= %.2f" % TAX
    a, b = (bench.get((R50, "fp16")) or {}).get(128), (bench.get((FAST, "fp16")) or {}).get(128)
    if not a or not b:
        return row(target, NOT_MEASURED, NOT_MEASURED)
    tax = a["img_s"] / b["img_s"]
    return row(target, "%.0f / %.0f = %.3f" % (a["img_s"], b["img_s"], tax),
               "met" if tax >= TAX else missed_by(TAX / tax))


def memory_row(bench, torch):
    """Peak device memory at batch 128 over PyTorch's (its best configuration), fp16 and fp32."""
    target = "peak device memory at bs128 <= %.1f of PyTorch's" % MEMORY_SHARE
    parts, worst = [], None
    for precision in ("fp16", "fp32"):
        r, t = (bench.get((R50, precision)) or {}).get(128), torch.get((R50, precision, 128))
        if not r or not t or not t["memory"]:
            continue
        share = r["memory"] / t["memory"]
        parts.append("%s %.0f / %.0f MiB = %.2f (%s)" % (precision, r["memory"] / 2**20, t["memory"] / 2**20,
                                                           share, t["config"]))
        worst = share if worst is None else max(worst, share)
    if worst is None:
        return row(target, NOT_MEASURED, NOT_MEASURED)
    return row(target, "; ".join(parts), "met" if worst <= MEMORY_SHARE else missed_by(worst / MEMORY_SHARE))


def coldstart_row(first_run, cached_run):
    """Judged on load + plan to the first result, as the issue defines it; the time since the process
    started (the linked libraries' loading too) is shown beside it where the reports have it."""
    target = "cold start to first result <= %.0f s, <= %.1f s with the algorithm cache" % (FIRST_S, CACHED_S)
    if first_run is None and cached_run is None:
        return row(target, NOT_MEASURED, NOT_MEASURED)
    first, cached = (None if r is None else r[0] for r in (first_run, cached_run))
    processes = [None if r is None else r[1] for r in (first_run, cached_run)]
    verdicts = []
    for name, value, limit in (("first", first, FIRST_S), ("cached", cached, CACHED_S)):
        if value is None:
            verdicts.append("%s not measured" % name)
        else:
            verdicts.append("%s %s" % (name, "met" if value <= limit else missed_by(value / limit)))
    measured = " / ".join("-" if v is None else "%.3f s" % v for v in (first, cached))
    if any(v is not None for v in processes):
        measured += " (since the process started: %s)" % " / ".join(
            "-" if v is None else "%.2f s" % v for v in processes)
    return row(target, measured, "met" if verdicts == ["first met", "cached met"] else ", ".join(verdicts))


def targets(folders):
    for folder in folders:
        if not os.path.isdir(folder):
            raise UserError("%s: not a folder; give the output folder of bench/device_check.sh" % folder)
    bench = {(f, p): read_bench(folders, f, p) for f in (R50, FAST) for p in ("fp16", "fp32")}
    torch = read_pytorch(folders)
    rows = latency_rows(bench, torch)
    rows += [fp32_row(bench, torch), tax_row(bench), memory_row(bench, torch),
             coldstart_row(read_coldstart(folders, "first"), read_coldstart(folders, "cached"))]
    return rows


def markdown(rows):
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (r["target"], r["measured"], r["verdict"]) for r in rows]
    return "\n".join(lines)


def main(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("folders", nargs="+", metavar="folder",
                   help="the output folder of a bench/device_check.sh call (several: one run in several calls)")
    p.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    args = p.parse_args(argv)
    try:
        rows = targets(args.folders)
        if args.json:
            try:
                with open(args.json, "w") as f:
                    json.dump({"folders": args.folders, "targets": rows}, f, indent=1)
            except OSError as e:
                raise UserError("--json %s: cannot write (%s)" % (args.json, e.strerror or e))
    except UserError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 2
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
