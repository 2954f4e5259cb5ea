#!/usr/bin/env bash
# test_cli.sh: the `resnest` command line end to end: help, usage errors (one line, exit 2), file errors
# (one line naming the file, exit 1), inspect's counts for both models, and run against a framework fixture.
#
#   tests/cli/test_cli.sh BUILD/resnest PYTHON_WITH_NUMPY SOURCE_DIR
set -u
BIN=$1 PY=$2 SRC=$3
. "$(dirname "$0")/lib.sh"

TINY=$SRC/tests/fixtures/tiny/tiny_r4_k2_torch
# --- help and usage errors
expect 0 "usage: resnest <command>" -- "$BIN" --help
expect 2 "resnest: missing command" -- "$BIN"
expect 0 "usage: resnest inspect" -- "$BIN" inspect --help
expect 0 "usage: resnest run" -- "$BIN" run --help
expect 2 "unknown command 'runn'" -- "$BIN" runn
expect 2 "resnest run: unknown flag '--modle'" -- "$BIN" run --modle x
expect 2 "resnest run: missing required flag --weights" -- "$BIN" run --model "$TINY.json"
expect 2 "flag --batch needs a value" -- "$BIN" run --model a --weights b --input c --output d --batch
expect 2 "--batch takes a whole number" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --batch x
expect 2 "takes exactly one MODEL.json" -- "$BIN" inspect
# --- file errors
expect 1 "/nonexistent/m.json: cannot open the graph file" -- "$BIN" inspect /nonexistent/m.json
expect 1 "/nonexistent/w.safetensors" -- "$BIN" inspect "$TINY.json" --weights /nonexistent/w.safetensors
expect 1 "/nonexistent/x.npy" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input /nonexistent/x.npy --output "$TMP/y.npy"
expect 1 "$TMP: is a folder, not a graph file \(give models/<name>.json\)" -- "$BIN" inspect "$TMP"
# An output that cannot be written is refused before the work, not after it.
expect 1 "$TMP/no_such_dir/y.npy: cannot write --output: the folder '$TMP/no_such_dir' does not exist \(create it first\)" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/no_such_dir/y.npy"
expect 1 "$TMP/no_such_dir/b.json: cannot write --json: the folder '$TMP/no_such_dir' does not exist" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --json "$TMP/no_such_dir/b.json"
if grep -q "p50" "$TMP/out"; then bad "bench ran before refusing its --json path: $(cat "$TMP/out")"; else ok; fi
expect 1 "$TMP: --json names a folder" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --json "$TMP"
# An existing file is written in place, whatever its folder allows: a device such as /dev/null is taken.
expect 0 "p50 ms" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --json /dev/null
# A usage error still comes first (exit 2), before the path is looked at.
expect 2 "--top takes a whole number" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/no_such_dir/y.npy" --top 0
if [ "$(id -u)" != 0 ]; then  # root writes anywhere
    mkdir -p "$TMP/read_only" && chmod 555 "$TMP/read_only"
    expect 1 "cannot write --json: the folder '$TMP/read_only' is not writable" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --json "$TMP/read_only/b.json"
    chmod 755 "$TMP/read_only"
fi
echo '{"format": "resnest-graph", ' >"$TMP/broken.json"
expect 1 "broken.json: malformed JSON" -- "$BIN" inspect "$TMP/broken.json"
# --backend cuda without a GPU: a CPU-only build says it has no CUDA backend, a CUDA build that no device exists.
if ! nvidia-smi -L >/dev/null 2>&1; then
    expect 1 "this build has no CUDA backend|CUDA device 0 does not exist \(this machine has 0\)" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --backend cuda
