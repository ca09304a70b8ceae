"""The pure domain model: instance types, ARNs, shapes, container instances, task
lifecycle, deployment arithmetic, event wording, placement-spec validation, errors.

Numbers and strings are checked against AWS's published values and the
wording in ecs-semantics.md, not against the code's own tables.
"""

from __future__ import annotations

import random
import re

import cattrs
import pytest

from emulator import errors
from emulator.model import arn, events
from emulator.model.cluster import CapacityProviderStrategyItem, Cluster, Tag
from emulator.model.container_instance import (
    DEFAULT_RESERVED_PORTS,
    ContainerInstance,
    Resources,
    new_container_instance,
    standard_attributes,
)
from emulator.model.instance_types import (
    CPU_UNITS_PER_VCPU,
    INSTANCE_TYPES,
    InstanceType,
    get_instance_type,
)
from emulator.model.placement_spec import (
    DEFAULT_SERVICE_STRATEGY,
    PlacementConstraint,
    PlacementStrategy,
    validate_constraints,
    validate_strategies,
)
from emulator.model.service import (
    PRIMARY,
    Deployment,
    DeploymentCircuitBreaker,
    DeploymentConfiguration,
    LoadBalancer,
    Service,
    ServiceEvent,
    circuit_breaker_threshold,
    new_deployment_id,
)
from emulator.model.shapes import camel, from_api, from_camel_api, to_api
from emulator.model.task import (
    ACTIVATING,
    DEACTIVATING,
    DEPROVISIONING,
    ESSENTIAL_CONTAINER_EXITED,
    LIFECYCLE,
    PENDING,
    PROVISIONING,
    REASON_ESSENTIAL_EXITED,
    REASON_FAILED_TO_START,
    REASON_USER,
    RUNNING,
    SERVICE_SCHEDULER_INITIATED,
    STOP_CODES,
    STOPPED,
    STOPPING,
    USER_INITIATED,
    Container,
    LifecycleError,
    NetworkBinding,
    Task,
    advance_task,
    reason_elb_health,
    reason_host_terminated,
    reason_scaling_activity,
    request_stop,
)

PREFIX = "arn:aws:ecs:us-east-1:123456789012"
GIB = 1024


# instance types: AWS's published vCPU / memory (GiB) per size

PUBLISHED = {
    "t3.nano": (2, 0.5), "t3.micro": (2, 1), "t3.small": (2, 2), "t3.medium": (2, 4),
    "t3.large": (2, 8), "t3.xlarge": (4, 16), "t3.2xlarge": (8, 32),
    "m5.large": (2, 8), "m5.xlarge": (4, 16), "m5.2xlarge": (8, 32), "m5.4xlarge": (16, 64),
    "m5.8xlarge": (32, 128), "m5.12xlarge": (48, 192), "m5.16xlarge": (64, 256), "m5.24xlarge": (96, 384),
    "c5.large": (2, 4), "c5.xlarge": (4, 8), "c5.2xlarge": (8, 16), "c5.4xlarge": (16, 32),
    "c5.9xlarge": (36, 72), "c5.12xlarge": (48, 96), "c5.18xlarge": (72, 144), "c5.24xlarge": (96, 192),
    "r5.large": (2, 16), "r5.xlarge": (4, 32), "r5.2xlarge": (8, 64), "r5.4xlarge": (16, 128),
    "r5.8xlarge": (32, 256), "r5.12xlarge": (48, 384), "r5.16xlarge": (64, 512), "r5.24xlarge": (96, 768),
}


@pytest.mark.parametrize("name, vcpus, gib", [pytest.param(n, v, g, id=n) for n, (v, g) in PUBLISHED.items()])
def test_instance_type_matches_aws(name, vcpus, gib):
    it = get_instance_type(name)

    assert (it.name, it.vcpus, it.memory_mib) == (name, vcpus, int(gib * GIB))
    assert it.cpu_units == vcpus * 1024
    assert it.family == name.split(".")[0]
    assert it.architecture == "x86_64"


@pytest.mark.parametrize("family", ["t3", "m5", "c5", "r5"])
def test_family_has_no_sizes_aws_does_not_sell(family):
    in_catalogue = {n for n in INSTANCE_TYPES if n.split(".")[0] == family}

    assert in_catalogue == {n for n in PUBLISHED if n.startswith(family + ".")}


def test_catalogue_is_consistent():
    assert CPU_UNITS_PER_VCPU == 1024
    for name, it in INSTANCE_TYPES.items():
        assert it.name == name
        assert it.cpu_units == it.vcpus * 1024


@pytest.mark.parametrize("name, reserved, registered", [
    pytest.param("t3.nano", None, 448, id="nano-eighth"),              # 512 - 512/8
    pytest.param("t3.micro", None, 896, id="micro-eighth"),            # 1024 - 128
    pytest.param("t3.small", None, 1792, id="small-eighth"),           # 2048 - 256
    pytest.param("t3.medium", None, 3584, id="medium-512"),            # the seed pitfall: 4096 - 512
    pytest.param("c5.large", None, 3584, id="c5-large-512"),
    pytest.param("t3.large", None, 7680, id="large-512"),
    pytest.param("m5.24xlarge", None, 384 * GIB - 512, id="m5-24xlarge-512"),
    pytest.param("t3.medium", 0, 4096, id="override-none-reserved"),
    pytest.param("t3.medium", 1024, 3072, id="override-1024"),
    pytest.param("t3.small", 512, 1536, id="override-on-small-type"),
    pytest.param("t3.nano", 4096, 0, id="override-above-memory-clamps-to-0"),
])
def test_registered_memory(name, reserved, registered):
    assert get_instance_type(name).registered_memory_mib(reserved) == registered


