"""The image pipeline on the real daemon: bases, the instance image, the sample app, a new version.

The first `ensure_images` of a machine bootstraps Debian and builds everything
(minutes); after that it finds every image up to date (seconds). The built
images stay: they are the cache. Every container, volume and folder a test
here creates is labelled `io.ecsemu.test=1` plus this run's id, and removed
by that label even when the test fails.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

from emulator.runtime.base import LABEL_ROLE  # noqa: E402
from emulator.runtime.images import (  # noqa: E402
    APP_IMAGE,
    INSTANCE_IMAGE,
    LABEL_APP_VERSION,
    LABEL_IMAGE_KIND,
    LABEL_SOURCE_HASH,
    LOCAL_BASE,
    MIRROR_ENV,
    ROLE_IMAGE,
    ImageBuildError,
    build_app_image,
    copy_image,
    debian_mirror,
    ensure_images,
)

pytestmark = pytest.mark.docker

TEST_LABEL = "io.ecsemu.test"
RUN_LABEL = "io.ecsemu.test-run"
RUN_ID = uuid.uuid4().hex[:12]
LABELS = {TEST_LABEL: "1", RUN_LABEL: RUN_ID}
WAIT_S = 30


@pytest.fixture(scope="module")
def client():
    try:
        c = docker.from_env(timeout=900)
        c.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Docker daemon: {exc}")
    yield c
    _remove_labelled(c)


def _remove_labelled(c) -> None:
    """Remove what this run created (by its run label only)."""
    selector = {"label": f"{RUN_LABEL}={RUN_ID}"}
    for container in c.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
    for volume in c.volumes.list(filters=selector):
        volume.remove(force=True)


@pytest.fixture(scope="module")
def built(client):
    lines: list[str] = []
    result = ensure_images(client, progress=lines.append)
    print("\n".join(lines))
    return result, lines


@pytest.fixture
def cleanup(client):
    """Undo actions registered here run after the test, pass or fail (last registered first)."""
    undo: list = []
    yield undo
    for action in reversed(undo):
        try:
            action()
        except docker.errors.NotFound:
            pass
    _remove_labelled(client)


def _removed(thing):
    return lambda: thing.remove(force=True, v=True) if hasattr(thing, "exec_run") else thing.remove(force=True)


def http_json(url: str, timeout_s: float = WAIT_S) -> dict:
    """GET until it answers 200 (bounded in time), then the JSON body."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s: {last}")


def run_app(client, cleanup, image: str) -> str:
    """Run `image` on the host daemon, published on 127.0.0.1 at a port Docker picks; its base URL."""
    container = client.containers.run(image, detach=True, labels=LABELS,
                                      ports={"8080/tcp": ("127.0.0.1", None)})
    cleanup.append(_removed(container))
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


# --------------------------------------------------------------------------- images


def test_ensure_images_makes_the_three_images(client, built):
    result, lines = built
    assert all(line.startswith("[images] ") for line in lines), lines
    for name, kind in [(INSTANCE_IMAGE, "instance"), (APP_IMAGE, "app")]:
        labels = client.images.get(name).labels
        assert labels[LABEL_ROLE] == ROLE_IMAGE and labels[LABEL_IMAGE_KIND] == kind
        assert labels[LABEL_SOURCE_HASH]
    assert result.instance == INSTANCE_IMAGE and result.app == APP_IMAGE
    if result.local_base:
        base = client.images.get(LOCAL_BASE)
        assert base.labels[LABEL_IMAGE_KIND] == "base" and base.labels[LABEL_ROLE] == ROLE_IMAGE
        assert LOCAL_BASE in (result.app_base, result.instance_base)
    else:
        assert (result.app_base, result.instance_base) == ("python:3.11-slim", "debian:bookworm-slim")


def test_a_second_run_builds_nothing_and_is_fast(client, built):
    lines: list[str] = []
    t0 = time.monotonic()
    again = ensure_images(client, progress=lines.append)
    elapsed = time.monotonic() - t0
    assert again.built == [], lines
    assert "[images] instance: up to date" in lines and "[images] app: up to date" in lines
    assert not any(": build " in line or "debootstrap" in line or "import" in line for line in lines), lines
    assert elapsed < 10, f"a cached run took {elapsed:.1f} s"


def test_the_app_image_answers_with_its_version(client, built, cleanup):
    url = run_app(client, cleanup, APP_IMAGE)
    body = http_json(url + "/")
    assert body["version"] == "v1"
    assert http_json(url + "/health")["status"] == "healthy"


def test_build_app_image_makes_a_new_version(client, built, cleanup):
    lines: list[str] = []
    image_id = build_app_image("web-app:v2", "v2", client=client, progress=lines.append)
    image = client.images.get("web-app:v2")
    assert image.id == image_id
    assert image.labels[LABEL_APP_VERSION] == "v2" and image.labels[LABEL_IMAGE_KIND] == "app"
    assert client.images.get(APP_IMAGE).id != image_id  # v1 untouched
    url = run_app(client, cleanup, "web-app:v2")
    assert http_json(url + "/")["version"] == "v2"
    # Same inputs: nothing rebuilt.
    again: list[str] = []
    assert build_app_image("web-app:v2", "v2", client=client, progress=again.append) == image_id
    assert again == ["[images] app web-app:v2: up to date"]


