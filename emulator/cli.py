"""`ecsemu`: the command line. Thin: parse arguments, call the core, render tables or JSON."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence

from . import __version__
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
    return parser


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
