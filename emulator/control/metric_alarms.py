"""CloudWatch metric alarms (PutMetricAlarm / DescribeAlarms / DeleteAlarms / SetAlarmState) as plain functions.

Step scaling policies act only through alarms the user creates: an alarm
whose AlarmActions name a StepScaling policy's ARN invokes that policy
while it is in ALARM (the service auto scaler re-evaluates every alarm each
minute and invokes the policies, see `task_autoscaler`). The alarm's state is
kept on the stored alarm, in DescribeAlarms' MetricAlarm shape (StateValue,
StateReason, StateReasonData, StateUpdatedTimestamp), and every state change
is an "alarm-state-change" event in the journal, worded like CloudWatch's
alarm history ("Alarm updated from OK to ALARM").

Store kind "metric_alarm", keyed by AlarmName; a StoredMetricAlarm.

Only what the emulator's metrics can answer is accepted: one metric with a
Statistic (SampleCount, Sum, Minimum, Maximum, Average) over one-minute
periods. Percentiles (ExtendedStatistic), metric math (Metrics) and anomaly
detection operators are refused with a message that says so. Refusals are
CloudWatch's ValidationError with AWS's wording and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..clock import Clock
from ..errors import AwsError, ValidationError
from ..model.arn import DEFAULT_ACCOUNT, DEFAULT_REGION
from ..model.events import Event
from ..model.shapes import fail, from_pascal_api, out_of_range, to_pascal_api
from ..model.state import StateStore, register_kind
from ..scaling.alarms import ALARM, INSUFFICIENT_DATA, OK, TREAT_MISSING_DATA, MetricAlarm

KIND = "metric_alarm"

# --- journal kinds ------------------------------------------------------------------------

ALARM_STATE_CHANGE = "alarm-state-change"
METRIC_ALARM_PUT = "metric-alarm-put"
METRIC_ALARM_DELETED = "metric-alarm-deleted"

STATES = (OK, ALARM, INSUFFICIENT_DATA)
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
OPERATORS = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
             "LessThanOrEqualToThreshold")
ANOMALY_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold",
                     "GreaterThanUpperThreshold")
MAX_DIMENSIONS = 30
MAX_ACTIONS = 5
MAX_EVALUATED_SECONDS = 86400
INITIAL_REASON = "Unchecked: Initial alarm creation"
POLICY_ARN_MARKER = ":scalingPolicy:"


class ResourceNotFound(AwsError):
    """CloudWatch's ResourceNotFound (DeleteAlarms, SetAlarmState on an unknown alarm)."""

    code = "ResourceNotFound"
    status = 404


# --- shapes -------------------------------------------------------------------------------


@dataclass
class AlarmDimension:
    name: str
    value: str


@dataclass
class AlarmTag:
    key: str
    value: str = ""


@dataclass
class PutMetricAlarmRequest:
    """PutMetricAlarm's request for a single-metric alarm (every member optional here: AWS's null checks follow)."""

    alarm_name: str | None = None
    alarm_description: str | None = None
    actions_enabled: bool = True
    ok_actions: list[str] = field(default_factory=list, metadata={"aws": "OKActions"})
    alarm_actions: list[str] = field(default_factory=list)
    insufficient_data_actions: list[str] = field(default_factory=list)
    metric_name: str | None = None
    namespace: str | None = None
    statistic: str | None = None
    extended_statistic: str | None = None
    dimensions: list[AlarmDimension] = field(default_factory=list)
    period: int | None = None
    unit: str | None = None
    evaluation_periods: int | None = None
    datapoints_to_alarm: int | None = None
    threshold: float | None = None
    comparison_operator: str | None = None
    treat_missing_data: str | None = None
    tags: list[AlarmTag] = field(default_factory=list)


