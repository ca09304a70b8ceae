"""RegisterTaskDefinition parsing and validation (emulator.model.task_definition[_validation]).

What placement needs from a task definition (required cpu/memory, static and
dynamic host ports) and every way a bad definition is answered: a
ClientException whose message names the problem, as ECS words it.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from emulator.errors import ClientException
from emulator.model.placement_spec import PlacementConstraint
from emulator.model.shapes import from_api, to_api
from emulator.model.task_definition import (
    ContainerDefinition,
    HealthCheck,
    KeyValuePair,
    LogConfiguration,
    PortMapping,
    TaskDefinition,
)
from emulator.model.task_definition_validation import parse_task_definition

# The task definition from the seed article (Part 2, "After: ECS with EC2"),
# verbatim, // comments included: a user pastes it as it is printed.
SEED_TASK_DEFINITION = """
{
"family": "web-app",
"networkMode": "bridge", // For EC2; awsvpc is primarily for Fargate
"requiresCompatibilities": ["EC2"],
"cpu": "1024", // Adjust based on your workload
"memory": "1536", // Leave room for OS and ECS agent
"containerDefinitions": [{
"name": "web-app-container",
"image": "123456789.dkr.ecr.us-east-1.amazonaws.com/web-app:latest",
"cpu": 768, // Container-level allocation
"memory": 1024,
"portMappings": [{
"containerPort": 5000, // .NET, Node.js common port
"hostPort": 5000, // Bridge mode requires explicit host port
"protocol": "tcp"
}],
"environment": [
{"name": "ENV", "value": "production"}
],
"logConfiguration": {
"logDriver": "awslogs",
"options": {
"awslogs-group": "/ecs/web-app",
"awslogs-region": "us-east-1",
"awslogs-stream-prefix": "ecs"
}
}
}]
}
"""


def without_comments(text: str) -> str:
    """The seed's JSON with its `// ...` line comments removed (none sit inside a string)."""
    return re.sub(r"\s*//[^\n]*", "", text)


def seed() -> dict[str, Any]:
    return json.loads(without_comments(SEED_TASK_DEFINITION))


# builders: one valid container / task definition, changed per case

DROP = object()  # as an override value: remove the key


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is DROP:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def container(**overrides: Any) -> dict[str, Any]:
    """A valid container definition in AWS's JSON (camelCase keys as overrides)."""
    return _apply({"name": "app", "image": "nginx:1.25", "memory": 512}, overrides)