fi
expect 1 "CUDA device 9 does not exist|this build has no CUDA backend" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --backend cuda --device 9
# The CUDA backend's flags on the CPU backend are named as ignored, once.
"$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --no-graph --profile --conv-gemm on >"$TMP/out" 2>"$TMP/err" && ok || bad "bench with CUDA flags on the CPU failed: $(cat "$TMP/err")"
grep -qxF "resnest: warning: --no-graph, --conv-gemm, --profile are the CUDA backend's; ignored with --backend cpu" "$TMP/err" && ok || bad "no ignored-flags warning: $(cat "$TMP/err")"
# Environment settings with a wrong value are named at the load, before any device work, GPU or not.
RESNEST_SPLIT_K=bogus RESNEST_CHOICE_TIMING=x RESNEST_CUDA_DEBUG=yes "$BIN" bench --model "$TINY.json" --backend cuda --iters 1 --warmup 0 >"$TMP/out" 2>"$TMP/err"
for want in "RESNEST_SPLIT_K=bogus is neither on nor off" "RESNEST_CHOICE_TIMING=x is neither replays nor launches" \
    "RESNEST_CUDA_DEBUG=yes is neither 0 nor 1"; do
    grep -qF "$want" "$TMP/err" || grep -q "this build has no CUDA backend" "$TMP/err" && ok || bad "no warning '$want': $(cat "$TMP/err")"
done
# Graphs the CPU runs and the CUDA backend cannot are refused at the load, before any device work, GPU or not:
# radix 16 is past the split-attention kernels' limit.
"$PY" "$SRC/models/make_graph.py" --radix 16 --layers 1,1,1,1 --planes 16,16,16,16 --stem-width 8 --input-size 64 \
    --num-classes 10 --out "$TMP/r16.json" >/dev/null
expect 0 "p50 ms" -- "$BIN" bench --model "$TMP/r16.json" --iters 1 --warmup 0
expect 1 "$TMP/r16.json: node 'layer1.0.conv2.attn': radix 16 is over the CUDA backend's limit of 8; use --backend cpu|this build has no CUDA backend" -- "$BIN" bench --model "$TMP/r16.json" --backend cuda --iters 1 --warmup 0
# run takes its images in batches the CUDA backend runs in one pass, and says so where --batch asked for more:
# a graph whose convolution output is 2^30 elements an image runs one image a pass (the note comes before the
# load, which then fails here on the missing weights).
cat >"$TMP/wide.json" <<'JSON'
{"format": "resnest-graph", "version": 1, "input": {"name": "x", "shape": [-1, 3, 32, 32]}, "outputs": ["p"],
 "nodes": [{"name": "c", "op": "conv2d", "inputs": ["x"], "outputs": ["c"],
            "attrs": {"in_channels": 3, "out_channels": 1048576, "kernel": 1}, "weights": {"weight": "c.weight"}},
           {"name": "g", "op": "global_avg_pool", "inputs": ["c"], "outputs": ["g"]},
           {"name": "p", "op": "softmax", "inputs": ["g"], "outputs": ["p"]}]}
JSON
"$PY" -c "import numpy as np; np.save('$TMP/x2.npy', np.random.rand(2, 3, 32, 32).astype('float32') + 0.5)"
"$BIN" run --model "$TMP/wide.json" --weights "$TMP/none.safetensors" --input "$TMP/x2.npy" --output "$TMP/y.npy" \
    --backend cuda --batch 2 >"$TMP/out" 2>"$TMP/err"
grep -qF "resnest run: --batch 2 is more than the CUDA backend runs in one pass of $TMP/wide.json (cuDNN takes no tensor over 2^31 - 1 elements); running batches of 1" "$TMP/err" ||
    grep -q "this build has no CUDA backend" "$TMP/err" && ok || bad "no batch note: $(cat "$TMP/err")"
