"""The bounded load generator against a local aiohttp server: it counts what it sent, what came back, and stops."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emulator.loadgen import LoadSpec, report_from_json, report_to_json, run_load


@pytest.fixture
async def server():
    calls = {"n": 0}

    async def hello(request):
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            return web.json_response({"version": "v2"}, status=503)
        return web.json_response({"version": "v1" if calls["n"] < 10 else "v2"})

    app = web.Application()
    app.router.add_get("/", hello)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv, calls
    await srv.close()


async def test_a_closed_loop_sends_exactly_max_requests_and_counts_every_answer(server):
    srv, calls = server
    spec = LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=None, concurrency=4, max_requests=20, body_field="version")

    report = await run_load(spec)

    assert report.total == calls["n"] == 20
    assert report.statuses == {200: 16, 503: 4} and report.non_2xx == 4
    assert report.errors == {}
    assert set(report.values_after(0)) == {"v1", "v2", None}  # 503 bodies are not read as versions
    assert report.summary()["status_codes"] == {"200": 16, "503": 4}
    assert "[503] 4" in report.render()


async def test_connection_errors_are_counted_not_raised():
    spec = LoadSpec("http://127.0.0.1:9/", rate=None, concurrency=2, max_requests=3, timeout_s=2)

    report = await run_load(spec)

    assert report.total == 3 and report.non_2xx == 3
    assert sum(report.errors.values()) == 3 and report.statuses == {}


async def test_a_stop_signal_ends_the_run(server):
    import threading
    srv, _ = server
    stop = threading.Event()
    stop.set()

    report = await run_load(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=1000, duration_s=60), stop)

    assert report.total == 0


async def test_the_report_survives_its_json_form(server):
    srv, _ = server
    spec = LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=None, concurrency=1, max_requests=6, body_field="version")
    report = await run_load(spec)

    again = report_from_json(spec, report_to_json(report))

    assert again.summary() == report.summary()


@pytest.mark.parametrize("kwargs,message", [
    ({"url": "http://example.com/"}, "only to this machine"),
    ({"url": "http://127.0.0.1:1/", "rate": 0}, "rate"),
    ({"url": "http://127.0.0.1:1/", "duration_s": -1}, "duration"),
    ({"url": "http://127.0.0.1:1/", "concurrency": 0}, "concurrency"),
])
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoadSpec(**kwargs)
