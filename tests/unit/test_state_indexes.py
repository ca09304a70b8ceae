"""The state store's indexes and versions: kept by every commit and every rollback, in the store's order."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from emulator.control.task_index import count_with_status, tasks_of_group, tasks_on_instance, tasks_with_status
from emulator.model.shapes import aws_name, to_api
from emulator.model.state import StateStore, _dump_lossless, codec_for
from emulator.model.task import PENDING, PROVISIONING, RUNNING, STOPPED, Task

ACCOUNT = "arn:aws:ecs:us-east-1:000000000000"
CLUSTER_ARN = f"{ACCOUNT}:cluster/default"


def a_task(n: int, *, group: str = "service:web", instance: str | None = "ci-1", status: str = RUNNING) -> Task:
    return Task(task_arn=f"{ACCOUNT}:task/default/{n:032x}", cluster_arn=CLUSTER_ARN,
                task_definition_arn=f"{ACCOUNT}:task-definition/web:1", group=group, last_status=status,
                container_instance_arn=instance)


def put(store: StateStore, *tasks: Task) -> None:
    with store.transaction() as tx:
        for t in tasks:
            tx.put("task", t.task_arn, t)


def arns(tasks: list[Task]) -> list[str]:
    return [t.task_arn for t in tasks]


@pytest.fixture
def store():
    s = StateStore(None)
    yield s
    s.close()


def test_a_group_lists_its_tasks_in_the_stores_order_as_they_commit(store):
    a, b, c = a_task(1), a_task(2, group="service:other"), a_task(3)
    tasks_of_group(store, CLUSTER_ARN, "service:web")   # the index exists before the tasks do
    put(store, a, b)
    put(store, c)

    assert arns(tasks_of_group(store, CLUSTER_ARN, "service:web")) == [a.task_arn, c.task_arn]
    assert arns(tasks_of_group(store, CLUSTER_ARN, "service:other")) == [b.task_arn]
    assert tasks_of_group(store, CLUSTER_ARN, "service:none") == []
    assert arns(tasks_of_group(store, CLUSTER_ARN, "service:web")) == \
        [t.task_arn for t in store.list("task") if t.group == "service:web"]


def test_an_index_made_late_holds_what_was_there(store):
    put(store, a_task(1), a_task(2, instance="ci-2"), a_task(3))
    assert arns(tasks_on_instance(store, "ci-1")) == [a_task(1).task_arn, a_task(3).task_arn]


def test_a_task_that_moves_is_found_where_it_went_in_the_stores_order(store):
    first = a_task(1, instance=None, status=PROVISIONING)
    second, third = a_task(2), a_task(3)
    put(store, first, second)
    assert arns(tasks_on_instance(store, "ci-1")) == [second.task_arn]
    put(store, third)
    first.container_instance_arn, first.last_status = "ci-1", PENDING   # placed once capacity came
    put(store, first)

    assert arns(tasks_on_instance(store, "ci-1")) == [first.task_arn, second.task_arn, third.task_arn]
    assert tasks_on_instance(store, None) == []
    assert count_with_status(store, PROVISIONING) == 0 and count_with_status(store, RUNNING) == 2
    assert arns(tasks_with_status(store, PENDING)) == [first.task_arn]


def test_an_uncommitted_change_is_not_indexed_and_a_rollback_puts_the_index_back(store):
    task = a_task(1)
    put(store, task)
    assert count_with_status(store, RUNNING) == 1

    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            task.last_status = STOPPED
            tx.put("task", task.task_arn, task)
            tx.put("task", a_task(2).task_arn, a_task(2))
            tasks_with_status(store, STOPPED)   # an index made inside the transaction sees its writes...
            raise RuntimeError("boom")

    # ...and the rollback takes them back, in every index
    assert count_with_status(store, RUNNING) == 1 and count_with_status(store, STOPPED) == 0
    assert arns(tasks_with_status(store, RUNNING)) == [task.task_arn]
    assert arns(tasks_of_group(store, CLUSTER_ARN, "service:web")) == [task.task_arn]


def test_tasks_on_an_instance_are_checked_against_the_live_objects(store):
    task = a_task(1)
    put(store, task)
    task.container_instance_arn = "ci-2"   # changed, not yet committed
    assert tasks_on_instance(store, "ci-1") == []
    put(store, task)
    assert arns(tasks_on_instance(store, "ci-2")) == [task.task_arn]


def test_a_version_changes_with_every_commit_that_changes_a_kind_and_every_rollback(store):
    task = a_task(1)
    before = store.version("task")
    put(store, task)
    after_put = store.version("task")
    assert after_put != before

    put(store, task)   # the same body: nothing changed
    with store.transaction() as tx:
        tx.put("task", task.task_arn, task)
    assert store.version("task") == after_put
    assert store.version("service") == 0

    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put("task", task.task_arn, task)
            raise RuntimeError("boom")
    assert store.version("task") != after_put   # objects were replaced by their committed copies


def _keep_nones_as_before(obj, data):
    """The serializer's None-keeping as it was written first (one dataclasses.fields() walk per object)."""
    if dataclasses.is_dataclass(obj) and isinstance(data, dict):
        for f in dataclasses.fields(obj):
            name, value = aws_name(f), getattr(obj, f.name)
            if f.name == "extra":
                continue
            if value is None:
                data[name] = None
            elif name in data:
                _keep_nones_as_before(value, data[name])
    elif isinstance(obj, (list, tuple)) and isinstance(data, list):
        for item, item_data in zip(obj, data):
            _keep_nones_as_before(item, item_data)
    elif isinstance(obj, dict) and isinstance(data, dict):
        for k, v in obj.items():
            if k in data:
                _keep_nones_as_before(v, data[k])
    return data


def test_every_object_of_a_simulated_cluster_is_stored_as_it_was_before():
    from emulator.app import Emulator
    from emulator.scenario import load_default_stack
    from emulator.simulate import DEFAULT_TRAFFIC, Simulation, parse_traffic

    seen = {}
    original_stop = Emulator.stop

    async def stop(self, **kwargs):
        for kind in list(self.store._objects):
            if codec_for(kind).dump is not _dump_lossless:
                continue   # kinds with their own to_api
            for obj in self.store.list(kind):
                seen[(kind, id(obj))] = (_dump_lossless(obj), _keep_nones_as_before(obj, to_api(obj)))
        await original_stop(self, **kwargs)

    Emulator.stop = stop
    try:
        asyncio.run(Simulation(load_default_stack(), parse_traffic(DEFAULT_TRAFFIC), start="09:00",
                               until="09:15").run())
    finally:
        Emulator.stop = original_stop
    assert {kind for kind, _ in seen} >= {"task", "service", "cluster", "task_definition"}
    for now, before in seen.values():
        assert json.dumps(now, sort_keys=False) == json.dumps(before, sort_keys=False)
