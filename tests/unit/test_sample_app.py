"""sample_app/app.py, the web app the emulator runs in its containers.

Each test starts the app as a real subprocess (the same interpreter as the
tests) on a free port bound to 127.0.0.1, talks to it with http.client, and
kills it in the fixture's finalizer whatever happens. Every wait is a bounded
poll; the whole file takes a few seconds. No Docker involved.
"""

from __future__ import annotations

import functools
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "sample_app"
APP = APP_DIR / "app.py"
MIB = 1024 * 1024
# Variables the app reads: never inherited from whoever runs the tests.
APP_VARIABLES = {
    "PORT", "HOST", "APP_VERSION", "START_UNHEALTHY", "EXIT_ON_START", "STARTUP_DELAY_MS",
    "SHUTDOWN_TIMEOUT_S", "ECS_TASK_ID", "ECS_CONTAINER_INSTANCE_ID", "ECS_AVAILABILITY_ZONE",
    "ECS_CONTAINER_METADATA_FILE",
}


@functools.cache
def load_app_module():
    """app.py imported in-process (it has no side effects until main())."""
    name = "sample_app_under_test"
    spec = importlib.util.spec_from_file_location(name, APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll_until(predicate, timeout: float, interval: float = 0.02):
    """Call predicate until it returns something truthy or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: object


@dataclass
class RunningApp:
    proc: subprocess.Popen
    port: int
    log_path: Path

    def get(self, path: str, method: str = "GET", timeout: float = 10.0) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path)
            return read_reply(conn.getresponse())
        finally:
            conn.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 3.0) -> bool:
        return bool(poll_until(lambda: text in self.logs(), timeout))

    def accepts_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # fields from 3 on: utime is 14, stime 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_reply(resp: http.client.HTTPResponse) -> Reply:
    raw = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    assert "content-length" in headers, f"no Content-Length on {resp.status}"
    assert int(headers["content-length"]) == len(raw) or resp._method == "HEAD"
    body = json.loads(raw) if raw else None
    return Reply(resp.status, headers, body)


@dataclass
class Launcher:
    tmp_path: Path
    started: list[subprocess.Popen] = field(default_factory=list)

    def __call__(self, wait: bool = True, **env: str) -> RunningApp:
        port = free_port()
        child_env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
        child_env.update(PORT=str(port), HOST="127.0.0.1", PYTHONUNBUFFERED="1")
        child_env.update(env)
        log_path = self.tmp_path / f"app-{port}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, str(APP)], cwd=APP_DIR, env=child_env,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            )
        self.started.append(proc)
        app = RunningApp(proc, port, log_path)
        if wait:
            self.wait_ready(app)
        return app

    @staticmethod
    def wait_ready(app: RunningApp, timeout: float = 10.0) -> None:
        """Process start-up: poll until the port accepts connections."""
        ready = poll_until(lambda: app.proc.poll() is not None or app.accepts_connections(), timeout)
        assert ready and app.proc.poll() is None, f"app did not start:\n{app.logs()}"

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def start_app(tmp_path):
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.kill_all()


# ------------------------------------------------------------------ identity /


def test_index_reports_identity_from_environment(start_app):
    app = start_app(APP_VERSION="v2", ECS_TASK_ID="task-1", ECS_CONTAINER_INSTANCE_ID="ci-9",
                    ECS_AVAILABILITY_ZONE="us-east-1b")
    reply = app.get("/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.body == {
        "version": "v2", "taskId": "task-1", "containerInstanceId": "ci-9",
        "availabilityZone": "us-east-1b", "hostname": socket.gethostname(), "pid": app.proc.pid,
    }


def test_index_defaults_to_v1_and_null_ids(start_app):
    body = start_app().get("/").body
    assert body["version"] == "v1"
    assert body["taskId"] is None and body["containerInstanceId"] is None
    assert body["availabilityZone"] is None


def write_metadata(path: Path) -> Path:
    path.write_text(json.dumps({
        "Cluster": "production-cluster",
        "ContainerInstanceARN": "arn:aws:ecs:us-east-1:123456789012:container-instance/production-cluster/ci0abc",
        "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/production-cluster/0f1e2d3c",
        "AvailabilityZone": "us-east-1c",
        "MetadataFileStatus": "READY",
    }))
    return path


def test_index_falls_back_to_ecs_metadata_file(start_app, tmp_path):
    meta = write_metadata(tmp_path / "metadata.json")
    body = start_app(ECS_CONTAINER_METADATA_FILE=str(meta)).get("/").body
    assert body["taskId"] == "0f1e2d3c"
    assert body["containerInstanceId"] == "ci0abc"
    assert body["availabilityZone"] == "us-east-1c"


def test_environment_wins_over_metadata_file(start_app, tmp_path):
    meta = write_metadata(tmp_path / "metadata.json")
    body = start_app(ECS_CONTAINER_METADATA_FILE=str(meta), ECS_TASK_ID="from-env").get("/").body
    assert body["taskId"] == "from-env"
    assert body["containerInstanceId"] == "ci0abc"


def test_unreadable_metadata_file_gives_nulls(start_app, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    app = start_app(ECS_CONTAINER_METADATA_FILE=str(broken))
    assert app.get("/").body["taskId"] is None
    app2 = start_app(ECS_CONTAINER_METADATA_FILE=str(tmp_path / "missing.json"))
    assert app2.get("/").status == 200


# ----------------------------------------------------------------------- health


def test_health_is_200_then_503_after_fail(start_app):
    app = start_app()
    assert (app.get("/health").status, app.get("/health").body) == (200, {"status": "healthy"})
    fail = app.get("/fail")
    assert (fail.status, fail.body) == (200, {"health": "failing"})
    assert app.get("/health").status == 503
    assert app.get("/health").status == 503  # stays failing
    assert app.get("/").status == 200  # only health fails


def test_start_unhealthy(start_app):
    app = start_app(START_UNHEALTHY="1")
    reply = app.get("/health")
    assert reply.status == 503
    assert reply.body == {"status": "unhealthy"}


def test_exit_on_start_exits_with_that_code_quickly(start_app):
    began = time.monotonic()
    app = start_app(wait=False, EXIT_ON_START="3")
    assert app.proc.wait(timeout=5) == 3
    assert time.monotonic() - began < 3
    assert "EXIT_ON_START" in app.logs()


def test_bad_configuration_exits_2(start_app):
    app = start_app(wait=False, STARTUP_DELAY_MS="soon")
    assert app.proc.wait(timeout=5) == 2
    assert "STARTUP_DELAY_MS" in app.logs()


def test_startup_delay_postpones_listening(start_app):
    began = time.monotonic()
    app = start_app(STARTUP_DELAY_MS="400")
    assert time.monotonic() - began >= 0.4
    assert app.get("/health").status == 200


def test_sigterm_during_startup_delay_exits_0(start_app):
    app = start_app(wait=False, STARTUP_DELAY_MS="20000")
    assert app.wait_for_log("waiting before listening"), app.logs()
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=3) == 0


# ------------------------------------------------------------------------- load


def test_cpu_burns_cpu_time_not_wall_time(start_app):
    app = start_app()
    before = app.cpu_seconds()
    reply = app.get("/cpu?ms=200")
    used = app.cpu_seconds() - before
    assert reply.status == 200
    assert reply.body["requestedMs"] == 200
    assert reply.body["cpuMs"] >= 200
    assert used >= 0.17, f"child used only {used:.3f}s CPU"  # /proc has 10 ms ticks


def test_mem_holds_resident_memory_and_releases_it(start_app):
    app = start_app()
    baseline = app.rss_bytes()
    held = app.get("/mem?mb=50")
    assert (held.status, held.body["heldMb"], held.body["allocatedMb"]) == (200, 50, 50)
    grown = app.rss_bytes()
    assert grown - baseline >= 40 * MIB, f"RSS grew by only {(grown - baseline) / MIB:.1f} MiB"
    assert app.get("/mem?mb=10").body["heldMb"] == 60
    released = app.get("/mem?mb=0&release=1")
    assert (released.status, released.body["heldMb"], released.body["released"]) == (200, 0, True)
    assert app.rss_bytes() <= grown - 40 * MIB
    assert app.get("/stats").body["heldMb"] == 0


def test_slow_sleeps(start_app):
    app = start_app()
    began = time.monotonic()
    reply = app.get("/slow?ms=300")
    assert time.monotonic() - began >= 0.3
    assert (reply.status, reply.body) == (200, {"sleptMs": 300})


# ------------------------------------------------------------------------- HTTP


def test_unknown_path_is_404_json(start_app):
    reply = start_app().get("/nowhere?x=1")
    assert reply.status == 404
    assert reply.body == {"error": "not found", "path": "/nowhere"}


@pytest.mark.parametrize("target, param", [
    ("/cpu?ms=abc", "ms"), ("/slow?ms=-5", "ms"), ("/mem?mb=1.5", "mb"), ("/cpu?ms=", "ms"),
])
def test_bad_query_values_are_400_json(start_app, target, param):
    reply = start_app().get(target)
    assert reply.status == 400
    assert reply.body["param"] == param and "error" in reply.body


def test_keep_alive_serves_two_requests_on_one_connection(start_app):
    app = start_app()
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    try:
        conn.request("GET", "/")
        first = read_reply(conn.getresponse())
        sock = conn.sock
        assert sock is not None, "server closed the connection after one request"
        conn.request("GET", "/health")
        second = read_reply(conn.getresponse())
        assert conn.sock is sock
    finally:
        conn.close()
    assert (first.status, second.status) == (200, 200)
    assert first.headers.get("connection", "").lower() != "close"


def test_head_answers_headers_only(start_app):
    reply = start_app().get("/health", method="HEAD")
    assert reply.status == 200
    assert int(reply.headers["content-length"]) > 0 and reply.body is None


def test_logs_start_up_and_one_line_per_request(start_app):
    app = start_app(APP_VERSION="v7")
    assert "sample app v7 listening on 127.0.0.1:" in app.logs()
    app.get("/slow?ms=20")
    app.get("/missing")
    assert app.wait_for_log('"GET /missing" 404'), app.logs()
    line = next(l for l in app.logs().splitlines() if '"GET /slow?ms=20"' in l)
    assert line.split()[-2:][0] == "200" and line.endswith("ms")
    assert float(line.split()[-1].removesuffix("ms")) >= 20


def raw_exchange(app: RunningApp, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    chunks = []
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_unknown_method_is_501_json_and_closes(start_app):
    app = start_app()
    head, _, body = raw_exchange(app, b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501")
    assert b"Content-Length: %d" % len(body) in head and b"Connection: close" in head
    assert "error" in json.loads(body)
    assert app.wait_for_log('"BREW /" 501'), app.logs()


def test_malformed_request_line_gets_json_error_and_server_survives(start_app):
    app = start_app()
    answer = raw_exchange(app, b"GARBAGE\r\n\r\n")  # no version: HTTP/0.9 rules, body only
    assert json.loads(answer)["error"].startswith("Bad request syntax")
    assert app.wait_for_log('"- -" 400'), app.logs()
    assert app.get("/health").status == 200
    assert "Traceback" not in app.logs()


# ------------------------------------------------------------------ graceful stop


def request_in_thread(app: RunningApp, path: str) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["reply"] = app.get(path, timeout=10)
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    in_flight = poll_until(lambda: "reply" in outcome or app.get("/stats").body["inFlight"] >= 1, 5)
    assert in_flight and "reply" not in outcome, "request never got in flight"
    return thread, outcome


def test_sigterm_finishes_in_flight_request_refuses_new_ones_and_exits_0(start_app):
    app = start_app()
    thread, outcome = request_in_thread(app, "/slow?ms=1500")
    app.proc.send_signal(signal.SIGTERM)
    refused = poll_until(lambda: not app.accepts_connections(), 1.0)
    assert refused, "still accepting connections after SIGTERM"
    assert app.proc.poll() is None and thread.is_alive(), "should still be draining"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", app.port), timeout=1).close()
    thread.join(timeout=10)
    reply = outcome.get("reply")
    assert reply is not None, f"in-flight request failed: {outcome.get('error')}"
    assert (reply.status, reply.body) == (200, {"sleptMs": 1500})
    assert reply.headers.get("connection") == "close"
    assert app.proc.wait(timeout=5) == 0
    assert "SIGTERM received" in app.logs() and "all requests finished" in app.logs()


def test_drain_wait_is_bounded_by_shutdown_timeout(start_app):
    app = start_app(SHUTDOWN_TIMEOUT_S="0.3")
    thread, outcome = request_in_thread(app, "/slow?ms=5000")
    app.proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert app.proc.wait(timeout=5) == 0
    assert time.monotonic() - began < 2.5
    thread.join(timeout=5)
    assert "reply" not in outcome
    assert "still in flight" in app.logs()


def test_sigint_stops_like_sigterm(start_app):
    app = start_app()
    app.proc.send_signal(signal.SIGINT)
    assert app.proc.wait(timeout=3) == 0
    assert "SIGINT received" in app.logs()


# --------------------------------------------------------------- pure functions


def test_arn_resource_id():
    mod = load_app_module()
    assert mod.arn_resource_id("arn:aws:ecs:us-east-1:1:task/cluster/abc") == "abc"
    assert mod.arn_resource_id("arn:aws:ecs:us-east-1:1:task/abc") == "abc"
    assert mod.arn_resource_id(None) is None and mod.arn_resource_id("") is None


def test_query_values_are_capped():
    mod = load_app_module()
    assert mod.query_int({"ms": ["999999"]}, "ms", 100, mod.MAX_CPU_MS) == 10_000
    assert mod.query_int({"mb": ["99999"]}, "mb", 0, mod.MAX_MEM_MB_PER_CALL) == 4096
    assert mod.query_int({"ms": ["999999"]}, "ms", 1000, mod.MAX_SLOW_MS) == 60_000
    assert mod.query_int({}, "ms", 100, mod.MAX_CPU_MS) == 100
    with pytest.raises(mod.BadRequest):
        mod.query_int({"ms": ["1e3"]}, "ms", 100, mod.MAX_CPU_MS)


def test_config_from_env():
    mod = load_app_module()
    config = mod.Config.from_env({"PORT": "9000", "START_UNHEALTHY": "true", "EXIT_ON_START": "0"})
    assert (config.port, config.start_unhealthy, config.exit_on_start) == (9000, True, 0)
    default = mod.Config.from_env({})
    assert (default.host, default.port, default.version, default.exit_on_start) == ("0.0.0.0", 8080, "v1", None)
    assert default.shutdown_timeout_s == 30.0
    for bad in ({"PORT": "x"}, {"PORT": "70000"}, {"EXIT_ON_START": "256"}, {"SHUTDOWN_TIMEOUT_S": "nan"}):
        with pytest.raises(ValueError):
            mod.Config.from_env(bad)


def test_requirements_and_dockerfile_need_no_index():
    requirements = (APP_DIR / "requirements.txt").read_text().splitlines()
    assert all(not line.strip() or line.lstrip().startswith("#") for line in requirements)
    dockerfile = (APP_DIR / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert "--no-index" in dockerfile and "STOPSIGNAL SIGTERM" in dockerfile
    assert 'CMD ["python3", "app.py"]' in dockerfile
