"""`ecsemu`'s views of a running emulator: the real API app (ECS's protocol and the native routes, over a
FakeRuntime backend) on an ephemeral port, and `cli.main` run in a worker thread as a person would run it."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import pytest
from aiohttp.test_utils import TestServer

from emulator import cli_views
from emulator.alb.balancer import CheckResult, Target
from emulator.alb.service import AlbService
from emulator.api import Backend, make_app
from emulator.api.native import add_native_routes
from emulator.cli import main
from emulator.cli_client import EmulatorClient
from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.control.service_scheduler import ServiceScheduler
from emulator.control.services import create_service
from emulator.model.arn import service_arn
from emulator.model.elb import TargetGroup
from emulator.model.events import SERVICE_EVENT, Event
from emulator.model.service_request import parse_create_service
from emulator.model.state import StateStore
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"
SERVICE = "web-app-service"
REGION = "us-east-1"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-tg/0123456789abcdef"


def web_app(image: str = "web-app:v1") -> dict:
    return {"family": "web-app", "containerDefinitions": [
        {"name": "web-app", "image": image, "cpu": 512, "memory": 512, "essential": True,
         "portMappings": [{"containerPort": 8080, "hostPort": 0}],
         "environment": [{"name": "APP_VERSION", "value": "v1"}, {"name": "LOG_LEVEL", "value": "info"}],
         "logConfiguration": {"logDriver": "awslogs", "options": {
             "awslogs-group": "/ecs/web-app", "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"}}},
        {"name": "sidecar", "image": "busybox:latest", "cpu": 0, "memory": 64, "essential": False}]}


class Emulator:
    """The emulator's API (ECS + native) on 127.0.0.1:<ephemeral>, a cluster of two t3.medium instances and a
    service of two tasks; the test drives the scheduler and the runtime's events by hand."""

    def __init__(self, alb: AlbService | None = None) -> None:
        self.clock = FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.runtime = FakeRuntime(rng=random.Random(1))
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, rng=random.Random(2))
        self.backend = Backend(self.store, self.clock, self.agent, REGION, random.Random(3), alb=alb)
        self.scheduler = ServiceScheduler(self.store, self.agent, self.clock, rng=random.Random(4))
        app = make_app(self.backend)
        add_native_routes(app, self.backend)
        self.server = TestServer(app, host="127.0.0.1")
        self.url = ""

    async def start(self) -> Emulator:
        await self.server.start_server()
        self.url = str(self.server.make_url("")).rstrip("/")
        ensure_cluster(self.store, CLUSTER)
        for zone in ("us-east-1a", "us-east-1b"):
            await self.agent.launch_instance(CLUSTER, "t3.medium", zone)
        register_task_definition(self.store, parse_task_definition(web_app()), self.clock.now())
        req = parse_create_service({"cluster": CLUSTER, "serviceName": SERVICE, "taskDefinition": "web-app",
                                    "desiredCount": 2}, check_expression=None)
        create_service(self.store, self.clock, req, region=REGION, rng=random.Random(5))
        await self.step()
        await self.step()
        return self

    async def close(self) -> None:
        await self.agent.settle()
        await self.server.close()
        await self.runtime.close()
        self.store.close()

    async def step(self, advance: float = 0) -> None:
        """One scheduler pass, the runtime's events applied, then `advance` AWS seconds."""
        self.scheduler.reconcile_all()
        for _ in range(20):
            await self.agent.settle()
            events = self.runtime.drain_events()
            if not events and not self.agent._background:
                break
            for event in events:
                await self.agent.handle_event(event)
        self.clock.tick(advance)

    @property
    def service(self):
        return self.store.get("service", service_arn(CLUSTER, SERVICE, region=REGION))

    def live_tasks(self) -> list:
        return sorted((t for t in self.store.list("task") if t.last_status != "STOPPED"), key=lambda t: t.task_id)

    async def until(self, predicate) -> None:
        """Wait (on the store's commit notices, not a timer) until `predicate()` holds."""
        changed = asyncio.Event()
        unsubscribe = self.store.subscribe(lambda notice: changed.set())
        try:
            while not predicate():
                changed.clear()
                await changed.wait()
        finally:
            unsubscribe()


@pytest.fixture
async def emulator():
    emu = await Emulator().start()
    try:
        yield emu
    finally:
        await emu.close()


