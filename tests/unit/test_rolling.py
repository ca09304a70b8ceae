"""ECS's rolling-update step: the bounds of maximumPercent / minimumHealthyPercent, table by table."""

from __future__ import annotations

import pytest

from emulator.scheduling.rolling import REPLACED, SCALE_IN, UNHEALTHY, TaskView, plan_rolling_step

NEW, OLD = "ecs-svc/new", "ecs-svc/old"


def tasks(spec: str) -> list[TaskView]:
    """'O O N? Nx' -> old healthy, old healthy, new pending, new failed-health ('?': pending, '~': running
    but not yet healthy, 'x': failed health)."""
    views = []
    for i, word in enumerate(spec.split()):
        dep = OLD if word[0] == "O" else NEW
        mark = word[1:]
        views.append(TaskView(f"t{i}-{word}", dep, running=mark != "?", healthy=mark == "",
                              failed_health=mark == "x"))
    return views


@pytest.mark.parametrize("desired, maxp, minp, spec, start, stops, blocked", [
    # fresh service
    (4, 200, 100, "", 4, [], False),
    (4, 200, 100, "N N", 2, [], False),
    # blue/green (200/100): 4 new next to 4 old; old stop only as new ones are healthy
    (4, 200, 100, "O O O O", 4, [], False),
    (4, 200, 100, "O O O O N~ N~ N~ N~", 0, [], False),
    (4, 200, 100, "O O O O N N N~ N~", 0, ["O", "O"], False),
    (4, 200, 100, "N N N N O O", 0, ["O", "O"], False),
    # rolling (100/50): stop half first, then replace
    (4, 100, 50, "O O O O", 0, ["O", "O"], False),
    (4, 100, 50, "O O", 2, [], False),
    (4, 100, 50, "O O N N", 0, ["O", "O"], False),
    # ecs-semantics examples: min 75% of 2 stops none; max 125% of 3 starts none -> blocked
    (2, 100, 75, "O O", 0, [], True),
    (3, 125, 100, "O O O", 0, [], True),
    # a pending old task is stopped freely (it serves nobody)
    (2, 100, 100, "O O?", 0, ["O?"], False),
    # failed health: replaced; scale-in trims pending first
    (2, 200, 100, "N Nx", 1, ["Nx"], False),
    (1, 200, 100, "N N?", 0, ["N?"], False),
    (0, 200, 100, "N N", 0, ["N", "N"], False),
], ids=["fresh", "fresh-partial", "bg-start", "bg-wait-health", "bg-swap-two", "bg-finish",
        "rolling-make-room", "rolling-start", "rolling-finish", "min75-of-2-blocked", "max125-of-3-blocked",
        "pending-old-stopped", "failed-health-replaced", "scale-in-pending-first", "scale-to-zero"])
def test_rolling_step(desired, maxp, minp, spec, start, stops, blocked):
    views = tasks(spec)
    step = plan_rolling_step(desired, maxp, minp, NEW, views)

    stopped_words = sorted(arn.split("-", 1)[1] for arn, _ in step.stop)
    assert (step.start, stopped_words, step.blocked) == (start, sorted(stops), blocked)


def test_reasons_say_why_each_task_stops():
    step = plan_rolling_step(2, 200, 100, NEW, tasks("N N Nx O"))
    reasons = dict(step.stop)
    assert reasons["t2-Nx"] == UNHEALTHY and reasons["t3-O"] == REPLACED
    step = plan_rolling_step(1, 200, 100, NEW, tasks("N N"))
    assert [why for _, why in step.stop] == [SCALE_IN]


def test_never_more_than_maximum_percent_live():
    for spec in ["O O O O", "O O O O N~", "O O N N~ N?"]:
        views = tasks(spec)
        step = plan_rolling_step(4, 150, 100, NEW, views)
        assert len(views) - len(step.stop) + step.start <= 6
