#!/usr/bin/env bash
# test_classify.sh: `resnest classify` and `resnest preprocess` end to end on a small 224-input ResNeSt
# with seeded weights (generated here): output formats, directories and '-', labels, bad images (one line
# each naming the file, exit 1, the other images still classified), progress, and classify's top-5 equal
# to `run --top 5` on the tensor `preprocess` writes.
#
#   tests/cli/test_classify.sh BUILD/resnest PYTHON_WITH_NUMPY SOURCE_DIR
set -u
BIN=$1 PY=$2 SRC=$3
. "$(dirname "$0")/lib.sh"
IMG=$SRC/tests/fixtures/images

# check NAME PYTHON_CODE: a python assertion block over files in $TMP.
check() {
    if "$PY" -c "$2" 2>"$TMP/pyerr"; then ok; else bad "$1: $(cat "$TMP/pyerr")"; fi
}

# --- a 224-input, 1000-class ResNeSt (paddle semantics) with seeded weights
mkdir -p "$TMP/model"
M=$TMP/model/tiny224.json W=$TMP/model/tiny224.safetensors
"$PY" "$SRC/models/make_graph.py" --layers 1,1,1,1 --radix 2 --stem-width 4 --planes 4,8,8,16 \
    --input-size 224 --num-classes 1000 --semantics paddle --out "$M" >/dev/null || { echo "make_graph failed"; exit 1; }
"$PY" "$SRC/weights_tools/random_weights.py" --model "$M" --seed 3 --out "$W" >/dev/null || { echo "random_weights failed"; exit 1; }
LABELS=$SRC/models/imagenet1k_label_list.txt
C=("$BIN" classify --model "$M" --weights "$W")
GOOD=("$IMG/src/photo_500x333.jpg" "$IMG/src/odd_225x223.png" "$IMG/src/tiny_1x1.png" "$IMG/src/anim_50x40.gif")

# --- help and usage errors
expect 0 "usage: resnest classify" -- "$BIN" classify --help
expect 0 "usage: resnest preprocess" -- "$BIN" preprocess --help
expect 0 "classify .*preprocess" -- "$BIN" --help
expect 2 "resnest classify: needs at least one IMAGE" -- "${C[@]}"
expect 2 "resnest classify: missing required flag --weights" -- "$BIN" classify --model "$M" x.jpg
expect 2 "--topk takes a whole number" -- "${C[@]}" --topk 0 "${GOOD[0]}"
expect 2 "--preprocess: unknown preprocessing 'pil'" -- "${C[@]}" --preprocess pil "${GOOD[0]}"
expect 2 "--max-pixels takes a whole number" -- "${C[@]}" --max-pixels -5 "${GOOD[0]}"
expect 2 "resnest preprocess: missing required flag --output" -- "$BIN" preprocess "${GOOD[0]}"
expect 1 "$TMP: --output names a folder; give a file path inside it" -- "$BIN" preprocess "${GOOD[0]}" --output "$TMP"
if ! nvidia-smi -L >/dev/null 2>&1; then
    expect 1 "this build has no CUDA backend|CUDA device 0 does not exist \(this machine has 0\)" -- "${C[@]}" --backend cuda "${GOOD[0]}"
fi
expect 1 "the CPU backend runs fp32 only" -- "${C[@]}" --precision fp16 "${GOOD[0]}"

# --- human output: one block per image (file, then rank, class, score, label lines)
expect 0 "tiny_1x1.png" -- "${C[@]}" --labels "$LABELS" "${GOOD[@]}"
check "human output" "
lines = open('$TMP/out').read().split('\n')
blocks = [b for b in '\n'.join(lines).strip().split('\n\n')]
assert len(blocks) == 4, blocks
for b, name in zip(blocks, ['photo_500x333.jpg', 'odd_225x223.png', 'tiny_1x1.png', 'anim_50x40.gif']):
    rows = b.split('\n')
    assert rows[0].endswith(name) and rows[1].split() == ['rank', 'class', 'score', 'label'], rows[:2]
    assert len(rows) == 7, rows
    labels = [l.split(' ', 1)[1] for l in open('$LABELS').read().splitlines()]
    for r, row in enumerate(rows[2:]):
        f = row.split(None, 3)
        assert int(f[0]) == r + 1 and f[3] == labels[int(f[1])] and len(f[2].split('.')[1]) == 5, row
"

# --- JSON: PaddleClas's field names, one object per line and image
expect 0 "class_ids" -- "${C[@]}" --labels "$LABELS" --json --topk 3 "${GOOD[@]}"
check "json output" "
import json
objs = [json.loads(l) for l in open('$TMP/out').read().splitlines()]
assert len(objs) == 4
for o in objs:
    assert set(o) == {'file_name', 'class_ids', 'scores', 'label_names'}, o
    assert len(o['class_ids']) == len(o['scores']) == len(o['label_names']) == 3
    assert o['scores'] == sorted(o['scores'], reverse=True) and all(round(s, 5) == s for s in o['scores'])
"

# --- bad images: one line each naming the file, exit 1, the good ones still classified
"${C[@]}" --json "${GOOD[0]}" /nonexistent/cat.jpg "$IMG/bad/text.jpg" "$IMG/bad/truncated.jpg" \
    "$IMG/bad/huge_100000x100000.png" "$IMG/bad/cmyk_no_adobe.jpg" "${GOOD[1]}" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 1 ]; then ok; else bad "classify with bad images -> exit $rc, wanted 1"; fi
