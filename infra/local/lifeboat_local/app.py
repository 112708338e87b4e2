"""The WSGI application in front of moto: control API, accounts, faults, the clock."""

import json
import logging
import socket
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from . import control, faults, inbound
from .state import LOCK, REGISTRY

# Importing these installs their corrections into moto.
from . import cloudwatch, dynamodb, rds, route53  # noqa: F401  isort: skip

log = logging.getLogger("lifeboat_local")


class LocalAws:
    """moto's dispatcher behind Lifeboat's realism layer and its control API."""

    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_lifeboat/"):
            status, body = control.handle(environ)
            return respond(start_response, status, body)
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            # moto forgets every resource; the clocks, faults and settings go with them.
            REGISTRY.reset()
            return self.moto(environ, start_response)
        request = inbound.parse(environ)
        if request.access_key and inbound.ACCOUNT_KEY.match(request.access_key):
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = request.account
        with LOCK:
            state = REGISTRY.account(request.account)
            state.settle()
            fault = faults.pick(state.faults, request) if state.faults else None
        if fault is not None and fault.kind == "hang":
            return self.hang(fault, request, environ, start_response)
        if fault is not None:
            return self.fail(fault, request, start_response)
        return self.moto(environ, start_response)

    def hang(self, fault, request, environ, start_response):
        """Carry the request out now and answer `fault.seconds` later (outside the lock:
        other requests go on meanwhile). A client that gave up finds the connection
        closed; the request took effect all the same."""
        log.info(
            "fault %s (hang %ss) on %s %s in %s for %s",
            fault.id,
            fault.seconds,
            request.service,
            request.operation,
            request.region,
            request.account,
        )
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("early", []).append(data)

        chunks = self.moto(environ, capture)
        try:
            body = answer.get("early", []) + list(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        time.sleep(fault.seconds)
        start_response(answer["status"], answer["headers"])
        return body

    def fail(self, fault, request, start_response):
        log.info(
            "fault %s (%s) on %s %s in %s for %s",
            fault.id,
            fault.kind,
            request.service,
            request.operation,
            request.region,
            request.account,
        )
        if fault.kind in ("drop_connection", "region_outage"):
            raise faults.DropConnection(f"{fault.kind} {fault.id}")
        if fault.kind == "throttle":
            status, headers, body = faults.throttling(request)
        else:
            status, headers, body = faults.server_error(request, fault.status or 500)
        start_response(status, headers)
        return [body]


def respond(start_response, status: int, body: dict):
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class LifeboatRequestHandler(MotoRequestHandler):
    """moto's request handler, able to drop a connection: when the application raises
    DropConnection, the socket is closed without a byte of response, which the SDK sees
    as an endpoint it cannot reach."""

    def connection_dropped(self, error, environ=None):
        if isinstance(error, faults.DropConnection):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