def taskdef(*containers: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A valid RegisterTaskDefinition request; `containers` default to one `container()`."""
    return _apply({"family": "web", "containerDefinitions": list(containers) or [container()]},
                  overrides)


def contains(big: Any, small: Any) -> bool:
    """`small` is `big` with some dict keys left out (lists must match item by item)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
    return big == small


def ports(*mappings: dict[str, Any]) -> list[dict[str, Any]]:
    return list(mappings)


# the seed article's task definition


def test_seed_article_task_definition_parses():
    td = parse_task_definition(seed())

    assert td.family == "web-app"
    assert td.network_mode == "bridge"
    assert td.requires_compatibilities == ["EC2"]
    assert (td.cpu, td.memory) == ("1024", "1536")
    [c] = td.container_definitions
    assert c.name == "web-app-container"
    assert c.image == "123456789.dkr.ecr.us-east-1.amazonaws.com/web-app:latest"
    assert (c.cpu, c.memory, c.memory_reservation) == (768, 1024, None)
    assert c.essential is True
    assert c.port_mappings == [PortMapping(container_port=5000, host_port=5000, protocol="tcp")]
    assert c.env() == {"ENV": "production"}
    assert c.log_configuration == LogConfiguration(
        log_driver="awslogs",
        options={"awslogs-group": "/ecs/web-app", "awslogs-region": "us-east-1",
                 "awslogs-stream-prefix": "ecs"})


def test_seed_article_task_definition_needs_for_placement():
    td = parse_task_definition(seed())

    assert td.required_cpu == 1024      # task-level cpu, not the container's 768
    assert td.required_memory == 1536   # task-level memory, not the container's 1024
    assert td.static_host_ports() == [(5000, "tcp")]
    assert td.dynamic_port_count() == 0


def test_seed_article_task_definition_round_trips():
    td = parse_task_definition(seed())

    api = to_api(td)
    assert from_api(TaskDefinition, api) == td
    # Everything the user wrote comes back under its own name (plus ECS's defaults).
    assert contains(api, seed())
    assert api["containerDefinitions"][0]["essential"] is True


def test_seed_comments_are_really_there():
    """The fixture is the article as printed: plain json refuses it until the comments go."""
    with pytest.raises(json.JSONDecodeError):
        json.loads(SEED_TASK_DEFINITION)


# what placement reserves


@pytest.mark.parametrize("request_json, cpu, memory", [
    pytest.param(taskdef(container(cpu=256), container(name="b", cpu=128), cpu="512", memory="2048"),
                 512, 2048, id="task-level-wins"),
    pytest.param(taskdef(container(cpu=256, memory=512), container(name="b", cpu=128, memory=256)),
                 384, 768, id="container-sums"),
    pytest.param(taskdef(container(memory=1024, memoryReservation=256)),
                 0, 256, id="reservation-preferred-over-memory"),
    pytest.param(taskdef(container(memory=DROP, memoryReservation=300), container(name="b", memory=200)),
                 0, 500, id="reservation-only-plus-memory-only"),
    pytest.param(taskdef(container(cpu=100), memory="1024"),
                 100, 1024, id="task-memory-only-cpu-from-containers"),
    pytest.param(taskdef(container(memory=DROP, cpu=64), cpu="256", memory="512"),
                 256, 512, id="container-without-memory-under-task-memory"),
])
def test_required_cpu_and_memory(request_json, cpu, memory):
    td = parse_task_definition(request_json)

    assert (td.required_cpu, td.required_memory) == (cpu, memory)


@pytest.mark.parametrize("network_mode, mappings, static, dynamic", [
    pytest.param("bridge", ports({"containerPort": 80, "hostPort": 8080}), [(8080, "tcp")], 0,
                 id="bridge-fixed-host-port"),
    pytest.param("bridge", ports({"containerPort": 80, "hostPort": 0}), [], 1,
                 id="bridge-host-port-0-is-dynamic"),
    pytest.param("bridge", ports({"containerPort": 80}), [], 1,
                 id="bridge-host-port-absent-is-dynamic"),
    pytest.param("bridge", ports({"containerPort": 53, "hostPort": 53, "protocol": "udp"}), [(53, "udp")], 0,
                 id="bridge-udp"),
    pytest.param("bridge", ports({"containerPort": 53, "hostPort": 53},
                                 {"containerPort": 53, "hostPort": 53, "protocol": "udp"}),
                 [(53, "tcp"), (53, "udp")], 0, id="bridge-same-port-both-protocols"),
    pytest.param("bridge", ports({"containerPort": 80, "hostPort": 80}, {"containerPort": 9000},
                                 {"containerPort": 9001, "hostPort": 0}),
                 [(80, "tcp")], 2, id="bridge-mixed"),
    pytest.param("host", ports({"containerPort": 8080}), [(8080, "tcp")], 0,
                 id="host-mode-uses-container-port"),
    pytest.param("host", ports({"containerPort": 8080, "hostPort": 8080}), [(8080, "tcp")], 0,
                 id="host-mode-matching-host-port"),
    pytest.param("bridge", ports(), [], 0, id="no-port-mappings"),
])
def test_host_ports(network_mode, mappings, static, dynamic):
    td = parse_task_definition(taskdef(container(portMappings=mappings), networkMode=network_mode))

    assert td.static_host_ports() == static
    assert td.dynamic_port_count() == dynamic


def test_host_ports_are_counted_over_every_container():
    td = parse_task_definition(taskdef(
        container(portMappings=[{"containerPort": 80, "hostPort": 80}]),
        container(name="sidecar", portMappings=[{"containerPort": 9090, "hostPort": 9090},
                                                {"containerPort": 9091}])))

    assert td.static_host_ports() == [(80, "tcp"), (9090, "tcp")]
    assert td.dynamic_port_count() == 1


@pytest.mark.parametrize("given, expected", [
    pytest.param("1024", "1024", id="units"),
    pytest.param(1024, "1024", id="int-units"),
    pytest.param("1 vCPU", "1024", id="1-vcpu"),
    pytest.param("0.5 vCPU", "512", id="half-vcpu"),
    pytest.param("0.25 vcpu", "256", id="lower-case-vcpu"),
    pytest.param("2vCPU", "2048", id="no-space"),
    pytest.param(" 256 ", "256", id="whitespace"),
])
def test_task_cpu_normalised_to_units(given, expected):
    td = parse_task_definition(taskdef(cpu=given))

    assert td.cpu == expected
    assert to_api(td)["cpu"] == expected


@pytest.mark.parametrize("given, expected", [
    pytest.param("2048", "2048", id="mib"),
    pytest.param(2048, "2048", id="int-mib"),
    pytest.param("2 GB", "2048", id="2-gb"),
    pytest.param("0.5 GB", "512", id="half-gb"),
    pytest.param("1 GiB", "1024", id="gib"),
    pytest.param("768 MiB", "768", id="explicit-mib"),
    pytest.param("1536 MB", "1536", id="mb"),
])
def test_task_memory_normalised_to_mib(given, expected):
    td = parse_task_definition(taskdef(memory=given))

    assert td.memory == expected
    assert to_api(td)["memory"] == expected


def test_defaults_match_ecs():
    td = parse_task_definition(taskdef())

    assert td.network_mode == "bridge"
    assert td.requires_compatibilities == ["EC2"]
    assert td.status == "ACTIVE"
    assert td.revision == 0 and td.task_definition_arn is None
    [c] = td.container_definitions
    assert c.essential is True and c.cpu == 0 and c.port_mappings == []


def test_health_check_defaults_are_ecs_defaults():
    td = parse_task_definition(taskdef(container(healthCheck={"command": ["CMD-SHELL", "curl -f localhost"]})))

    assert td.container_definitions[0].health_check == HealthCheck(
        command=["CMD-SHELL", "curl -f localhost"], interval=30, timeout=5, retries=3, start_period=None)


def test_valid_limits_are_accepted():
    """Each bound the bad-definition table crosses, taken exactly, still registers."""
    names = [f"c{i}" for i in range(10)]
    td = parse_task_definition(taskdef(
        *[container(name=n, memory=6, cpu=0) for n in names],
        family="F" * 255, cpu="128", memory="60"))
    assert len(td.container_definitions) == 10

    hc = {"command": ["CMD", "true"], "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0}
    parse_task_definition(taskdef(container(healthCheck=hc, stopTimeout=2)))
    hc = {"command": ["CMD", "true"], "interval": 300, "timeout": 60, "retries": 10, "startPeriod": 300}
    parse_task_definition(taskdef(container(healthCheck=hc, stopTimeout=120)))
    parse_task_definition(taskdef(cpu="196608"))
    parse_task_definition(taskdef(container(portMappings=[{"containerPort": 65535, "hostPort": 65535}])))
    parse_task_definition(taskdef(container(memory=512, memoryReservation=512)))
    parse_task_definition(taskdef(container(cpu=1024), cpu="1024", memory="512"))


def test_memberof_constraint_in_task_definition_is_accepted():
    td = parse_task_definition(taskdef(placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]))

    assert td.placement_constraints == [PlacementConstraint("memberOf", "attribute:ecs.instance-type =~ t3.*")]


def test_non_essential_containers_allowed_beside_an_essential_one():
    td = parse_task_definition(taskdef(container(), container(name="sidecar", essential=False)))

    assert [c.essential for c in td.container_definitions] == [True, False]


# bad task definitions: ClientException, message naming the problem


def _hc(**fields: Any) -> dict[str, Any]:
    return {"command": ["CMD-SHELL", "true"], **fields}


BAD_TASK_DEFINITIONS = [
    # shape of the request
    pytest.param(["not", "an", "object"], ["JSON object"], id="not-an-object"),
    pytest.param("family: web", ["JSON object"], id="string-not-an-object"),
    pytest.param(taskdef(revision=3), ['"revision"', "set by ECS"], id="output-only-revision"),
    pytest.param(taskdef(taskDefinitionArn="arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"),
                 ['"taskDefinitionArn"'], id="output-only-taskDefinitionArn"),
    pytest.param(taskdef(status="ACTIVE"), ['"status"'], id="output-only-status"),
    pytest.param(taskdef(compatibilities=["EC2"]), ['"compatibilities"'], id="output-only-compatibilities"),
    pytest.param(taskdef(registeredAt=1.0), ['"registeredAt"'], id="output-only-registeredAt"),
    pytest.param(taskdef(bogusField=1), ["Unknown parameter", "bogusField"],
                 id="unknown-top-level-field"),
    pytest.param(taskdef(container(bogusKey="x")),
                 ["Unknown parameter", "containerDefinitions[0].bogusKey"], id="unknown-container-field"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80, "hostPot": 80}])),
                 ["Unknown parameter", "containerDefinitions[0].portMappings[0].hostPot"], id="unknown-port-mapping-field"),
    pytest.param(taskdef(family=DROP), ["missing", "family"],
                 id="family-missing"),
    pytest.param(taskdef(containerDefinitions=DROP), ["missing", "containerDefinitions"],
                 id="container-definitions-missing"),
    # wrong types
    pytest.param(taskdef(cpu="abc"), ["'cpu'", "'abc'"], id="task-cpu-abc"),
    pytest.param(taskdef(memory="lots"), ["'memory'", "'lots'"], id="task-memory-lots"),
    pytest.param(taskdef(container(cpu="abc")), ["integer", "'abc'", "containerDefinitions[0].cpu"],
                 id="container-cpu-abc"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": "x"}])),
                 ["integer", "'x'", "containerDefinitions[0].portMappings[0].containerPort"], id="container-port-x"),
    pytest.param(taskdef(container(memoryReservation="x")),
                 ["integer", "containerDefinitions[0].memoryReservation"], id="memory-reservation-x"),
    pytest.param(taskdef(container(healthCheck=_hc(interval="often"))),
                 ["integer", "containerDefinitions[0].healthCheck.interval"], id="health-check-interval-string"),
    # family
    pytest.param(taskdef(family="web app"), ["Family name", "1-255"], id="family-space"),
    pytest.param(taskdef(family="web.app"), ["Family name"], id="family-dot"),
    pytest.param(taskdef(family="web/app"), ["Family name"], id="family-slash"),
    pytest.param(taskdef(family=""), ["Family name"], id="family-empty"),
    pytest.param(taskdef(family="f" * 256), ["Family name", "1-255"], id="family-256-chars"),
    # containers
    pytest.param(taskdef(containerDefinitions=[]), ["Container list cannot be empty"], id="no-containers"),
    pytest.param(taskdef(*[container(name=f"c{i}") for i in range(11)]), ["Too many containers", "10"],
                 id="11-containers"),
    pytest.param(taskdef(container(), container()), ["unique", "'app'"], id="duplicate-container-names"),
    pytest.param(taskdef(container(essential=False), container(name="b", essential=False)),
                 ["essential"], id="no-essential-container"),
    pytest.param(taskdef(container(image=DROP)), ["image", "null or empty"], id="image-missing"),
    pytest.param(taskdef(container(image="")), ["image", "null or empty"], id="image-empty"),
    pytest.param(taskdef(container(image="   ")), ["image", "null or empty"], id="image-blank"),
    pytest.param(taskdef(container(name=DROP)), ["Container.name"], id="name-missing"),
    pytest.param(taskdef(container(name="my app")), ["Container.name"], id="name-bad-chars"),
    pytest.param(taskdef(container(name="n" * 256)), ["Container.name", "1-255"], id="name-256-chars"),
    # container memory and cpu
    pytest.param(taskdef(container(memory=DROP)),
                 ["'app'", "'memory'", "'memoryReservation'", "must be specified"],
                 id="no-memory-no-reservation-no-task-memory"),
    pytest.param(taskdef(container(memory=4)), ["'memory'", "'app'", "at least 6"], id="memory-below-6"),
    pytest.param(taskdef(container(memory=DROP, memoryReservation=5)),
                 ["'memoryReservation'", "at least 6"], id="reservation-below-6"),
    pytest.param(taskdef(container(memory=512, memoryReservation=1024)),
                 ["'memoryReservation'", "'app'", "less than or equal to", "'memory'"],
                 id="reservation-above-memory"),
    pytest.param(taskdef(container(cpu=-1)), ["'cpu'", "'app'", "negative"], id="container-cpu-negative"),
    # task size
    pytest.param(taskdef(cpu="64"), ["task cpu", "128", "196608"], id="task-cpu-below-128"),
    pytest.param(taskdef(cpu="196609"), ["task cpu", "128", "196608"], id="task-cpu-above-192-vcpu"),
    pytest.param(taskdef(cpu="0"), ["task cpu", "128"], id="task-cpu-zero"),
    pytest.param(taskdef(cpu="0.1 vCPU"), ["'cpu'", "whole number"], id="task-cpu-fraction-of-a-unit"),
    pytest.param(taskdef(cpu="2 GB"), ["'cpu'", "'2 GB'"], id="task-cpu-in-gb"),
    pytest.param(taskdef(memory="1 vCPU"), ["'memory'", "'1 vCPU'"], id="task-memory-in-vcpu"),
    pytest.param(taskdef(memory="4"), ["task memory", "at least 6"], id="task-memory-below-6"),
    pytest.param(taskdef(container(cpu=768), container(name="b", cpu=512), cpu="1024"),
                 ["sum of all container cpu", "1280", "1024"], id="container-cpu-sum-above-task-cpu"),
    pytest.param(taskdef(container(memory=2048), memory="1536"),
                 ["'memory'", "'app'", "2048", "1536"], id="container-memory-above-task-memory"),
    pytest.param(taskdef(container(memory=DROP, memoryReservation=1024),
                         container(name="b", memory=DROP, memoryReservation=1024), memory="1536"),
                 ["sum of all container memory reservations", "2048", "1536"],
                 id="reservation-sum-above-task-memory"),
    # health check
    pytest.param(taskdef(container(healthCheck={"command": []})), ["healthCheck", "'command' is required"],
                 id="health-check-empty-command"),
    pytest.param(taskdef(container(healthCheck={"interval": 10})), ["healthCheck", "'command' is required"],
                 id="health-check-no-command"),
    pytest.param(taskdef(container(healthCheck={"command": ["curl", "-f", "localhost"]})),
                 ["healthCheck.command", "CMD or CMD-SHELL"], id="health-check-command-not-cmd"),
    pytest.param(taskdef(container(healthCheck=_hc(interval=4))), ["healthCheck.interval", "5-300"],
                 id="health-check-interval-4"),
    pytest.param(taskdef(container(healthCheck=_hc(interval=301))), ["healthCheck.interval", "5-300"],
                 id="health-check-interval-301"),
    pytest.param(taskdef(container(healthCheck=_hc(timeout=1))), ["healthCheck.timeout", "2-60"],
                 id="health-check-timeout-1"),
    pytest.param(taskdef(container(healthCheck=_hc(timeout=61))), ["healthCheck.timeout", "2-60"],
                 id="health-check-timeout-61"),
    pytest.param(taskdef(container(healthCheck=_hc(retries=0))), ["healthCheck.retries", "1-10"],
                 id="health-check-retries-0"),
    pytest.param(taskdef(container(healthCheck=_hc(retries=11))), ["healthCheck.retries", "1-10"],
                 id="health-check-retries-11"),
    pytest.param(taskdef(container(healthCheck=_hc(startPeriod=-1))), ["healthCheck.startPeriod", "0-300"],
                 id="health-check-start-period-negative"),
    pytest.param(taskdef(container(healthCheck=_hc(startPeriod=301))), ["healthCheck.startPeriod", "0-300"],
                 id="health-check-start-period-301"),
    # other container settings
    pytest.param(taskdef(container(stopTimeout=1)), ["'stopTimeout'", "'app'", "2-120"], id="stop-timeout-1"),
    pytest.param(taskdef(container(stopTimeout=121)), ["'stopTimeout'", "2-120"], id="stop-timeout-121"),
    pytest.param(taskdef(container(logConfiguration={"logDriver": "cloudwatch"})),
                 ["'logDriver'", "'cloudwatch'", "awslogs"], id="bad-log-driver"),
    # ports
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80, "protocol": "sctp"}])),
                 ["protocol", "'sctp'", "tcp, udp"], id="bad-protocol"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 0}])),
                 ["'containerPort'", "1-65535"], id="container-port-0"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 70000}])),
                 ["'containerPort'", "1-65535"], id="container-port-70000"),
    pytest.param(taskdef(container(portMappings=[{"hostPort": 80}])),
                 ["'containerPort'"], id="container-port-missing"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80, "hostPort": 70000}])),
                 ["'hostPort'", "0-65535"], id="host-port-70000"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80, "hostPort": -1}])),
                 ["'hostPort'", "0-65535"], id="host-port-negative"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80, "hostPort": 8080}]), networkMode="host"),
                 ["networkMode=host", "containerPort and hostPort values must match", "80", "8080"],
                 id="host-mode-port-mismatch"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80, "hostPort": 8080}]),
                         container(name="b", portMappings=[{"containerPort": 81, "hostPort": 8080}])),
                 ["host port 8080/tcp", "more than once"], id="duplicate-static-host-port"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": 80}]),
                         container(name="b", portMappings=[{"containerPort": 80}]), networkMode="host"),
                 ["host port 80/tcp", "more than once"], id="duplicate-host-mode-port"),
    # network mode and compatibilities
    pytest.param(taskdef(networkMode="awsvpc"), ["awsvpc", "not supported", "bridge or host"],
                 id="awsvpc-unsupported"),
    pytest.param(taskdef(networkMode="none"), ["none", "not supported"], id="none-unsupported"),
    pytest.param(taskdef(networkMode="overlay"), ["Invalid networkMode 'overlay'", "bridge, host, awsvpc, none"],
                 id="unknown-network-mode"),
    pytest.param(taskdef(requiresCompatibilities=["FARGATE"]), ["FARGATE", "not supported", "EC2"],
                 id="fargate-unsupported"),
    pytest.param(taskdef(requiresCompatibilities=["EC2", "FARGATE"]), ["FARGATE", "not supported"],
                 id="ec2-and-fargate"),
    pytest.param(taskdef(requiresCompatibilities=["EXTERNAL"]), ["EXTERNAL", "not supported"],
                 id="external-unsupported"),
    pytest.param(taskdef(requiresCompatibilities=["LAMBDA"]),
                 ["Invalid requiresCompatibilities value 'LAMBDA'", "EC2, FARGATE, EXTERNAL"],
                 id="unknown-compatibility"),
    # placement constraints
    pytest.param(taskdef(placementConstraints=[{"type": "distinctInstance"}]),
                 ["only support type memberOf"], id="distinct-instance-in-task-definition"),
    pytest.param(taskdef(placementConstraints=[{"type": "memberOf"}]),
                 ["memberOf", "requires an expression"], id="memberof-without-expression"),
    pytest.param(taskdef(placementConstraints=[{"type": "sameHost"}]),
                 ["Invalid placement constraint type 'sameHost'"], id="unknown-constraint-type"),
    pytest.param(taskdef(placementConstraints=[{"type": "memberOf", "expression": "x" * 2001}]),
                 ["2000 characters"], id="constraint-expression-too-long"),
    pytest.param(taskdef(placementConstraints=[{"type": "memberOf", "expression": "attribute:a exists"}] * 11),
                 ["(11)", "limit of 10"], id="11-constraints"),
]


