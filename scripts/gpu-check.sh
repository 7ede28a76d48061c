#!/usr/bin/env bash
# The GPU check: one command on a machine with NVIDIA GPUs and PyTorch 2.11 (the project's H200 test
# machines have 2.11.0+cu130 as python3, CUDA 13, no internet). Built here, run there:
#
#   make setup-full && cargo build --release --features cuda && strip -o brainssl-cuda target/release/brainssl
#   scripts/gpu-check.sh ./brainssl-cuda            # there; about 5-8 minutes on one H200
#
# It checks and times, on cuda:0 and beside PyTorch in the same run:
#   1. libtorch / CUDA versions and the device; a float32 forward + backward on CUDA against the CPU;
#   2. ViT-B MAE at 144^3 (batch 10) and JEPA at 160^3 (batch 24) in bf16: ms/step, volumes/s, peak
#      GPU memory and model FLOP utilisation against the measured bf16 matmul rate; a smaller batch
#      when the reference batch does not fit;
#   3. end-to-end `pretrain` throughput with brainssl's own loader on synthetic volumes at reference
#      size, next to the model-only step;
#   4. a training step through a one-rank NCCL group (RANK=0 WORLD_SIZE=1), and with several GPUs
#      `--nproc-per-node <GPUs>` data parallelism;
#   5. tiny pretraining on every objective, f32 and bf16, killed and resumed, and a probe.
# The last lines are one summary table. Everything goes to $OUT (default gpu-check-out).
set -uo pipefail
BIN=$(realpath "${1:-target/release/brainssl}")
PY=${PYTHON:-python3}
OUT=${OUT:-gpu-check-out}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
SUMMARY="$OUT/summary.md"
: >"$SUMMARY"
row() { echo "| $1 | $2 |" >>"$SUMMARY"; }
step() { echo; echo "== $*"; }
# run NAME CMD...: runs, logs, and records pass/fail for the summary
run() {
  local name=$1; shift
  echo "+ $*"
  if "$@"; then return 0; fi
  local rc=$?
  echo "!! failed ($rc): $*"
  row "$name" "FAILED (exit $rc)"
  return $rc
}
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')

step "1. versions, device, CUDA against the CPU"
"$PY" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' \
  | tee "$OUT/torch.txt"
run devices "$BIN" devices --device cuda:0 | tee "$OUT/devices.txt"
"$BIN" devices --device cuda:99 || true
row "PyTorch (python) / CUDA / device" "$(cat "$OUT/torch.txt")"
row "brainssl devices" "$(grep -i -m1 'libtorch' "$OUT/devices.txt" | tr '|' '/')"
row "GPUs visible" "$GPUS"
run parity "$BIN" bench parity --device cuda:0 | tee "$OUT/parity.md" \
  && row "fwd+bwd on cuda:0 vs CPU (f32, 4 tiny presets)" "$(grep -c '| ok |' "$OUT/parity.md")/4 within 1e-2"

step "2. reference sizes in bf16: model-only steps beside PyTorch"
# bench_at PRESET BATCH...: the first batch that fits
bench_at() {
  local preset=$1; shift
  for b in "$@"; do
    if "$BIN" bench train --preset "$preset" --batch-size "$b" --steps 5 --warmup 2 --device cuda:0 \
        --python "$PY" >"$OUT/bench-$preset.md" 2>"$OUT/bench-$preset.err"; then
      cat "$OUT/bench-$preset.md"
      grep -m1 '^matrix products' "$OUT/bench-$preset.md" >"$OUT/matmul.txt"
      row "$preset step, batch $b (ms brainssl (fwd+bwd) / PyTorch, ratio, vol/s, MFU, peak GPU MB)" \
        "$(grep "^| $preset |" "$OUT/bench-$preset.md" | cut -d'|' -f5-12 | tr -s ' ')"
      return 0
    fi
    echo "batch $b of $preset did not run: $(tail -1 "$OUT/bench-$preset.err")"
  done
  row "$preset step" "FAILED at every batch ($*)"
}
bench_at mae 10 5 2
bench_at jepa 24 12 6 2
row "bf16 matmul rate (MFU denominator)" "$(cat "$OUT/matmul.txt" 2>/dev/null)"
step "encoder forward, ViT-B at 144x160x160"
run embed "$BIN" bench embed --preset mae --batch-size 8 --steps 10 --device cuda:0 --python "$PY"

