"""The API test harness: the endpoint served in-process on 127.0.0.1, driven by real clients.

`Endpoint` runs `make_app` on an ephemeral port, over a FakeRuntime-backed
agent with a couple of launched instances. boto3 is synchronous, so its
calls run in a worker thread (`asyncio.to_thread`) while this test's loop
keeps serving; the `aws` CLI runs as a subprocess. `state()` captures every
stored object and the journal position, so a refused call can be shown to
have changed nothing. The other `test_api_*` modules import from here.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from emulator.api import Backend, make_app
from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.registry import ensure_cluster
from emulator.model.state import StateStore, codec_for
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"
REGION = "us-east-1"
KINDS = ("cluster", "container_instance", "task_definition", "task", "service")


def web_app(image: str = "web-app:v1", *, cpu: int = 512, memory: int = 512, family: str = "web-app",
            host_port: int = 0) -> dict[str, Any]:
    """RegisterTaskDefinition's input for the sample web app."""
    return {"family": family, "containerDefinitions": [{
        "name": "web-app", "image": image, "cpu": cpu, "memory": memory, "essential": True,
        "portMappings": [{"containerPort": 8080, "hostPort": host_port}],
        "environment": [{"name": "APP_VERSION", "value": "v1"}]}]}


def state(store: StateStore) -> dict[str, Any]:
    """Every stored object as its serialized body, and the journal position."""
    return {"last_seq": store.last_seq,
            **{kind: {key: json.dumps(codec_for(kind).dump(store.get(kind, key)), sort_keys=True)
                      for key in store.keys(kind)} for kind in KINDS}}


class Endpoint:
    def __init__(self, *, max_body_bytes: int = 1024 * 1024) -> None:
        self.clock = FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.runtime = FakeRuntime(rng=random.Random(1))
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, rng=random.Random(2))
        self.backend = Backend(self.store, self.clock, self.agent, REGION, random.Random(3))
        self.app = make_app(self.backend, max_body_bytes=max_body_bytes)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.instances: list = []
        self._ecs = None

    async def start(self, instances: int = 2) -> Endpoint:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        ensure_cluster(self.store, CLUSTER)
        for i in range(instances):
            self.instances.append(await self.agent.launch_instance(
                CLUSTER, "t3.medium", ("us-east-1a", "us-east-1b", "us-east-1c")[i % 3]))
        return self

    async def stop(self) -> None:
        await self.agent.settle()
        if self.runner:
            await self.runner.cleanup()
        await self.runtime.close()
        self.store.close()

    @property
    def ecs(self):
        if self._ecs is None:
            self._ecs = boto3.client(
                "ecs", endpoint_url=self.url, region_name=REGION, aws_access_key_id="x",
                aws_secret_access_key="x",
                config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=30))
        return self._ecs

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One boto3 call (snake_case operation name), in a thread so this loop keeps serving."""
        response = await asyncio.to_thread(getattr(self.ecs, operation), **params)
        response.pop("ResponseMetadata", None)
        return response

    async def error(self, operation: str, **params: Any) -> tuple[str, str]:
        """(code, message) of a call that must fail."""
        with pytest.raises(ClientError) as caught:
            await self.call(operation, **params)
        error = caught.value.response["Error"]
        return error["Code"], error["Message"]

    async def pump(self) -> None:
        """Let task starts finish and apply the runtime's events, until quiet."""
        for _ in range(20):
            await self.agent.settle()
            events = self.runtime.drain_events()
            if not events and not self.agent._background:
                return
            for event in events:
                await self.agent.handle_event(event)

    def state(self) -> dict[str, Any]:
        return state(self.store)

    async def aws(self, *args: str, expect_ok: bool = True) -> tuple[int, Any, str]:
        """Run the `aws` CLI (v1) against the endpoint: (exit code, parsed JSON stdout or None, stderr)."""
        exe = shutil.which("aws")
        command = [exe] if exe else [sys.executable, "-m", "awscli"]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION,
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "AWS_MAX_ATTEMPTS": "1", "AWS_PAGER": ""}
        proc = await asyncio.create_subprocess_exec(
            *command, *args, "--endpoint-url", self.url, "--output", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        text = out.decode()
        parsed = json.loads(text) if text.strip() else None
        if expect_ok:
            assert proc.returncode == 0, err.decode()
        return proc.returncode, parsed, err.decode()


@pytest.fixture
async def endpoint():
    ep = await Endpoint().start()
    try:
        yield ep
    finally:
        await ep.stop()


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return f"file://{path}"


async def test_the_endpoint_serves_and_its_instances_are_registered(endpoint):
    listed = await endpoint.call("list_container_instances", cluster=CLUSTER)
    assert sorted(listed["containerInstanceArns"]) == sorted(ci.container_instance_arn for ci in endpoint.instances)


async def test_state_capture_sees_every_change(endpoint):
    before = endpoint.state()
    await endpoint.call("create_cluster", clusterName="another")
    assert endpoint.state() != before
