"""The state store: transactions, the event journal, listeners, and surviving restarts and crashes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.clock import FakeClock
from emulator.model.cluster import CapacityProviderStrategyItem, Cluster, Tag
from emulator.model.container_instance import ContainerInstance, new_container_instance
from emulator.model.events import SERVICE_EVENT, TASK_STATE_CHANGE, Event
from emulator.model.instance_types import get_instance_type
from emulator.model.placement_spec import PlacementConstraint, PlacementStrategy
from emulator.model.service import PRIMARY, Deployment, LoadBalancer, Service
from emulator.model.state import Change, StateFileError, StateStore, register_kind
from emulator.model.task import RUNNING, Container, NetworkBinding, Task
from emulator.model.task_definition import TaskDefinition
from emulator.model.task_definition_validation import parse_task_definition

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "arn:aws:ecs:us-east-1:000000000000"
CLUSTER_ARN = f"{ACCOUNT}:cluster/default"


# builders: one real model object per kind


def cluster(name: str = "default", **tags: str) -> Cluster:
    return Cluster(cluster_arn=f"{ACCOUNT}:cluster/{name}", cluster_name=name,
                   capacity_providers=["asg-cp"],
                   default_capacity_provider_strategy=[CapacityProviderStrategyItem("asg-cp", weight=1)],
                   tags=[Tag(k, v) for k, v in tags.items()])


def instance(n: int = 1) -> ContainerInstance:
    ci = new_container_instance(
        arn=f"{ACCOUNT}:container-instance/default/{n:032x}", ec2_instance_id=f"i-{n:017x}",
        instance_type=get_instance_type("t3.medium"), availability_zone="us-east-1a",
        registered_at=1_700_000_000.5, capacity_provider_name="asg-cp")
    ci.remaining_resources = ci.remaining_resources.take(512, 1024, frozenset({8080, 49153}))
    return ci


def task_definition(revision: int = 1) -> TaskDefinition:
    td = parse_task_definition({
        "family": "web",
        "networkMode": "bridge",
        "containerDefinitions": [{
            "name": "app", "image": "sample-app:latest", "cpu": 256, "memory": 512,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "environment": [{"name": "COLOR", "value": "blue"}],
            "healthCheck": {"command": ["CMD-SHELL", "true"]},
            "mountPoints": [],
        }],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
    })
    td.revision = revision
    td.task_definition_arn = f"{ACCOUNT}:task-definition/web:{revision}"
    td.registered_at = 1_700_000_001.0
    return td


def task(n: int = 1) -> Task:
    arn = f"{ACCOUNT}:task/default/{n:032x}"
    return Task(
        task_arn=arn, cluster_arn=CLUSTER_ARN, task_definition_arn=f"{ACCOUNT}:task-definition/web:1",
        group="service:web", last_status=RUNNING, container_instance_arn=instance().container_instance_arn,
        launch_type=None,  # not the default: must come back as None, not "EC2"
        containers=[Container(container_arn=f"{ACCOUNT}:container/{n}", task_arn=arn, name="app",
                              image="sample-app:latest", last_status=RUNNING,
                              network_bindings=[NetworkBinding(container_port=8080, host_port=49153)])],
        created_at=1_700_000_002.0, started_at=1_700_000_003.25)


def service() -> Service:
    return Service(
        service_arn=f"{ACCOUNT}:service/default/web", service_name="web", cluster_arn=CLUSTER_ARN,
        task_definition=f"{ACCOUNT}:task-definition/web:1", desired_count=3, running_count=3,
        placement_constraints=[PlacementConstraint("distinctInstance")],
        placement_strategy=[PlacementStrategy("spread", "attribute:ecs.availability-zone")],
        deployments=[Deployment(id="ecs-svc/1234567890123456789", status=PRIMARY,
                                task_definition=f"{ACCOUNT}:task-definition/web:1", desired_count=3)],
        load_balancers=[LoadBalancer(target_group_arn="arn:aws:elasticloadbalancing:tg/web",
                                     container_name="app", container_port=8080)])


BUILDERS = {
    "cluster": (cluster, lambda o: o.cluster_arn),
    "container_instance": (instance, lambda o: o.container_instance_arn),
    "task_definition": (task_definition, lambda o: o.task_definition_arn),
    "task": (task, lambda o: o.task_arn),
    "service": (service, lambda o: o.service_arn),
}


def make(kind: str):
    build, key_of = BUILDERS[kind]
    obj = build()
    return key_of(obj), obj


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def store(clock):
    s = StateStore(None, clock=clock)
    yield s
    s.close()


def rows(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# objects


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_put_get_list_delete(store, kind):
    key, obj = make(kind)
    with store.transaction() as tx:
        tx.put(kind, key, obj)
    assert store.get(kind, key) is obj
    assert store.list(kind) == [obj] and store.keys(kind) == [key] and store.count(kind) == 1
    with store.transaction() as tx:
        tx.delete(kind, key)
    assert store.get(kind, key) is None and store.list(kind) == [] and store.count(kind) == 0


def test_list_keeps_insertion_order_and_a_re_put_keeps_its_place(store):
    with store.transaction() as tx:
        for name in ["b", "c", "a"]:
            tx.put("cluster", name, cluster(name))
    with store.transaction() as tx:
        tx.put("cluster", "b", cluster("b", env="prod"))
    assert store.keys("cluster") == ["b", "c", "a"]
    assert store.get("cluster", "b").tags == [Tag("env", "prod")]


def test_writes_are_visible_inside_the_transaction_before_commit(store):
    with store.transaction() as tx:
        tx.put("cluster", "a", cluster("a"))
        assert store.get("cluster", "a").cluster_name == "a"
        tx.delete("cluster", "a")
        assert store.get("cluster", "a") is None


def test_commit_writes_every_object_in_one_sqlite_transaction(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(str(path))
    with store.transaction() as tx:
        for kind in BUILDERS:
            tx.put(kind, *make(kind))
        tx.record(Event(SERVICE_EVENT, "web", "hello"))
    assert rows(path, "SELECT kind, COUNT(*) FROM objects GROUP BY kind ORDER BY kind") == sorted(
        (k, 1) for k in BUILDERS)
    assert rows(path, "SELECT seq, message FROM events") == [(1, "hello")]
    store.close()


def test_a_raising_block_writes_nothing_and_restores_memory(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(str(path))
    with store.transaction() as tx:
        for name in ["a", "b", "c"]:
            tx.put("cluster", name, cluster(name))
    before_db = rows(path, "SELECT kind, key, body FROM objects ORDER BY rowid")

    with pytest.raises(ZeroDivisionError):
        with store.transaction() as tx:
            a = store.get("cluster", "a")
            a.running_tasks_count = 99          # mutated before the put: still rolled back
            tx.put("cluster", "a", a)
            tx.delete("cluster", "b")
            tx.put("cluster", "new", cluster("new"))
            tx.record(Event(SERVICE_EVENT, "a", "never journaled"))
            1 / 0

    assert store.keys("cluster") == ["a", "b", "c"]
    assert store.get("cluster", "a") == cluster("a")
    assert store.get("cluster", "b") == cluster("b")
    assert rows(path, "SELECT kind, key, body FROM objects ORDER BY rowid") == before_db
    assert store.events() == [] and rows(path, "SELECT * FROM events") == []
    store.close()


def test_a_value_that_cannot_be_stored_rolls_back_the_whole_transaction(store):
    with pytest.raises(TypeError):
        with store.transaction() as tx:
            tx.put("cluster", "a", cluster("a"))
            tx.record(Event(SERVICE_EVENT, "a", "bad detail", detail={"x": object()}))
    assert store.get("cluster", "a") is None and store.events() == []


def test_nested_transactions_join_the_outer_one(store):
    notices = []
    store.subscribe(notices.append)
    with store.transaction() as outer:
        with store.transaction() as inner:
            assert inner is outer
            inner.put("cluster", "a", cluster("a"))
        assert notices == []                  # the inner block did not commit on its own
        outer.put("cluster", "b", cluster("b"))
    assert len(notices) == 1 and [c.key for c in notices[0].changes] == ["a", "b"]

    with pytest.raises(RuntimeError):
        with store.transaction():
            with store.transaction() as inner:
                inner.delete("cluster", "a")
            raise RuntimeError("outer fails")
    assert store.keys("cluster") == ["a", "b"]


@pytest.mark.parametrize("write", [
    lambda s: s.put("cluster", "a", cluster("a")),
    lambda s: s.delete("cluster", "a"),
    lambda s: s.record(Event(SERVICE_EVENT, "a", "m")),
], ids=["put", "delete", "record"])
def test_writes_outside_a_transaction_are_refused(store, write):
    with pytest.raises(RuntimeError, match="transaction"):
        write(store)
    with store.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="transaction"):
        write(tx)
    assert store.count("cluster") == 0 and store.events() == []


def test_store_level_writes_work_inside_a_transaction(store):
    with store.transaction():
        store.put("cluster", "a", cluster("a"))
        store.record(Event(SERVICE_EVENT, "a", "m"))
    assert store.count("cluster") == 1 and len(store.events()) == 1


def test_unknown_kind_and_wrong_class_are_clear_errors(store):
    with pytest.raises(KeyError, match="unknown state kind 'nope'.*register_kind"):
        store.get("nope", "x")
    with pytest.raises(TypeError, match="Cluster"):
        with store.transaction() as tx:
            tx.put("cluster", "x", task())
    assert store.count("cluster") == 0


def test_a_put_without_a_change_writes_and_reports_nothing(store):
    notices = []
    with store.transaction() as tx:
        tx.put("cluster", "a", cluster("a"))
    store.subscribe(notices.append)
    with store.transaction() as tx:
        tx.put("cluster", "a", store.get("cluster", "a"))
    assert notices == []


# the journal


def test_events_get_monotonic_seq_and_times_from_the_clock(store, clock):
    with store.transaction() as tx:
        first = tx.record(Event(SERVICE_EVENT, "web", "one"))
        clock.tick(5)
        second = tx.record(Event(SERVICE_EVENT, "web", "two", aws_time=123.0, wall_time=456.0))
    clock.tick(5)
    with store.transaction() as tx:
        third = tx.record(Event(TASK_STATE_CHANGE, "t1", "three", detail={"lastStatus": "RUNNING"}))
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert (first.aws_time, first.wall_time) == (1_700_000_000.0, 1_700_000_000.0)
    assert (second.aws_time, second.wall_time) == (123.0, 456.0)
    assert third.aws_time == 1_700_000_010.0
    assert store.events() == [first, second, third]


@pytest.mark.parametrize("query, expected", [
    ({}, ["s1", "t1", "s2", "t2", "x1"]),
    ({"since_seq": 3}, ["t2", "x1"]),
    ({"kinds": SERVICE_EVENT}, ["s1", "s2"]),
    ({"kinds": [SERVICE_EVENT, "scaling-activity"]}, ["s1", "s2", "x1"]),
    ({"resource": "task/1"}, ["t1", "t2"]),
    ({"kinds": [TASK_STATE_CHANGE], "resource": "web"}, []),
    ({"limit": 2}, ["s1", "t1"]),
    ({"since_seq": 1, "kinds": [SERVICE_EVENT, TASK_STATE_CHANGE], "limit": 2}, ["t1", "s2"]),
], ids=["all", "since", "one-kind", "kinds", "resource", "kind-and-resource", "limit", "combined"])
def test_event_filters(store, query, expected):
    with store.transaction() as tx:
        for kind, resource, message in [(SERVICE_EVENT, "web", "s1"), (TASK_STATE_CHANGE, "task/1", "t1"),
                                        (SERVICE_EVENT, "web", "s2"), (TASK_STATE_CHANGE, "task/1", "t2"),
                                        ("scaling-activity", "asg", "x1")]:
            tx.record(Event(kind, resource, message))
    assert [e.message for e in store.events(**query)] == expected


def test_the_journal_keeps_only_the_newest_max_events(clock):
    store = StateStore(None, clock=clock, max_events=5)
    for i in range(1, 13):
        with store.transaction() as tx:
            tx.record(Event(SERVICE_EVENT, "web", f"event {i}"))
    assert [e.seq for e in store.events()] == [8, 9, 10, 11, 12]


# listeners


def test_listeners_hear_committed_changes_and_events(store):
    notices = []
    store.subscribe(notices.append)
    with store.transaction() as tx:
        tx.put("cluster", "a", cluster("a"))
    with store.transaction() as tx:
        tx.delete("cluster", "a")
        tx.put("cluster", "b", cluster("b"))
        event = tx.record(Event(SERVICE_EVENT, "b", "made b"))
    assert notices[0].changes == [Change("cluster", "a", "put", store_obj := notices[0].changes[0].obj)]
    assert store_obj == cluster("a") and notices[0].events == []
    assert notices[1].changes == [Change("cluster", "a", "delete", None),
                                  Change("cluster", "b", "put", store.get("cluster", "b"))]
    assert notices[1].events == [event]


def test_listeners_hear_nothing_from_a_rolled_back_transaction(store):
    notices = []
    store.subscribe(notices.append)
    with pytest.raises(ValueError):
        with store.transaction() as tx:
            tx.put("cluster", "a", cluster("a"))
            raise ValueError
    assert notices == []


def test_a_raising_listener_does_not_break_the_commit(store, caplog):
    heard = []

    def broken(notice):
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    store.subscribe(heard.append)
    with caplog.at_level(logging.ERROR):
        with store.transaction() as tx:
            tx.put("cluster", "a", cluster("a"))
    assert store.get("cluster", "a") is not None and len(heard) == 1
    assert "listener bug" in caplog.text


def test_unsubscribe(store):
    heard = []
    unsubscribe = store.subscribe(heard.append)
    unsubscribe()
    unsubscribe()  # twice is harmless
    with store.transaction() as tx:
        tx.put("cluster", "a", cluster("a"))
    assert heard == []


# restarts


def test_every_kind_comes_back_equal_after_reopen(tmp_path, clock):
    path = str(tmp_path / "state.db")
    store = StateStore(path, clock=clock)
    objects = {kind: make(kind) for kind in BUILDERS}
    with store.transaction() as tx:
        for kind, (key, obj) in objects.items():
            tx.put(kind, key, obj)
        tx.put("task_definition", task_definition(2).task_definition_arn, task_definition(2))
        events = [tx.record(Event(SERVICE_EVENT, "web", "steady", detail={"n": 1})),
                  tx.record(Event(TASK_STATE_CHANGE, "t", "running"))]
    store.close()

    reopened = StateStore(path, clock=clock)
    for kind, (key, obj) in objects.items():
        assert reopened.get(kind, key) == obj, kind
    assert reopened.get("task", objects["task"][0]).launch_type is None
    assert [td.revision for td in reopened.list("task_definition")] == [1, 2]
    assert reopened.events() == events
    with reopened.transaction() as tx:
        assert tx.record(Event(SERVICE_EVENT, "web", "after restart")).seq == 3
    reopened.close()


def test_event_seq_is_never_reused_even_when_the_journal_was_pruned_empty(tmp_path):
    path = str(tmp_path / "state.db")
    store = StateStore(path, max_events=0)
    with store.transaction() as tx:
        tx.record(Event(SERVICE_EVENT, "web", "one"))
        tx.record(Event(SERVICE_EVENT, "web", "two"))
    store.close()
    reopened = StateStore(path)
    assert reopened.events() == []
    with reopened.transaction() as tx:
        assert tx.record(Event(SERVICE_EVENT, "web", "three")).seq == 3
    reopened.close()


@dataclasses.dataclass
class Gadget:
    gadget_arn: str
    size: int | None = 3


def test_a_kind_registered_after_open_is_read_when_first_used(tmp_path):
    path = tmp_path / "state.db"
    StateStore(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO objects VALUES ('gadget', 'g1', ?)", (json.dumps({"gadgetArn": "g1", "size": None}),))
    db.commit()
    db.close()
    store = StateStore(str(path))          # opening does not need every kind registered
    with pytest.raises(KeyError, match="gadget"):
        store.get("gadget", "g1")
    register_kind("gadget", Gadget)
    assert store.get("gadget", "g1") == Gadget("g1", None)
    store.close()


@pytest.mark.parametrize("prepare, message", [
    (lambda p: p.write_bytes(b"these are someone's notes, not a database\n" * 100), "not an ecs-emulator state file"),
    (lambda p: _sqlite(p, "CREATE TABLE photos (id INTEGER)"), "not an ecs-emulator state file"),
    (lambda p: _sqlite(p, "CREATE TABLE objects (kind, key, body); CREATE TABLE events (seq);"
                          "CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('format', 'ecs-emulator-state'),"
                          "('schema_version', '99')"), "schema version 99"),
], ids=["garbage", "someone-elses-sqlite", "future-schema"])
def test_a_file_that_is_not_ours_is_a_clear_error_and_left_untouched(tmp_path, prepare, message):
    path = tmp_path / "state.db"
    prepare(path)
    before = path.read_bytes()
    with pytest.raises(StateFileError, match=message) as error:
        StateStore(str(path))
    assert str(path) in str(error.value)
    assert path.read_bytes() == before


def _sqlite(path: Path, script: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(script)
    db.close()


# a property: whatever commits or fails, memory and disk agree with a plain dict


OPS = st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(["put", "delete"]), st.sampled_from("abcde"), st.integers(0, 3)),
             max_size=4),
    st.booleans()), max_size=12)


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_memory_and_disk_always_agree_with_the_committed_history(transactions):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.db")
        store, expected = StateStore(path), {}
        for ops, fails in transactions:
            attempt = dict(expected)
            try:
                with store.transaction() as tx:
                    for op, key, count in ops:
                        if op == "put":
                            obj = store.get("cluster", key) or cluster(key)
                            obj.running_tasks_count = count   # mutate the stored object, then put it
                            tx.put("cluster", key, obj)
                            attempt[key] = count
                        else:
                            tx.delete("cluster", key)
                            attempt.pop(key, None)
                    if fails:
                        raise LookupError
            except LookupError:
                pass
            else:
                expected = attempt
            assert {c.cluster_name: c.running_tasks_count for c in store.list("cluster")} == expected
        store.close()
        reopened = StateStore(path)
        assert {c.cluster_name: c.running_tasks_count for c in reopened.list("cluster")} == expected
        reopened.close()


# crashes

CRASH_SLOTS = 6
CHILD = r"""
import sys, time
from emulator.model.cluster import Cluster, Tag
from emulator.model.events import Event
from emulator.model.state import StateStore

