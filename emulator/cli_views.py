"""What `ecsemu`'s views of a running emulator print, and the deploy workflow: tables for people, --json for scripts.

Each view is `view(client, args) -> exit code` over `EmulatorClient`: ECS
things through ECS's own calls (ListServices, DescribeTasks, ...), the rest
(events, target health, logs, the summary, both scaling dimensions: `asg`,
`capacity-providers`, `scaling`, `top`) through the native API. Errors
the API answers propagate as `ApiError`, which `ecsemu` prints as
`ecsemu: <Code>: <message>`.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .cli_client import MAX_DESCRIBE_SERVICES, EmulatorClient, EmulatorUnreachable
from .errors import AwsError, ClusterNotFoundException, InvalidParameterException, ServiceNotFoundException
from .model.arn import short_name
from .model.events import SERVICE_EVENT
from .model.service import COMPLETED, FAILED

APP_REPOSITORY = "web-app"           # the sample app's image, as `make images` tags it
APP_VERSION_VARIABLE = "APP_VERSION"
EVENTS_PAGE = 100
POLL_S = 20.0                        # one long poll of the events API (the server caps it at 30 s)
DEFAULT_DEPLOY_TIMEOUT_S = 900.0
SAME_EVENT_WITHIN_S = 1.0            # a journal entry and a service event this close are one event
# DescribeTaskDefinition members RegisterTaskDefinition does not take.
READ_ONLY_TASK_DEFINITION_KEYS = ("taskDefinitionArn", "revision", "status", "requiresAttributes",
                                  "compatibilities", "registeredAt", "registeredBy", "deregisteredAt")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # Docker's tag syntax

Builder = Callable[[str, str, Callable[[str], object]], object]


class ImageBuildError(AwsError):
    """The new version's image could not be built (Docker missing, a bad Dockerfile, ...)."""

    code = "ImageBuildError"
    status = 0


# --- output ---------------------------------------------------------------------------------


def print_table(headers: list[str], rows: list[list[object]], out=None) -> None:
    out = out or sys.stdout
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for row in [headers] + cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str), flush=True)


def when(epoch: float | None) -> str:
    """Local time of an epoch (AWS time on the emulator's timeline), as the console shows it."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _free(remaining: int, registered: int) -> str:
    return f"{remaining}/{registered}"


# --- finding things ------------------------------------------------------------------------------


def resolve_cluster(client: EmulatorClient, requested: str | None) -> dict[str, Any]:
    """DescribeClusters' cluster: the one asked for, else the only (or first) one."""
    if requested is None:
        arns = client.ecs_all("ListClusters", "clusterArns")
        if not arns:
            raise ClusterNotFoundException("The emulator has no cluster yet: `ecsemu start` creates its stack's.")
        requested = arns[0]
    found = client.ecs("DescribeClusters", clusters=[requested], include=["STATISTICS"])
    active = [c for c in found.get("clusters", []) if c.get("status") == "ACTIVE"]
    if not active:
        raise ClusterNotFoundException("Cluster not found.")
    return active[0]


def describe_services(client: EmulatorClient, cluster: str, names: Iterable[str] | None = None) -> list[dict]:
    """DescribeServices of the named services (all of the cluster's when None); ServiceNotFoundException
    for a name the cluster does not have."""
    if names is None:
        names = client.ecs_all("ListServices", "serviceArns", cluster=cluster)
    names = list(names)
    services, failures = [], []
    for start in range(0, len(names), MAX_DESCRIBE_SERVICES):
        answer = client.ecs("DescribeServices", cluster=cluster, services=names[start:start + MAX_DESCRIBE_SERVICES])
        services += answer.get("services", [])
        failures += answer.get("failures", [])
    if failures:
        raise ServiceNotFoundException(f"Service not found: {short_name(failures[0].get('arn', ''))}.")
    return services


def _resource(items: list[dict[str, Any]], name: str) -> int:
    return next((int(i.get("integerValue", 0)) for i in items if i.get("name") == name), 0)


def _attribute(ci: dict[str, Any], name: str) -> str | None:
    return next((a.get("value") for a in ci.get("attributes", []) if a.get("name") == name), None)


def _instances(client: EmulatorClient, cluster: str) -> list[dict[str, Any]]:
    arns = client.ecs_all("ListContainerInstances", "containerInstanceArns", cluster=cluster)
    described = client.describe("DescribeContainerInstances", "containerInstances", "containerInstances", arns,
                                cluster=cluster)
    tasks = _tasks(client, cluster)
    rows = []
    for ci in described:
        registered, remaining = ci.get("registeredResources", []), ci.get("remainingResources", [])
        rows.append({
            "ec2InstanceId": ci["ec2InstanceId"], "containerInstanceArn": ci["containerInstanceArn"],
            "instanceType": _attribute(ci, "ecs.instance-type"),
            "availabilityZone": _attribute(ci, "ecs.availability-zone"), "status": ci.get("status"),
            "runningTasksCount": ci.get("runningTasksCount", 0), "pendingTasksCount": ci.get("pendingTasksCount", 0),
            "cpu": {"remaining": _resource(remaining, "CPU"), "registered": _resource(registered, "CPU")},
            "memory": {"remaining": _resource(remaining, "MEMORY"), "registered": _resource(registered, "MEMORY")},
            "tasks": [short_name(t["taskArn"]) for t in tasks
                      if t.get("containerInstanceArn") == ci["containerInstanceArn"]],
        })
    return rows


