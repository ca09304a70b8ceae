"""A bounded HTTP load generator: a fixed request rate (or a closed loop) for a fixed time, then a report.

What `ecsemu load` and the deployment tests use where `hey` is not
installed: keep-alive connections from one aiohttp session, requests sent
on a schedule (open loop: a slow server does not slow the sender down, up
to `concurrency` requests in flight), every response's status and latency
counted, and optionally one JSON field of each body (the sample app's
`version`) kept with its send time, so a test can say which version
answered when. Every run stops by itself: at `duration_s`, at
`max_requests`, or when `stop` is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


@dataclass(frozen=True)
class LoadSpec:
    url: str
    rate: float | None = 100.0         # requests per second; None: closed loop at `concurrency`
    duration_s: float = 10.0
    concurrency: int = 50              # most requests in flight at once
    max_requests: int | None = None
    timeout_s: float = 10.0
    body_field: str | None = None      # keep this JSON field of each 2xx body (e.g. "version")

    def __post_init__(self) -> None:
        if self.rate is not None and not (0 < self.rate <= 100_000):
            raise ValueError(f"rate must be above 0 and at most 100000 requests/s, not {self.rate}")
        if not (0 < self.duration_s <= 24 * 3600):
            raise ValueError(f"duration must be above 0 and at most a day, not {self.duration_s} s")
        if not (1 <= self.concurrency <= 10_000):
            raise ValueError(f"concurrency must be 1..10000, not {self.concurrency}")
        if not self.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise ValueError(f"load goes only to this machine (http://127.0.0.1:PORT/...), not {self.url}")


@dataclass
class Sample:
    sent_at: float        # seconds since the run began
    latency_s: float
    status: int | None    # None: no HTTP answer (see error)
    error: str | None = None
    value: Any = None     # body_field's value


@dataclass
class LoadReport:
    spec: LoadSpec
    elapsed_s: float = 0.0    # from the first send to the last send (the load's own duration)
    samples: list[Sample] = field(default_factory=list)
    late: int = 0         # sends that waited for a free slot (the server could not keep up)

    @property
    def total(self) -> int:
        return len(self.samples)

    @property
    def statuses(self) -> Counter:
        return Counter(s.status for s in self.samples if s.status is not None)

    @property
    def errors(self) -> Counter:
        return Counter(s.error for s in self.samples if s.error is not None)

    @property
    def non_2xx(self) -> int:
        return sum(1 for s in self.samples if s.status is None or not 200 <= s.status < 300)

    @property
    def rps(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, p: float) -> float | None:
        latencies = sorted(s.latency_s for s in self.samples)
        if not latencies:
            return None
        index = min(len(latencies) - 1, max(0, round(p / 100 * len(latencies) + 0.5) - 1))
        return latencies[index] * 1000

    def values_after(self, t: float) -> Counter:
        """body_field values of the responses to requests sent at or after `t` seconds into the run."""
        return Counter(s.value for s in self.samples if s.sent_at >= t and s.status is not None)

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.spec.url, "requests": self.total, "seconds": round(self.elapsed_s, 3),
            "requests_per_s": round(self.rps, 1), "late_sends": self.late,
            "latency_ms": {f"p{p}": _round(self.percentile_ms(p)) for p in (50, 90, 99)},
            "status_codes": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors), "non_2xx": self.non_2xx,
        }

    def render(self) -> str:
        s = self.summary()
        lines = [f"Summary: {s['requests']} requests in {s['seconds']:.2f} s, {s['requests_per_s']:.1f} requests/s",
                 "Latency: " + ", ".join(f"{k} {v} ms" for k, v in s["latency_ms"].items()),
                 "Status codes: " + (", ".join(f"[{k}] {v}" for k, v in s["status_codes"].items()) or "none")]
        if s["errors"]:
            lines.append("Errors: " + ", ".join(f"{k}: {v}" for k, v in s["errors"].items()))
        if s["late_sends"]:
            lines.append(f"Late sends (server slower than the rate): {s['late_sends']}")
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def run_load(spec: LoadSpec, stop: threading.Event | None = None) -> LoadReport:
    """Send the load, wait for the last answers, return what happened."""
    report = LoadReport(spec)
    slots = asyncio.Semaphore(spec.concurrency)
    connector = aiohttp.TCPConnector(limit=spec.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    in_flight: set[asyncio.Task] = set()
    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        sent = 0
        while True:
            now = time.perf_counter() - start
            if now >= spec.duration_s or (spec.max_requests is not None and sent >= spec.max_requests) or (
                    stop is not None and stop.is_set()):
                break
            if spec.rate is not None:
                due = sent / spec.rate
                if due > now:
                    await asyncio.sleep(min(due - now, 0.05))
                    continue
            if slots.locked():
                report.late += spec.rate is not None
            await slots.acquire()
            task = asyncio.get_running_loop().create_task(_one(session, spec, report, start, slots))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        report.elapsed_s = time.perf_counter() - start
        if in_flight:  # their answers still count; the rate is over the sending time
            await asyncio.gather(*in_flight, return_exceptions=True)
    return report


async def _one(session: aiohttp.ClientSession, spec: LoadSpec, report: LoadReport, start: float,
               slots: asyncio.Semaphore) -> None:
    sent = time.perf_counter()
    sample = Sample(sent - start, 0.0, None)
    try:
        async with session.get(spec.url, allow_redirects=False) as response:
            body = await response.read()
            sample.status = response.status
            if spec.body_field and 200 <= response.status < 300:
                sample.value = _field(body, spec.body_field)
    except asyncio.TimeoutError:
        sample.error = "timeout"
    except aiohttp.ClientError as exc:
        sample.error = type(exc).__name__
    except OSError as exc:
        sample.error = type(exc).__name__
    finally:
        sample.latency_s = time.perf_counter() - sent
        report.samples.append(sample)
        slots.release()


def _field(body: bytes, name: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(name) if isinstance(data, dict) else None


class BackgroundLoad:
    """Runs the load from a child process (`python -m emulator.loadgen`), so it never shares a GIL or a loop
    with the program under test; `finish()` stops it and reads its report."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self._process: subprocess.Popen | None = None
        self._started = 0.0
        self._out: Path | None = None

    def start(self) -> BackgroundLoad:
        fd, name = tempfile.mkstemp(prefix="ecsemu-load-", suffix=".json")
        os.close(fd)
        self._out = Path(name)
        argv = [sys.executable, "-m", "emulator.loadgen", self.spec.url, "--duration", str(self.spec.duration_s),
                "--concurrency", str(self.spec.concurrency), "--timeout", str(self.spec.timeout_s),
                "--samples-out", str(self._out)]
        argv += ["--rate", str(self.spec.rate)] if self.spec.rate is not None else ["--closed-loop"]
        argv += ["--max-requests", str(self.spec.max_requests)] if self.spec.max_requests is not None else []
        argv += ["--body-field", self.spec.body_field] if self.spec.body_field else []
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)
        self._started = time.monotonic()
        return self

    def elapsed(self) -> float:
        """Seconds since start, on the scale of Sample.sent_at (the child starts its clock a little later,
        so a time read here is never before the matching one there)."""
        return time.monotonic() - self._started

    def finish(self, timeout: float | None = None) -> LoadReport:
        """Stop sending (SIGINT), wait for the last answers, return the report."""
        process = self._process
        if process is None:
            raise RuntimeError("the load generator was not started")
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=timeout if timeout is not None else self.spec.timeout_s + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise RuntimeError("the load generator did not stop") from None
        try:
            if process.returncode != 0:
                raise RuntimeError(f"the load generator failed ({process.returncode}): {err.decode()[-2000:]}")
            return report_from_json(self.spec, json.loads(self._out.read_text()))
        finally:
            self._out.unlink(missing_ok=True)


