#!/usr/bin/env bash
# `make drill`: bring the local stack up, run the DR drill against it, and stop what this
# script started (set LIFEBOAT_KEEP_STACK=1 to keep the stack up for exploring).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
port=${LIFEBOAT_LOCAL_PORT:-4566}
started=no
if ! infra/local/stack.sh status >/dev/null 2>&1; then
  infra/local/stack.sh up
  started=yes
fi
finish() {
  if [ "$started" = yes ] && [ "${LIFEBOAT_KEEP_STACK:-0}" != 1 ]; then
    infra/local/stack.sh down
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM HUP
# The functions run under `cargo lambda watch`, found on the virtualenv's PATH; building
# them first keeps the first invocation from paying for the compile.
export PATH="$root/.venv/bin:$PATH"
run_stoppable cargo build --quiet --locked -p tests --bin lifeboat-drill -p snapshot -p retention -p restore-validator -p failover -p failback -p recovery -p readiness
run_stoppable "$CARGO_TARGET_DIR/debug/lifeboat-drill" --plan infra/plans/local.json --endpoint "http://127.0.0.1:$port"
