#!/usr/bin/env bash
# stage_device_binaries.sh: copies what bench/device_check.sh runs on the GPU machine (resnest, the GPU test
# executable, the kernel labs) out of a CUDA build (sm_90 by default) into one small folder to carry there,
# and says its size (the device tool carries 64 MiB at most). Then, on the GPU machine:
#   BIN=.devbin QUICK=1 DEADLINE_S=480 STAGES="..." bash bench/device_check.sh
#
#   bash bench/stage_device_binaries.sh [BUILD_DIR [DEST]]   # defaults: build, .devbin
# Exits 2 when the build lacks resnest or the GPU test executable, or DEST holds files of something else; 1
# when the folder passes 64 MiB.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build} DEST=${2:-.devbin}
if [[ ! -x $BUILD/resnest || ! -x $BUILD/tests/resnest_cuda_tests ]]; then
    echo "stage_device_binaries: $BUILD has no resnest or tests/resnest_cuda_tests; configure it with" \
        "-DRESNEST_CUDA=ON and build targets all and labs first" >&2
    exit 2
fi
# DEST is emptied first, so it must be a new folder or one holding only what staging puts there (and the case
# log a device_check.sh call brought back, gpu_test_cases.tsv).
if [[ -e $DEST ]]; then
    foreign=$DEST  # a file
    [[ -d $DEST ]] && foreign=$(ls -A "$DEST" | {
        grep -v -x -E 'resnest|resnest_cuda_tests|lab_[A-Za-z0-9_]+|gpu_test_cases\.tsv' || true
    } | head -1)
    if [[ -n $foreign ]]; then
        echo "stage_device_binaries: $DEST holds files this script did not put there ($foreign); give a new" \
            "folder (it empties the one it is given)" >&2
        exit 2
    fi
fi
rm -rf "$DEST"
mkdir -p "$DEST"
cp "$BUILD/resnest" "$BUILD/tests/resnest_cuda_tests" "$DEST/"
labs=0
for lab in "$BUILD"/kernels/lab/lab_*; do
    [[ -f $lab && -x $lab ]] || continue
    cp "$lab" "$DEST/"
    labs=$((labs + 1))
done
bytes=$(du -sb "$DEST" | cut -f1)
echo "stage_device_binaries: $DEST holds resnest, resnest_cuda_tests and $labs kernel labs:" \
    "$((bytes >> 20)) MiB of the 64 MiB the device tool carries"
if ((bytes >= 64 << 20)); then
    echo "stage_device_binaries: $DEST is over the 64 MiB carry limit; leave the labs out" >&2
    exit 1
fi
