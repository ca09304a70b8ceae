"""The ALB's listener against real local targets: every ALB behaviour, over real sockets on 127.0.0.1.

Targets are aiohttp servers (and a few raw asyncio servers that misbehave on
purpose) on ephemeral ports. No Docker. Every wait is bounded; the
deregistration delay runs on a FakeClock, the socket timeouts on real time
(they are short here).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time

import aiohttp
import pytest
from aiohttp import web

from emulator.alb import balancer as b
from emulator.alb.balancer import CheckResult, Target
from emulator.alb.health import HealthChecker
from emulator.alb.proxy import AlbProxy
from emulator.alb.targets import DRAINED, TargetGroupRuntime
from emulator.clock import FakeClock, RealClock
from emulator.model.elb import TargetGroup, TargetGroupAttributes

HOST = "127.0.0.1"
WAIT = 10  # seconds: the bound on any single wait in these tests


class Backend:
    """An aiohttp target that says who it is, echoes what it got, and can stream and stall on cue."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections: set[tuple] = set()
        self.requests = 0
        self.release = asyncio.Event()      # lets /stream and /hold finish
        self.first_chunk_seen = asyncio.Event()
        self.health_status = 200
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> Backend:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/", self.echo)
        app.router.add_get("/status/{code}", self.status)
        app.router.add_get("/hold", self.hold)
        app.router.add_get("/sleep/{seconds}", self.sleep)
        app.router.add_get("/stream", self.stream)
        app.router.add_post("/upload", self.upload)
        app.router.add_get("/health", self.health)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, HOST, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def target(self) -> Target:
        return Target(HOST, self.port, instance_id=f"i-{self.name}")

    def _seen(self, request: web.Request) -> None:
        self.requests += 1
        self.connections.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]

    async def echo(self, request: web.Request) -> web.Response:
        self._seen(request)
        body = await request.read()
        return web.json_response({"name": self.name, "method": request.method, "path": request.path_qs,
                                  "headers": dict(request.headers), "body_sha": hashlib.sha256(body).hexdigest(),
                                  "body_len": len(body)})

    async def status(self, request: web.Request) -> web.Response:
        self._seen(request)
        return web.Response(status=int(request.match_info["code"]), text=self.name)

    async def hold(self, request: web.Request) -> web.Response:
        self._seen(request)
        await asyncio.wait_for(self.release.wait(), WAIT)
        return web.Response(text=self.name)

    async def sleep(self, request: web.Request) -> web.Response:
        self._seen(request)
        await asyncio.sleep(float(request.match_info["seconds"]))
        return web.Response(text=self.name)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self._seen(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first-chunk;")
        await asyncio.wait_for(self.release.wait(), WAIT)  # the test releases it after seeing the first chunk
        await response.write(b"second-chunk")
        await response.write_eof()
        return response

    async def upload(self, request: web.Request) -> web.Response:
        self._seen(request)
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            if size == 0:
                self.first_chunk_seen.set()
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha": digest.hexdigest()})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=self.health_status, text="health")

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()


class Alb:
    """One listener in front of one target group, on a fake clock for the deregistration delay."""

    def __init__(self, *, algorithm: str = "round_robin", delay: int = 300, idle_timeout: float = 60.0) -> None:
        self.clock = FakeClock()
        tg = TargetGroup("web", port=80, attributes=TargetGroupAttributes(
            deregistration_delay_timeout_seconds=delay, load_balancing_algorithm_type=algorithm))
        self.runtime = TargetGroupRuntime(tg, self.clock)
        self.proxy = AlbProxy(idle_timeout=idle_timeout)
        self.port = 0

    async def start(self) -> Alb:
        listener = await self.proxy.add_listener(self.runtime, 0, HOST)
        self.port = listener.port
        return self

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def healthy(self, *targets: Target) -> None:
        self.runtime.register(targets)
        for t in targets:
            self.runtime.record_health(t.target_id, CheckResult.passed())

    async def stop(self) -> None:
        await self.proxy.close()
        await self.runtime.close()


@pytest.fixture
async def backends():
    made: list[Backend] = []

    async def make(name: str) -> Backend:
        backend = await Backend(name).start()
        made.append(backend)
        return backend
    yield make
    for backend in made:
        await backend.stop()


@pytest.fixture
async def alb():
    made: list[Alb] = []

    async def make(**kw) -> Alb:
        a = await Alb(**kw).start()
        made.append(a)
        return a
    yield make
    for a in made:
        await a.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as s:
        yield s


@pytest.fixture
async def raw_servers():
    """Targets that misbehave: `make(handler)` -> port; handler(reader, writer) does the damage."""
    servers: list[asyncio.base_events.Server] = []

    async def make(handler) -> int:
        server = await asyncio.start_server(handler, HOST, 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1]
    yield make
    for server in servers:
        server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def raw_request(port: int, data: bytes, *, until_close: bool = True, read_for: float = WAIT) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(data)
    await writer.drain()
    try:
        if until_close:
            return await asyncio.wait_for(reader.read(-1), read_for)
        return await asyncio.wait_for(reader.read(65536), read_for)
    finally:
        writer.close()


# --- forwarding -----------------------------------------------------------------------------

async def test_forwards_with_x_forwarded_headers(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    async with session.get(a.url + "/?q=1", headers={"X-Forwarded-For": "203.0.113.9"}) as r:
        assert r.status == 200
        got = await r.json()
    assert got["name"] == "one" and got["path"] == "/?q=1"
    headers = got["headers"]
    assert headers["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Port"] == str(a.port)
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert headers["Host"] == f"{HOST}:{a.port}"  # the client's Host, unchanged


async def test_round_robin_spreads_requests(backends, alb, session):
    one, two = await backends("one"), await backends("two")
    a = await alb()
    a.healthy(one.target, two.target)
    names = []
    for _ in range(6):
        async with session.get(a.url + "/") as r:
            names.append((await r.json())["name"])
    assert names.count("one") == 3 and names.count("two") == 3
    assert a.runtime.stats.snapshot()["RequestCountPerTarget"] == {one.target.target_id: 3, two.target.target_id: 3}


async def test_least_outstanding_requests_avoids_the_busy_target(backends, alb, session):
    one, two = await backends("one"), await backends("two")
    a = await alb(algorithm="least_outstanding_requests")
    a.healthy(one.target, two.target)
    held = asyncio.ensure_future(session.get(a.url + "/hold"))  # one request parked on one of them
    for _ in range(100):
        if one.requests + two.requests:
            break
        await asyncio.sleep(0.01)
    busy = "one" if one.requests else "two"
    names = []
    for _ in range(4):
        async with session.get(a.url + "/") as r:
            names.append((await r.json())["name"])
    assert busy not in names
    one.release.set()
    two.release.set()
    async with await held as r:
        assert r.status == 200


async def test_keep_alive_connections_to_targets_are_reused(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    for _ in range(20):
        async with session.get(a.url + "/") as r:
            assert r.status == 200
            await r.read()
    assert web1.requests == 20
    assert len(web1.connections) == 1
    assert a.proxy.pool.opened == 1


async def test_pipelined_requests_are_answered_in_order(backends, alb):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    two = b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/201 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = await raw_request(a.port, two)
    assert raw.count(b"HTTP/1.1 200 OK") == 1 and raw.count(b"HTTP/1.1 201 Created") == 1
    assert raw.index(b"200 OK") < raw.index(b"201 Created")
    assert web1.requests == 2 and len(web1.connections) == 1


async def test_http10_client_gets_dechunked_body(backends, alb):
    web1 = await backends("one")
    web1.release.set()
    a = await alb()
    a.healthy(web1.target)
    raw = await raw_request(a.port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and b"Connection: close" in head
    assert body == b"first-chunk;second-chunk"


async def test_head_request_and_target_errors_pass_through(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    async with session.head(a.url + "/") as r:
        assert r.status == 200 and await r.read() == b""
    async with session.get(a.url + "/status/503") as r:
        assert r.status == 503 and await r.text() == "one"
        assert r.headers.get("Server") != "awselb/2.0"  # the target's answer, not the ALB's
    snap = a.runtime.stats.snapshot()
    assert snap["HTTPCode_Target_5XX_Count"] == 1 and snap["HTTPCode_ELB_5XX_Count"] == 0
    assert snap["RequestCount"] == 2


# --- streaming ---------------------------------------------------------------------------------

async def test_response_streams_before_the_target_finishes(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    async with session.get(a.url + "/stream") as r:
        first = await asyncio.wait_for(r.content.readexactly(len(b"first-chunk;")), WAIT)
        assert first == b"first-chunk;"
        assert not web1.release.is_set()  # the target is still in the middle of its answer
        web1.release.set()
        assert await r.read() == b"second-chunk"


async def test_request_body_streams_before_the_client_finishes(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    sent_rest = asyncio.Event()

    async def body():
        yield b"x" * 65536
        await asyncio.wait_for(web1.first_chunk_seen.wait(), WAIT)  # the target has bytes before we finish
        sent_rest.set()
        yield b"y" * 65536

    async with session.post(a.url + "/upload", data=body()) as r:
        got = await r.json()
    assert sent_rest.is_set() and got["size"] == 131072


async def test_large_bodies_round_trip_intact(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    payload = bytes(range(256)) * (8 * 4096)  # 8 MiB
    async with session.post(a.url + "/upload", data=payload) as r:
        got = await r.json()
    assert got == {"size": len(payload), "sha": hashlib.sha256(payload).hexdigest()}
    async with session.post(a.url + "/", data=payload[:3_000_000]) as r:
        echoed = await r.json()
    assert echoed["body_len"] == 3_000_000


# --- the ALB's own answers ---------------------------------------------------------------------

async def test_503_when_no_targets_are_registered(alb, session):
    a = await alb()
    async with session.get(a.url + "/") as r:
        assert r.status == 503
        assert r.headers["Server"] == "awselb/2.0"
        assert r.headers["Content-Type"] == "text/html"
        assert "<title>503 Service Temporarily Unavailable</title>" in await r.text()
    snap = a.runtime.stats.snapshot()
    assert snap["HTTPCode_ELB_503_Count"] == 1 and snap["RequestCount"] == 0


async def test_502_when_the_target_refuses(alb, session):
    a = await alb()
    a.healthy(Target(HOST, closed_port()))
    async with session.get(a.url + "/") as r:
        assert r.status == 502
        assert r.headers["Server"] == "awselb/2.0"
        assert "<title>502 Bad Gateway</title>" in await r.text()
    assert a.runtime.stats.snapshot()["HTTPCode_ELB_502_Count"] == 1


async def test_502_when_the_target_closes_mid_request(alb, session, raw_servers):
    async def hang_up(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
    a = await alb()
    a.healthy(Target(HOST, await raw_servers(hang_up)))
    async with session.get(a.url + "/") as r:
        assert r.status == 502


async def test_502_on_a_malformed_response(alb, session, raw_servers):
    async def garbage(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()
    a = await alb()
    a.healthy(Target(HOST, await raw_servers(garbage)))
    async with session.get(a.url + "/") as r:
        assert r.status == 502


async def test_client_is_cut_when_the_target_dies_mid_body(alb, session, raw_servers):
    async def short(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()
    a = await alb()
    a.healthy(Target(HOST, await raw_servers(short)))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.get(a.url + "/") as r:
            assert r.status == 200
            await r.read()


async def test_504_when_the_target_is_silent_past_the_idle_timeout(backends, alb, session):
    web1 = await backends("one")
    a = await alb(idle_timeout=0.3)
    a.healthy(web1.target)
    started = time.monotonic()
    async with session.get(a.url + "/sleep/3") as r:
        assert r.status == 504
        assert "<title>504 Gateway Timeout</title>" in await r.text()
    assert time.monotonic() - started < 2.5
    assert a.runtime.stats.snapshot()["HTTPCode_ELB_504_Count"] == 1


async def test_400_for_a_malformed_request(backends, alb):
    web1 = await backends("one")
    a = await alb()
    a.healthy(web1.target)
    raw = await raw_request(a.port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request") and b"Server: awselb/2.0" in raw
    assert web1.requests == 0


async def test_a_pooled_connection_the_target_closed_is_retried_once(alb, session, raw_servers):
    """Targets may close idle keep-alive connections; the next request must not see a 502 for it."""
    async def one_per_connection(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # keep-alive promised, then closed while idle
    a = await alb()
    a.healthy(Target(HOST, await raw_servers(one_per_connection)))
    for _ in range(3):
        async with session.get(a.url + "/") as r:
            assert r.status == 200 and await r.read() == b"ok"
        await asyncio.sleep(0.001)


# --- health, draining, fail-open ----------------------------------------------------------------

async def test_fail_open_routes_to_unhealthy_targets(backends, alb, session):
    one, two = await backends("one"), await backends("two")
    a = await alb()
    a.runtime.register([one.target, two.target])
    for t in (one.target, two.target):
        for _ in range(3):
            a.runtime.record_health(t.target_id, CheckResult.code_mismatch(500))
    assert {ts.state for ts in a.runtime.targets} == {b.UNHEALTHY}
    names = set()
    for _ in range(4):
        async with session.get(a.url + "/") as r:
            assert r.status == 200
            names.add((await r.json())["name"])
    assert names == {"one", "two"}


async def test_draining_target_finishes_in_flight_and_gets_nothing_new(backends, alb, session):
    one, two = await backends("one"), await backends("two")
    a = await alb(delay=300)
    a.healthy(one.target)
    drained = []
    a.runtime.subscribe(lambda c: drained.append(c) if c.kind == DRAINED else None)
    held = asyncio.ensure_future(session.get(a.url + "/hold"))
    for _ in range(200):
        if one.requests:
            break
        await asyncio.sleep(0.01)
    a.healthy(two.target)
    a.runtime.deregister([one.target])
    for _ in range(4):
        async with session.get(a.url + "/") as r:
            assert (await r.json())["name"] == "two"
    assert not drained
    one.release.set()
    async with await held as r:
        assert r.status == 200 and await r.text() == "one"  # the in-flight request finished
    assert [c.target for c in drained] == [one.target]
    assert a.runtime.describe_target_health([one.target])[0]["TargetHealth"]["State"] == "draining"
    await a.clock.advance(300)
    assert a.runtime.describe_target_health([one.target])[0]["TargetHealth"]["State"] == "unused"


async def test_requests_still_running_when_the_delay_ends_get_5xx(backends, alb, session):
    web1 = await backends("one")
    a = await alb(delay=10)
    a.healthy(web1.target)
    held = asyncio.ensure_future(session.get(a.url + "/hold"))
    for _ in range(200):
        if web1.requests:
            break
        await asyncio.sleep(0.01)
    a.runtime.deregister([web1.target])
    await a.clock.advance(10)
    async with await held as r:
        assert r.status == 502
    assert a.runtime.stats.snapshot()["HTTPCode_ELB_502_Count"] == 1


async def test_health_checker_against_real_targets(backends, alb, session):
    web1 = await backends("one")
    a = await alb()
    clock = RealClock(time_scale=50)  # 5 s AWS interval = 0.1 s here
    a.runtime.clock = clock
    a.runtime.target_group.health_check_path = "/health"
    a.runtime.target_group.health_check_interval_seconds = 5
    a.runtime.target_group.health_check_timeout_seconds = 2
    checker = HealthChecker(a.runtime, clock)
    checker.start()
    try:
        a.runtime.register([web1.target])
        await wait_for_state(a.runtime, web1.target, b.HEALTHY)
        web1.health_status = 500
        await wait_for_state(a.runtime, web1.target, b.UNHEALTHY)
        ts = a.runtime.targets.get(web1.target.target_id)
        assert ts.reason == b.RESPONSE_CODE_MISMATCH
        assert "[500]" in ts.description
        async with session.get(a.url + "/") as r:  # fail-open: the only target still gets traffic
            assert r.status == 200
    finally:
        await checker.stop()


async def test_health_check_of_a_refusing_target(alb):
    a = await alb()
    clock = RealClock(time_scale=50)
    a.runtime.clock = clock
    a.runtime.target_group.health_check_interval_seconds = 5
    a.runtime.target_group.health_check_timeout_seconds = 2
    checker = HealthChecker(a.runtime, clock)
    checker.start()
    dead = Target(HOST, closed_port())
    try:
        a.runtime.register([dead])
        await wait_for_state(a.runtime, dead, b.UNHEALTHY)
        assert a.runtime.targets.get(dead.target_id).reason == b.FAILED_HEALTH_CHECKS
    finally:
        await checker.stop()


async def wait_for_state(runtime: TargetGroupRuntime, target: Target, state: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        ts = runtime.targets.get(target.target_id)
        if ts is not None and ts.state == state:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{target.target_id} never became {state}: {json.dumps(runtime.describe_target_health())}")


# --- the same core on uvloop (what the emulator and the bench run when it is installed) ----------

async def core_behaviours() -> None:
    """Forwarding, streaming both ways, big bodies, keep-alive, 502/503/504, on whatever loop runs it."""
    one = await Backend("one").start()
    a = await Alb(idle_timeout=0.3).start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as s:
            async with s.get(a.url + "/") as r:
                assert r.status == 503
            a.healthy(one.target)
            for _ in range(5):
                async with s.get(a.url + "/") as r:
                    assert (await r.json())["headers"]["X-Forwarded-Proto"] == "http"
            assert a.proxy.pool.opened == 1
            payload = bytes(range(256)) * 16384  # 4 MiB
            async with s.post(a.url + "/upload", data=payload) as r:
                assert (await r.json())["sha"] == hashlib.sha256(payload).hexdigest()
            async with s.get(a.url + "/stream") as r:
                assert await asyncio.wait_for(r.content.readexactly(12), WAIT) == b"first-chunk;"
                one.release.set()
                assert await r.read() == b"second-chunk"
            async with s.get(a.url + "/sleep/2") as r:
                assert r.status == 504
            a.runtime.register([Target(HOST, closed_port())])
            a.runtime.deregister([one.target])
            await a.clock.advance(300)
            async with s.get(a.url + "/") as r:
                assert r.status == 502
    finally:
        await a.stop()
        await one.stop()


async def test_core_behaviours_on_asyncio():
    await core_behaviours()


def test_core_behaviours_on_uvloop():
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(core_behaviours(), 60))


# --- the service the emulator wires: model shapes in, listeners and checks out -------------------

async def test_alb_service_follows_the_model(backends, session):
    from emulator.alb.service import AlbService
    from emulator.model.elb import Action, Listener, LoadBalancer

    one, two = await backends("one"), await backends("two")
    clock = RealClock(time_scale=50)
    service = AlbService(clock)
    try:
        blue = service.ensure_target_group(TargetGroup("blue", target_group_arn="tg/blue", port=80,
                                                       health_check_interval_seconds=5,
                                                       health_check_path="/health"))
        green = service.ensure_target_group(TargetGroup("green", target_group_arn="tg/green", port=80))
        blue.register([one.target])
        green.register([two.target])
        lb = LoadBalancer("web", load_balancer_arn="lb/web",
                          listeners=[Listener(0, [Action(target_group_arn="tg/blue")])])
        bound = await service.ensure_load_balancer(lb)
        url = f"http://{HOST}:{bound[0]}/"
        await wait_for_state(blue, one.target, b.HEALTHY)
        async with session.get(url) as r:
            assert (await r.json())["name"] == "one"
        lb.listeners[0].default_actions[0].target_group_arn = "tg/green"  # ModifyListener
        assert await service.ensure_load_balancer(lb) == bound  # same port, new target group
        async with session.get(url) as r:
            assert (await r.json())["name"] == "two"
        stats = service.stats()
        assert stats["tg/blue"]["RequestCount"] == 1 and stats["tg/green"]["RequestCount"] == 1
        assert stats["tg/blue"]["HealthyHostCount"] == 1
        await service.remove_load_balancer("lb/web")
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url) as r:
                await r.read()
    finally:
        await service.close()


async def test_no_failed_request_while_targets_rotate_through_draining(backends, session):
    """A rolling replacement in miniature: new targets pass a check before old ones drain; zero errors."""
    pool = [await backends(f"v{i}") for i in range(4)]
    clock = RealClock(time_scale=50)  # interval 5 s -> 0.1 s; delay 5 s -> 0.1 s
    tg = TargetGroup("web", port=80, health_check_interval_seconds=5, health_check_timeout_seconds=2,
                     attributes=TargetGroupAttributes(deregistration_delay_timeout_seconds=5))
    runtime = TargetGroupRuntime(tg, clock)
    checker = HealthChecker(runtime, clock)
    proxy = AlbProxy()
    checker.start()
    listener = await proxy.add_listener(runtime, 0, HOST)
    url = f"http://{HOST}:{listener.port}/status/200"
    statuses: list[int] = []
    stop = asyncio.Event()

    async def client() -> None:
        for _ in range(5000):  # bounded
            if stop.is_set():
                return
            async with session.get(url) as r:
                await r.read()
                statuses.append(r.status)

    try:
        runtime.register([pool[0].target])
        await wait_for_state(runtime, pool[0].target, b.HEALTHY)
        clients = [asyncio.ensure_future(client()) for _ in range(4)]
        for step in range(1, 9):
            new, old = pool[step % 4], pool[(step - 1) % 4]
            runtime.register([new.target])
            await wait_for_state(runtime, new.target, b.HEALTHY)
            runtime.deregister([old.target])
            await wait_for_state_gone(runtime, old.target)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), WAIT)
    finally:
        stop.set()
        await checker.stop()
        await proxy.close()
        await runtime.close()
    assert len(statuses) > 50
    assert set(statuses) == {200}
    assert sum(1 for backend in pool if backend.requests) == 4


async def wait_for_state_gone(runtime: TargetGroupRuntime, target: Target) -> None:
    deadline = time.monotonic() + WAIT
    while runtime.targets.get(target.target_id) is not None:
        assert time.monotonic() < deadline, f"{target.target_id} never left"
        await asyncio.sleep(0.02)
