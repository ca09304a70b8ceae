"""One target group at run time: its registered targets, their health, draining, and who to tell.

The pure rules (balancer.py) say what a check result or a request does;
this holds the live state they act on and adds the parts that need time:
deregistration waits `deregistration_delay.timeout_seconds` (AWS seconds on
the emulator's clock) in `draining`, during which the target gets no new
requests while its in-flight ones finish. When its in-flight count reaches
0 it is done early (`drained`, and subscribers hear it), but it still shows
`draining` until the delay ends; then it is `unused` and gone, and any
request still running on it is cut (the ALB answers 5xx for those).

Subscribers (the service scheduler, the proxy, the API) get a
`TargetChange` for every state change. Callbacks run synchronously in the
event loop and must not block.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from operator import attrgetter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..clock import Clock
from ..model.elb import TargetGroup
from . import balancer as b
from .balancer import CheckResult, Target, TargetSet, TargetState
from .stats import TargetGroupStats

log = logging.getLogger(__name__)

REGISTERED = "registered"
HEALTH = "health"
DRAINING = "draining"
DRAINED = "drained"
REMOVED = "removed"


@dataclass(frozen=True)
class TargetChange:
    """A target's state changed; `kind` says which way (registered, health, draining, drained, removed)."""

    target_group_arn: str | None
    target: Target
    kind: str
    old_state: str | None
    state: str
    reason: str | None
    description: str
    aws_time: float


Subscriber = Callable[[TargetChange], None]


