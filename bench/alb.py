"""ALB throughput and added latency, side by side with a direct target and with nginx, in one run.

    python bench/alb.py [--json] [--duration 4] [--rounds 5] [--backends 1] [--tool hey|wrk]

Starts trivial aiohttp backends on 127.0.0.1 (this file's `--serve-backend`
mode), the ALB (`python -m emulator.alb.standalone`) and nginx (Debian's
package: one worker, keep-alive upstream, config in a temp dir) in front of
the same backends, then loads each with `hey` on 127.0.0.1:

- throughput: closed loop, 50 connections, `--duration` seconds;
- latency: a fixed 1,000 requests/s (`hey -c 10 -q 100`), `--duration` seconds.

Rounds interleave direct, ALB and nginx so a noisy machine hurts all three
alike; each figure is the median over rounds. Prints `alb_rps`,
`direct_rps`, `nginx_rps`, `alb_added_p50_ms`, `alb_added_p99_ms` (ALB minus
direct at the fixed rate) and, with `--json`, one JSON object as the last
line. Every child is stopped in `finally`; every load is bounded in time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loads go to this machine only
TARGETS = {"alb_rps": 10_000, "alb_vs_nginx": 0.5, "alb_added_p50_ms": 0.5, "alb_added_p99_ms": 2.0}

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream backends {{
{servers}
    keepalive 64;
  }}
  server {{
    listen {host}:{port};
    location / {{
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
    }}
  }}
}}
"""


# --- the backend (a child process of this same file) -----------------------------------

def serve_backend(port: int, seconds: float) -> None:
    import asyncio

    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port, backlog=1024).start()
        await asyncio.sleep(seconds)  # bounded: the bench stops it sooner
        await runner.cleanup()

    asyncio.run(main())


# --- children ----------------------------------------------------------------------------

