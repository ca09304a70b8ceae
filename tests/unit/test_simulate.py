"""`ecsemu simulate`: the real control loops on the in-memory runtime play the seed's story end to end.

The default run is the acceptance story of two-dimensional scaling: the
spike takes the service from 4 to 8 tasks, the tasks that don't fit wait in
PROVISIONING, the capacity provider grows the ASG from 2 to 4, all 8 run;
when traffic goes both dimensions shrink, never terminating an instance
that runs tasks; then a blue/green deployment on the full cluster grows the
ASG and lets it shrink again.
"""

from __future__ import annotations

import json
import re

import pytest

from emulator import cli
from emulator.model.events import SCALING_ACTIVITY, TASK_STATE_CHANGE
from emulator.scenario import load_default_stack
from emulator.simulate import DEFAULT_TRAFFIC, Deployment, TrafficError, parse_time_of_day, parse_traffic, simulate


@pytest.fixture(scope="module")
def story():
    import asyncio
    return asyncio.run(simulate(load_default_stack(), parse_traffic(DEFAULT_TRAFFIC), start="09:00", until="11:15",
                                deployments=(Deployment(parse_time_of_day("10:30"), "web-app-service"),)))


def texts(result, between=("00:00", "23:59")):
    lo, hi = (parse_time_of_day(t) for t in between)
    midnight = result.lines[0].aws_time - result.lines[0].aws_time % 86400
    return [line.text for line in result.lines if lo <= line.aws_time - midnight < hi]


def desired_steps(result) -> list[tuple[int, int]]:
    return [tuple(map(int, m.groups())) for t in texts(result)
            if (m := re.match(r"Task Scaling: desired (\d+) -> (\d+)", t))]


def asg_steps(result) -> list[tuple[int, int]]:
    return [tuple(map(int, m.groups())) for e in result.events if e.kind == SCALING_ACTIVITY
            if (m := re.search(r"desired capacity (\d+) -> (\d+)", e.message))]


def test_the_spike_scales_tasks_4_to_8_with_tasks_waiting_and_the_asg_2_to_4(story):
    spike = texts(story, ("09:00", "09:25"))
    assert spike[0] == "Traffic: 280 requests/s"
    assert "[2 instances, desired 4 tasks: 4 RUNNING, 0 PROVISIONING; CapacityProviderReservation 100%]" in spike
    steps = desired_steps(story)
    out = [s for s in steps if s[1] > s[0]][:2]
    assert out[0][0] == 4 and out[-1][1] == 8 and all(b > a for a, b in out)
    assert any("PROVISIONING: no instance has room" in t for t in spike)
    grow = [s for s in asg_steps(story) if s[1] > s[0]]
    assert grow[0][0] == 2 and max(b for _, b in grow[:2]) == 4
    assert any(t.startswith("[4 instances, desired 8 tasks: 8 RUNNING, 0 PROVISIONING") for t in spike)


def test_when_traffic_goes_both_dimensions_scale_in_and_no_busy_instance_is_terminated(story):
    after = texts(story, ("09:25", "10:30"))
    assert any(re.match(r"Task Scaling: desired 8 -> [2-4] ", t) for t in after)
    shrink = [s for s in asg_steps(story) if s[1] < s[0]]
    assert shrink and shrink[-1][1] == 2
    # Managed termination protection: no task ever stopped because its instance was terminated.
    assert not [e for e in story.events if e.kind == TASK_STATE_CHANGE and "terminated" in e.message]


def test_a_blue_green_deployment_on_the_full_cluster_grows_the_asg_and_shrinks_it_after(story):
    deploy = texts(story, ("10:30", "11:15"))
    assert deploy[0].startswith("Deploy: web-app-service -> web-app:2 (web-app:v2), maximumPercent 200")
    assert any("deployment completed." in t for t in deploy)
    assert any("desired capacity 2 -> 4" in t for t in deploy)
    assert any(re.search(r"desired capacity \d -> 2 ", t) for t in deploy)
    final = story.final
    assert final["services"]["web-app-service"]["taskDefinition"] == "web-app:2"
    assert final["auto_scaling_groups"]["ecs-instance-asg"] == 2 and final["instances"] == 2
    assert final["tasks"]["RUNNING"] == 4