class TargetGroupRuntime:
    """The live side of one `TargetGroup`: targets, health, draining, routing and stats."""

    def __init__(self, target_group: TargetGroup, clock: Clock) -> None:
        self.target_group = target_group
        self.clock = clock
        self.targets: TargetSet = _LazyTargetSet(minimum_healthy=_minimum_healthy(target_group))
        self.stats = TargetGroupStats()
        self.counter = itertools.count()  # round robin's turn; shared by every listener
        self._subscribers: list[Subscriber] = []
        self._drain_timers: dict[str, asyncio.Task] = {}
        self._counts: tuple[int, dict[str, int]] | None = None   # (target set version, counts())
        self._closed = False

    # --- configuration -----------------------------------------------------------

    @property
    def arn(self) -> str | None:
        return self.target_group.target_group_arn

    @property
    def algorithm(self) -> str:
        return self.target_group.attributes.load_balancing_algorithm_type

    @property
    def deregistration_delay(self) -> int:
        return self.target_group.attributes.deregistration_delay_timeout_seconds

    def update_target_group(self, target_group: TargetGroup) -> None:
        """ModifyTargetGroup(Attributes): new settings apply to the next check and request."""
        self.target_group = target_group
        self.targets.minimum_healthy = _minimum_healthy(target_group)
        self.targets.invalidate()

    # --- subscribers ----------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(change)` on every state change; returns the unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _notify(self, ts: TargetState, kind: str, old_state: str | None) -> None:
        change = TargetChange(self.arn, ts.target, kind, old_state, ts.state, ts.reason,
                              ts.description, self.clock.now())
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:  # one bad subscriber must not stop the others or the ALB
                log.exception("target change subscriber failed")

    # --- registration -------------------------------------------------------------

    def register(self, targets: Iterable[Target]) -> None:
        """RegisterTargets: new targets start `initial`; a draining one is taken back."""
        for target in targets:
            existing = self.targets.get(target.target_id)
            if existing is not None and existing.state != b.DRAINING:
                continue  # registering twice is a no-op, as in ELBv2
            old_state = existing.state if existing else None
            if existing is not None:
                # Taken back while draining: the same object, so requests still in
                # flight on it keep counting against it.
                self._cancel_drain(target.target_id)
                ts = existing
                ts.target, ts.registered_at = target, self.clock.now()
                ts.consecutive_successes = ts.consecutive_failures = 0
                ts.draining_until, ts.drained = None, False
                ts.state, ts.reason = b.INITIAL, b.REGISTRATION_IN_PROGRESS
                ts.description = b.DESCRIPTIONS[b.REGISTRATION_IN_PROGRESS]
            else:
                ts = TargetState(target, registered_at=self.clock.now())
            if not self.target_group.health_check_enabled:
                ts.state, ts.reason = b.UNAVAILABLE, b.HEALTH_CHECK_DISABLED
                ts.description = b.DESCRIPTIONS[b.HEALTH_CHECK_DISABLED]
            self.targets.targets[target.target_id] = ts
            self.targets.invalidate()
            self._notify(ts, REGISTERED, old_state)

    def deregister(self, targets: Iterable[Target | str]) -> None:
        """DeregisterTargets: `draining` for the delay, then `unused` and gone."""
        for item in targets:
            target_id = item if isinstance(item, str) else item.target_id
            ts = self.targets.get(target_id)
            if ts is None or ts.state == b.DRAINING:
                continue
            old_state = ts.state
            delay = self.deregistration_delay
            ts.state, ts.reason = b.DRAINING, b.DEREGISTRATION_IN_PROGRESS
            ts.description = b.DESCRIPTIONS[b.DEREGISTRATION_IN_PROGRESS]
            ts.draining_until = self.clock.now() + delay
            self.targets.invalidate()
            self._notify(ts, DRAINING, old_state)
            if delay <= 0:
                self._remove(target_id)
                continue
            if ts.in_flight == 0:
                self.note_drained(ts)
            self._drain_timers[target_id] = asyncio.get_running_loop().create_task(
                self._drain_after(target_id, delay), name=f"alb-drain-{target_id}")

    async def _drain_after(self, target_id: str, delay: float) -> None:
        await self.clock.sleep(delay)
        self._drain_timers.pop(target_id, None)
        self._remove(target_id)

    def _cancel_drain(self, target_id: str) -> None:
        task = self._drain_timers.pop(target_id, None)
        if task is not None:
            task.cancel()

    def _remove(self, target_id: str) -> None:
        ts = self.targets.targets.pop(target_id, None)
        if ts is None:
            return
        self.targets.invalidate()
        old_state = ts.state
        ts.state, ts.reason = b.UNUSED, b.NOT_REGISTERED
        ts.description = b.DESCRIPTIONS[b.NOT_REGISTERED]
        self._notify(ts, REMOVED, old_state)  # the proxy cuts what is still in flight

    def note_drained(self, ts: TargetState) -> None:
        """A draining target has nothing in flight: it is done early (it still shows draining)."""
        if ts.state == b.DRAINING and not ts.drained:
            ts.drained = True
            self._notify(ts, DRAINED, b.DRAINING)

    # --- health --------------------------------------------------------------------------

    def health_check_port(self, ts: TargetState) -> int:
        """The port checks go to: the traffic port unless the group names one."""
        port = self.target_group.health_check_port
        return ts.port if port == "traffic-port" else int(port)

    def checkable_targets(self) -> list[TargetState]:
        """The targets the health checker probes now."""
        return [t for t in self.targets.targets.values() if t.state in b.CHECKED_STATES]

    def begin_check(self, ts: TargetState) -> None:
        """A check starts: a target still registering moves on to its initial health checks."""
        if ts.state == b.INITIAL and ts.reason == b.REGISTRATION_IN_PROGRESS:
            ts.reason = b.INITIAL_HEALTH_CHECKING
            ts.description = b.DESCRIPTIONS[b.INITIAL_HEALTH_CHECKING]

    def record_health(self, target_id: str, result: CheckResult) -> None:
        """Feed one check result to the state machine; notify on a state change."""
        ts = self.targets.get(target_id)
        if ts is None:
            return  # deregistered while the check ran
        if result.ok and ts.state == b.HEALTHY and ts.reason is None and ts.description == "":
            # A healthy target passing again (nearly every check): compute_health's answer without its objects.
            ts.consecutive_successes += 1
            ts.consecutive_failures = 0
            return
        tg = self.target_group
        transition = b.compute_health(ts, result, tg.healthy_threshold_count, tg.unhealthy_threshold_count)
        changed_state = transition.state != ts.state
        changed = transition.changes(ts)
        old_state = ts.state
        b.apply_health(ts, transition)
        if changed_state:
            self.targets.invalidate()
        if changed:
            self._notify(ts, HEALTH, old_state)

    # --- routing ------------------------------------------------------------------------

    def choose(self) -> TargetState | None:
        """The target for the next request (None: nothing registered, the ALB's 503)."""
        routable = self.targets.routable
        if len(routable) == 1:  # the common small case, without the algorithm's bookkeeping
            return routable[0]
        return b.choose_target(self.targets, self.algorithm, self.counter)

    def request_done(self, ts: TargetState) -> None:
        """The proxy finished a request on `ts` (it already decremented `in_flight`)."""
        if ts.in_flight <= 0 and ts.state == b.DRAINING:
            self.note_drained(ts)

    # --- ELBv2 shapes ---------------------------------------------------------------------

    def describe_target_health(self, targets: Iterable[Target | str] | None = None) -> list[dict[str, Any]]:
        """DescribeTargetHealth's `TargetHealthDescriptions`; unknown targets are `unused`."""
        if targets is None:
            states = list(self.targets.targets.values())
        else:
            states = []
            for item in targets:
                target_id = item if isinstance(item, str) else item.target_id
                ts = self.targets.get(target_id)
                if ts is None:
                    target = item if isinstance(item, Target) else _target_from_id(target_id)
                    ts = TargetState(target, state=b.UNUSED, reason=b.NOT_REGISTERED,
                                     description=b.DESCRIPTIONS[b.NOT_REGISTERED])
                states.append(ts)
        return [self._describe(ts) for ts in states]

    def _describe(self, ts: TargetState) -> dict[str, Any]:
        target = ts.target
        use_instance = self.target_group.target_type == "instance" and target.instance_id
        health: dict[str, Any] = {"State": ts.state}
        if ts.reason:
            health["Reason"] = ts.reason
        if ts.description:
            health["Description"] = ts.description
        return {
            "Target": {"Id": target.instance_id if use_instance else target.host, "Port": target.port},
            "HealthCheckPort": str(self.health_check_port(ts)),
            "TargetHealth": health,
        }

    def counts(self) -> dict[str, int]:
        """HealthyHostCount / UnHealthyHostCount as CloudWatch counts them."""
        version = getattr(self.targets, "version", None)
        if version is not None and self._counts is not None and self._counts[0] == version:
            return dict(self._counts[1])
        states = Counter(map(_STATE, self.targets.targets.values()))
        counts = {"HealthyHostCount": states[b.HEALTHY] + states[b.UNAVAILABLE],
                  "UnHealthyHostCount": states[b.UNHEALTHY]}
        if version is not None:   # every change of a state invalidates the target set, which counts it
            self._counts = (version, counts)
        return dict(counts)

    # --- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the drain timers (the targets stay as they are)."""
        self._closed = True
        tasks = list(self._drain_timers.values())
        self._drain_timers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _LazyTargetSet(TargetSet):
    """A TargetSet whose `routable` tuple is recomputed when next read, not at every change.

    Registering 10,000 targets (or a health check round changing many states) would
    otherwise rebuild the tuple once per target, O(N^2); reading it (a request) finds
    it as fresh as TargetSet's would be.
    """

    __slots__ = ("_stale", "version")

    def __init__(self, minimum_healthy: int = 1) -> None:
        self._stale = False
        self.version = 0   # counts invalidations: what depends on the targets' states is kept per version
        super().__init__(minimum_healthy)

    def invalidate(self) -> None:
        self._stale = True
        self.version += 1

    @property
    def routable(self) -> tuple[TargetState, ...]:
        if self._stale:
            self._stale = False
            _ROUTABLE_SLOT.__set__(self, b.routable_targets(self.targets.values(), self.minimum_healthy))
        return _ROUTABLE_SLOT.__get__(self)

    @routable.setter
    def routable(self, value: tuple[TargetState, ...]) -> None:
        self._stale = False
        _ROUTABLE_SLOT.__set__(self, value)


_ROUTABLE_SLOT = TargetSet.routable   # the slot TargetSet keeps the tuple in
_STATE = attrgetter("state")


def _target_from_id(target_id: str) -> Target:
    host, _, port = target_id.rpartition(":")
    return Target(host or target_id, int(port) if port.isdigit() else 0)


def _minimum_healthy(tg: TargetGroup) -> int:
    key = "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count"
    value = tg.attributes.other.get(key, "1")
    return int(value) if str(value).isdigit() else 1
