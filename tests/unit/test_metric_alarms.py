"""Step scaling end to end: CloudWatch metric alarms (stack section, PutMetricAlarm-like functions, state) invoke
StepScaling policies once a minute while in ALARM, and the service's desired count moves in AWS's words."""

from __future__ import annotations

import asyncio
import json
import random
import re

import pytest

from emulator.app import Emulator
from emulator.clock import FakeClock
from emulator.control import metric_alarms
from emulator.control.metric_alarms import (ALARM_STATE_CHANGE, ResourceNotFound, apply_stack_alarms, delete_alarms,
                                            describe_alarms, put_metric_alarm, set_alarm_state)
from emulator.errors import ValidationError
from emulator.model.events import SCALING_ACTIVITY
from emulator.model.state import StateStore
from emulator.runtime.fake import FakeRuntime
from emulator.scenario import StackError, example_stack_paths, load_stack, parse_stack
from emulator.simulate import parse_time_of_day, parse_traffic, simulate

EXAMPLE = next(p for p in example_stack_paths() if p.name == "step-scaling.yaml")
TEXT = EXAMPLE.read_text()
RESOURCE = "service/production-cluster/web-app-service"
HIGH_CAUSE = "monitor alarm web-app-cpu-high in state ALARM triggered policy cpu-step-out"
LOW_CAUSE = "monitor alarm web-app-cpu-low in state ALARM triggered policy cpu-step-in"


# --- the stack section ------------------------------------------------------------------------


def test_the_example_declares_two_step_policies_and_the_alarms_that_invoke_them():
    stack = load_stack(EXAMPLE)
    policies = {p.policy_name: p for p in stack.scaling_policies}
    assert {p.policy_type for p in policies.values()} == {"StepScaling"}
    out = policies["cpu-step-out"].step_scaling_policy_configuration
    assert [(s.metric_interval_lower_bound, s.metric_interval_upper_bound, s.scaling_adjustment)
            for s in out.step_adjustments] == [(0, 20, 2), (20, None, 4)]
    alarms = {a.alarm_name: a for a in stack.metric_alarms}
    high, low = alarms["web-app-cpu-high"], alarms["web-app-cpu-low"]
    assert (high.threshold, high.comparison_operator, high.evaluation_periods, high.datapoints_to_alarm) == (
        70, "GreaterThanThreshold", 2, 2)
    assert (low.threshold, low.comparison_operator, low.evaluation_periods) == (30, "LessThanThreshold", 5)
    # The PolicyName shorthand became the policy's ARN.
    assert high.alarm_actions == [policies["cpu-step-out"].policy_arn]
    assert low.alarm_actions == [policies["cpu-step-in"].policy_arn]
    assert high.alarm_actions[0].startswith("arn:aws:autoscaling:us-east-1:")


def test_an_alarm_action_may_be_the_policy_arn():
    arn = next(p.policy_arn for p in load_stack(EXAMPLE).scaling_policies if p.policy_name == "cpu-step-in")
    stack = parse_stack(TEXT.replace("AlarmActions: [cpu-step-in]", f"AlarmActions: ['{arn}']"))
    assert stack.metric_alarms[1].alarm_actions == [arn]


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


