"""The Prometheus exporter: names, labels, values and help texts that name CloudWatch's metrics."""

from __future__ import annotations

import random

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from test_metrics_collector import CLUSTER, SERVICE, World

from emulator.alb.balancer import CheckResult, Target
from emulator.alb.service import AlbService
from emulator.clock import FakeClock
from emulator.control.asg import AutoScalingGroups
from emulator.metrics import MetricsExporter, add_metrics_route, scrape_text
from emulator.metrics import names as n
from emulator.model.elb import parse_target_group
from emulator.model.scaling import parse_auto_scaling_group


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(family, **labels) -> float:
    matches = [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())
               and not s.name.endswith(("_created",))]
    assert len(matches) == 1, (family.name, labels, family.samples)
    return matches[0]


@pytest.fixture
async def world():
    world = await World().start()
    world.service(2)
    await world.settle()
    low, high = world.running()
    world.use(low, cpu_fraction_of_reserved=0.5, memory_mib=256)
    world.use(high, cpu_fraction_of_reserved=1.0, memory_mib=512)
    await world.collector.collect_once()
    world.clock.tick(20)
    await world.collector.collect_once()
    return world


def scrape(world, **kwargs) -> dict:
    return families(scrape_text(MetricsExporter(world.metrics, world.store, clock=world.clock, **kwargs)))


async def test_service_utilization_gauges_carry_cluster_and_service_labels(world):
    got = scrape(world)

    cpu = got["ecs_service_cpu_utilization_percent"]
    assert cpu.type == "gauge"
    assert value(cpu, cluster=CLUSTER, service=SERVICE) == pytest.approx(75.0)
    assert cpu.documentation.startswith("AWS/ECS CPUUtilization (ClusterName, ServiceName): ")
    memory = got["ecs_service_memory_utilization_percent"]
    assert value(memory, cluster=CLUSTER, service=SERVICE) == pytest.approx(75.0)
    assert memory.documentation.startswith("AWS/ECS MemoryUtilization (ClusterName, ServiceName): ")


async def test_cluster_gauges_name_their_cloudwatch_metric(world):
    got = scrape(world)

    expected = {
        "ecs_cluster_cpu_reservation_percent": ("AWS/ECS CPUReservation (ClusterName)", 25.0),
        "ecs_cluster_memory_reservation_percent": ("AWS/ECS MemoryReservation (ClusterName)", 1024 * 100 / 7168),
        "ecs_cluster_cpu_utilization_percent": ("AWS/ECS CPUUtilization (ClusterName)", 18.75),
        "ecs_cluster_memory_utilization_percent": ("AWS/ECS MemoryUtilization (ClusterName)", 768 * 100 / 7168),
        "ecs_cluster_container_instances": ("ECS/ContainerInsights ContainerInstanceCount (ClusterName)", 2),
        "ecs_cluster_services": ("ECS/ContainerInsights ServiceCount (ClusterName)", 1),
        "ecs_cluster_tasks": ("ECS/ContainerInsights TaskCount (ClusterName)", 2),
        "ecs_cluster_cpu_reserved_units": ("ECS/ContainerInsights CpuReserved (ClusterName)", 1024),
        "ecs_cluster_memory_utilized_bytes": ("ECS/ContainerInsights MemoryUtilized (ClusterName)", 768 * 2**20),
    }
    for name, (help_prefix, expected_value) in expected.items():
        assert got[name].documentation.startswith(help_prefix + ": "), name
        assert [s.labels for s in got[name].samples] == [{"cluster": CLUSTER}], name
        assert value(got[name], cluster=CLUSTER) == pytest.approx(expected_value), name


async def test_service_counts_are_live_from_the_state_store(world):
    service = world.store.get("service", world.store.keys("service")[0])
    service.desired_count = 5
    with world.store.transaction() as tx:
        tx.put("service", service.service_arn, service)

    got = scrape(world)

    assert value(got["ecs_service_desired_tasks"], cluster=CLUSTER, service=SERVICE) == 5
    assert value(got["ecs_service_running_tasks"], cluster=CLUSTER, service=SERVICE) == 2
    assert value(got["ecs_service_pending_tasks"], cluster=CLUSTER, service=SERVICE) == 0
    assert got["ecs_service_running_tasks"].documentation.startswith(
        "ECS/ContainerInsights RunningTaskCount (ClusterName, ServiceName): ")
    assert "PROVISIONING" in got["ecs_service_pending_tasks"].documentation


async def test_the_slot_gauge_says_how_it_differs_from_capacity_provider_reservation(world):
    got = scrape(world)

    slots = got["ecs_cluster_task_slot_utilization_percent"]
    # 512-unit tasks: 4 fit on each t3.medium (2,048 units); 2 running of 8 slots.
    assert value(slots, cluster=CLUSTER, service=SERVICE) == pytest.approx(25.0)
    assert "CapacityProviderReservation" in slots.documentation
    assert "not a cloudwatch metric" in slots.documentation.lower()


async def test_capacity_provider_reservation_is_exported_when_the_scaler_publishes_it(world):
    dims = {n.CLUSTER_NAME: CLUSTER, n.CAPACITY_PROVIDER_NAME: "ecs-cp"}
    assert "ecs_capacity_provider_reservation_percent" not in {
        s.name for f in scrape(world).values() for s in f.samples}

    world.metrics.put(n.MANAGED_SCALING, n.CAPACITY_PROVIDER_RESERVATION, dims, world.clock.now(), 150.0)
    got = scrape(world)

    family = got["ecs_capacity_provider_reservation_percent"]
    assert value(family, cluster=CLUSTER, capacity_provider="ecs-cp") == 150.0
    assert family.documentation.startswith(
        "AWS/ECS/ManagedScaling CapacityProviderReservation (ClusterName, CapacityProviderName): ")


