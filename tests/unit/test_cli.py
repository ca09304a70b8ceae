"""`ecsemu` as a person runs it: what it prints and the exit codes, for the commands that need no Docker."""

from __future__ import annotations

import json

import pytest

from emulator.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_place_default_stack_puts_two_tasks_on_each_t3_medium(capsys):
    code, out, _ = run(capsys, "place", "--json")
    plan = json.loads(out)
    assert code == 0
    assert [len(i["tasks"]) for i in plan["containerInstances"]] == [2, 2]
    assert {i["availabilityZone"] for i in plan["containerInstances"]} == {"us-east-1a", "us-east-1b"}
    assert plan["services"] == [{"name": "web-app-service", "requested": 4, "placed": 4, "events": []}]


def test_place_more_tasks_than_fit_says_what_ecs_says(capsys):
    code, out, _ = run(capsys, "place", "--count", "web-app-service=8")
    assert code == 0
    assert "web-app-service: 4 of 8 tasks placed" in out
    assert ("service web-app-service was unable to place a task because no container instance met all of "
            "its requirements. The closest matching container-instance") in out
    assert "has insufficient CPU units available." in out


def test_place_with_more_instances_fits_the_scaled_out_service(capsys):
    code, out, _ = run(capsys, "place", "--instances", "ecs-instance-asg=4", "--count", "web-app-service=8")
    assert code == 0 and "8 of 8 tasks placed" in out


@pytest.mark.parametrize("argv, message", [
    (["place", "--count", "nope=3"], "the stack has no service named 'nope'"),
    (["place", "--count", "web-app-service"], "takes NAME=N"),
    (["place", "--instances", "nope=1"], "no Auto Scaling group named 'nope'"),
    (["validate", "/nonexistent/stack.yaml"], "/nonexistent/stack.yaml"),
    (["instance-types", "--family", "zz9"], "no instance family 'zz9'"),
], ids=["unknown-service", "count-without-number", "unknown-asg", "missing-file", "unknown-family"])
def test_bad_input_exits_2_with_a_clear_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_validate_a_bad_stack_names_file_and_key(capsys, tmp_path):
    stack = tmp_path / "bad.yaml"
    stack.write_text("cluster:\n  clusterName: c\nservices:\n  - serviceName: s\n    desiredCount: 1\n"
                     "    taskDefinition: nope\n")
    code, _, err = run(capsys, "validate", str(stack))
    assert code == 2
    assert str(stack) in err and "services[0].taskDefinition" in err


def test_instance_types_show_registered_memory_below_the_type(capsys):
    code, out, _ = run(capsys, "instance-types", "--family", "t3", "--json")
    medium = next(t for t in json.loads(out) if t["instanceType"] == "t3.medium")
    assert code == 0
    assert medium == {"instanceType": "t3.medium", "vCPU": 2, "memoryMiB": 4096,
                      "registeredCpu": 2048, "registeredMemoryMiB": 3584}


def test_validate_default_stack(capsys):
    code, out, _ = run(capsys, "validate")
    assert code == 0 and "default.yaml: OK" in out and "production-cluster" in out
