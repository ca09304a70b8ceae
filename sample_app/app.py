"""The sample web app that ecs-emulator runs as real containers.

It stands in for the article's "web-app" task: a small HTTP service that says
which task, container instance and Availability Zone answered, and that can be
driven on purpose into the states the emulator has to react to:

    GET /             identity: version, taskId, containerInstanceId,
                      availabilityZone, hostname, pid
    GET /health       200 {"status": "healthy"}, or 503 once unhealthy
    GET /cpu?ms=N     burn N ms of CPU actually used (default 100, cap 10000),
                      what load drives to make CPU-based scaling happen
    GET /mem?mb=N     allocate and hold N MiB more, every page touched (cap 4096
                      per call); add release=1 to free everything held first
    GET /fail         from now on /health answers 503
    GET /slow?ms=N    sleep N ms (default 1000, cap 60000), then answer
    GET /stats        in-flight requests, memory held, health, draining
    (HEAD works on every path too; any other path is a 404, a bad query a 400)

Environment: PORT (8080), HOST (0.0.0.0), APP_VERSION ("v1"); ECS_TASK_ID,
ECS_CONTAINER_INSTANCE_ID, ECS_AVAILABILITY_ZONE, with ECS's container metadata
file (ECS_CONTAINER_METADATA_FILE: TaskARN, ContainerInstanceARN,
AvailabilityZone) as the fallback; START_UNHEALTHY=1 (health fails from the
start), EXIT_ON_START=<code> (exit at once with that code, for circuit-breaker
tests), STARTUP_DELAY_MS=N (wait before listening), SHUTDOWN_TIMEOUT_S (30).

SIGTERM or SIGINT stops it gracefully: the listening socket closes (new
connections are refused), requests in flight finish (at most
SHUTDOWN_TIMEOUT_S), then the process exits 0. One log line per request goes
to stdout, flushed, so `docker logs` sees it at once.

Standard library only (Python 3.11): the image never needs PyPI.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

MAX_CPU_MS = 10_000
MAX_MEM_MB_PER_CALL = 4096
MAX_SLOW_MS = 60_000
CPU_WALL_LIMIT_S = 120.0  # a throttled container may need far more wall time than CPU time
IDLE_KEEPALIVE_S = 75.0  # longer than an ALB's 60 s idle timeout, as AWS advises
STOP_POLL_S = 0.1
MIB = 1024 * 1024
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

_log_lock = threading.Lock()


def log(message: str) -> None:
    """Write one timestamped line to stdout and flush it."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    with _log_lock:
        sys.stdout.write(f"{stamp} {message}\n")
        sys.stdout.flush()


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8080
    version: str = "v1"
    start_unhealthy: bool = False
    exit_on_start: int | None = None
    startup_delay_ms: int = 0
    shutdown_timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Config":
        """Read the configuration; raises ValueError naming a bad variable."""
        return cls(
            host=env.get("HOST") or "0.0.0.0",
            port=_env_int(env, "PORT", 8080, 0, 65535),
            version=env.get("APP_VERSION") or "v1",
            start_unhealthy=_env_flag(env, "START_UNHEALTHY"),
            exit_on_start=_env_optional_int(env, "EXIT_ON_START", 0, 255),
            startup_delay_ms=_env_int(env, "STARTUP_DELAY_MS", 0, 0, 3_600_000),
            shutdown_timeout_s=_env_float(env, "SHUTDOWN_TIMEOUT_S", 30.0, 0.0, 3600.0),
        )


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in TRUE_WORDS


