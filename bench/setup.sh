#!/usr/bin/env bash
# setup.sh: the newcomer's first command: installs the dependencies, builds (Release), and runs the main
# job: `resnest bench` on ResNeSt50 with seeded weights generated in the engine, on the best backend this
# build has (the CPU for now: batch 1, 224x224).
#
#   bash bench/setup.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/install_deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j"$(nproc)"

echo
echo "main job: resnest bench, ResNeSt50 (PaddleClas semantics), seeded weights, CPU backend"
"$BUILD/resnest" bench --model models/resnest50.json --random-weights --batch 1 --iters 10 \
    --json "$BUILD/bench_resnest50_cpu.json"
echo "(JSON report: $BUILD/bench_resnest50_cpu.json)"
