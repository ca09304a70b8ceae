"""The balancer's decisions, pure: a target's health state after a check, and who gets the next request.

An ALB keeps one state per registered target (`initial`, `healthy`,
`unhealthy`, `draining`, `unused`, with ELBv2's reason codes) and sends each
request to a routable target. Both rules live here as plain functions over
plain data, so they are tested with tables and run the same in the proxy,
the health checker and any simulation. No I/O, no clock, no asyncio: the
caller passes time and results in.

AWS's rules (ecs-semantics.md section 6):
- a new target needs ONE passing check to become healthy; until then it is
  `initial`, and `unhealthy_threshold` consecutive failures make it unhealthy;
- a healthy target turns unhealthy after `unhealthy_threshold` consecutive
  failures, and back after `healthy_threshold` consecutive successes;
- requests go to healthy targets; when fewer than
  `minimum_healthy_targets.count` (default 1) are healthy, the ALB fails open
  and routes to every registered target regardless of health; draining and
  unused targets never get new requests; nothing registered -> None (503).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence, Union

# --- states and reason codes (ELBv2 TargetHealth) -------------------------------

INITIAL = "initial"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DRAINING = "draining"
UNUSED = "unused"
UNAVAILABLE = "unavailable"  # health checks disabled: routed as if healthy

REGISTRATION_IN_PROGRESS = "Elb.RegistrationInProgress"
INITIAL_HEALTH_CHECKING = "Elb.InitialHealthChecking"
RESPONSE_CODE_MISMATCH = "Target.ResponseCodeMismatch"
TIMEOUT = "Target.Timeout"
FAILED_HEALTH_CHECKS = "Target.FailedHealthChecks"
DEREGISTRATION_IN_PROGRESS = "Target.DeregistrationInProgress"
NOT_REGISTERED = "Target.NotRegistered"
HEALTH_CHECK_DISABLED = "Target.HealthCheckDisabled"

DESCRIPTIONS = {
    REGISTRATION_IN_PROGRESS: "Target registration is in progress",
    INITIAL_HEALTH_CHECKING: "Initial health checks in progress",
    RESPONSE_CODE_MISMATCH: "Health checks failed",
    TIMEOUT: "Request timed out",
    FAILED_HEALTH_CHECKS: "Health checks failed",
    DEREGISTRATION_IN_PROGRESS: "Target deregistration is in progress",
    NOT_REGISTERED: "Target is not registered to the target group",
    HEALTH_CHECK_DISABLED: "Health checks are disabled for this target group",
}

ROUND_ROBIN = "round_robin"
LEAST_OUTSTANDING_REQUESTS = "least_outstanding_requests"

# States a health check runs for; the others are on their way out (or never checked).
CHECKED_STATES = frozenset({INITIAL, HEALTHY, UNHEALTHY})
REGISTERED_STATES = frozenset({INITIAL, HEALTHY, UNHEALTHY, UNAVAILABLE})


# --- inputs --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Target:
    """What RegisterTargets names: where to connect, plus who it is in ECS's terms."""

    host: str                       # the address the ALB connects to
    port: int
    instance_id: str | None = None  # ELBv2's Target.Id for target type `instance`
    task_arn: str | None = None

    @property
    def target_id(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One health check's outcome; a failure carries its ELBv2 reason code."""

    ok: bool
    reason: str | None = None
    description: str = ""
    status_code: int | None = None

    @classmethod
    def passed(cls, status_code: int = 200) -> CheckResult:
        return cls(True, status_code=status_code)

    @classmethod
    def code_mismatch(cls, status_code: int) -> CheckResult:
        return cls(False, RESPONSE_CODE_MISMATCH,
                   f"Health checks failed with these codes: [{status_code}]", status_code)

    @classmethod
    def timed_out(cls) -> CheckResult:
        return cls(False, TIMEOUT, DESCRIPTIONS[TIMEOUT])

    @classmethod
    def failed(cls, detail: str = "") -> CheckResult:
        """No HTTP answer at all: refused, reset, malformed."""
        text = DESCRIPTIONS[FAILED_HEALTH_CHECKS] + (f": {detail}" if detail else "")
        return cls(False, FAILED_HEALTH_CHECKS, text)


# --- per-target state ------------------------------------------------------------

@dataclass(slots=True, eq=False)
class TargetState:
    """One registered target as the ALB sees it; `in_flight` is maintained by the proxy."""

    target: Target
    state: str = INITIAL
    reason: str | None = REGISTRATION_IN_PROGRESS
    description: str = DESCRIPTIONS[REGISTRATION_IN_PROGRESS]
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    in_flight: int = 0
    registered_at: float = 0.0
    draining_until: float | None = None  # AWS time when a draining target becomes unused
    drained: bool = False                # draining with nothing in flight: done early
    target_id: str = field(init=False)   # "ip:port", kept (the proxy counts requests by it)

    def __post_init__(self) -> None:
        self.target_id = self.target.target_id

    @property
    def host(self) -> str:
        return self.target.host

    @property
    def port(self) -> int:
        return self.target.port


@dataclass(frozen=True, slots=True)
class HealthTransition:
    """What a check does to a target: its next state, reason, and streak counters."""

    state: str
    reason: str | None
    description: str
    consecutive_successes: int
    consecutive_failures: int

    def changes(self, target: TargetState) -> bool:
        return (self.state, self.reason) != (target.state, target.reason)


def compute_health(target: TargetState, result: CheckResult,
                   healthy_threshold: int, unhealthy_threshold: int) -> HealthTransition:
    """The state after one check result; draining/unused/unavailable targets are left as they are."""
    successes = target.consecutive_successes + 1 if result.ok else 0
    failures = 0 if result.ok else target.consecutive_failures + 1
    state, reason, description = target.state, target.reason, target.description
    if state not in CHECKED_STATES:
        return HealthTransition(state, reason, description, target.consecutive_successes,
                                target.consecutive_failures)
    fail = (UNHEALTHY, result.reason or FAILED_HEALTH_CHECKS,
            result.description or DESCRIPTIONS[FAILED_HEALTH_CHECKS])
    if state == INITIAL:
        # One pass is enough for a new target; failures count toward unhealthy.
        if result.ok:
            nxt = (HEALTHY, None, "")
        elif failures >= unhealthy_threshold:
            nxt = fail
        else:
            nxt = (INITIAL, INITIAL_HEALTH_CHECKING, DESCRIPTIONS[INITIAL_HEALTH_CHECKING])
    elif state == HEALTHY:
        nxt = fail if (not result.ok and failures >= unhealthy_threshold) else (HEALTHY, None, "")
    else:  # UNHEALTHY: it takes healthy_threshold passes in a row to come back
        if result.ok and successes >= healthy_threshold:
            nxt = (HEALTHY, None, "")
        elif result.ok:
            nxt = (UNHEALTHY, reason, description)
        else:
            nxt = fail
    return HealthTransition(*nxt, successes, failures)


def apply_health(target: TargetState, transition: HealthTransition) -> None:
    target.state, target.reason, target.description = (
        transition.state, transition.reason, transition.description)
    target.consecutive_successes = transition.consecutive_successes
    target.consecutive_failures = transition.consecutive_failures


# --- routing -----------------------------------------------------------------------

def routable_targets(targets: Iterable[TargetState], minimum_healthy: int = 1) -> tuple[TargetState, ...]:
    """Who may get new requests: the healthy ones, or (fail-open) every registered one.

    Fail-open: when fewer than `minimum_healthy` targets are healthy, ALB routes
    to all registered targets regardless of health (initial, unhealthy and
    healthy alike). Draining and unused targets never get new requests.
    """
    registered = tuple(t for t in targets if t.state in REGISTERED_STATES)
    healthy = tuple(t for t in registered if t.state in (HEALTHY, UNAVAILABLE))
    if healthy and len(healthy) >= max(1, minimum_healthy):
        return healthy
    return registered


class TargetSet:
    """The targets of one group, with the routable tuple cached between changes.

    The proxy reads `routable` on every request, so it is a plain attribute,
    recomputed when a state changes (`invalidate`), never per request.
    """

    __slots__ = ("targets", "minimum_healthy", "routable")

    def __init__(self, minimum_healthy: int = 1) -> None:
        self.targets: dict[str, TargetState] = {}
        self.minimum_healthy = minimum_healthy
        self.routable: tuple[TargetState, ...] = ()

    def invalidate(self) -> None:
        """Call after changing `targets` or a target's state."""
        self.routable = routable_targets(self.targets.values(), self.minimum_healthy)

    @property
    def failing_open(self) -> bool:
        """True when requests go to targets that are not healthy (UnhealthyStateRouting)."""
        return any(t.state not in (HEALTHY, UNAVAILABLE) for t in self.routable)

    def __len__(self) -> int:
        return len(self.targets)

    def __iter__(self) -> Iterator[TargetState]:
        return iter(list(self.targets.values()))

    def get(self, target_id: str) -> TargetState | None:
        return self.targets.get(target_id)


Counter = Union[Iterator[int], random.Random]


def choose_target(group: TargetSet | Sequence[TargetState], algorithm: str,
                  counter: Counter) -> TargetState | None:
    """The target for the next request, or None when nothing is registered (the ALB's 503).

    `round_robin` takes routable targets in turn (`counter` yields 0, 1, 2, ...
    or is a seeded `random.Random`); `least_outstanding_requests` takes the one
    with the fewest requests in flight, ties broken by the same counter so
    equal targets share the load.
    """
    routable = group.routable if isinstance(group, TargetSet) else routable_targets(group)
    n = len(routable)
    if n == 0:
        return None
    turn = counter.randrange(1 << 30) if isinstance(counter, random.Random) else next(counter)
    if n == 1:
        return routable[0]
    if algorithm == LEAST_OUTSTANDING_REQUESTS:
        least = min(t.in_flight for t in routable)
        ties = [t for t in routable if t.in_flight == least]
        return ties[turn % len(ties)]
    return routable[turn % n]
