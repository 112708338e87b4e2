"""Lifeboat's local AWS: the pinned moto server, with a realism layer that makes it take
time, enforce limits and fail the way AWS does.

Run: python infra/local/launcher.py --port 4566 [--exit-with-pid PID]
Environment: LIFEBOAT_LOCAL_TIME_SCALE (real seconds per AWS second, default 0.0025).

What it changes, and why (each change has a conformance test in tests/integration/,
driven through the Rust SDK the way Lifeboat calls it; README.md, "Local emulator vs
AWS", lists them and what still differs). The code is in lifeboat_local/:

* state.py     Per-account clock, transitions, durations (with their sources) and limits.
* rds.py       Transient states with durations (snapshots, copies, restores, replicas,
               promotion, reboots, deletes), the manual-snapshot quotas, the concurrent
               copy limit, automated snapshots not deletable, encrypted cross-Region copies
               needing a destination key, refusals in transient states, MaxRecords/Marker,
               a read replica's StatusInfos (in error while its source's region is down).
* cloudwatch.py New alarms start in INSUFFICIENT_DATA, an update keeps the state; composite
               alarms (PutCompositeAlarm) with an actions suppressor and ActionsSuppressedBy;
               DescribeAlarms returns composite alarms only when AlarmTypes asks.
* dynamodb.py  Backups CREATING -> AVAILABLE.
* route53.py   Changes PENDING -> INSYNC with their own ids; health checks made unhealthy.
* faults.py    Throttling, 5xx, dropped connections, region outages.
* control.py   The JSON control API under /_lifeboat/.
* inbound.py   Which account, region, service and operation a request is signed for.
* app.py       The WSGI application and the request handler that can drop a connection.

Accounts: an access key id of exactly twelve digits selects that account, so tests each
work in a fresh account, in parallel, against one server; every realism setting is per
account. Any other key uses moto's default account, 123456789012.
"""

import argparse
import logging
import math
import os
import sys
import threading
import time

# moto's own snapshot ceiling counts every snapshot; the realism layer enforces AWS's
# quotas (manual snapshots only, configurable per account) instead.
os.environ.setdefault("MOTO_RDS_SNAPSHOT_LIMIT", "1000000")

from werkzeug.serving import run_simple  # noqa: E402

from lifeboat_local.app import LifeboatRequestHandler, LocalAws  # noqa: E402
from lifeboat_local.state import REGISTRY  # noqa: E402


def exit_when_gone(pid):
    """Stop this server when the process that started it is gone (a killed test run
    leaves no emulator behind)."""

    def watch():
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass
            time.sleep(1)

    threading.Thread(target=watch, daemon=True).start()


def time_scale_from_env() -> float:
    raw = os.environ.get("LIFEBOAT_LOCAL_TIME_SCALE")
    if raw is None or raw.strip() == "":
        return REGISTRY.default_scale
    try:
        scale = float(raw)
    except ValueError:
        scale = -1.0
    if not math.isfinite(scale) or scale <= 0:
        sys.exit(
            f"LIFEBOAT_LOCAL_TIME_SCALE={raw!r} is not a number above 0; give real seconds per AWS "
            "second, e.g. 0.0025 (compressed, the default) or 1 (real time)"
        )
    return scale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with-pid", type=int, help="exit when this process exits")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the local AWS serves loopback only; use --host 127.0.0.1")
    REGISTRY.default_scale = time_scale_from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.exit_with_pid:
        exit_when_gone(args.exit_with_pid)
    run_simple(
        args.host,
        args.port,
        LocalAws(),
        threaded=True,
        request_handler=LifeboatRequestHandler,
    )


if __name__ == "__main__":
    main()
