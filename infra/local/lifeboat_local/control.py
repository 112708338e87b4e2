"""The control API on the emulator's own port: JSON in, JSON out. Tests and the drill use
it to set an account's time scale, durations and limits, inject faults, move the clock,
publish a replica's lag, mark a health check unhealthy and read the transitions.

Input is checked whole before anything changes: a request with one bad field is refused
with HTTP 400 naming the field and the fix, and changes nothing.
"""

import json
import math
import os
import time
from urllib.parse import parse_qs

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow
from moto.route53.models import route53_backends

from . import faults as fault_model
from .inbound import ACCOUNT_KEY, known_regions, known_services, operation_names, signing_name
from .state import DEFAULT_ACCOUNT, DURATIONS, LIMITS, LOCK, REGISTRY

MOTO_VERSION = __import__("moto").__version__
STARTED = time.time()


class BadInput(Exception):
    def __init__(self, field: str, problem: str, fix: str):
        super().__init__(f"`{field}`: {problem}; {fix}")
        self.field = field
        self.problem = problem
        self.fix = fix


class NotFound(Exception):
    pass


def _number(body, name, *, minimum=None, above=None, maximum=None, label=None):
    value = body[name]
    name = label or name
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(name, f"{value!r} is not a number", "give a finite number")
    if above is not None and not value > above:
        raise BadInput(name, f"{value} is not above {above}", f"give a number above {above}")
    if minimum is not None and value < minimum:
        raise BadInput(name, f"{value} is below {minimum}", f"give a number of at least {minimum}")
    if maximum is not None and value > maximum:
        raise BadInput(name, f"{value} is above {maximum}", f"give a number of at most {maximum}")
    return float(value)


def _integer(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(name, f"{value!r} is not an integer", f"give a whole number of at least {minimum}")
    if value < minimum:
        raise BadInput(name, f"{value} is below {minimum}", f"give a whole number of at least {minimum}")
    return value


def _string(body, name):
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise BadInput(name, f"{value!r} is not a non-empty string", "give a non-empty string")
    return value


def _fields(body, allowed, required=()):
    if not isinstance(body, dict):
        raise BadInput("(body)", "the body is not a JSON object", "send a JSON object")
    for name in body:
        if name not in allowed:
            raise BadInput(name, "unknown field", f"use only {', '.join(sorted(allowed))}")
    for name in required:
        if name not in body:
            raise BadInput(name, "missing", f"give `{name}`")


def _account(value) -> str:
    if value is None:
        return DEFAULT_ACCOUNT
    if not isinstance(value, str) or not ACCOUNT_KEY.match(value):
        raise BadInput("account", f"{value!r} is not a twelve-digit account id", "give an id such as 123456789012")
    return value


def _region(body, name="region"):
    value = body[name]
    if not isinstance(value, str) or value not in known_regions():
        raise BadInput(name, f"{value!r} is not an AWS region", "give a region such as us-east-1 or us-west-2")
    return value


def _query_account(query, body=None) -> str:
    """The account of a GET: `?account=`, or `{"account": ...}` in a body."""
    if body:
        _fields(body, {"account"})
        if "account" in body:
            return _account(body["account"])
    return _account(query.get("account", [None])[0])


# --- Handlers ------------------------------------------------------------------------


def health(_body, _query):
    return {
        "status": "ok",
        "moto": MOTO_VERSION,
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - STARTED, 1),
        "default_time_scale": REGISTRY.default_scale,
    }


def config_view(account: str) -> dict:
    with LOCK:
        state = REGISTRY.account(account)
        state.settle()
        return {
            "account": account,
            "time_scale": state.clock.scale,
            "durations": {name: state.duration(name) for name in DURATIONS},
            "limits": {name: state.limit(name) for name in LIMITS},
            "now": state.now(),
        }


def get_config(body, query):
    return config_view(_query_account(query, body))