step "3. end-to-end pretraining throughput, brainssl's loader, reference size"
run synth-ref "$BIN" synth --out "$OUT/synth-ref" --subjects 96 --size 176 --seed 3
cat >"$OUT/e2e.toml" <<'EOF'
[data]
workers = 12
EOF
for p in jepa mae; do
  run "e2e $p" "$BIN" pretrain --preset "$p" --manifest "$OUT/synth-ref/manifest.csv" --out "$OUT/e2e-$p" \
    --config "$OUT/e2e.toml" --epochs 2 --device cuda:0 --quiet | tee "$OUT/e2e-$p.txt" \
    && row "$p pretrain end to end (2 epochs of 96 scans, incl. first-step warm-up)" \
      "$(grep -o '([0-9.]* volumes/s end to end)' "$OUT/e2e-$p.txt")"
done

step "4. NCCL: a one-rank group, and data parallelism over the GPUs found ($GPUS)"
run synth "$BIN" synth --out "$OUT/synth" --task ad --subjects 24 --size 64 --seed 1
run nccl-1 env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29531 "$BIN" pretrain --preset tiny-jepa --manifest "$OUT/synth/manifest.csv" --out "$OUT/nccl-1" \
  --epochs 1 --device cuda --quiet 2>&1 | tee "$OUT/nccl-1.txt" \
  && row "one-rank NCCL group, tiny-jepa 1 epoch" "$(grep -o 'done: [0-9]* steps' "$OUT/nccl-1.txt") ok"
if [[ "$GPUS" -gt 1 ]]; then
  run "nccl-$GPUS" "$BIN" pretrain --preset tiny-jepa --manifest "$OUT/synth/manifest.csv" --out "$OUT/nccl-n" \
    --epochs 2 --device cuda --nproc-per-node "$GPUS" --quiet | tee "$OUT/nccl-n.txt" \
    && row "$GPUS-rank NCCL pretraining" "$(grep -o 'done: .* end to end)' "$OUT/nccl-n.txt")"
  run "bench-$GPUS" "$BIN" bench train --preset jepa --batch-size $((8 * GPUS)) --steps 5 --device cuda:0 \
    --nproc-per-node "$GPUS" --python none | tee "$OUT/bench-ranks.md"
else
  row "multi-GPU data parallelism" "not run: one GPU (NCCL refuses two ranks on one GPU)"
fi

step "5. tiny pretraining (every objective), f32, resume and a probe on cuda:0"
run split "$BIN" split --manifest "$OUT/synth/manifest.csv" --out "$OUT/split" --fractions 0.6,0.2,0.2
for p in tiny-mae tiny-sl-mae tiny-jepa tiny-vcr-jepa; do
  run "$p" "$BIN" pretrain --preset "$p" --manifest "$OUT/synth/manifest.csv" --out "$OUT/$p" --epochs 3 --device cuda:0 --quiet
done
run mae-f32 "$BIN" pretrain --preset tiny-mae --manifest "$OUT/synth/manifest.csv" --out "$OUT/mae-f32" --epochs 3 \
  --device cuda:0 --precision f32 --quiet
"$BIN" pretrain --preset tiny-jepa --manifest "$OUT/synth/manifest.csv" --out "$OUT/jepa-halted" --epochs 3 \
  --device cuda:0 --quiet --halt-after-steps 5
run resume "$BIN" pretrain --resume "$OUT/jepa-halted" --manifest "$OUT/synth/manifest.csv" --device cuda:0 --quiet
echo "uninterrupted vs resumed JEPA losses (bf16 on GPU: equal up to kernel nondeterminism):"
paste -d' ' <(cut -d, -f3 "$OUT/tiny-jepa/log.csv") <(cut -d, -f3 "$OUT/jepa-halted/log.csv") | head -20
run probe "$BIN" probe --checkpoint "$OUT/tiny-mae/checkpoints/final.safetensors" --train "$OUT/split/train.csv" \
  --val "$OUT/split/val.csv" --test "$OUT/split/test.csv" --out "$OUT/probe" --epochs 5 --device cuda:0 --quiet \
  && row "tiny pretraining x4, f32, resume, probe" "ran"

echo; echo "== summary ($HERE, binary $BIN)"
echo "| check | result |"
echo "|---|---|"
cat "$SUMMARY"
