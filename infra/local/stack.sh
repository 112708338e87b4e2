#!/usr/bin/env bash
# The persistent local stack, for the drill and for exploring with `cargo lambda invoke`:
#   infra/local/stack.sh up       start it (does nothing if it is already up)
#   infra/local/stack.sh down     stop what `up` started
#   infra/local/stack.sh status   say whether it is up, and where
# The port is LIFEBOAT_LOCAL_PORT (default 4566). State lives in .local/stack/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
port=${LIFEBOAT_LOCAL_PORT:-4566}
# A stack on another port (make test runs the drill on a free one) keeps its own state, so
# it never takes over the pid file of the default stack someone is exploring.
state="$root/.local/stack${LIFEBOAT_LOCAL_PORT:+-$LIFEBOAT_LOCAL_PORT}"
pidfile="$state/launcher.pid"
endpoint="http://127.0.0.1:$port"

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

case "${1:-}" in
  up)
    "$root/infra/local/venv.sh"
    "$root/infra/local/databases.sh"
    if pid=$(running_pid) && wait_healthy "$endpoint" 2; then
      echo "local stack: already up at $endpoint (pid $pid)"
      exit 0
    fi
    if wait_healthy "$endpoint" 1; then
      echo "local stack: port $port is served by a process this script did not start; stop it or set LIFEBOAT_LOCAL_PORT" >&2
      exit 1
    fi
    mkdir -p "$state"
    nohup "$venv_python" "$launcher" --port "$port" > "$state/launcher.log" 2>&1 &
    echo $! > "$pidfile"
    if ! wait_healthy "$endpoint" 20; then
      echo "local stack: the emulator did not start; see $state/launcher.log" >&2
      stop_pid "$(cat "$pidfile")"
      rm -f "$pidfile"
      exit 1
    fi
    echo "local stack: up at $endpoint (pid $(cat "$pidfile"))"
    ;;
  down)
    if pid=$(running_pid); then
      stop_pid "$pid"
      echo "local stack: stopped (pid $pid)"
    else
      echo "local stack: not running"
    fi
    rm -f "$pidfile"
    ;;
  status)
    if pid=$(running_pid) && wait_healthy "$endpoint" 1; then
      echo "local stack: up at $endpoint (pid $pid)"
    else
      echo "local stack: down"
      exit 3
    fi
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
