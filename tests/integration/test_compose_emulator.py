"""compose/ mode 2, live: the emulator in a container (docker-compose.emulator.yml) runs here and serves the ALB.

docker-compose builds and starts ONLY the `emulator` service (no Prometheus, no Grafana: Grafana's image
needs a registry) under its own project name, with every published port moved to a free one; the test
waits until the stack's two instances are registered (ECS API on the published API port) and the sample
app answers through the ALB's published port, then tears down exactly as compose/README.md says:

    stop emulator;  run --rm --no-deps emulator down;  down -v --remove-orphans

and checks that nothing of that project, and no instance of that emulator, is left.

Not colliding with a developer's own cluster: the Compose project name, volume and ports are the test's
own, and so is the emulator's owner label. That label is sha1(state dir)[:10] (owner_for), and the
override hard-codes the state dir /var/lib/ecsemu with its socket folder /tmp/ecsemu-ce2b61f43a, so the
test adds a third Compose file setting ECSEMU_STATE_DIR to a folder of its own (inside the same named
volume, so `down` in a new container finds the state) and mounting that state dir's socket folder.
The images it builds (ecsemu/emulator:local, and the instance and app images) are kept: cached for the
next run. Every subprocess and wait is bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker
import pytest
import yaml

from emulator.runtime.base import LABEL_OWNER, LABEL_ROLE
from emulator.scenario import load_default_stack

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose" / "docker-compose.yml"
EMULATOR_OVERRIDE = ROOT / "compose" / "docker-compose.emulator.yml"
WHEELS = ROOT / "compose" / "emulator" / "wheels"
FETCH_WHEELS = ROOT / "compose" / "emulator" / "fetch-wheels.sh"

PROJECT = f"ecsemu-test{os.getpid()}"
# Inside the project's own `ecsemu-state` volume (mounted at /var/lib/ecsemu), so `run ... down` sees it too.
STATE_DIR = f"/var/lib/ecsemu/{PROJECT}"
OWNER = hashlib.sha1(STATE_DIR.encode()).hexdigest()[:10]     # owner_for(Path(STATE_DIR)) in the container
RUN_DIR = Path(f"/tmp/ecsemu-{OWNER}")
COMPOSE_LABEL = "com.docker.compose.project"
EMULATOR_IMAGE = yaml.safe_load(EMULATOR_OVERRIDE.read_text())["services"]["emulator"]["image"]

FETCH_TIMEOUT_S = 300
BUILD_UP_TIMEOUT_S = 900      # the image is cached after the first build: seconds then
READY_S = 240                 # the ALB answering and both instances registered
COMMAND_TIMEOUT_S = 120
STOP_TIMEOUT_S = 90           # stop_grace_period is 30 s
DOWN_TIMEOUT_S = 240          # `ecsemu down`: every instance, task and volume


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(url: str) -> tuple[int, dict]:
    with _NO_PROXY.open(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def ecs(api_port: int, operation: str, **params) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/", data=json.dumps(params).encode(), method="POST",
        headers={"X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{operation}",
                 "Content-Type": "application/x-amz-json-1.1"})
    with _NO_PROXY.open(request, timeout=5) as response:
        return json.loads(response.read())


def run(argv: list[str], *, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def described(result: subprocess.CompletedProcess) -> str:
    return f"{' '.join(map(str, result.args))} -> {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def leftovers(client: docker.DockerClient) -> list[str]:
    found = []
    for label in (f"{COMPOSE_LABEL}={PROJECT}", f"{LABEL_OWNER}={OWNER}"):
        filters = {"label": label}
        found += [f"container {c.name} ({label})" for c in client.containers.list(all=True, filters=filters)]
        found += [f"volume {v.name} ({label})" for v in client.volumes.list(filters=filters)]
        found += [f"network {n.name} ({label})" for n in client.networks.list(filters=filters)]
    return found


def image_id(client: docker.DockerClient, name: str) -> str | None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        return client.images.get(name).id
    return None


def drop_if_dangling(client: docker.DockerClient, previous: str | None) -> None:
    """The emulator image a rebuild replaced, by its id, once nothing names it any more."""
    if previous is None or previous == image_id(client, EMULATOR_IMAGE):
        return
    with contextlib.suppress(docker.errors.APIError):
        if not client.images.get(previous).tags:
            client.images.remove(previous)     # refused (and left) while a container or child image uses it


def force_remove(client: docker.DockerClient) -> None:
    """Last resort after a failed teardown: nothing of this project or owner may stay running."""
    for label in (f"{COMPOSE_LABEL}={PROJECT}", f"{LABEL_OWNER}={OWNER}"):
        filters = {"label": label}
        for c in client.containers.list(all=True, filters=filters):
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)
        for v in client.volumes.list(filters=filters):
            with contextlib.suppress(Exception):
                v.remove(force=True)
        for n in client.networks.list(filters=filters):
            with contextlib.suppress(Exception):
                n.remove()


def test_the_emulator_in_a_container_serves_the_alb_and_down_removes_everything(built_images, tmp_path):
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install -y docker-compose); "
                    "compose/docker-compose.emulator.yml cannot be brought up without it")
    client = docker.from_env(timeout=60)
    assert not leftovers(client), f"project {PROJECT} / owner {OWNER} already has Docker objects"

    if not list(WHEELS.glob("*.whl")):      # containers here cannot reach PyPI: the image installs these
        fetched = run([str(FETCH_WHEELS)], timeout=FETCH_TIMEOUT_S, env={**os.environ, "PYTHON": sys.executable})
        assert fetched.returncode == 0, described(fetched)
        assert list(WHEELS.glob("*.whl")), described(fetched)

    api_port, alb_port, prometheus_port, grafana_port = free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECSEMU_", "GRAFANA_", "PROMETHEUS_", "COMPOSE_"))}
    env.update(ECSEMU_BASE_IMAGE=built_images.app_base, ECSEMU_API_PORT=str(api_port),
               ECSEMU_ALB_PORT=str(alb_port), PROMETHEUS_PORT=str(prometheus_port),
               GRAFANA_PORT=str(grafana_port))
    # The test's own state dir, hence its own owner label and socket folder (see the module docstring).
    ours = tmp_path / "docker-compose.test.yml"
    ours.write_text(yaml.safe_dump({"services": {"emulator": {
        "environment": {"ECSEMU_STATE_DIR": STATE_DIR},
        "volumes": [f"{RUN_DIR}:{RUN_DIR}"]}}}))
    compose = [docker_compose, "-p", PROJECT, "-f", str(COMPOSE_FILE), "-f", str(EMULATOR_OVERRIDE), "-f", str(ours)]
    # The override still mounts the default socket folder; docker creates it if missing: remove it again then.
    default_run_dir = Path("/tmp/ecsemu-" + hashlib.sha1(b"/var/lib/ecsemu").hexdigest()[:10])
    default_run_dir_existed = default_run_dir.exists()
    stack = load_default_stack()
    cluster = stack.cluster.cluster_name
    assert sum(g.desired_capacity for g in stack.auto_scaling_groups) == 2     # the two instances waited for

    previous_image = image_id(client, EMULATOR_IMAGE)

    teardown: list[subprocess.CompletedProcess] = []
    t0 = time.monotonic()
    try:
        up = run(compose + ["up", "-d", "--build", "--no-deps", "emulator"], timeout=BUILD_UP_TIMEOUT_S, env=env)
        assert up.returncode == 0, described(up)
        drop_if_dangling(client, previous_image)     # replaced by the rebuild (the source changed): garbage now

        deadline = time.monotonic() + READY_S
        body: dict | None = None
        instances: list[str] = []
        last: object = None
        while time.monotonic() < deadline:
            [container] = client.containers.list(all=True, filters={"label": [f"{COMPOSE_LABEL}={PROJECT}",
                                                                              "com.docker.compose.service=emulator"]})
            if container.status not in ("created", "running", "restarting"):
                break
            try:
                instances = ecs(api_port, "ListContainerInstances", cluster=cluster)["containerInstanceArns"]
                status, body = get_json(f"http://127.0.0.1:{alb_port}/")
                if status == 200 and body.get("version") == "v1" and len(instances) == 2:
                    break
                last = (status, body, instances)
            except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
                last = exc
            body = None
            time.sleep(2)
        if body is None:
            logs = run(compose + ["logs", "--no-color", "--tail", "60", "emulator"], timeout=COMMAND_TIMEOUT_S, env=env)
            pytest.fail(f"the emulator container did not serve the ALB with 2 instances within {READY_S} s "
                        f"(last: {last!r}; container {container.status})\n{logs.stdout[-6000:]}")
        ready_s = time.monotonic() - t0
        assert body["version"] == "v1" and body["taskId"], body
        assert len(instances) == 2, instances
        # The instances are the host's containers, labelled with this emulator's owner (not the default one).
        running = client.containers.list(filters={"label": [f"{LABEL_OWNER}={OWNER}", f"{LABEL_ROLE}=instance"]})
        assert len(running) == 2, [c.name for c in running]
        print(f"emulator container: up and serving in {ready_s:.0f} s (API :{api_port}, ALB :{alb_port})")
    finally:
        # compose/README.md: stop the emulator, `down` removes its instances, then the services and volumes.
        for argv, timeout in ((["stop", "emulator"], STOP_TIMEOUT_S),
                              (["run", "--rm", "--no-deps", "emulator", "down"], DOWN_TIMEOUT_S),
                              (["down", "-v", "--remove-orphans"], COMMAND_TIMEOUT_S)):
            try:
                teardown.append(run(compose + argv, timeout=timeout, env=env))
            except subprocess.TimeoutExpired as exc:
                teardown.append(subprocess.CompletedProcess(exc.cmd, -1, str(exc.stdout or ""), f"timed out: {exc}"))
        left = leftovers(client)
        if left:
            force_remove(client)
        with contextlib.suppress(OSError):
            RUN_DIR.rmdir()                 # `ecsemu down` empties it; its mount point stays on the host
        if not default_run_dir_existed:
            with contextlib.suppress(OSError):
                default_run_dir.rmdir()
    for result in teardown:
        assert result.returncode == 0, described(result)
    assert not left, f"left behind after the README's teardown (removed now): {left}"
    assert not RUN_DIR.exists(), f"{RUN_DIR} is left on the host: {list(RUN_DIR.iterdir())}"