@dataclass
class StoredMetricAlarm:
    """One MetricAlarm as DescribeAlarms shows it."""

    alarm_name: str
    alarm_arn: str
    metric_name: str
    namespace: str
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison_operator: str
    dimensions: list[AlarmDimension] = field(default_factory=list)
    alarm_description: str | None = None
    alarm_configuration_updated_timestamp: float = 0.0
    actions_enabled: bool = True
    ok_actions: list[str] = field(default_factory=list, metadata={"aws": "OKActions"})
    alarm_actions: list[str] = field(default_factory=list)
    insufficient_data_actions: list[str] = field(default_factory=list)
    state_value: str = INSUFFICIENT_DATA
    state_reason: str = INITIAL_REASON
    state_reason_data: str | None = None
    state_updated_timestamp: float = 0.0
    state_transitioned_timestamp: float = 0.0
    unit: str | None = None
    datapoints_to_alarm: int | None = None
    treat_missing_data: str | None = None

    def to_api(self) -> dict[str, Any]:
        return to_pascal_api(self)

    @classmethod
    def from_api(cls, data: Any) -> StoredMetricAlarm:
        return from_pascal_api(cls, data, ValidationError)

    @property
    def dimension_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((d.name, d.value) for d in self.dimensions)

    def to_metric_alarm(self) -> MetricAlarm:
        """The pure evaluation's view (emulator.scaling.alarms)."""
        return MetricAlarm(self.alarm_name, float(self.threshold), self.comparison_operator, self.evaluation_periods,
                           self.datapoints_to_alarm, self.period, self.statistic,
                           self.treat_missing_data or "missing", self.namespace, self.metric_name,
                           self.dimension_pairs)


register_kind(KIND, StoredMetricAlarm)


def alarm_arn(alarm_name: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm_name}"


# --- validation -----------------------------------------------------------------------------


def parse_metric_alarm(data: Mapping[str, Any] | PutMetricAlarmRequest) -> PutMetricAlarmRequest:
    """PutMetricAlarm's PascalCase request, validated as CloudWatch does (ValidationError with its key path)."""
    if isinstance(data, PutMetricAlarmRequest):
        req = data
    else:
        if not isinstance(data, Mapping):
            fail(ValidationError, "", "A PutMetricAlarm request is a mapping of its parameters.")
        for key, what in (("Metrics", "metric math alarms (Metrics)"),
                          ("ThresholdMetricId", "anomaly detection alarms (ThresholdMetricId)")):
            if key in data:
                fail(ValidationError, key, f"The emulator does not support {what}: give MetricName, Namespace, "
                                           "Statistic, Dimensions and Period.")
        if data.get("ExtendedStatistic") is not None:
            fail(ValidationError, "ExtendedStatistic",
                 "ExtendedStatistic (percentiles such as p99) is not supported by the emulator: its metrics keep "
                 "only SampleCount, Sum, Minimum, Maximum and Average. Use Statistic.")
        req = from_pascal_api(PutMetricAlarmRequest, dict(data), ValidationError)
    validate_metric_alarm(req)
    return req


def _null(path: str) -> None:
    fail(ValidationError, path, f"1 validation error detected: Value null at '{path[:1].lower()}{path[1:]}' failed "
                                "to satisfy constraint: Member must not be null")


