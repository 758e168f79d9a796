#!/usr/bin/env bash
# libFuzzer + AddressSanitizer targets for the code that reads untrusted input (issue #7 §1).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: safetensors npy config (default: all)
#   JOBS=N scripts/fuzz.sh ...                run N targets at once (default 1)
#   BUILD_ONLY=1 scripts/fuzz.sh              only build
#
# Builds without SwiftPM (Package.swift is untouched): MoECore is compiled as its own module with
# -emit-module; each target's Fuzz/<name>/main.swift is compiled together with the MoEFiles sources
# into one module, so the entry point can reach internal parsers (SafetensorsHeader, NPYHeader,
# JSON). Output: .build-fuzz/bin/<name>, corpus .build-fuzz/corpus/<name> (seeded by
# Fuzz/seeds.py), logs .build-fuzz/logs/<name>.log, crashes .build-fuzz/crashes/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(safetensors npy config)
OUT=.build-fuzz
SAN=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6)
mkdir -p "$OUT/mod" "$OUT/bin" "$OUT/logs"

CORE=(Sources/MoECore/*.swift)
FILES=(Sources/MoEFiles/*.swift)

echo "== building MoECore module"
swiftc "${SAN[@]}" -module-name MoECore -parse-as-library -emit-module -emit-module-path "$OUT/mod/MoECore.swiftmodule" \
  -emit-object -wmo -o "$OUT/mod/MoECore.o" "${CORE[@]}" 2> >(grep -v "Cannot export local symbol" >&2)

build() {
  local name=$1 extra=()
  case $name in
    safetensors | npy) extra=("${FILES[@]}" Fuzz/Shared/FuzzInput.swift) ;;
    config) extra=() ;;
    *) echo "unknown target $name" >&2; exit 2 ;;
  esac
  echo "== building $name"
  swiftc "${SAN[@]}" -module-name "Fuzz_$name" -I "$OUT/mod" "$OUT/mod/MoECore.o" \
    "Fuzz/$name/main.swift" "${extra[@]}" -o "$OUT/bin/$name" 2>&1 | grep -v "Cannot export local symbol" >&2 || true
  [ -x "$OUT/bin/$name" ] || { echo "build of $name failed" >&2; exit 1; }
}
for t in "${TARGETS[@]}"; do build "$t"; done
[ -z "${BUILD_ONLY:-}" ] || exit 0

python3 Fuzz/seeds.py "$OUT/seeds"
run() {
  local name=$1
  mkdir -p "$OUT/corpus/$name" "$OUT/crashes/$name"
  cp -n "$OUT/seeds/$name/"* "$OUT/corpus/$name/" 2>/dev/null || true
  echo "== fuzzing $name for ${SECONDS_PER_TARGET}s (log $OUT/logs/$name.log)"
  # -rss_limit_mb/-malloc_limit_mb: an allocation sized from a hostile header counts as a finding.
  "$OUT/bin/$name" "$OUT/corpus/$name" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$OUT/crashes/$name/" >"$OUT/logs/$name.log" 2>&1 || echo "!! $name stopped with a finding (see log)"
  grep -E "^#[0-9]+[[:space:]]+DONE|^Done|stat::number_of_executed_units|^==.*ERROR|SUMMARY" "$OUT/logs/$name.log" || tail -5 "$OUT/logs/$name.log"
}
JOBS=${JOBS:-1}
pids=()
for t in "${TARGETS[@]}"; do
  run "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
