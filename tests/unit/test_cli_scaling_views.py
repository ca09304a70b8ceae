"""`ecsemu asg`, `capacity-providers`, `scaling` and `top`: the emulator process (the default stack on the
in-memory runtime, a fake clock, its API on an ephemeral port) while the service outgrows its two instances,
and `cli.main` run in a worker thread as a person would run it, so the event loop keeps serving."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys

import pytest

from emulator import cli_views
from emulator.app import Emulator
from emulator.cli import main
from emulator.cli_client import EmulatorClient, EmulatorUnreachable
from emulator.clock import FakeClock
from emulator.control.services import update_service
from emulator.runtime.fake import FakeRuntime
from emulator.scenario import load_default_stack

CLUSTER, SERVICE, GROUP, PROVIDER = "production-cluster", "web-app-service", "ecs-instance-asg", "ec2-capacity-provider"


@pytest.fixture
async def emulator():
    """Up for ten minutes (two instances, four tasks), then asked for eight tasks: four wait in PROVISIONING,
    and a minute later CapacityProviderReservation is 200% and the group's desired capacity 4."""
    clock = FakeClock(start=1_790_000_000.0)
    runtime = FakeRuntime(rng=random.Random(1), behave_like_sample_app=True,
                          launch_delay=lambda spec: clock.sleep(120))
    emu = Emulator(load_default_stack(), state_dir=None, runtime=runtime, clock=clock, rng=random.Random(4),
                   api_port=0, listen=False)
    await emu.start()
    try:
        await clock.advance(600)
        update_service(emu.store, emu.clock, CLUSTER, SERVICE, desired_count=8, rng=random.Random(0))
        await clock.advance(10)
        await clock.advance(60)
        yield emu
    finally:
        await emu.stop(terminate=True)


def url(emu: Emulator) -> str:
    return f"http://127.0.0.1:{emu.api_port}"


async def ecsemu(capsys, emu: Emulator | None, *argv: str) -> tuple[int, str, str]:
    """`ecsemu ARGV --endpoint-url <the emulator>` in a worker thread: blocking HTTP never runs on this loop."""
    args = [*argv, "--endpoint-url", url(emu)] if emu is not None else list(argv)
    code = await asyncio.to_thread(main, args)
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


def row(out: str, first: str) -> list[str]:
    return next(r for r in rows(out) if r[0] == first)


# --- asg ---------------------------------------------------------------------------------------------


async def test_asg_shows_the_group_scaling_out_and_its_instances_with_protection_and_tasks(emulator, capsys):
    code, out, err = await ecsemu(capsys, emulator, "asg", "--cluster", CLUSTER)
    assert (code, err) == (0, "")
    assert rows(out)[0] == ["AUTO", "SCALING", "GROUP", "TYPE", "MIN", "MAX", "DESIRED", "IN", "SERVICE",
                            "LAUNCHING", "PROTECTED", "CAPACITY", "PROVIDER"]
    assert row(out, GROUP) == [GROUP, "t3.medium", "2", "10", "4", "2", "2", "2", PROVIDER]
    instances = [r for r in rows(out) if r[0].startswith("i-")]
    assert len(instances) == 2
    for r in instances:
        assert r[3:6] == ["yes", "0/2048", "1536/3584"]  # protected, two 1 vCPU / 1 GiB tasks each
        assert len(r[6:]) == 2 and all(t.endswith("(RUNNING)") for t in r[6:])

    code, out, _ = await ecsemu(capsys, emulator, "asg", "--json")
    [group] = json.loads(out)
    assert (group["AutoScalingGroupName"], group["DesiredCapacity"], group["InServiceInstances"]) == (GROUP, 4, 2)
    assert all(i["ProtectedFromScaleIn"] and len(i["ContainerInstance"]["tasks"]) == 2 for i in group["Instances"])


# --- capacity-providers ----------------------------------------------------------------------------------


