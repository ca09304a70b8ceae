"""Deployments behind the ALB on real Docker, under a steady load: nobody sees an error.

A service of 4 tasks of the sample app sits behind the stack's ALB. A
bounded load generator sends 100 requests/s to the listener for the whole of
each story and records every status code and which version answered:

- blue/green (maximumPercent 200, minimumHealthyPercent 100) and rolling
  (100 / 50) deployments from v1 to v2: zero non-2xx, zero connection
  errors, only v2 after the deployment completes, the old tasks gone;
- a deployment whose tasks start unhealthy trips the circuit breaker and
  rolls back, with v1 answering throughout and the events telling it;
- a task container killed from outside: its target leaves the group within
  a second, the service replaces the task, and the failed requests are no
  more than that window allows (the ALB answers 502 for them; it does not retry).
"""

from __future__ import annotations

import asyncio
import socket
import time

import boto3
import pytest
import yaml
from botocore.config import Config

from emulator.alb import balancer as b
from emulator.app import Emulator
from emulator.clock import RealClock
from emulator.loadgen import BackgroundLoad, LoadSpec
from emulator.model.task import STOPPED
from emulator.runtime.docker_runtime import DockerRuntime
from emulator.runtime.images import build_app_image
from emulator.scenario import parse_stack
from tests.conftest import TEST_OWNER

pytestmark = [pytest.mark.docker]