@pytest.mark.parametrize("old, new, path, message", [
    ("AlarmActions: [cpu-step-out]", "AlarmActions: [cpu-step-up]", "metricAlarms[0].AlarmActions[0]",
     "Scaling policy 'cpu-step-up' is not declared in this file (declared: cpu-step-out, cpu-step-in)"),
    ("AlarmActions: [cpu-step-out]",
     "AlarmActions: ['arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:resource/ecs/service/a/b:"
     "policyName/p']",
     "metricAlarms[0].AlarmActions[0]", "is not declared in this file"),
    ("AlarmActions: [cpu-step-out]", "AlarmActions: [not-an-arn-or-name]", "metricAlarms[0].AlarmActions[0]",
     "Scaling policy 'not-an-arn-or-name' is not declared"),
    ("AlarmActions: [cpu-step-out]", "AlarmActions: ['arn:aws:sns']", "metricAlarms[0].AlarmActions[0]",
     "Invalid arn syntax: arn:aws:sns"),
    ("ComparisonOperator: GreaterThanThreshold", "ComparisonOperator: Above", "metricAlarms[0].ComparisonOperator",
     "1 validation error detected: Value 'Above' at 'comparisonOperator' failed to satisfy constraint: Member must "
     "satisfy enum value set: [GreaterThanOrEqualToThreshold, GreaterThanThreshold"),
    ("ComparisonOperator: GreaterThanThreshold", "ComparisonOperator: GreaterThanUpperThreshold",
     "metricAlarms[0].ComparisonOperator", "anomaly detection alarms, which the emulator does not support"),
    ("    Period: 60\n    EvaluationPeriods: 2", "    Period: 90\n    EvaluationPeriods: 2", "metricAlarms[0].Period",
     "must be a multiple of 60"),
    ("    Period: 60\n    EvaluationPeriods: 2", "    Period: 0\n    EvaluationPeriods: 2", "metricAlarms[0].Period",
     "Member must have value greater than or equal to 1"),
    ("    Period: 60\n    EvaluationPeriods: 2", "    Period: 3600\n    EvaluationPeriods: 25",
     "metricAlarms[0].EvaluationPeriods", "Metrics cannot be checked across more than a day "
     "(EvaluationPeriods * Period must be <= 86400)"),
    ("    EvaluationPeriods: 2\n    DatapointsToAlarm: 2", "    EvaluationPeriods: 2\n    DatapointsToAlarm: 3",
     "metricAlarms[0].DatapointsToAlarm", "DatapointsToAlarm (3) must be less than or equal to EvaluationPeriods (2)"),
    ("    EvaluationPeriods: 2\n    DatapointsToAlarm: 2", "    DatapointsToAlarm: 2",
     "metricAlarms[0].EvaluationPeriods", "Value null at 'evaluationPeriods' failed to satisfy constraint: Member "
     "must not be null"),
    ("    Statistic: Average\n    Period: 60\n    EvaluationPeriods: 2",
     "    ExtendedStatistic: p99\n    Period: 60\n    EvaluationPeriods: 2",
     "metricAlarms[0].ExtendedStatistic", "ExtendedStatistic (percentiles such as p99) is not supported"),
    ("    Statistic: Average\n    Period: 60\n    EvaluationPeriods: 2",
     "    Statistic: Median\n    Period: 60\n    EvaluationPeriods: 2", "metricAlarms[0].Statistic",
     "Member must satisfy enum value set: [SampleCount, Average, Sum, Minimum, Maximum]"),
    ("    Threshold: 70\n", "", "metricAlarms[0].Threshold", "The parameter Threshold is required"),
    ("TreatMissingData: missing\n    AlarmActions: [cpu-step-out]",
     "TreatMissingData: zero\n    AlarmActions: [cpu-step-out]", "metricAlarms[0].TreatMissingData",
     "Invalid value 'zero' for TreatMissingData; valid values: missing, notBreaching, breaching, ignore."),
    ("  - AlarmName: web-app-cpu-low", "  - AlarmName: web-app-cpu-high", "metricAlarms[1].AlarmName",
     "Alarm 'web-app-cpu-high' is declared twice"),
    ("    TreatMissingData: missing\n    AlarmActions: [cpu-step-out]",
     "    TreatMissingData: missing\n    AlarmAction: [cpu-step-out]", "metricAlarms[0].AlarmAction",
     "Unknown parameter 'AlarmAction'."),
    ("  - AlarmName: web-app-cpu-high\n", "  - AlarmName: web-app-cpu-high\n    Metrics: []\n",
     "metricAlarms[0].Metrics", "does not support metric math alarms"),
])
def test_bad_alarms_are_refused_with_file_line_path_and_aws_words(old, new, path, message):
    assert old in TEXT
    text = TEXT.replace(old, new, 1)
    with pytest.raises(StackError) as err:
        parse_stack(text, "step.yaml")
    assert err.value.path == path
    assert message in err.value.problem
    assert str(err.value).startswith(f"step.yaml:{err.value.line}: {path}: ")
    assert err.value.line > _line_of(text, "metricAlarms:")


