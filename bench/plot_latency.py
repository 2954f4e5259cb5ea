#!/usr/bin/env python3
# plot_latency.py: draws latency (p50) and throughput against batch size for resnest and PyTorch, one line
# per model x precision x runtime, from the JSON that bench/compare_pytorch.py writes.
#
#   python3 bench/plot_latency.py build/compare_pytorch.json                 # writes bench/latency.png
#   python3 bench/plot_latency.py build/compare_pytorch.json --out x.png --each-config
#
# Needs matplotlib (numpy is not needed). resnest lines are solid, PyTorch lines dashed; the PyTorch line
# is the best configuration at each batch size (--each-config draws every configuration instead).
"""Plot p50 latency and throughput against batch size from bench/compare_pytorch.py's JSON: one line per
model x precision x runtime (resnest solid, PyTorch dashed; PyTorch is its best configuration per batch
unless --each-config). Exit status: 0 written, 2 bad usage, a bad file or matplotlib missing."""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_ref  # noqa: E402
from timm_ref import ROOT, UserError  # noqa: E402

PROG = "plot_latency.py"
PRECISION_ORDER = {"fp32": 0, "tf32": 1, "fp16": 2}


def parse_args(argv):
    p = timm_ref.Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", nargs="?", default=os.path.join(ROOT, "build", "compare_pytorch.json"),
                   help="JSON written by bench/compare_pytorch.py --json (default build/compare_pytorch.json)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "latency.png"),
                   help="image to write (default bench/latency.png)")
    p.add_argument("--each-config", action="store_true",
                   help="one PyTorch line per configuration instead of the best per batch size")
    p.add_argument("--dpi", type=int, default=120, help="resolution (default 120)")
    args = p.parse_args(argv)
    if args.dpi < 30 or args.dpi > 600:
        raise UserError("--dpi %d: give a value in [30, 600]" % args.dpi)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise UserError("--out %s: its folder does not exist" % args.out)
    return args


def import_pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("matplotlib is not installed for %s; pip install matplotlib, or plot on the GPU "
                        "machine, which has it" % sys.executable)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_report(path):
    try:
        with open(path) as f:
            report = json.load(f)
    except OSError as e:
        raise UserError("%s: cannot read it (%s)" % (path, e.strerror or e))
    except ValueError as e:
        raise UserError("%s: not valid JSON (%s)" % (path, e))
    if not isinstance(report, dict) or not isinstance(report.get("side_by_side"), list):
        raise UserError("%s: no \"side_by_side\" list; give the file bench/compare_pytorch.py --json writes" % path)
    return report


def add_point(series, key, batch, ms):
    if ms is not None and ms > 0:
        series.setdefault(key, {})[batch] = ms


def collect_series(report, each_config):
    """{(model, precision, runtime label): {batch: p50 ms}}."""
    series = {}
    for r in report["side_by_side"]:
        add_point(series, (r["model"], r["precision"], "resnest"), r["batch"], r.get("resnest_p50_ms"))
        if not each_config:
            add_point(series, (r["model"], r["precision"], "PyTorch"), r["batch"], r.get("pytorch_p50_ms"))
    if each_config:
        for c in report.get("cells", []):
            if "p50_ms" in c:
                add_point(series, (c.get("family", c["model"]), c["precision"], "PyTorch " + c["config"]),
                          c["batch"], c["p50_ms"])
    return series


def draw(plt, series, title, out, dpi):
    fig, (ax_lat, ax_tput) = plt.subplots(1, 2, figsize=(13, 5.5))
    colors = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = sorted(series, key=lambda k: (k[0], PRECISION_ORDER.get(k[1], 9), k[2] != "resnest", k[2]))
    for model, precision, runtime in keys:
        points = sorted(series[(model, precision, runtime)].items())
        batches = [b for b, _ in points]
        ms = [v for _, v in points]
        color = colors.setdefault((model, precision), palette[len(colors) % len(palette)])
        style = dict(color=color, linestyle="-" if runtime == "resnest" else "--", marker="o" if runtime == "resnest"
                     else "s", markersize=4, label="%s %s, %s" % (model, precision, runtime))
        ax_lat.plot(batches, ms, **style)
        ax_tput.plot(batches, [b * 1000.0 / v for b, v in points], **style)
    for ax, ylabel in ((ax_lat, "latency p50 (ms per batch)"), (ax_tput, "throughput (images/s, from p50)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    all_batches = sorted({b for s in series.values() for b in s})
    for ax in (ax_lat, ax_tput):
        ax.set_xticks(all_batches)
        ax.set_xticklabels([str(b) for b in all_batches])
    ax_tput.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


def title_of(report):
    v = report.get("versions", {})
    return "resnest vs PyTorch %s (timm %s) on %s" % (v.get("torch", "?"), v.get("timm", "?"), report.get("gpu", "?"))


def main(argv):
    try:
        args = parse_args(argv)
        report = read_report(args.report)
        series = collect_series(report, args.each_config)
        if not series:
            raise UserError("%s: no latencies to plot (every cell failed or was skipped?)" % args.report)
        plt = import_pyplot()
        draw(plt, series, title_of(report), args.out, args.dpi)
    except UserError as e:
        timm_ref.fail_usage(PROG, str(e))
    except OSError as e:
        timm_ref.fail_usage(PROG, "--out %s: cannot write (%s)" % (args.out, e.strerror or e))
    print("wrote %s (%d lines)" % (args.out, len(series)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
