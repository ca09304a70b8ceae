"""`make up`, `make load`, `make down`: what a person types first, through the Makefile itself.

`make up` brings the default stack up in the background (here with its own
state directory, API port and ALB port, and a time scale of 20 so a
scale-out fits in a test) and returns; a task answers through the ALB;
`make up` again says it is already running; a bounded `make load` makes the
service scale out and the Auto Scaling group grow; `make down` leaves no
container, volume or network of that cluster behind, and running it twice
is harmless.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from importlib.resources import files
from pathlib import Path

import docker
import pytest
import yaml

from emulator.runtime.base import LABEL_OWNER
from emulator.runtime.docker_runtime import owner_for

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def ecs(api_port: int, operation: str, **params) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/", data=json.dumps(params).encode(), method="POST",
        headers={"X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{operation}",
                 "Content-Type": "application/x-amz-json-1.1"})
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def leftovers(owner: str) -> list[str]:
    client = docker.from_env(timeout=30)
    label = {"label": f"{LABEL_OWNER}={owner}"}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=label)]
            + [f"network {n.name}" for n in client.networks.list(filters=label)])


def test_make_up_load_and_down(built_images, tmp_path):
    state_dir, api_port, alb_port = tmp_path / "state", free_port(), free_port()
    stack = yaml.safe_load((files("emulator") / "stacks" / "default.yaml").read_text())
    stack["settings"]["timeScale"] = 20
    stack["loadBalancers"][0]["listeners"][0]["port"] = alb_port
    stack["scalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] = 50.0
    stack["scalingPolicies"][0]["MaxCapacity"] = 8
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(yaml.safe_dump(stack))
    where = [f"STACK={stack_file}", f"STATE_DIR={state_dir}", f"API_PORT={api_port}"]
    owner = owner_for(state_dir)
    try:
        up = make("up", *where)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "The cluster is up." in up.stdout and f"http://127.0.0.1:{alb_port}/" in up.stdout
        assert f"aws --endpoint-url http://127.0.0.1:{api_port} ecs describe-services" in up.stdout

        body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{alb_port}/", timeout=10).read())
        assert body["version"] == "v1" and body["taskId"]

        again = make("up", *where)
        assert again.returncode == 0 and "already running" in again.stdout

        load = make("load", f"URL=http://127.0.0.1:{alb_port}/cpu?ms=25", "RATE=40", "DURATION=60",
                    timeout=300)
        assert load.returncode == 0, load.stdout + load.stderr
        deadline = time.monotonic() + 120
        while True:  # the scale-out the load started finishes with instances joining
            svc = ecs(api_port, "DescribeServices", cluster="production-cluster",
                      services=["web-app-service"])["services"][0]
            instances = ecs(api_port, "ListContainerInstances", cluster="production-cluster")["containerInstanceArns"]
            if svc["desiredCount"] > 4 and len(instances) > 2:
                break
            assert time.monotonic() < deadline, f"no scale-out: desired {svc['desiredCount']}, {len(instances)} instances"
            time.sleep(1)
    finally:
        down = make("down", f"STATE_DIR={state_dir}")
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(owner) == []
    twice = make("down", f"STATE_DIR={state_dir}")
    assert twice.returncode == 0 and leftovers(owner) == []
    assert os.path.exists(state_dir) and not (state_dir / "state.db").exists()