# --------------------------------------------------------------------------- the instance image


def _cgroup_v2() -> bool:
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def start_instance(client, name: str, volume: str, host_dir: Path):
    """PLATFORM.md's recipe: all capabilities but SYS_RESOURCE on cgroup v1 hosts, --privileged on v2.

    `--security-opt systempaths=unconfined` is the docker CLI's spelling of
    empty MaskedPaths/ReadonlyPaths (the inner runc must mount /proc); the SDK
    has no parameter for them, so the host config gets them directly.
    """
    binds = [f"{volume}:/var/lib/docker:rw", f"{host_dir}:/run/ecsemu:rw"]
    if _cgroup_v2():
        host_config = client.api.create_host_config(binds=binds, privileged=True, nano_cpus=1_000_000_000,
                                                    mem_limit="512m")
    else:
        host_config = client.api.create_host_config(
            binds=binds + ["/sys/fs/cgroup:/sys/fs/cgroup:rw"], nano_cpus=1_000_000_000, mem_limit="512m",
            cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
            security_opt=["seccomp=unconfined", "apparmor=unconfined"])
        host_config["MaskedPaths"] = []
        host_config["ReadonlyPaths"] = []
    created = client.api.create_container(INSTANCE_IMAGE, name=name, labels=LABELS, host_config=host_config)
    container = client.containers.get(created["Id"])
    return container


def wait_inner(sock: Path, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if sock.exists():
            try:
                inner = docker.DockerClient(base_url=f"unix://{sock}", timeout=120)
                inner.ping()
                return inner
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
        time.sleep(0.1)
    raise AssertionError(f"inner dockerd did not answer on {sock} within {timeout_s} s: {last}")


def test_the_instance_image_runs_a_task_in_its_inner_daemon(client, built, cleanup):
    volume = client.volumes.create(f"ecsemu-test-{RUN_ID}", labels=LABELS)
    cleanup.append(_removed(volume))
    host_dir = Path(tempfile.mkdtemp(prefix="ecsemu-test-"))
    cleanup.append(lambda: shutil.rmtree(host_dir, ignore_errors=True))

    t0 = time.monotonic()
    instance = start_instance(client, f"ecsemu-test-instance-{RUN_ID}", volume.name, host_dir)
    cleanup.append(_removed(instance))
    instance.start()
    inner = wait_inner(host_dir / "docker.sock")
    ready_s = time.monotonic() - t0
    info = inner.info()
    print(f"\ninner dockerd ready in {ready_s:.2f} s; storage {info['Driver']}, cgroup v{info.get('CgroupVersion')}")

    load_s = copy_image(APP_IMAGE, client, inner)
    assert inner.images.get(APP_IMAGE).id == client.images.get(APP_IMAGE).id
    print(f"save/load {APP_IMAGE}: {load_s:.2f} s")

    t0 = time.monotonic()
    task = inner.containers.run(APP_IMAGE, detach=True, labels=LABELS, ports={"8080/tcp": None},
                                environment={"APP_VERSION": "v1-in-instance"})
    task.reload()
    assert task.status == "running"
    port = task.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    instance.reload()
    address = instance.attrs["NetworkSettings"]["IPAddress"]
    assert address, instance.attrs["NetworkSettings"]
    body = http_json(f"http://{address}:{port}/")
    print(f"first task: running and answering in {time.monotonic() - t0:.2f} s at {address}:{port}")
    assert body["version"] == "v1-in-instance"

    if not _cgroup_v2():
        # The task's cgroup sits under the instance's, so the instance's limits bound it.
        nested = Path(f"/sys/fs/cgroup/memory/docker/{instance.id}/ecs/{task.id}")
        assert nested.is_dir(), f"{nested} missing: tasks are not nested under the instance"
    # tini is PID 1 inside and adopts the containerd shims, so none turns into a zombie.
    code, out = instance.exec_run(["ps", "-eo", "ppid=,comm="])
    shims = [line.split() for line in out.decode().splitlines() if "containerd-shim" in line]
    assert code == 0 and shims and all(ppid == "1" for ppid, _ in shims), out.decode()
    inner.close()


# --------------------------------------------------------------------------- the Debian mirror (no daemon needed)


def test_the_mirror_comes_from_the_deb822_stanza_of_the_suite(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    (tmp_path / "sources.list.d" / "other.sources.disabled").write_text(
        "Types: deb\nURIs: http://wrong.example/debian\nSuites: bookworm\n")
    assert debian_mirror(etc_apt=tmp_path) == "http://mirror.example/debian"


def test_the_mirror_falls_back_to_sources_list(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main contrib\n")
    assert debian_mirror(etc_apt=tmp_path) == "http://list.example/debian"


def test_a_host_on_another_release_lends_its_archive_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: trixie-security\n\n"
        "Types: deb\nURIs: http://trixie.example/debian\nSuites: trixie\n")
    assert debian_mirror(etc_apt=tmp_path) == "http://trixie.example/debian"


def test_no_mirror_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(ImageBuildError, match=f"{MIRROR_ENV}=.*or make Docker Hub reachable"):
        debian_mirror(etc_apt=tmp_path)
    monkeypatch.setenv(MIRROR_ENV, "http://env.example/debian")
    assert debian_mirror(etc_apt=tmp_path) == "http://env.example/debian"