def _tasks(client: EmulatorClient, cluster: str, *, service: str | None = None,
           desired_status: str = "RUNNING") -> list[dict[str, Any]]:
    arns = client.ecs_all("ListTasks", "taskArns", cluster=cluster, serviceName=service, desiredStatus=desired_status)
    return client.describe("DescribeTasks", "tasks", "tasks", arns, cluster=cluster)


# --- views -----------------------------------------------------------------------------------------


def clusters(client: EmulatorClient, args: argparse.Namespace) -> int:
    arns = client.ecs_all("ListClusters", "clusterArns")
    found = client.describe("DescribeClusters", "clusters", "clusters", arns, include=["STATISTICS"]) if arns else []
    if args.json:
        print_json(found)
        return 0
    print_table(["CLUSTER", "STATUS", "INSTANCES", "RUNNING TASKS", "PENDING TASKS", "SERVICES"],
                [[c["clusterName"], c["status"], c.get("registeredContainerInstancesCount", 0),
                  c.get("runningTasksCount", 0), c.get("pendingTasksCount", 0), c.get("activeServicesCount", 0)]
                 for c in found])
    return 0


def instances(client: EmulatorClient, args: argparse.Namespace) -> int:
    cluster = resolve_cluster(client, args.cluster)
    rows = _instances(client, cluster["clusterName"])
    if args.json:
        print_json(rows)
        return 0
    print_table(["INSTANCE", "TYPE", "AZ", "STATUS", "RUNNING", "FREE CPU", "FREE MEMORY MIB", "TASKS"],
                [[r["ec2InstanceId"], r["instanceType"] or "-", r["availabilityZone"] or "-", r["status"],
                  r["runningTasksCount"], _free(r["cpu"]["remaining"], r["cpu"]["registered"]),
                  _free(r["memory"]["remaining"], r["memory"]["registered"]), " ".join(r["tasks"]) or "-"]
                 for r in rows])
    return 0


def services(client: EmulatorClient, args: argparse.Namespace) -> int:
    cluster = resolve_cluster(client, args.cluster)
    found = describe_services(client, cluster["clusterName"])
    if args.json:
        print_json(found)
        return 0
    print_services(found)
    return 0


def print_services(found: list[dict[str, Any]]) -> None:
    print_table(["SERVICE", "STATUS", "TASK DEFINITION", "DESIRED", "RUNNING", "PENDING"],
                [[s["serviceName"], s["status"], short_name(s.get("taskDefinition", "")), s.get("desiredCount", 0),
                  s.get("runningCount", 0), s.get("pendingCount", 0)] for s in found])
    deployments = [[s["serviceName"], d["id"], d["status"], short_name(d.get("taskDefinition", "")),
                    d.get("desiredCount", 0), d.get("runningCount", 0), d.get("pendingCount", 0),
                    d.get("failedTasks", 0), d.get("rolloutState", "-")]
                   for s in found for d in s.get("deployments", [])]
    if deployments:
        print()
        print_table(["SERVICE", "DEPLOYMENT", "STATUS", "TASK DEFINITION", "DESIRED", "RUNNING", "PENDING",
                     "FAILED", "ROLLOUT"], deployments)


def tasks(client: EmulatorClient, args: argparse.Namespace) -> int:
    cluster = resolve_cluster(client, args.cluster)["clusterName"]
    found = _tasks(client, cluster, service=args.service, desired_status=args.desired_status)
    if args.json:
        print_json(found)
        return 0
    instance_arns = sorted({t["containerInstanceArn"] for t in found if t.get("containerInstanceArn")})
    ec2_ids = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in client.describe(
        "DescribeContainerInstances", "containerInstances", "containerInstances", instance_arns, cluster=cluster)}
    rows = []
    for t in found:
        ports = sorted({b["hostPort"] for c in t.get("containers", []) for b in c.get("networkBindings", [])
                        if b.get("hostPort")})
        rows.append([short_name(t["taskArn"]), short_name(t["taskDefinitionArn"]), t.get("lastStatus"),
                     t.get("desiredStatus"), t.get("healthStatus", "UNKNOWN"),
                     ec2_ids.get(t.get("containerInstanceArn"), "-"), ",".join(map(str, ports)) or "-"])
    print_table(["TASK", "TASK DEFINITION", "LAST STATUS", "DESIRED", "HEALTH", "INSTANCE", "HOST PORT"], rows)
    return 0


