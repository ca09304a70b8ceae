"""`ecsemu`: the command line. Thin: parse arguments, call the core, render tables or JSON."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .app import DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_STATE_DIR
from .errors import AwsError
from .model.instance_types import INSTANCE_TYPES
from .scenario import StackError, load_default_stack, load_stack
from .stack_plan import PlanError, plan_stack_placement


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (StackError, AwsError, PlanError) as exc:
        print(f"ecsemu: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecsemu", description="A local Amazon ECS (EC2 launch type).")
    parser.add_argument("--version", action="version", version=f"ecsemu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    types = sub.add_parser("instance-types", help="the instance-type catalogue and what each type registers")
    types.add_argument("--family", help="only this family (t3, m5, c5, r5, ...)")
    types.add_argument("--reserved-memory", type=int, metavar="MIB",
                       help="memory the OS and agent keep (default: 512 MiB, an eighth below 4 GiB)")
    types.add_argument("--json", action="store_true", help="JSON for scripts")
    types.set_defaults(run=_instance_types)

    validate = sub.add_parser("validate", help="check a stack file (the default stack if none given)")
    validate.add_argument("stack", nargs="?", help="stack YAML file")
    validate.set_defaults(run=_validate)

    place = sub.add_parser("place", help="where a stack's service tasks would go on its instances (no Docker)")
    place.add_argument("stack", nargs="?", help="stack YAML file (default: the built-in stack)")
    place.add_argument("--count", action="append", default=[], metavar="SERVICE=N",
                       help="place N tasks of SERVICE instead of its desiredCount (repeatable)")
    place.add_argument("--instances", action="append", default=[], metavar="ASG=N",
                       help="launch N instances in ASG instead of its desired capacity (repeatable)")
    place.add_argument("--seed", type=int, default=0, help="seed for placement tie-breaks")
    place.add_argument("--json", action="store_true", help="JSON for scripts")
    place.set_defaults(run=_place)

    serve = sub.add_parser("serve", help="run the emulator in the foreground (Ctrl-C stops it; instances keep running)")
    _stack_and_state(serve)
    serve.set_defaults(run=_serve)

    start = sub.add_parser("start", help="run the emulator in the background (log: STATE_DIR/ecsemu.log)")
    _stack_and_state(start)
    start.add_argument("--wait", type=float, default=300, metavar="SECONDS", help="how long to wait for it to be ready")
    start.set_defaults(run=_start)

    stop = sub.add_parser("stop", help="stop the background emulator (its instances and tasks keep running)")
    stop.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where the emulator keeps its state")
    stop.set_defaults(run=_stop)

    down = sub.add_parser("down", help="stop the emulator and remove every instance, task, volume and file it made")
    down.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where the emulator keeps its state")
    down.set_defaults(run=_down)
    return parser


def _stack_and_state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", nargs="?", help="stack YAML file (default: the built-in stack)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where the emulator keeps its state")
    parser.add_argument("--api-host", default=DEFAULT_API_HOST,
                        help="address of the AWS-compatible API (0.0.0.0 to reach it from other containers)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help="port of the API (default 4566)")


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from .app import Emulator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stack = _stack(args.stack)

    async def run() -> None:
        emulator = Emulator(stack, state_dir=args.state_dir, api_host=args.api_host, api_port=args.api_port)
        await emulator.start()
        print(f"ecsemu: ready (stack {stack.source}, state {args.state_dir}, "
              f"API http://{args.api_host}:{emulator.api_port})", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        print("ecsemu: stopping (instances and tasks keep running; the next start adopts them)", flush=True)
        await emulator.stop()

    asyncio.run(run())
    return 0


def _start(args: argparse.Namespace) -> int:
    import time

    from .daemon import log_file, running_pid, start_background

    pid = running_pid(args.state_dir)
    if pid is not None:
        print(f"ecsemu is already running (pid {pid}, state {args.state_dir}); `ecsemu stop` stops it.")
        return 0
    _stack(args.stack)  # a bad stack fails here, before anything starts
    serve_args = ([args.stack] if args.stack else []) + [
        "--state-dir", str(args.state_dir), "--api-host", args.api_host, "--api-port", str(args.api_port)]
    pid = start_background(serve_args, args.state_dir)
    log = log_file(args.state_dir)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if running_pid(args.state_dir) is None:
            print(f"ecsemu: the emulator exited while starting; see {log}", file=sys.stderr)
            return 1
        if "ecsemu: ready" in log.read_text(errors="replace"):
            print(f"ecsemu: running in the background (pid {pid}); log: {log}")
            return 0
        time.sleep(0.2)
    print(f"ecsemu: not ready after {args.wait:.0f} s; see {log}", file=sys.stderr)
    return 1


def _stop(args: argparse.Namespace) -> int:
    from .daemon import stop_background

    print("ecsemu: stopped" if stop_background(args.state_dir) else "ecsemu: not running")
    return 0


def _down(args: argparse.Namespace) -> int:
    from .daemon import remove_everything_sync, stop_background

    stop_background(args.state_dir)
    removed = remove_everything_sync(args.state_dir)
    print(f"ecsemu: down ({removed} instance(s) removed with their tasks and volumes)")
    return 0


def _stack(path: str | None):
    return load_stack(path) if path else load_default_stack()


def _instance_types(args: argparse.Namespace) -> int:
    rows = [t for t in INSTANCE_TYPES.values() if not args.family or t.family == args.family]
    if not rows:
        print(f"ecsemu: no instance family '{args.family}'", file=sys.stderr)
        return 2
    data = [{"instanceType": t.name, "vCPU": t.vcpus, "memoryMiB": t.memory_mib,
             "registeredCpu": t.cpu_units, "registeredMemoryMiB": t.registered_memory_mib(args.reserved_memory)}
            for t in rows]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_table(["TYPE", "VCPU", "MEMORY MIB", "REGISTERED CPU", "REGISTERED MEMORY MIB"],
                    [[d["instanceType"], d["vCPU"], d["memoryMiB"], d["registeredCpu"], d["registeredMemoryMiB"]]
                     for d in data])
    return 0


def _validate(args: argparse.Namespace) -> int:
    stack = _stack(args.stack)
    print(f"{stack.source}: OK")
    print(f"  cluster {stack.cluster.cluster_name}; "
          f"{len(stack.auto_scaling_groups)} Auto Scaling group(s), {len(stack.capacity_providers)} capacity "
          f"provider(s), {len(stack.task_definitions)} task definition(s), {len(stack.services)} service(s), "
          f"{len(stack.load_balancers)} load balancer(s), {len(stack.scaling_policies)} scaling policy(ies)")
    return 0


def _place(args: argparse.Namespace) -> int:
    stack = _stack(args.stack)
    plan = plan_stack_placement(stack, counts=_pairs(args.count, "--count"),
                                instances=_pairs(args.instances, "--instances"), rng=random.Random(args.seed))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return 0
    rows = []
    for inst in plan.instances:
        tasks = Counter(inst.tasks)
        rows.append([inst.ec2_instance_id, inst.instance_type, inst.availability_zone,
                     ", ".join(f"{n} x {svc}" for svc, n in sorted(tasks.items())) or "-",
                     f"{inst.remaining_cpu}/{inst.registered_cpu}", f"{inst.remaining_memory}/{inst.registered_memory}"])
    print_table(["INSTANCE", "TYPE", "AZ", "TASKS", "FREE CPU", "FREE MEMORY MIB"], rows)
    for svc in plan.services:
        print(f"\nservice {svc.name}: {svc.placed} of {svc.requested} tasks placed")
        for message in svc.events:
            print(f"  {message}")
    return 0


def _pairs(items: list[str], flag: str) -> dict[str, int]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise PlanError(f"{flag} takes NAME=N with N a whole number, not '{item}'")
        pairs[name] = int(value)
    return pairs


def print_table(headers: list[str], rows: list[list[object]], out=None) -> None:
    out = out or sys.stdout
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for row in [headers] + cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)


if __name__ == "__main__":
    sys.exit(main())
