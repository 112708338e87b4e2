"""Lifeboat's local AWS: the pinned moto server, corrected where a DR step depends on
moto behaving differently from AWS.

Run: python infra/local/launcher.py --port 4566 [--exit-with-pid PID]

What it changes, and why (each change has a conformance test in tests/ driven through
the Rust SDK, the way Lifeboat calls it):

* Read-replica promotion (RDS PromoteReadReplica). moto leaves a promoted replica looking
  like a replica: ReadReplicaSourceDBInstanceIdentifier stays set and the source still
  lists it, and it accepts promoting an instance that is no replica. AWS detaches the
  replica from its source, and refuses the second case with InvalidDBInstanceState.
  Failover reads exactly these fields to know whether promotion happened.

* Accounts. An access key id of exactly twelve digits selects that account (moto's own
  `x-moto-account-id` header is set from it). Tests use a fresh account each, so they run
  in parallel against one server without seeing each other's resources. Any other key
  uses moto's default account, 123456789012.

Nothing else differs from `moto_server`: same WSGI application, same request handler.
"""

import argparse
import json
import os
import re
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.rds import models as rds_models
from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
from werkzeug.serving import run_simple

MOTO_VERSION = __import__("moto").__version__

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
ACCOUNT_KEY = re.compile(r"^\d{12}$")


def signed_scope(environ):
    """(access key id, region, service) from a SigV4 Authorization header, or Nones."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None, None, None
    return match.group(1), match.group(2), match.group(3)


# --- RDS: read-replica promotion as AWS does it -------------------------------------

_lock = threading.RLock()


def promote_read_replica(backend, db_kwargs):
    identifier = db_kwargs["db_instance_identifier"]
    with _lock:
        database = backend.databases.get(identifier)
        if database is None:
            raise DBInstanceNotFoundError(identifier)
        if not database.is_replica or not database.source_db_instance_identifier:
            raise RDSClientError(
                "InvalidDBInstanceState",
                f"DB Instance {identifier} is not a read replica.",
            )
        try:
            source = backend.find_db_from_id(database.source_db_instance_identifier)
        except Exception:
            # The source is gone (or its region is): AWS promotes the replica all the same.
            source = None
        if source is not None:
            for reference in (database.db_instance_arn, database.db_instance_identifier):
                if reference in source.replicas:
                    source.replicas.remove(reference)
        database.is_replica = False
        database.source_db_instance_identifier = None
        # PromoteReadReplica's own parameters (backup retention, window) apply.
        settable = {
            k: v
            for k, v in db_kwargs.items()
            if k in ("backup_retention_period", "preferred_backup_window")
        }
        if settable:
            database.update(**settable)
        return database


rds_models.RDSBackend.promote_read_replica = promote_read_replica


# --- The WSGI application -------------------------------------------------------------


class LocalAws:
    """moto's dispatcher behind Lifeboat's corrections and its small control API."""

    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.started = time.time()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_lifeboat/"):
            return self.control(path, environ, start_response)
        access_key, _region, _service = signed_scope(environ)
        if access_key and ACCOUNT_KEY.match(access_key):
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = access_key
        return self.moto(environ, start_response)

    def control(self, path, environ, start_response):
        if path == "/_lifeboat/health":
            body = {
                "status": "ok",
                "moto": MOTO_VERSION,
                "pid": os.getpid(),
                "uptime_seconds": round(time.time() - self.started, 1),
            }
            return respond(start_response, "200 OK", body)
        return respond(
            start_response,
            "404 Not Found",
            {"error": f"unknown control path {path}; known: /_lifeboat/health"},
        )


def respond(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with-pid", type=int, help="exit when this process exits")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the local AWS serves loopback only; use --host 127.0.0.1")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.exit_with_pid:
        exit_when_gone(args.exit_with_pid)
    run_simple(
        args.host,
        args.port,
        LocalAws(),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
