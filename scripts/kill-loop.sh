#!/usr/bin/env bash
# The long kill loop: `drbot exec` killed with SIGKILL at random moments, the store reopened
# and checked after each kill (tests/crash.rs). Usage: scripts/kill-loop.sh KILLS [SEED...]
# Each seed is a separate run of KILLS kills; without seeds, three random ones.
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-1000}"
shift || true
seeds=("$@")
if [ ${#seeds[@]} -eq 0 ]; then
  seeds=("$RANDOM$RANDOM" "$RANDOM$RANDOM" "$RANDOM$RANDOM")
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/drbot-target}"
export PATH="/var/tmp/drbot-py/bin:$PATH"
for seed in "${seeds[@]}"; do
  echo "== seed $seed, $kills kills"
  DRBOT_KILLS="$kills" DRBOT_KILL_SEED="$seed" cargo test -q -p drbot --test integration \
    crash::kill_9 -- --nocapture 2>&1 | grep -E "kill loop|panicked|round|test result"
done
