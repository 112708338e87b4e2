#!/usr/bin/env bash
# Make sure .venv holds the pinned local-stack tools (moto, cargo-lambda, ziglang,
# cfn-lint). Does nothing when it already does; safe to run any number of times.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"
stamp="$venv/.lifeboat-requirements"
want=$(cat "$root/infra/local/requirements.txt" "$root/infra/local/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "local stack: installing pinned tools into .venv (first run takes about a minute)" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  -r "$root/infra/local/requirements.txt" -c "$root/infra/local/constraints.txt"
echo "$want" > "$stamp"