async def ecsemu(capsys, emu: Emulator | None, *argv: str) -> tuple[int, str, str]:
    """`ecsemu ARGV --endpoint-url <the test endpoint>` in a worker thread, so this loop keeps serving."""
    args = [*argv, "--endpoint-url", emu.url] if emu is not None else list(argv)
    code = await asyncio.to_thread(main, args)
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


# --- reading views -------------------------------------------------------------------------------------


async def test_clusters_table_and_json(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "clusters")
    assert code == 0
    assert rows(out) == [["CLUSTER", "STATUS", "INSTANCES", "RUNNING", "TASKS", "PENDING", "TASKS", "SERVICES"],
                         [CLUSTER, "ACTIVE", "2", "2", "0", "1"]]
    code, out, _ = await ecsemu(capsys, emulator, "clusters", "--json")
    [cluster] = json.loads(out)
    assert (cluster["clusterName"], cluster["runningTasksCount"]) == (CLUSTER, 2)


async def test_instances_show_their_tasks_and_free_cpu_and_memory(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "instances")
    assert code == 0
    header, *body = rows(out)
    assert header[:4] == ["INSTANCE", "TYPE", "AZ", "STATUS"]
    by_task = {t.task_id: t for t in emulator.live_tasks()}
    for row in body:
        ec2_id, itype, az, status, running, cpu, memory, *task_ids = row
        ci = next(ci for ci in emulator.store.list("container_instance") if ci.ec2_instance_id == ec2_id)
        assert (itype, az, status) == ("t3.medium", ci.availability_zone, "ACTIVE")
        assert int(running) == len(task_ids) == 1
        assert (cpu, memory) == ("1536/2048", "3008/3584")  # 512 CPU and 576 MiB (with the sidecar) taken
        assert by_task[task_ids[0]].container_instance_arn == ci.container_instance_arn

    code, out, _ = await ecsemu(capsys, emulator, "instances", "--cluster", CLUSTER, "--json")
    data = json.loads(out)
    assert sorted(t for i in data for t in i["tasks"]) == sorted(by_task)
    assert data[0]["cpu"] == {"remaining": 1536, "registered": 2048}


async def test_services_show_counts_and_deployments(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "services")
    assert code == 0
    table = rows(out)
    assert table[1] == [SERVICE, "ACTIVE", "web-app:1", "2", "2", "0"]
    deployment = emulator.service.deployments[0]
    assert table[2][:2] == ["SERVICE", "DEPLOYMENT"] and table[2][-1] == "ROLLOUT"
    assert table[3] == [SERVICE, deployment.id, "PRIMARY", "web-app:1", "2", "2", "0", "0", "IN_PROGRESS"]
    code, out, _ = await ecsemu(capsys, emulator, "services", "--json")
    assert [s["serviceName"] for s in json.loads(out)] == [SERVICE]


async def test_tasks_show_definition_status_health_instance_and_host_port(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "tasks", "--service", SERVICE)
    assert code == 0
    header, *body = rows(out)
    assert header == ["TASK", "TASK", "DEFINITION", "LAST", "STATUS", "DESIRED", "HEALTH", "INSTANCE", "HOST", "PORT"]
    expected = []
    for task in emulator.live_tasks():
        ci = emulator.store.get("container_instance", task.container_instance_arn)
        [binding] = task.containers[0].network_bindings
        expected.append([task.task_id, "web-app:1", "RUNNING", "RUNNING", task.health_status, ci.ec2_instance_id,
                         str(binding.host_port)])
    assert sorted(body) == sorted(expected)

    code, out, _ = await ecsemu(capsys, emulator, "tasks", "--json")
    assert sorted(t["taskArn"] for t in json.loads(out)) == sorted(t.task_arn for t in emulator.live_tasks())
    code, out, _ = await ecsemu(capsys, emulator, "tasks", "--desired-status", "STOPPED")
    assert rows(out)[1:] == []


async def test_events_are_the_service_events_newest_last(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "events", "--service", SERVICE)
    assert code == 0
    messages = [line.split("  ", 1)[1] for line in out.splitlines()]
    newest_first = [e.message for e in emulator.service.events]
    assert messages == list(reversed(newest_first)) and messages
    code, out, _ = await ecsemu(capsys, emulator, "events", "--json")
    assert [e["message"] for e in json.loads(out)] == messages
    assert {e["serviceName"] for e in json.loads(out)} == {SERVICE}


