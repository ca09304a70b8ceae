"""Placing a batch of tasks: filter, rank, pick, and say why when nothing fits.

For each batch the placer keeps, per combination of spread-attribute
values (e.g. per AZ), a heap of the eligible instances ordered by their
instance-level key. Picking a task's instance compares only the top of each
heap under the full strategy key, so a placement costs O(values x log n)
instead of a scan of the cluster; building the heaps is one pass per batch.
Instances only lose room as a batch goes on, so an instance that stops
fitting leaves its heap for good (lazy deletion by slot version).
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from dataclasses import dataclass, field

from .constraints import (
    MEMBER_OF,
    NO_INSTANCES,
    RESOURCE_CPU,
    RESOURCE_MEMORY,
    RESOURCE_PORTS,
    checkers_for,
    first_failure,
    has_distinct_instance,
    memberof_expressions,
)
from .snapshot import ClusterSnapshot, InstanceSlot, PlacementRequest
from .strategies import rankers_for


@dataclass(frozen=True)
class PlacementFailure:
    """ECS's `failures[]` entry: the closest matching instance and why it did not fit."""

    arn: str | None
    reason: str
    filtered: dict[str, int] = field(default_factory=dict)  # instances ruled out, per reason

    def service_event_detail(self) -> str:
        """The sentence ECS appends to "was unable to place a task ..." service events."""
        if self.arn is None:
            return f"Reason: {self.reason}"
        instance_id = self.arn.rsplit("/", 1)[-1]
        closest = f"The closest matching container-instance {instance_id}"
        if self.reason == RESOURCE_CPU:
            return f"{closest} has insufficient CPU units available."
        if self.reason == RESOURCE_MEMORY:
            return f"{closest} has insufficient memory available."
        if self.reason == RESOURCE_PORTS:
            return f"{closest} is already using a port required by your task."
        return f'{closest} encountered error "{self.reason}".'

    def to_api(self) -> dict[str, str]:
        return {"arn": self.arn, "reason": self.reason} if self.arn else {"reason": self.reason}


@dataclass
class PlacementPlan:
    placements: list[str] = field(default_factory=list)   # instance ARN of each placed task, in order
    failures: list[PlacementFailure] = field(default_factory=list)


def place_tasks(snapshot: ClusterSnapshot, request: PlacementRequest, rng: random.Random) -> PlacementPlan:
    """Place `request.count` tasks, updating `snapshot` as each one lands.

    The caller passes the strategies that apply (a service with none gets
    `DEFAULT_SERVICE_STRATEGY`; a standalone task may have none, then the
    choice is random among the instances that fit).
    """
    plan = PlacementPlan()
    if request.count <= 0:
        return plan
    if not snapshot.slots:
        plan.failures = [PlacementFailure(None, NO_INSTANCES)] * request.count
        return plan
    batch = _batch_for(snapshot, request, rng)
    for placed in range(request.count):
        idx = batch.pick()
        if idx is None:
            plan.failures = [explain_failure(snapshot, request)] * (request.count - placed)
            break
        batch.place(idx)
        plan.placements.append(snapshot.slots[idx].arn)
    return plan


def _batch_for(snapshot: ClusterSnapshot, request: PlacementRequest, rng: random.Random) -> _Batch:
    """The cached ranking structures for this request's shape, caught up with the snapshot."""
    shape = (request.group, request.needs, request.constraints, request.strategies)
    batch = snapshot.batches.pop(shape, None)
    if batch is None:
        batch = _Batch(snapshot, request, rng)
    else:
        batch.use_rng(rng)
        batch.catch_up()
    snapshot.batches[shape] = batch  # most recently used last
    while len(snapshot.batches) > snapshot.max_cached_batches:
        snapshot.batches.pop(next(iter(snapshot.batches)))
    return batch


