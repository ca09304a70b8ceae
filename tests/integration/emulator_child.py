"""A stand-in emulator process for the kill-and-restart test: runs tasks, says so, waits to be killed.

    python -m tests.integration.emulator_child STATE_DIR OWNER READY_FILE
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from emulator.clock import RealClock
from emulator.control.agent import ClusterAgent
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.model.state import StateStore
from emulator.model.task import RUNNING
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.docker_runtime import DockerRuntime

CLUSTER = "restart-cluster"
LIFETIME_S = 180  # bounded: the test kills it long before


async def main(state_dir: Path, owner: str, ready_file: Path) -> None:
    store = StateStore(str(state_dir / "state.db"))
    runtime = DockerRuntime(state_dir=state_dir, owner=owner)
    agent = ClusterAgent(store, runtime, RealClock(), logs_dir=state_dir / "logs")
    ensure_cluster(store, CLUSTER)
    register_task_definition(store, parse_task_definition({"family": "web", "containerDefinitions": [
        {"name": "web", "image": "web-app:v1", "cpu": 256, "memory": 256, "stopTimeout": 2,
         "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}), 0.0)
    asyncio.get_running_loop().create_task(agent.follow_events())
    ci = await agent.launch_instance(CLUSTER, "t3.small", "us-east-1a")
    tasks, _ = await agent.run_task(CLUSTER, "web", 2)
    for _ in range(1200):
        if all(store.get("task", t.task_arn).last_status == RUNNING for t in tasks):
            break
        await asyncio.sleep(0.05)
    ready_file.write_text(json.dumps({"ec2InstanceId": ci.ec2_instance_id,
                                      "taskIds": sorted(t.task_id for t in tasks)}))
    await asyncio.sleep(LIFETIME_S)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