@pytest.mark.parametrize("request_json, message_parts", BAD_TASK_DEFINITIONS)
def test_bad_task_definition_is_a_client_exception(request_json, message_parts):
    with pytest.raises(ClientException) as info:
        parse_task_definition(request_json)

    error = info.value
    assert (error.code, error.status) == ("ClientException", 400)
    for part in message_parts:
        assert part in error.message


def test_bad_request_is_not_changed_by_parsing():
    request = taskdef(container(cpu=-1), cpu=1024)
    before = copy.deepcopy(request)

    with pytest.raises(ClientException):
        parse_task_definition(request)

    assert request == before


def test_parsing_does_not_change_a_good_request():
    request = seed()
    request["cpu"] = 1024  # int, normalised to "1024" in the result, not in the input
    before = copy.deepcopy(request)

    parse_task_definition(request)

    assert request == before


# Strict types, as botocore is: no quiet coercion of a value AWS would refuse.


@pytest.mark.parametrize("request_json, path", [
    pytest.param(taskdef(container(), container(name="sidecar", essential="false")),
                 "containerDefinitions[1].essential", id="essential-string-false"),
    pytest.param(taskdef(container(essential=None)), "containerDefinitions[0].essential", id="essential-null"),
    pytest.param(taskdef(container(cpu=1.5)), "containerDefinitions[0].cpu", id="container-cpu-fraction"),
    pytest.param(taskdef(container(cpu=True)), "containerDefinitions[0].cpu", id="container-cpu-bool"),
    pytest.param(taskdef(container(portMappings=[{"containerPort": "5000"}])),
                 "containerDefinitions[0].portMappings[0].containerPort", id="container-port-quoted"),
    pytest.param(taskdef(cpu=[1024]), "cpu", id="task-cpu-list"),
    pytest.param(taskdef(containerDefinitions=None), "containerDefinitions", id="container-definitions-null"),
    pytest.param(taskdef(containerDefinitions=["app"]), "containerDefinitions[0]", id="container-not-an-object"),
])
def test_wrong_type_is_refused_at_its_path(request_json, path):
    with pytest.raises(ClientException) as info:
        parse_task_definition(request_json)

    assert f"(at {path})" in info.value.message
    assert getattr(info.value, "field_path", path) == path


