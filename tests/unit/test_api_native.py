"""The native API (/ecsemu/v1/) over aiohttp's test client: events and their long poll, target health, logs,
the time scale, stack files and the summary, on a FakeRuntime backend with a fake clock."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp.test_utils import TestClient, TestServer

from emulator.alb.balancer import CheckResult, Target
from emulator.alb.service import AlbService
from emulator.api import Backend, make_app
from emulator.api.native import MAX_STACK_BODY_BYTES, add_native_routes
from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.control.service_scheduler import ServiceScheduler
from emulator.control.services import create_service
from emulator.model.events import SERVICE_EVENT, TASK_STATE_CHANGE, Event
from emulator.model.elb import TargetGroup
from emulator.model.service_request import parse_create_service
from emulator.model.state import StateStore
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import FakeRuntime
from emulator.scenario import default_stack_path

CLUSTER = "production-cluster"
REGION = "us-east-1"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-tg/0123456789abcdef"


def web_app(image: str = "web-app:v1") -> dict:
    return {"family": "web-app", "containerDefinitions": [{
        "name": "web-app", "image": image, "cpu": 512, "memory": 512, "essential": True,
        "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web-app", "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"}}}]}


class World:
    """A backend like test_api_harness's, served with the native routes through aiohttp's test client."""

    def __init__(self, *, alb: AlbService | None = None, apply_stack=None) -> None:
        self.clock = FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.runtime = FakeRuntime(rng=random.Random(1))
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, rng=random.Random(2))
        self.backend = Backend(self.store, self.clock, self.agent, REGION, random.Random(3), alb=alb)
        self.scheduler = ServiceScheduler(self.store, self.agent, self.clock, rng=random.Random(4))
        app = make_app(self.backend)
        add_native_routes(app, self.backend, apply_stack=apply_stack)
        self.client = TestClient(TestServer(app))
        self.instances: list = []

    async def start(self, instances: int = 2) -> World:
        await self.client.start_server()
        ensure_cluster(self.store, CLUSTER)
        for i in range(instances):
            self.instances.append(await self.agent.launch_instance(CLUSTER, "t3.medium",
                                                                   ("us-east-1a", "us-east-1b")[i % 2]))
        return self

    async def close(self) -> None:
        await self.agent.settle()
        await self.client.close()
        await self.runtime.close()
        self.store.close()

    async def pump(self) -> None:
        for _ in range(20):
            await self.agent.settle()
            events = self.runtime.drain_events()
            if not events and not self.agent._background:
                return
            for event in events:
                await self.agent.handle_event(event)

    async def get(self, path: str, status: int = 200, **query):
        response = await self.client.get(f"/ecsemu/v1/{path}", params={k: str(v) for k, v in query.items()})
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()

    def record(self, kind: str, resource: str, message: str) -> Event:
        with self.store.transaction() as tx:
            return tx.record(Event(kind, resource, message, detail={"n": message}))


@pytest.fixture
async def world():
    w = await World().start()
    try:
        yield w
    finally:
        await w.close()


async def make_world(**kwargs) -> World:
    return await World(**kwargs).start()


# --- events ----------------------------------------------------------------------------------


async def test_events_are_the_journal_after_since_filtered_by_kind_resource_and_limit(world):
    start = world.store.last_seq
    world.record(SERVICE_EVENT, "svc-a", "a1")
    world.record(TASK_STATE_CHANGE, "task-1", "t1")
    world.record(SERVICE_EVENT, "svc-b", "b1")
    world.record(SERVICE_EVENT, "svc-a", "a2")

    everything = await world.get("events", since=start)
    assert [e["message"] for e in everything["events"]] == ["a1", "t1", "b1", "a2"]
    first = everything["events"][0]
    assert set(first) == {"seq", "kind", "resource", "awsTime", "wallTime", "message", "detail"}
    assert (first["seq"], first["kind"], first["resource"], first["detail"]) == (start + 1, SERVICE_EVENT, "svc-a",
                                                                                 {"n": "a1"})
    assert first["awsTime"] == world.clock.now()
    assert everything["nextSince"] == everything["lastSeq"] == world.store.last_seq

    services = await world.get("events", since=start, kinds=f"{SERVICE_EVENT},other")
    assert [e["message"] for e in services["events"]] == ["a1", "b1", "a2"]
    one = await world.get("events", since=start, resource="svc-a")
    assert [e["message"] for e in one["events"]] == ["a1", "a2"]

    page = await world.get("events", since=start, limit=2)
    assert [e["message"] for e in page["events"]] == ["a1", "t1"]
    rest = await world.get("events", since=page["nextSince"], limit=2)
    assert [e["message"] for e in rest["events"]] == ["b1", "a2"]

    none = await world.get("events", since=world.store.last_seq)
    assert none["events"] == [] and none["nextSince"] == world.store.last_seq


async def test_the_long_poll_returns_as_soon_as_a_matching_event_is_recorded(world):
    since = world.store.last_seq
    listeners = len(world.store._listeners)
    poll = asyncio.create_task(world.get("events", since=since, kinds=SERVICE_EVENT, wait=30))
    for _ in range(10_000):  # until the request is parked on the store's commit notices
        if len(world.store._listeners) > listeners:
            break
        await asyncio.sleep(0)
    assert len(world.store._listeners) == listeners + 1 and not poll.done()

    world.record(TASK_STATE_CHANGE, "task-1", "not this kind")
    for _ in range(100):  # the poll wakes, finds nothing of its kind, and waits on
        await asyncio.sleep(0)
    assert not poll.done() and len(world.store._listeners) == listeners + 1
    world.record(SERVICE_EVENT, "svc-a", "(service web) has reached a steady state.")
    answer = await asyncio.wait_for(poll, 10)
    assert [e["message"] for e in answer["events"]] == ["(service web) has reached a steady state."]
    assert answer["nextSince"] == world.store.last_seq
    assert len(world.store._listeners) == listeners  # the poll unsubscribed


async def test_a_long_poll_with_nothing_new_ends_empty_after_its_wait(world):
    answer = await world.get("events", since=world.store.last_seq, wait=0.05)
    assert answer["events"] == [] and answer["nextSince"] == world.store.last_seq


@pytest.mark.parametrize("query, message", [
    ({"since": "x"}, "since must be a whole number"),
    ({"since": -1}, "since must be at least 0"),
    ({"limit": 0}, "limit must be between 1 and 1000"),
    ({"wait": "soon"}, "wait must be a number of seconds"),
    ({"wait": -2}, "wait must be a number of seconds"),
])
async def test_bad_event_queries_are_invalid_parameters(world, query, message):
    error = await world.get("events", 400, **query)
    assert error["__type"] == "InvalidParameterException" and message in error["message"]


# --- target health ---------------------------------------------------------------------------------


async def test_target_health_lists_each_group_with_its_targets_tasks_and_host_counts():
    alb = AlbService(FakeClock(), health_checks=False)
    w = await make_world(alb=alb)
    try:
        runtime = alb.ensure_target_group(TargetGroup("web-tg", TG_ARN, port=8080, healthy_threshold_count=2))
        alb.ensure_target_group(TargetGroup("other-tg", TG_ARN.replace("web-tg", "other-tg")))
        task_arn = "arn:aws:ecs:us-east-1:000000000000:task/production-cluster/abc"
        runtime.register([Target("10.0.0.1", 49153, "i-0aaa", task_arn), Target("10.0.0.2", 49154, "i-0bbb")])
        for _ in range(2):
            runtime.record_health("10.0.0.1:49153", CheckResult.passed())
        for _ in range(2):
            runtime.record_health("10.0.0.2:49154", CheckResult(False, "Target.ResponseCodeMismatch", "502"))

        everything = await w.get("target-health")
        assert [g["TargetGroupName"] for g in everything["TargetGroups"]] == ["web-tg", "other-tg"]
        by_name = await w.get("target-health", targetGroup="web-tg")
        by_arn = await w.get("target-health", targetGroup=TG_ARN)
        assert by_name == by_arn
        [group] = by_name["TargetGroups"]
        assert (group["TargetGroupArn"], group["HealthyHostCount"], group["UnHealthyHostCount"]) == (TG_ARN, 1, 1)
        healthy, unhealthy = group["TargetHealthDescriptions"]
        assert healthy["Target"] == {"Id": "i-0aaa", "Port": 49153} and healthy["TaskArn"] == task_arn
        assert healthy["TargetHealth"]["State"] == "healthy"
        assert unhealthy["TargetHealth"]["State"] == "unhealthy" and "TaskArn" not in unhealthy

        error = await w.get("target-health", 400, targetGroup="nope")
        assert error == {"__type": "TargetGroupNotFound", "message": "One or more target groups not found: nope"}
    finally:
        await w.close()
        await alb.close()


async def test_without_an_alb_there_are_no_target_groups(world):
    assert await world.get("target-health") == {"TargetGroups": []}
    assert (await world.get("target-health", 400, targetGroup="web-tg"))["__type"] == "TargetGroupNotFound"


# --- logs -----------------------------------------------------------------------------------------


async def run_one_task(world: World):
    td = register_task_definition(world.store, parse_task_definition(web_app()), world.clock.now())
    [task], failures = await world.agent.run_task(CLUSTER, td.task_definition_arn)
    assert failures == []
    await world.pump()
    return task


async def test_logs_come_from_the_container_then_from_the_kept_log_stream(world):
    task = await run_one_task(world)
    ci = world.store.get("container_instance", task.container_instance_arn)
    world.runtime.write_log(ci.ec2_instance_id, task.task_id, "web-app", "GET / 200\nGET /health 200\nbye")

    live = await world.get("logs", task=task.task_id, tail=2)
    assert live["source"] == "runtime" and live["lines"] == ["GET /health 200", "bye"]
    assert (live["taskArn"], live["containerName"]) == (task.task_arn, "web-app")
    assert (live["logGroupName"], live["logStreamName"]) == ("/ecs/web-app", f"ecs/web-app/{task.task_id}")
    whole = await world.get("logs", task=task.task_arn, cluster=CLUSTER, container="web-app")
    assert len(whole["lines"]) == 4 and whole["lines"][0].startswith("[fake runtime]")

    await world.agent.stop_task(task.task_arn)
    await world.pump()
    assert task.task_id not in {t.task_id for t in await world.runtime.list_tasks(ci.ec2_instance_id)}
    kept = await world.get("logs", task=task.task_id, tail=1)
    assert kept["source"] == "logStore" and kept["lines"] == ["bye"]
    assert (await world.get("logs", task=task.task_id, tail=0))["lines"] == []


async def test_logs_of_an_unknown_task_container_or_cluster_are_refused(world):
    task = await run_one_task(world)
    error = await world.get("logs", 400, task="0123456789abcdef")
    assert error == {"__type": "InvalidParameterException", "message": "The referenced task was not found."}
    error = await world.get("logs", 400, task=task.task_id, container="sidecar")
    assert error["__type"] == "InvalidParameterException" and "its containers are: web-app" in error["message"]
    error = await world.get("logs", 400, task=task.task_id, cluster="ghost")
    assert error == {"__type": "ClusterNotFoundException", "message": "Cluster not found."}
    error = await world.get("logs", 400)
    assert "'task' is required" in error["message"]


# --- time --------------------------------------------------------------------------------------------


async def test_time_scale_is_read_and_changed_at_run_time(world):
    now = await world.get("time")
    assert now == {"timeScale": 1.0, "awsTime": world.clock.now(), "wallTime": world.clock.wall()}
    response = await world.client.put("/ecsemu/v1/time", json={"timeScale": 60})
    assert response.status == 200
    assert (await response.json())["timeScale"] == 60.0 and world.clock.time_scale == 60.0


@pytest.mark.parametrize("body, code", [
    ('{"timeScale": 0}', "InvalidParameterException"),
    ('{"timeScale": 1e9}', "InvalidParameterException"),
    ('{"timeScale": "fast"}', "InvalidParameterException"),
    ('{"timeScale": true}', "InvalidParameterException"),
    ("{}", "InvalidParameterException"),
    ("not json", "SerializationException"),
    ("[60]", "SerializationException"),
])
async def test_a_bad_time_scale_is_refused_and_the_clock_keeps_its_speed(world, body, code):
    response = await world.client.put("/ecsemu/v1/time", data=body)
    assert response.status == 400
    assert (await response.json())["__type"] == code
    assert world.clock.time_scale == 1.0


# --- stack ----------------------------------------------------------------------------------------------


async def test_a_posted_stack_is_parsed_and_handed_to_apply_stack():
    applied = []

    async def apply_stack(stack):
        applied.append(stack)
        return {"registeredTaskDefinitions": ["web-app:2"]}

    w = await make_world(apply_stack=apply_stack)
    try:
        text = default_stack_path().read_text(encoding="utf-8")
        response = await w.client.post("/ecsemu/v1/stack", data=text.encode(),
                                       headers={"Content-Type": "text/yaml"})
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert [s.cluster.cluster_name for s in applied] == ["production-cluster"]
        assert answer["stack"]["clusterName"] == "production-cluster"
        assert answer["stack"]["services"] == ["web-app-service"]
        assert answer["result"] == {"registeredTaskDefinitions": ["web-app:2"]}

        bad = "cluster:\n  clusterName: c\nservices:\n  - serviceName: s\n    desiredCount: 1\n    taskDefinition: nope\n"
        response = await w.client.post("/ecsemu/v1/stack", data=bad, params={"source": "my-stack.yaml"})
        error = await response.json()
        assert response.status == 400 and error["__type"] == "InvalidParameterException"
        assert error["message"].startswith("my-stack.yaml:6: services[0].taskDefinition")
        response = await w.client.post("/ecsemu/v1/stack", data="cluster: [unclosed")
        assert response.status == 400
        response = await w.client.post("/ecsemu/v1/stack", data=b"x" * (MAX_STACK_BODY_BYTES + 1))
        assert response.status == 413 and (await response.json())["__type"] == "RequestEntityTooLargeException"
        assert len(applied) == 1
    finally:
        await w.close()


async def test_a_stack_without_an_apply_stack_is_refused(world):
    text = default_stack_path().read_text(encoding="utf-8")
    response = await world.client.post("/ecsemu/v1/stack", data=text)
    assert response.status == 400
    assert (await response.json())["__type"] == "UnsupportedFeatureException"


# --- summary --------------------------------------------------------------------------------------------


async def test_the_summary_shows_instances_with_tasks_and_free_resources_and_services_with_deployments(world):
    td = register_task_definition(world.store, parse_task_definition(web_app()), world.clock.now())
    req = parse_create_service({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": "web-app",
                                "desiredCount": 2}, check_expression=None)
    create_service(world.store, world.clock, req, region=REGION, rng=random.Random(5))
    world.scheduler.reconcile_all()
    await world.pump()
    world.scheduler.reconcile_all()  # the next pass counts what started

    summary = await world.get("summary")
    [cluster] = summary["clusters"]
    assert cluster["clusterName"] == CLUSTER and summary["timeScale"] == 1.0
    instances = cluster["containerInstances"]
    assert len(instances) == 2
    assert sum(len(i["tasks"]) for i in instances) == 2
    for inst in instances:
        assert inst["instanceType"] == "t3.medium" and inst["registeredResources"] == {"cpu": 2048, "memory": 3584}
        used = len(inst["tasks"])
        assert inst["remainingResources"] == {"cpu": 2048 - 512 * used, "memory": 3584 - 512 * used}
        assert all(t["taskDefinition"] == td.family_revision and t["group"] == "service:web" for t in inst["tasks"])
    [service] = cluster["services"]
    assert (service["serviceName"], service["desiredCount"], service["runningCount"]) == ("web", 2, 2)
    [deployment] = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "IN_PROGRESS"

    assert (await world.get("summary", cluster=CLUSTER)) == summary
    assert (await world.get("summary", 400, cluster="ghost"))["__type"] == "ClusterNotFoundException"


# --- routing ----------------------------------------------------------------------------------------------


async def test_unknown_routes_and_methods_answer_in_json(world):
    assert (await world.get("nope", 404))["__type"] == "UnknownOperationException"
    response = await world.client.post("/ecsemu/v1/events")
    assert response.status == 405
    assert (await response.json())["__type"] == "MethodNotAllowedException"
