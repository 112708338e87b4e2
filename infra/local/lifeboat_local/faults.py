"""Faults on demand: throttling, 5xx, dropped connections, hung calls and region outages,
each scoped to one account and matched against the service, operation and region a
request is signed for.

A hung call (`hang`) is accepted: the emulator carries it out at once, as AWS does with a
request it has received, and answers only `seconds` later, as a slow or stalled service
would. A client that gives up first never learns that its request took effect.

Error bodies are written in the protocol of the request, the way AWS writes them, so the
SDK parses the error code: XML `ErrorResponse` for query services (RDS, SNS, CloudWatch,
STS, IAM) and Route 53, `<Error>` for S3, JSON `__type` for JSON services (DynamoDB, KMS).
"""

import itertools
import json
import random
import uuid
from dataclasses import dataclass
from typing import Optional

from .inbound import GLOBAL_SERVICES, AwsRequest

KINDS = ("throttle", "server_error", "drop_connection", "hang", "region_outage")

# Longest hang: Lambda's longest invocation.
MAX_HANG_SECONDS = 900

_ids = itertools.count(1)


class DropConnection(ConnectionError):
    """Raised to close the client's connection without any response, as an unreachable
    endpoint would look to it (see app.LifeboatRequestHandler)."""


@dataclass
class Fault:
    id: str
    kind: str
    service: Optional[str] = None
    operation: Optional[str] = None
    region: Optional[str] = None
    count: Optional[int] = None  # remaining calls to fail; None: every matching call
    fraction: Optional[float] = None
    status: Optional[int] = None
    seconds: Optional[float] = None  # a hang's delay before the answer
    include_global: bool = False
    fired: int = 0

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "operation": self.operation,
            "region": self.region,
            "count": self.count,
            "fraction": self.fraction,
            "status": self.status,
            "seconds": self.seconds,
            "include_global": self.include_global,
            "fired": self.fired,
        }

    def matches(self, request: AwsRequest) -> bool:
        if self.kind == "region_outage":
            if request.region != self.region:
                return False
            # Global services are signed for us-east-1 but do not live there: failover must
            # still switch DNS when us-east-1 is the failed primary.
            if request.service in GLOBAL_SERVICES and not self.include_global:
                return False
            return self.service is None or request.service == self.service
        if self.service is not None and request.service != self.service:
            return False
        if self.region is not None and request.region != self.region:
            return False
        if self.operation is not None and request.operation != self.operation:
            return False
        return True


def new_id() -> str:
    return f"fault-{next(_ids)}"


def pick(faults: dict, request: AwsRequest) -> Optional[Fault]:
    """The fault this request meets, if any (consuming one of a counted fault's calls).
    An outage comes first: nothing else is reached in a region that is down."""
    ordered = sorted(faults.values(), key=lambda f: f.kind != "region_outage")
    for fault in ordered:
        if not fault.matches(request):
            continue
        if fault.count is not None:
            if fault.count <= 0:
                continue
            fault.count -= 1
        elif fault.fraction is not None and random.random() >= fault.fraction:
            continue
        fault.fired += 1
        return fault
    return None


def error_response(request: AwsRequest, status: int, code: str, message: str) -> tuple:
    """(status line, headers, body) of an AWS error in the request's protocol."""
    request_id = str(uuid.uuid4())
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    if request.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        content_type = request.environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0"
        headers = [
            ("Content-Type", content_type),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ]
    elif request.protocol == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:
        sender = "Sender" if status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {reason}", headers, body


def throttling(request: AwsRequest) -> tuple:
    if request.protocol == "json":
        return error_response(request, 400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
    if request.protocol == "s3":
        # S3 throttles with 503 SlowDown, not with a 400.
        return error_response(request, 503, "SlowDown", "Please reduce your request rate.")
    return error_response(request, 400, "Throttling", "Rate exceeded")


def server_error(request: AwsRequest, status: int) -> tuple:
    if status == 503:
        return error_response(request, 503, "ServiceUnavailable", "Service is unavailable. Please try again later.")
    code = {"json": "InternalServerError", "s3": "InternalError"}.get(request.protocol, "InternalFailure")
    return error_response(request, 500, code, "We encountered an internal error. Please try again.")
