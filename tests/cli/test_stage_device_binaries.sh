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
# A second staging replaces the folder: a file left from before is gone.
touch "$TMP/devbin/stale"
bash "$STAGE" "$TMP/build" "$TMP/devbin" >/dev/null 2>&1
[[ ! -e $TMP/devbin/stale ]] && ok || bad "a stale file stayed"
# A build without the GPU test executable: exit 2, one line saying what to build.
rm "$TMP/build/tests/resnest_cuda_tests"
expect 2 "RESNEST_CUDA=ON" -- bash "$STAGE" "$TMP/build" "$TMP/devbin2"
# Over 64 MiB: exit 1.
head -c 4096 /dev/urandom >"$TMP/build/tests/resnest_cuda_tests"
chmod +x "$TMP/build/tests/resnest_cuda_tests"
truncate -s 65M "$TMP/build/kernels/lab/lab_linear_rows"
expect 1 "over the 64 MiB carry limit" -- bash "$STAGE" "$TMP/build" "$TMP/devbin3"
finish