class Children:
    """Processes this bench started; all stopped on exit, by their own pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout:.0f} s")


def start_alb(children: Children, backend_ports: list[int], uvloop: bool, seconds: float) -> int:
    argv = [sys.executable, "-m", "emulator.alb.standalone", "--port", "0", "--seconds", str(seconds)]
    for port in backend_ports:
        argv += ["--target", f"{HOST}:{port}"]
    if not uvloop:
        argv.append("--no-uvloop")
    proc = children.start(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening "):
        raise RuntimeError(f"the ALB did not start: {line!r}")
    port = int(line.split()[1])
    wait_listening(port, proc)
    return port


def start_nginx(children: Children, backend_ports: list[int], workdir: Path) -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    port = free_port()
    servers = "\n".join(f"    server {HOST}:{p};" for p in backend_ports)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, servers=servers, host=HOST, port=port))
    proc = children.start([nginx, "-c", str(conf), "-p", str(workdir)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, proc)
    return port


# --- load -----------------------------------------------------------------------------------

def hey(url: str, duration: float, *, concurrency: int, qps_per_worker: int | None = None) -> dict:
    argv = ["hey", "-c", str(concurrency), "-z", f"{duration}s"]
    if qps_per_worker:
        argv += ["-q", str(qps_per_worker)]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50% in ([\d.]+) secs", out)
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    ok = sum(int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out) if code.startswith("2"))
    bad = sum(int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out) if not code.startswith("2"))
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]\s+Get ", out))
    if not rps:
        raise RuntimeError(f"hey printed no result for {url}:\n{out[-2000:]}")
    return {"rps": float(rps.group(1)), "p50_ms": float(p50.group(1)) * 1000 if p50 else None,
            "p99_ms": float(p99.group(1)) * 1000 if p99 else None, "ok": ok, "non_2xx": bad, "errors": errors}


def wrk(url: str, duration: float, *, concurrency: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise RuntimeError(f"wrk printed no result for {url}:\n{out[-2000:]}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": float(rps.group(1)), "non_2xx": int(non_2xx.group(1)) if non_2xx else 0}


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


# --- the run ----------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict:
    if not shutil.which("hey"):
        raise SystemExit("hey is not installed: apt-get install -y hey")
    children = Children()
    workdir = Path(tempfile.mkdtemp(prefix="alb-bench-"))
    budget = (args.duration * 2 * 3 + 15) * args.rounds + 60  # every child outlives the run, bounded
    try:
        backend_ports = [free_port() for _ in range(args.backends)]
        for port in backend_ports:
            proc = children.start([sys.executable, __file__, "--serve-backend", str(port),
                                   "--serve-seconds", str(budget)])
            wait_listening(port, proc)
        urls = {
            "direct": f"http://{HOST}:{backend_ports[0]}/",
            "alb": f"http://{HOST}:{start_alb(children, backend_ports, not args.no_uvloop, budget)}/",
            "nginx": f"http://{HOST}:{start_nginx(children, backend_ports, workdir)}/",
        }
        for url in urls.values():  # warm up: connections, caches, the JIT-less interpreters' allocators
            hey(url, 1, concurrency=10)
        throughput: dict[str, list[dict]] = {k: [] for k in urls}
        latency: dict[str, list[dict]] = {k: [] for k in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                if args.tool == "wrk":
                    throughput[name].append(wrk(url, args.duration, concurrency=50))
                else:
                    throughput[name].append(hey(url, args.duration, concurrency=50))
            for name, url in urls.items():
                latency[name].append(hey(url, args.duration, concurrency=10, qps_per_worker=100))
    finally:
        children.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return summarize(args, throughput, latency)


def summarize(args: argparse.Namespace, throughput: dict[str, list[dict]], latency: dict[str, list[dict]]) -> dict:
    """Medians over rounds, the added latency (ALB minus direct), and which targets were met."""
    urls = throughput
    rps = {k: median([r["rps"] for r in v]) for k, v in throughput.items()}
    p50 = {k: median([r["p50_ms"] for r in v]) for k, v in latency.items()}
    p99 = {k: median([r["p99_ms"] for r in v]) for k, v in latency.items()}
    result = {
        "alb_rps": rps["alb"], "direct_rps": rps["direct"], "nginx_rps": rps["nginx"],
        "alb_vs_nginx": round(rps["alb"] / rps["nginx"], 3) if rps["nginx"] else None,
        "alb_added_p50_ms": round(p50["alb"] - p50["direct"], 3),
        "alb_added_p99_ms": round(p99["alb"] - p99["direct"], 3),
        "nginx_added_p50_ms": round(p50["nginx"] - p50["direct"], 3),
        "nginx_added_p99_ms": round(p99["nginx"] - p99["direct"], 3),
        "fixed_rate_rps": {k: median([r["rps"] for r in v]) for k, v in latency.items()},
        "p50_ms": p50, "p99_ms": p99,
        "non_2xx": {k: sum(r["non_2xx"] for r in throughput[k] + latency[k]) for k in urls},
        "errors": {k: sum(r.get("errors", 0) for r in throughput[k] + latency[k]) for k in urls},
        "rounds": args.rounds, "duration_s": args.duration, "backends": args.backends, "tool": args.tool,
        "alb_loop": "asyncio" if args.no_uvloop else _uvloop_or_asyncio(), "cpus": os.cpu_count(),
    }
    result["targets_met"] = {
        "alb_rps": result["alb_rps"] >= TARGETS["alb_rps"],
        "alb_vs_nginx": (result["alb_vs_nginx"] or 0) >= TARGETS["alb_vs_nginx"],
        "alb_added_p50_ms": result["alb_added_p50_ms"] <= TARGETS["alb_added_p50_ms"],
        "alb_added_p99_ms": result["alb_added_p99_ms"] <= TARGETS["alb_added_p99_ms"],
    }
    return result


def _uvloop_or_asyncio() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per load (bounded)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", type=int, default=1)
    parser.add_argument("--tool", choices=["hey", "wrk"], default="hey", help="closed-loop load generator")
    parser.add_argument("--no-uvloop", action="store_true", help="run the ALB on asyncio's own loop")
    parser.add_argument("--serve-backend", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-seconds", type=float, default=600.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_backend:
        serve_backend(args.serve_backend, args.serve_seconds)
        return 0
    args.duration = max(1.0, min(args.duration, 60.0))
    args.rounds = max(1, min(args.rounds, 10))
    result = run(args)
    for key in ("alb_rps", "direct_rps", "nginx_rps", "alb_vs_nginx", "alb_added_p50_ms", "alb_added_p99_ms",
                "nginx_added_p50_ms", "nginx_added_p99_ms"):
        print(f"{key}: {result[key]}")
    print(f"p50_ms: {result['p50_ms']}  p99_ms: {result['p99_ms']}  (at 1,000 req/s)")
    print(f"non-2xx: {result['non_2xx']}  errors: {result['errors']}  loop: {result['alb_loop']}")
    print("targets met: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in result["targets_met"].items()))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
