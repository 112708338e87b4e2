"""What an AWS request is: the account and region it is signed for, the service, the
operation, and the protocol its errors must be written in."""

import functools
import io
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, unquote

import botocore.session

from .state import DEFAULT_ACCOUNT

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
QUERY_CREDENTIAL = re.compile(r"^([^/]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request$")
ACCOUNT_KEY = re.compile(r"^\d{12}$")

# SigV4 signing names that differ from the service's name in the SDKs.
SIGNING_NAMES = {"cloudwatch": "monitoring"}
SERVICE_NAMES = {v: k for k, v in SIGNING_NAMES.items()}

# Services whose API is global: their calls are signed for us-east-1 wherever the caller
# is. (STS also has regional endpoints; signed for us-east-1 it is taken as global.)
GLOBAL_SERVICES = {"route53", "iam", "sts", "cloudfront", "organizations", "route53domains"}


@functools.lru_cache(maxsize=None)
def _botocore():
    return botocore.session.get_session()


@functools.lru_cache(maxsize=None)
def known_regions() -> frozenset:
    session = _botocore()
    regions = set()
    for service in ("ec2", "rds", "dynamodb", "s3"):
        regions.update(session.get_available_regions(service))
    return frozenset(regions)


@functools.lru_cache(maxsize=None)
def known_services() -> frozenset:
    """Signing names of every service botocore knows."""
    return frozenset(SIGNING_NAMES.get(s, s) for s in _botocore().get_available_services())


def signing_name(service: str) -> str:
    """The signing name for a service given by either name (`cloudwatch` or `monitoring`)."""
    return SIGNING_NAMES.get(service, service)


@functools.lru_cache(maxsize=None)
def operation_names(signing: str) -> frozenset:
    try:
        model = _botocore().get_service_model(SERVICE_NAMES.get(signing, signing))
    except Exception:
        return frozenset()
    return frozenset(model.operation_names)


@functools.lru_cache(maxsize=None)
def _rest_routes(signing: str) -> list:
    """(method, path regex, required query keys, specificity, operation) for a REST
    service, from its botocore model, most specific first."""
    try:
        model = _botocore().get_service_model(SERVICE_NAMES.get(signing, signing))
    except Exception:
        return []
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        pattern = ""
        literal = 0
        for part in re.split(r"(\{[^}]+\})", path):
            if part.startswith("{"):
                pattern += "(.+)" if part.endswith("+}") else "([^/]+)"
            else:
                pattern += re.escape(part)
                literal += len(part)
        pattern = "^" + pattern.rstrip("/") + "/?$"
        keys = [q.split("=")[0] for q in query.split("&") if q]
        routes.append((http.get("method", "GET"), re.compile(pattern), keys, literal + 100 * len(keys), name))
    routes.sort(key=lambda r: -r[3])
    return routes


@dataclass
class AwsRequest:
    access_key: Optional[str]
    account: str
    region: Optional[str]
    service: Optional[str]  # signing name
    protocol: str  # "json", "query", "rest-xml-wrapped" (Route 53), "s3"
    environ: dict
    _operation: Optional[str] = None
    _parsed: bool = False

    @property
    def operation(self) -> Optional[str]:
        if not self._parsed:
            self._operation = _operation_of(self)
            self._parsed = True
        return self._operation


def _scope(environ) -> tuple:
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1), match.group(2), match.group(3)
    # Presigned URLs carry the scope in the query string.
    for value in parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", []):
        match = QUERY_CREDENTIAL.match(unquote(value))
        if match:
            return match.group(1), match.group(2), match.group(3)
    return None, None, None


def parse(environ) -> AwsRequest:
    access_key, region, service = _scope(environ)
    account = access_key if access_key and ACCOUNT_KEY.match(access_key) else DEFAULT_ACCOUNT
    if environ.get("HTTP_X_AMZ_TARGET") or "amz-json" in environ.get("CONTENT_TYPE", ""):
        protocol = "json"
    elif service == "s3":
        protocol = "s3"
    elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        protocol = "query"
    elif service in ("route53",) or environ.get("REQUEST_METHOD") in ("GET", "DELETE", "PUT"):
        protocol = "rest-xml"
    else:
        protocol = "query"
    return AwsRequest(access_key, account, region, service, protocol, environ)


def read_body(environ) -> bytes:
    """Read the body once and put it back, so moto reads it as if nobody had."""
    cached = environ.get("lifeboat.body")
    if cached is not None:
        return cached
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["lifeboat.body"] = body
    return body


def _operation_of(request: AwsRequest) -> Optional[str]:
    environ = request.environ
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if "Action" in query:
        return query["Action"][0]
    if request.protocol == "query":
        form = parse_qs(read_body(environ).decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    path = environ.get("PATH_INFO", "")
    rpc = re.search(r"/operation/([A-Za-z0-9]+)$", path)
    if rpc:
        return rpc.group(1)
    if request.service:
        method = environ.get("REQUEST_METHOD", "GET")
        for route_method, pattern, keys, _, name in _rest_routes(request.service):
            if route_method == method and pattern.match(path) and all(k in query for k in keys):
                return name
    return None
