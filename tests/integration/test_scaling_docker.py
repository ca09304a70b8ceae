"""The seed's spike on real Docker: real HTTP load makes tasks scale out, wait, and land on new instances.

The default stack at time scale 20 (an AWS minute is 3 s), with the CPU
target at 50% so that four saturated tasks ask for eight. A bounded load
generator on 127.0.0.1 sends CPU-heavy requests to the ALB; the real CPU
the tasks burn (read from their cgroups) drives target tracking, the tasks
that don't fit wait in PROVISIONING, the capacity provider grows the Auto
Scaling group, new instance containers start and register, and every task
ends RUNNING and healthy. `/metrics`, scraped throughout and parsed, shows
each step.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from importlib.resources import files

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from emulator.app import Emulator
from emulator.clock import RealClock
from emulator.loadgen import BackgroundLoad, LoadSpec
from emulator.model.task import RUNNING, STOPPED
from emulator.runtime.docker_runtime import DockerRuntime
from emulator.scenario import parse_stack
from tests.conftest import TEST_OWNER

pytestmark = [pytest.mark.docker]

TIME_SCALE = 20
WALL_LIMIT_S = 240       # the whole story, load included, within 4 minutes of wall time
CLUSTER, SERVICE, GROUP = "production-cluster", "web-app-service", "ecs-instance-asg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spike_stack(port: int) -> str:
    stack = yaml.safe_load((files("emulator") / "stacks" / "default.yaml").read_text())
    stack["settings"]["timeScale"] = TIME_SCALE
    stack["loadBalancers"][0]["listeners"][0]["port"] = port
    policy = stack["scalingPolicies"][0]
    policy["MaxCapacity"] = 8
    policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] = 50.0
    return yaml.safe_dump(stack)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    for (n, lbls), v in samples.items():
        if n == name and all(dict(lbls).get(k) == want for k, want in labels.items()):
            return v
    return None


class Watch:
    """Every scrape's figures of interest, in order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float | None]] = []

    def add(self, samples: dict) -> dict:
        row = {
            "cpu": value(samples, "ecs_service_cpu_utilization_percent", service=SERVICE),
            "desired": value(samples, "ecs_service_desired_tasks", service=SERVICE),
            "running": value(samples, "ecs_service_running_tasks", service=SERVICE),
            "pending": value(samples, "ecs_service_pending_tasks", service=SERVICE),
            "reservation": value(samples, "ecs_capacity_provider_reservation_percent"),
            "asg_desired": value(samples, "autoscaling_group_desired_capacity", auto_scaling_group=GROUP),
            "in_service": value(samples, "autoscaling_group_in_service_instances", auto_scaling_group=GROUP),
        }
        self.rows.append(row)
        return row

    def seen(self, key: str, predicate) -> bool:
        return any(r[key] is not None and predicate(r[key]) for r in self.rows)

    def first(self, key: str, predicate) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r[key] is not None and predicate(r[key])), None)


async def test_real_load_scales_tasks_out_and_the_capacity_provider_adds_instances(built_images, tmp_path):
    started = time.monotonic()
    port = free_port()
    runtime = DockerRuntime(state_dir=tmp_path, owner=TEST_OWNER)
    emulator = Emulator(parse_stack(spike_stack(port), "spike"), state_dir=tmp_path, runtime=runtime,
                        clock=RealClock(TIME_SCALE), api_port=0)
    await emulator.start()
    watch, load = Watch(), None
    try:
        async def until(check, limit_s: float, what: str) -> dict:
            while True:
                row = watch.add(await asyncio.to_thread(scrape, emulator.api_port))
                if check(row):
                    return row
                assert time.monotonic() - started < limit_s, f"{what} not seen; last scrapes: {watch.rows[-3:]}"
                await asyncio.sleep(0.5)

        await until(lambda r: r["running"] == 4 and r["in_service"] == 2, 90, "the steady cluster")
        # 32 requests/s of 25 ms of CPU: 0.8 CPU-second a second, 80% of what four tasks reserve for real.
        load = BackgroundLoad(LoadSpec(f"http://127.0.0.1:{port}/cpu?ms=25", rate=32, duration_s=WALL_LIMIT_S,
                                       concurrency=64, timeout_s=30)).start()
        await until(lambda r: (r["desired"] or 0) > 4, 180, "task scale-out")
        await until(lambda r: (r["asg_desired"] or 0) > 2, 200, "the ASG growing")
        final = await until(lambda r: r["in_service"] == r["asg_desired"] and r["running"] == r["desired"]
                            and r["pending"] == 0, WALL_LIMIT_S, "all tasks RUNNING on the new instances")
        group = emulator.alb.runtimes[next(iter(emulator.alb.runtimes))]

        def all_healthy(row: dict) -> bool:
            tasks = [t for t in emulator.store.list("task") if t.last_status != STOPPED]
            return (len(tasks) == row["desired"] == group.counts()["HealthyHostCount"]
                    and all(t.last_status == RUNNING and t.health_status == "HEALTHY" for t in tasks))

        final = await until(all_healthy, WALL_LIMIT_S, "every task RUNNING, HEALTHY and a healthy target")
        report = await asyncio.to_thread(load.finish)
        load = None
        # Copies: the store's objects change when the emulator terminates everything below.
        tasks = [(t.task_id, t.last_status, t.health_status) for t in emulator.store.list("task")
                 if t.last_status != STOPPED]
        healthy = group.counts()["HealthyHostCount"]
        containers = await runtime.list_instances()
    finally:
        if load is not None:
            await asyncio.to_thread(load.finish)
        await emulator.stop(terminate=True)

    assert watch.seen("cpu", lambda v: v > 50)                         # the spike, measured from cgroups
    assert watch.first("desired", lambda v: v > 4) < watch.first("asg_desired", lambda v: v > 2)
    assert watch.seen("pending", lambda v: v > 0)                      # tasks waited (PROVISIONING)
    assert watch.seen("reservation", lambda v: v > 100)                # CapacityProviderReservation above target
    assert final["desired"] > 4 and final["asg_desired"] > 2
    assert len(containers) == final["in_service"]                      # real instance containers, one each
    assert all(status == RUNNING and health == "HEALTHY" for _, status, health in tasks), tasks
    assert len(tasks) == final["desired"] and healthy == final["desired"]
    assert report.statuses.get(200, 0) > 0
    assert time.monotonic() - started < WALL_LIMIT_S + 60
