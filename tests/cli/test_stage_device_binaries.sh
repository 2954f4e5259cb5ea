#!/usr/bin/env bash
# test_stage_device_binaries.sh: bench/stage_device_binaries.sh on a stand-in build folder: what it copies
# (resnest, the GPU test executable, every lab, nothing else), its size line, and its refusals; and
# bench/between_calls.sh on a stand-in device_check.tgz (what it unpacks, the case log it carries, refusals).
#
#   bash tests/cli/test_stage_device_binaries.sh SOURCE_DIR
set -uo pipefail
SRC=$1
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
STAGE=$SRC/bench/stage_device_binaries.sh

mkdir -p "$TMP/build/tests" "$TMP/build/kernels/lab"
for f in resnest tests/resnest_cuda_tests kernels/lab/lab_split_attention_pool kernels/lab/lab_linear_rows; do
    head -c 4096 /dev/urandom >"$TMP/build/$f"
    chmod +x "$TMP/build/$f"
done
echo "not a lab" >"$TMP/build/kernels/lab/lab_notes.txt"  # not executable: left behind
bash "$STAGE" "$TMP/build" "$TMP/devbin" >"$TMP/out" 2>&1
rc=$?
((rc == 0)) && ok || bad "staging exited $rc: $(cat "$TMP/out")"
[[ $(ls "$TMP/devbin" | tr '\n' ' ') == "lab_linear_rows lab_split_attention_pool resnest resnest_cuda_tests " ]] && ok ||
    bad "staged: $(ls "$TMP/devbin")"
cmp -s "$TMP/build/tests/resnest_cuda_tests" "$TMP/devbin/resnest_cuda_tests" && ok || bad "the test executable differs"
[[ -x $TMP/devbin/resnest ]] && ok || bad "resnest is not executable there"
grep -q "resnest_cuda_tests and 2 kernel labs: 0 MiB of the 64 MiB" "$TMP/out" && ok || bad "size line: $(cat "$TMP/out")"
# A second staging replaces the folder: a lab the build no longer has is gone, and so is a case log.
touch "$TMP/devbin/lab_gone" "$TMP/devbin/gpu_test_cases.tsv"
bash "$STAGE" "$TMP/build" "$TMP/devbin" >/dev/null 2>&1
[[ ! -e $TMP/devbin/lab_gone && ! -e $TMP/devbin/gpu_test_cases.tsv ]] && ok || bad "a stale file stayed"
# A folder that holds anything else, or a file, is not emptied: exit 2, its files kept; an empty one is taken.
mkdir -p "$TMP/mine"
echo "keep" >"$TMP/mine/notes.txt"
expect 2 "did not put there" -- bash "$STAGE" "$TMP/build" "$TMP/mine"
[[ $(cat "$TMP/mine/notes.txt" 2>/dev/null) == keep ]] && ok || bad "a foreign folder's file was removed"
echo "keep" >"$TMP/afile"
expect 2 "did not put there" -- bash "$STAGE" "$TMP/build" "$TMP/afile"
mkdir -p "$TMP/empty"
expect 0 "2 kernel labs" -- bash "$STAGE" "$TMP/build" "$TMP/empty"
# A build without the GPU test executable: exit 2, one line saying what to build.
rm "$TMP/build/tests/resnest_cuda_tests"
expect 2 "RESNEST_CUDA=ON" -- bash "$STAGE" "$TMP/build" "$TMP/devbin2"
# Over 64 MiB: exit 1.
head -c 4096 /dev/urandom >"$TMP/build/tests/resnest_cuda_tests"
chmod +x "$TMP/build/tests/resnest_cuda_tests"
truncate -s 65M "$TMP/build/kernels/lab/lab_linear_rows"
expect 1 "over the 64 MiB carry limit" -- bash "$STAGE" "$TMP/build" "$TMP/devbin3"

# between_calls.sh: a call's archive unpacked, its case log into BIN (which staging keeps accepting), the
# summary printed; a second archive of the same call refused; a call without a case log said so.
BETWEEN=$SRC/bench/between_calls.sh
mkdir -p "$TMP/call/pack" "$TMP/files_at" "$TMP/devbin4"
printf 'start\tcase one\npass\tcase one\nstart\tcase two\n' >"$TMP/call/pack/gpu_test_cases.tsv"
printf 'gpu_tests                    TIMEOUT      240s\n' >"$TMP/call/pack/summary.txt"
echo '{"results": []}' >"$TMP/call/pack/bench_resnest50_fp16.json"
tar czf "$TMP/files_at/device_check.tgz" -C "$TMP/call/pack" .
bash "$BETWEEN" "$TMP/files_at" "$TMP/devbin4" "$TMP/archive1" >"$TMP/between.out" 2>&1
rc=$?
((rc == 0)) && ok || bad "between_calls exited $rc: $(cat "$TMP/between.out")"
cmp -s "$TMP/call/pack/gpu_test_cases.tsv" "$TMP/devbin4/gpu_test_cases.tsv" && ok || bad "the case log was not carried"
cmp -s "$TMP/call/pack/bench_resnest50_fp16.json" "$TMP/archive1/bench_resnest50_fp16.json" && ok || bad "not unpacked"
grep -q "gpu_tests .*TIMEOUT" "$TMP/between.out" && ok || bad "summary not printed: $(cat "$TMP/between.out")"
grep -q "case log (3 lines)" "$TMP/between.out" && ok || bad "case log line: $(cat "$TMP/between.out")"
expect 2 "holds files already" -- bash "$BETWEEN" "$TMP/files_at" "$TMP/devbin4" "$TMP/archive1"
rm "$TMP/call/pack/gpu_test_cases.tsv"
tar czf "$TMP/files_at/device_check.tgz" -C "$TMP/call/pack" .
expect 0 "no GPU suite case log" -- bash "$BETWEEN" "$TMP/files_at" "$TMP/devbin4" "$TMP/archive2"
[[ ! -e $TMP/devbin4/gpu_test_cases.tsv ]] && ok || bad "an earlier call's case log stayed in BIN"
expect 2 "no .*device_check.tgz" -- bash "$BETWEEN" "$TMP/call" "$TMP/devbin4" "$TMP/archive3"
expect 2 "is not a folder" -- bash "$BETWEEN" "$TMP/files_at" "$TMP/missing_bin" "$TMP/archive4"
head -c 100 "$TMP/files_at/device_check.tgz" >"$TMP/files_at/cut.tgz" && mv "$TMP/files_at/cut.tgz" "$TMP/files_at/device_check.tgz"
expect 2 "does not unpack" -- bash "$BETWEEN" "$TMP/files_at" "$TMP/devbin4" "$TMP/archive5"
[[ ! -e $TMP/archive5 ]] && ok || bad "a cut archive left its folder: $(ls -A "$TMP/archive5")"
expect 2 "usage" -- bash "$BETWEEN"
finish