async def test_gauges_not_sampled_for_a_while_disappear(world):
    world.clock.tick(600)

    got = scrape(world)

    assert got["ecs_service_cpu_utilization_percent"].samples == []
    assert value(got["ecs_service_running_tasks"], cluster=CLUSTER, service=SERVICE) == 2   # live still


async def test_failed_tasks_are_counters_and_a_process_label_keeps_processes_apart(world):
    crashed = world.running()[0]
    world.runtime.kill_container(world.instance_of(crashed), crashed.task_id, "web-app", exit_code=1)
    await world.settle()

    got = scrape(world, process="worker-1")

    family = got["ecs_service_failed_tasks"]
    assert family.type == "counter"
    assert value(family, cluster=CLUSTER, service=SERVICE, process="worker-1") == 1
    assert [s.name for s in family.samples] == ["ecs_service_failed_tasks_total"]
    assert family.documentation.startswith("ECSEmulator FailedTaskCount (ClusterName, ServiceName): ")
    assert value(got["ecs_cluster_failed_tasks"], cluster=CLUSTER, process="worker-1") == 1


async def test_auto_scaling_group_gauges(world):
    groups = AutoScalingGroups(world.store, world.agent, world.clock, rng=random.Random(4))
    groups.put(parse_auto_scaling_group({"AutoScalingGroupName": "ecs-asg", "MinSize": 0, "MaxSize": 4,
                                         "DesiredCapacity": 2, "AvailabilityZones": ["us-east-1a"],
                                         "LaunchTemplate": {"InstanceType": "t3.medium"}}), CLUSTER)
    await groups.reconcile_all()

    got = scrape(world)

    assert value(got["autoscaling_group_desired_capacity"], auto_scaling_group="ecs-asg") == 2
    assert value(got["autoscaling_group_in_service_instances"], auto_scaling_group="ecs-asg") == 2
    assert value(got["autoscaling_group_max_size"], auto_scaling_group="ecs-asg") == 4
    assert got["autoscaling_group_desired_capacity"].documentation.startswith(
        "AWS/AutoScaling GroupDesiredCapacity (AutoScalingGroupName): ")


async def test_alb_counters_histogram_and_request_count_per_target():
    clock = FakeClock()
    alb = AlbService(clock, health_checks=False)
    tg = parse_target_group({"Name": "web-app-tg", "Protocol": "HTTP", "Port": 8080})
    runtime = alb.ensure_target_group(tg)
    targets = [Target("10.99.0.1", 49153), Target("10.99.0.2", 49154)]
    runtime.register(targets)
    for t in targets:
        runtime.record_health(t.target_id, CheckResult.passed())
    world = World(alb=alb, clock=clock)
    start = world.to_minute_start()
    for i in range(6):
        runtime.stats.record_request(targets[i % 2].target_id)
        runtime.stats.record_target_response(503 if i == 5 else 200, 0.003)
    runtime.stats.record_elb_response(502)
    await world.collector.collect_once()
    clock.set(start + 60)                       # that minute is complete now

    got = families(scrape_text(MetricsExporter(world.metrics, world.store, alb, clock=clock)))

    requests = got["alb_target_group_requests"]
    assert requests.type == "counter"
    assert value(requests, target_group="web-app-tg") == 6
    assert requests.documentation.startswith("AWS/ApplicationELB RequestCount (TargetGroup): ")
    assert value(got["alb_target_requests"], target_group="web-app-tg", target="10.99.0.1:49153") == 3
    assert value(got["alb_target_group_target_responses"], target_group="web-app-tg", code_class="5XX") == 1
    assert value(got["alb_target_group_elb_responses"], target_group="web-app-tg", code="502") == 1
    assert "HTTPCode_ELB_5XX_Count" in got["alb_target_group_elb_responses"].documentation
    assert "HTTPCode_Target_5XX_Count" in got["alb_target_group_target_responses"].documentation
    histogram = got["alb_target_group_target_response_time_seconds"]
    assert histogram.type == "histogram"
    assert histogram.documentation.startswith("AWS/ApplicationELB TargetResponseTime (TargetGroup): ")
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.samples}
    assert samples[("alb_target_group_target_response_time_seconds_count", None)] == 6
    assert samples[("alb_target_group_target_response_time_seconds_bucket", "0.0025")] == 0
    assert samples[("alb_target_group_target_response_time_seconds_bucket", "0.005")] == 6
    assert samples[("alb_target_group_target_response_time_seconds_sum", None)] == pytest.approx(0.018)
    assert value(got["alb_target_group_healthy_hosts"], target_group="web-app-tg") == 2
    assert value(got["alb_target_group_unhealthy_hosts"], target_group="web-app-tg") == 0
    per_target = got["alb_target_group_request_count_per_target"]
    assert value(per_target, target_group="web-app-tg") == pytest.approx(3.0)
    assert per_target.documentation.startswith("AWS/ApplicationELB RequestCountPerTarget (TargetGroup): ")
    await alb.close()


async def test_every_help_text_names_a_namespace(world):
    for family in scrape(world).values():
        assert family.documentation.split(" ", 1)[0] in (
            n.ECS, n.CONTAINER_INSIGHTS, n.MANAGED_SCALING, n.APPLICATION_ELB, n.AUTO_SCALING, n.EMULATOR) or \
            family.name == "ecs_cluster_task_slot_utilization_percent", family.name


async def test_get_metrics_serves_the_text_format(world):
    app = web.Application()
    add_metrics_route(app, MetricsExporter(world.metrics, world.store, clock=world.clock))

    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert value(families(text)["ecs_service_cpu_utilization_percent"], cluster=CLUSTER, service=SERVICE) == \
        pytest.approx(75.0)
