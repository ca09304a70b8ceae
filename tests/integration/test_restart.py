"""Kill the emulator with tasks running, start it again: the same tasks, no orphans, no duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.clock import RealClock
from emulator.control.agent import ClusterAgent
from emulator.control.recovery import recover
from emulator.model.state import StateStore
from emulator.model.task import RUNNING
from tests.conftest import TEST_OWNER

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def start_child(state_dir: Path, ready: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tests.integration.emulator_child", str(state_dir), TEST_OWNER,
                             str(ready)], cwd=REPO, env=env)


def wait_ready(child: subprocess.Popen, ready: Path, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        assert child.poll() is None, f"the emulator process exited early ({child.returncode})"
        assert time.monotonic() < deadline, "the emulator process never got its tasks RUNNING"
        time.sleep(0.2)
    return json.loads(ready.read_text())


async def test_killed_emulator_restarts_with_the_same_tasks(built_images, tmp_path, make_docker_runtime):
    ready = tmp_path / "ready.json"
    child = start_child(tmp_path, ready)
    try:
        before = wait_ready(child, ready)
    finally:
        child.send_signal(signal.SIGKILL)  # no clean shutdown: the emulator just dies
        child.wait(timeout=30)

    store = StateStore(str(tmp_path / "state.db"))
    async with make_docker_runtime(state_dir=tmp_path) as runtime:
        agent = ClusterAgent(store, runtime, RealClock())
        counts = await recover(agent)

        instances = await runtime.list_instances()
        live = sorted(t.task_id for t in await runtime.list_tasks(before["ec2InstanceId"]))
        assert [i.ec2_instance_id for i in instances] == [before["ec2InstanceId"]]  # no orphan, no duplicate
        assert live == before["taskIds"]                                              # same tasks, once each
        assert counts["instances_adopted"] == 1 and counts["tasks_adopted"] == 2
        stored = [t for t in store.list("task") if t.task_id in before["taskIds"]]
        assert [t.last_status for t in stored] == [RUNNING, RUNNING]
        for ci in store.list("container_instance"):
            await agent.terminate_instance(ci.container_instance_arn)
    store.close()
