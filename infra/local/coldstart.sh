#!/usr/bin/env bash
# `make coldstart`: build the functions as they ship (release profile), then time each
# one as Lambda starts it, against a private local stack (see tests/src/bin/coldstart.rs).
# Prints a Markdown table: binary size, cold start, first invocation, peak memory.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
runs=${LIFEBOAT_COLDSTART_RUNS:-5}
functions=(snapshot=events/snapshot-schedule.json
           failover=events/failover-status.json
           failback=events/failback-status.json
           retention=events/retention-dry-run.json
           restore-validator=events/validation-tick.json
           recovery=events/recovery-status.json
           readiness=events/readiness.json)
packages=()
for f in "${functions[@]}"; do packages+=(-p "${f%%=*}"); done
cargo build --quiet --locked --release "${packages[@]}"
cargo build --quiet --locked -p tests --bin lifeboat-coldstart
infra/local/with-stack bash -c '"$0" --plan infra/plans/local.json --endpoint "$LIFEBOAT_TEST_ENDPOINT" --bin-dir "$1" --runs "$2" "${@:3}"' \
  "$CARGO_TARGET_DIR/debug/lifeboat-coldstart" "$CARGO_TARGET_DIR/release" "$runs" "${functions[@]}"
