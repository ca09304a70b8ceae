"""The balancer's pure rules: health transitions as AWS documents them, fail-open routing, the choice."""

from __future__ import annotations

import ast
import itertools
import random
from pathlib import Path

import pytest

from emulator.alb import balancer as b
from emulator.alb.balancer import CheckResult, Target, TargetSet, TargetState

OK = CheckResult.passed()
BAD = CheckResult.code_mismatch(500)
SLOW = CheckResult.timed_out()
DOWN = CheckResult.failed("ClientConnectorError")


def target(n: int = 1, state: str = b.INITIAL, in_flight: int = 0, **kw) -> TargetState:
    ts = TargetState(Target("10.0.0.%d" % n, 8000 + n, instance_id=f"i-{n:04x}"), in_flight=in_flight, **kw)
    ts.state = state
    return ts


def run_checks(ts: TargetState, results: list[CheckResult], healthy: int = 5, unhealthy: int = 2) -> list[str]:
    """The state after each check."""
    states = []
    for result in results:
        b.apply_health(ts, b.compute_health(ts, result, healthy, unhealthy))
        states.append(ts.state)
    return states


@pytest.mark.parametrize("results, expected", [
    ([OK], [b.HEALTHY]),
    ([BAD, OK], [b.INITIAL, b.HEALTHY]),
    ([BAD, BAD], [b.INITIAL, b.UNHEALTHY]),
    ([SLOW, SLOW, OK], [b.INITIAL, b.UNHEALTHY, b.UNHEALTHY]),
    ([OK, BAD], [b.HEALTHY, b.HEALTHY]),
    ([OK, BAD, BAD], [b.HEALTHY, b.HEALTHY, b.UNHEALTHY]),
    ([OK, BAD, OK, BAD], [b.HEALTHY] * 4),
    ([OK, BAD, BAD] + [OK] * 5, [b.HEALTHY, b.HEALTHY] + [b.UNHEALTHY] * 5 + [b.HEALTHY]),
    ([OK, BAD, BAD] + [OK] * 4 + [BAD] + [OK] * 5,
     [b.HEALTHY, b.HEALTHY] + [b.UNHEALTHY] * 10 + [b.HEALTHY]),
], ids=["one-pass-makes-new-target-healthy", "fail-then-pass", "new-target-fails-threshold",
        "unhealthy-needs-healthy-threshold", "one-failure-is-below-threshold", "two-failures-unhealthy",
        "failures-must-be-consecutive", "five-passes-restore", "a-failure-resets-the-pass-streak"])
def test_health_transitions(results, expected):
    assert run_checks(target(), results) == expected


@pytest.mark.parametrize("result, reason, description", [
    (BAD, b.RESPONSE_CODE_MISMATCH, "Health checks failed with these codes: [500]"),
    (SLOW, b.TIMEOUT, "Request timed out"),
    (DOWN, b.FAILED_HEALTH_CHECKS, "Health checks failed: ClientConnectorError"),
], ids=["code-mismatch", "timeout", "no-answer"])
def test_unhealthy_reason_codes(result, reason, description):
    ts = target(state=b.HEALTHY)
    run_checks(ts, [result, result])
    assert (ts.state, ts.reason, ts.description) == (b.UNHEALTHY, reason, description)


def test_initial_target_reports_initial_health_checking_after_a_failure():
    ts = target()
    run_checks(ts, [BAD])
    assert (ts.state, ts.reason) == (b.INITIAL, b.INITIAL_HEALTH_CHECKING)


def test_healthy_target_has_no_reason():
    ts = target()
    run_checks(ts, [OK])
    assert (ts.state, ts.reason, ts.description) == (b.HEALTHY, None, "")


@pytest.mark.parametrize("state", [b.DRAINING, b.UNUSED, b.UNAVAILABLE])
def test_checks_do_not_change_targets_on_their_way_out(state):
    ts = target(state=state)
    assert run_checks(ts, [OK, BAD, BAD, OK]) == [state] * 4


@pytest.mark.parametrize("healthy, unhealthy", [(2, 2), (3, 10), (10, 3)])
def test_thresholds_are_honoured(healthy, unhealthy):
    ts = target(state=b.HEALTHY)
    assert run_checks(ts, [BAD] * unhealthy, healthy, unhealthy)[-2:] == (
        [b.HEALTHY, b.UNHEALTHY] if unhealthy > 1 else [b.UNHEALTHY])
    assert run_checks(ts, [OK] * healthy, healthy, unhealthy)[-2:] == [b.UNHEALTHY, b.HEALTHY]


# --- routing --------------------------------------------------------------------------------