# An output that is one of the command's inputs (by any path) is refused before anything is written.
cp "$TINY.safetensors" "$TMP/w.safetensors"
ln -s "$TMP/w.safetensors" "$TMP/w_link.safetensors"
expect 1 "$TMP/w_link.safetensors: --output is the --weights file \($TMP/w.safetensors\); writing it would destroy it" -- "$BIN" run --model "$TINY.json" --weights "$TMP/w.safetensors" --input "$TINY.input.npy" --output "$TMP/w_link.safetensors"
cmp -s "$TINY.safetensors" "$TMP/w.safetensors" && ok || bad "run --output over its --weights changed the weights file"
expect 1 "--output is the --input file" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TINY.input.npy"
expect 1 "--json is the --model file" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --json "$TINY.json"
# A batch past the most cuDNN takes in one pass is refused at the load, before any device work, GPU or not.
expect 1 "models/resnest50.json: batch 2675 is more than the CUDA backend runs in one pass of this graph: its tensor 'act1' \[64, 112, 112\] would hold 2147532800 elements, over the 2\^31 - 1 that cuDNN takes; use a batch of at most 2674|this build has no CUDA backend" -- "$BIN" bench --model "$SRC/models/resnest50.json" --backend cuda --precision fp16 --batch 1,2675 --iters 1 --warmup 0
expect 2 "--passes takes auto, on or off" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --passes maybe
expect 2 "--algo-cache needs a file path" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --algo-cache=
expect 2 "--conv-search takes find or timed" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --conv-search fast
expect 2 "--conv-gemm takes auto, on or off" -- "$BIN" bench --model "$TINY.json" --conv-gemm always
expect 2 "--conv-graph takes auto, on or off" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --conv-graph maybe
expect 2 "--conv-workspace takes auto or a whole number of MiB in \\[0, 65536\\], got 'lots'" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --conv-workspace lots
expect 2 "--streams needs --backend cuda" -- "$BIN" bench --model "$TINY.json" --streams 2
expect 0 "resnest run" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y_passes.npy" --passes on
expect 1 "the CPU backend runs fp32 only" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --precision fp16
"$PY" -c "import numpy as np; np.save('$TMP/wrong_shape.npy', np.ones((2,3,64,64), np.float32)); np.save('$TMP/f64.npy', np.ones((1,3,98,98)))
x = np.ones((1,3,98,98), np.float32); x[0,1,2,3] = np.nan; np.save('$TMP/nan.npy', x)
np.save('$TMP/x224.npy', np.ones((1,3,224,224), np.float32))"
expect 1 "wrong_shape.npy: shape \(2, 3, 64, 64\) does not match the model's input \(N, 3, 98, 98\)" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TMP/wrong_shape.npy" --output "$TMP/y.npy"
expect 1 "f64.npy: dtype '<f8' is not supported.*astype" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TMP/f64.npy" --output "$TMP/y.npy"
expect 1 "nan.npy: holds a non-finite value at flat index 9803" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TMP/nan.npy" --output "$TMP/y.npy"
expect 1 "tiny_r4_k2_torch.safetensors: tensor 'conv1.0.weight' \(role 'weight' of node 'conv1.0', conv2d\) has shape \[4, 3, 3, 3\] but the graph needs \[32, 3, 3, 3\]" -- "$BIN" run --model "$SRC/models/resnest50.json" --weights "$TINY.safetensors" --input "$TMP/x224.npy" --output "$TMP/y.npy"