def _length(path: str, value: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        bound = f"greater than or equal to {low}" if len(value) < low else f"less than or equal to {high}"
        fail(ValidationError, path, f"1 validation error detected: Value '{value}' at '{path[:1].lower()}"
                                    f"{path[1:]}' failed to satisfy constraint: Member must have length {bound}")


def _enum(path: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        fail(ValidationError, path, f"1 validation error detected: Value '{value}' at '{path[:1].lower()}{path[1:]}' "
                                    f"failed to satisfy constraint: Member must satisfy enum value set: "
                                    f"[{', '.join(allowed)}]")


def validate_metric_alarm(req: PutMetricAlarmRequest) -> None:
    for path in ("AlarmName", "EvaluationPeriods", "ComparisonOperator"):
        if getattr(req, _snake(path)) is None:
            _null(path)
    _length("AlarmName", req.alarm_name, 1, 255)
    if req.alarm_description is not None:
        _length("AlarmDescription", req.alarm_description, 0, 1024)
    if req.extended_statistic is not None:
        fail(ValidationError, "ExtendedStatistic", "ExtendedStatistic (percentiles such as p99) is not supported by "
                                                   "the emulator. Use Statistic.")
    for path in ("MetricName", "Namespace", "Statistic", "Period", "Threshold"):
        if getattr(req, _snake(path)) is None:
            fail(ValidationError, path, f"The parameter {path} is required (the emulator's alarms watch one metric: "
                                        "MetricName, Namespace, Statistic, Period and Threshold).")
    _length("MetricName", req.metric_name, 1, 255)
    _length("Namespace", req.namespace, 1, 255)
    _enum("Statistic", req.statistic, STATISTICS)
    if req.comparison_operator in ANOMALY_OPERATORS:
        fail(ValidationError, "ComparisonOperator",
             f"ComparisonOperator {req.comparison_operator} is for anomaly detection alarms, which the emulator "
             f"does not support; use one of {', '.join(OPERATORS)}.")
    _enum("ComparisonOperator", req.comparison_operator, OPERATORS + ANOMALY_OPERATORS)
    out_of_range(ValidationError, "Period", req.period, 1, 2**31 - 1)
    if req.period % 60 != 0:
        fail(ValidationError, "Period", f"Period {req.period} is not supported: it must be a multiple of 60 (the "
                                        "emulator's metrics are one-minute datapoints; CloudWatch takes 10, 20 and "
                                        "30 only for high-resolution metrics).")
    out_of_range(ValidationError, "EvaluationPeriods", req.evaluation_periods, 1, 2**31 - 1)
    if req.period * req.evaluation_periods > MAX_EVALUATED_SECONDS:
        fail(ValidationError, "EvaluationPeriods", "Metrics cannot be checked across more than a day "
                                                   "(EvaluationPeriods * Period must be <= 86400).")
    if req.datapoints_to_alarm is not None:
        out_of_range(ValidationError, "DatapointsToAlarm", req.datapoints_to_alarm, 1, 2**31 - 1)
        if req.datapoints_to_alarm > req.evaluation_periods:
            fail(ValidationError, "DatapointsToAlarm",
                 f"DatapointsToAlarm ({req.datapoints_to_alarm}) must be less than or equal to EvaluationPeriods "
                 f"({req.evaluation_periods}).")
    if req.treat_missing_data is not None and req.treat_missing_data not in TREAT_MISSING_DATA:
        fail(ValidationError, "TreatMissingData",
             f"Invalid value '{req.treat_missing_data}' for TreatMissingData; valid values: "
             f"{', '.join(TREAT_MISSING_DATA)}.")
    if len(req.dimensions) > MAX_DIMENSIONS:
        fail(ValidationError, "Dimensions", f"1 validation error detected: Value at 'dimensions' failed to satisfy "
                                            f"constraint: Member must have length less than or equal to "
                                            f"{MAX_DIMENSIONS}")
    names: set[str] = set()
    for i, dim in enumerate(req.dimensions):
        _length(f"Dimensions[{i}].Name", dim.name, 1, 255)
        _length(f"Dimensions[{i}].Value", dim.value, 1, 1024)
        if dim.name in names:
            fail(ValidationError, f"Dimensions[{i}].Name", f"The collection Dimensions must not contain duplicate "
                                                           f"names: '{dim.name}'.")
        names.add(dim.name)
    for key, actions in (("OKActions", req.ok_actions), ("AlarmActions", req.alarm_actions),
                         ("InsufficientDataActions", req.insufficient_data_actions)):
        if len(actions) > MAX_ACTIONS:
            fail(ValidationError, key, f"1 validation error detected: Value at '{key[:1].lower()}{key[1:]}' failed "
                                       f"to satisfy constraint: Member must have length less than or equal to "
                                       f"{MAX_ACTIONS}")
        for i, action in enumerate(actions):
            _length(f"{key}[{i}]", action, 1, 1024)
            if not action.startswith("arn:") or action.count(":") < 5:
                fail(ValidationError, f"{key}[{i}]", f"Invalid arn syntax: {action}")


def _snake(pascal: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in pascal).lstrip("_")


# --- the calls -----------------------------------------------------------------------------


def put_metric_alarm(store: StateStore, clock: Clock, request: Mapping[str, Any] | PutMetricAlarmRequest,
                     region: str = DEFAULT_REGION) -> StoredMetricAlarm:
    """PutMetricAlarm: create the alarm (INSUFFICIENT_DATA, "Unchecked: Initial alarm creation") or replace its
    configuration; an update keeps the alarm's state, as CloudWatch does."""
    req = parse_metric_alarm(request)
    now = clock.now()
    existing: StoredMetricAlarm | None = store.get(KIND, req.alarm_name)
    alarm = StoredMetricAlarm(
        req.alarm_name, alarm_arn(req.alarm_name, region), req.metric_name, req.namespace, req.statistic,
        req.period, req.evaluation_periods, float(req.threshold), req.comparison_operator,
        dimensions=[AlarmDimension(d.name, d.value) for d in req.dimensions],
        alarm_description=req.alarm_description, alarm_configuration_updated_timestamp=now,
        actions_enabled=req.actions_enabled, ok_actions=list(req.ok_actions), alarm_actions=list(req.alarm_actions),
        insufficient_data_actions=list(req.insufficient_data_actions), unit=req.unit,
        datapoints_to_alarm=req.datapoints_to_alarm, treat_missing_data=req.treat_missing_data)
    if existing is not None:
        alarm.state_value, alarm.state_reason = existing.state_value, existing.state_reason
        alarm.state_reason_data = existing.state_reason_data
        alarm.state_updated_timestamp = existing.state_updated_timestamp
        alarm.state_transitioned_timestamp = existing.state_transitioned_timestamp
    else:
        alarm.state_updated_timestamp = alarm.state_transitioned_timestamp = now
    with store.transaction() as tx:
        tx.put(KIND, alarm.alarm_name, alarm)
        _link_policies(store, alarm, existing)
        tx.record(Event(METRIC_ALARM_PUT, alarm.alarm_arn,
                        f'Alarm "{alarm.alarm_name}" {"updated" if existing else "created"}',
                        detail={"AlarmName": alarm.alarm_name, "AlarmActions": list(alarm.alarm_actions)}))
    return alarm


def delete_alarms(store: StateStore, clock: Clock, alarm_names: Sequence[str]) -> list[StoredMetricAlarm]:
    """DeleteAlarms: all of them or, if one is unknown, none (ResourceNotFound)."""
    if not alarm_names:
        _null("AlarmNames")
    missing = [name for name in alarm_names if store.get(KIND, name) is None]
    if missing:
        raise ResourceNotFound(f"The following alarms were not found: [{', '.join(missing)}]")
    deleted = []
    with store.transaction() as tx:
        for name in dict.fromkeys(alarm_names):
            alarm: StoredMetricAlarm = store.get(KIND, name)
            tx.delete(KIND, name)
            _unlink_policies(store, alarm)
            tx.record(Event(METRIC_ALARM_DELETED, alarm.alarm_arn, f'Alarm "{name}" deleted',
                            detail={"AlarmName": name}))
            deleted.append(alarm)
    return deleted


def describe_alarms(store: StateStore, *, alarm_names: Sequence[str] | None = None,
                    alarm_name_prefix: str | None = None, state_value: str | None = None,
                    action_prefix: str | None = None) -> dict[str, Any]:
    """DescribeAlarms' answer: {"MetricAlarms": [...], "CompositeAlarms": []}, by alarm name."""
    if alarm_names is not None and alarm_name_prefix is not None:
        fail(ValidationError, "AlarmNamePrefix", "AlarmNames and AlarmNamePrefix cannot be used together.")
    if state_value is not None:
        _enum("StateValue", state_value, STATES)
    wanted = None if alarm_names is None else set(alarm_names)
    alarms = sorted((a for a in store.list(KIND)
                     if (wanted is None or a.alarm_name in wanted)
                     and (alarm_name_prefix is None or a.alarm_name.startswith(alarm_name_prefix))
                     and (state_value is None or a.state_value == state_value)
                     and (action_prefix is None or any(x.startswith(action_prefix) for x in
                                                       a.alarm_actions + a.ok_actions + a.insufficient_data_actions))),
                    key=lambda a: a.alarm_name)
    return {"MetricAlarms": [a.to_api() for a in alarms], "CompositeAlarms": []}


def get_alarm(store: StateStore, alarm_name: str) -> StoredMetricAlarm | None:
    return store.get(KIND, alarm_name)


def set_alarm_state(store: StateStore, clock: Clock, alarm_name: str, state_value: str, state_reason: str, *,
                    state_reason_data: str | None = None) -> StoredMetricAlarm:
    """SetAlarmState (and the evaluator's transitions): a change of StateValue is journaled; the same state only
    refreshes the reason."""
    _enum("StateValue", state_value, STATES)
    _length("StateReason", state_reason, 0, 1023)
    alarm: StoredMetricAlarm | None = store.get(KIND, alarm_name)
    if alarm is None:
        raise ResourceNotFound(f"Alarm {alarm_name} not found")
    old = alarm.state_value
    now = clock.now()
    with store.transaction() as tx:
        alarm.state_value, alarm.state_reason = state_value, state_reason
        alarm.state_reason_data = state_reason_data
        alarm.state_updated_timestamp = now
        if old != state_value:
            alarm.state_transitioned_timestamp = now
            tx.record(Event(ALARM_STATE_CHANGE, alarm.alarm_arn, f"Alarm updated from {old} to {state_value}",
                            detail={"AlarmName": alarm_name, "OldStateValue": old, "NewStateValue": state_value,
                                    "NewStateReason": state_reason, "AlarmActions": list(alarm.alarm_actions)}))
        tx.put(KIND, alarm_name, alarm)
    return alarm


def reason_data(alarm: StoredMetricAlarm, now: float, recent: Iterable[float], start: float) -> str:
    """StateReasonData's JSON, as CloudWatch writes it for a threshold alarm."""
    return json.dumps({
        "version": "1.0", "queryDate": _iso(now), "startDate": _iso(start), "statistic": alarm.statistic,
        "period": alarm.period, "recentDatapoints": [round(v, 6) for v in recent],
        "threshold": float(alarm.threshold),
        "evaluatedDatapoints": [],
    }, separators=(",", ":"))


def alarms_acting_on(store: StateStore, policy_arn: str | None) -> list[StoredMetricAlarm]:
    """The alarms whose AlarmActions name this policy ARN and whose actions are enabled."""
    if not policy_arn:
        return []
    return [a for a in store.list(KIND) if a.actions_enabled and policy_arn in a.alarm_actions]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# --- the scaling policies' Alarms list (DescribeScalingPolicies shows a step policy's alarms) -------------


def _link_policies(store: StateStore, alarm: StoredMetricAlarm, previous: StoredMetricAlarm | None) -> None:
    from .scaling_state import Alarm  # the policy model lives there; imported late to keep this module light
    if previous is not None:
        _unlink_policies(store, previous, keep=set(alarm.alarm_actions))
    for arn in alarm.alarm_actions:
        policy = store.get("scaling_policy", arn) if POLICY_ARN_MARKER in arn else None
        if policy is not None and not any(a.alarm_name == alarm.alarm_name for a in policy.alarms):
            policy.alarms.append(Alarm(alarm.alarm_name, alarm.alarm_arn))
            store.put("scaling_policy", arn, policy)


def _unlink_policies(store: StateStore, alarm: StoredMetricAlarm, keep: set[str] = frozenset()) -> None:
    for arn in alarm.alarm_actions:
        if arn in keep or POLICY_ARN_MARKER not in arn:
            continue
        policy = store.get("scaling_policy", arn)
        if policy is not None and any(a.alarm_name == alarm.alarm_name for a in policy.alarms):
            policy.alarms = [a for a in policy.alarms if a.alarm_name != alarm.alarm_name]
            store.put("scaling_policy", arn, policy)


# --- stack files ---------------------------------------------------------------------------


def apply_stack_alarms(store: StateStore, clock: Clock, alarms: Iterable[PutMetricAlarmRequest],
                       region: str = DEFAULT_REGION) -> list[StoredMetricAlarm]:
    """Create the stack's alarms that the store doesn't have yet (safe to repeat; existing ones are kept)."""
    made = []
    for req in alarms:
        if store.get(KIND, req.alarm_name) is None:
            made.append(put_metric_alarm(store, clock, req, region=region))
    return made


__all__ = ["ALARM_STATE_CHANGE", "KIND", "METRIC_ALARM_DELETED", "METRIC_ALARM_PUT", "AlarmDimension",
           "PutMetricAlarmRequest", "ResourceNotFound", "StoredMetricAlarm", "alarm_arn", "alarms_acting_on",
           "apply_stack_alarms", "delete_alarms", "describe_alarms", "get_alarm",
           "parse_metric_alarm", "put_metric_alarm", "set_alarm_state", "validate_metric_alarm"]