def events(client: EmulatorClient, args: argparse.Namespace) -> int:
    """Service events newest-last; with --follow, then the new ones as they happen."""
    cluster = resolve_cluster(client, args.cluster)
    since = client.native("GET", "events", query={"limit": 1})["lastSeq"]  # before the history: nothing is lost
    found = describe_services(client, cluster["clusterName"], [args.service] if args.service else None)
    history = sorted(({"createdAt": e["createdAt"], "serviceName": s["serviceName"], "message": e["message"]}
                      for s in found for e in s.get("events", [])), key=lambda e: e["createdAt"])
    if args.json and not args.follow:
        print_json(history)
        return 0
    for event in history:
        _print_event(event, args.json)
    if not args.follow:
        return 0
    resource = found[0]["serviceArn"] if args.service else None
    prefix = cluster["clusterArn"].replace(":cluster/", ":service/", 1) + "/"
    deadline = None if args.for_seconds is None else time.monotonic() + args.for_seconds
    try:
        for event in follow_events(client, since, resource=resource, deadline=deadline):
            if not event["resource"].startswith(prefix) or _seen(event, history):
                continue
            _print_event({"createdAt": event["awsTime"], "serviceName": short_name(event["resource"]),
                          "message": event["message"]}, args.json)
    except KeyboardInterrupt:
        pass
    return 0


def follow_events(client: EmulatorClient, since: int, *, resource: str | None = None,
                  deadline: float | None = None, kinds: str = SERVICE_EVENT):
    """Journal events after `since` as they are recorded, until `deadline` (time.monotonic(); None: forever)."""
    while True:
        remaining = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
        if remaining <= 0:
            return
        page = client.native("GET", "events", query={"since": since, "kinds": kinds, "resource": resource,
                                                     "wait": round(remaining, 3)}, timeout=remaining + 30)
        yield from page["events"]
        since = page["nextSince"]


def _seen(event: dict[str, Any], history: list[dict[str, Any]]) -> bool:
    """Whether a journal entry is one of the service events already printed (recorded while they were read)."""
    return any(h["message"] == event["message"] and abs(h["createdAt"] - event["awsTime"]) < SAME_EVENT_WITHIN_S
               for h in history)


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(event), flush=True)
    else:
        print(f"{when(event['createdAt'])}  {event['message']}", flush=True)


def targets(client: EmulatorClient, args: argparse.Namespace) -> int:
    groups = client.native("GET", "target-health", query={"targetGroup": args.target_group})["TargetGroups"]
    if args.json:
        print_json(groups)
        return 0
    if not groups:
        print("no target groups (the emulator runs no load balancer)")
        return 0
    rows = []
    for g in groups:
        for d in g["TargetHealthDescriptions"]:
            health = d["TargetHealth"]
            rows.append([g["TargetGroupName"], d["Target"]["Id"], d["Target"]["Port"], health["State"],
                         health.get("Reason", "-"), short_name(d["TaskArn"]) if d.get("TaskArn") else "-"])
    print_table(["TARGET GROUP", "TARGET", "PORT", "STATE", "REASON", "TASK"], rows)
    print()
    for g in groups:
        print(f"{g['TargetGroupName']}: {g['HealthyHostCount']} healthy, {g['UnHealthyHostCount']} unhealthy")
    return 0


def logs(client: EmulatorClient, args: argparse.Namespace) -> int:
    answer = client.native("GET", "logs", query={"cluster": args.cluster, "task": args.task,
                                                 "container": args.container, "tail": args.tail})
    if args.json:
        print_json(answer)
        return 0
    for line in answer["lines"]:
        print(line)
    if answer["source"] == "none":
        print(f"ecsemu: no output is kept for container {answer['containerName']} of task "
              f"{short_name(answer['taskArn'])}", file=sys.stderr)
    return 0


def status(client: EmulatorClient, args: argparse.Namespace) -> int:
    summary = client.native("GET", "summary", query={"cluster": args.cluster})
    if args.json:
        print_json(summary)
        return 0
    print(f"time scale {summary['timeScale']:g}x; AWS time {when(summary['awsTime'])}")
    if not summary["clusters"]:
        print("no clusters")
    for c in summary["clusters"]:
        print(f"\ncluster {c['clusterName']}: {len(c['containerInstances'])} instance(s), "
              f"{len(c['services'])} service(s)\n")
        print_table(["INSTANCE", "TYPE", "AZ", "STATUS", "RUNNING", "FREE CPU", "FREE MEMORY MIB", "TASKS"],
                    [[i["ec2InstanceId"], i["instanceType"] or "-", i["availabilityZone"] or "-", i["status"],
                      i["runningTasksCount"], _free(i["remainingResources"]["cpu"], i["registeredResources"]["cpu"]),
                      _free(i["remainingResources"]["memory"], i["registeredResources"]["memory"]),
                      " ".join(f"{t['taskId']}({t['lastStatus']})" for t in i["tasks"]) or "-"]
                     for i in c["containerInstances"]])
        if c["services"]:
            print()
            print_services(c["services"])
    return 0


