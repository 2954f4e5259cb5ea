#!/usr/bin/env python3
"""test_targets.py: bench/targets.py, the performance targets table of a device_check.sh output folder.

  python3 tests/bench/test_targets.py

1. Two archived GPU runs (bench/results/): the table must give the numbers bench/RESULTS.md published for
   them, worked out by hand from the same files when those runs were recorded.
2. Made-up folders: every target met exactly at its limit; each missed by a known factor; a failed or
   non-finite PyTorch cell never taken as PyTorch's best, nor PyTorch run on the CPU; a CPU report and
   missing files "not measured"; batch 1 without PyTorch judged on its time alone.
3. Errors: no folder, a truncated report, a report without its latencies, zeros that would be divided by,
   files of the wrong shape: exit status 2, one line naming the file, never a traceback.
Prints one line per check and, last, "N passed, M failed"; exits 1 if any check failed.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(ROOT, "bench", "targets.py")
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else ": " + detail))


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def table(*folders):
    """{target: (measured, verdict)} from the Markdown table, the exit status and stderr."""
    rc, out, err = run(*folders)
    rows = {}
    for line in out.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3:
            rows[cells[0]] = (cells[1], cells[2])
    return rc, rows, err


def find(rows, start):
    for target, cells in rows.items():
        if target.startswith(start):
            return cells
    return ("<no row starting %r>" % start, "")


def has_all(text, parts):
    return all(p in text for p in parts)


def archived_runs():
    # 2026-11-28, commit 6ebbad4 (bench/RESULTS.md "Targets, from this run").
    rc, rows, err = table(os.path.join(ROOT, "bench", "results", "2026-11-28-h200-6ebbad4"))
    check("6ebbad4: exit 0", rc == 0, err)
    m, v = find(rows, "ResNeSt50 bs1")
    check("6ebbad4: bs1 0.574 ms, 1.83x torch.compile, missed by 1.64x in time",
          has_all(m, ["0.574 ms", "1.83x fp16-compiled"]) and "missed by 1.64x in time" in v, m + " | " + v)
    m, v = find(rows, "ResNeSt50 bs8")
    check("6ebbad4: bs8 1.194 ms, missed by 2.0x", m == "1.194 ms" and v == "missed by 1.99x", m + " | " + v)
    m, v = find(rows, "ResNeSt50 bs128")
    check("6ebbad4: bs128 1.62x torch.compile (9.840 ms), missed", has_all(m, ["1.62x fp16-compiled", "9.840"])
          and v.startswith("missed"), m + " | " + v)
    m, v = find(rows, "ResNeSt50 fp32")
    check("6ebbad4: fp32 2.07 / 1.42 / 1.56 / 1.74x, fast 2.78 / 1.61 / 1.38 / 1.40x; bs8 below 1.5x",
          has_all(m, ["bs1 2.07x", "bs8 1.42x", "bs32 1.56x", "bs128 1.74x", "fast bs1 2.78x", "bs8 1.61x",
                      "bs32 1.38x", "bs128 1.40x"]) and v.startswith("met at 3 of 4"), m + " | " + v)
    m, v = find(rows, "split-attention tax")
    check("6ebbad4: tax 21,101 / 31,026 = 0.68, missed", has_all(m, ["21101 / 31026 = 0.680"]) and
          v.startswith("missed"), m + " | " + v)
    m, v = find(rows, "peak device memory")
    check("6ebbad4: memory 0.53x torch.compile (fp16), 0.49x (fp32): missed against torch.compile",
          has_all(m, ["fp16", "= 0.53 (fp16-compiled)", "fp32", "= 0.49 (fp32-graph)"]) and v.startswith("missed"),
          m + " | " + v)
    m, v = find(rows, "cold start")
    check("6ebbad4: cold start 1.711 s first (met), 0.805 s cached (missed)",
          m == "1.711 s / 0.805 s" and v.startswith("first met, cached missed"), m + " | " + v)

    # 2026-11-28, commit 6c76e06.
    rc, rows, err = table(os.path.join(ROOT, "bench", "results", "2026-11-28-h200"))
    check("6c76e06: exit 0", rc == 0, err)
    m, v = find(rows, "ResNeSt50 bs1")
    check("6c76e06: bs1 1.162 ms, 0.96x torch.compile", has_all(m, ["1.162 ms", "0.96x fp16-compiled"]), m)
    m, v = find(rows, "ResNeSt50 bs8")
    check("6c76e06: bs8 1.498 ms, missed by 2.5x", m == "1.498 ms" and v == "missed by 2.50x", m + " | " + v)
    m, v = find(rows, "ResNeSt50 bs128")
    check("6c76e06: bs128 1.53x torch.compile (9.134 ms)", has_all(m, ["1.53x fp16-compiled", "9.134"]), m)
    m, v = find(rows, "split-attention tax")
    check("6c76e06: tax 0.70, missed", "= 0.703" in m and v.startswith("missed"), m + " | " + v)
    m, v = find(rows, "cold start")
    check("6c76e06: cold start 1.52 s / 0.856 s", m == "1.520 s / 0.856 s", m)

    # A run in two calls: 6c76e06's folder, then one holding only 6ebbad4's cold-start reports.
    with tempfile.TemporaryDirectory() as d:
        for kind in ("first", "cached"):
            name = "coldstart_resnest50_%s.json" % kind
            shutil.copy(os.path.join(ROOT, "bench", "results", "2026-11-28-h200-6ebbad4", name), d)
        rc, rows, err = table(os.path.join(ROOT, "bench", "results", "2026-11-28-h200"), d)
        check("two folders: the later folder's cold start (1.711 / 0.805 s), the earlier's latencies (1.162 ms)",
              rc == 0 and find(rows, "cold start")[0] == "1.711 s / 0.805 s" and
              "1.162 ms" in find(rows, "ResNeSt50 bs1")[0], str(rows) + err)


# ----------------------------------------------------------------------------------------- made-up folders

def bench_report(folder, graph, precision, rows, backend="cuda"):
    """A `resnest bench --json` report: rows (batch, p50 ms, img/s, device memory bytes)."""
    report = {"tool": "resnest bench", "config": {"backend": backend, "precision": precision},
              "machine": {"gpu": {"name": "made-up GPU"}} if backend == "cuda" else {"cpu": "x"},
              "results": [{"batch": b, "gpu_latency_ms": {"p50": ms, "p90": ms * 1.01}, "throughput_img_s": ips,
                           "device_memory_bytes": mem, "precision": precision} for b, ms, ips, mem in rows]}
    with open(os.path.join(folder, "bench_%s_%s.json" % (graph, precision)), "w") as f:
        json.dump(report, f)


def compare_report(folder, name, cells, device="cuda"):
    """A compare_pytorch.py report: cells (family, config, precision, batch, p50 ms, peak bytes, finite)."""
    report = {"tool": "bench/compare_pytorch.py", "device": device, "cells": [
        {"family": fam, "config": cfg, "precision": prec, "batch": b, "p50_ms": ms, "img_s": b * 1000.0 / ms,
         "peak_allocated_bytes": peak, "finite_output": finite} for fam, cfg, prec, b, ms, peak, finite in cells]}
    with open(os.path.join(folder, name), "w") as f:
        json.dump(report, f)


def coldstart(folder, kind, seconds, process_seconds=None):
    report = {"first_result_s": seconds, "load_plan_s": seconds / 2}
    if process_seconds is not None:
        report["process_first_result_s"] = process_seconds
    with open(os.path.join(folder, "coldstart_resnest50_%s.json" % kind), "w") as f:
        json.dump(report, f)


def made_up_runs():
    MiB = 2**20
    with tempfile.TemporaryDirectory() as d:
        # Every target met at exactly its limit (binary-exact values): bs1 0.25 ms against PyTorch's
        # 0.875 ms (3.5x), bs8 0.6 ms... bs128 2x, fp32 1.5x, tax 0.72, memory half, cold start 2 s / 0.3 s.
        s = random.choice([1.0, 2.0, 4.0])  # a scale the verdicts must not depend on
        bench_report(d, "resnest50", "fp16", [(1, 0.25, 4000, 512 * MiB), (8, 0.6, 13333, 512 * MiB),
                                              (128, 4.0 * s, 7200, 512 * MiB)])
        bench_report(d, "resnest50_fast_1s1x64d", "fp16", [(128, 3.0, 10000, 400 * MiB)])
        bench_report(d, "resnest50", "fp32", [(1, 1.0, 1000, 1024 * MiB), (128, 8.0, 16000, 1024 * MiB)])
        compare_report(d, "compare_pytorch.json", [
            ("ResNeSt50", "fp16-cl-graph", "fp16", 1, 1.5, 900 * MiB, True),
            ("ResNeSt50", "fp16-cl-graph", "fp16", 128, 10.0 * s, 1500 * MiB, True),
            ("ResNeSt50", "fp16-bad", "fp16", 128, 0.5, 10 * MiB, False),  # non-finite output: never the best
            ("ResNeSt50", "fp32-graph", "fp32", 1, 1.5, 2048 * MiB, True),
            ("ResNeSt50", "fp32-graph", "fp32", 128, 12.0, 2048 * MiB, True)])
        compare_report(d, "compare_pytorch_compiled.json", [
            ("ResNeSt50", "fp16-compiled", "fp16", 1, 0.875, 800 * MiB, True),
            ("ResNeSt50", "fp16-compiled", "fp16", 128, 8.0 * s, 1024 * MiB, True)])
        coldstart(d, "first", 2.0)
        coldstart(d, "cached", 0.3)
        rc, rows, err = table(d)
        check("at the limits: exit 0, seven rows", rc == 0 and len(rows) == 7, "%d %s" % (rc, err))
        for target, (m, v) in rows.items():
            check("at the limits: met: " + target[:40], v == "met", m + " | " + v)
        m, _ = find(rows, "ResNeSt50 bs128")
        check("the best PyTorch cell is torch.compile's, from the second file, not the non-finite one",
              "2.00x fp16-compiled" in m, m)

        # One step past each limit: missed by a known factor.
        bench_report(d, "resnest50", "fp16", [(1, 0.4375, 2286, 512 * MiB), (8, 0.9, 8889, 512 * MiB),
                                              (128, 5.0 * s, 5400, 512 * MiB)])
        bench_report(d, "resnest50", "fp32", [(1, 1.25, 800, 1024 * MiB), (128, 8.0, 16000, 1024 * MiB)])
        coldstart(d, "cached", 0.45)
        compare_report(d, "compare_pytorch_compiled.json", [
            ("ResNeSt50", "fp16-compiled", "fp16", 1, 0.875, 800 * MiB, True),
            ("ResNeSt50", "fp16-compiled", "fp16", 128, 8.0 * s, 640 * MiB, True)])
        rc, rows, err = table(d)
        m, v = find(rows, "ResNeSt50 bs1")
        check("bs1 0.4375 ms, 2x: missed by 1.25x in time and 1.75x in ratio",
              v == "missed by 1.25x in time, missed by 1.75x in ratio", m + " | " + v)
        check("bs8 0.9 ms: missed by 1.50x", find(rows, "ResNeSt50 bs8")[1] == "missed by 1.50x")
        check("bs128 1.6x: missed by 1.25x", find(rows, "ResNeSt50 bs128")[1] == "missed by 1.25x",
              str(find(rows, "ResNeSt50 bs128")))
        m, v = find(rows, "ResNeSt50 fp32")
        check("fp32 1.2x at bs1, 1.5x at bs128: met at 1 of 2, missed by 1.25x",
              v == "met at 1 of 2 batches; missed by 1.25x", m + " | " + v)
        check("tax 0.54: missed by 1.33x", find(rows, "split-attention tax")[1] == "missed by 1.33x",
              str(find(rows, "split-attention tax")))
        check("memory 512 / 640 MiB = 0.8: missed by 1.60x", find(rows, "peak device memory")[1] == "missed by 1.60x",
              str(find(rows, "peak device memory")))
        check("cached 0.45 s: missed by 1.50x", find(rows, "cold start")[1] == "first met, cached missed by 1.50x",
              str(find(rows, "cold start")))
        # The time since the process started is shown beside it, never judged: 0.29 s would meet 0.3 s, 2.4 s
        # would miss 2 s, and the verdicts stay those of load + plan to the first result.
        coldstart(d, "first", 2.0, process_seconds=2.4)
        coldstart(d, "cached", 0.45, process_seconds=0.29)
        rc, rows, err = table(d)
        check("since the process started: shown, not judged",
              find(rows, "cold start") == ("2.000 s / 0.450 s (since the process started: 2.40 s / 0.29 s)",
                                           "first met, cached missed by 1.50x"), str(find(rows, "cold start")))
        coldstart(d, "first", 2.0, process_seconds=0)
        rc, rows, err = table(d)
        check("a process time of 0: exit 2 naming the file and the key",
              rc == 2 and "coldstart_resnest50_first.json" in err and "process_first_result_s" in err, err)
        coldstart(d, "first", 2.0)
        coldstart(d, "cached", 0.45)
        rc, rows, err = table(d)

        out = os.path.join(d, "targets.json")
        rc, _, err = run(d, "--json", out)
        written = json.load(open(out)) if rc == 0 and os.path.exists(out) else {}
        check("--json writes the same rows", rc == 0 and [r["verdict"] for r in written.get("targets", [])] ==
              [v for _, v in rows.values()], err)

    with tempfile.TemporaryDirectory() as d:
        # A CPU report (a dry run) and nothing else: every target not measured.
        bench_report(d, "resnest50", "fp16", [(1, 250.0, 4, 300 * MiB), (8, 0.5, 16000, 300 * MiB)], backend="cpu")
        rc, rows, err = table(d)
        check("a CPU report and no other file: exit 0, every target not measured",
              rc == 0 and len(rows) == 7 and all(v == "not measured" for _, v in rows.values()), str(rows) + err)

    with tempfile.TemporaryDirectory() as d:
        # PyTorch that ran on the CPU (no CUDA in its environment): never PyTorch's best. resnest's bs1 time
        # is then judged alone, met or missed, its ratio not measured.
        bench_report(d, "resnest50", "fp16", [(1, 0.3, 3333, 300 * MiB), (128, 5.0, 25600, 300 * MiB)])
        compare_report(d, "compare_pytorch.json", [
            ("ResNeSt50", "fp16-cl", "fp16", 1, 900.0, 0, True),
            ("ResNeSt50", "fp16-cl", "fp16", 128, 90000.0, 0, True)], device="cpu")
        rc, rows, err = table(d)
        m, v = find(rows, "ResNeSt50 bs1")
        check("PyTorch on the CPU not counted; bs1 0.3 ms judged alone: time met, ratio not measured",
              rc == 0 and v == "time met, ratio not measured" and "PyTorch not measured" in m, m + " | " + v + err)
        check("PyTorch on the CPU not counted: bs128 not measured", find(rows, "ResNeSt50 bs128")[1] == "not measured",
              str(find(rows, "ResNeSt50 bs128")))
        bench_report(d, "resnest50", "fp16", [(1, 0.525, 1905, 300 * MiB)])
        rc, rows, err = table(d)
        v = find(rows, "ResNeSt50 bs1")[1]
        check("bs1 0.525 ms without PyTorch: missed by 1.50x in time, ratio not measured",
              v == "missed by 1.50x in time, ratio not measured", v + err)


def errors():
    rc, out, err = run("/nonexistent/folder")
    check("no folder: exit 2, named", rc == 2 and "/nonexistent/folder" in err and not out, err)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench_resnest50_fp16.json")
        with open(path, "w") as f:
            f.write('{"results": [{"batch": 1, "gpu_lat')  # cut short
        rc, out, err = run(d)
        check("a truncated report: exit 2, the file named", rc == 2 and path in err and len(err.splitlines()) == 1,
              err)
        with open(path, "w") as f:
            json.dump({"config": {"backend": "cuda"}, "machine": {"gpu": {"name": "x"}},
                       "results": [{"batch": 1, "throughput_img_s": 1.0}]}, f)
        rc, out, err = run(d)
        check("a report without latencies: exit 2, the file and key named",
              rc == 2 and path in err and "latency_ms.p50" in err, err)
        os.remove(path)
        with open(os.path.join(d, "compare_pytorch.json"), "w") as f:
            json.dump({"device": "cuda", "cells": [{"family": "ResNeSt50", "precision": "fp16", "batch": 1, "p50_ms": "fast",
                                  "img_s": 1.0}]}, f)
        rc, out, err = run(d)
        check("a PyTorch cell whose p50 is not a number: exit 2, named", rc == 2 and "p50_ms" in err, err)
        for peak in ("big", -1):
            with open(os.path.join(d, "compare_pytorch.json"), "w") as f:
                json.dump({"device": "cuda", "cells": [{"family": "ResNeSt50", "precision": "fp16", "batch": 128,
                                                        "p50_ms": 9.0, "img_s": 14000.0,
                                                        "peak_allocated_bytes": peak}]}, f)
            rc, out, err = run(d)
            check("PyTorch's peak memory %r: exit 2, named" % (peak,),
                  rc == 2 and "peak_allocated_bytes" in err and "Traceback" not in err, err)
    # Numbers that cannot be divided by, and files of the wrong shape: exit 2 with the file named, never a
    # traceback.
    good = {"config": {"backend": "cuda"}, "machine": {"gpu": {"name": "x"}},
            "results": [{"batch": 128, "gpu_latency_ms": {"p50": 1.0}, "throughput_img_s": 1.0,
                         "device_memory_bytes": 1}]}
    for what, report, key in (
            ("a zero p50", dict(good, results=[dict(good["results"][0], gpu_latency_ms={"p50": 0})]), "p50"),
            ("a zero img/s", dict(good, results=[dict(good["results"][0], throughput_img_s=0)]), "throughput"),
            ("a row that is a list", dict(good, results=[[128, 1.0]]), "results"),
            ("results that are an object", dict(good, results={"batch": 1}), "results"),
            ("a report that is a list", [good], "not a report")):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bench_resnest50_fp16.json")
            with open(path, "w") as f:
                json.dump(report, f)
            rc, out, err = run(d)
            check(what + ": exit 2, the file and what is wrong named",
                  rc == 2 and path in err and key in err and "Traceback" not in err, "%d %s" % (rc, err))
    with tempfile.TemporaryDirectory() as d:  # "config": null is a report without a config, not a crash
        with open(os.path.join(d, "bench_resnest50_fp16.json"), "w") as f:
            json.dump(dict(good, config=None), f)
        rc, out, err = run(d)
        check("config null: exit 0, read", rc == 0 and "Traceback" not in err, err)
    rc, out, err = run()
    check("no argument: usage, exit 2", rc == 2 and "usage" in err, err)


def main():
    archived_runs()
    made_up_runs()
    errors()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