def post_config(body, _query):
    _fields(body, {"account", "time_scale", "durations", "limits"})
    account = _account(body.get("account"))
    scale = _number(body, "time_scale", above=0) if "time_scale" in body else None
    durations = {}
    if "durations" in body:
        if not isinstance(body["durations"], dict):
            raise BadInput("durations", "not an object", 'give {"<name>": seconds}')
        for name, value in body["durations"].items():
            if name not in DURATIONS:
                raise BadInput(f"durations.{name}", "unknown duration", f"use one of {', '.join(DURATIONS)}")
            durations[name] = _number(body["durations"], name, minimum=0, label=f"durations.{name}")
    limits = {}
    if "limits" in body:
        if not isinstance(body["limits"], dict):
            raise BadInput("limits", "not an object", 'give {"<name>": count}')
        for name, value in body["limits"].items():
            if name not in LIMITS:
                raise BadInput(f"limits.{name}", "unknown limit", f"use one of {', '.join(LIMITS)}")
            limits[name] = _integer(value, f"limits.{name}", 0)
    with LOCK:
        state = REGISTRY.account(account)
        if scale is not None:
            state.set_scale(scale)
        state.durations.update(durations)
        state.limits.update(limits)
    return config_view(account)


FAULT_FIELDS = {"account", "kind", "service", "operation", "region", "count", "fraction", "status", "seconds", "include_global"}


def post_fault(body, _query):
    _fields(body, FAULT_FIELDS, required=("kind",))
    account = _account(body.get("account"))
    kind = body["kind"]
    if kind not in fault_model.KINDS:
        raise BadInput("kind", f"unknown fault kind {kind!r}", f"use one of {', '.join(fault_model.KINDS)}")
    fault = fault_model.Fault(id=fault_model.new_id(), kind=kind)
    if "service" in body:
        service = signing_name(_string(body, "service"))
        if service not in known_services():
            raise BadInput("service", f"unknown service {body['service']!r}", "give an AWS service such as rds, dynamodb, route53, sns, s3, cloudwatch")
        fault.service = service
    if "region" in body:
        fault.region = _region(body)
    if kind == "hang":
        if "seconds" not in body:
            raise BadInput("seconds", "missing", "give how long a hung call waits before its answer, e.g. 30")
        fault.seconds = _number(body, "seconds", above=0, maximum=fault_model.MAX_HANG_SECONDS)
    elif "seconds" in body:
        raise BadInput("seconds", f"applies to hang faults, not {kind}", "leave it out, or use kind hang")
    if kind == "region_outage":
        for name in ("operation", "count", "fraction", "status"):
            if name in body:
                raise BadInput(name, "not applicable to a region outage", "leave it out: an outage lasts until its fault is deleted")
        if fault.region is None:
            raise BadInput("region", "missing", "give the region that is down, e.g. us-east-1")
        if "include_global" in body:
            if not isinstance(body["include_global"], bool):
                raise BadInput("include_global", f"{body['include_global']!r} is not a boolean", "give true or false")
            fault.include_global = body["include_global"]
    else:
        if "include_global" in body:
            raise BadInput("include_global", "applies to region outages only", "leave it out, or use kind region_outage")
        if "operation" in body:
            operation = _string(body, "operation")
            if fault.service is None:
                raise BadInput("operation", "an operation needs its service", "give `service` too, e.g. rds")
            known = operation_names(fault.service)
            if known and operation not in known:
                raise BadInput("operation", f"{fault.service} has no operation {operation!r}", "give an API operation name such as CreateDBSnapshot")
            fault.operation = operation
        if "count" in body and "fraction" in body:
            raise BadInput("fraction", "given together with count", "give either count (the next N calls) or fraction (a share of calls)")
        if "count" in body:
            fault.count = _integer(body["count"], "count", 1)
        if "fraction" in body:
            fault.fraction = _number(body, "fraction", minimum=0, maximum=1)
        if "status" in body:
            if kind != "server_error":
                raise BadInput("status", f"applies to server_error faults, not {kind}", "leave it out")
            if body["status"] not in (500, 503) or isinstance(body["status"], bool):
                raise BadInput("status", f"{body['status']!r} is not 500 or 503", "give 500 or 503")
            fault.status = body["status"]
        elif kind == "server_error":
            fault.status = 500
    with LOCK:
        REGISTRY.account(account).faults[fault.id] = fault
    return {"id": fault.id, "account": account, "fault": fault.as_json()}


def list_faults(body, query):
    account = _query_account(query, body)
    with LOCK:
        return {"account": account, "faults": [f.as_json() for f in REGISTRY.account(account).faults.values()]}


def delete_faults(body, query):
    account = _query_account(query, body)
    with LOCK:
        faults = REGISTRY.account(account).faults
        count = len(faults)
        faults.clear()
    return {"account": account, "deleted": count}