def explain_failure(snapshot: ClusterSnapshot, request: PlacementRequest) -> PlacementFailure:
    """The closest matching instance (the one that passed the most checks) and its reason."""
    if not snapshot.slots:
        return PlacementFailure(None, NO_INSTANCES)
    checks = checkers_for(request)
    filtered: dict[str, int] = defaultdict(int)
    best: tuple[int, int] | None = None
    closest: InstanceSlot | None = None
    for slot in snapshot.slots:
        stage = first_failure(slot, checks)
        if stage == len(checks):
            continue  # it fits; a dynamic constraint may have ruled it out at pick time
        reason = checks[stage].reason
        filtered[reason] += 1
        headroom = slot.cpu if reason == RESOURCE_CPU else slot.memory if reason == RESOURCE_MEMORY else 0
        if best is None or (stage, headroom) > best:
            best, closest = (stage, headroom), slot
    if closest is None or best is None:
        # Every instance passes the static checks: a dynamic memberOf (task:group,
        # runningTasksCount) ruled them out as the batch went on.
        return PlacementFailure(snapshot.slots[0].arn, MEMBER_OF, dict(filtered))
    return PlacementFailure(closest.arn, checks[best[0]].reason, dict(filtered))


class _Batch:
    """One request shape's ranking structures over one snapshot, kept across calls."""

    def __init__(self, snapshot: ClusterSnapshot, request: PlacementRequest, rng: random.Random) -> None:
        self.snapshot = snapshot
        self.slots = snapshot.slots
        self.group = request.group
        self.needs = request.needs
        self.rng = rng
        self.rankers = rankers_for(request.strategies)
        self.instance_rankers = [r for r in self.rankers if not r.value_level]
        self.value_attrs = [r.attribute for r in self.rankers if r.value_level]
        expressions = memberof_expressions(request.constraints)
        self.static_exprs = [e for e in expressions if not e.dynamic]
        self.dynamic_exprs = [e for e in expressions if e.dynamic]
        self.distinct = has_distinct_instance(request.constraints)
        self.log_pos = len(snapshot.log)
        self.counted: dict[int, int] = {}  # slot index -> group tasks counted in value_counts
        self.value_counts: list[dict[str | None, int]] = [defaultdict(int) for _ in self.value_attrs]
        self.use_rng(rng)
        self._build()

    def use_rng(self, rng: random.Random) -> None:
        self.rng = rng
        self.make_entry, self.signature = self._entry_maker(), self._signature_maker()

    def _build(self) -> None:
        """Heaps of every eligible slot; the one pass over the cluster a new batch makes."""
        group, needs, distinct = self.group, self.needs, self.distinct
        cpu, memory, ports, ports_udp = needs.cpu, needs.memory, needs.ports, needs.ports_udp
        dynamic = self.dynamic_exprs
        make_entry, signature = self.make_entry, self.signature
        allowed = self._static_mask()
        heaps: dict[tuple, list] = defaultdict(list)
        for idx, slot in enumerate(self.slots):
            n = slot.group_counts.get(group, 0)
            if n:
                self._count(idx, slot, n)
            # The same test as _fits, unrolled: this loop is the cost of a new batch.
            if (not allowed[idx] or slot.cpu < cpu or slot.memory < memory or (distinct and n)
                    or not slot.agent_connected or slot.status != "ACTIVE"
                    or (ports and not slot.ports.isdisjoint(ports))
                    or (ports_udp and not slot.ports_udp.isdisjoint(ports_udp))
                    or (dynamic and not all(e.matches(slot) for e in dynamic))):
                continue
            heaps[signature(slot)].append(make_entry(idx, slot))
        for heap in heaps.values():
            heapq.heapify(heap)
        self.heaps = heaps
        self.entries = sum(len(h) for h in heaps.values())

    def _static_ok(self, idx: int) -> bool:
        cache = self.snapshot.memberof_cache
        for expr in self.static_exprs:
            matches = cache.get(expr.text)
            if matches is None:
                return all(e.matches(self.slots[idx]) for e in self.static_exprs)
            if not matches[idx]:
                return False
        return True

    def _static_mask(self) -> list[bool]:
        """Which slots satisfy every static memberOf expression (cached per expression)."""
        mask = [True] * len(self.slots)
        cache = self.snapshot.memberof_cache
        for expr in self.static_exprs:
            matches = cache.get(expr.text)
            if matches is None:
                matches = cache[expr.text] = [expr.matches(s) for s in self.slots]
            mask = [a and b for a, b in zip(mask, matches)]
        return mask

    def _fits(self, slot: InstanceSlot) -> bool:
        """Everything but the static memberOf expressions (checked via the mask or directly)."""
        return (slot.agent_connected and slot.status == "ACTIVE" and slot.fits(self.needs)
                and not (self.distinct and slot.group_counts.get(self.group, 0))
                and all(e.matches(slot) for e in self.dynamic_exprs))

    def _count(self, idx: int, slot: InstanceSlot, n: int) -> None:
        delta = n - self.counted.get(idx, 0)
        if delta:
            for j, attr in enumerate(self.value_attrs):
                self.value_counts[j][slot.attributes.get(attr)] += delta
            self.counted[idx] = n

    def _signature_maker(self):
        """slot -> its values of the spread attributes (its heap's key)."""
        attrs = self.value_attrs
        if not attrs:
            return lambda slot: ()
        if len(attrs) == 1:
            only = attrs[0]
            return lambda slot: (slot.attributes.get(only),)
        return lambda slot: tuple(slot.attributes.get(a) for a in attrs)

    def _entry_maker(self):
        """(idx, slot) -> heap entry (instance-level key + random tie-break, idx, version)."""
        rng = self.rng
        scorers = [r.scorer(self.group, rng) for r in self.instance_rankers]
        if not scorers:
            return lambda idx, slot: ((rng.random(),), idx, slot.version)
        if len(scorers) == 1:
            first = scorers[0]
            return lambda idx, slot: ((first(slot), rng.random()), idx, slot.version)
        return lambda idx, slot: ((*[f(slot) for f in scorers], rng.random()), idx, slot.version)

    def catch_up(self) -> None:
        """Account for slots changed since this batch last looked (other batches, stopped tasks)."""
        log = self.snapshot.log
        if self.log_pos < len(log):
            for idx in set(log[self.log_pos:]):
                self._refresh(idx)
        self.log_pos = len(log)
        if self.entries > 2 * len(self.slots) + 64:
            self._build()  # drop the stale entries lazy deletion left behind

    def _refresh(self, idx: int) -> None:
        slot = self.slots[idx]
        self._count(idx, slot, slot.group_counts.get(self.group, 0))
        if self._fits(slot) and self._static_ok(idx):
            heapq.heappush(self.heaps[self.signature(slot)], self.make_entry(idx, slot))
            self.entries += 1

    def _full_key(self, signature: tuple, key: tuple) -> tuple:
        """The strategy key in the request's order: value-level counts merged with the instance key."""
        if not self.value_attrs:
            return key
        full, vi, ii = [], 0, 0
        for ranker in self.rankers:
            if ranker.value_level:
                full.append(self.value_counts[vi][signature[vi]])
                vi += 1
            else:
                full.append(key[ii])
                ii += 1
        full.append(key[-1])
        return tuple(full)

    def pick(self) -> int | None:
        best_key, best_idx = None, None
        for signature, heap in self.heaps.items():
            idx = self._top(heap)
            if idx is None:
                continue
            full = self._full_key(signature, heap[0][0])
            if best_key is None or full < best_key:
                best_key, best_idx = full, idx
        return best_idx

    def _top(self, heap: list) -> int | None:
        """The best still-valid slot of a heap, dropping stale or no-longer-eligible entries."""
        while heap:
            _, idx, version = heap[0]
            slot = self.slots[idx]
            if version == slot.version and all(e.matches(slot) for e in self.dynamic_exprs):
                return idx
            heapq.heappop(heap)
            self.entries -= 1
        return None

    def place(self, idx: int) -> None:
        self.snapshot.take(idx, self.group, self.needs)
        self._refresh(idx)  # pick() catches up on entries from elsewhere first, so the log tail is ours
        self.log_pos = len(self.snapshot.log)
