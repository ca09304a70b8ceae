"""Metrics on the real daemon: a task's cgroup counters grow when the sample app burns CPU.

One t3.medium instance (0.5 real CPU at scale 0.25), one sample-app task;
GET /cpu?ms=N makes the app spend N ms of CPU. Everything is labelled with
the test session's owner and the runtime fixture terminates the instance,
so no container survives (tests/conftest.py checks).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from emulator.clock import RealClock
from emulator.control.agent import ClusterAgent
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.metrics import MetricsCollector, MetricsExporter, MetricsStore, scrape_text
from emulator.metrics import names as n
from emulator.model.state import StateStore
from emulator.model.task import RUNNING
from emulator.model.task_definition_validation import parse_task_definition

pytestmark = [pytest.mark.docker]

CLUSTER = "metrics-it"
WAIT_S = 30
BURN_MS = 1500
# Spins; exits on SIGTERM at once (as PID 1 a process ignores signals it has no handler for).
SPIN = ("python3", "-c", "import signal, sys\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\nwhile True: pass")


def http_get(address: str, port: int, path: str, timeout: float = 30) -> dict:
    """GET from the task, retrying only while its app is not listening yet (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def wait_running(store: StateStore, task_arn: str):
    for _ in range(WAIT_S * 20):
        task = store.get("task", task_arn)
        if task.last_status == RUNNING:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task stayed {store.get('task', task_arn).last_status}")


async def test_a_task_burning_cpu_shows_growing_cpu_seconds_and_utilization(make_docker_runtime, tmp_path):
    store = StateStore(None)
    clock = RealClock()
    async with make_docker_runtime() as runtime:
        agent = ClusterAgent(store, runtime, clock, logs_dir=tmp_path / "logs")
        follower = asyncio.get_running_loop().create_task(agent.follow_events())
        try:
            ensure_cluster(store, CLUSTER)
            register_task_definition(store, parse_task_definition({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "web-app:v1", "cpu": 512, "memory": 256, "stopTimeout": 2,
                 "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}), 0.0)
            ci = await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
            [task], failures = await agent.run_task(CLUSTER, "web")
            assert failures == []
            task = await wait_running(store, task.task_arn)
            address = runtime.instances[ci.ec2_instance_id].address
            port = task.containers[0].network_bindings[0].host_port
            await asyncio.to_thread(http_get, address, port, "/")          # listening

            metrics = MetricsStore()
            collector = MetricsCollector(store, runtime, clock, metrics, cpu_scale=0.25, memory_scale=0.25)
            [before] = await runtime.task_usage(ci.ec2_instance_id)
            first = await collector.collect_once()
            assert first.readings[task.task_arn].memory_used_mib > 0

            burned = await asyncio.to_thread(http_get, address, port, f"/cpu?ms={BURN_MS}")
            assert burned["cpuMs"] >= BURN_MS * 0.9

            [after] = await runtime.task_usage(ci.ec2_instance_id)
            second = await collector.collect_once()
        finally:
            follower.cancel()
            await agent.settle()

    assert after.task_id == task.task_id
    assert after.cpu_seconds_total - before.cpu_seconds_total >= BURN_MS / 1000 * 0.9
    assert after.memory_bytes > 0
    reading = second.readings[task.task_arn]
    # 512 units at scale 0.25 own 0.125 real CPU; alone on the instance the task may use all 0.5 of it.
    assert 0 < reading.cpu_percent <= 400 * 1.1
    cluster_cpu = metrics.latest(n.ECS, n.CPU_UTILIZATION, {n.CLUSTER_NAME: CLUSTER})
    assert cluster_cpu is not None and cluster_cpu.value > 0
    assert metrics.latest(n.ECS, n.MEMORY_UTILIZATION, {n.CLUSTER_NAME: CLUSTER}).value > 0
    text = scrape_text(MetricsExporter(metrics, store, clock=clock))
    assert "ecs_cluster_cpu_utilization_percent{cluster=\"metrics-it\"}" in text
    store.close()


async def test_a_restarted_runtime_samples_the_tasks_it_adopted(make_docker_runtime):
    from emulator.model.instance_types import get_instance_type
    from emulator.runtime.base import ContainerSpec, InstanceSpec, TaskSpec

    ec2_id = "i-0metrics0adopt001"
    spin = ContainerSpec("busy", "web-app:v1", cpu_shares=128, memory_mib=128, stop_timeout_s=2,
                         command=SPIN)
    spec = TaskSpec(CLUSTER, "adopted-task", f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/adopted-task",
                    ec2_id, (spin,))
    async with make_docker_runtime() as first:
        await first.launch_instance(InstanceSpec(CLUSTER, ec2_id, get_instance_type("t3.small"), "us-east-1a"))
        await first.run_task(spec)
        async with make_docker_runtime() as second:      # the emulator restarted: same owner, same state
            await second.adopt()
            [before] = await second.task_usage(ec2_id)
            await asyncio.sleep(1.0)
            [after] = await second.task_usage(ec2_id)

    assert before.task_id == after.task_id == "adopted-task"
    assert after.cpu_seconds_total > before.cpu_seconds_total
    assert after.memory_bytes > 0
