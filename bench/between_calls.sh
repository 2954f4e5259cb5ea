#!/usr/bin/env bash
# between_calls.sh: the steps here between the two device_check.sh calls of a QUICK run, done in a second or
# two (the device machine stays warm only about 30 s after a call): unpacks the call's device_check.tgz (the
# device tool's files_at folder) into ARCHIVE_DIR, puts its GPU suite case log, gpu_test_cases.tsv, into the
# carried BIN folder (stage tests_rest of the next call starts from it, on a fresh machine too), and prints
# the call's summary. After the second call the same command archives it (a case log there is harmless).
#
#   bash bench/between_calls.sh FILES_AT [BIN [ARCHIVE_DIR]]
#     defaults: BIN .devbin, ARCHIVE_DIR the repository's bench/out/<time> (git-ignored: copy what a run
#     keeps into bench/results/<date>-<card>/ for RESULTS.md)
# Exits 2 when FILES_AT holds no device_check.tgz, it does not unpack (the folder made for it is removed),
# BIN is not a folder, ARCHIVE_DIR holds files already, or the case log cannot be copied; 0 otherwise
# (without a case log in the archive it removes any in BIN and says so: tests_rest will report NOLOG).
set -uo pipefail
if (($# < 1)); then
    echo "usage: bash bench/between_calls.sh FILES_AT [BIN [ARCHIVE_DIR]]" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FILES_AT=$1 BIN=${2:-.devbin} ARCHIVE=${3:-$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
TGZ=$FILES_AT/device_check.tgz
if [[ ! -f $TGZ ]]; then
    echo "between_calls: no $TGZ: give the folder the device tool returned (files_at) of a device_check.sh call" >&2
    exit 2
fi
if [[ ! -d $BIN ]]; then
    echo "between_calls: $BIN is not a folder: give the BIN folder the calls carry (bench/stage_device_binaries.sh)" >&2
    exit 2
fi
if [[ -e $ARCHIVE && -n $(ls -A "$ARCHIVE" 2>/dev/null) ]]; then
    echo "between_calls: $ARCHIVE holds files already; give a new folder for this call's archive" >&2
    exit 2
fi
mkdir -p "$ARCHIVE"
errors=$(tar xzf "$TGZ" -C "$ARCHIVE" 2>&1)
if (($? != 0)); then
    rm -rf "$ARCHIVE"  # what it made, partly unpacked: a retry may use the same folder
    echo "between_calls: $TGZ does not unpack (${errors%%$'\n'*}); was the call cut while packing?" >&2
    exit 2
fi
echo "between_calls: $TGZ unpacked into $ARCHIVE"
if [[ -f $ARCHIVE/gpu_test_cases.tsv ]]; then
    if ! cp "$ARCHIVE/gpu_test_cases.tsv" "$BIN/gpu_test_cases.tsv"; then
        echo "between_calls: cannot copy the case log into $BIN; tests_rest would start from an older one" >&2
        exit 2
    fi
    echo "between_calls: the GPU suite's case log ($(wc -l <"$ARCHIVE/gpu_test_cases.tsv") lines) is in $BIN for tests_rest"
else
    rm -f "$BIN/gpu_test_cases.tsv"  # an earlier call's would otherwise stand in for this one's
    echo "between_calls: this call left no GPU suite case log (stage tests did not run): tests_rest will say NOLOG"
fi
[[ -f $ARCHIVE/summary.txt ]] && cat "$ARCHIVE/summary.txt"
exit 0
