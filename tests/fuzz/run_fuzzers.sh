#!/usr/bin/env bash
# run_fuzzers.sh: builds the libFuzzer targets (clang, ASan + UBSan, into build-fuzz/) and runs each one for
# SECONDS seconds, one worker, niced, starting from tests/fuzz/corpus/<target> and a dictionary. Prints
# each target's executions, coverage, corpus size and findings; exits 1 when anything was found.
#
#   bash tests/fuzz/run_fuzzers.sh SECONDS [target ...]     # targets: graph safetensors npy image (default: all)
#
# Findings (crash-*, leak-*, timeout-*, oom-*) land in build-fuzz/findings/<target>/; replay one with
#   build-fuzz/tests/fuzz/fuzz_<target> build-fuzz/findings/<target>/crash-...
# The corpus the run grows stays in build-fuzz/corpus/<target>/; the seeds in the repository are not touched.
# A run stops at its first finding; FUZZ_KEEP_GOING=1 instead runs libFuzzer's fork mode with one child
# (-fork=1 -ignore_crashes=1), which records each finding and goes on for the whole time: for fuzzing past
# a known finding that is not fixed yet.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: bash tests/fuzz/run_fuzzers.sh SECONDS [graph|safetensors|npy|image ...]" >&2
    exit 2
fi
SECONDS_EACH=$1
shift
TARGETS=("$@")
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=(graph safetensors npy image)
BUILD=${BUILD_FUZZ:-build-fuzz}
command -v clang++ >/dev/null || { echo "run_fuzzers.sh: clang++ not found (apt-get install clang)" >&2; exit 2; }

CXX=clang++ cmake -S . -B "$BUILD" -DRESNEST_FUZZ=ON -DRESNEST_BUILD_TESTS=OFF -DRESNEST_CUDA=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-1}" $(printf -- '--target fuzz_%s ' "${TARGETS[@]}") >/dev/null

declare -A MAX_LEN=([graph]=65536 [safetensors]=65536 [npy]=4096 [image]=65536)
status=0
summary=()
for t in "${TARGETS[@]}"; do
    [[ -n ${MAX_LEN[$t]:-} ]] || { echo "run_fuzzers.sh: unknown target '$t'" >&2; exit 2; }
    work="$BUILD/corpus/$t" findings="$BUILD/findings/$t" log="$BUILD/fuzz_$t.log" rundir="$BUILD/run/$t"
    mkdir -p "$work" "$findings" "$rundir"
    echo "== fuzz_$t: ${SECONDS_EACH} s, log $log"
    # -timeout: one input running 10 s is a hang; -malloc_limit_mb: a small input must not ask for 512 MiB.
    # -jobs=1 -workers=1 runs one fuzzing process whose output goes to fuzz-0.log in the working folder:
    # one folder per target, so runs of different targets at the same time keep their logs apart.
    flags=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512
           -max_len="${MAX_LEN[$t]}" -use_value_profile=1 -print_final_stats=1
           -dict="$PWD/tests/fuzz/$t.dict" -artifact_prefix="$PWD/$findings/")
    if [[ ${FUZZ_KEEP_GOING:-0} == 1 ]]; then
        nice -n 10 "$BUILD/tests/fuzz/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
            "${flags[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || true
    else
        (cd "$rundir" && rm -f fuzz-0.log &&
            nice -n 10 "$OLDPWD/$BUILD/tests/fuzz/fuzz_$t" -jobs=1 -workers=1 "${flags[@]}" \
                "$OLDPWD/$work" "$OLDPWD/tests/fuzz/corpus/$t" >/dev/null 2>&1 || true
            mv -f fuzz-0.log "$OLDPWD/$log" || true)
    fi
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1 || true)
    if [[ -z $execs ]]; then  # fork mode, or stopped by a finding: take the last progress line
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
    fi
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
    corpus_files=$(find "$work" -type f | wc -l)
    corpus_bytes=$(du -sb "$work" | cut -f1)
    found=$(find "$findings" -type f | wc -l)
    line="fuzz_$t: ${SECONDS_EACH} s, ${execs:-?} executions, ${cov:-cov: ?}, corpus ${corpus_files} files / ${corpus_bytes} bytes, findings: $found"
    echo "$line"
    if [[ $found -gt 0 ]]; then
        status=1
        find "$findings" -type f | sed 's/^/    /'
        grep -m3 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' "$log" | sed 's/^/    /' || true
    fi
    summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