@pytest.mark.parametrize("request_json, message_parts", [
    pytest.param(taskdef(containerDefinitions="app"), ["expected a list", "(at containerDefinitions)"],
                 id="container-definitions-string"),
    pytest.param(taskdef(containerDefinitions={"name": "app", "image": "x", "memory": 6}),
                 ["expected a list", "(at containerDefinitions)"], id="container-definitions-object"),
    pytest.param(taskdef(container(healthCheck={"command": "CMD-SHELL curl -f localhost"})),
                 ["expected a list", "healthCheck.command"], id="health-check-command-string"),
    pytest.param(taskdef(container(entryPoint="/bin/sh")), ["expected a list", "entryPoint"],
                 id="entry-point-string"),
])
def test_string_where_a_list_is_wanted(request_json, message_parts):
    with pytest.raises(ClientException) as info:
        parse_task_definition(request_json)

    for part in message_parts:
        assert part in info.value.message


# AWS fields the emulator does not act on: accepted, kept, returned unchanged

UNTYPED_CONTAINER = {
    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": False}],
    "volumesFrom": [{"sourceContainer": "init", "readOnly": True}],
    "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
    "linuxParameters": {"initProcessEnabled": True},
    "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
    "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}],
}
UNTYPED_TASK = {
    "tags": [{"key": "team", "value": "web"}],
    "pidMode": "task",
    "ephemeralStorage": {"sizeInGiB": 30},
}
VOLUMES = [{"name": "data", "host": {"sourcePath": "/ecs/data"}},
           {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}]


