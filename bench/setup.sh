#!/usr/bin/env bash
# setup.sh: the newcomer's first command: installs the dependencies, builds (Release; the CUDA backend too
# when nvcc and cuDNN are present), and runs the main job: `resnest bench` on ResNeSt50 with seeded weights
# generated in the engine, on the best device present: the GPU (fp16, batches 1, 8, 32, 128) when the build
# has the CUDA backend and a device answers, else the CPU reference backend at batch 1.
#
#   bash bench/setup.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/install_deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j"$(nproc)"

echo
if nvidia-smi -L >/dev/null 2>&1 && "$BUILD/resnest" bench --model models/resnest50.json --random-weights \
    --backend cuda --precision fp16 --batch 1 --iters 1 --warmup 0 >/dev/null 2>&1; then
    echo "main job: resnest bench, ResNeSt50 (PaddleClas semantics), seeded weights, CUDA backend, fp16"
    "$BUILD/resnest" bench --model models/resnest50.json --random-weights --backend cuda --precision fp16 \
        --batch 1,8,32,128 --json "$BUILD/bench_resnest50_cuda_fp16.json"
    echo "(JSON report: $BUILD/bench_resnest50_cuda_fp16.json)"
else
    echo "main job: resnest bench, ResNeSt50 (PaddleClas semantics), seeded weights, CPU backend (no usable GPU here)"
    "$BUILD/resnest" bench --model models/resnest50.json --random-weights --batch 1 --iters 10 \
        --json "$BUILD/bench_resnest50_cpu.json"
    echo "(JSON report: $BUILD/bench_resnest50_cpu.json)"
fi