# --- inspect: the spec's counts (§6)
check_counts() {  # model params macs
    if "$BIN" inspect "$SRC/models/$1.json" --json >"$TMP/inspect.json" 2>"$TMP/err" &&
        "$PY" -c "
import json, sys
j = json.load(open('$TMP/inspect.json'))
assert j['params'] == $2, j['params']
assert abs(j['macs'] - $3) / $3 < 0.005, j['macs']
assert j['node_count'] == len(j['nodes']) == 202 and j['arena_bytes_batch1'] > 0
" 2>>"$TMP/err"; then ok; else bad "inspect $1: $(cat "$TMP/err")"; fi
}
check_counts resnest50 27483240 5.371e9
check_counts resnest50d_torch 27483240 5.371e9
check_counts resnest50_fast_1s1x64d 26217896 4.329e9
check_counts resnest50_fast_1s1x64d_torch 26217896 4.329e9
# --- inspect --passes: the rewritten graph, counted from the model file (every BN folds, every add and ReLU
# fuses into a convolution, the avd pool after an attention fuses into it; fp16 pads the input once)
check_passes() {  # model precision radix_split expected_split_blocks
    if RESNEST_RADIX_SPLIT=$3 "$BIN" inspect "$SRC/models/$1.json" --passes --precision "$2" --json >"$TMP/passes.json" 2>"$TMP/err" &&
        "$PY" -c "
import json
m = json.load(open('$SRC/models/$1.json'))
j = json.load(open('$TMP/passes.json'))
ops = [n['op'] for n in m['nodes']]
producer = {o: n['op'] for n in m['nodes'] for o in n['outputs']}
avd = sum(1 for n in m['nodes'] if n['op'] == 'avg_pool2d' and producer.get(n['inputs'][0]) == 'split_attention')
bn, relu, add, attn = (ops.count(k) for k in ('batch_norm', 'relu', 'add', 'split_attention'))
split = 2 * $4  # radix 2: conv1 and conv2 each become two
assert j['precision'] == '$2'
assert j['node_count'] == len(m['nodes']) - bn - relu - add - avd + split, (j['node_count'], len(m['nodes']))
got = [n['op'] for n in j['nodes']]
assert not {'batch_norm', 'relu', 'add'} & set(got), set(got)
assert sum(o.startswith('conv2d+bias+residual') for o in got) == add
assert got.count('split_attention+avg_pool2d') == avd and sum(o.startswith('split_attention') for o in got) == attn
assert len(j['passes']) == bn + attn + relu + add + avd + $4 + ('$2' != 'fp32'), len(j['passes'])
assert abs(j['macs'] - sum(n['macs'] for n in j['nodes'])) == 0 and j['macs'] > 0
# Our fp16 kernels' folds (none in other precisions): per unsplit attention its pool into the convolution
# before it and its weighted sum (with its avd pool) into conv3; each other average pool read by a 1x1
# convolution alone (the downsample path's) into that convolution.
consumers = {}
for n in m['nodes']:
    for t in n['inputs']:
        consumers.setdefault(t, []).append(n)
pool_into_1x1 = sum(1 for n in m['nodes'] if n['op'] == 'avg_pool2d' and producer.get(n['inputs'][0]) != 'split_attention'
                    and [c['op'] for c in consumers[n['outputs'][0]]] == ['conv2d']
                    and consumers[n['outputs'][0]][0]['attrs']['kernel'] == 1)
kinds = [f.split(': ', 1)[1].split(' into ')[0] for f in j['folds']]
unsplit = attn - $4
avd_unsplit = kinds.count('weighted sum + avd pool')  # with blocks split, some avd blocks among them
expect = {'pool': unsplit, 'weighted sum': unsplit - avd_unsplit, 'weighted sum + avd pool': avd_unsplit,
          'average pool': pool_into_1x1}
if '$2' != 'fp16':
    assert j['folds'] == [], j['folds']
else:
    assert {k: kinds.count(k) for k in expect} == expect and len(kinds) == sum(expect.values()), (kinds, expect)
    assert pool_into_1x1 == 3 and avd_unsplit <= avd and (avd_unsplit == avd or $4 > 0)
" 2>>"$TMP/err"; then ok; else bad "inspect --passes $1 $2 $3: $(cat "$TMP/err")"; fi
}
check_passes resnest50 fp16 off 0
check_passes resnest50 fp32 off 0
check_passes resnest50 fp16 196 8
check_passes resnest50_fast_1s1x64d_torch tf32 off 0
expect 2 "--precision describes the rewritten graph: use it with --passes" -- "$BIN" inspect "$TINY.json" --precision fp16
expect 2 "unknown precision 'fp8'" -- "$BIN" inspect "$TINY.json" --passes --precision fp8
expect 2 "unknown precision 'fp8'" -- "$BIN" bench --model "$TINY.json" --precision fp8
expect 2 "--conv-workspace takes auto or a whole number of MiB in \[0, 65536\], got 'AUTO'" -- "$BIN" bench --model "$TINY.json" --conv-workspace AUTO
expect 2 "gpu" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy" --backend gpu
expect 0 "graph      as the CUDA backend runs it at fp16, after .* rewrites \\(fold_batch_norm" -- "$BIN" inspect "$TINY.json" --passes
expect 0 "folds      35 our fp16 kernels may make with RESNEST_IMPLICIT_GEMM \\(average pool 3, pool 16, weighted sum 13, weighted sum \\+ avd pool 3" -- "$BIN" inspect "$SRC/models/resnest50.json" --passes
expect 0 "405 tensors checked|tensors checked" -- "$BIN" inspect "$TINY.json" --weights "$TINY.safetensors"

