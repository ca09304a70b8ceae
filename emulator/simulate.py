"""`ecsemu simulate`: the emulator's own control loops on the in-memory runtime, with synthetic traffic, at CPU speed.

The same scheduler, ALB target health, metrics collector, service auto
scaling, capacity provider and Auto Scaling group code that runs real
Docker runs here on `FakeRuntime` and a `FakeClock` that jumps from one
wake-up to the next, so an AWS hour plays in seconds. Traffic is a list of
(time of day, requests/s) steps and a CPU cost per request: each task that
the ALB routes to gets its share, which becomes the CPU use its metrics
report. The run is narrated in the seed article's style from the emulator's
own event journal (`09:16 - Task Scaling: desired 4 -> 8 ...`), with AWS
time and the wall time it took; `--json` gives the final state and every
event instead.

A step of traffic that changes nothing (same requests/s, same tasks,
targets and health) is repeated in bulk: the runtime repeats its last round
of usage and the ALB counts the same requests again, with exactly the
figures telling every task again would give; so 1,000 instances and 10,000
tasks play an hour in well under a minute.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import reduce
from itertools import repeat
from operator import add
from typing import Any

from .alb.stats import RESPONSE_TIME_BUCKETS
from .clock import FakeClock
from .control.task_index import count_with_status, tasks_with_status
from .model.events import (DEPLOYMENT_STATE_CHANGE, INSTANCE_STATE_CHANGE, SCALING_ACTIVITY, SERVICE_EVENT,
                           TASK_STATE_CHANGE, Event)
from .model.task import PROVISIONING, RUNNING, STOPPED
from .scenario import Stack

STEP_S = 5.0                 # AWS seconds between traffic updates
PRELUDE_S = 1800.0           # the cluster comes up and settles this long before the story starts
INSTANCE_BOOT_S = 90.0       # an EC2 instance boots and its agent registers in about a minute and a half
IDLE = 0.02                  # the app's own CPU when it serves nothing (fraction of its reservation)
DEFAULT_DAY = "2026-11-26"


class TrafficError(ValueError):
    """A --traffic spec the simulator cannot read; the message says what is wrong."""


@dataclass(frozen=True)
class Traffic:
    """Requests/s as steps over the time of day, and the CPU each request costs a task."""

    steps: tuple[tuple[float, float], ...]     # (seconds since midnight, requests/s), sorted
    cpu_ms_per_request: float = 10.0

    def rps_at(self, second_of_day: float) -> float:
        rps = self.steps[0][1]  # before the first step: its traffic (the prelude runs on it)
        for at, value in self.steps:
            if at <= second_of_day:
                rps = value
        return rps


def parse_time_of_day(text: str) -> float:
    try:
        hours, minutes = text.strip().split(":")
        h, m = int(hours), int(minutes)
    except ValueError:
        raise TrafficError(f"'{text}' is not a time of day like 09:15") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise TrafficError(f"'{text}' is not a time of day like 09:15")
    return h * 3600.0 + m * 60.0


def parse_traffic(spec: str, cpu_ms_per_request: float = 10.0) -> Traffic:
    """`09:00=160,09:12=600,09:25=160`: from each time on, that many requests/s (steps, not ramps)."""
    if not (0 < cpu_ms_per_request <= 10_000):
        raise TrafficError(f"the CPU cost per request must be above 0 and at most 10000 ms, not {cpu_ms_per_request}")
    steps = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        at, sep, rps = part.partition("=")
        if not sep:
            raise TrafficError(f"'{part}': each step is TIME=REQUESTS_PER_SECOND, e.g. 09:15=600")
        try:
            value = float(rps)
        except ValueError:
            raise TrafficError(f"'{part}': '{rps}' is not a number of requests per second") from None
        if not (0 <= value <= 1_000_000):
            raise TrafficError(f"'{part}': requests per second must be 0..1000000")
        steps.append((parse_time_of_day(at), value))
    if not steps:
        raise TrafficError("the traffic spec has no steps; e.g. 09:00=160,09:12=600,09:25=160")
    if [s[0] for s in steps] != sorted({s[0] for s in steps}):
        raise TrafficError("traffic steps must be in time order, each time once")
    return Traffic(tuple(steps), cpu_ms_per_request)


# The seed's spike on the default stack (10 ms of CPU a request): 280 requests/s keeps 4 tasks of 1 vCPU
# at 70%, between the scale-in (67.5%) and scale-out (75%) alarms; 600 requests/s from 09:10 needs 8
# tasks to be back at 75%; traffic back to normal at 09:25 lets both dimensions scale in again.
DEFAULT_TRAFFIC = "09:00=280,09:10=600,09:25=280"


@dataclass
class Line:
    aws_time: float
    wall_s: float
    text: str


@dataclass
class SimulationResult:
    lines: list[Line] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    def render(self) -> str:
        out = [f"{_hhmm(line.aws_time)} - {line.text}   (+{line.wall_s:.2f} s)" for line in self.lines]
        out.append(f"Simulated {self.final.get('aws_minutes', 0):.0f} AWS minutes in {self.wall_s:.2f} s of wall time.")
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"timeline": [{"awsTime": _iso(l.aws_time), "wallSeconds": round(l.wall_s, 3), "text": l.text}
                             for l in self.lines],
                "final": self.final,
                "events": [{"seq": e.seq, "kind": e.kind, "resource": e.resource, "awsTime": _iso(e.aws_time),
                            "message": e.message, "detail": e.detail} for e in self.events],
                "wallSeconds": round(self.wall_s, 3)}


def _hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _midnight(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()


@dataclass
class Deployment:
    """A new revision of a service's task definition at a time of day (the blue/green part of the story)."""

    at: float                 # seconds since midnight
    service: str
    image: str = "web-app:v2"