# --- changes -------------------------------------------------------------------------------------


def read_cli_input_json(value: str) -> dict[str, Any]:
    """`--cli-input-json` as the aws CLI takes it: file://path, a path, or the JSON itself."""
    if value.lstrip().startswith("{"):
        text, source = value, "--cli-input-json"
    else:
        path = Path(value.removeprefix("file://"))
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise InvalidParameterException(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidParameterException(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidParameterException(f"{source} must hold a JSON object (RegisterTaskDefinition's input).")
    return data


def register_task_definition(client: EmulatorClient, args: argparse.Namespace) -> int:
    answer = client.ecs("RegisterTaskDefinition", **read_cli_input_json(args.cli_input_json))
    td = answer["taskDefinition"]
    if args.json:
        print_json(td)
    else:
        print(f"registered task definition {td['family']}:{td['revision']} ({td['taskDefinitionArn']})")
    return 0


def update_service(client: EmulatorClient, args: argparse.Namespace) -> int:
    cluster = resolve_cluster(client, args.cluster)["clusterName"]
    service = client.ecs("UpdateService", cluster=cluster, service=args.service, desiredCount=args.desired_count,
                         taskDefinition=args.task_definition,
                         forceNewDeployment=True if args.force_new_deployment else None)["service"]
    if args.json:
        print_json(service)
    else:
        _print_updated(service)
    return 0


def _print_updated(service: dict[str, Any]) -> None:
    primary = next((d for d in service.get("deployments", []) if d["status"] == "PRIMARY"), None)
    print(f"service {service['serviceName']}: desired {service['desiredCount']}, task definition "
          f"{short_name(service['taskDefinition'])}"
          + (f"; deployment {primary['id']} {primary['rolloutState']}" if primary else ""))


@dataclass
class Deployed:
    """What `ecsemu deploy` did: the image, the new revision and the deployment it started."""

    image: str
    task_definition_arn: str
    service_arn: str
    deployment_id: str
    since: int  # the journal position before the update: --wait prints every service event after it

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "taskDefinitionArn": self.task_definition_arn, "serviceArn": self.service_arn,
                "deploymentId": self.deployment_id}


def registration_input(td: dict[str, Any], image: str, version: str, container: str | None = None) -> dict[str, Any]:
    """RegisterTaskDefinition's input for a new revision of `td` running `image` with APP_VERSION=`version`."""
    data = copy.deepcopy(td)
    for key in READ_ONLY_TASK_DEFINITION_KEYS:
        data.pop(key, None)
    containers = data.get("containerDefinitions", [])
    if container is not None:
        chosen = [c for c in containers if c.get("name") == container]
        if not chosen:
            raise InvalidParameterException(f"Task definition {td['family']}:{td.get('revision')} has no container "
                                            f"named {container}.")
    else:
        chosen = [c for c in containers if _repository(c.get("image", "")) == _repository(image)]
        chosen = chosen or (containers if len(containers) == 1 else [])
        if not chosen:
            raise InvalidParameterException(f"No container of task definition {td['family']}:{td.get('revision')} "
                                            f"runs {_repository(image)}: name the one to change with --container.")
    for c in chosen:
        c["image"] = image
        environment = [e for e in c.get("environment", []) if e.get("name") != APP_VERSION_VARIABLE]
        c["environment"] = environment + [{"name": APP_VERSION_VARIABLE, "value": version}]
    return data


def _repository(image: str) -> str:
    """`web-app` from `web-app:v1`, `registry:5000/web-app` from `registry:5000/web-app:v1`."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def build_app_image(tag: str, version: str, progress: Callable[[str], object]) -> object:
    """The sample app built as `tag` with APP_VERSION baked in, in the host's Docker (the instances'
    image store takes it from there)."""
    from .runtime.images import build_app_image as build
    return build(tag, version, progress=progress)


def deploy_app_version(client: EmulatorClient, cluster: str, service: str, version: str, *,
                       build: Builder | None = None, container: str | None = None,
                       progress: Callable[[str], object] = print) -> Deployed:
    """Build, register a new revision, update the service: the seed article's deployment, in one step."""
    if not _IMAGE_TAG.match(version):
        raise InvalidParameterException(f"--app-version {version!r} is not an image tag: use letters, digits and "
                                        "_ . - (at most 128).")
    [svc] = describe_services(client, cluster, [service])
    current = client.ecs("DescribeTaskDefinition", taskDefinition=svc["taskDefinition"], include=["TAGS"])
    image = f"{APP_REPOSITORY}:{version}"
    new_input = registration_input(current["taskDefinition"], image, version, container)
    if current.get("tags"):
        new_input["tags"] = current["tags"]
    progress(f"building {image}")
    try:
        (build or build_app_image)(image, version, progress)
    except AwsError:
        raise
    except Exception as exc:  # Docker is missing or the build failed: nothing was registered
        raise ImageBuildError(f"building {image} failed: {exc}") from None
    registered = client.ecs("RegisterTaskDefinition", **new_input)["taskDefinition"]
    progress(f"registered task definition {registered['family']}:{registered['revision']}")
    since = client.native("GET", "events", query={"limit": 1})["lastSeq"]
    updated = client.ecs("UpdateService", cluster=cluster, service=svc["serviceArn"],
                         taskDefinition=registered["taskDefinitionArn"])["service"]
    primary = next(d for d in updated["deployments"] if d["status"] == "PRIMARY")
    progress(f"service {updated['serviceName']}: deployment {primary['id']} started "
             f"({primary['rolloutState']})")
    return Deployed(image, registered["taskDefinitionArn"], updated["serviceArn"], primary["id"], since)