def test_untyped_aws_fields_are_accepted_and_round_trip():
    request = taskdef(
        container(**UNTYPED_CONTAINER),
        container(name="init", essential=False),
        volumes=VOLUMES, **UNTYPED_TASK)

    td = parse_task_definition(request)

    assert td.container_definitions[0].extra == UNTYPED_CONTAINER
    assert td.extra == UNTYPED_TASK
    assert td.volumes == VOLUMES
    api = to_api(td)
    for key, value in UNTYPED_CONTAINER.items():
        assert api["containerDefinitions"][0][key] == value
    for key, value in UNTYPED_TASK.items():
        assert api[key] == value
    assert api["volumes"] == VOLUMES
    assert "extra" not in api and "extra" not in api["containerDefinitions"][0]
    assert from_api(TaskDefinition, api) == td


def test_the_word_extra_is_not_an_aws_field():
    with pytest.raises(ClientException, match="extra"):
        parse_task_definition(taskdef(container(extra={"mountPoints": []})))


# to_api: AWS's names, None omitted, from_api(to_api(x)) == x


def test_to_api_uses_aws_names_and_omits_none():
    td = parse_task_definition(taskdef(
        container(cpu=256, memory=1024, memoryReservation=512,
                  portMappings=[{"containerPort": 80, "hostPort": 0, "appProtocol": "http"}],
                  healthCheck={"command": ["CMD", "true"], "startPeriod": 10},
                  logConfiguration={"logDriver": "json-file", "options": {"max-size": "10m"}},
                  entryPoint=["/bin/sh", "-c"], command=["serve"], dockerLabels={"a": "b"},
                  workingDirectory="/app", stopTimeout=20, startTimeout=60),
        taskRoleArn="arn:aws:iam::123456789012:role/task",
        executionRoleArn="arn:aws:iam::123456789012:role/exec",
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        networkMode="bridge", requiresCompatibilities=["EC2"], cpu="512", memory="1024"))

    api = to_api(td)

    assert set(api) == {
        "family", "containerDefinitions", "revision", "networkMode", "requiresCompatibilities",
        "compatibilities", "cpu", "memory", "placementConstraints", "status", "taskRoleArn",
        "executionRoleArn", "volumes"}  # taskDefinitionArn, registeredAt, deregisteredAt are None
    [c] = api["containerDefinitions"]
    assert c == {
        "name": "app", "image": "nginx:1.25", "cpu": 256, "memory": 1024, "memoryReservation": 512,
        "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp", "appProtocol": "http"}],
        "essential": True, "environment": [],
        "command": ["serve"], "entryPoint": ["/bin/sh", "-c"],
        "healthCheck": {"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3,
                        "startPeriod": 10},
        "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
        "stopTimeout": 20, "startTimeout": 60, "dockerLabels": {"a": "b"},
        "workingDirectory": "/app",
    }
    assert api["placementConstraints"] == [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}]


