#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), starting from the seeds
# in fuzz/seeds/<target>. A crash stops the run with exit 1; its input is in
# fuzz/artifacts/<target>/ — turn it into a regression test beside the code it broke.
#
#   scripts/fuzz.sh 60            # every target, a minute each
#   scripts/fuzz.sh 300 splitter  # one target
#
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz, installed here
# when missing. Builds go to $FUZZ_TARGET_DIR (default /var/tmp/drbot-fuzz-target).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if cargo +nightly --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  # No nightly toolchain: let stable accept the -Z flags cargo-fuzz passes.
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/drbot-fuzz-target}"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${fuzz[@]}" list)
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$t" ] && cp -n "fuzz/seeds/$t"/* "$corpus"/ 2>/dev/null || true
  echo "== fuzz $t for ${secs}s"
  log="$(mktemp)"
  status=0
  "${fuzz[@]}" run "$t" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|SUMMARY|thread .* panicked|Failing input|.*Test unit written)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    rm -f "$log"
    echo "fuzz $t failed (exit $status): see fuzz/artifacts/$t/" >&2
    exit 1
  fi
  rm -f "$log"
done
echo "fuzzing done: ${#targets[@]} target(s), ${secs}s each, no crash"
