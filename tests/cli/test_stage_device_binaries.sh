#!/usr/bin/env bash
# test_stage_device_binaries.sh: bench/stage_device_binaries.sh on a stand-in build folder: what it copies
# (resnest, the GPU test executable, every lab, nothing else), its size line, and its refusals.
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
finish
