#!/usr/bin/env bash
# setup.sh: the newcomer's first command: installs the dependencies, builds (Release), and runs the main
# job: ResNeSt50 with seeded weights on a generated 224x224 input on the CPU, printing the top-5 classes
# and the time it took. (The GPU benchmark replaces this job once `resnest bench` exists.)
#
#   bash bench/setup.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/install_deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j"$(nproc)"

PY=/usr/bin/python3
python3 -c "import numpy" 2>/dev/null && PY=python3
DATA="$BUILD/main_job"
mkdir -p "$DATA"
[ -f "$DATA/resnest50_seed1.safetensors" ] ||
    "$PY" weights_tools/random_weights.py --model models/resnest50.json --seed 1 --out "$DATA/resnest50_seed1.safetensors"
"$PY" weights_tools/random_input.py --shape 1,3,224,224 --seed 7 --out "$DATA/input.npy"
echo "main job: ResNeSt50 (PaddleClas semantics), seeded weights, batch 1 at 224x224, CPU backend"
start=$(date +%s.%N)
"$BUILD/resnest" run --model models/resnest50.json --weights "$DATA/resnest50_seed1.safetensors" \
    --input "$DATA/input.npy" --output "$DATA/logits.npy" --top 5
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "main job: resnest run took %.2f s wall (load + run); top-5 printed above (seeded weights: the classes mean nothing)\n", e - s }'