path, slots = sys.argv[1], int(sys.argv[2])
store = StateStore(path)
first = store.get("cluster", "slot-0")
counter = int(first.tags[0].value) if first else 0
stop_at = time.monotonic() + 30          # stops by itself if nobody kills it
for _ in range(200_000):
    if time.monotonic() > stop_at:
        break
    counter += 1
    with store.transaction() as tx:
        for i in range(slots):
            tx.put("cluster", f"slot-{i}", Cluster(cluster_arn=f"slot-{i}", cluster_name=f"slot-{i}",
                                                  tags=[Tag("counter", str(counter))]))
        tx.record(Event("service-event", "crash-test", f"commit {counter}", detail={"counter": counter}))
    print(counter, flush=True)
"""


def _start_writer(path: Path, stderr) -> tuple[subprocess.Popen, queue.Queue]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(CRASH_SLOTS)],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(int(line))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def _kill_after(proc: subprocess.Popen, lines: queue.Queue, commits: int, deadline: float) -> int:
    """SIGKILL the writer once it has printed `commits` counters; the last counter it printed."""
    printed: list[int] = []
    try:
        while len(printed) < commits:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the writer ended before it was killed"
            printed.append(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    while (line := lines.get(timeout=30)) is not None:   # what it printed before dying
        printed.append(line)
    return printed[-1]


def _assert_consistent(path: Path, last_printed: int) -> int:
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    store = StateStore(str(path))
    try:
        counters = {int(c.tags[0].value) for c in store.list("cluster")}
        assert store.count("cluster") == CRASH_SLOTS
        assert len(counters) == 1, f"half-written transaction: slots carry {sorted(counters)}"
        counter = counters.pop()
        assert last_printed <= counter <= last_printed + 1
        assert [e.detail["counter"] for e in store.events()] == list(range(1, counter + 1))
        return counter
    finally:
        store.close()


def test_a_killed_writer_loses_no_commit_and_leaves_no_half_commit(tmp_path):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path = tmp_path / "state.db"
    deadline = time.monotonic() + 120
    with open(tmp_path / "writer.err", "w") as stderr:
        for round_ in range(5):
            proc, lines = _start_writer(path, stderr)
            try:
                last_printed = _kill_after(proc, lines, rng.randint(1, 80), deadline)
            except (AssertionError, queue.Empty) as exc:
                raise AssertionError(f"round {round_} (seed {seed}): {exc}; writer stderr: "
                                     f"{(tmp_path / 'writer.err').read_text()}") from exc
            assert proc.returncode == -signal.SIGKILL
            _assert_consistent(path, last_printed)


def test_a_path_that_cannot_be_opened_is_a_clear_error(tmp_path):
    path = tmp_path / "no-such-dir" / "state.db"
    with pytest.raises(StateFileError, match="no-such-dir"):
        StateStore(str(path))