async def test_events_follow_prints_new_events_as_they_are_recorded(emulator, capsys):
    listeners = len(emulator.store._listeners)
    run = asyncio.create_task(ecsemu(capsys, emulator, "events", "--service", SERVICE, "--follow", "--for", "1"))
    for _ in range(100_000):  # until the CLI's long poll is parked on the store
        if len(emulator.store._listeners) > listeners or run.done():
            break
        await asyncio.sleep(0)
    with emulator.store.transaction() as tx:
        tx.record(Event(SERVICE_EVENT, emulator.service.service_arn, f"(service {SERVICE}) has reached a steady "
                                                                       "state."))
        tx.record(Event(SERVICE_EVENT, service_arn("other-cluster", "x", region=REGION), "another cluster's"))
    code, out, _ = await asyncio.wait_for(run, 30)
    assert code == 0
    lines = out.splitlines()
    assert lines[-1].endswith(f"(service {SERVICE}) has reached a steady state.")
    assert len(lines) == len(emulator.service.events) + 1
    assert "another cluster's" not in out


async def test_targets_table_json_and_unknown_group(capsys):
    alb = AlbService(FakeClock(), health_checks=False)
    emu = await Emulator(alb=alb).start()
    try:
        runtime = alb.ensure_target_group(TargetGroup("web-tg", TG_ARN, port=8080, healthy_threshold_count=2))
        task = emu.live_tasks()[0]
        runtime.register([Target("10.0.0.1", 49153, "i-0aaa", task.task_arn), Target("10.0.0.2", 49154, "i-0bbb")])
        for _ in range(2):
            runtime.record_health("10.0.0.1:49153", CheckResult.passed())

        code, out, _ = await ecsemu(capsys, emu, "targets")
        assert code == 0
        table = rows(out)
        assert table[1] == ["web-tg", "i-0aaa", "49153", "healthy", "-", task.task_id]
        assert table[2][:4] == ["web-tg", "i-0bbb", "49154", "initial"]
        assert out.rstrip().endswith("web-tg: 1 healthy, 0 unhealthy")

        code, out, _ = await ecsemu(capsys, emu, "targets", "--target-group", "web-tg", "--json")
        [group] = json.loads(out)
        assert group["TargetGroupArn"] == TG_ARN and group["HealthyHostCount"] == 1

        code, _, err = await ecsemu(capsys, emu, "targets", "--target-group", "nope")
        assert code == 2 and err.strip() == "ecsemu: TargetGroupNotFound: One or more target groups not found: nope"
    finally:
        await emu.close()
        await alb.close()


async def test_targets_without_a_load_balancer(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "targets")
    assert code == 0 and "no target groups" in out


async def test_logs_print_a_container_output_with_tail(emulator, capsys):
    task = emulator.live_tasks()[0]
    ci = emulator.store.get("container_instance", task.container_instance_arn)
    emulator.runtime.write_log(ci.ec2_instance_id, task.task_id, "web-app", "one\ntwo\nthree")
    code, out, _ = await ecsemu(capsys, emulator, "logs", task.task_id, "--tail", "2")
    assert code == 0 and out == "two\nthree\n"
    code, out, _ = await ecsemu(capsys, emulator, "logs", task.task_arn, "--container", "sidecar", "--json")
    answer = json.loads(out)
    assert answer["containerName"] == "sidecar" and answer["source"] == "runtime"
    code, _, err = await ecsemu(capsys, emulator, "logs", "0123456789abcdef")
    assert code == 2
    assert err.strip() == "ecsemu: InvalidParameterException: The referenced task was not found."


async def test_status_is_the_summary_in_one_call(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "status")
    assert code == 0
    assert f"cluster {CLUSTER}: 2 instance(s), 1 service(s)" in out
    for task in emulator.live_tasks():
        assert f"{task.task_id}(RUNNING)" in out
    assert "1536/2048" in out and SERVICE in out and "IN_PROGRESS" in out
    code, out, _ = await ecsemu(capsys, emulator, "status", "--json")
    summary = json.loads(out)
    assert [c["clusterName"] for c in summary["clusters"]] == [CLUSTER]