def delete_fault(fault_id):
    def handler(_body, _query):
        with LOCK:
            for state in REGISTRY.accounts.values():
                if fault_id in state.faults:
                    del state.faults[fault_id]
                    return {"account": state.account, "deleted": fault_id}
        raise NotFound(f"no fault {fault_id}; list an account's faults with GET /_lifeboat/faults?account=...")

    return handler


def post_clock(body, _query):
    _fields(body, {"account", "advance_seconds"}, required=("advance_seconds",))
    account = _account(body.get("account"))
    seconds = _number(body, "advance_seconds", minimum=0)
    with LOCK:
        state = REGISTRY.account(account)
        state.advance(seconds)
        return {"account": account, "advanced_seconds": seconds, "now": state.now()}


def post_replica_lag(body, _query):
    _fields(body, {"account", "region", "db_instance", "seconds"}, required=("region", "db_instance", "seconds"))
    account = _account(body.get("account"))
    region = _region(body)
    db_instance = _string(body, "db_instance")
    seconds = _number(body, "seconds", minimum=0)
    # What RDS itself publishes for a replica: AWS/RDS ReplicaLag per DBInstanceIdentifier.
    cloudwatch_backends[account][region].put_metric_data(
        "AWS/RDS",
        [
            {
                "MetricName": "ReplicaLag",
                "Value": seconds,
                "Unit": "Seconds",
                "Timestamp": utcnow(),
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db_instance}],
            }
        ],
    )
    return {"account": account, "region": region, "db_instance": db_instance, "seconds": seconds}


def post_health_check(body, _query):
    _fields(body, {"account", "health_check_id", "healthy"}, required=("health_check_id", "healthy"))
    account = _account(body.get("account"))
    check_id = _string(body, "health_check_id")
    healthy = body["healthy"]
    if not isinstance(healthy, bool):
        raise BadInput("healthy", f"{healthy!r} is not a boolean", "give true or false")
    if check_id not in route53_backends[account]["aws"].health_checks:
        raise BadInput("health_check_id", f"account {account} has no health check {check_id}", "create it first, or check the id")
    with LOCK:
        unhealthy = REGISTRY.account(account).unhealthy_checks
        if healthy:
            unhealthy.discard(check_id)
        else:
            unhealthy.add(check_id)
    return {"account": account, "health_check_id": check_id, "healthy": healthy}


def get_transitions(body, query):
    account = _query_account(query, body)
    with LOCK:
        state = REGISTRY.account(account)
        state.settle()
        wall = time.time()
        return {
            "account": account,
            "time_scale": state.clock.scale,
            "now": state.clock.now(wall),
            "now_wall": wall,
            "transitions": [t.as_json(state.clock) for t in state.transitions],
        }


ROUTES = {
    ("GET", "/_lifeboat/health"): health,
    ("GET", "/_lifeboat/config"): get_config,
    ("POST", "/_lifeboat/config"): post_config,
    ("GET", "/_lifeboat/faults"): list_faults,
    ("POST", "/_lifeboat/faults"): post_fault,
    ("DELETE", "/_lifeboat/faults"): delete_faults,
    ("POST", "/_lifeboat/clock"): post_clock,
    ("POST", "/_lifeboat/replica-lag"): post_replica_lag,
    ("POST", "/_lifeboat/health-checks"): post_health_check,
    ("GET", "/_lifeboat/transitions"): get_transitions,
}


def handle(environ) -> tuple:
    """(HTTP status, JSON body) for a control request."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "").rstrip("/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    handler = ROUTES.get((method, path))
    if handler is None and method == "DELETE" and path.startswith("/_lifeboat/faults/"):
        handler = delete_fault(path.rsplit("/", 1)[-1])
    if handler is None:
        known = sorted({p for _, p in ROUTES} | {"/_lifeboat/faults/<id>"})
        if any(p == path for _, p in ROUTES):
            return 405, {"error": f"{method} is not allowed on {path}"}
        return 404, {"error": f"unknown control path {path}", "known": known}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        # A GET may name its account in a body as well as in the query.
        body = json.loads(raw) if raw.strip() else ({} if method in ("POST", "PUT") else None)
    except ValueError as e:
        return 400, {"error": f"the body is not JSON: {e}", "field": "(body)", "fix": "send a JSON object"}
    try:
        return 200, handler(body, query)
    except BadInput as e:
        return 400, {"error": str(e), "field": e.field, "problem": e.problem, "fix": e.fix}
    except NotFound as e:
        return 404, {"error": str(e)}