@pytest.mark.parametrize("request_json", [
    pytest.param(seed(), id="seed"),
    pytest.param(taskdef(), id="minimal"),
    pytest.param(taskdef(container(healthCheck={"command": ["CMD-SHELL", "true"], "retries": 5},
                                   environment=[{"name": "EMPTY"}], **UNTYPED_CONTAINER),
                         container(name="init", essential=False, memory=DROP, memoryReservation=64),
                         networkMode="host", volumes=VOLUMES, **UNTYPED_TASK), id="everything"),
])
def test_from_api_of_to_api_is_identity(request_json):
    td = parse_task_definition(request_json)

    assert from_api(TaskDefinition, to_api(td)) == td


def test_registered_fields_appear_once_set():
    td = parse_task_definition(taskdef())
    td.revision = 4
    td.task_definition_arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:4"
    td.registered_at = 1_700_000_000.5

    api = to_api(td)

    assert api["revision"] == 4
    assert api["taskDefinitionArn"].endswith("task-definition/web:4")
    assert api["registeredAt"] == 1_700_000_000.5
    assert td.family_revision == "web:4"
    assert from_api(TaskDefinition, api) == td


# model helpers


def test_container_lookup_and_env():
    td = TaskDefinition(family="web", container_definitions=[
        ContainerDefinition(name="app", image="a", memory=6,
                            environment=[KeyValuePair("A", "1"), KeyValuePair("B", None), KeyValuePair(None, "x")]),
        ContainerDefinition(name="side", image="b", memory=6)])

    assert td.container("side") is td.container_definitions[1]
    assert td.container("nope") is None
    assert td.container_definitions[0].env() == {"A": "1", "B": ""}


@pytest.mark.parametrize("memory, reservation, reserved", [
    pytest.param(1024, None, 1024, id="memory-only"),
    pytest.param(None, 256, 256, id="reservation-only"),
    pytest.param(1024, 256, 256, id="reservation-wins"),
    pytest.param(None, None, 0, id="neither"),
])
def test_container_reserved_memory(memory, reservation, reserved):
    c = ContainerDefinition(name="a", image="b", memory=memory, memory_reservation=reservation)

    assert c.reserved_memory == reserved


@pytest.mark.parametrize("host_port, dynamic", [(None, True), (0, True), (80, False)],
                         ids=["absent", "zero", "fixed"])
def test_port_mapping_is_dynamic(host_port, dynamic):
    assert PortMapping(container_port=80, host_port=host_port).is_dynamic is dynamic