def test_the_cli_prints_the_timeline_and_json(capsys):
    code = cli.main(["simulate", "--until", "09:20", "--traffic", "09:00=280,09:05=600"])
    out = capsys.readouterr().out
    assert code == 0 and "09:00 - Traffic: 280 requests/s" in out and "Simulated 20 AWS minutes" in out

    code = cli.main(["simulate", "--until", "09:05", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["final"]["services"]["web-app-service"]["runningCount"] == 4
    assert data["timeline"][0]["text"] == "Traffic: 280 requests/s" and data["events"]


@pytest.mark.parametrize("spec,message", [
    ("", "no steps"),
    ("09:00", "TIME=REQUESTS_PER_SECOND"),
    ("25:00=5", "time of day"),
    ("09:00=lots", "not a number"),
    ("09:10=5,09:00=6", "time order"),
    ("09:00=-1", "0..1000000"),
])
def test_bad_traffic_specs_say_what_is_wrong(spec, message):
    with pytest.raises(TrafficError, match=message):
        parse_traffic(spec)


def test_bad_arguments_exit_2_with_a_message(capsys):
    assert cli.main(["simulate", "--traffic", "nine=5"]) == 2
    assert "is not a time of day" in capsys.readouterr().err
    assert cli.main(["simulate", "--until", "08:00"]) == 2
    assert "must be after the start" in capsys.readouterr().err
    assert cli.main(["simulate", "--deploy", "09:10", "--service", "ghost"]) == 2
    assert "no such service" in capsys.readouterr().err


# --- steps of unchanged traffic: repeated at once, to the last bit --------------------------------------


def _normalized_run(monkeypatch, *, repeats: bool) -> tuple:
    """A short story with a deployment: its timeline, events and every metric datapoint, ids made comparable."""
    import asyncio

    from emulator.app import Emulator
    from emulator.runtime.fake import FakeRuntime

    if not repeats:   # the runtime cannot repeat a round: every step tells every task again
        monkeypatch.delattr(FakeRuntime, "repeat_usage_round")
    metrics = {}
    original_stop = Emulator.stop

    async def stop(self, **kwargs):
        now = self.clock.now()
        for k in self.metrics.metrics():
            metrics[(k.namespace, k.name, k.dimensions)] = [
                (p.timestamp, p.sample_count, p.sum, p.minimum, p.maximum)
                for p in self.metrics.datapoints(k.namespace, k.name, k.dimensions, now - 4 * 3600, now + 60, 60)]
        await original_stop(self, **kwargs)

    monkeypatch.setattr(Emulator, "stop", stop)
    result = asyncio.run(simulate(load_default_stack(), parse_traffic(DEFAULT_TRAFFIC), start="09:00", until="10:00",
                                  deployments=(Deployment(parse_time_of_day("09:40"), "web-app-service"),)))
    ids: dict[str, str] = {}
    hexes = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32,}\b")

    def same(text: str) -> str:
        return hexes.sub(lambda m: ids.setdefault(m.group(0), f"<{len(ids)}>"), text)

    return ([(line.aws_time, same(line.text)) for line in result.lines],
            [(e.kind, same(e.resource or ""), e.aws_time, same(e.message), same(json.dumps(e.detail)))
             for e in result.events],
            result.final, metrics)


def test_steps_of_unchanged_traffic_repeated_at_once_give_exactly_what_telling_every_task_gives(monkeypatch):
    repeated = _normalized_run(monkeypatch, repeats=True)
    with pytest.MonkeyPatch.context() as mp:
        told = _normalized_run(mp, repeats=False)
    assert repeated[0] == told[0] and repeated[1] == told[1] and repeated[2] == told[2]
    assert repeated[3] == told[3]   # CPU, requests, response times: every datapoint, to the last bit


def test_a_request_plan_records_what_alb_traffic_records():
    from types import SimpleNamespace

    from emulator.alb.balancer import Target
    from emulator.alb.stats import TargetGroupStats
    from emulator.app import Emulator
    from emulator.control.load_balancing import Binding
    from emulator.simulate import RequestPlan

    def world():
        runtimes = {"tg-a": SimpleNamespace(stats=TargetGroupStats()), "tg-b": SimpleNamespace(stats=TargetGroupStats())}
        bindings = {f"task-{i}": [Binding("tg-a", Target(f"10.0.0.{i}", 49153 + i))] for i in range(7)}
        bindings["task-3"].append(Binding("tg-b", Target("10.0.0.3", 50000)))
        bindings["task-5"] = []                                                     # not registered
        bindings["task-6"].append(Binding("tg-a", Target("10.0.0.6", 49159)))      # the same target twice
        lb = SimpleNamespace(bindings_of=lambda arn: list(bindings.get(arn, [])))
        return SimpleNamespace(load_balancing=lb, alb=SimpleNamespace(runtimes=runtimes))

    arns = sorted(f"task-{i}" for i in range(7))
    for requests in (0.0, 3.0, 7.0, 2_501.5, 100_000.0):
        by_alb_traffic, by_plan = world(), world()
        plan = RequestPlan.of(by_plan, requests, arns)
        for _ in range(3):
            Emulator.alb_traffic(by_alb_traffic, requests, arns)
            plan.record()
        for arn in ("tg-a", "tg-b"):
            assert by_plan.alb.runtimes[arn].stats.snapshot() == by_alb_traffic.alb.runtimes[arn].stats.snapshot()
