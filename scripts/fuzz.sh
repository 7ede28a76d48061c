#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with cargo-fuzz (libFuzzer; needs a nightly toolchain and
# `cargo install cargo-fuzz`): NIfTI, DICOM, manifest and prediction files, SECONDS each (default
# 600). A panic, a run over 10 s (a hang) or over 2 GB of memory (a blow-up) is a finding; libFuzzer
# then stops and saves the input under fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh 600            # all four targets, 10 minutes each
#   scripts/fuzz.sh 300 nifti      # one target
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(nifti dicom manifest predictions)
corpus=fuzz/corpus
mkdir -p "$corpus"/{nifti,dicom,manifest,predictions}
if [[ ! -e "$corpus/nifti/seed.nii.gz" ]]; then
  # seeds: a synthetic brain (gzip and plain), its manifest, a prediction file, real DICOM if present
  bin=target/release/brainssl
  [[ -x $bin ]] || bin=target/debug/brainssl
  [[ -x $bin ]] || { cargo build --quiet && bin=target/debug/brainssl; }
  tmp=$(mktemp -d)
  "$bin" synth --out "$tmp/syn" --subjects 2 --size 16 >/dev/null 2>&1
  first=$(find "$tmp/syn" -name '*_T1w.nii.gz' | sort | head -1)
  cp "$first" "$corpus/nifti/seed.nii.gz"
  gzip -dc "$first" >"$corpus/nifti/seed.nii"
  cp "$tmp/syn/manifest.csv" "$corpus/manifest/seed.csv"
  printf 'label,p0,p1,subject_id\n0,0.9,0.1,a\n1,0.2,0.8,b\n1,0.5,0.5,c\n' >"$corpus/predictions/seed.csv"
  # the repository's DICOM fixture, plus a real series slice when the optional real-data folder is there
  real=${BRAINSSL_REAL_DATA:-../shared/data/real}
  for f in tests/fixtures/mr_small.dcm "$real/dicom/pd_series/brain_001.dcm"; do
    [[ -f $f ]] && tail -c +133 "$f" >"$corpus/dicom/$(basename "$f")"
  done
  rm -rf "$tmp"
fi
for t in "${targets[@]}"; do
  echo "== fuzzing $t for $secs s"
  cargo +nightly fuzz run "$t" "$corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|SUMMARY|Done|ERROR|panicked' || true
done