async def test_capacity_providers_show_the_reservation_against_target_with_the_article_gauge_beside_it(
        emulator, capsys):
    code, out, err = await ecsemu(capsys, emulator, "capacity-providers")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "RESERVATION" in lines[0] and "TARGET" in lines[0] and "M / N" in lines[0]
    assert "SLOT GAUGE (ARTICLE)" in lines[0]
    provider = next(line for line in lines if line.startswith(PROVIDER) and "ENABLED" in line and GROUP in line)
    assert provider.split()[:5] == [PROVIDER, GROUP, "ENABLED", "200%", "100%"]
    assert "M 4 / N 2, step +2" in provider and "1-10" in provider and "180s" in provider
    assert "100% = 4 running / 4 slots (web-app-service)" in provider
    # Each gauge says what it is: ECS's M / N and the article's running tasks / task slots.
    assert any(line.startswith("RESERVATION: CapacityProviderReservation = M / N x 100") for line in lines)
    assert any(line.startswith("SLOT GAUGE (ARTICLE): the article's task-slot gauge: running tasks x 100 / task "
                               "slots") for line in lines)
    high = next(line for line in lines if "-AlarmHigh-" in line)
    assert high.split()[-1] == "ALARM" and "> 100 for 1 of 1 min" in high

    code, out, _ = await ecsemu(capsys, emulator, "capacity-providers", "--json")
    [cp] = json.loads(out)
    assert cp["capacityProviderReservation"]["value"] == 200.0
    assert cp["taskSlotGauge"]["services"][0]["percent"] == 100.0


# --- scaling ------------------------------------------------------------------------------------------


async def test_scaling_shows_targets_policies_alarms_and_activities_newest_first(emulator, capsys):
    code, out, err = await ecsemu(capsys, emulator, "scaling", "--cluster", CLUSTER)
    assert (code, err) == (0, "")
    assert row(out, f"service/{CLUSTER}/{SERVICE}") == [f"service/{CLUSTER}/{SERVICE}", "2", "20", "8", "-"]
    policy = row(out, SERVICE)
    assert policy[:7] == [SERVICE, "cpu-tracking", "TargetTrackingScaling", "ECSServiceAverageCPUUtilization", "75",
                          "60s", "300s"]
    alarms = [line for line in out.splitlines() if line.startswith("cpu-tracking  TargetTracking-")]
    assert len(alarms) == 2
    assert "> 75 for 3 of 3 min" in alarms[0] and "< 67.5 for 15 of 15 min" in alarms[1]
    assert all(line.split()[-1] in ("OK", "ALARM", "INSUFFICIENT_DATA") for line in alarms)

    blocks = out.split("scaling activities, newest first")[1].strip().split("\n\n")[1:]
    assert len(blocks) == 5  # 2 first launches, the change of desired capacity, 2 launches in progress
    status = [b.splitlines()[1].split()[-1] for b in blocks]
    assert status == ["InProgress", "InProgress", "Successful", "Successful", "Successful"]
    assert all(b.splitlines()[0].endswith(f"Auto Scaling group {GROUP}") for b in blocks)
    assert "Description: Changing the desired capacity from 2 to 4." in blocks[2]
    assert "Cause:       At " in blocks[0] and "increasing the capacity from 2 to 4." in blocks[0]

    code, out, _ = await ecsemu(capsys, emulator, "scaling", "--json")
    data = json.loads(out)
    assert set(data) == {"scalableTargets", "scalingActivities"}
    assert [a["StatusCode"] for a in data["scalingActivities"]] == status


# --- top ------------------------------------------------------------------------------------------------


