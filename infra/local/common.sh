# Shared by the local-stack scripts (sourced, not run).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv_python="$root/.venv/bin/python"
launcher="$root/infra/local/launcher.py"

free_port() {
  "$venv_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_healthy URL SECONDS: poll the launcher's health path.
wait_healthy() {
  local url=$1 seconds=${2:-20}
  for _ in $(seq 1 $((seconds * 10))); do
    if "$venv_python" - "$url" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/_lifeboat/health", timeout=1).read()
PY
    sleep 0.1
  done
  return 1
}

# stop_pid PID: SIGTERM, then SIGKILL after five seconds.
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# run_stoppable COMMAND...: run COMMAND in a process group of its own and wait for it;
# SIGINT, SIGTERM or SIGHUP sent to this script (by `timeout`, CI, Ctrl-C, or `kill` of
# this script's pid alone) is passed on to that whole group as SIGTERM. Bash runs a trap
# only after its foreground command ends, so without this a signal to the script alone
# would not reach the command; the Rust harness stops what it started on SIGTERM.
run_stoppable() {
  local saved
  saved=$(trap -p INT TERM HUP)
  set -m
  "$@" < /dev/null &
  local child=$!
  set +m
  trap "kill -TERM -- -$child 2>/dev/null || true" INT TERM HUP
  local status=0
  while :; do
    wait "$child" && status=0 || status=$?
    kill -0 "$child" 2>/dev/null || break
  done
  trap - INT TERM HUP
  eval "$saved"
  return "$status"
}