class Simulation:
    def __init__(self, stack: Stack, traffic: Traffic, *, start: str = "09:00", until: str = "10:30",
                 deployments: tuple[Deployment, ...] = (), seed: int = 0, day: str = DEFAULT_DAY) -> None:
        self.stack, self.traffic, self.seed = stack, traffic, seed
        self.midnight = _midnight(day)
        self.start = self.midnight + parse_time_of_day(start)
        self.until = self.midnight + parse_time_of_day(until)
        if self.until <= self.start:
            raise TrafficError(f"--until {until} must be after the start {start}")
        self.deployments = sorted(deployments, key=lambda d: d.at)
        self._traffic_key: tuple | None = None   # what the last step's traffic was computed from
        self._requests: RequestPlan | None = None

    async def run(self) -> SimulationResult:
        from .app import Emulator
        from .runtime.fake import FakeRuntime

        began = time.perf_counter()
        clock = FakeClock(start=self.start - PRELUDE_S, settle_turns=4)
        runtime = FakeRuntime(rng=random.Random(self.seed), behave_like_sample_app=True,
                              launch_delay=lambda spec: clock.sleep(INSTANCE_BOOT_S), clock=clock.now)
        emulator = Emulator(self.stack, state_dir=None, runtime=runtime, clock=clock, rng=random.Random(self.seed),
                            api_port=None, listen=False)
        narrator = Narrator(clock, began, self.traffic, self.midnight)
        # The cluster's objects (10,000 tasks are millions of them) live until the end: frozen out of the
        # cyclic garbage collector's reach as they are made, its full passes stay short (they are most of
        # a large run's time otherwise). Left alone if something else in the process froze objects already.
        freeze = gc.get_freeze_count() == 0
        await emulator.start()
        try:
            while clock.now() < self.start:  # the prelude: the stack comes up, unnarrated
                self._apply_traffic(emulator, runtime, clock.now())
                await clock.advance(min(STEP_S, self.start - clock.now()))
                if freeze:
                    gc.freeze()
            narrator.skip_to_now(emulator)
            pending = list(self.deployments)
            while clock.now() < self.until:
                now = clock.now()
                while pending and self.midnight + pending[0].at <= now:
                    self._deploy(emulator, pending.pop(0), narrator)
                self._apply_traffic(emulator, runtime, now)
                narrator.observe(emulator)
                await clock.advance(STEP_S)
            narrator.observe(emulator)
            result = SimulationResult(narrator.lines, emulator.store.events(), self._final(emulator))
        finally:
            await emulator.stop(terminate=True)
            if freeze:
                gc.unfreeze()
        result.wall_s = time.perf_counter() - began
        return result

    def _apply_traffic(self, emulator, runtime, now: float) -> None:
        """Each task the ALB routes to gets its share of the requests, as CPU use of its reservation.

        What that gives depends only on the traffic, the committed tasks, instances and services,
        and the targets' registrations and health: when none of them changed since the last step,
        every task would be told the same again, so the runtime repeats the last round at once and
        the ALB counts the same requests (10,000 tasks need not be visited every 5 s of steady traffic).
        """
        rps = self.traffic.rps_at(now - self.midnight)
        store, alb = emulator.store, emulator.alb
        key = (rps, store.version("task"), store.version("container_instance"), store.version("service"),
               emulator.load_balancing.target_version, tuple(map(id, alb.runtimes.values())))
        can_repeat = hasattr(runtime, "repeat_usage_round")
        if can_repeat and key == self._traffic_key and self._requests is not None:
            runtime.repeat_usage_round()
            self._requests.record()
            return
        self._traffic_key = None
        if can_repeat:
            runtime.begin_usage_round()
        running = tasks_with_status(store, RUNNING)
        serving = {t.task_arn for t in running if t.desired_status == RUNNING and _serving(emulator, t)}
        cpu_s_per_s = rps * self.traffic.cpu_ms_per_request / 1000.0
        share = cpu_s_per_s / len(serving) if serving else 0.0
        instances = {ci.container_instance_arn: ci for ci in store.list("container_instance")}
        demand: dict[str, float] = {}
        for task in running:
            if task.task_arn in serving:
                demand[task.container_instance_arn] = demand.get(task.container_instance_arn, 0.0) + share
        for task in running:
            ci = instances.get(task.container_instance_arn)
            if ci is None:
                continue
            vcpus = max(int(task.cpu or 0), 1) / 1024
            used = 0.0
            if task.task_arn in serving:
                # Busy neighbours share the instance's vCPUs (CPU shares are soft limits: a task may use
                # more than it reserved while the instance has room, never more than the instance has).
                capacity = ci.registered_resources.cpu / 1024
                used = share * min(1.0, capacity / demand[task.container_instance_arn])
            runtime.set_usage(ci.ec2_instance_id, task.task_id, cpu_fraction_of_reserved=max(used / vcpus, IDLE),
                              memory_mib=0.3 * int(task.memory or 512))
        serving_arns = sorted(serving)
        emulator.alb_traffic(rps * STEP_S, serving_arns)
        self._requests = RequestPlan.of(emulator, rps * STEP_S, serving_arns)   # for the steps that repeat it
        self._traffic_key = key

    def _deploy(self, emulator, deployment: Deployment, narrator: Narrator) -> None:
        from .cli_views import registration_input
        from .control.registry import register_task_definition
        from .control.services import update_service
        from .model.task_definition_validation import parse_task_definition
        from .model.shapes import to_api

        service = next(s for s in emulator.store.list("service") if s.service_name == deployment.service)
        current = emulator.store.get("task_definition", service.task_definition)
        version = deployment.image.rsplit(":", 1)[-1]
        data = registration_input(to_api(current), deployment.image, version)
        td = register_task_definition(emulator.store, parse_task_definition(data), emulator.clock.now(),
                                      region=self.stack.settings.region)
        update_service(emulator.store, emulator.clock, service.cluster_arn.rsplit("/", 1)[-1], service.service_name,
                       task_definition=td.task_definition_arn, rng=emulator.rng,
                       region=self.stack.settings.region)
        narrator.say(f"Deploy: {service.service_name} -> {td.family_revision} ({deployment.image}), "
                     f"maximumPercent {service.deployment_configuration.maximum_percent}, "
                     f"minimumHealthyPercent {service.deployment_configuration.minimum_healthy_percent}")

    def _final(self, emulator) -> dict[str, Any]:
        tasks = emulator.store.list("task")
        return {
            "aws_minutes": (emulator.clock.now() - self.start) / 60,
            "instances": sum(1 for ci in emulator.store.list("container_instance") if ci.status == "ACTIVE"),
            "auto_scaling_groups": {a.auto_scaling_group_name: a.desired_capacity
                                    for a in emulator.store.list("auto_scaling_group")},
            "services": {s.service_name: {"desiredCount": s.desired_count, "runningCount": s.running_count,
                                          "pendingCount": s.pending_count,
                                          "taskDefinition": s.task_definition.rsplit("/", 1)[-1],
                                          "deployments": [d.rollout_state for d in s.deployments]}
                         for s in emulator.store.list("service")},
            "tasks": {status: sum(1 for t in tasks if t.last_status == status)
                      for status in (PROVISIONING, "PENDING", RUNNING)},
        }