@pytest.mark.parametrize("memory_mib, registered", [
    pytest.param(4095, 4095 - 511, id="just-below-4-gib-eighth"),
    pytest.param(4096, 4096 - 512, id="exactly-4-gib"),
    pytest.param(6144, 6144 - 512, id="above-4-gib-capped-at-512"),
])
def test_registered_memory_rule_boundary(memory_mib, registered):
    assert InstanceType("x.test", 2, memory_mib).registered_memory_mib() == registered


def test_seed_pitfall_t3_medium_holds_three_tasks_of_1_gib():
    registered = get_instance_type("t3.medium").registered_memory_mib()

    assert registered // 1024 == 3  # "Theoretical capacity: 4 tasks / Real capacity: 3 tasks"


def test_seed_single_task_fits_a_t3_small():
    """The seed's 1 vCPU / 1.5 GiB task, sized "for 1-task-per-instance on t3.small"."""
    t3_small = get_instance_type("t3.small")

    assert t3_small.registered_memory_mib() >= 1536
    assert t3_small.registered_memory_mib() < 2 * 1536
    assert t3_small.cpu_units // 1024 == 2


@pytest.mark.parametrize("name", ["t3.mega", "g4dn.xlarge", "m5", "", "T3.MEDIUM"])
def test_unknown_instance_type(name):
    with pytest.raises(ValueError) as info:
        get_instance_type(name)

    message = str(info.value)
    assert f"'{name}'" in message
    for family in ("t3", "m5", "c5", "r5"):
        assert re.search(rf"\b{family}\b", message)


# ARNs


@pytest.mark.parametrize("built, expected", [
    pytest.param(arn.cluster_arn("prod"), f"{PREFIX}:cluster/prod", id="cluster"),
    pytest.param(arn.service_arn("prod", "web"), f"{PREFIX}:service/prod/web", id="service"),
    pytest.param(arn.task_arn("prod", "0123abcd"), f"{PREFIX}:task/prod/0123abcd", id="task"),
    pytest.param(arn.container_instance_arn("prod", "0123abcd"), f"{PREFIX}:container-instance/prod/0123abcd",
                 id="container-instance"),
    pytest.param(arn.task_definition_arn("web-app", 3), f"{PREFIX}:task-definition/web-app:3",
                 id="task-definition"),
    pytest.param(arn.container_arn("prod", "c0ffee"), f"{PREFIX}:container/prod/c0ffee", id="container"),
    pytest.param(arn.capacity_provider_arn("asg-cp"), f"{PREFIX}:capacity-provider/asg-cp", id="capacity-provider"),
    pytest.param(arn.auto_scaling_group_arn("ecs-asg", "1d2c-uuid"),
                 "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1d2c-uuid:autoScalingGroupName/ecs-asg",
                 id="auto-scaling-group"),
    pytest.param(arn.target_group_arn("web-tg", "73e2d6bc24d8a067"),
                 "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/73e2d6bc24d8a067",
                 id="target-group"),
    pytest.param(arn.cluster_arn("prod", region="eu-west-1", account="111122223333"),
                 "arn:aws:ecs:eu-west-1:111122223333:cluster/prod", id="other-region-and-account"),
    pytest.param(arn.ecs_arn("cluster/x"), f"{PREFIX}:cluster/x", id="ecs-arn"),
])
def test_arn_forms(built, expected):
    assert built == expected
    assert arn.is_arn(built)


@pytest.mark.parametrize("value, short", [
    pytest.param("prod", "prod", id="plain-name"),
    pytest.param(f"{PREFIX}:cluster/prod", "prod", id="cluster-arn"),
    pytest.param(f"{PREFIX}:service/prod/web", "web", id="service-arn"),
    pytest.param(f"{PREFIX}:task/prod/0123abcd", "0123abcd", id="task-arn"),
    pytest.param(f"{PREFIX}:task-definition/web-app:3", "web-app:3", id="task-definition-arn"),
    pytest.param("web-app:3", "web-app:3", id="family-revision"),
    pytest.param(arn.auto_scaling_group_arn("ecs-asg", "u"), "ecs-asg", id="asg-arn"),
])
def test_short_name(value, short):
    assert arn.short_name(value) == short


@pytest.mark.parametrize("value, resource", [
    pytest.param(f"{PREFIX}:service/prod/web", "service/prod/web", id="service"),
    pytest.param(f"{PREFIX}:task-definition/web:1", "task-definition/web:1", id="task-definition"),
    pytest.param(arn.auto_scaling_group_arn("a", "u"), "autoScalingGroup:u:autoScalingGroupName/a", id="asg"),
    pytest.param("service/prod/web", "service/prod/web", id="not-an-arn"),
    pytest.param("prod", "prod", id="plain-name"),
])
def test_resource_of(value, resource):
    assert arn.resource_of(value) == resource


@pytest.mark.parametrize("value", [
    "prod", "cluster/prod", "arn:aws:ecs", "arn:aws:ecs:us-east-1:123456789012:", "", "web:1",
])
def test_not_an_arn(value):
    assert not arn.is_arn(value)


def test_new_id_is_32_hex_digits_and_fresh():
    ids = {arn.new_id() for _ in range(50)}

    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


# shapes: AWS's camelCase names, None omitted, round trips


@pytest.mark.parametrize("name, aws", [
    ("cpu", "cpu"), ("task_definition_arn", "taskDefinitionArn"), ("memory_reservation", "memoryReservation"),
    ("health_check_grace_period_seconds", "healthCheckGracePeriodSeconds"),
])
def test_camel(name, aws):
    assert camel(name) == aws