def report_to_json(report: LoadReport) -> dict[str, Any]:
    return {"elapsed_s": report.elapsed_s, "late": report.late,
            "samples": [[s.sent_at, s.latency_s, s.status, s.error, s.value] for s in report.samples]}


def report_from_json(spec: LoadSpec, data: dict[str, Any]) -> LoadReport:
    return LoadReport(spec, data["elapsed_s"], [Sample(*row) for row in data["samples"]], data["late"])


def main(argv: list[str] | None = None, prog: str = "python -m emulator.loadgen") -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=prog,
                                     description="Bounded HTTP load on this machine; prints a summary.")
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--closed-loop", action="store_true", help="as fast as --concurrency allows")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--concurrency", type=int, default=50, help="most requests in flight (default 50)")
    parser.add_argument("--max-requests", type=int)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds (default 10)")
    parser.add_argument("--body-field", help="keep this JSON field of each 2xx body")
    parser.add_argument("--samples-out", help="write every sample here as JSON")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        spec = LoadSpec(args.url, None if args.closed_loop else args.rate, args.duration, args.concurrency,
                        args.max_requests, args.timeout, args.body_field)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    report = asyncio.run(run_load(spec, stop))
    if args.samples_out:
        Path(args.samples_out).write_text(json.dumps(report_to_json(report)))
    print(json.dumps(report.summary(), indent=2) if args.json else report.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