def _env_optional_int(env: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = env.get(name, "").strip()
    return None if raw == "" else _env_int(env, name, 0, low, high)


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is outside {low}..{high}")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:  # also rejects nan
        raise ValueError(f"{name}={value} is outside {low}..{high}")
    return value


# --------------------------------------------------------------------- identity


def arn_resource_id(arn: str | None) -> str | None:
    """The id at the end of an ECS ARN (".../task/cluster/ID" -> "ID")."""
    if not arn:
        return None
    return arn.rsplit("/", 1)[-1] or None


def read_metadata_file(path: str | None) -> dict:
    """ECS's container metadata file as a dict; {} when absent or unreadable."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def identity(version: str, env: Mapping[str, str]) -> dict:
    """Who answered: the environment first, the metadata file as fallback."""
    meta = read_metadata_file(env.get("ECS_CONTAINER_METADATA_FILE"))
    return {
        "version": version,
        "taskId": env.get("ECS_TASK_ID") or arn_resource_id(meta.get("TaskARN")),
        "containerInstanceId": env.get("ECS_CONTAINER_INSTANCE_ID")
        or arn_resource_id(meta.get("ContainerInstanceARN")),
        "availabilityZone": env.get("ECS_AVAILABILITY_ZONE") or meta.get("AvailabilityZone") or None,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }


# ------------------------------------------------------------------------- load


def burn_cpu(ms: int) -> tuple[float, float]:
    """Spin until this thread has used `ms` of CPU; returns (cpu ms, wall ms).

    Measured with time.thread_time(), so it is CPU really consumed, however
    long a throttled container takes to get it (bounded by CPU_WALL_LIMIT_S).
    """
    target = ms / 1000.0
    cpu_start, wall_start = time.thread_time(), time.monotonic()
    wall_deadline = wall_start + CPU_WALL_LIMIT_S
    acc = 0
    while time.thread_time() - cpu_start < target and time.monotonic() < wall_deadline:
        for i in range(2000):  # user-space work between clock reads
            acc ^= i * i
    cpu_ms = (time.thread_time() - cpu_start) * 1000.0
    return cpu_ms, (time.monotonic() - wall_start) * 1000.0


class MemoryHold:
    """Anonymous memory held on purpose; munmap on release gives it back to the OS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: list[mmap.mmap] = []
        self._held_mb = 0

    @property
    def held_mb(self) -> int:
        with self._lock:
            return self._held_mb

    def allocate(self, mb: int) -> int:
        """Map `mb` MiB, write to every page so it is resident; returns total held."""
        if mb > 0:
            block = mmap.mmap(-1, mb * MIB)
            page = mmap.PAGESIZE
            block[::page] = b"\x01" * len(range(0, mb * MIB, page))
            with self._lock:
                self._blocks.append(block)
                self._held_mb += mb
        return self.held_mb

    def release(self) -> None:
        with self._lock:
            blocks, self._blocks, self._held_mb = self._blocks, [], 0
        for block in blocks:
            block.close()


# ------------------------------------------------------------------------ state


class AppState:
    """What the handlers share: health, memory held, requests in flight."""

    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config = config
        self.env = env
        self.memory = MemoryHold()
        self.started = time.monotonic()
        self.draining = False
        self._healthy = not config.start_unhealthy
        self._requests = threading.Condition()
        self._in_flight = 0

    @property
    def healthy(self) -> bool:
        return self._healthy

    def fail(self) -> None:
        self._healthy = False

    @property
    def in_flight(self) -> int:
        with self._requests:
            return self._in_flight

    @contextlib.contextmanager
    def request(self):
        """Count one request as in flight for the duration of the block."""
        with self._requests:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._requests:
                self._in_flight -= 1
                self._requests.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) for no request in flight; True if so."""
        with self._requests:
            return self._requests.wait_for(lambda: self._in_flight == 0, timeout)


# ----------------------------------------------------------------------- routes


class BadRequest(Exception):
    """A query parameter that is not what the endpoint accepts (-> 400)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


Query = dict[str, list[str]]
Response = tuple[int, dict]


def query_int(query: Query, name: str, default: int, cap: int) -> int:
    """A non-negative integer parameter, clamped to `cap`."""
    values = query.get(name)
    if not values:
        return default
    raw = values[-1].strip()
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(name, f"{name} must be a non-negative integer, got {values[-1]!r}")
    return min(int(raw), cap)


def query_flag(query: Query, name: str) -> bool:
    values = query.get(name)
    return bool(values) and values[-1].strip().lower() in TRUE_WORDS


def route_index(state: AppState, query: Query) -> Response:
    return 200, identity(state.config.version, state.env)


def route_health(state: AppState, query: Query) -> Response:
    if state.healthy:
        return 200, {"status": "healthy"}
    return 503, {"status": "unhealthy"}


def route_fail(state: AppState, query: Query) -> Response:
    state.fail()
    return 200, {"health": "failing"}


def route_cpu(state: AppState, query: Query) -> Response:
    ms = query_int(query, "ms", 100, MAX_CPU_MS)
    cpu_ms, wall_ms = burn_cpu(ms)
    return 200, {"requestedMs": ms, "cpuMs": round(cpu_ms, 1), "wallMs": round(wall_ms, 1)}


def route_mem(state: AppState, query: Query) -> Response:
    mb = query_int(query, "mb", 0, MAX_MEM_MB_PER_CALL)
    released = query_flag(query, "release")
    if released:
        state.memory.release()
    try:
        held = state.memory.allocate(mb)
    except (MemoryError, OSError) as exc:
        return 500, {"error": f"could not allocate {mb} MiB: {exc}", "heldMb": state.memory.held_mb}
    return 200, {"allocatedMb": mb, "released": released, "heldMb": held}


def route_slow(state: AppState, query: Query) -> Response:
    ms = query_int(query, "ms", 1000, MAX_SLOW_MS)
    time.sleep(ms / 1000.0)
    return 200, {"sleptMs": ms}


def route_stats(state: AppState, query: Query) -> Response:
    return 200, {
        "inFlight": state.in_flight - 1,  # other requests: this one is not counted
        "heldMb": state.memory.held_mb,
        "healthy": state.healthy,
        "draining": state.draining,
        "uptimeS": round(time.monotonic() - state.started, 3),
    }


ROUTES: dict[str, Callable[[AppState, Query], Response]] = {
    "/": route_index,
    "/health": route_health,
    "/cpu": route_cpu,
    "/mem": route_mem,
    "/fail": route_fail,
    "/slow": route_slow,
    "/stats": route_stats,
}