def wait_for_deployment(client: EmulatorClient, cluster: str, deployed: Deployed, timeout: float,
                        on_event: Callable[[dict[str, Any]], object]) -> str:
    """Follow a deployment until its rolloutState is COMPLETED or FAILED (returned), or `timeout` wall
    seconds pass (its state then); `on_event` gets each service event on the way."""
    deadline = time.monotonic() + timeout
    since = deployed.since

    def drain(wait: float) -> None:
        """Hand on what is new: one long poll of `wait` seconds, or (0) every page there is now."""
        nonlocal since
        while True:
            page = client.native("GET", "events", query={
                "since": since, "kinds": SERVICE_EVENT, "resource": deployed.service_arn, "limit": EVENTS_PAGE,
                "wait": wait or None}, timeout=wait + 30)
            for event in page["events"]:
                on_event(event)
            since = page["nextSince"]
            if wait or len(page["events"]) < EVENTS_PAGE:
                return

    state = "IN_PROGRESS"
    while True:
        drain(0)
        [svc] = describe_services(client, cluster, [deployed.service_arn])
        mine = next((d for d in svc.get("deployments", []) if d["id"] == deployed.deployment_id), None)
        if mine is None:  # gone from the list: drained after it failed, or replaced by a later one
            state = FAILED if state == FAILED else "REPLACED"
        else:
            state = mine.get("rolloutState", state)
        remaining = deadline - time.monotonic()
        if state in (COMPLETED, FAILED, "REPLACED") or remaining <= 0:
            drain(0)
            return state
        drain(min(POLL_S, remaining))


def deploy(client: EmulatorClient, args: argparse.Namespace) -> int:
    cluster = resolve_cluster(client, args.cluster)["clusterName"]
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else \
        (lambda line: print(line, flush=True))
    deployed = deploy_app_version(client, cluster, args.service, args.app_version, container=args.container,
                                  progress=say)
    result = deployed.to_json()
    if args.wait:
        state = wait_for_deployment(client, cluster, deployed, args.timeout,
                                    lambda e: say(f"{when(e['awsTime'])}  {e['message']}"))
        result["rolloutState"] = state
    if args.json:
        print_json(result)
    if not args.wait:
        return 0
    if result["rolloutState"] == COMPLETED:
        say(f"deployment {deployed.deployment_id} COMPLETED: {args.service} runs {deployed.image}")
        return 0
    what = {FAILED: "FAILED", "REPLACED": "was replaced by a later deployment"}.get(
        result["rolloutState"], f"is still {result['rolloutState']} after {args.timeout:g} s")
    print(f"ecsemu: deployment {deployed.deployment_id} {what}", file=sys.stderr)
    return 2



# --- both scaling dimensions (GET /ecsemu/v1/scaling) -----------------------------------------------

DEFAULT_TOP_INTERVAL_S = 2.0
TOP_EVENTS = 5
TOP_TIMEOUT_S = 10.0               # one frame's request; a hung emulator must not freeze the view for 30 s
CLEAR_SCREEN = "\x1b[H\x1b[2J"     # cursor home, erase the screen (only when stdout is a terminal)
SLOT_GAUGE_LABEL = "the article's task-slot gauge: running tasks x 100 / task slots (not what ECS scales on)"
RESERVATION_LABEL = "CapacityProviderReservation = M / N x 100 (what ECS managed scaling keeps at targetCapacity)"


def scaling_state(client: EmulatorClient, cluster: str | None, *, events: int | None = None,
                  timeout: float | None = None) -> dict[str, Any]:
    """GET /ecsemu/v1/scaling: both scaling dimensions of the cluster (the first one when None)."""
    return client.native("GET", "scaling", query={"cluster": cluster, "events": events}, timeout=timeout)


def _number(value: float | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.1f}{suffix}" if value != int(value) else f"{int(value)}{suffix}"


