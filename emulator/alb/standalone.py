"""Run one ALB listener by itself, in front of fixed targets: for benchmarks and demos.

    python -m emulator.alb.standalone --port 8080 --target 127.0.0.1:9001 --target 127.0.0.1:9002

The emulator process wires listeners to its own target groups; this runs
the same proxy, balancer and health checker without the rest, on a real
clock. It prints `listening <port>` once it accepts connections, and exits
on SIGTERM/SIGINT (or after `--seconds`), printing the target group's
stats as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from ..clock import RealClock
from ..model.elb import TargetGroup, TargetGroupAttributes
from .balancer import Target
from .eventloop import install_uvloop
from .health import HealthChecker
from .proxy import AlbProxy
from .targets import TargetGroupRuntime


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--target", action="append", default=[], help="host:port, repeatable")
    parser.add_argument("--algorithm", default="round_robin",
                        choices=["round_robin", "least_outstanding_requests"])
    parser.add_argument("--health-path", default="/")
    parser.add_argument("--health-interval", type=int, default=5)
    parser.add_argument("--no-health-checks", action="store_true")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=3600.0, help="exit after this long (bounded)")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--reuse-port", action="store_true", help="share the port with other processes")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict:
    clock = RealClock(time_scale=args.time_scale)
    tg = TargetGroup("standalone", port=80, health_check_path=args.health_path,
                     health_check_interval_seconds=args.health_interval,
                     health_check_timeout_seconds=min(5, args.health_interval - 1),
                     health_check_enabled=not args.no_health_checks,
                     attributes=TargetGroupAttributes(load_balancing_algorithm_type=args.algorithm,
                                                      deregistration_delay_timeout_seconds=0))
    runtime = TargetGroupRuntime(tg, clock)
    checker = HealthChecker(runtime, clock)
    proxy = AlbProxy(idle_timeout=args.idle_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if not args.no_health_checks:
            checker.start()
        targets = []
        for item in args.target:
            host, _, port = item.rpartition(":")
            targets.append(Target(host, int(port)))
        runtime.register(targets)
        listener = await proxy.add_listener(runtime, args.port, args.host, reuse_port=args.reuse_port)
        print(f"listening {listener.port}", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), args.seconds)
        except asyncio.TimeoutError:
            pass
    finally:
        await checker.stop()
        await proxy.close()
        await runtime.close()
    return runtime.stats.snapshot()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_uvloop:
        install_uvloop()
    stats = asyncio.run(run(args))
    print(json.dumps({k: v for k, v in stats.items() if k != "TargetResponseTime"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