async def test_top_draws_bounded_frames_without_escape_codes_when_not_a_terminal(emulator, capsys):
    code, out, err = await ecsemu(capsys, emulator, "top", "--frames", "2", "--interval", "0")
    assert (code, err) == (0, "")
    assert "\x1b" not in out
    frames = out.split("ecsemu top  cluster ")[1:]
    assert len(frames) == 2
    for frame in frames:
        assert frame.startswith(f"{CLUSTER}  AWS time ") and "(time scale 1x)" in frame.splitlines()[0]
        service = row(frame, SERVICE)
        assert service[1:4] == ["8", "4", "4"]  # desired, running, pending
        assert service[4].endswith("%") and service[5].endswith("%")  # CPU and memory from the collector
        assert "CPU 75% (cpu-tracking)" in frame
        assert row(frame, GROUP)[1:7] == ["4", "2", "2", "2-10", PROVIDER, "200%"]
        assert "M 4 / N 2, step +2" in frame
        instances = [r for r in rows(frame) if r[0].startswith("i-")]
        assert len(instances) == 2 and all(r[4:6] == ["0/2048", "1536/3584"] for r in instances)
        events = frame.split("newest events:")[1].strip().splitlines()
        assert 1 <= len(events) <= cli_views.TOP_EVENTS
        assert "desired capacity 2 -> 4" in frame

    code, out, _ = await ecsemu(capsys, emulator, "top", "--json", "--frames", "2", "--interval", "0")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert [json.loads(line)["clusterName"] for line in lines] == [CLUSTER, CLUSTER]


async def test_top_stops_after_for_seconds(emulator, capsys):
    code, out, err = await ecsemu(capsys, emulator, "top", "--for", "0.3", "--interval", "0.1")
    assert (code, err) == (0, "")
    assert 1 <= out.count("ecsemu top  cluster ") <= 5


async def test_top_says_so_and_exits_1_when_nobody_answers(capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = await ecsemu(capsys, None, "top", "--frames", "2", "--interval", "0",
                                  "--endpoint-url", f"http://127.0.0.1:{port}")
    assert code == 1 and out == ""
    assert "cannot reach the emulator" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--interval", "-1"], "--interval"), (["--frames", "0"], "--frames"), (["--for", "0"], "--for")])
def test_top_refuses_bad_bounds(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["top", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


# --- top's loop, on a scripted client -------------------------------------------------------------------


class Scripted(EmulatorClient):
    """Answers GET /scaling from a script: a state, or an exception to raise."""

    def __init__(self, *answers) -> None:
        super().__init__("http://127.0.0.1:9")
        self.answers, self.calls = list(answers), []

    def native(self, method, path, *, query=None, body=None, content_type="application/json", timeout=None):
        self.calls.append((method, path, dict(query or {}), timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def top_args(**overrides) -> argparse.Namespace:
    values = {"cluster": None, "json": False, "interval": 0.0, "for_seconds": None, "frames": None}
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture
async def state(emulator):
    return await asyncio.to_thread(cli_views.scaling_state, EmulatorClient(url(emulator)), CLUSTER, events=5)


def test_top_reports_an_emulator_that_stops_answering_and_exits_1(state, capsys):
    gone = EmulatorUnreachable("http://127.0.0.1:9", "Connection refused")
    client = Scripted(state, state, gone)
    assert cli_views.top(client, top_args()) == 1
    out, err = capsys.readouterr()
    assert out.count("ecsemu top  cluster ") == 2
    assert err.strip() == "ecsemu: the emulator at http://127.0.0.1:9 stopped answering (Connection refused)"
    assert all(call[:2] == ("GET", "scaling") and call[2]["events"] == cli_views.TOP_EVENTS and call[3]
               for call in client.calls)


def test_top_clears_the_screen_between_frames_on_a_terminal_and_ctrl_c_stops_it(state, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    client = Scripted(state, state, KeyboardInterrupt())
    assert cli_views.top(client, top_args()) == 0
    out, _ = capsys.readouterr()
    assert out.count(cli_views.CLEAR_SCREEN) == 2 and out.startswith(cli_views.CLEAR_SCREEN)


def test_top_waits_interval_between_frames_and_not_past_for(state, capsys):
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    client = Scripted(*[state] * 10)
    assert cli_views.top(client, top_args(interval=2.0, for_seconds=5.0), sleep=sleep, monotonic=lambda: now[0]) == 0
    assert slept == [2.0, 2.0, 1.0] and len(client.calls) == 3

    client = Scripted(*[state] * 10)
    slept.clear()
    assert cli_views.top(client, top_args(interval=2.0, frames=3), sleep=sleep, monotonic=lambda: now[0]) == 0
    assert slept == [2.0, 2.0] and len(client.calls) == 3  # no wait after the last frame
    capsys.readouterr()
