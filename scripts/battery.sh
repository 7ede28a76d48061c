#!/usr/bin/env bash
# The hostile-input battery as a user meets it: the mutated files of the seeded mutation tests
# (NIfTI plain and gzip, DICOM, manifests, prediction files) each go through the release CLI in
# its own process, under a 10 s time limit and a 4 GiB address-space limit, and every outcome is
# counted:
#   clean error  non-zero exit with a message that names the file
#   unnamed      non-zero exit whose message does not name the file (a defect)
#   panic        "panicked" on stderr (a defect)
#   hang         killed at 10 s (a defect)
#   blow-up      an allocation failed under the limit, or peak RSS over 1 GiB (a defect)
#   accepted     exit 0
#
#   scripts/battery.sh            # 400 cases per kind (about 15 minutes on 2 cores)
#   scripts/battery.sh 100        # a quick pass
set -uo pipefail
cd "$(dirname "$0")/.."
cases=${1:-400}
bin=target/release/brainssl
cargo build --release --quiet || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BRAINSSL_MUTATION_DUMP=$work/in BRAINSSL_MUTATION_CASES=$cases \
  cargo test --release --quiet -p brainssl-scan -p brainssl-data -p brainssl-eval --test mutation \
  >"$work/test.log" 2>&1 || { cat "$work/test.log"; exit 1; }

declare -A n
count() { n["$1|$2"]=$(( ${n["$1|$2"]:-0} + 1 )); }

# run KIND COMMAND FILE ARGS...: one case; {} in ARGS is replaced by FILE
run() {
  local kind=$1 cmd=$2 file=$3
  shift 3
  local args=() a
  for a in "$@"; do args+=("${a//\{\}/$file}"); done
  local err=$work/err rc rss
  ( ulimit -v 4194304; exec /usr/bin/time -f 'RSS_KB %M' -o "$work/rss" timeout 10 "$bin" "${args[@]}" ) \
    >/dev/null 2>"$err"
  rc=$?
  rss=$(awk '/RSS_KB/ {print $2}' "$work/rss" 2>/dev/null)
  local key="$kind|$cmd"
  count "$key" tried
  if grep -q "panicked" "$err"; then
    count "$key" panic
    echo "PANIC $kind $cmd $(basename "$file"): $(head -c 300 "$err")" >>"$work/findings"
  elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
    count "$key" hang
    echo "HANG $kind $cmd $(basename "$file")" >>"$work/findings"
  elif grep -q "memory allocation of" "$err" || [[ ${rss:-0} -gt 1048576 ]]; then
    count "$key" blowup
    echo "BLOW-UP $kind $cmd $(basename "$file"): RSS ${rss:-?} KB" >>"$work/findings"
  elif [[ $rc -eq 0 ]]; then
    count "$key" accepted
  elif grep -qF "$(basename "$file")" "$err"; then
    count "$key" clean
  else
    count "$key" unnamed
    echo "UNNAMED $kind $cmd $(basename "$file"): $(head -c 300 "$err")" >>"$work/findings"
  fi
}

for f in "$work"/in/nifti/* "$work"/in/dicom/*; do
  kind=$( [[ $f == */dicom/* ]] && echo DICOM || { [[ $f == *.gz ]] && echo "NIfTI gzip" || echo NIfTI; })
  run "$kind" info "$f" info {}
  run "$kind" preprocess "$f" preprocess {} --out "$work/o.npy" --depth 16 --size 16
  rm -f "$work/o.npy"
done
for f in "$work"/in/manifest/*; do
  run manifest split "$f" split --manifest {} --fractions 0.6,0.2,0.2 --out "$work/split"
  rm -rf "$work/split"
done
for f in "$work"/in/predictions/*; do
  run predictions metrics "$f" metrics --predictions {} --bootstrap 50
done

printf '| input | command | tried | clean error | unnamed error | panic | hang | memory blow-up | accepted |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for key in "NIfTI|info" "NIfTI|preprocess" "NIfTI gzip|info" "NIfTI gzip|preprocess" "DICOM|info" \
  "DICOM|preprocess" "manifest|split" "predictions|metrics"; do
  [[ -n ${n["$key|tried"]:-} ]] || continue
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${key%%|*}" "${key#*|}" \
    "${n["$key|tried"]}" "${n["$key|clean"]:-0}" "${n["$key|unnamed"]:-0}" "${n["$key|panic"]:-0}" \
    "${n["$key|hang"]:-0}" "${n["$key|blowup"]:-0}" "${n["$key|accepted"]:-0}"
done
if [[ -s $work/findings ]]; then
  echo
  echo "findings:"
  head -50 "$work/findings"
  exit 1
fi
