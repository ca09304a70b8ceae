"""Suite-wide: the owner label every Docker test uses, and the check that nothing labelled survives the suite."""

from __future__ import annotations

import os

import pytest

from emulator.runtime.base import LABEL_OWNER

# Every container, volume and network the tests create carries this owner label,
# so the suite can find (and refuse to leave behind) exactly what it made.
TEST_OWNER = f"test{os.getpid()}"


def _leftovers() -> list[str]:
    try:
        import docker
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:
        return []
    label = f"{LABEL_OWNER}={TEST_OWNER}"
    found = []
    for c in client.containers.list(all=True, filters={"label": label}):
        found.append(f"container {c.name}")
        c.remove(force=True, v=True)
    for v in client.volumes.list(filters={"label": label}):
        found.append(f"volume {v.name}")
        v.remove(force=True)
    for n in client.networks.list(filters={"label": label}):
        found.append(f"network {n.name}")
        n.remove()
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = _leftovers()
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "labelled Docker objects survived the suite (removed now): " + ", ".join(leaked)
        if reporter:
            reporter.write_line(f"FAILED leak check: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- real Docker fixtures (used by tests/integration and the contract suite's docker runtime) ---------


@pytest.fixture(scope="session")
def built_images():
    """The sample app and instance images (built the first time: minutes; cached after: seconds)."""
    from emulator.runtime.images import ensure_images
    return ensure_images(progress=lambda line: print(line, flush=True))


@pytest.fixture(scope="session")
def docker_state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ecsemu-state")


@pytest.fixture(scope="session")
def make_docker_runtime(built_images, docker_state_dir):
    """A factory of runtimes owned by this test session; each terminates its instances when done."""
    import contextlib

    from emulator.runtime.docker_runtime import DockerRuntime

    @contextlib.asynccontextmanager
    async def make(state_dir=None):
        runtime = DockerRuntime(state_dir=state_dir or docker_state_dir, owner=TEST_OWNER)
        try:
            yield runtime
        finally:
            for ec2_id in list(runtime.instances):
                with contextlib.suppress(Exception):
                    await runtime.terminate_instance(ec2_id, stop_timeout_s=2)
            await runtime.close()
    return make
