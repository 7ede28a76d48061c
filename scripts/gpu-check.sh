#!/usr/bin/env bash
# The GPU check, ready to run on a machine with an NVIDIA GPU and PyTorch 2.11 (the project's H200
# test machines have 2.11.0+cu130 as the python3 on PATH):
#
#   cargo build --release --features cuda && strip -o brainssl-cuda target/release/brainssl   # here
#   scripts/gpu-check.sh ./brainssl-cuda                                                          # there
#
# It prints libtorch's view of the devices, times training steps and encoder passes on cuda:0 beside
# PyTorch with the same shapes, and runs a tiny pretraining (f32 and bf16, killed and resumed) and a
# probe end to end. Output goes to $OUT (default gpu-check-out); the log is $OUT/gpu-check.log.
set -uo pipefail
BIN=${1:-target/release/brainssl}
PY=${PYTHON:-python3}
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step() { echo; echo "== $*"; }
run() { echo "+ $*"; "$@" || echo "!! failed ($?): $*"; }

step "libtorch and devices"
"$PY" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
run "$BIN" devices --device cuda:0
run "$BIN" devices --device cuda:99

step "training steps, tiny presets (bf16 by default on CUDA)"
run "$BIN" bench train --device cuda:0 --steps 20 --python "$PY"
step "training steps, reference sizes (ViT-B, JEPA 160^3 and MAE 144^3)"
run "$BIN" bench train --preset jepa,mae,sl-mae --batch-size 4 --steps 5 --device cuda:0 --python "$PY"
step "encoder forward, ViT-B at 144x160x160"
run "$BIN" bench embed --preset mae --batch-size 8 --steps 10 --device cuda:0 --python "$PY"

step "tiny pretraining, probe and resume on cuda:0"
run "$BIN" synth --out "$OUT/synth" --task ad --subjects 24 --size 64 --seed 1
run "$BIN" split --manifest "$OUT/synth/manifest.csv" --out "$OUT/split" --fractions 0.6,0.2,0.2
for p in tiny-mae tiny-sl-mae tiny-jepa tiny-vcr-jepa; do
  run "$BIN" pretrain --preset "$p" --manifest "$OUT/synth/manifest.csv" --out "$OUT/$p" --epochs 3 --device cuda:0 --quiet
done
run "$BIN" pretrain --preset tiny-mae --manifest "$OUT/synth/manifest.csv" --out "$OUT/mae-f32" --epochs 3 --device cuda:0 --precision f32 --quiet
run "$BIN" pretrain --preset tiny-jepa --manifest "$OUT/synth/manifest.csv" --out "$OUT/jepa-halted" --epochs 3 --device cuda:0 --quiet --halt-after-steps 5
run "$BIN" pretrain --resume "$OUT/jepa-halted" --manifest "$OUT/synth/manifest.csv" --device cuda:0 --quiet
echo "uninterrupted vs resumed JEPA losses (bf16 on GPU: equal up to kernel nondeterminism):"
paste -d' ' <(cut -d, -f3 "$OUT/tiny-jepa/log.csv") <(cut -d, -f3 "$OUT/jepa-halted/log.csv") | head -20
run "$BIN" probe --checkpoint "$OUT/tiny-mae/checkpoints/final.safetensors" --train "$OUT/split/train.csv" \
  --val "$OUT/split/val.csv" --test "$OUT/split/test.csv" --out "$OUT/probe" --epochs 5 --device cuda:0 --quiet
echo; echo "done: $OUT"
