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
"$venv/bin/sam" validate --lint --template-file infra/template.yaml
case "${1:-validate}" in
  validate) ;;
  build)
    # cargo-lambda and ziglang come from the local stack's virtualenv.
    infra/local/venv.sh
    PATH="$root/.venv/bin:$PATH" "$venv/bin/sam" build --template-file infra/template.yaml \
      --build-dir "$root/.aws-sam/build"
    ls -l "$root"/.aws-sam/build/*/bootstrap
    ;;
  *) echo "usage: $0 [validate|build]" >&2; exit 2 ;;
esac
