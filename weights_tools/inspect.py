#!/usr/bin/env python3
"""inspect.py: lists the tensors of a weight file: name, dtype, shape, bytes, min, max, mean, std; and metadata.

  python3 weights_tools/inspect.py W.safetensors [--json]

Reads the runtime's safetensors files and anything convert.py accepts (PaddleClas .pdparams, torch
.pth/.bin, recognised by content, never executing a pickle), listing names as the file has them.
Statistics are computed in float64; a tensor holding NaN or inf is flagged. numpy only.

This file shares its name with the standard library's `inspect`, which numpy imports; when weights_tools/ is on
sys.path (every script here runs with it first), an `import inspect` finds this file, so on import under that
name it hands over the standard library's module instead.
"""
import sys

if __name__ == "inspect":
    import importlib.machinery
    import importlib.util
    import os as _os

    _here = _os.path.dirname(_os.path.realpath(__file__))
    _path = [p for p in sys.path if _os.path.realpath(p or _os.curdir) != _here]
    _spec = importlib.machinery.PathFinder.find_spec("inspect", _path)
    _stdlib_inspect = importlib.util.module_from_spec(_spec)
    sys.modules["inspect"] = _stdlib_inspect
    _spec.loader.exec_module(_stdlib_inspect)
else:
    import argparse
    import json
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np  # noqa: E402

    import safetensors_np  # noqa: E402
    import weight_sources  # noqa: E402
    from source_error import SourceError  # noqa: E402

    PROG = "inspect.py"

    class UsageError(Exception):
        pass

    class _Parser(argparse.ArgumentParser):
        def error(self, message):
            raise UsageError("%s (see --help)" % message)

    def dtype_name(arr):
        return safetensors_np.NAMES.get(arr.dtype.str.replace("|", "<").replace(">", "<"), str(arr.dtype))

    def tensor_stats(name, arr):
        row = {"name": name, "dtype": dtype_name(arr), "shape": list(arr.shape), "bytes": int(arr.nbytes)}
        values = arr.astype(np.float64).ravel()
        finite = values[np.isfinite(values)]
        row["nonfinite"] = int(values.size - finite.size)
        if finite.size:
            row.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
                       std=float(finite.std()))
        else:
            row.update(min=None, max=None, mean=None, std=None)
        return row

    def format_number(v):
        return "-" if v is None else "%.6g" % v

    def print_table(source, rows):
        total_values = sum(int(np.prod(r["shape"], dtype=np.int64)) for r in rows)
        total_bytes = sum(r["bytes"] for r in rows)
        print("%s: %s, %d tensors, %s values, %s bytes" % (source.path, weight_sources.KIND_LABELS[source.kind],
                                                            len(rows), format(total_values, ","),
                                                            format(total_bytes, ",")))
        print("sha256 %s" % source.sha256)
        if source.metadata:
            print("metadata:")
            for k, v in source.metadata.items():
                print("  %s: %s" % (k, v))
        for note in source.notes:
            print("note: %s" % note)
        width = max([len(r["name"]) for r in rows] + [4])
        print("%-*s  %-5s  %-18s  %10s  %12s  %12s  %12s  %12s" % (width, "name", "dtype", "shape", "bytes", "min",
                                                                    "max", "mean", "std"))
        for r in rows:
            flag = "  (%d NaN/inf)" % r["nonfinite"] if r["nonfinite"] else ""
            print("%-*s  %-5s  %-18s  %10d  %12s  %12s  %12s  %12s%s"
                  % (width, r["name"], r["dtype"], "[" + ", ".join(map(str, r["shape"])) + "]", r["bytes"],
                     format_number(r["min"]), format_number(r["max"]), format_number(r["mean"]),
                     format_number(r["std"]), flag))
        bad = [r["name"] for r in rows if r["nonfinite"]]
        if bad:
            print("%d tensors hold NaN or inf: %s" % (len(bad), ", ".join(bad[:10])))

    def main(argv):
        p = _Parser(prog=PROG, description=__doc__.split("\n\nThis file")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("weights", metavar="W", help="weight file (.safetensors, .pdparams, .pth, ...)")
        p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        try:
            a = p.parse_args(argv)
        except UsageError as e:
            print("%s: %s" % (PROG, e), file=sys.stderr)
            return 2
        try:
            source = weight_sources.read_source(a.weights)
        except SourceError as e:
            print("%s: %s: %s" % (PROG, a.weights, " ".join(str(e).split())), file=sys.stderr)
            return 1
        rows = [tensor_stats(name, arr) for name, arr in source.tensors.items()]
        if a.json:
            print(json.dumps({"file": source.path, "format": source.kind, "sha256": source.sha256,
                              "metadata": source.metadata, "notes": source.notes, "tensors": rows}, indent=1))
        else:
            print_table(source, rows)
        return 0

    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