TIME_SCALE = 10   # 10 s health check intervals are 1 s; the 30 s deregistration delay is 3 s
RATE = 100        # requests per second, for the whole of each story
CLUSTER, SERVICE = "production-cluster", "web-app-service"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_text(port: int, *, maximum: int, minimum: int) -> str:
    """The default stack, smaller: 3 instances, 4 tasks of 512 units / 512 MiB, the ALB on `port`."""
    return yaml.safe_dump({
        "settings": {"timeScale": TIME_SCALE, "region": "us-east-1",
                     "instanceResourceScale": {"cpu": 0.25, "memory": 0.25}},
        "cluster": {"clusterName": CLUSTER},
        "autoScalingGroups": [{"AutoScalingGroupName": "ecs-instance-asg",
                               "LaunchTemplate": {"LaunchTemplateName": "t", "InstanceType": "t3.medium"},
                               "MinSize": 3, "MaxSize": 3, "DesiredCapacity": 3,
                               "AvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}],
        "taskDefinitions": [{
            "family": "web-app", "networkMode": "bridge",
            "containerDefinitions": [{
                "name": "web-app", "image": "web-app:v1", "cpu": 512, "memory": 512, "essential": True,
                "portMappings": [{"containerPort": 8080, "hostPort": 0}],
                "healthCheck": {"command": ["CMD", "python", "-c", "import urllib.request as u; "
                                            "u.urlopen('http://localhost:8080/health', timeout=3)"],
                                "interval": 10, "timeout": 5, "retries": 2, "startPeriod": 10},
                "stopTimeout": 10}]}],
        "targetGroups": [{"Name": "web-tg", "Protocol": "HTTP", "Port": 8080, "TargetType": "instance",
                          "HealthCheckPath": "/health", "HealthCheckIntervalSeconds": 10,
                          "HealthCheckTimeoutSeconds": 5, "HealthyThresholdCount": 2,
                          "UnhealthyThresholdCount": 2,
                          "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]}],
        "loadBalancers": [{"name": "web-alb", "host": "127.0.0.1",
                           "listeners": [{"port": port, "protocol": "HTTP", "targetGroup": "web-tg"}]}],
        "services": [{"serviceName": SERVICE, "taskDefinition": "web-app", "desiredCount": 4,
                      "deploymentConfiguration": {
                          "maximumPercent": maximum, "minimumHealthyPercent": minimum,
                          "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
                      "loadBalancers": [{"targetGroupName": "web-tg", "containerName": "web-app",
                                         "containerPort": 8080}],
                      "healthCheckGracePeriodSeconds": 60}],
    })


class Story:
    """One emulator on real Docker, its API through boto3, its ALB on a free port."""

    def __init__(self, emulator: Emulator, runtime: DockerRuntime, port: int):
        self.emulator, self.runtime, self.port = emulator, runtime, port
        self.ecs = boto3.client("ecs", endpoint_url=f"http://127.0.0.1:{emulator.api_port}", region_name="us-east-1",
                                aws_access_key_id="x", aws_secret_access_key="x",
                                config=Config(read_timeout=15, retries={"max_attempts": 2}))

    async def call(self, fn, **kwargs):
        return await asyncio.to_thread(fn, **kwargs)

    async def service(self) -> dict:
        return (await self.call(self.ecs.describe_services, cluster=CLUSTER, services=[SERVICE]))["services"][0]

    async def wait_completed(self, timeout_s: float = 150) -> dict:
        """The service's only deployment is COMPLETED, with desired tasks all healthy targets."""
        deadline = time.monotonic() + timeout_s
        while True:
            svc = await self.service()
            deployments = svc["deployments"]
            if len(deployments) == 1 and deployments[0]["rolloutState"] == "COMPLETED" and \
                    svc["runningCount"] == svc["desiredCount"] and self.healthy_targets() == svc["desiredCount"]:
                return svc
            assert time.monotonic() < deadline, f"no steady state: {deployments}, events {svc['events'][:5]}"
            await asyncio.sleep(0.25)

    def healthy_targets(self) -> int:
        return self.group().counts()["HealthyHostCount"]

    def group(self):
        (runtime,) = self.emulator.alb.runtimes.values()
        return runtime

    async def register(self, image: str, **env: str) -> str:
        container = {"name": "web-app", "image": image, "cpu": 512, "memory": 512, "essential": True,
                     "portMappings": [{"containerPort": 8080, "hostPort": 0}],
                     "environment": [{"name": k, "value": v} for k, v in env.items()],
                     "healthCheck": {"command": ["CMD", "python", "-c", "import urllib.request as u; "
                                                 "u.urlopen('http://localhost:8080/health', timeout=3)"],
                                     "interval": 10, "timeout": 5, "retries": 2, "startPeriod": 10},
                     "stopTimeout": 10}
        td = await self.call(self.ecs.register_task_definition, family="web-app", networkMode="bridge",
                             containerDefinitions=[container])
        return td["taskDefinition"]["taskDefinitionArn"]

    def load(self) -> BackgroundLoad:
        return BackgroundLoad(LoadSpec(f"http://127.0.0.1:{self.port}/", rate=RATE, duration_s=600,
                                       concurrency=50, timeout_s=10, body_field="version")).start()

    def live_tasks(self) -> list:
        return [t for t in self.emulator.store.list("task") if t.last_status != STOPPED]


def show_timeline(report, journal, started_at: float) -> None:
    """Failed requests and the emulator's events on one time line (seconds since the load began)."""
    print(report.summary())
    lines = [(s.sent_at, f"request {s.status or s.error} after {s.latency_s * 1000:.0f} ms")
             for s in report.samples if s.status is None or s.status >= 300]
    lines += [(e.wall_time - started_at, f"{e.kind}: {e.message[:160]}") for e in journal
              if e.wall_time >= started_at]
    for at, text in sorted(lines):
        print(f"{at:8.3f}  {text}")


@pytest.fixture(scope="module")
def v2_image(built_images):
    build_app_image("web-app:v2", "v2", progress=lambda *_: None)
    return "web-app:v2"


async def start_story(tmp_path, *, maximum: int, minimum: int) -> Story:
    port = free_port()
    runtime = DockerRuntime(state_dir=tmp_path, owner=TEST_OWNER)
    emulator = Emulator(parse_stack(stack_text(port, maximum=maximum, minimum=minimum)), state_dir=tmp_path,
                        runtime=runtime, clock=RealClock(TIME_SCALE), api_port=0)
    await emulator.start()
    story = Story(emulator, runtime, port)
    await story.wait_completed()
    return story


@pytest.mark.parametrize("maximum,minimum", [(200, 100), (100, 50)], ids=["blue-green", "rolling"])
async def test_a_deployment_under_load_answers_every_request(v2_image, tmp_path, maximum, minimum):
    story = await start_story(tmp_path, maximum=maximum, minimum=minimum)
    try:
        old = {t.task_arn for t in story.live_tasks()}
        load = story.load()
        load_started = time.time()
        await asyncio.sleep(1)  # v1 answering under load before the deployment
        v2 = await story.register(v2_image, APP_VERSION="v2")
        await story.call(story.ecs.update_service, cluster=CLUSTER, service=SERVICE, taskDefinition=v2)
        svc = await story.wait_completed()
        completed_at = load.elapsed()
        await asyncio.sleep(2)  # and v2 alone after it
        report = await asyncio.to_thread(load.finish)
        journal = story.emulator.store.events()
    finally:
        await story.emulator.stop(terminate=True)

    summary = report.summary()
    show_timeline(report, journal, load_started)  # shown by pytest only when an assertion fails
    assert report.total >= RATE * 3 and report.rps >= RATE * 0.9, summary
    assert report.non_2xx == 0 and not report.errors, summary
    assert report.values_after(0).keys() >= {"v1", "v2"}, summary  # the switch happened under load
    assert set(report.values_after(completed_at)) == {"v2"}, summary
    assert svc["taskDefinition"] == v2 and svc["runningCount"] == 4
    assert not old & {t.task_arn for t in story.live_tasks()}  # the old tasks are gone
    messages = [e["message"] for e in svc["events"]]
    assert any("has begun draining connections on 1 tasks." in m for m in messages)
    assert any("registered 1 targets in (target-group " in m for m in messages)


async def test_new_tasks_failing_health_checks_roll_back_while_v1_answers(built_images, tmp_path):
    story = await start_story(tmp_path, maximum=200, minimum=100)
    try:
        v1 = (await story.service())["taskDefinition"]
        load = story.load()
        load_started = time.time()
        broken = await story.register("web-app:v1", APP_VERSION="v1-broken", START_UNHEALTHY="1")
        await story.call(story.ecs.update_service, cluster=CLUSTER, service=SERVICE, taskDefinition=broken)
        deadline = time.monotonic() + 150
        while True:
            svc = await story.service()
            failed = [d for d in svc["deployments"] if d["rolloutState"] == "FAILED"]
            if failed and svc["deployments"][0]["taskDefinition"] == v1:
                break
            assert time.monotonic() < deadline, svc["events"][:8]
            await asyncio.sleep(0.25)
        svc = await story.wait_completed()
        report = await asyncio.to_thread(load.finish)
        journal = story.emulator.store.events()
    finally:
        await story.emulator.stop(terminate=True)
    show_timeline(report, journal, load_started)
    summary = report.summary()
    assert report.non_2xx == 0 and not report.errors, summary
    assert set(report.values_after(0)) == {"v1"}, summary  # the broken tasks never got a request
    assert svc["taskDefinition"] == v1
    messages = [e["message"] for e in svc["events"]]
    assert any("deployment failed" in m for m in messages)
    assert any("rolling back to deployment" in m for m in messages)
    assert any("Task failed ELB health checks" in (t.stopped_reason or "") or
               "container health checks" in (t.stopped_reason or "")
               for t in story.emulator.store.list("task") if t.last_status == STOPPED)


async def test_a_killed_task_leaves_the_target_group_within_a_second_and_is_replaced(built_images, tmp_path):
    story = await start_story(tmp_path, maximum=200, minimum=100)
    try:
        load = story.load()
        load_started = time.time()
        await asyncio.sleep(1)
        victim = story.live_tasks()[0]
        ci = story.emulator.store.get("container_instance", victim.container_instance_arn)
        (service,) = story.emulator.store.list("service")
        (binding,) = story.emulator.load_balancing.bindings_for(service, victim)
        target_id = binding.target.target_id
        inner = story.runtime.instances[ci.ec2_instance_id].inner
        await asyncio.to_thread(inner.containers.get(victim.containers[0].runtime_id).kill)
        killed_at = time.monotonic()  # SIGKILL delivered: the container is dead
        while True:
            ts = story.group().targets.get(target_id)
            if ts is None or ts.state == b.DRAINING:
                left_after = time.monotonic() - killed_at
                break
            assert time.monotonic() - killed_at < 5, "the dead task's target stayed in the group"
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)
        svc = await story.wait_completed()
        report = await asyncio.to_thread(load.finish)
        journal = story.emulator.store.events()
    finally:
        await story.emulator.stop(terminate=True)
    show_timeline(report, journal, load_started)

    assert left_after < 1.0
    # Requests that reached the dead target before it left: at most the window's share of the load
    # (one in four targets, RATE/s) plus those in flight on it when it died.
    failed = report.non_2xx
    assert failed <= RATE * left_after / 4 + 10, report.summary()
    assert set(report.statuses) <= {200, 502}, report.summary()
    assert svc["runningCount"] == 4 and victim.task_arn not in {t.task_arn for t in story.live_tasks()}
