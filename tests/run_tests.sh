#!/usr/bin/env bash
# run_tests.sh: installs the dependencies, builds (Release) and runs every CTest suite: unit, bad-input,
# fixture parity against timm and PaddleClas, and the CLI. GPU suites, where built, skip without a GPU.
#
#   bash tests/run_tests.sh        # from the repository root; BUILD=dir to pick the build folder
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/install_deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${RESNEST_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"