def _joined_instances(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups with each instance's container instance (tasks, free resources) joined in, for --json."""
    by_id = {ci["ec2InstanceId"]: ci for ci in state["containerInstances"]}
    groups = []
    for g in state["autoScalingGroups"]:
        groups.append({**g, "Instances": [{**i, "ContainerInstance": by_id.get(i["InstanceId"])}
                                          for i in g["Instances"]]})
    return groups


def asg(client: EmulatorClient, args: argparse.Namespace) -> int:
    """The Auto Scaling groups: desired / in service / protected, then each one's instances and their tasks."""
    state = scaling_state(client, args.cluster, events=0)
    if args.json:
        print_json(_joined_instances(state))
        return 0
    groups = state["autoScalingGroups"]
    if not groups:
        print(f"cluster {state['clusterName']} has no Auto Scaling group")
        return 0
    print_table(["AUTO SCALING GROUP", "TYPE", "MIN", "MAX", "DESIRED", "IN SERVICE", "LAUNCHING", "PROTECTED",
                 "CAPACITY PROVIDER"],
                [[g["AutoScalingGroupName"], g["InstanceType"] or "-", g["MinSize"], g["MaxSize"],
                  g["DesiredCapacity"], g["InServiceInstances"], g["LaunchingInstances"], g["ProtectedInstances"],
                  g["CapacityProviderName"] or "-"] for g in groups])
    by_id = {ci["ec2InstanceId"]: ci for ci in state["containerInstances"]}
    for g in groups:
        print(f"\n{g['AutoScalingGroupName']}: {len(g['Instances'])} instance(s)")
        if not g["Instances"]:
            continue
        rows = []
        for i in g["Instances"]:
            ci = by_id.get(i["InstanceId"])
            tasks = " ".join(f"{t['taskId']}({t['lastStatus']})" for t in ci["tasks"]) if ci else ""
            rows.append([i["InstanceId"], i["AvailabilityZone"] or "-", i["ContainerInstanceStatus"],
                         "yes" if i["ProtectedFromScaleIn"] else "no",
                         _free(ci["remainingResources"]["cpu"], ci["registeredResources"]["cpu"]) if ci else "-",
                         _free(ci["remainingResources"]["memory"], ci["registeredResources"]["memory"]) if ci else "-",
                         tasks or "-"])
        print_table(["INSTANCE", "AZ", "STATUS", "PROTECTED", "FREE CPU", "FREE MEMORY MIB", "TASKS"], rows)
    return 0


def _reservation(cp: dict[str, Any]) -> tuple[str, str]:
    """("200%", "M 4 / N 2, step 2") of a provider's latest CapacityProviderReservation, "-" before the first."""
    r = cp["capacityProviderReservation"]
    if r is None:
        return "-", "- (no datapoint yet)"
    detail = f"M {r['m']} / N {r['n']}" + (f", step +{r['step']}" if r["step"] else "")
    if r["excluded"]:
        detail += f", {r['excluded']} task(s) fit no instance type"
    return _number(r["value"], "%"), detail


def _slot_gauge(cp: dict[str, Any]) -> str:
    parts = []
    for g in cp["taskSlotGauge"]["services"]:
        percent = _number(g["percent"], "%") if g["percent"] is not None else "-"
        slots = g["taskSlots"] if g["taskSlots"] is not None else "?"
        parts.append(f"{percent} = {g['runningTasks']} running / {slots} slots ({g['serviceName']})")
    return "; ".join(parts) or "-"


def capacity_providers(client: EmulatorClient, args: argparse.Namespace) -> int:
    """The capacity providers: CapacityProviderReservation against targetCapacity, M and N, and the seed
    article's task-slot gauge beside it."""
    state = scaling_state(client, args.cluster, events=0)
    providers = state["capacityProviders"]
    if args.json:
        print_json(providers)
        return 0
    if not providers:
        print(f"cluster {state['clusterName']} has no capacity provider")
        return 0
    rows = []
    for cp in providers:
        ms = cp["managedScaling"]
        value, detail = _reservation(cp)
        rows.append([cp["name"], cp["autoScalingGroupName"], ms["status"], value, f"{ms['targetCapacity']}%", detail,
                     f"{ms['minimumScalingStepSize']}-{ms['maximumScalingStepSize']}",
                     f"{ms['instanceWarmupPeriod']}s", cp["managedTerminationProtection"], _slot_gauge(cp)])
    print_table(["CAPACITY PROVIDER", "ASG", "MANAGED SCALING", "RESERVATION", "TARGET", "M / N", "STEP",
                 "WARM-UP", "TERMINATION PROTECTION", "SLOT GAUGE (ARTICLE)"], rows)
    alarms = [[cp["name"], a["alarmName"], _condition(a["comparisonOperator"], a["threshold"],
                                                      a["evaluationPeriods"]), a["stateValue"]]
              for cp in providers for a in cp["managedScalingAlarms"]]
    if alarms:
        print()
        print_table(["CAPACITY PROVIDER", "ALARM", "CONDITION", "STATE"], alarms)
    print(f"\nRESERVATION: {RESERVATION_LABEL}.\nSLOT GAUGE (ARTICLE): {SLOT_GAUGE_LABEL}.")
    return 0


def _condition(operator: str | None, threshold: float | None, periods: int | None) -> str:
    if operator is None or threshold is None:
        return "-"
    sign = {"GreaterThanThreshold": ">", "LessThanThreshold": "<", "GreaterThanOrEqualToThreshold": ">=",
            "LessThanOrEqualToThreshold": "<="}.get(operator, operator)
    return f"{sign} {_number(threshold)} for {periods} of {periods} min" if periods else f"{sign} {_number(threshold)}"


def _metric_name(policy: dict[str, Any]) -> str:
    metric = policy.get("Metric") or {}
    return metric.get("PredefinedMetricType") or metric.get("MetricName") or "-"


def _activity_subject(a: dict[str, Any]) -> str:
    if a["Source"] == "autoscaling":
        return f"Auto Scaling group {a['AutoScalingGroupName']}"
    return f"Application Auto Scaling {a['ResourceId']}"


def scaling(client: EmulatorClient, args: argparse.Namespace) -> int:
    """Service auto scaling: scalable targets, their policies and alarms' states, then the scaling activities
    of both services, newest first, as AWS words them."""
    state = scaling_state(client, args.cluster, events=0)
    if args.json:
        print_json({"scalableTargets": state["scalableTargets"], "scalingActivities": state["scalingActivities"]})
        return 0
    targets = state["scalableTargets"]
    if targets:
        print_table(["SCALABLE TARGET", "MIN", "MAX", "DESIRED", "SUSPENDED"],
                    [[t["ResourceId"], t["MinCapacity"], t["MaxCapacity"], _number(t["DesiredCount"]),
                      ", ".join(k.removesuffix("Suspended") for k, v in t["SuspendedState"].items() if v) or "-"]
                     for t in targets])
    else:
        print(f"cluster {state['clusterName']} has no scalable target")
    policies = [(t, p) for t in targets for p in t["ScalingPolicies"]]
    if policies:
        print()
        print_table(["SERVICE", "POLICY", "TYPE", "METRIC", "TARGET", "SCALE-OUT COOLDOWN", "SCALE-IN COOLDOWN",
                     "LAST EVALUATION"],
                    [[t["ServiceName"], p["PolicyName"], p["PolicyType"], _metric_name(p), _number(p["TargetValue"]),
                      _seconds(p["ScaleOutCooldown"] if p["ScaleOutCooldown"] is not None else p["Cooldown"]),
                      _seconds(p["ScaleInCooldown"] if p["ScaleInCooldown"] is not None else p["Cooldown"]),
                      (p["LastEvaluation"] or {}).get("Reason") or "-"] for t, p in policies])
        alarms = [[p["PolicyName"], a["AlarmName"], _condition(a["ComparisonOperator"], a["Threshold"],
                                                               a["EvaluationPeriods"]), a["StateValue"]]
                  for _, p in policies for a in p["Alarms"]]
        if alarms:
            print()
            print_table(["POLICY", "ALARM", "CONDITION", "STATE"], alarms)
    activities = state["scalingActivities"]
    print(f"\nscaling activities, newest first ({len(activities)}):" if activities else "\nno scaling activities yet")
    for a in activities:
        print(f"\n{when(a['StartTime'])}  {_activity_subject(a)}")
        print(f"  StatusCode:  {a['StatusCode']}")
        print(f"  Description: {a['Description']}")
        print(f"  Cause:       {a['Cause'] or '-'}")
        if a.get("StatusMessage"):
            print(f"  StatusMessage: {a['StatusMessage']}")
    return 0


def _seconds(value: int | None) -> str:
    return "-" if value is None else f"{value}s"


# --- ecsemu top ------------------------------------------------------------------------------------


def _policy_targets(state: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [p for t in state["scalableTargets"] if t["ServiceName"] == service for p in t["ScalingPolicies"]
            if p["PolicyType"] == "TargetTrackingScaling"]


def _service_target(state: dict[str, Any], svc: dict[str, Any]) -> tuple[str, str]:
    """("CPU 75% (cpu-tracking)", "high OK, low OK") for the service's target tracking policies."""
    targets, alarms = [], []
    for p in _policy_targets(state, svc["serviceName"]):
        metric = (p.get("Metric") or {}).get("MetricName") or _metric_name(p)
        label = {"CPUUtilization": "CPU", "MemoryUtilization": "memory"}.get(metric, metric)
        unit = "%" if metric in ("CPUUtilization", "MemoryUtilization") else ""
        targets.append(f"{label} {_number(p['TargetValue'], unit)} ({p['PolicyName']})")
        alarms.append(", ".join(f"{'high' if '-AlarmHigh-' in a['AlarmName'] else 'low'} {a['StateValue']}"
                                for a in p["Alarms"]))
    return "; ".join(targets) or "-", "; ".join(a for a in alarms if a) or "-"


def _metric(svc: dict[str, Any], name: str) -> str:
    sample = (svc.get("metrics") or {}).get(name)
    return _number(round(sample["value"], 1), "%") if sample else "-"


def render_top_frame(state: dict[str, Any], *, interval: float | None = None, out=None) -> None:
    """One frame of `ecsemu top`: time, services, groups with their providers, instances, newest events."""
    out = out or sys.stdout
    refresh = f"; every {interval:g}s, Ctrl-C stops" if interval is not None else ""
    print(f"ecsemu top  cluster {state['clusterName']}  AWS time {when(state['awsTime'])} "
          f"(time scale {state['timeScale']:g}x){refresh}\n", file=out)
    services = state["services"]
    if services:
        rows = []
        for s in services:
            target, alarms = _service_target(state, s)
            rows.append([s["serviceName"], s["desiredCount"], s["runningCount"], s["pendingCount"],
                         _metric(s, "CPUUtilization"), _metric(s, "MemoryUtilization"), target, alarms])
        print_table(["SERVICE", "DESIRED", "RUNNING", "PENDING", "CPU", "MEMORY", "POLICY TARGET", "ALARMS"], rows,
                    out=out)
    else:
        print("no services", file=out)
    providers = {cp["autoScalingGroupName"]: cp for cp in state["capacityProviders"]}
    if state["autoScalingGroups"]:
        rows = []
        for g in state["autoScalingGroups"]:
            cp = providers.get(g["AutoScalingGroupName"])
            value, detail = _reservation(cp) if cp else ("-", "-")
            target = f"{cp['managedScaling']['targetCapacity']}%" if cp else "-"
            rows.append([g["AutoScalingGroupName"], g["DesiredCapacity"], g["InServiceInstances"],
                         g["LaunchingInstances"], f"{g['MinSize']}-{g['MaxSize']}", cp["name"] if cp else "-",
                         value, target, detail])
        print(file=out)
        print_table(["AUTO SCALING GROUP", "DESIRED", "IN SERVICE", "LAUNCHING", "MIN-MAX", "CAPACITY PROVIDER",
                     "RESERVATION", "TARGET", "M / N"], rows, out=out)
    if state["containerInstances"]:
        print(file=out)
        print_table(["INSTANCE", "AZ", "STATUS", "PROTECTED", "FREE CPU", "FREE MEMORY MIB", "TASKS"],
                    [[i["ec2InstanceId"], i["availabilityZone"] or "-", i["status"],
                      "yes" if i["protectedFromScaleIn"] else "no",
                      _free(i["remainingResources"]["cpu"], i["registeredResources"]["cpu"]),
                      _free(i["remainingResources"]["memory"], i["registeredResources"]["memory"]),
                      " ".join(f"{t['taskId'][:8]}({t['lastStatus']})" for t in i["tasks"]) or "-"]
                     for i in state["containerInstances"]], out=out)
    print(f"\nnewest events:", file=out)
    for e in state["events"]:
        print(f"  {when(e['awsTime'])}  {short_name(e['resource'])}: {e['message']}", file=out)
    if not state["events"]:
        print("  -", file=out)


def top(client: EmulatorClient, args: argparse.Namespace, *, sleep: Callable[[float], object] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic) -> int:
    """A live view of both scaling dimensions, a frame every --interval seconds, until Ctrl-C, --for SECONDS or
    --frames N. The screen is cleared between frames only when stdout is a terminal; --json prints each frame
    as one JSON line. Exit 1 when the emulator stops answering."""
    interval = DEFAULT_TOP_INTERVAL_S if args.interval is None else args.interval
    deadline = None if args.for_seconds is None else monotonic() + args.for_seconds
    terminal = sys.stdout.isatty() and not args.json
    frames = 0
    try:
        while True:
            try:
                state = scaling_state(client, args.cluster, events=TOP_EVENTS, timeout=TOP_TIMEOUT_S)
            except EmulatorUnreachable as exc:
                if frames == 0:
                    raise
                print(f"ecsemu: the emulator at {exc.endpoint} stopped answering ({exc.reason})", file=sys.stderr,
                      flush=True)
                return 1
            frames += 1
            if args.json:
                print(json.dumps(state, default=str), flush=True)
            else:
                frame = io.StringIO()
                render_top_frame(state, interval=interval, out=frame)
                if terminal:
                    sys.stdout.write(CLEAR_SCREEN)
                elif frames > 1:
                    sys.stdout.write("\n")
                sys.stdout.write(frame.getvalue())
                sys.stdout.flush()
            if args.frames is not None and frames >= args.frames:
                return 0
            wait = interval
            if deadline is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return 0
                wait = min(wait, remaining)
            sleep(wait)
            if deadline is not None and monotonic() >= deadline:
                return 0
    except KeyboardInterrupt:
        if terminal:
            sys.stdout.write("\n")
        return 0
