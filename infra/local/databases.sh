#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) answer, starting
# them when they are down. Restore validation queries them for real.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
maria_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

wait_for() {
  local what=$1 check=$2
  for _ in $(seq 1 60); do
    if $check; then return 0; fi
    sleep 0.5
  done
  echo "local stack: $what did not come up on 127.0.0.1; start it by hand (see README.md, 'Local stack')" >&2
  return 1
}

if ! pg_up; then
  echo "local stack: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for PostgreSQL pg_up
fi
if ! maria_up; then
  echo "local stack: starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_for MariaDB maria_up
fi
