#!/usr/bin/env bash
# stage_device_binaries.sh: copies what bench/device_check.sh runs on the GPU machine (resnest, the GPU test
# executable, the kernel labs) out of a CUDA build (sm_90 by default) into one small folder to carry there,
# and says its size (the device tool carries 64 MiB at most). Then, on the GPU machine:
#   BIN=.devbin QUICK=1 DEADLINE_S=480 STAGES="..." bash bench/device_check.sh
#
#   bash bench/stage_device_binaries.sh [BUILD_DIR [DEST]]   # defaults: build, .devbin
# Exits 2 when the build lacks resnest or the GPU test executable, 1 when the folder passes 64 MiB.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build} DEST=${2:-.devbin}
if [[ ! -x $BUILD/resnest || ! -x $BUILD/tests/resnest_cuda_tests ]]; then
    echo "stage_device_binaries: $BUILD has no resnest or tests/resnest_cuda_tests; configure it with" \
        "-DRESNEST_CUDA=ON and build targets all and labs first" >&2
    exit 2
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
