"""Target tracking on an ECS service: proposed counts, clamps, cooldowns, and the activity AWS would record."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.model.scaling import (CustomizedMetricSpecification, MetricDimension, PredefinedMetricSpecification,
                                    ScalableTarget, ScalingPolicy, SuspendedState,
                                    TargetTrackingScalingPolicyConfiguration)
from emulator.scaling.alarms import ALARM, GREATER_THAN, LESS_THAN, OK, evaluate_series
from emulator.scaling.datapoints import MetricSeries
from emulator.scaling.target_tracking import (IN, OUT, ScalingDecision, ScalingHistory, ServiceCounts,
                                              combine_decisions, managed_alarms, metric_spec, plan_target_tracking,
                                              proposed_capacity)

RESOURCE = "service/production-cluster/web-app-service"
NOW = 1_795_684_440.0  # 2026-11-26 09:14:00 UTC
LABEL = "app/web-alb/50dc6c495c0c9188/targetgroup/web-tg/6d0ecf831eec9f09"


def policy(target=75.0, out_cooldown=60, in_cooldown=300, disable_scale_in=False,
           metric="ECSServiceAverageCPUUtilization", label=None, custom=None) -> ScalingPolicy:
    predefined = None if custom else PredefinedMetricSpecification(metric, label)
    config = TargetTrackingScalingPolicyConfiguration(target, predefined, custom, out_cooldown, in_cooldown,
                                                      disable_scale_in)
    return ScalingPolicy("cpu-tracking", RESOURCE, "TargetTrackingScaling",
                         target_tracking_scaling_policy_configuration=config)


def scalable(min_capacity=2, max_capacity=20, **suspended) -> ScalableTarget:
    return ScalableTarget(RESOURCE, min_capacity, max_capacity, suspended_state=SuspendedState(**suspended))


def counts(running, metric, desired=None, high=ALARM, low=OK, deploying=False) -> ServiceCounts:
    return ServiceCounts(running, running if desired is None else desired, metric, high, low, deploying)


def plan(c: ServiceCounts, p=None, t=None, history=ScalingHistory(), now=NOW) -> ScalingDecision:
    return plan_target_tracking(p or policy(), t or scalable(), c, history, now)


@pytest.mark.parametrize("running, metric, target, expected", [
    (4, 150.0, 75.0, 8),     # the brief's example: twice the target, twice the tasks
    (4, 80.0, 75.0, 5),      # 4.27 rounds up: add enough
    (3, 100.0, 75.0, 4),
    (8, 30.0, 75.0, 4),      # 3.2 rounds up: never remove so many the metric passes the target
    (8, 50.0, 75.0, 6),
    (10, 75.0, 75.0, 10),
    (3, 70.0, 70.0, 3),      # float noise must not add a task
], ids=lambda v: str(v))
def test_proposed_capacity(running, metric, target, expected):
    assert proposed_capacity(running, metric, target) == expected


@pytest.mark.parametrize("c, bounds, expected", [
    (counts(4, 150.0), (2, 20), 8),
    (counts(4, 150.0), (2, 6), 6),             # clamped to MaxCapacity
    (counts(4, 80.0), (2, 20), 5),
    (counts(1, 80.0), (3, 20), 3),             # desired below MinCapacity: a scale-out jumps to at least min
    (counts(4, 150.0, desired=8), (2, 20), None),  # 4 pending tasks already cover the proposal
    (counts(6, 150.0, desired=6), (2, 6), None),   # at MaxCapacity
], ids=["double", "max", "round-up", "min", "pending-cover-it", "at-max"])
def test_scale_out(c, bounds, expected):
    decision = plan(c, t=scalable(*bounds))
    assert decision.capacity == expected
    assert decision.direction == (OUT if expected else None)


@pytest.mark.parametrize("c, bounds, expected", [
    (counts(8, 30.0, high=OK, low=ALARM), (2, 20), 4),
    (counts(8, 30.0, high=OK, low=ALARM), (6, 20), 6),     # clamped to MinCapacity
    (counts(2, 10.0, high=OK, low=ALARM), (2, 20), None),  # at MinCapacity
    (counts(10, 66.0, high=OK, low=ALARM), (2, 20), 9),
    (counts(5, 10.0, desired=25, high=OK, low=ALARM), (2, 20), 2),  # above MaxCapacity: comes down
], ids=["proportional", "min", "at-min", "gentle", "above-max"])
def test_scale_in(c, bounds, expected):
    decision = plan(c, t=scalable(*bounds))
    assert decision.capacity == expected
    assert decision.direction == (IN if expected else None)


def test_nothing_happens_between_the_alarms():
    decision = plan(counts(4, 72.0, high=OK, low=OK))
    assert decision.capacity is None
    assert decision.reason == "no alarm of the policy is in ALARM"


def test_no_datapoint_no_scaling():
    decision = plan(counts(4, None))
    assert decision.capacity is None and "insufficient data" in decision.reason


def test_the_activity_reads_as_application_auto_scaling_writes_it():
    decision = plan(counts(4, 150.0))
    high = managed_alarms(policy()).high.alarm_name
    assert high.startswith("TargetTracking-service/production-cluster/web-app-service-AlarmHigh-")
    assert decision.cause == f"monitor alarm {high} in state ALARM triggered policy cpu-tracking"
    assert decision.description == "Setting desired count to 8."
    assert decision.status_message == "Successfully set desired count to 8. Change successfully fulfilled by ecs."
    assert decision.previous == 4


# --- cooldowns ---------------------------------------------------------------------

SCALED_OUT = ScalingHistory(last_scale_out_at=NOW, last_scale_out_from=4, last_scale_out_to=8)


@pytest.mark.parametrize("c, seconds_later, expected", [
    (counts(4, 150.0, desired=8), 30, None),   # the same +4 again: already added
    (counts(4, 200.0, desired=8), 30, 11),     # +7 from the same start: a larger scale-out goes at once
    (counts(8, 80.0, desired=8), 30, None),    # the new tasks run, +1 more: covered by the last +4
    (counts(8, 160.0, desired=8), 30, 14),     # +10 on top of the last start (4): 14
    (counts(8, 80.0, desired=8), 61, 9),       # after the 60 s cooldown any increase goes
], ids=["same", "larger", "small-in-cooldown", "larger-in-cooldown", "after-cooldown"])
def test_scale_out_cooldown_lets_only_a_larger_scale_out_through(c, seconds_later, expected):
    assert plan(c, history=SCALED_OUT, now=NOW + seconds_later).capacity == expected


def test_small_increase_in_cooldown_is_held_with_the_reason():
    decision = plan(counts(6, 100.0, desired=8), history=SCALED_OUT, now=NOW + 30)
    assert decision.capacity is None
    assert decision.reason == ("scale-out cooldown: 2 more tasks on top of the last scale-out's start (4) "
                               "is not more than 8")


def test_scale_in_cooldown_blocks_scale_in_until_it_ends():
    history = ScalingHistory(last_scale_in_at=NOW)
    low = counts(8, 30.0, high=OK, low=ALARM)
    assert plan(low, history=history, now=NOW + 299).capacity is None
    assert plan(low, history=history, now=NOW + 300).capacity == 4


def test_a_scale_out_during_scale_in_cooldown_goes_ahead_and_ends_the_cooldown():
    history = ScalingHistory(last_scale_in_at=NOW)
    out = plan(counts(4, 150.0), history=history, now=NOW + 100)
    assert out.capacity == 8
    history = history.after(out, NOW + 100)
    assert not history.in_scale_in_cooldown(300, NOW + 101)
    assert history == ScalingHistory(NOW + 100, 4, 8, NOW)


def test_history_records_only_applied_decisions():
    hold = ScalingDecision("cpu-tracking", None, "nothing to do")
    assert ScalingHistory().after(hold, NOW) == ScalingHistory()


# --- switches ------------------------------------------------------------------------


def test_disable_scale_in_means_no_low_alarm_and_no_scale_in():
    p = policy(disable_scale_in=True)
    assert managed_alarms(p).low is None
    assert plan(counts(8, 10.0, high=OK, low=ALARM), p=p).capacity is None
    assert plan(counts(4, 150.0), p=p).capacity == 8


def test_no_scale_in_during_a_deployment_but_scale_out_continues():
    assert plan(counts(8, 30.0, high=OK, low=ALARM, deploying=True)).reason == \
        "scale-in is off while the service has a deployment in progress"
    assert plan(counts(4, 150.0, deploying=True)).capacity == 8


@pytest.mark.parametrize("c, suspended", [
    (counts(4, 150.0), {"dynamic_scaling_out_suspended": True}),
    (counts(8, 30.0, high=OK, low=ALARM), {"dynamic_scaling_in_suspended": True}),
], ids=["out", "in"])
def test_suspended_dynamic_scaling(c, suspended):
    decision = plan(c, t=scalable(**suspended))
    assert decision.capacity is None and "suspended" in decision.reason


def test_from_zero_one_datapoint_adds_one_task():
    p = policy(target=1000.0, metric="ALBRequestCountPerTarget", label=LABEL)
    decision = plan(counts(0, 12.0, high=OK), p=p, t=scalable(0, 10))
    assert (decision.capacity, decision.direction) == (1, OUT)


# --- the alarms and metrics it creates --------------------------------------------


def test_managed_alarms_for_cpu():
    alarms = managed_alarms(policy())
    high, low = alarms.high, alarms.low
    assert (high.threshold, high.comparison_operator, high.evaluation_periods, high.period) == (75.0, GREATER_THAN,
                                                                                                3, 60)
    assert (low.threshold, low.comparison_operator, low.evaluation_periods) == (67.5, LESS_THAN, 15)
    assert (high.namespace, high.metric_name, high.statistic) == ("AWS/ECS", "CPUUtilization", "Average")
    assert high.dimensions == (("ClusterName", "production-cluster"), ("ServiceName", "web-app-service"))
    assert high.treat_missing_data == "missing"
    assert managed_alarms(policy()) == alarms  # stable names for the same policy
    assert low.alarm_name.startswith("TargetTracking-service/production-cluster/web-app-service-AlarmLow-")


@pytest.mark.parametrize("p, expected", [
    (policy(metric="ECSServiceAverageMemoryUtilization"),
     ("AWS/ECS", "MemoryUtilization", "Average")),
    (policy(metric="ALBRequestCountPerTarget", label=LABEL),
     ("AWS/ApplicationELB", "RequestCountPerTarget", "Sum")),
    (policy(custom=CustomizedMetricSpecification("QueueDepth", "Custom/App", "Maximum",
                                                 [MetricDimension("Queue", "jobs")])),
     ("Custom/App", "QueueDepth", "Maximum")),
], ids=["memory", "alb", "custom"])
def test_metric_specs(p, expected):
    spec = metric_spec(p.target_tracking_scaling_policy_configuration, RESOURCE)
    assert (spec.namespace, spec.metric_name, spec.statistic) == expected


def test_alb_request_count_per_target_is_keyed_by_target_group():
    spec = metric_spec(policy(metric="ALBRequestCountPerTarget", label=LABEL)
                       .target_tracking_scaling_policy_configuration, RESOURCE)
    assert spec.dimensions == (("TargetGroup", "targetgroup/web-tg/6d0ecf831eec9f09"),)


# --- several policies ---------------------------------------------------------------

def _d(capacity, direction):
    return ScalingDecision("p", capacity, "", direction)


@pytest.mark.parametrize("decisions, expected", [
    ([_d(6, OUT), _d(None, None)], 6),
    ([_d(6, OUT), _d(9, OUT)], 9),
    ([_d(6, OUT), _d(3, IN)], 6),
    ([_d(3, IN), _d(None, None)], None),   # scale in only if every policy agrees
    ([_d(3, IN), _d(5, IN)], 5),           # ...and then by the smallest step
], ids=["one-out", "largest-out", "out-beats-in", "in-needs-all", "largest-in"])
def test_combine_decisions(decisions, expected):
    combined = combine_decisions(decisions)
    assert (combined.capacity if combined else None) == expected


# --- the seed's 09:00-09:16 on a metric series --------------------------------------


def test_seed_timeline_cpu_spike_scales_four_tasks_to_eight():
    """09:00 steady at 40%; the spike starts 09:14; three whole minutes above 75% -> 4 -> 8 at 09:17."""
    start = NOW - 14 * 60  # 09:00
    series = MetricSeries()
    for minute in range(20):
        cpu = 40.0 if minute < 14 else 150.0
        for second in range(0, 60, 20):  # the collector's samples
            series.add(start + minute * 60 + second, cpu)
    alarms = managed_alarms(policy())
    decisions = {}
    for minute in (15, 16, 17):
        now = start + minute * 60
        high = evaluate_series(alarms.high, series, now)
        low = evaluate_series(alarms.low, series, now)
        decisions[minute] = plan(ServiceCounts(4, 4, high.latest, high.state, low.state), now=now)
    assert [decisions[m].capacity for m in (15, 16, 17)] == [None, None, 8]
    high = evaluate_series(alarms.high, series, start + 17 * 60)
    assert high.reason == ("Threshold Crossed: 3 datapoints [150.0 (26/11/26 09:16:00), 150.0 (26/11/26 09:15:00), "
                           "150.0 (26/11/26 09:14:00)] were greater than the threshold (75.0).")


def test_history_after_keeps_other_fields():
    h = ScalingHistory(last_scale_in_at=NOW)
    out = ScalingDecision("p", 8, "", OUT, 4)
    assert h.after(out, NOW + 5) == replace(h, last_scale_out_at=NOW + 5, last_scale_out_from=4, last_scale_out_to=8)


@settings(max_examples=300, deadline=None)
@given(running=st.integers(0, 50), extra=st.integers(0, 20), metric=st.floats(0, 500),
       min_capacity=st.integers(0, 10), span=st.integers(0, 40), high=st.booleans(), low=st.booleans())
def test_property_decisions_stay_in_bounds_and_move_the_right_way(running, extra, metric, min_capacity, span,
                                                                   high, low):
    c = ServiceCounts(running, running + extra, metric, ALARM if high else OK, ALARM if low else OK)
    t = scalable(min_capacity, min_capacity + span)
    decision = plan(c, t=t)
    if decision.capacity is not None:
        assert t.min_capacity <= decision.capacity <= t.max_capacity
        assert (decision.capacity > c.desired) == (decision.direction == OUT)
        if decision.direction == IN:  # never so far that the running tasks' load would pass the target
            clamped = decision.capacity in (t.min_capacity, t.max_capacity)
            assert decision.capacity * 75.0 >= running * metric - 1e-6 or clamped