def test_a_target_tracking_policy_is_not_an_alarm_action():
    tracking = """  - ServiceName: web-app-service
    PolicyName: cpu-tracking
    PolicyType: TargetTrackingScaling
    TargetTrackingScalingPolicyConfiguration:
      TargetValue: 75.0
      PredefinedMetricSpecification:
        PredefinedMetricType: ECSServiceAverageCPUUtilization

# aws cloudwatch put-metric-alarm"""
    text = TEXT.replace("\n# aws cloudwatch put-metric-alarm", tracking, 1).replace(
        "AlarmActions: [cpu-step-in]", "AlarmActions: [cpu-tracking]")
    with pytest.raises(StackError, match="is a TargetTrackingScaling policy: Application Auto Scaling creates and "
                                         "owns its alarms") as err:
        parse_stack(text)
    assert err.value.path == "metricAlarms[1].AlarmActions[0]"


def test_metric_alarms_must_be_a_list_of_mappings():
    with pytest.raises(StackError, match="'metricAlarms' is a list"):
        parse_stack(TEXT.split("metricAlarms:")[0] + "metricAlarms: {AlarmName: x}\n")
    stack = parse_stack(TEXT.split("metricAlarms:")[0])
    assert stack.metric_alarms == []


# --- the functions: PutMetricAlarm, DescribeAlarms, SetAlarmState, DeleteAlarms -------------------


@pytest.fixture
def store():
    clock = FakeClock(start=1_790_000_000.0)
    s = StateStore(None, clock=clock)
    yield s, clock
    s.close()


REQUEST = {"AlarmName": "queue-deep", "Namespace": "Custom/App", "MetricName": "QueueDepth", "Statistic": "Maximum",
           "Dimensions": [{"Name": "Queue", "Value": "jobs"}], "Period": 60, "EvaluationPeriods": 3,
           "Threshold": 100, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
           "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:ops"]}


def test_put_creates_an_alarm_in_insufficient_data_and_describe_answers_in_aws_shape(store):
    s, clock = store
    put_metric_alarm(s, clock, REQUEST, region="eu-west-1")
    answer = describe_alarms(s)
    assert answer["CompositeAlarms"] == []
    [alarm] = answer["MetricAlarms"]
    assert alarm["AlarmName"] == "queue-deep"
    assert alarm["AlarmArn"] == "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:queue-deep"
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert alarm["StateUpdatedTimestamp"] == clock.now()
    assert alarm["Dimensions"] == [{"Name": "Queue", "Value": "jobs"}]
    assert (alarm["Threshold"], alarm["Statistic"], alarm["ActionsEnabled"]) == (100.0, "Maximum", True)
    assert alarm["OKActions"] == [] and alarm["AlarmActions"] == REQUEST["AlarmActions"]
    assert describe_alarms(s, state_value="ALARM")["MetricAlarms"] == []
    assert describe_alarms(s, alarm_name_prefix="queue")["MetricAlarms"][0]["AlarmName"] == "queue-deep"
    assert describe_alarms(s, action_prefix="arn:aws:sns:")["MetricAlarms"]
    assert describe_alarms(s, alarm_names=["other"])["MetricAlarms"] == []


def test_state_changes_are_kept_on_the_alarm_and_journaled_and_an_update_keeps_the_state(store):
    s, clock = store
    put_metric_alarm(s, clock, REQUEST)
    set_alarm_state(s, clock, "queue-deep", "ALARM", "Threshold Crossed: testing")
    set_alarm_state(s, clock, "queue-deep", "ALARM", "Threshold Crossed: still")   # no transition: no event
    changes = s.events(kinds=ALARM_STATE_CHANGE)
    assert [e.message for e in changes] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert changes[0].detail["NewStateReason"] == "Threshold Crossed: testing"
    put_metric_alarm(s, clock, {**REQUEST, "Threshold": 200})
    alarm = metric_alarms.get_alarm(s, "queue-deep")
    assert (alarm.state_value, alarm.threshold) == ("ALARM", 200.0)
    with pytest.raises(ValidationError, match="enum value set: \\[OK, ALARM, INSUFFICIENT_DATA\\]"):
        set_alarm_state(s, clock, "queue-deep", "FIRING", "x")
    with pytest.raises(ResourceNotFound):
        set_alarm_state(s, clock, "ghost", "OK", "x")