check "bad images" "
import json
err = open('$TMP/err').read().splitlines()
want = ['/nonexistent/cat.jpg: cannot open the image: No such file or directory',
        'text.jpg: not an image this build can read',
        'truncated.jpg: truncated JPEG: the data ends before the end-of-image marker',
        'huge_100000x100000.png: image of 100000x100000 = 10000000000 pixels is over the limit of 67108864 pixels',
        'cmyk_no_adobe.jpg: 4-channel (CMYK) JPEG without an Adobe APP14 marker is not supported']
assert len(err) == len(want), err
for line, w in zip(err, want):
    assert line.startswith('resnest classify: error: ') and w in line, (line, w)
names = [json.loads(l)['file_name'] for l in open('$TMP/out').read().splitlines()]
assert [n.rsplit('/', 1)[1] for n in names] == ['photo_500x333.jpg', 'odd_225x223.png'], names
"
expect 1 "odd_225x223.png: image of 225x223 = 50175 pixels is over the limit of 1000 pixels" -- \
    "${C[@]}" --max-pixels 1000 "${GOOD[1]}"
mkdir -p "$TMP/noimages"
echo "not an image" >"$TMP/noimages/readme.txt"
expect 1 "noimages: directory holds no images" -- "${C[@]}" "$TMP/noimages"

# --- a directory (every image, sorted) and '-' (paths on standard input)
expect 0 "file_name" -- "${C[@]}" --json "$IMG/src"
check "directory input" "
import json, os
names = [json.loads(l)['file_name'] for l in open('$TMP/out').read().splitlines()]
exts = ('.jpg', '.jpeg', '.jpe', '.png', '.bmp', '.gif', '.tga', '.ppm', '.pgm', '.pnm')
want = sorted(os.path.join('$IMG/src', f) for f in os.listdir('$IMG/src') if f.lower().endswith(exts))
assert names == want, (names[:3], want[:3])
"
printf '%s\n' "${GOOD[@]}" | "${C[@]}" --json - >"$TMP/out" 2>"$TMP/err"
check "standard input" "
import json
names = [json.loads(l)['file_name'] for l in open('$TMP/out').read().splitlines()]
assert names == '''$(printf '%s\n' "${GOOD[@]}")'''.split(), names
"

# --- labels: the default list beside the model graph; a wrong line count is an error
"$PY" -c "open('$TMP/model/imagenet1k_label_list.txt', 'w').write(''.join(f'{i} name {i}\n' for i in range(1000)))"
expect 0 "label_names" -- "${C[@]}" --json "${GOOD[0]}"
check "default labels beside the model" "
import json
o = json.loads(open('$TMP/out').read())
assert o['label_names'] == [f'name {c}' for c in o['class_ids']], o
"
head -n 999 "$LABELS" >"$TMP/short_labels.txt"
expect 1 "short_labels.txt: has 999 label lines but the model has 1000 classes" -- \
    "${C[@]}" --labels "$TMP/short_labels.txt" "${GOOD[0]}"

# --- progress on stderr for more than a screenful of images
for i in $(seq 30); do echo "${GOOD[1]}"; done | "${C[@]}" --json --batch 8 - >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ] && grep -q "30/30 images" "$TMP/err" && [ "$(wc -l <"$TMP/out")" = 30 ]; then ok
else bad "progress: exit $rc, stderr: $(cat "$TMP/err")"; fi

# --- classify's top-5 equals run's on the tensor preprocess writes (same engine, same batch size)
ALL=("${GOOD[@]}" "$IMG/src/wide_300x17.png" "$IMG/src/half_512x600.png" "$IMG/src/exif6_64x40.jpg")
expect 0 "wrote .*x.npy: \(7, 3, 224, 224\) float32" -- "$BIN" preprocess "${ALL[@]}" --output "$TMP/x.npy"
expect 0 "image 6:" -- "$BIN" run --model "$M" --weights "$W" --input "$TMP/x.npy" --output "$TMP/y.npy" --top 5 --batch 4
cp "$TMP/out" "$TMP/run_top5.txt"
expect 0 "class_ids" -- "${C[@]}" --json --batch 4 "${ALL[@]}"
check "classify top-5 == run top-5" "
import json, numpy as np
run = [[int(t) for t in l.split(':', 1)[1].split()[0::2]] for l in open('$TMP/run_top5.txt') if l.startswith('image ')]
cls = [json.loads(l)['class_ids'] for l in open('$TMP/out').read().splitlines()]
assert len(run) == len(cls) == 7 and run == cls, (run, cls)
x = np.load('$TMP/x.npy')
assert x.dtype == np.float32 and x.shape == (7, 3, 224, 224) and np.isfinite(x).all()
"
"$BIN" preprocess "${GOOD[0]}" "$IMG/bad/truncated.png" --output "$TMP/never.npy" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 1 ] && [ ! -e "$TMP/never.npy" ] && grep -q "truncated.png: truncated PNG" "$TMP/err"; then ok
else bad "preprocess with a bad image: exit $rc, wrote $(ls "$TMP"), stderr: $(cat "$TMP/err")"; fi

# --- the timm pipeline runs and writes a different tensor
expect 0 "timm" -- "$BIN" preprocess --preprocess timm "${GOOD[1]}" --output "$TMP/xt.npy"
check "timm differs from paddleclas" "
import numpy as np
a, b = np.load('$TMP/x.npy')[1], np.load('$TMP/xt.npy')[0]
assert a.shape == b.shape and 0 < np.abs(a - b).max() < 5
"

finish