@pytest.mark.parametrize("states, minimum, expected", [
    ([b.HEALTHY, b.UNHEALTHY, b.INITIAL], 1, [0]),
    ([b.HEALTHY, b.HEALTHY, b.DRAINING], 1, [0, 1]),
    ([b.UNHEALTHY, b.UNHEALTHY], 1, [0, 1]),
    ([b.UNHEALTHY, b.INITIAL, b.DRAINING], 1, [0, 1]),
    ([b.INITIAL], 1, [0]),
    ([b.DRAINING, b.DRAINING], 1, []),
    ([b.UNUSED], 1, []),
    ([], 1, []),
    ([b.HEALTHY, b.UNHEALTHY, b.UNHEALTHY], 2, [0, 1, 2]),
    ([b.HEALTHY, b.HEALTHY, b.UNHEALTHY], 2, [0, 1]),
    ([b.UNAVAILABLE, b.UNAVAILABLE], 1, [0, 1]),
], ids=["healthy-only", "draining-excluded", "all-unhealthy-fail-open", "fail-open-skips-draining",
        "lone-initial-fail-open", "only-draining-none", "unused-none", "nothing-registered",
        "below-minimum-healthy-fails-open", "at-minimum-healthy", "health-checks-disabled"])
def test_routable_targets(states, minimum, expected):
    targets = [target(i + 1, state) for i, state in enumerate(states)]
    assert list(b.routable_targets(targets, minimum)) == [targets[i] for i in expected]


def group(*states: str, in_flight: tuple[int, ...] = ()) -> TargetSet:
    ts = TargetSet()
    for i, state in enumerate(states):
        t = target(i + 1, state, in_flight[i] if in_flight else 0)
        ts.targets[t.target_id] = t
    ts.invalidate()
    return ts


def picks(g: TargetSet, algorithm: str, n: int, counter=None) -> list[int]:
    counter = counter or itertools.count()
    return [int(b.choose_target(g, algorithm, counter).target.host.rsplit(".", 1)[1]) for _ in range(n)]


def test_round_robin_takes_healthy_targets_in_turn():
    assert picks(group(b.HEALTHY, b.UNHEALTHY, b.HEALTHY, b.HEALTHY), b.ROUND_ROBIN, 6) == [1, 3, 4, 1, 3, 4]


def test_round_robin_fails_open_when_none_is_healthy():
    assert sorted(set(picks(group(b.UNHEALTHY, b.INITIAL, b.DRAINING), b.ROUND_ROBIN, 4))) == [1, 2]


@pytest.mark.parametrize("states", [(), (b.DRAINING,), (b.DRAINING, b.DRAINING)], ids=["empty", "draining", "two"])
def test_nothing_registered_is_none(states):
    assert b.choose_target(group(*states), b.ROUND_ROBIN, itertools.count()) is None
    assert b.choose_target(group(*states), b.LEAST_OUTSTANDING_REQUESTS, random.Random(1)) is None


def test_least_outstanding_requests_takes_the_least_busy():
    g = group(b.HEALTHY, b.HEALTHY, b.HEALTHY, in_flight=(3, 1, 2))
    assert picks(g, b.LEAST_OUTSTANDING_REQUESTS, 3) == [2, 2, 2]


def test_least_outstanding_requests_shares_ties():
    g = group(b.HEALTHY, b.HEALTHY, b.HEALTHY, in_flight=(0, 5, 0))
    assert picks(g, b.LEAST_OUTSTANDING_REQUESTS, 4) == [1, 3, 1, 3]


def test_least_outstanding_requests_ignores_draining_even_if_idle():
    g = group(b.DRAINING, b.HEALTHY, in_flight=(0, 9))
    assert picks(g, b.LEAST_OUTSTANDING_REQUESTS, 2) == [2, 2]


def test_seeded_random_counter_is_reproducible():
    g = group(b.HEALTHY, b.HEALTHY, b.HEALTHY)
    first = picks(g, b.ROUND_ROBIN, 20, random.Random(7))
    assert first == picks(g, b.ROUND_ROBIN, 20, random.Random(7))
    assert set(first) == {1, 2, 3}


def test_choose_target_accepts_a_plain_list():
    targets = [target(1, b.UNHEALTHY), target(2, b.HEALTHY)]
    assert b.choose_target(targets, b.ROUND_ROBIN, itertools.count()) is targets[1]


def test_target_set_caches_routable_until_invalidated():
    g = group(b.HEALTHY, b.HEALTHY)
    first = g.routable
    assert g.routable is first
    next(iter(g)).state = b.DRAINING
    assert g.routable is first  # not recomputed per request...
    g.invalidate()
    assert len(g.routable) == 1  # ...only when told a state changed
    assert not g.failing_open


def test_target_id_is_ip_and_port():
    assert Target("172.17.0.5", 32768, "i-1").target_id == "172.17.0.5:32768"


@pytest.mark.parametrize("module", ["balancer", "http1", "stats"])
def test_pure_alb_modules_import_no_io(module):
    """The decisions and the byte-level HTTP are pure: no event loop, sockets, clocks or exporters."""
    source = (Path(b.__file__).parent / f"{module}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {"asyncio", "aiohttp", "socket", "threading", "subprocess", "prometheus_client", "docker"}
    if module == "balancer":
        forbidden.add("time")  # decisions get time passed in
    assert not imported & forbidden