def test_delete_is_all_or_nothing(store):
    s, clock = store
    put_metric_alarm(s, clock, REQUEST)
    with pytest.raises(ResourceNotFound, match=r"\[ghost\]"):
        delete_alarms(s, clock, ["queue-deep", "ghost"])
    assert metric_alarms.get_alarm(s, "queue-deep") is not None
    delete_alarms(s, clock, ["queue-deep"])
    assert describe_alarms(s)["MetricAlarms"] == []


def test_a_refused_put_changes_nothing(store):
    s, clock = store
    with pytest.raises(ValidationError, match="Value null at 'alarmName'"):
        put_metric_alarm(s, clock, {k: v for k, v in REQUEST.items() if k != "AlarmName"})
    with pytest.raises(ValidationError, match="must be a multiple of 60") as err:
        put_metric_alarm(s, clock, {**REQUEST, "Period": 30})
    assert err.value.field_path == "Period"
    assert s.list(metric_alarms.KIND) == []


# --- the auto scaler: alarms invoke step policies ------------------------------------------------


QUEUE_POLICY = {"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": "ecs:service:DesiredCount",
                "PolicyName": "queue-step", "PolicyType": "StepScaling",
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity", "Cooldown": 300, "MetricAggregationType": "Maximum",
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 100,
                                         "ScalingAdjustment": 1},
                                        {"MetricIntervalLowerBound": 100, "ScalingAdjustment": 3}]}}


@pytest.fixture
async def emulator():
    clock = FakeClock(start=1_790_000_000.0)
    runtime = FakeRuntime(rng=random.Random(1), behave_like_sample_app=True, launch_delay=lambda spec: clock.sleep(60))
    emu = Emulator(load_stack(EXAMPLE), state_dir=None, runtime=runtime, clock=clock, rng=random.Random(4),
                   api_port=None, listen=False)
    await emu.start()  # the stack's alarms are created with the rest of the stack
    await clock.advance(300)
    yield emu
    await emu.stop(terminate=True)


def desired(emu) -> int:
    return next(iter(emu.store.list("service"))).desired_count


async def test_the_stack_alarms_are_created_once_and_linked_to_their_policies(emulator):
    assert apply_stack_alarms(emulator.store, emulator.clock, emulator.stack.metric_alarms) == []
    alarms = {a["AlarmName"]: a for a in describe_alarms(emulator.store)["MetricAlarms"]}
    assert set(alarms) == {"web-app-cpu-high", "web-app-cpu-low"}
    policies = {p.policy_name: p for p in emulator.store.list("scaling_policy")}
    assert [a.alarm_name for a in policies["cpu-step-out"].alarms] == ["web-app-cpu-high"]
    assert [a.alarm_name for a in policies["cpu-step-in"].alarms] == ["web-app-cpu-low"]
    # 4 idle tasks on the in-memory runtime: the first minutes of CPU datapoints moved both alarms out of
    # INSUFFICIENT_DATA (the scale-in alarm needs 5 of 5 low minutes; its policy is then held at MinCapacity).
    assert alarms["web-app-cpu-high"]["StateValue"] == "OK"
    delete_alarms(emulator.store, emulator.clock, ["web-app-cpu-high"])
    assert emulator.store.get("scaling_policy", policies["cpu-step-out"].policy_arn).alarms == []