# --- changing things -------------------------------------------------------------------------------------


async def test_register_task_definition_from_a_file(emulator, capsys, tmp_path):
    path = tmp_path / "td.json"
    path.write_text(json.dumps(web_app("web-app:v9")))
    code, out, _ = await ecsemu(capsys, emulator, "register-task-definition", "--cli-input-json", f"file://{path}")
    assert code == 0
    assert out.startswith("registered task definition web-app:2 (arn:aws:ecs:")
    code, out, _ = await ecsemu(capsys, emulator, "register-task-definition", "--cli-input-json", str(path), "--json")
    assert json.loads(out)["revision"] == 3

    path.write_text("{not json")
    code, _, err = await ecsemu(capsys, emulator, "register-task-definition", "--cli-input-json", f"file://{path}")
    assert code == 2 and err.startswith(f"ecsemu: InvalidParameterException: {path} is not valid JSON")
    bad = web_app()
    bad["containerDefinitions"][0]["memory"] = 2
    path.write_text(json.dumps(bad))
    code, _, err = await ecsemu(capsys, emulator, "register-task-definition", "--cli-input-json", str(path))
    assert code == 2 and err.startswith("ecsemu: ClientException:") and "at least 6 MiB" in err
    assert max(td.revision for td in emulator.store.list("task_definition")) == 3


async def test_update_service_changes_the_desired_count(emulator, capsys):
    code, out, _ = await ecsemu(capsys, emulator, "update-service", "--service", SERVICE, "--desired-count", "3")
    assert code == 0
    assert out.startswith(f"service {SERVICE}: desired 3, task definition web-app:1; deployment ecs-svc/")
    assert emulator.service.desired_count == 3
    code, out, _ = await ecsemu(capsys, emulator, "update-service", "--service", SERVICE, "--force-new-deployment",
                                "--json")
    assert len(json.loads(out)["deployments"]) == 2
    code, _, err = await ecsemu(capsys, emulator, "update-service", "--service", "nope", "--desired-count", "1")
    assert code == 2 and err.strip() == "ecsemu: ServiceNotFoundException: Service not found."


def test_registration_input_changes_the_app_container_only():
    td = {**web_app(), "taskDefinitionArn": "arn:...:task-definition/web-app:1", "revision": 1, "status": "ACTIVE",
          "compatibilities": ["EC2"], "registeredAt": 1.0}
    new = cli_views.registration_input(td, "web-app:v2", "v2")
    assert not {"taskDefinitionArn", "revision", "status", "compatibilities", "registeredAt"} & set(new)
    app, sidecar = new["containerDefinitions"]
    assert app["image"] == "web-app:v2"
    assert app["environment"] == [{"name": "LOG_LEVEL", "value": "info"}, {"name": "APP_VERSION", "value": "v2"}]
    assert sidecar == web_app()["containerDefinitions"][1]
    assert td["containerDefinitions"][0]["image"] == "web-app:v1"  # the input is not changed
    with pytest.raises(Exception, match="has no container named nope"):
        cli_views.registration_input(td, "web-app:v2", "v2", container="nope")
    other = {"family": "x", "containerDefinitions": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]}
    with pytest.raises(Exception, match="name the one to change with --container"):
        cli_views.registration_input(other, "web-app:v2", "v2")