# --- run: logits match timm's fixture, whole batch and one image at a time
compare() {  # output.npy
    "$PY" -c "
import numpy as np
y = np.load('$1'); e = np.load('$TINY.expected.npy')
assert y.dtype == np.float32 and y.shape == e.shape, (y.dtype, y.shape)
err = np.abs(y - e).max() / np.abs(e).max()
assert err <= 1e-4, err
"
}
expect 0 "wrote" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y.npy"
if compare "$TMP/y.npy"; then ok; else bad "run output differs from the timm fixture"; fi
expect 0 "image 1:" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y1.npy" --batch 1 --threads 1 --top 3
if compare "$TMP/y1.npy"; then ok; else bad "run --batch 1 output differs from the timm fixture"; fi

# --- bench: seeded weights in the engine, a JSON report with every sample
expect 0 "usage: resnest bench" -- "$BIN" bench --help
expect 2 "--batch takes comma-separated sizes" -- "$BIN" bench --model "$TINY.json" --batch 1,0
expect 2 "either --weights or --random-weights" -- "$BIN" bench --model "$TINY.json" --weights "$TINY.safetensors" --random-weights
expect 2 "flag --no-pdl given twice" -- "$BIN" bench --model "$TINY.json" --no-pdl --no-pdl
# --verbose logs the load step by step (the cold-start timeline device_check prints)
expect 0 "load: graph parsed in [0-9.]+ s, weights drawn in [0-9.]+ s" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --passes on --verbose
if grep -Eq "^pass: [0-9]+ rewrites; [0-9]+ nodes run; [0-9.]+ s$" "$TMP/err" &&
    grep -Eq "^load: backend ready in [0-9.]+ s; [0-9.]+ s since the load began$" "$TMP/err"; then ok; else bad "bench --verbose lacks the pass or backend timing: $(cat "$TMP/err")"; fi
expect 0 "load: graph parsed in [0-9.]+ s, weights read in [0-9.]+ s" -- "$BIN" run --model "$TINY.json" --weights "$TINY.safetensors" --input "$TINY.input.npy" --output "$TMP/y_verbose.npy" --verbose
expect 0 "p50 ms" -- "$BIN" bench --model "$TINY.json" --batch 1,2 --warmup 1 --iters 4 --no-pdl --conv-workspace 64 --json "$TMP/bench.json"
if "$PY" -c "
import json
j = json.load(open('$TMP/bench.json'))
assert 'reload_first_result_s' not in j  # only with --reload
assert j['config']['batches'] == [1, 2] and j['model']['macs_per_image'] > 0 and j['git_commit']
assert j['config']['dependent_launch'] is False  # the CPU backend never launches kernels
assert j['config']['conv_workspace_mib'] == 64
assert j['config']['environment'] == {}, j['config']['environment']  # no diagnostic variable set
for r in j['results']:
    s = sorted(r['samples_ms'])
    assert len(s) == 4 and r['latency_ms']['min'] == s[0] and s[0] <= r['latency_ms']['p50'] <= s[-1]
    assert abs(r['throughput_img_s'] - r['batch'] / (r['latency_ms']['p50'] / 1e3)) < 1e-6 * r['throughput_img_s']
