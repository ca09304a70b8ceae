"""`ecsemu`: the command line. Thin: parse arguments, call the core, render tables or JSON."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from . import __version__, cli_views
from .app import DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_STATE_DIR
from .cli_client import DEFAULT_ENDPOINT, ENDPOINT_ENV, EmulatorClient, EmulatorUnreachable, resolve_endpoint
from .cli_views import print_table
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
    except EmulatorUnreachable as exc:
        print(f"ecsemu: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


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

    load = sub.add_parser("load", help="bounded HTTP load on this machine (hey's summary: rate, latency, codes)")
    load.add_argument("url", nargs="?", default="http://127.0.0.1:8080/cpu?ms=50",
                      help="what to load (default: the default stack's ALB, CPU endpoint)")
    load.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    load.add_argument("--closed-loop", action="store_true", help="as fast as --concurrency allows instead")
    load.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    load.add_argument("--concurrency", type=int, default=50, help="most requests in flight (default 50)")
    load.add_argument("--timeout", type=float, default=10.0, help="per request, seconds (default 10)")
    load.add_argument("--json", action="store_true", help="JSON for scripts")
    load.set_defaults(run=_load)

    sim = sub.add_parser("simulate", help="play a stack with synthetic traffic on the in-memory runtime, "
                                          "as fast as the CPU allows (the seed's spike by default)")
    sim.add_argument("stack", nargs="?", help="stack YAML file (default: the built-in stack)")
    sim.add_argument("--traffic", help="requests/s from each time of day on, e.g. 09:00=160,09:12=600,09:25=160 "
                                       "(default: the seed's spike)")
    sim.add_argument("--cpu-ms-per-request", type=float, default=10.0, metavar="MS",
                     help="CPU one request costs a task (default 10)")
    sim.add_argument("--start", default="09:00", help="AWS time of day the story starts (default 09:00)")
    sim.add_argument("--until", help="AWS time of day it ends (default 11:15 with the default story, else 10:30)")
    sim.add_argument("--deploy", action="append", default=[], metavar="HH:MM[=IMAGE]",
                     help="update the service to a new revision at that time (default story: 10:30=web-app:v2)")
    sim.add_argument("--service", help="the service --deploy updates (default: the stack's first)")
    sim.add_argument("--seed", type=int, default=0, help="seed for placement and ids")
    sim.add_argument("--json", action="store_true", help="the final state and every event, as JSON")
    sim.set_defaults(run=_simulate)

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

    up = sub.add_parser("up", help="start the emulator in the background if it isn't running, wait until its "
                                   "services are steady, and say where everything is (what `make up` runs)")
    _stack_and_state(up)
    up.add_argument("--wait", type=float, default=600, metavar="SECONDS",
                    help="how long to wait for the services to be steady (default 600)")
    up.set_defaults(run=_up)

    demo = sub.add_parser("demo", help="the article's scaling story live on real Docker, narrated, then a "
                                       "blue/green deployment under load (a few minutes; what `make demo` runs)")
    demo.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR.parent / ".ecsemu-demo",
                      help="where the demo keeps its state (removed at the end)")
    demo.add_argument("--time-scale", type=float, default=15.0, help="AWS seconds per wall second (default 15)")
    demo.set_defaults(run=_demo)

    stop = sub.add_parser("stop", help="stop the background emulator (its instances and tasks keep running)")
    stop.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where the emulator keeps its state")
    stop.set_defaults(run=_stop)

    down = sub.add_parser("down", help="stop the emulator and remove every instance, task, volume and file it made")
    down.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where the emulator keeps its state")
    down.set_defaults(run=_down)
    _views(sub)
    return parser


def _views(sub) -> None:
    """The commands that look at (or change) a running emulator over its API."""
    view = _view_parser
    view(sub, "clusters", cli_views.clusters, "the clusters with their instance, task and service counts",
         cluster=False)
    view(sub, "instances", cli_views.instances, "container instances: type, AZ, tasks, free CPU and memory")
    view(sub, "services", cli_views.services, "services: desired/running/pending and their deployments")

    tasks = view(sub, "tasks", cli_views.tasks, "tasks: task definition, status, health, instance, host port")
    tasks.add_argument("--service", help="only this service's tasks")
    tasks.add_argument("--desired-status", default="RUNNING", choices=("RUNNING", "PENDING", "STOPPED"),
                       help="ListTasks' desiredStatus (default RUNNING)")

    events = view(sub, "events", cli_views.events, "service events, newest last (--follow: as they happen)")
    events.add_argument("--service", help="only this service's events")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events (Ctrl-C stops)")
    events.add_argument("--for", dest="for_seconds", type=float, metavar="SECONDS",
                        help="with --follow: stop after SECONDS (default: until Ctrl-C)")

    targets = view(sub, "targets", cli_views.targets, "the load balancer's targets and their health", cluster=False)
    targets.add_argument("--target-group", help="only this target group (name or ARN)")

    logs = view(sub, "logs", cli_views.logs, "a task's container output")
    logs.add_argument("task", help="task id or ARN")
    logs.add_argument("--container", help="container name (default: the task's first)")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")

    view(sub, "status", cli_views.status, "everything at a glance: instances with their tasks, services, deployments")

    view(sub, "asg", cli_views.asg, "Auto Scaling groups: min/max/desired, in service, protected; their instances "
         "with protection and tasks")
    view(sub, "capacity-providers", cli_views.capacity_providers, "capacity providers: CapacityProviderReservation "
         "vs targetCapacity, M and N, and the article's task-slot gauge beside it")
    view(sub, "scaling", cli_views.scaling, "service auto scaling: scalable targets, policies with their alarms' "
         "states, and the scaling activities of both dimensions, newest first")
    top = view(sub, "top", cli_views.top, "a live view of both scaling dimensions (Ctrl-C, --for or --frames stops)")
    top.add_argument("--interval", type=_seconds_at_least(0.0), default=cli_views.DEFAULT_TOP_INTERVAL_S,
                     metavar="SECONDS", help="between frames (default %(default)g)")
    top.add_argument("--for", dest="for_seconds", type=_seconds_at_least(0.0, above=True), metavar="SECONDS",
                     help="stop after SECONDS (default: until Ctrl-C)")
    top.add_argument("--frames", type=_whole_at_least(1), metavar="N", help="stop after N frames")

    register = view(sub, "register-task-definition", cli_views.register_task_definition,
                    "register a task definition (AWS's JSON) as the next revision of its family", cluster=False)
    register.add_argument("--cli-input-json", required=True, metavar="file://PATH",
                          help="RegisterTaskDefinition's input: file://x.json, a path, or the JSON itself")

    update = view(sub, "update-service", cli_views.update_service, "change a service's desired count or task "
                  "definition, or start a new deployment")
    update.add_argument("--service", required=True)
    update.add_argument("--desired-count", type=int, metavar="N")
    update.add_argument("--task-definition", metavar="FAMILY[:REVISION]")
    update.add_argument("--force-new-deployment", action="store_true")

    deploy = view(sub, "deploy", cli_views.deploy, "build the sample app as web-app:VERSION, register a new "
                  "revision running it, and update the service to it")
    deploy.add_argument("--service", required=True)
    deploy.add_argument("--app-version", required=True, metavar="VERSION",
                        help="e.g. v2: the image tag and APP_VERSION")
    deploy.add_argument("--container", help="the container to change (default: the one running web-app)")
    deploy.add_argument("--wait", action="store_true", help="follow the deployment until COMPLETED or FAILED")
    deploy.add_argument("--timeout", type=float, default=cli_views.DEFAULT_DEPLOY_TIMEOUT_S, metavar="SECONDS",
                        help="with --wait: give up after SECONDS (default %(default)g)")


def _view_parser(sub, name: str, run, help: str, *, cluster: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help)
    parser.add_argument("--endpoint-url",
                        help=f"the emulator's API (default: ${ENDPOINT_ENV}, else {DEFAULT_ENDPOINT})")
    if cluster:
        parser.add_argument("--cluster", help="cluster name or ARN (default: the only or first cluster)")
    parser.add_argument("--json", action="store_true", help="JSON for scripts")
    parser.set_defaults(run=lambda args: run(EmulatorClient(resolve_endpoint(args.endpoint_url)), args))
    return parser


def _seconds_at_least(minimum: float, *, above: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"expected a number of seconds {'above' if above else 'of at least'} "
                                             f"{minimum:g}, not '{text}'")
        return value
    return parse


def _whole_at_least(minimum: int):
    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, not '{text}'")
        return int(text)
    return parse


def _stack_and_state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", nargs="?", help="stack YAML file (default: the built-in stack)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where the emulator keeps its state")
    parser.add_argument("--api-host", default=DEFAULT_API_HOST,
                        help="address of the AWS-compatible API (0.0.0.0 to reach it from other containers)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help="port of the API (default 4566)")


def _load(args: argparse.Namespace) -> int:
    from . import loadgen

    argv = [args.url, "--duration", str(args.duration), "--concurrency", str(args.concurrency),
            "--timeout", str(args.timeout)]
    argv += ["--closed-loop"] if args.closed_loop else ["--rate", str(args.rate)]
    return loadgen.main(argv + (["--json"] if args.json else []), prog="ecsemu load")


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import DEFAULT_TRAFFIC, Deployment, TrafficError, parse_time_of_day, parse_traffic, run

    stack = _stack(args.stack)
    story = args.traffic is None and not args.deploy
    try:
        traffic = parse_traffic(args.traffic or DEFAULT_TRAFFIC, args.cpu_ms_per_request)
        service = args.service or (stack.services[0].service_name if stack.services else None)
        specs = args.deploy or (["10:30=web-app:v2"] if story and args.until is None else [])
        if specs and service is None:
            raise TrafficError("--deploy needs a service, and the stack has none")
        if service is not None and stack.service(service) is None:
            raise TrafficError(f"--service {service}: the stack has no such service")
        deployments = tuple(Deployment(parse_time_of_day(at), service, image or "web-app:v2")
                            for at, _, image in (spec.partition("=") for spec in specs))
        until = args.until or ("11:15" if story else "10:30")
        result = run(stack, traffic, start=args.start, until=until, deployments=deployments, seed=args.seed)
    except TrafficError as exc:
        print(f"ecsemu: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=2) if args.json else result.render())
    return 0


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
        albs = ", ".join(emulator.listener_urls()) or "none"
        print(f"ecsemu: ready (stack {stack.source}, state {args.state_dir}, "
              f"API http://{args.api_host}:{emulator.api_port}, ALB {albs})", flush=True)
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


def _up(args: argparse.Namespace) -> int:
    import time

    from .cli_client import EmulatorClient, EmulatorUnreachable
    from .daemon import log_file, running_pid

    endpoint = f"http://{'127.0.0.1' if args.api_host in ('0.0.0.0', '::') else args.api_host}:{args.api_port}"
    pid = running_pid(args.state_dir)
    if pid is not None:
        print(f"ecsemu is already running (pid {pid}, state {args.state_dir}): not starting a second one.")
    else:
        code = _start(args)
        if code:
            return code
    client = EmulatorClient(endpoint)
    deadline = time.monotonic() + args.wait
    print("waiting for the services to reach a steady state ...", flush=True)
    while True:
        try:
            services = _services_of_every_cluster(client)
        except EmulatorUnreachable:
            services = None
        waiting = [s["serviceName"] for s in services or [] if not _steady(s)]
        if services is not None and not waiting:
            break
        if time.monotonic() > deadline:
            print(f"ecsemu: not steady after {args.wait:.0f} s (waiting for {', '.join(waiting) or 'the API'}); "
                  f"see {log_file(args.state_dir)} and `ecsemu events`", file=sys.stderr)
            return 1
        time.sleep(1)
    _print_where(args, endpoint, services)
    return 0


def _services_of_every_cluster(client) -> list[dict]:
    services = []
    for cluster in client.ecs_all("ListClusters", "clusterArns"):
        arns = client.ecs_all("ListServices", "serviceArns", cluster=cluster)
        for i in range(0, len(arns), 10):
            services += client.ecs("DescribeServices", cluster=cluster, services=arns[i:i + 10])["services"]
    return services


def _steady(service: dict) -> bool:
    deployments = service.get("deployments", [])
    return (len(deployments) == 1 and deployments[0].get("rolloutState") == "COMPLETED"
            and service["runningCount"] == service["desiredCount"])


def _print_where(args: argparse.Namespace, endpoint: str, services: list[dict]) -> None:
    import re

    from .daemon import log_file

    log = log_file(args.state_dir)
    ready = [line for line in log.read_text(errors="replace").splitlines() if "ecsemu: ready" in line]
    albs = re.findall(r"http://[^ ,)]+", ready[-1].split("ALB", 1)[1]) if ready and "ALB" in ready[-1] else []
    first = services[0] if services else None
    cluster = first["clusterArn"].rsplit("/", 1)[-1] if first else "default"
    region = first["clusterArn"].split(":")[3] if first else "us-east-1"
    lines = ["", "The cluster is up."]
    for s in services:
        lines.append(f"  service {s['serviceName']}: {s['runningCount']} of {s['desiredCount']} tasks RUNNING")
    lines += [
        "",
        f"  ALB            {' '.join(albs) or '(the stack has no load balancer)'}",
        f"                 curl {albs[0] if albs else endpoint + '/'}",
        f"  AWS API        {endpoint}   (any credentials, region {region})",
        f"                 aws --endpoint-url {endpoint} ecs describe-services --cluster {cluster}"
        + (f" --services {first['serviceName']}" if first else ""),
        f"  Metrics        {endpoint}/metrics   (Prometheus format)",
        "  Live view      .venv/bin/ecsemu top",
        "  Load it        make load            (RATE=, DURATION=, URL= to change it)",
        "  Stop it all    make down            (removes every instance, task, volume and network it made)",
        f"  Its log        {log}",
    ]
    print("\n".join(lines))


def _demo(args: argparse.Namespace) -> int:
    from .daemon import running_pid
    from .demo import main as demo_main

    if running_pid(DEFAULT_STATE_DIR) is not None:
        print("ecsemu demo: note: an emulator started by `make up` is running too; the demo uses its own "
              "cluster and a free ALB port", file=sys.stderr)
    return demo_main(args.state_dir, args.time_scale)


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


if __name__ == "__main__":
    sys.exit(main())
