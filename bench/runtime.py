"""Runtime speed: how fast instances come up and tasks start on the real Docker daemon.

Prints, with medians of several runs:
  instance_ready_s            launch -> the instance's Docker daemon answers (it registers then)
  first_task_on_new_instance_s RunTask -> RUNNING when the image is not yet on the instance (loaded from the host)
  task_running_s              RunTask -> RUNNING with the image already on the instance
  idle_instance_rss_mib       anonymous memory of an idle instance (dockerd + containerd), from its memory cgroup
  kill_to_event_s             a task container killed from outside -> its exit event (target: within a second)

    python bench/runtime.py [--json] [--instances N] [--tasks N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.model.instance_types import get_instance_type  # noqa: E402
from emulator.runtime.base import ContainerSpec, InstanceSpec, PortMappingSpec, TaskSpec  # noqa: E402
from emulator.runtime.docker_runtime import DockerRuntime  # noqa: E402
from emulator.runtime.images import ensure_images  # noqa: E402

APP = ContainerSpec("web", "web-app:v1", cpu_shares=256, memory_mib=256,
                    port_mappings=(PortMappingSpec(8080, 0),), stop_timeout_s=2)


def task(ec2_instance_id: str) -> TaskSpec:
    task_id = uuid.uuid4().hex
    return TaskSpec("bench", task_id, f"arn:aws:ecs:us-east-1:123456789012:task/bench/{task_id}",
                    ec2_instance_id, (APP,))


async def time_to_running(runtime: DockerRuntime, events, spec: TaskSpec) -> float:
    start = time.perf_counter()
    await runtime.run_task(spec)
    while True:
        event = await asyncio.wait_for(events.__anext__(), timeout=120)
        if event.task_id == spec.task_id and event.container and event.container.state == "running":
            return time.perf_counter() - start


async def time_to_exit_event(runtime: DockerRuntime, events, ec2_instance_id: str, task_id: str) -> float:
    inner = runtime.instances[ec2_instance_id].inner
    (container,) = await asyncio.to_thread(
        inner.containers.list, filters={"label": f"io.ecsemu.task-id={task_id}"})
    start = time.perf_counter()
    await asyncio.to_thread(container.kill)
    while True:
        event = await asyncio.wait_for(events.__anext__(), timeout=30)
        if event.task_id == task_id and event.container and event.container.state == "exited":
            return time.perf_counter() - start


def idle_rss_mib(runtime: DockerRuntime, ec2_instance_id: str) -> float | None:
    """total_rss of the instance's memory cgroup (cgroup v1), or None where that file isn't there."""
    container_id = runtime.instances[ec2_instance_id].container_id
    stat = Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.stat")
    if not stat.exists():
        return None
    values = dict(line.split() for line in stat.read_text().splitlines())
    return int(values["total_rss"]) / 2**20


async def measure(instances: int, tasks: int) -> dict:
    ensure_images(progress=lambda line: print(line, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="ecsemu-bench-") as state:
        runtime = DockerRuntime(state_dir=Path(state), owner=f"bench{uuid.uuid4().hex[:6]}")
        events = runtime.events()
        ready, first, warm, rss, kills = [], [], [], [], []
        try:
            for i in range(instances):
                spec = InstanceSpec("bench", f"i-{uuid.uuid4().hex[:17]}", get_instance_type("t3.medium"),
                                    "us-east-1a")
                start = time.perf_counter()
                await runtime.launch_instance(spec)
                ready.append(time.perf_counter() - start)
                await asyncio.sleep(3)  # let the fresh daemon settle before reading its memory
                rss.append(idle_rss_mib(runtime, spec.ec2_instance_id))
                first.append(await time_to_running(runtime, events, task(spec.ec2_instance_id)))
                for _ in range(tasks):
                    warm_task = task(spec.ec2_instance_id)
                    warm.append(await time_to_running(runtime, events, warm_task))
                kills.append(await time_to_exit_event(runtime, events, spec.ec2_instance_id, warm_task.task_id))
                print(f"instance {i + 1}: ready {ready[-1]:.2f} s, idle rss {rss[-1]} MiB, first task "
                      f"{first[-1]:.2f} s, warm tasks {', '.join(f'{w:.2f}' for w in warm[-tasks:])} s",
                      file=sys.stderr)
        finally:
            for ec2_id in list(runtime.instances):
                await runtime.terminate_instance(ec2_id, stop_timeout_s=2)
            await runtime.close()
    rss_known = [r for r in rss if r is not None]
    return {
        "instance_ready_s": round(statistics.median(ready), 2),
        "task_running_s": round(statistics.median(warm), 2),
        "first_task_on_new_instance_s": round(statistics.median(first), 2),
        "idle_instance_rss_mib": round(statistics.median(rss_known), 1) if rss_known else None,
        "kill_to_event_s": round(statistics.median(kills), 3),
        "instances": instances, "warm_tasks_per_instance": tasks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=3, help="warm tasks per instance")
    args = parser.parse_args()
    result = asyncio.run(measure(args.instances, args.tasks))
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
