"""CloudWatch alarms as AWS runs them: a new alarm starts in INSUFFICIENT_DATA (moto starts
it in OK) and an update keeps its state; composite alarms exist (PutCompositeAlarm, which
moto does not implement), with an actions suppressor; DescribeAlarms returns metric
alarms only unless AlarmTypes asks for composite ones; a composite alarm in ALARM whose
actions its suppressor holds back says so (ActionsSuppressedBy, ActionsSuppressedReason).

Alarm times are the wall clock, as moto keeps them: the account's emulated clock drives
resource transitions, not alarm evaluation.
"""

import functools

from moto.cloudwatch import models as cw_models
from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow

_own_put_metric_alarm = cw_models.CloudWatchBackend.put_metric_alarm


@functools.wraps(_own_put_metric_alarm)
def _put_metric_alarm(self, *args, **kwargs):
    name = kwargs["name"] if "name" in kwargs else args[0]
    existing = self.alarms.get(name)
    alarm = _own_put_metric_alarm(self, *args, **kwargs)
    if existing is None:
        # PutMetricAlarm: "When this operation creates an alarm, the alarm state is
        # immediately set to INSUFFICIENT_DATA."
        alarm.state_value = "INSUFFICIENT_DATA"
        alarm.state_reason = "Unchecked: Initial alarm creation"
    else:
        # "When you update an existing alarm, its state is left unchanged."
        alarm.state_value = existing.state_value
        alarm.state_reason = existing.state_reason
        alarm.state_reason_data = existing.state_reason_data
        alarm.state_updated_timestamp = existing.state_updated_timestamp
        alarm.history = existing.history
        for attribute in SUPPRESSOR_ATTRIBUTES:
            if hasattr(existing, attribute) and not hasattr(alarm, attribute):
                setattr(alarm, attribute, getattr(existing, attribute))
    return alarm


cw_models.CloudWatchBackend.put_metric_alarm = _put_metric_alarm

SUPPRESSOR_ATTRIBUTES = (
    "actions_suppressor",
    "actions_suppressor_wait_period",
    "actions_suppressor_extension_period",
)


def put_composite_alarm(self):
    """PutCompositeAlarm: an alarm over an AlarmRule of other alarms, optionally with an
    actions suppressor. moto keeps composite alarms as alarms with a rule."""
    name = self._get_param("AlarmName")
    rule = self._get_param("AlarmRule")
    if not name:
        raise ValidationError("1 validation error detected: Value null at 'alarmName' failed to satisfy constraint: Member must not be null")
    if not rule:
        raise ValidationError("1 validation error detected: Value null at 'alarmRule' failed to satisfy constraint: Member must not be null")
    suppressor = self._get_param("ActionsSuppressor")
    wait = self._get_int_param("ActionsSuppressorWaitPeriod")
    extension = self._get_int_param("ActionsSuppressorExtensionPeriod")
    if suppressor and (wait is None or extension is None):
        raise ValidationError(
            "ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod are required when ActionsSuppressor is specified."
        )
    alarm = self.cloudwatch_backend.put_metric_alarm(
        name=name,
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        actions_enabled=self._get_bool_param("ActionsEnabled"),
        rule=rule,
        tags=self._get_param("Tags", []),
    )
    alarm.actions_suppressor = suppressor
    alarm.actions_suppressor_wait_period = wait
    alarm.actions_suppressor_extension_period = extension
    return EmptyResult()


CloudWatchResponse.put_composite_alarm = put_composite_alarm


def suppression(backend, alarm):
    """Why the composite `alarm`'s actions are held back now, or None: its suppressor in
    ALARM ("Alarm"); within WaitPeriod of the composite going to ALARM, waiting for the
    suppressor ("WaitPeriod"); within ExtensionPeriod of the suppressor leaving ALARM
    ("ExtensionPeriod")."""
    name = getattr(alarm, "actions_suppressor", None)
    if not name or alarm.state_value != "ALARM":
        return None
    suppressor = backend.alarms.get(name.rsplit(":alarm:", 1)[-1])
    if suppressor is None:
        return None
    now = utcnow()
    if suppressor.state_value == "ALARM":
        return "Alarm"
    wait = alarm.actions_suppressor_wait_period or 0
    if (now - alarm.state_updated_timestamp).total_seconds() < wait:
        return "WaitPeriod"
    extension = alarm.actions_suppressor_extension_period or 0
    left_alarm = bool(suppressor.history) and suppressor.history[-1][3] == "ALARM"
    if left_alarm and (now - suppressor.state_updated_timestamp).total_seconds() < extension:
        return "ExtensionPeriod"
    return None


_own_describe_alarms = CloudWatchResponse.describe_alarms


@functools.wraps(_own_describe_alarms)
def describe_alarms(self):
    result = _own_describe_alarms(self)
    # "If you omit this parameter, only metric alarms are returned."
    types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
    metric = list(result.result["MetricAlarms"]) if "MetricAlarm" in types else []
    composite = list(result.result["CompositeAlarms"]) if "CompositeAlarm" in types else []
    for alarm in composite:
        by = suppression(self.cloudwatch_backend, alarm)
        alarm.actions_suppressed_by = by
        alarm.actions_suppressed_reason = f"Actions suppressed by {by}" if by else None
        alarm.alarm_rule = alarm.rule
        alarm.state_transitioned_timestamp = alarm.state_updated_timestamp
    return ActionResult({"MetricAlarms": metric, "CompositeAlarms": composite})


CloudWatchResponse.describe_alarms = describe_alarms
