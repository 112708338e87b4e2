#!/usr/bin/env bash
# The SAM CLI on Lifeboat's template, pinned, in a virtualenv of its own (.venv-sam: its
# dependencies must not move the local stack's pins):
#   infra/local/sam.sh validate   `sam validate --lint` (offline)
#   infra/local/sam.sh build      that, then `sam build` with cargo-lambda (arm64, release)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
venv="$root/.venv-sam"
pin="aws-sam-cli==1.170.0"
if [ "$(cat "$venv/.lifeboat-pin" 2>/dev/null)" != "$pin" ]; then
  echo "sam: installing $pin into .venv-sam (first run takes a few minutes)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$pin"
  echo "$pin" > "$venv/.lifeboat-pin"
fi
export SAM_CLI_TELEMETRY=0
# Validation is offline, but the CLI wants a region.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-west-2}

# sam runs in a process group of its own (sam -> cargo-lambda -> cargo -> rustc/zig), and
# that whole group is stopped when this script ends for any reason: interrupted, killed
# with TERM, or failed, no build is left running behind it.
group=""
stop_group() {
  [ -n "$group" ] || return 0
  kill -TERM -- "-$group" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 -- "-$group" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$group" 2>/dev/null || true
}
trap stop_group EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# run_sam ARGS...: the pinned sam with ARGS, in its own process group; its exit status.
run_sam() {
  setsid "$venv/bin/sam" "$@" &
  group=$!
  local status=0
  wait "$group" || status=$?
  stop_group
  group=""
  return "$status"
}

run_sam validate --lint --template-file infra/template.yaml
case "${1:-validate}" in
  validate) ;;
  build)
    # cargo-lambda and ziglang come from the local stack's virtualenv; zig is found as
    # `python3 -m ziglang`, so that virtualenv comes first on PATH.
    infra/local/venv.sh
    PATH="$root/.venv/bin:$PATH" run_sam build --template-file infra/template.yaml \
      --build-dir "$root/.aws-sam/build"
    ls -l "$root"/.aws-sam/build/*/bootstrap
    ;;
  *) echo "usage: $0 [validate|build]" >&2; exit 2 ;;
esac