class RequestPlan:
    """`Emulator.alb_traffic(requests, task_arns)`'s record_requests calls, kept per target group so a
    step of unchanged traffic records them again in bulk, with the same counters to the last bit
    (tests/unit/test_simulate.py holds the two side by side)."""

    SECONDS, STATUS = 0.01, 200   # what alb_traffic's record_requests calls leave at their defaults

    def __init__(self, groups: list[tuple[Any, list[str], list[int]]]) -> None:
        self.groups = [(stats, ids, counts, sum(counts), [self.SECONDS * c for c in counts],
                        len(set(ids)) == len(ids)) for stats, ids, counts in groups]

    @classmethod
    def of(cls, emulator, requests: float, task_arns: list[str]) -> RequestPlan:
        groups: dict[int, tuple[Any, list[str], list[int]]] = {}
        if task_arns and requests > 0:
            share = int(requests // len(task_arns))
            extra = int(requests) - share * len(task_arns)
            for i, arn in enumerate(task_arns):
                count = share + (1 if i < extra else 0)
                for binding in emulator.load_balancing.bindings_of(arn):
                    stats = emulator.alb.runtimes[binding.target_group_arn].stats
                    if count > 0:  # record_requests ignores the rest
                        _, ids, counts = groups.setdefault(id(stats), (stats, [], []))
                        ids.append(binding.target.target_id)
                        counts.append(count)
        return cls(list(groups.values()))

    def record(self) -> None:
        """TargetGroupStats.record_requests(target_id, count) for each, in order."""
        for stats, ids, counts, total, costs, unique in self.groups:
            if not unique:  # a target twice: one call each, as alb_traffic makes them
                for target_id, count in zip(ids, counts):
                    stats.record_requests(target_id, count, self.STATUS, self.SECONDS)
                continue
            per_target = stats.per_target
            per_target.update(zip(ids, map(add, map(per_target.get, ids, repeat(0)), counts)))
            stats.request_count += total
            stats.target_codes[self.STATUS // 100] += total
            stats.rt_count += total
            stats.rt_sum = reduce(add, costs, stats.rt_sum)   # one addition per call, in their order
            stats.rt_max = max(stats.rt_max, self.SECONDS)
            stats.rt_buckets[bisect_left(RESPONSE_TIME_BUCKETS, self.SECONDS)] += total


def _serving(emulator, task) -> bool:
    """The ALB routes to the task: its targets are healthy (or it is in no target group)."""
    bindings = emulator.load_balancing.bindings_of(task.task_arn)
    if not bindings:
        return not _load_balanced(emulator, task)
    return all(emulator.alb.runtimes[b.target_group_arn].targets.get(b.target.target_id) is not None
               and emulator.alb.runtimes[b.target_group_arn].targets.get(b.target.target_id).state == "healthy"
               for b in bindings)


def _load_balanced(emulator, task) -> bool:
    return any(s.load_balancers for s in emulator.store.list("service")
               if s.task_group == task.group and s.cluster_arn == task.cluster_arn)


class Narrator:
    """Turns the journal and a look at the state every step into the seed's timeline."""

    def __init__(self, clock: FakeClock, began: float, traffic: Traffic, midnight: float) -> None:
        self.clock, self.began, self.traffic, self.midnight = clock, began, traffic, midnight
        self.lines: list[Line] = []
        self.seen_seq = 0
        self.last_rps: float | None = None
        self.last_shape: tuple | None = None
        self.desired: dict[str, int] = {}   # service ARN -> desiredCount last told

    def skip_to_now(self, emulator) -> None:
        """Start narrating here: what happened before (the cluster coming up) is summed up, not told."""
        events = emulator.store.events()
        self.seen_seq = events[-1].seq if events else 0
        self.desired = {s.service_arn: s.desired_count for s in emulator.store.list("service")}

    def say(self, text: str) -> None:
        self.lines.append(Line(self.clock.now(), time.perf_counter() - self.began, text))

    def observe(self, emulator) -> None:
        now = self.clock.now()
        rps = self.traffic.rps_at(now - self.midnight)
        if rps != self.last_rps:
            self.say(f"Traffic: {rps:g} requests/s")
            self.last_rps = rps
        events = emulator.store.events(since_seq=self.seen_seq)
        if events:
            self.seen_seq = events[-1].seq
        self._narrate(events)
        self._status(emulator)

    def _narrate(self, events: list[Event]) -> None:
        provisioning = sum(1 for e in events if e.kind == TASK_STATE_CHANGE and "PROVISIONING" in e.message)
        placed = sum(1 for e in events if e.kind == TASK_STATE_CHANGE and " PENDING on " in e.message)
        for e in events:
            if e.kind == SCALING_ACTIVITY and e.message.startswith("Setting desired count"):
                new = int(e.message.rstrip(".").rsplit(" ", 1)[-1])
                before = self.desired.get(e.resource, "?")
                self.desired[e.resource] = new
                self.say(f"Task Scaling: desired {before} -> {new} ({e.detail.get('Cause', '')})".replace(" ()", ""))
            elif e.kind == SCALING_ACTIVITY and "desired capacity" in e.message:
                self.say(f"Capacity Provider: {e.message}")
            elif e.kind == SCALING_ACTIVITY and e.message.startswith(("Launching", "Terminating")):
                self.say(f"EC2 Auto Scaling: {e.message}")
            elif e.kind == INSTANCE_STATE_CHANGE and "registered ACTIVE" in e.message:
                self.say(f"Instance joins the cluster: {e.message}")
            elif e.kind == SERVICE_EVENT and ("steady state" in e.message or "deployment" in e.message):
                self.say(e.message)
            elif e.kind == DEPLOYMENT_STATE_CHANGE:
                self.say(e.message)
        if provisioning:
            self.say(f"{provisioning} task(s) PROVISIONING: no instance has room, the capacity provider must grow")
        if placed:
            self.say(f"{placed} task(s) placed (PENDING on an instance)")

    def _status(self, emulator) -> None:
        running = count_with_status(emulator.store, RUNNING)
        waiting = count_with_status(emulator.store, PROVISIONING)
        instances = sum(1 for ci in emulator.store.list("container_instance") if ci.status == "ACTIVE")
        desired = sum(s.desired_count for s in emulator.store.list("service") if s.status == "ACTIVE")
        shape = (instances, desired, running, waiting)
        if shape != self.last_shape:
            self.last_shape = shape
            cpr = emulator.capacity_scaler.latest_reservations() if emulator.capacity_scaler else {}
            cpr_text = ", ".join(f"CapacityProviderReservation {v:g}%" for v in cpr.values())
            self.say(f"[{instances} instances, desired {desired} tasks: {running} RUNNING, {waiting} PROVISIONING"
                     + (f"; {cpr_text}" if cpr_text else "") + "]")


async def simulate(stack: Stack, traffic: Traffic, **kwargs: Any) -> SimulationResult:
    return await Simulation(stack, traffic, **kwargs).run()


def run(stack: Stack, traffic: Traffic, **kwargs: Any) -> SimulationResult:
    return asyncio.run(simulate(stack, traffic, **kwargs))


__all__ = ["DEFAULT_TRAFFIC", "Deployment", "Simulation", "SimulationResult", "Traffic", "TrafficError",
           "parse_traffic", "simulate", "run"]