def test_aws_name_override_bind_ip():
    nb = NetworkBinding(container_port=80, host_port=49153)

    assert to_api(nb) == {"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 49153, "protocol": "tcp"}
    assert from_api(NetworkBinding, to_api(nb)) == nb


def test_to_api_omits_none_everywhere():
    t = task(containers=[Container(container_arn="c", task_arn="t", name="app", image="img")])

    api = to_api(t)

    def nones(obj):
        if isinstance(obj, dict):
            return [k for k, v in obj.items() if v is None] + [n for v in obj.values() for n in nones(v)]
        if isinstance(obj, list):
            return [n for v in obj for n in nones(v)]
        return []
    assert nones(api) == []
    assert "stoppedAt" not in api and "exitCode" not in api["containers"][0]


def test_from_api_refuses_unknown_keys():
    with pytest.raises(cattrs.BaseValidationError):
        from_api(NetworkBinding, {"bindIp": "0.0.0.0"})  # AWS spells it bindIP


@pytest.mark.parametrize("cls, data, path, problem", [
    pytest.param(NetworkBinding, {"bindIp": "0.0.0.0"}, "bindIp", "Unknown parameter 'bindIp'",
                 id="unknown-key-named"),
    pytest.param(NetworkBinding, {"containerPort": "80"}, "containerPort", "integer", id="quoted-int"),
    pytest.param(NetworkBinding, {"hostPort": 1.5}, "hostPort", "integer", id="fractional-int"),
    pytest.param(NetworkBinding, {"hostPort": True}, "hostPort", "integer", id="bool-is-not-int"),
    pytest.param(DeploymentConfiguration, {"deploymentCircuitBreaker": {"enable": "true"}},
                 "deploymentCircuitBreaker.enable", "true or false", id="quoted-bool-nested-path"),
    pytest.param(DeploymentConfiguration, {"deploymentCircuitBreaker": {"enabled": True}},
                 "deploymentCircuitBreaker.enabled", "Unknown parameter", id="unknown-nested-key"),
    pytest.param(Service, {"serviceName": "web"}, "serviceArn", "missing", id="required-missing"),
    pytest.param(Cluster, {"clusterArn": "a", "clusterName": "b", "tags": [{"key": "k", "value": "v"}, {"key": "k2", "valu": "v"}]},
                 "tags[1].valu", "Unknown parameter", id="list-index-in-path"),
])
def test_from_camel_api_errors_name_the_aws_path(cls, data, path, problem):
    with pytest.raises(errors.InvalidParameterException) as info:
        from_camel_api(cls, data, errors.InvalidParameterException)

    assert info.value.field_path == path
    assert problem in info.value.message


def test_from_camel_api_reads_good_input():
    assert from_camel_api(NetworkBinding, {"bindIP": "10.0.0.1", "containerPort": 80},
                          errors.ClientException) == NetworkBinding(bind_ip="10.0.0.1", container_port=80)


def test_task_to_api_uses_aws_names():
    t = task(containers=[Container(
        container_arn=f"{PREFIX}:container/prod/c", task_arn=f"{PREFIX}:task/prod/t", name="app",
        image="img", runtime_id="abc", exit_code=0, memory_reservation="128",
        network_bindings=[NetworkBinding(container_port=80, host_port=49153)])])
    t.stopped_reason, t.stop_code, t.pull_started_at = REASON_USER, USER_INITIATED, 1.0

    api = to_api(t)

    assert {"taskArn", "clusterArn", "taskDefinitionArn", "group", "lastStatus", "desiredStatus",
            "containerInstanceArn", "containers", "launchType", "healthStatus", "createdAt",
            "stoppedReason", "stopCode", "pullStartedAt", "version", "tags"} <= set(api)
    assert {"containerArn", "taskArn", "name", "image", "lastStatus", "exitCode", "runtimeId",
            "networkBindings", "healthStatus", "memoryReservation"} <= set(api["containers"][0])
    assert from_api(Task, api) == t


def service(**overrides) -> Service:
    s = Service(
        service_arn=f"{PREFIX}:service/prod/web", service_name="web", cluster_arn=f"{PREFIX}:cluster/prod",
        task_definition=f"{PREFIX}:task-definition/web:1", desired_count=2, health_check_grace_period_seconds=60,
        placement_constraints=[PlacementConstraint("distinctInstance")],
        placement_strategy=[PlacementStrategy("spread", "attribute:ecs.availability-zone")],
        deployment_configuration=DeploymentConfiguration(
            200, 100, DeploymentCircuitBreaker(enable=True, rollback=True)),
        deployments=[Deployment(id="ecs-svc/1234567890123456789", status=PRIMARY,
                                task_definition=f"{PREFIX}:task-definition/web:1", desired_count=2)],
        load_balancers=[LoadBalancer(target_group_arn=arn.target_group_arn("web", "1"),
                                     container_name="app", container_port=5000)],
        events=[ServiceEvent(id="e1", created_at=1.0, message=events.steady_state("web"))],
        capacity_provider_strategy=[CapacityProviderStrategyItem("asg-cp", weight=1, base=2)],
    )
    for k, v in overrides.items():
        setattr(s, k, v)
    return s


def test_service_to_api_uses_aws_names():
    api = to_api(service())

    assert {"serviceArn", "serviceName", "clusterArn", "taskDefinition", "desiredCount", "runningCount",
            "pendingCount", "status", "launchType", "capacityProviderStrategy", "placementConstraints",
            "placementStrategy", "deploymentConfiguration", "deployments", "loadBalancers",
            "healthCheckGracePeriodSeconds", "schedulingStrategy", "deploymentController", "events",
            "createdAt", "propagateTags"} <= set(api)
    assert api["deploymentConfiguration"] == {
        "maximumPercent": 200, "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    assert api["capacityProviderStrategy"] == [{"capacityProvider": "asg-cp", "weight": 1, "base": 2}]
    assert api["placementConstraints"] == [{"type": "distinctInstance"}]
    assert api["placementStrategy"] == [{"type": "spread", "field": "attribute:ecs.availability-zone"}]
    assert {"id", "status", "taskDefinition", "desiredCount", "pendingCount", "runningCount", "failedTasks",
            "createdAt", "updatedAt", "rolloutState", "rolloutStateReason"} <= set(api["deployments"][0])
    assert api["loadBalancers"][0] == {"targetGroupArn": arn.target_group_arn("web", "1"),
                                       "containerName": "app", "containerPort": 5000}
    assert api["events"] == [{"id": "e1", "createdAt": 1.0, "message": "(service web) has reached a steady state."}]


def test_service_enable_ecs_managed_tags_has_aws_name():
    api = to_api(service(enable_ecs_managed_tags=True))

    assert api.get("enableECSManagedTags") is True
    assert "enableEcsManagedTags" not in api


def test_service_round_trip():
    s = service()

    assert from_api(Service, to_api(s)) == s


def test_cluster_to_api_and_round_trip():
    c = Cluster(cluster_arn=f"{PREFIX}:cluster/prod", cluster_name="prod", capacity_providers=["asg-cp"],
                default_capacity_provider_strategy=[CapacityProviderStrategyItem("asg-cp", weight=1)],
                tags=[Tag("team", "web")], registered_container_instances_count=2)

    api = to_api(c)

    assert api["clusterArn"] == f"{PREFIX}:cluster/prod"
    assert api["clusterName"] == "prod"
    assert api["registeredContainerInstancesCount"] == 2
    assert {"runningTasksCount", "pendingTasksCount", "activeServicesCount", "capacityProviders",
            "settings"} <= set(api)
    assert api["defaultCapacityProviderStrategy"] == [{"capacityProvider": "asg-cp", "weight": 1, "base": 0}]
    assert api["tags"] == [{"key": "team", "value": "web"}]
    assert from_api(Cluster, api) == c


# container instances


def resources_item(api: list[dict], name: str) -> dict:
    return next(item for item in api if item["name"] == name)


def test_resources_to_api_shape():
    r = Resources(cpu=2048, memory=3584, ports=frozenset({22, 8080, 443}), ports_udp=frozenset({53}))

    api = r.to_api()

    assert [item["name"] for item in api] == ["CPU", "MEMORY", "PORTS", "PORTS_UDP"]
    assert resources_item(api, "CPU")["type"] == "INTEGER"
    assert resources_item(api, "CPU")["integerValue"] == 2048
    assert resources_item(api, "MEMORY")["integerValue"] == 3584
    assert resources_item(api, "PORTS")["type"] == "STRINGSET"
    assert resources_item(api, "PORTS")["stringSetValue"] == ["22", "443", "8080"]  # numeric order, strings
    assert resources_item(api, "PORTS_UDP")["stringSetValue"] == ["53"]
    for item in api:
        assert {"doubleValue", "longValue", "integerValue"} <= set(item)


@pytest.mark.parametrize("resources", [
    pytest.param(Resources(2048, 3584), id="no-ports"),
    pytest.param(Resources(1024, 896, frozenset(DEFAULT_RESERVED_PORTS)), id="reserved-ports"),
    pytest.param(Resources(4096, 7680, frozenset({22, 80, 49153}), frozenset({53, 5353})), id="tcp-and-udp"),
    pytest.param(Resources(-128, -64), id="overcommitted"),
])
def test_resources_round_trip(resources):
    assert Resources.from_api(resources.to_api()) == resources


def test_resources_from_api_missing_items_default_to_zero():
    assert Resources.from_api([{"name": "CPU", "type": "INTEGER", "integerValue": 512}]) == Resources(512, 0)


def test_resources_take_and_give_back():
    start = Resources(2048, 3584, frozenset({22}), frozenset())

    after = start.take(1024, 1536, frozenset({5000}), frozenset({53}))

    assert after == Resources(1024, 2048, frozenset({22, 5000}), frozenset({53}))
    assert start == Resources(2048, 3584, frozenset({22}), frozenset())  # immutable
    assert after.give_back(1024, 1536, frozenset({5000}), frozenset({53})) == start


def test_resources_take_may_go_negative():
    """Callers check fit first; take itself only does the arithmetic."""
    assert Resources(1024, 512).take(2048, 1024) == Resources(-1024, -512)


def instance(**kw) -> ContainerInstance:
    args = dict(arn=arn.container_instance_arn("prod", "a" * 32), ec2_instance_id="i-0123456789abcdef0",
                instance_type=get_instance_type("t3.medium"), availability_zone="us-east-1b",
                registered_at=1_700_000_000.0)
    args.update(kw)
    return new_container_instance(**args)


STANDARD_ATTRIBUTE_NAMES = {
    "ecs.availability-zone", "ecs.instance-type", "ecs.os-type", "ecs.os-family", "ecs.ami-id",
    "ecs.cpu-architecture", "ecs.vpc-id", "ecs.subnet-id",
}


def test_new_container_instance_standard_attributes():
    ci = instance()

    assert STANDARD_ATTRIBUTE_NAMES <= set(ci.attributes)
    assert ci.attributes["ecs.availability-zone"] == "us-east-1b"
    assert ci.attributes["ecs.instance-type"] == "t3.medium"
    assert ci.attributes["ecs.os-type"] == "linux"
    assert ci.attributes["ecs.cpu-architecture"] == "x86_64"
    assert ci.attributes["ecs.ami-id"].startswith("ami-")
    assert ci.attributes["ecs.vpc-id"].startswith("vpc-")
    assert ci.attributes["ecs.subnet-id"].startswith("subnet-")
    assert (ci.availability_zone, ci.instance_type) == ("us-east-1b", "t3.medium")


def test_standard_attributes_follow_the_type_and_zone():
    attrs = standard_attributes(get_instance_type("c5.large"), "eu-west-1c", ami_id="ami-0abc")

    assert attrs["ecs.instance-type"] == "c5.large"
    assert attrs["ecs.availability-zone"] == "eu-west-1c"
    assert attrs["ecs.ami-id"] == "ami-0abc"
    assert standard_attributes(get_instance_type("c5.large"), "eu-west-1a")["ecs.subnet-id"] != attrs["ecs.subnet-id"]


def test_new_container_instance_custom_attributes():
    ci = instance(custom_attributes={"stack": "blue", "gpu": None})

    assert ci.attributes["stack"] == "blue"
    assert "gpu" in ci.attributes and ci.attributes["gpu"] is None
    assert STANDARD_ATTRIBUTE_NAMES <= set(ci.attributes)


def test_new_container_instance_resources():
    ci = instance()

    assert ci.registered_resources == ci.remaining_resources
    assert ci.registered_resources == Resources(cpu=2048, memory=3584, ports=DEFAULT_RESERVED_PORTS)
    assert ci.status == "ACTIVE" and ci.agent_connected
    assert (ci.running_tasks_count, ci.pending_tasks_count) == (0, 0)
    assert ci.instance_id == "a" * 32
    assert ci.registered_at == 1_700_000_000.0


def test_new_container_instance_reserved_memory_override():
    ci = instance(reserved_memory_mib=256)

    assert ci.registered_resources.memory == 4096 - 256


def test_default_reserved_ports_are_ecs_defaults():
    assert DEFAULT_RESERVED_PORTS == {22, 2375, 2376, 51678, 51679, 51680}


def test_container_instance_to_api_shape():
    ci = instance(custom_attributes={"stack": "blue", "gpu": None}, capacity_provider_name="asg-cp")
    ci.remaining_resources = ci.remaining_resources.take(1024, 1024, frozenset({5000}))

    api = ci.to_api()

    assert api["containerInstanceArn"] == ci.container_instance_arn
    assert api["ec2InstanceId"] == "i-0123456789abcdef0"
    assert api["status"] == "ACTIVE" and api["agentConnected"] is True
    assert api["capacityProviderName"] == "asg-cp"
    assert "agentVersion" in api["versionInfo"]
    assert resources_item(api["registeredResources"], "MEMORY")["integerValue"] == 3584
    assert resources_item(api["remainingResources"], "MEMORY")["integerValue"] == 2560
    assert "5000" in resources_item(api["remainingResources"], "PORTS")["stringSetValue"]
    attrs = {a["name"]: a for a in api["attributes"]}
    assert attrs["stack"] == {"name": "stack", "value": "blue"}
    assert attrs["gpu"] == {"name": "gpu"}  # a valueless attribute has no value key
    assert "statusReason" not in api


def test_container_instance_round_trip():
    ci = instance(custom_attributes={"stack": "blue", "gpu": None}, capacity_provider_name="asg-cp")
    ci.remaining_resources = ci.remaining_resources.take(512, 1024, frozenset({8080}), frozenset({53}))
    ci.status, ci.status_reason, ci.running_tasks_count, ci.version = "DRAINING", "draining", 1, 3
    ci.tags = [{"key": "team", "value": "web"}]

    assert ContainerInstance.from_api(ci.to_api()) == ci


# task lifecycle


def task(status: str = PENDING, **kw) -> Task:
    t = Task(task_arn=arn.task_arn("prod", "f" * 32), cluster_arn=arn.cluster_arn("prod"),
             task_definition_arn=arn.task_definition_arn("web", 1), group="family:web",
             last_status=status, container_instance_arn=arn.container_instance_arn("prod", "a" * 32),
             created_at=100.0)
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def test_lifecycle_order_is_ecs_order():
    assert LIFECYCLE == ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING",
                         "STOPPING", "DEPROVISIONING", "STOPPED")


@pytest.mark.parametrize("start, to", [
    pytest.param(a, b, id=f"{a}->{b}") for i, a in enumerate(LIFECYCLE) for b in LIFECYCLE[i + 1:]
])
def test_forward_moves_are_allowed(start, to):
    t = task(start)

    advance_task(t, to, now=200.0)

    assert t.last_status == to
    assert t.version == 2


@pytest.mark.parametrize("start, to", [
    pytest.param(a, b, id=f"{a}->{b}") for i, a in enumerate(LIFECYCLE) for b in LIFECYCLE[:i]
])
def test_backward_moves_raise(start, to):
    t = task(start)

    with pytest.raises(LifecycleError, match=f"{start} back to {to}"):
        advance_task(t, to, now=200.0)

    assert t.last_status == start and t.version == 1


@pytest.mark.parametrize("status", LIFECYCLE)
def test_same_status_is_a_no_op(status):
    t = task(status, started_at=1.0, stopping_at=None if status != STOPPED else 2.0)
    before = to_api(t)

    advance_task(t, status, now=999.0)

    assert to_api(t) == before


def test_unknown_status_raises():
    with pytest.raises(LifecycleError, match="BOGUS"):
        advance_task(task(), "BOGUS", now=1.0)
    assert issubclass(LifecycleError, ValueError)


def test_full_lifecycle_stamps_ecs_times():
    t = task(PROVISIONING)

    for now, status in enumerate(LIFECYCLE[1:], start=1):
        advance_task(t, status, now=float(now))

    assert t.started_at == 3.0      # RUNNING
    assert t.stopping_at == 5.0     # STOPPING
    assert t.stopped_at == 7.0      # STOPPED
    assert t.desired_status == STOPPED
    assert t.version == 8


@pytest.mark.parametrize("to, started, stopping, stopped", [
    pytest.param(ACTIVATING, None, None, None, id="activating-stamps-nothing"),
    pytest.param(RUNNING, 50.0, None, None, id="running-stamps-startedAt"),
    pytest.param(DEACTIVATING, None, None, None, id="deactivating-stamps-nothing"),
    pytest.param(STOPPING, None, 50.0, None, id="stopping-stamps-stoppingAt"),
    pytest.param(DEPROVISIONING, None, 50.0, None, id="skip-to-deprovisioning-stamps-stoppingAt"),
    pytest.param(STOPPED, None, 50.0, 50.0, id="skip-to-stopped-stamps-stoppingAt-and-stoppedAt"),
])
def test_stamps_from_pending(to, started, stopping, stopped):
    t = task(PENDING)

    advance_task(t, to, now=50.0)

    assert (t.started_at, t.stopping_at, t.stopped_at) == (started, stopping, stopped)


def test_stamps_are_not_overwritten():
    t = task(PENDING)
    advance_task(t, RUNNING, now=10.0)
    request_stop(t, REASON_USER, USER_INITIATED, now=20.0)
    advance_task(t, STOPPING, now=30.0)
    advance_task(t, STOPPED, now=40.0)

    assert (t.started_at, t.stopping_at, t.stopped_at) == (10.0, 20.0, 40.0)


def test_stopped_sets_desired_status_stopped():
    t = task(RUNNING)
    assert t.desired_status == RUNNING

    advance_task(t, STOPPED, now=5.0)

    assert t.desired_status == STOPPED
    assert t.is_stopped and not t.holds_resources


@pytest.mark.parametrize("status, holds", [
    (PENDING, True), (RUNNING, True), (STOPPING, True), (DEPROVISIONING, True), (STOPPED, False),
])
def test_holds_resources_until_stopped(status, holds):
    assert task(status).holds_resources is holds
    assert task(status, container_instance_arn=None).holds_resources is False


def test_request_stop_sets_reason_once():
    t = task(RUNNING, started_at=10.0)

    request_stop(t, reason_scaling_activity("ecs-svc/1234567890123456789"), SERVICE_SCHEDULER_INITIATED, now=20.0)
    request_stop(t, REASON_USER, USER_INITIATED, now=30.0)

    assert t.desired_status == STOPPED
    assert t.stopped_reason == "Scaling activity initiated by (deployment ecs-svc/1234567890123456789)"
    assert t.stop_code == SERVICE_SCHEDULER_INITIATED
    assert t.stopping_at == 20.0
    assert t.last_status == RUNNING  # the runtime moves lastStatus, not request_stop
    assert t.version == 2


def test_request_stop_keeps_an_earlier_stopping_at():
    t = task(STOPPING, stopping_at=5.0)

    request_stop(t, REASON_ESSENTIAL_EXITED, ESSENTIAL_CONTAINER_EXITED, now=9.0)

    assert t.stopping_at == 5.0
    assert (t.stopped_reason, t.stop_code) == ("Essential container in task exited", "EssentialContainerExited")


def test_task_id_is_the_arn_tail():
    assert task().task_id == "f" * 32


@pytest.mark.parametrize("reason, expected", [
    pytest.param(REASON_ESSENTIAL_EXITED, "Essential container in task exited", id="essential-exited"),
    pytest.param(REASON_USER, "Task stopped by user", id="user"),
    pytest.param(REASON_FAILED_TO_START, "Task failed to start", id="failed-to-start"),
    pytest.param(reason_scaling_activity("ecs-svc/9876543210987654321"),
                 "Scaling activity initiated by (deployment ecs-svc/9876543210987654321)", id="scaling"),
    pytest.param(reason_elb_health("arn:tg"), "Task failed ELB health checks in (target-group arn:tg)", id="elb"),
    pytest.param(reason_host_terminated("i-0abc"), "Host EC2 (instance i-0abc) stopped/terminated", id="host"),
])
def test_stopped_reason_wording(reason, expected):
    assert reason == expected


def test_stop_codes_are_ecs_stop_codes():
    assert set(STOP_CODES) == {"TaskFailedToStart", "EssentialContainerExited", "UserInitiated",
                               "ServiceSchedulerInitiated", "SpotInterruption", "TerminationNotice"}


# service deployment arithmetic


@pytest.mark.parametrize("maximum, minimum, desired, max_tasks, min_healthy", [
    pytest.param(200, 50, 4, 8, 2, id="min-50-desired-4-may-stop-2"),
    pytest.param(200, 75, 2, 4, 2, id="min-75-desired-2-stops-none"),
    pytest.param(200, 100, 4, 8, 4, id="max-200-desired-4-starts-4"),
    pytest.param(125, 100, 3, 3, 3, id="max-125-desired-3-starts-none"),
    pytest.param(200, 100, 3, 6, 3, id="replica-defaults"),
    pytest.param(100, 0, 5, 5, 0, id="daemon-defaults"),
    pytest.param(150, 50, 3, 4, 2, id="floor-max-ceil-min"),
    pytest.param(110, 90, 7, 7, 7, id="rounding-near-whole"),
    pytest.param(200, 100, 0, 0, 0, id="desired-0"),
    pytest.param(200, 33, 100, 200, 33, id="exact"),
])
def test_deployment_bounds(maximum, minimum, desired, max_tasks, min_healthy):
    config = DeploymentConfiguration(maximum_percent=maximum, minimum_healthy_percent=minimum)

    assert config.max_tasks(desired) == max_tasks
    assert config.min_healthy_tasks(desired) == min_healthy


def test_deployment_configuration_defaults():
    config = DeploymentConfiguration()

    assert (config.maximum_percent, config.minimum_healthy_percent) == (200, 100)
    assert config.deployment_circuit_breaker == DeploymentCircuitBreaker(enable=False, rollback=False)


@pytest.mark.parametrize("desired, threshold", [
    (0, 3), (1, 3), (5, 3), (6, 3), (7, 4), (10, 5), (25, 13), (399, 200), (400, 200), (800, 200),
], ids=lambda v: str(v))
def test_circuit_breaker_threshold(desired, threshold):
    assert circuit_breaker_threshold(desired) == threshold


@pytest.mark.parametrize("seed", range(20))
def test_deployment_id_form(seed):
    deployment_id = new_deployment_id(random.Random(seed))

    assert re.fullmatch(r"ecs-svc/[0-9]{19}", deployment_id)
    assert not deployment_id.startswith("ecs-svc/0")


def test_deployment_id_is_seeded():
    assert new_deployment_id(random.Random(7)) == new_deployment_id(random.Random(7))
    assert new_deployment_id(random.Random(7)) != new_deployment_id(random.Random(8))


def test_service_task_group_and_primary():
    s = service()

    assert s.task_group == "service:web"
    assert s.primary is s.deployments[0]
    assert service(deployments=[]).primary is None


def test_default_service_strategy_spreads_zones_then_instances():
    assert DEFAULT_SERVICE_STRATEGY == (PlacementStrategy("spread", "attribute:ecs.availability-zone"),
                                        PlacementStrategy("spread", "instanceId"))


# service event wording (ECS's messages)


TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"


@pytest.mark.parametrize("message, expected", [
    pytest.param(events.steady_state("web"), "(service web) has reached a steady state.", id="steady-state"),
    pytest.param(events.started_tasks("web", ["a1", "b2"]),
                 "(service web) has started 2 tasks: (task a1) (task b2).", id="started"),
    pytest.param(events.started_tasks("web", ["a1"]), "(service web) has started 1 tasks: (task a1).",
                 id="started-one"),
    pytest.param(events.stopped_tasks("web", ["a1", "b2"]),
                 "(service web) has stopped 2 running tasks: (task a1) (task b2).", id="stopped"),
    pytest.param(events.registered_targets("web", 2, TG), f"(service web) registered 2 targets in (target-group {TG})",
                 id="registered"),
    pytest.param(events.deregistered_targets("web", 1, TG),
                 f"(service web) deregistered 1 targets in (target-group {TG})", id="deregistered"),
    pytest.param(events.unable_to_place("web"),
                 "service web was unable to place a task because no container instance met all of its "
                 "requirements.", id="unable-to-place"),
    pytest.param(events.unable_to_place("web", "The closest matching container-instance abc has insufficient "
                                               "memory available."),
                 "service web was unable to place a task because no container instance met all of its "
                 "requirements. The closest matching container-instance abc has insufficient memory available.",
                 id="unable-to-place-with-closest"),
    pytest.param(events.deployment_completed("web", "ecs-svc/1234567890123456789"),
                 "(service web) (deployment ecs-svc/1234567890123456789) deployment completed.", id="completed"),
    pytest.param(events.deployment_failed("web", "ecs-svc/1234567890123456789"),
                 "(service web) (deployment ecs-svc/1234567890123456789) deployment failed: tasks failed to start.",
                 id="failed"),
    pytest.param(events.deployment_blocked("web"),
                 "(service web) was unable to stop or start tasks during a deployment because of the service "
                 "deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
                 id="blocked"),
])
def test_event_wording(message, expected):
    assert message == expected


def test_event_record_defaults():
    e = events.Event(kind=events.SERVICE_EVENT, resource="web", message="m")

    assert (e.aws_time, e.wall_time, e.detail, e.seq) == (0.0, 0.0, {}, 0)
    assert e.kind in events.EVENT_KINDS


# placement-spec validation


GOOD_CONSTRAINTS = [
    pytest.param([], id="none"),
    pytest.param([PlacementConstraint("distinctInstance")], id="distinct-instance"),
    pytest.param([PlacementConstraint("distinctInstance", "")], id="distinct-instance-empty-expression"),
    pytest.param([PlacementConstraint("memberOf", "attribute:ecs.instance-type == t3.small")], id="member-of"),
    pytest.param([PlacementConstraint("memberOf", "x" * 2000)], id="expression-2000-chars"),
    pytest.param([PlacementConstraint("memberOf", "attribute:a exists")] * 9
                 + [PlacementConstraint("distinctInstance")], id="10-constraints"),
]


@pytest.mark.parametrize("constraints", GOOD_CONSTRAINTS)
def test_valid_constraints(constraints):
    validate_constraints(constraints)


BAD_CONSTRAINTS = [
    pytest.param([PlacementConstraint("sameZone")], "Invalid placement constraint type 'sameZone'",
                 id="unknown-type"),
    pytest.param([PlacementConstraint("memberof", "attribute:a exists")], "Invalid placement constraint type",
                 id="type-is-case-sensitive"),
    pytest.param([PlacementConstraint("distinctInstance", "attribute:a exists")],
                 "distinctInstance placement constraint does not take an expression", id="distinct-with-expression"),
    pytest.param([PlacementConstraint("memberOf")], "memberOf placement constraint requires an expression",
                 id="member-of-without-expression"),
    pytest.param([PlacementConstraint("memberOf", "")], "requires an expression", id="member-of-empty-expression"),
    pytest.param([PlacementConstraint("memberOf", "x" * 2001)], "longer than 2000 characters",
                 id="expression-2001-chars"),
    pytest.param([PlacementConstraint("distinctInstance")] * 11, "(11) exceeds the limit of 10",
                 id="11-constraints"),
]


@pytest.mark.parametrize("constraints, message", BAD_CONSTRAINTS)
def test_invalid_constraints_at_run_time(constraints, message):
    with pytest.raises(errors.InvalidParameterException) as info:
        validate_constraints(constraints)

    assert message in info.value.message


@pytest.mark.parametrize("constraints, message", BAD_CONSTRAINTS + [
    pytest.param([PlacementConstraint("distinctInstance")], "only support type memberOf",
                 id="distinct-instance-not-in-task-definition"),
])
def test_invalid_constraints_in_task_definition(constraints, message):
    with pytest.raises(errors.ClientException) as info:
        validate_constraints(constraints, in_task_definition=True)

    assert (info.value.code, info.value.status) == ("ClientException", 400)
    assert any(part in info.value.message for part in (message, "only support type memberOf"))


def test_member_of_is_valid_in_task_definition():
    validate_constraints([PlacementConstraint("memberOf", "attribute:ecs.os-type == linux")], in_task_definition=True)


GOOD_STRATEGIES = [
    pytest.param([], id="none"),
    pytest.param([PlacementStrategy("binpack", "cpu")], id="binpack-cpu"),
    pytest.param([PlacementStrategy("binpack", "memory")], id="binpack-memory"),
    pytest.param([PlacementStrategy("spread", "instanceId")], id="spread-instance-id"),
    pytest.param([PlacementStrategy("spread", "host")], id="spread-host"),
    pytest.param([PlacementStrategy("spread", "attribute:ecs.availability-zone")], id="spread-az"),
    pytest.param([PlacementStrategy("spread", "attribute:x")], id="spread-custom-attribute"),
    pytest.param([PlacementStrategy("spread", "attribute:" + "a" * 128)], id="spread-attribute-128-chars"),
    pytest.param([PlacementStrategy("random")], id="random"),
    pytest.param([PlacementStrategy("spread", "attribute:ecs.availability-zone"),
                  PlacementStrategy("binpack", "memory")], id="spread-then-binpack"),
    pytest.param([PlacementStrategy("random")] * 5, id="5-strategies"),
]


@pytest.mark.parametrize("strategies", GOOD_STRATEGIES)
def test_valid_strategies(strategies):
    validate_strategies(strategies)


@pytest.mark.parametrize("strategies, message", [
    pytest.param([PlacementStrategy("random")] * 6, "(6) exceeds the limit of 5", id="6-strategies"),
    pytest.param([PlacementStrategy("firstFit")], "Invalid placement strategy type 'firstFit'", id="unknown-type"),
    pytest.param([PlacementStrategy("binpack")], "Invalid field 'None' for placement strategy binpack",
                 id="binpack-without-field"),
    pytest.param([PlacementStrategy("binpack", "gpu")], "Invalid field 'gpu' for placement strategy binpack",
                 id="binpack-gpu"),
    pytest.param([PlacementStrategy("binpack", "instanceId")], "Valid fields: cpu, memory", id="binpack-instance-id"),
    pytest.param([PlacementStrategy("spread")], "Invalid field 'None' for placement strategy spread",
                 id="spread-without-field"),
    pytest.param([PlacementStrategy("spread", "cpu")], "Invalid field 'cpu' for placement strategy spread",
                 id="spread-cpu"),
    pytest.param([PlacementStrategy("spread", "attribute:")], "placement strategy spread", id="spread-empty-attribute"),
    pytest.param([PlacementStrategy("spread", "attribute:bad name")], "placement strategy spread",
                 id="spread-attribute-with-space"),
    pytest.param([PlacementStrategy("spread", "attribute:" + "a" * 129)], "placement strategy spread",
                 id="spread-attribute-129-chars"),
    pytest.param([PlacementStrategy("spread", "ecs.availability-zone")], "attribute:<name>",
                 id="spread-attribute-without-prefix"),
    pytest.param([PlacementStrategy("random", "cpu")], "random placement strategy does not take a field",
                 id="random-with-field"),
    pytest.param([PlacementStrategy("spread", "instanceId"), PlacementStrategy("binpack", "disk")],
                 "Invalid field 'disk'", id="second-rule-bad"),
])
def test_invalid_strategies(strategies, message):
    with pytest.raises(errors.InvalidParameterException) as info:
        validate_strategies(strategies)

    assert message in info.value.message


# errors


ERROR_CLASSES = [
    (errors.ServerException, "ServerException", 500),
    (errors.ClientException, "ClientException", 400),
    (errors.InvalidParameterException, "InvalidParameterException", 400),
    (errors.ClusterNotFoundException, "ClusterNotFoundException", 400),
    (errors.ServiceNotFoundException, "ServiceNotFoundException", 400),
    (errors.ServiceNotActiveException, "ServiceNotActiveException", 400),
    (errors.ClusterContainsServicesException, "ClusterContainsServicesException", 400),
    (errors.ClusterContainsTasksException, "ClusterContainsTasksException", 400),
    (errors.ClusterContainsContainerInstancesException, "ClusterContainsContainerInstancesException", 400),
    (errors.ResourceInUseException, "ResourceInUseException", 400),
    (errors.UpdateInProgressException, "UpdateInProgressException", 400),
    (errors.ValidationException, "ValidationException", 400),
    (errors.ObjectNotFoundException, "ObjectNotFoundException", 400),
    (errors.ValidationError, "ValidationError", 400),
]


@pytest.mark.parametrize("cls, code, status", [pytest.param(*e, id=e[1]) for e in ERROR_CLASSES])
def test_error_code_status_and_shape(cls, code, status):
    error = cls("Cluster not found.")

    assert isinstance(error, errors.AwsError) and isinstance(error, Exception)
    assert (error.code, error.status) == (code, status)
    assert error.to_api() == {"__type": code, "message": "Cluster not found."}
    assert str(error) == f"{code}: Cluster not found."
    assert error.message == "Cluster not found."


def test_base_error_is_a_server_error():
    assert (errors.AwsError.code, errors.AwsError.status) == ("ServerException", 500)