def dispatch(state: AppState, target: str) -> Response:
    """Answer one GET request target ("/path?query")."""
    parts = urlsplit(target)
    route = ROUTES.get(parts.path)
    if route is None:
        return 404, {"error": "not found", "path": parts.path}
    try:
        return route(state, parse_qs(parts.query, keep_blank_values=True))
    except BadRequest as exc:
        return 400, {"error": str(exc), "param": exc.param}


# ----------------------------------------------------------------------- server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response has Content-Length
    server_version = "ecs-emulator-sample-app"
    timeout = IDLE_KEEPALIVE_S
    server: "AppServer"

    def handle_one_request(self) -> None:
        """One request on this connection, counted in flight from its first byte."""
        if not self._request_arrived():
            self.close_connection = True
            return
        started = time.monotonic()
        self._status: int | None = None
        with self.server.state.request():
            super().handle_one_request()
        if self.server.state.draining:
            self.close_connection = True
        if self._status is not None:
            elapsed_ms = (time.monotonic() - started) * 1000.0
            method, target = self.command or "-", getattr(self, "path", "-")  # unset if malformed
            log(f'{self.client_address[0]} "{method} {target}" {self._status} {elapsed_ms:.1f}ms')

    def _request_arrived(self) -> bool:
        """Block until the client sends something; False on close or idle timeout."""
        try:
            return bool(self.rfile.peek(1))
        except (TimeoutError, OSError):
            return False

    def do_GET(self) -> None:
        try:
            status, body = dispatch(self.server.state, self.path)
        except Exception as exc:  # an answer, not a dropped connection
            status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self.send_json(status, body)

    do_HEAD = do_GET  # same answer and headers; send_json leaves out the body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own errors (bad request line, unknown method) as JSON too."""
        self.send_json(int(code), {"error": message or HTTPStatus(code).phrase}, close=True)

    def send_json(self, status: int, body: dict, close: bool = False) -> None:
        payload = json.dumps(body).encode("utf-8") + b"\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if close or self.server.state.draining:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:  # the client went away
            self.close_connection = True

    def log_request(self, code="-", size="-") -> None:
        """Remember the status; handle_one_request logs once the answer is sent."""
        self._status = int(code) if isinstance(code, int) else None  # HTTPStatus is an int

    def log_message(self, format: str, *args) -> None:
        log(f"{self.client_address[0]} {format % args}")


class AppServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections never hold up exit
    block_on_close = False  # drain() does the bounded waiting instead
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: AppState) -> None:
        self.state = state
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can
        # hang in a container without working DNS; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


# -------------------------------------------------------------------- lifecycle


class StopSignal:
    """Remembers SIGTERM/SIGINT; the handler only sets a field (signal-safe)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "none"

    def wait(self, seconds: float | None = None) -> bool:
        """Sleep until a stop signal (True) or `seconds` elapse (False)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while self.signum is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(STOP_POLL_S)
        return True


def serve(config: Config, state: AppState) -> AppServer:
    """Bind and start answering in a background thread."""
    server = AppServer((config.host, config.port), state)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": STOP_POLL_S}, name="accept", daemon=True
    )
    thread.start()
    return server


def drain(server: AppServer, state: AppState, timeout_s: float) -> int:
    """Refuse new connections, let requests in flight finish, then exit code 0."""
    state.draining = True
    server.shutdown()  # the accept loop stops
    server.server_close()  # the listening socket closes: new connections are refused
    log(f"draining: {state.in_flight} request(s) in flight, waiting up to {timeout_s:g}s")
    if state.wait_idle(timeout_s):
        log("stopped: all requests finished")
    else:
        log(f"stopped: {state.in_flight} request(s) still in flight after {timeout_s:g}s")
    return 0


def main(env: Mapping[str, str] = os.environ) -> int:
    try:
        config = Config.from_env(env)
    except ValueError as exc:
        log(f"bad configuration: {exc}")
        return 2
    if config.exit_on_start is not None:
        log(f"EXIT_ON_START set: exiting with code {config.exit_on_start} (simulated start-up failure)")
        return config.exit_on_start
    stop = StopSignal()
    stop.install()
    if config.startup_delay_ms:
        log(f"STARTUP_DELAY_MS={config.startup_delay_ms}: waiting before listening")
        if stop.wait(config.startup_delay_ms / 1000.0):
            log(f"{stop.name} during start-up delay: exiting")
            return 0
    state = AppState(config, env)
    try:
        server = serve(config, state)
    except OSError as exc:
        log(f"cannot listen on {config.host}:{config.port}: {exc}")
        return 1
    health = "healthy" if state.healthy else "unhealthy (START_UNHEALTHY)"
    log(f"sample app {config.version} listening on {config.host}:{server.server_port} "
        f"(pid {os.getpid()}, {health})")
    stop.wait()
    log(f"{stop.name} received: stopping gracefully")
    return drain(server, state, config.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
