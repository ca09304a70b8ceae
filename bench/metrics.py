"""Metrics cost: CPU the metrics layer spends sampling 50 real tasks, as a share of one core.

Starts a real cluster (4 t3.large instances at scale 0.25, 50 sample-app
tasks of 128 CPU units / 128 MiB each: 16 fit per instance by CPU), then runs
the collector's `collect_once` (every instance's cgroup files read in one
worker thread each, plus every ECS / Container Insights metric computed and
stored) many times back to back and measures the CPU it costs
(`time.process_time`: every thread of the process, so the worker threads'
file reads count). Prints:

  cpu_ms_per_sample               median CPU time of one sampling of all tasks
  wall_ms_per_sample              median wall time of one sampling
  task_usage_cpu_ms_per_sample    of which reading the cgroup files (runtime.task_usage alone)
  first_sample_cpu_ms             the first sampling (finds every cgroup directory; cached after)
  metrics_cost_pct_core_50_tasks  cpu per sample / 20 s sampling period, in % of one core (goal < 5)

    python bench/metrics.py [--json] [--tasks 50] [--instances 4] [--samples 40]

Every container and volume it creates carries its own owner label and is
removed at the end, also on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.clock import RealClock  # noqa: E402
from emulator.control.agent import ClusterAgent  # noqa: E402
from emulator.control.registry import ensure_cluster, register_task_definition  # noqa: E402
from emulator.metrics import MetricsCollector, MetricsStore  # noqa: E402
from emulator.model.state import StateStore  # noqa: E402
from emulator.model.task import RUNNING, STOPPED  # noqa: E402
from emulator.model.task_definition_validation import parse_task_definition  # noqa: E402
from emulator.runtime.base import LABEL_OWNER  # noqa: E402
from emulator.runtime.docker_runtime import DockerRuntime  # noqa: E402
from emulator.runtime.images import ensure_images  # noqa: E402

CLUSTER = "bench-metrics"
SAMPLE_PERIOD_S = 20.0
START_TIMEOUT_S = 300
TASK_DEFINITION = {"family": "bench-web", "containerDefinitions": [
    {"name": "web", "image": "web-app:v1", "cpu": 128, "memory": 128, "stopTimeout": 2,
     "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def start_tasks(store: StateStore, agent: ClusterAgent, count: int) -> None:
    left = count
    while left > 0:
        batch = min(10, left)   # RunTask's count is at most 10
        tasks, failures = await agent.run_task(CLUSTER, "bench-web", batch)
        if failures:
            raise RuntimeError(f"could not place every task: {failures[0].reason}")
        left -= len(tasks)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        statuses = [t.last_status for t in store.list("task")]
        running, stopped = statuses.count(RUNNING), statuses.count(STOPPED)
        if stopped:
            raise RuntimeError(f"{stopped} task(s) stopped while starting")
        if running >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {running} of {count} tasks RUNNING after {START_TIMEOUT_S} s")
        await asyncio.sleep(0.2)


async def cpu_and_wall(call) -> tuple[float, float, object]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = await call()
    return time.process_time() - cpu0, time.perf_counter() - wall0, result


async def measure(runtime: DockerRuntime, tasks: int, instances: int, instance_type: str, samples: int) -> dict:
    store = StateStore(None)
    clock = RealClock()
    agent = ClusterAgent(store, runtime, clock, cpu_scale=0.25, memory_scale=0.25,
                         logs_dir=runtime.state_dir / "logs")
    follower = asyncio.get_running_loop().create_task(agent.follow_events())
    try:
        ensure_cluster(store, CLUSTER)
        register_task_definition(store, parse_task_definition(TASK_DEFINITION), clock.now())
        log(f"launching {instances} x {instance_type} ...")
        launched = await asyncio.gather(*(agent.launch_instance(CLUSTER, instance_type, f"us-east-1{'abc'[i % 3]}")
                                          for i in range(instances)))
        log(f"starting {tasks} tasks ...")
        await start_tasks(store, agent, tasks)
        await asyncio.sleep(2)   # let the apps finish starting: idle tasks are what is sampled

        metrics = MetricsStore()
        collector = MetricsCollector(store, runtime, clock, metrics, cpu_scale=0.25, memory_scale=0.25)
        first_cpu, _, first = await cpu_and_wall(collector.collect_once)
        if first.tasks_sampled != tasks:
            raise RuntimeError(f"sampled {first.tasks_sampled} tasks, expected {tasks}")
        log(f"sampling {samples} times ...")
        cpu, wall, usage_cpu = [], [], []
        ids = [ci.ec2_instance_id for ci in launched]
        for _ in range(samples):
            await asyncio.sleep(0.05)
            c, w, collection = await cpu_and_wall(collector.collect_once)
            if collection.tasks_sampled != tasks:
                raise RuntimeError(f"sampled {collection.tasks_sampled} tasks, expected {tasks}")
            cpu.append(c)
            wall.append(w)
            c, _, _ = await cpu_and_wall(lambda: asyncio.gather(*(runtime.task_usage(i) for i in ids)))
            usage_cpu.append(c)
        per_sample = statistics.median(cpu)
        return {
            "tasks": tasks,
            "instances": instances,
            "instance_type": instance_type,
            "samples": samples,
            "cpu_ms_per_sample": round(per_sample * 1000, 2),
            "wall_ms_per_sample": round(statistics.median(wall) * 1000, 2),
            "task_usage_cpu_ms_per_sample": round(statistics.median(usage_cpu) * 1000, 2),
            "first_sample_cpu_ms": round(first_cpu * 1000, 2),
            "metrics_cost_pct_core_50_tasks": round(per_sample / SAMPLE_PERIOD_S * 100 * 50 / tasks, 4),
        }
    finally:
        follower.cancel()
        with contextlib.suppress(BaseException):
            await follower
        # The in-memory store stays open: task starts still in flight write to it as the instances go.


async def run(args: argparse.Namespace, owner: str, state_dir: Path) -> dict:
    runtime = DockerRuntime(state_dir=state_dir, owner=owner)
    try:
        return await measure(runtime, args.tasks, args.instances, args.instance_type, args.samples)
    finally:
        log("removing the bench's instances ...")
        await asyncio.gather(*(runtime.terminate_instance(i, stop_timeout_s=2) for i in list(runtime.instances)),
                             return_exceptions=True)
        await runtime.close()


def remove_leftovers(owner: str) -> None:
    """Last resort (an interrupted run): every container and volume with this run's owner label."""
    import docker
    client = docker.from_env(timeout=60)
    label = f"{LABEL_OWNER}={owner}"
    for container in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": label}):
        with contextlib.suppress(Exception):
            volume.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--instance-type", default="t3.large")
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_sigterm)

    ensure_images(progress=log)
    owner = f"benchmetrics{uuid.uuid4().hex[:6]}"
    result = None
    try:
        with tempfile.TemporaryDirectory(prefix="ecsemu-bench-metrics-") as state:
            result = asyncio.run(run(args, owner, Path(state)))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        remove_leftovers(owner)
    if result is None:
        sys.exit(1)
    for key, value in result.items():
        print(f"{key:32} {value}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