" 2>"$TMP/err"; then ok; else bad "bench JSON: $(cat "$TMP/err")"; fi
# The first result's time since the process started: at least the in-process cold start, at most the wall
# time around the whole process (both within the kernel's 10 ms tick).
if "$PY" -c "
import json, subprocess, time
t = time.monotonic()
subprocess.run(['$BIN', 'bench', '--model', '$TINY.json', '--iters', '1', '--warmup', '0', '--json', '$TMP/bench_age.json'],
               check=True, stdout=subprocess.DEVNULL)
wall = time.monotonic() - t
j = json.load(open('$TMP/bench_age.json'))
age, first = j['process_first_result_s'], j['first_result_s']
assert first - 0.011 <= age <= wall + 0.011, (first, age, wall)
" 2>"$TMP/err"; then ok; else bad "bench JSON process_first_result_s: $(cat "$TMP/err")"; fi
# A RESNEST_RADIX_SPLIT that does not parse stops the load, naming the variable and the values it takes.
expect 1 "RESNEST_RADIX_SPLIT='layer3': use off, all" -- env RESNEST_RADIX_SPLIT=layer3 "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0
# A diagnostic environment variable is named on the screen and in the JSON (README: RESNEST_SPLIT_K and co.)
expect 0 "diagnostics: RESNEST_ATTENTION_POOL=row-lanes, RESNEST_SPLIT_K=off, RESNEST_RADIX_SPLIT=196, RESNEST_IMPLICIT_GEMM=auto, RESNEST_WEIGHT_PREFETCH=off, RESNEST_L2_WEIGHTS=auto" -- env RESNEST_SPLIT_K=off RESNEST_ATTENTION_POOL=row-lanes RESNEST_RADIX_SPLIT=196 RESNEST_IMPLICIT_GEMM=auto RESNEST_WEIGHT_PREFETCH=off RESNEST_L2_WEIGHTS=auto "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --json "$TMP/bench_env.json"
# ... and RESNEST_RADIX_SPLIT without the graph passes (the CPU backend's default) says it does nothing.
if grep -q "RESNEST_RADIX_SPLIT is set but the graph passes are off" "$TMP/err"; then ok; else bad "no radix-split warning: $(cat "$TMP/err")"; fi
if "$PY" -c "
import json
j = json.load(open('$TMP/bench_env.json'))
assert j['config']['environment'] == {'RESNEST_ATTENTION_POOL': 'row-lanes', 'RESNEST_SPLIT_K': 'off', 'RESNEST_RADIX_SPLIT': '196', 'RESNEST_IMPLICIT_GEMM': 'auto', 'RESNEST_WEIGHT_PREFETCH': 'off', 'RESNEST_L2_WEIGHTS': 'auto'}, j['config']['environment']
" 2>"$TMP/err"; then ok; else bad "bench JSON environment: $(cat "$TMP/err")"; fi
# --reload times a second load + plan to the first result in the same process
expect 0 "first result \(batch 1\) [0-9.]+ s \([0-9.]+ s since the process started\); again in this process [0-9.]+ s" -- "$BIN" bench --model "$TINY.json" --iters 1 --warmup 0 --reload --json "$TMP/bench_reload.json"
if "$PY" -c "
import json
j = json.load(open('$TMP/bench_reload.json'))
assert 0 < j['reload_first_result_s'] < 60, j['reload_first_result_s']
" 2>"$TMP/err"; then ok; else bad "bench --reload JSON: $(cat "$TMP/err")"; fi

finish
