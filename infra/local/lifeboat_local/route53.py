"""Route 53 as AWS runs it: a change is PENDING until it has reached every name server
(then INSYNC, which GetChange reports), each change has its own id, and a health check
reports what the control API says about it (moto reports every check healthy)."""

import random
import string

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.route53.exceptions import Route53ClientError
from moto.route53.responses import Route53

from .state import LOCK, REGISTRY, Step

# The regions Route 53 health checkers report from.
CHECKER_REGIONS = ("us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1")


def _change_id() -> str:
    return "C" + "".join(random.choices(string.ascii_uppercase + string.digits, k=13))


def pending_change(account: str, kind: str, resource: str) -> dict:
    """A new change, PENDING now and INSYNC once propagated."""
    change_id = _change_id()
    info = {"Id": f"/change/{change_id}", "Status": "PENDING", "SubmittedAt": utcnow()}
    state = REGISTRY.account(account)

    def in_sync():
        info["Status"] = "INSYNC"

    state.begin(
        service="route53",
        region="global",
        resource_type="change",
        resource=change_id,
        kind=kind,
        status="PENDING",
        steps=[Step("INSYNC", "route53_change", in_sync)],
    )
    state.changes[change_id] = info
    return info


def _wrap_change(name: str, kind: str) -> None:
    original = getattr(Route53, name)

    def wrapper(self):
        with LOCK:
            result = original(self)
            resource = self._get_param("HostedZoneId") or self._get_param("Name") or ""
            result.result["ChangeInfo"] = pending_change(self.current_account, kind, resource)
            return result

    setattr(Route53, name, wrapper)


_wrap_change("change_resource_record_sets", "change_resource_record_sets")
_wrap_change("create_hosted_zone", "create_hosted_zone")


def get_change(self):
    change_id = self._get_param("Id").split("/")[-1]
    with LOCK:
        info = REGISTRY.account(self.current_account).changes.get(change_id)
        if info is None:
            raise Route53ClientError("NoSuchChange", f"A change with the specified change ID does not exist: {change_id}")
        return ActionResult({"ChangeInfo": dict(info)})


Route53.get_change = get_change

_get_health_check_status = Route53.get_health_check_status


def get_health_check_status(self):
    health_check_id = self._get_param("HealthCheckId")
    with LOCK:
        unhealthy = health_check_id in REGISTRY.account(self.current_account).unhealthy_checks
    if not unhealthy:
        return _get_health_check_status(self)
    self.backend.get_health_check(health_check_id)  # NoSuchHealthCheck as before
    now = utcnow()
    return ActionResult(
        {
            "HealthCheckObservations": [
                {
                    "Region": region,
                    "IPAddress": "127.0.13.37",
                    "StatusReport": {
                        "Status": "Failure: HTTP Status Code 503, Service Unavailable. Resolved IP: 127.0.13.37.",
                        "CheckedTime": now,
                    },
                }
                for region in CHECKER_REGIONS
            ]
        }
    )


Route53.get_health_check_status = get_health_check_status
