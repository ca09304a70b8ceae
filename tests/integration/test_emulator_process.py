"""The whole emulator on real Docker: the default stack comes up, boto3 sees it, a task answers, and
everything goes away again."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import boto3
from botocore.config import Config
import pytest

from emulator.app import Emulator
from emulator.clock import RealClock
from emulator.runtime.docker_runtime import DockerRuntime
from emulator.scenario import load_default_stack
from tests.conftest import TEST_OWNER

pytestmark = [pytest.mark.docker]
TIME_SCALE = 10  # the health check's 30 s interval and the 40 s steady wait play 10x faster


def ecs(port: int):
    return boto3.client("ecs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(read_timeout=10, retries={"max_attempts": 2}))


async def eventually(check, timeout_s: float = 120):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "never reached"
        await asyncio.sleep(0.5)


async def test_default_stack_on_real_docker_reaches_steady_state(built_images, tmp_path):
    runtime = DockerRuntime(state_dir=tmp_path, owner=TEST_OWNER)
    emulator = Emulator(load_default_stack(), state_dir=tmp_path, runtime=runtime, clock=RealClock(TIME_SCALE),
                        api_port=0)
    await emulator.start()
    try:
        def steady():
            client = ecs(emulator.api_port)
            svc = client.describe_services(cluster="production-cluster", services=["web-app-service"])["services"][0]
            return svc if svc["deployments"][0]["rolloutState"] == "COMPLETED" else None

        svc = await eventually(steady)
        assert svc["runningCount"] == 4 and svc["events"][0]["message"].endswith("has reached a steady state.")
        client = ecs(emulator.api_port)
        tasks = await asyncio.to_thread(lambda: client.describe_tasks(
            cluster="production-cluster", tasks=client.list_tasks(cluster="production-cluster")["taskArns"])["tasks"])
        assert {t["healthStatus"] for t in tasks} == {"HEALTHY"}
        task = tasks[0]
        ci = emulator.store.get("container_instance", task["containerInstanceArn"])
        address = runtime.instances[ci.ec2_instance_id].address
        port = task["containers"][0]["networkBindings"][0]["hostPort"]
        body = json.loads(await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://{address}:{port}/", timeout=10).read()))
        assert body["taskId"] == task["taskArn"].rsplit("/", 1)[-1]
    finally:
        await emulator.stop(terminate=True)
    assert await DockerRuntime(state_dir=tmp_path, owner=TEST_OWNER).list_instances() == []