async def test_deploy_builds_registers_a_revision_and_updates_the_service(emulator, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(cli_views, "build_app_image", lambda tag, version, progress: built.append((tag, version)))
    code, out, _ = await ecsemu(capsys, emulator, "deploy", "--service", SERVICE, "--app-version", "v2")
    assert code == 0
    assert built == [("web-app:v2", "v2")]
    service = emulator.service
    td = emulator.store.get("task_definition", service.task_definition)
    assert td.family_revision == "web-app:2"
    app = td.container_definitions[0]
    assert app.image == "web-app:v2" and app.env()["APP_VERSION"] == "v2" and app.env()["LOG_LEVEL"] == "info"
    assert td.container_definitions[1].image == "busybox:latest"
    primary = service.primary
    assert primary.task_definition == td.task_definition_arn and primary.rollout_state == "IN_PROGRESS"
    assert "registered task definition web-app:2" in out and f"deployment {primary.id} started" in out


async def test_deploy_wait_follows_the_rollout_to_completed(emulator, capsys, monkeypatch):
    monkeypatch.setattr(cli_views, "build_app_image", lambda tag, version, progress: None)
    run = asyncio.create_task(ecsemu(capsys, emulator, "deploy", "--service", SERVICE, "--app-version", "v2",
                                     "--wait", "--timeout", "60"))
    await asyncio.wait_for(emulator.until(lambda: emulator.service.task_definition.endswith("web-app:2")), 30)
    for _ in range(40):  # the scheduler's passes, 10 AWS seconds apart, until the rollout completes
        if emulator.service.primary.rollout_state == "COMPLETED":
            break
        await emulator.step(advance=10)
    code, out, err = await asyncio.wait_for(run, 30)
    assert code == 0, err
    primary = emulator.service.primary
    assert f"(service {SERVICE}) (deployment {primary.id}) deployment completed." in out
    assert "has started 2 tasks" in out and "has stopped 2 running tasks" in out
    assert out.rstrip().endswith(f"deployment {primary.id} COMPLETED: {SERVICE} runs web-app:v2")
    assert {t.task_definition_arn.rsplit(":", 1)[1] for t in emulator.live_tasks()} == {"2"}


async def test_deploy_wait_reports_a_failed_rollout(emulator, capsys):
    client = EmulatorClient(emulator.url)
    deployed = await asyncio.to_thread(cli_views.deploy_app_version, client, CLUSTER, SERVICE, "v3",
                                       build=lambda tag, version, progress: None, progress=lambda line: None)
    service = emulator.service
    service.primary.rollout_state = "FAILED"
    with emulator.store.transaction() as tx:
        tx.put("service", service.service_arn, service)
        tx.record(Event(SERVICE_EVENT, service.service_arn, "deployment failed: tasks failed to start."))
    seen = []
    state = await asyncio.to_thread(cli_views.wait_for_deployment, client, CLUSTER, deployed, 30, seen.append)
    assert state == "FAILED"
    assert [e["message"] for e in seen] == ["deployment failed: tasks failed to start."]


async def test_a_failed_build_registers_nothing(emulator, capsys, monkeypatch):
    def broken(tag, version, progress):
        raise RuntimeError("Docker is not running")

    monkeypatch.setattr(cli_views, "build_app_image", broken)
    before = len(emulator.store.list("task_definition"))
    code, _, err = await ecsemu(capsys, emulator, "deploy", "--service", SERVICE, "--app-version", "v2")
    assert code == 2
    assert "ecsemu: ImageBuildError: building web-app:v2 failed: Docker is not running" in err
    assert len(emulator.store.list("task_definition")) == before
    code, _, err = await ecsemu(capsys, emulator, "deploy", "--service", SERVICE, "--app-version", "bad tag!")
    assert code == 2 and "is not an image tag" in err


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["instances"], ["services"], ["tasks"], ["events"], ["update-service", "--service",
                                                                                      SERVICE, "--desired-count", "1"]])
async def test_an_unknown_cluster_is_ecs_error_and_exit_2(emulator, capsys, argv):
    code, out, err = await ecsemu(capsys, emulator, *argv, "--cluster", "ghost")
    assert (code, out) == (2, "")
    assert err.strip() == "ecsemu: ClusterNotFoundException: Cluster not found."


async def test_an_emulator_that_is_not_running_is_exit_1_with_a_hint(capsys, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = await ecsemu(capsys, None, "status", "--endpoint-url", f"http://127.0.0.1:{port}")
    assert (code, out) == (1, "")
    assert f"cannot reach the emulator at http://127.0.0.1:{port}" in err and "`ecsemu start`" in err

    monkeypatch.setenv("ECSEMU_ENDPOINT", f"http://127.0.0.1:{port}")
    code, _, err = await ecsemu(capsys, None, "clusters")
    assert code == 1 and f"http://127.0.0.1:{port}" in err


async def test_the_endpoint_comes_from_ecsemu_endpoint(emulator, capsys, monkeypatch):
    monkeypatch.setenv("ECSEMU_ENDPOINT", emulator.url)
    code, out, _ = await ecsemu(capsys, None, "clusters", "--json")
    assert code == 0 and json.loads(out)[0]["clusterName"] == CLUSTER
