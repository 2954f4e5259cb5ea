#!/usr/bin/env bash
# between_calls.sh: the steps here between the two device_check.sh calls of a QUICK run, done in a second or
# two (the device machine stays warm only about 30 s after a call): unpacks the call's device_check.tgz (the
# device tool's files_at folder) into ARCHIVE_DIR, puts its GPU suite case log, gpu_test_cases.tsv, into the
# carried BIN folder (stage tests_rest of the next call starts from it, on a fresh machine too), and prints
# the call's summary. After the second call the same command archives it (a case log there is harmless).
#
#   bash bench/between_calls.sh FILES_AT [BIN [ARCHIVE_DIR]]   # defaults: .devbin, bench/out/<call time>
# Exits 2 when FILES_AT holds no device_check.tgz, it does not unpack, BIN is not a folder, or ARCHIVE_DIR
# holds files already; 0 otherwise (without a case log it says so: tests_rest will then report NOLOG).
set -uo pipefail
if (($# < 1)); then
    echo "usage: bash bench/between_calls.sh FILES_AT [BIN [ARCHIVE_DIR]]" >&2
    exit 2
fi
FILES_AT=$1 BIN=${2:-.devbin} ARCHIVE=${3:-bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
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
if ! tar xzf "$TGZ" -C "$ARCHIVE" 2>"$ARCHIVE/.tar_errors"; then
    echo "between_calls: $TGZ does not unpack ($(head -1 "$ARCHIVE/.tar_errors")); was the call cut while packing?" >&2
    exit 2
fi
rm -f "$ARCHIVE/.tar_errors"
echo "between_calls: $TGZ unpacked into $ARCHIVE"
if [[ -f $ARCHIVE/gpu_test_cases.tsv ]]; then
    cp "$ARCHIVE/gpu_test_cases.tsv" "$BIN/gpu_test_cases.tsv"
    echo "between_calls: the GPU suite's case log ($(wc -l <"$ARCHIVE/gpu_test_cases.tsv") lines) is in $BIN for tests_rest"
else
    echo "between_calls: this call left no GPU suite case log (stage tests did not run): tests_rest will say NOLOG"
fi
[[ -f $ARCHIVE/summary.txt ]] && cat "$ARCHIVE/summary.txt"
exit 0