async def test_an_alarm_in_alarm_invokes_its_step_policy_every_minute_within_the_cooldown(emulator):
    store, clock = emulator.store, emulator.clock
    delete_alarms(store, clock, ["web-app-cpu-high", "web-app-cpu-low"])   # only the queue alarm acts here
    from emulator.control import scaling_state
    policy = scaling_state.put_scaling_policy(store, clock, QUEUE_POLICY)
    put_metric_alarm(store, clock, {**REQUEST, "EvaluationPeriods": 2, "AlarmActions": [policy.policy_arn]})
    start = desired(emulator)

    async def minute(value: float) -> None:
        now = clock.now()
        emulator.metrics.put("Custom/App", "QueueDepth", {"Queue": "jobs"}, now, value)
        await clock.advance(60)

    await minute(150)
    await minute(150)    # 2 of 2 at or above 100: ALARM; 150 - 100 = 50 is the +1 step
    await clock.advance(1)
    assert metric_alarms.get_alarm(store, "queue-deep").state_value == "ALARM"
    assert desired(emulator) == start + 1
    await minute(150)    # still ALARM, in the cooldown: what the last scale-out added covers this one
    await minute(150)
    assert desired(emulator) == start + 1
    await minute(250)
    await minute(250)    # a bigger step (+3 from where the last scale-out started) goes ahead in the cooldown
    await clock.advance(1)
    assert desired(emulator) == start + 3
    activities = [e for e in store.events(kinds=SCALING_ACTIVITY) if e.detail.get("Cause", "").startswith("monitor")]
    assert [e.detail["Cause"] for e in activities][-2:] == [
        "monitor alarm queue-deep in state ALARM triggered policy queue-step"] * 2
    changes = [e for e in store.events(kinds=ALARM_STATE_CHANGE) if e.detail["AlarmName"] == "queue-deep"]
    assert changes[-1].message.endswith("to ALARM")
    reason = json.loads(metric_alarms.get_alarm(store, "queue-deep").state_reason_data)
    assert reason["threshold"] == 100.0 and reason["recentDatapoints"]


# --- the whole story on the in-memory runtime ------------------------------------------------------


STORY_TRAFFIC = "09:00=200,09:05=320,09:20=80"   # 50% on 4 tasks, then 80%, then 10%ish


@pytest.fixture(scope="module")
def story():
    return _run(STORY_TRAFFIC, "10:00")


@pytest.fixture(scope="module")
def surge():
    return _run("09:00=200,09:05=400", "09:12")     # 100% on 4 tasks: the +4 step


def _run(traffic: str, until: str):
    return asyncio.run(simulate(load_stack(EXAMPLE), parse_traffic(traffic), start="09:00", until=until))


def steps(result, between=("00:00", "23:59")) -> list[tuple[int, int, str]]:
    lo, hi = (parse_time_of_day(t) for t in between)
    midnight = result.lines[0].aws_time - result.lines[0].aws_time % 86400
    return [(int(m[1]), int(m[2]), m[3]) for line in result.lines if lo <= line.aws_time - midnight < hi
            if (m := re.match(r"Task Scaling: desired (\d+) -> (\d+) \((.*)\)", line.text))]


def test_the_high_alarm_adds_two_tasks_and_again_while_it_stays_in_alarm(story):
    out = [s for s in steps(story, ("09:00", "09:20")) if s[1] > s[0]]
    assert out[0] == (4, 6, HIGH_CAUSE)
    assert all(b - a == 2 and cause == HIGH_CAUSE for a, b, cause in out)
    assert len(out) >= 2 and out[1][0] == 6
    changes = [e for e in story.events if e.kind == ALARM_STATE_CHANGE and e.detail["AlarmName"] == "web-app-cpu-high"]
    assert any(e.message == "Alarm updated from OK to ALARM" for e in changes)
    assert any("were greater than the threshold (70.0)" in e.detail["NewStateReason"] for e in changes)


def test_when_traffic_drops_the_low_alarm_removes_one_task_at_a_time_with_its_cooldown(story):
    ins = [s for s in steps(story, ("09:20", "10:00")) if s[1] < s[0]]
    assert ins and all(a - b == 1 and cause == LOW_CAUSE for a, b, cause in ins)
    assert len(ins) >= 3
    midnight = story.lines[0].aws_time - story.lines[0].aws_time % 86400
    times = [line.aws_time - midnight for line in story.lines if line.text.startswith("Task Scaling") and
             LOW_CAUSE in line.text]
    assert times[0] >= parse_time_of_day("09:25")                 # 5 of 5 minutes below 30% first
    assert all(b - a >= 300 for a, b in zip(times, times[1:]))    # the policy's 300 s cooldown
    activity = [e for e in story.events if e.kind == SCALING_ACTIVITY and e.detail.get("Cause") == LOW_CAUSE]
    assert activity and activity[0].message.startswith("Setting desired count to ")


def test_above_ninety_percent_the_bigger_step_adds_four(surge):
    out = [s for s in steps(surge) if s[1] > s[0]]
    assert out[0] == (4, 8, HIGH_CAUSE)
