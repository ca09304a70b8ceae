"""The placer's working view of a cluster: one mutable slot per container instance.

A snapshot is built once from the state store (or by a benchmark or test)
and then placed into batch after batch: each placement takes the task's
resources from its slot, so later tasks see what earlier ones used. Slots
carry exactly the facts placement and the cluster query language read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..model.container_instance import ACTIVE, ContainerInstance
from ..model.placement_spec import PlacementConstraint, PlacementStrategy
from ..model.task import Task
from ..model.task_definition import TaskDefinition


@dataclass(frozen=True)
class TaskNeeds:
    """What one task reserves on its instance."""

    cpu: int = 0
    memory: int = 0
    ports: frozenset[int] = frozenset()       # static TCP host ports
    ports_udp: frozenset[int] = frozenset()   # static UDP host ports

    @classmethod
    def of(cls, td: TaskDefinition) -> TaskNeeds:
        static = td.static_host_ports()
        return cls(
            cpu=td.required_cpu,
            memory=td.required_memory,
            ports=frozenset(p for p, proto in static if proto == "tcp"),
            ports_udp=frozenset(p for p, proto in static if proto == "udp"),
        )


@dataclass(frozen=True)
class PlacementRequest:
    """Place `count` tasks of one task group (a service's or a RunTask call's)."""

    group: str
    needs: TaskNeeds
    count: int = 1
    constraints: tuple[PlacementConstraint, ...] = ()
    strategies: tuple[PlacementStrategy, ...] = ()

    def __post_init__(self) -> None:
        # Requests key the placer's batch cache, so their sequences must be hashable.
        object.__setattr__(self, "constraints", tuple(self.constraints))
        object.__setattr__(self, "strategies", tuple(self.strategies))


class InstanceSlot:
    """One container instance as placement sees it (also the query language's facts)."""

    __slots__ = ("arn", "ec2_instance_id", "status", "agent_connected", "agent_version",
                 "registered_at", "attributes", "cpu", "memory", "ports", "ports_udp",
                 "running_tasks_count", "group_counts", "version")

    def __init__(self, arn: str, *, cpu: int, memory: int, attributes: Mapping[str, str | None] | None = None,
                 ports: Iterable[int] = (), ports_udp: Iterable[int] = (), ec2_instance_id: str = "",
                 status: str = ACTIVE, agent_connected: bool = True, agent_version: str = "1.88.0",
                 registered_at: float = 0.0, running_tasks_count: int = 0,
                 group_counts: Mapping[str, int] | None = None) -> None:
        self.arn = arn
        self.ec2_instance_id = ec2_instance_id
        self.status = status
        self.agent_connected = agent_connected
        self.agent_version = agent_version
        self.registered_at = registered_at
        self.attributes = dict(attributes or {})
        self.cpu = cpu
        self.memory = memory
        self.ports = set(ports)
        self.ports_udp = set(ports_udp)
        self.running_tasks_count = running_tasks_count
        self.group_counts: dict[str, int] = dict(group_counts or {})
        self.version = 0  # bumped on every change, so stale ranking entries are recognised

    @property
    def instance_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def task_groups(self) -> list[str]:
        return [g for g, n in self.group_counts.items() if n > 0]

    def fits(self, needs: TaskNeeds) -> bool:
        return (self.cpu >= needs.cpu and self.memory >= needs.memory
                and self.ports.isdisjoint(needs.ports) and self.ports_udp.isdisjoint(needs.ports_udp))

    def take(self, group: str, needs: TaskNeeds) -> None:
        self.cpu -= needs.cpu
        self.memory -= needs.memory
        self.ports |= needs.ports
        self.ports_udp |= needs.ports_udp
        self.running_tasks_count += 1
        self.group_counts[group] = self.group_counts.get(group, 0) + 1
        self.version += 1

    def give_back(self, group: str, needs: TaskNeeds) -> None:
        self.cpu += needs.cpu
        self.memory += needs.memory
        self.ports -= needs.ports
        self.ports_udp -= needs.ports_udp
        self.running_tasks_count -= 1
        self.group_counts[group] = self.group_counts.get(group, 0) - 1
        self.version += 1

    def __repr__(self) -> str:
        return f"InstanceSlot({self.instance_id}, cpu={self.cpu}, memory={self.memory})"


class ClusterSnapshot:
    """The placement index of one cluster: its slots, and what changed in them.

    Meant to live as long as the cluster: the scheduler keeps it in step
    with the state store (`take`/`give_back` as tasks start and stop,
    `touch` when an instance changes status, `add`/`remove` as instances
    come and go). Placement batches are cached per request shape and catch
    up on the change log, so placing one more task of a service costs
    O(changes + log n), not a pass over the cluster.
    """

    MAX_CACHED_ENTRIES = 2_000_000  # ranking entries kept across cached batches (~150 MB at most)
    MAX_LOG = 200_000

    def __init__(self, slots: Iterable[InstanceSlot] = ()) -> None:
        self.slots: list[InstanceSlot] = list(slots)
        self.generation = 0              # bumped when the set of slots changes: caches start over
        self.log: list[int] = []         # indexes of slots that changed, in order
        self.batches: dict = {}          # request shape -> cached placer batch (owned by placer.py)
        self.memberof_cache: dict[str, list[bool]] = {}  # static expression text -> result per slot

    @property
    def max_cached_batches(self) -> int:
        return max(16, self.MAX_CACHED_ENTRIES // max(1, len(self.slots)))

    def __len__(self) -> int:
        return len(self.slots)

    def by_arn(self) -> dict[str, InstanceSlot]:
        return {s.arn: s for s in self.slots}

    def index_of(self, arn: str) -> int:
        for i, slot in enumerate(self.slots):
            if slot.arn == arn:
                return i
        raise KeyError(arn)

    def take(self, idx: int, group: str, needs: TaskNeeds) -> None:
        self.slots[idx].take(group, needs)
        self._changed(idx)

    def give_back(self, idx: int, group: str, needs: TaskNeeds) -> None:
        self.slots[idx].give_back(group, needs)
        self._changed(idx)

    def touch(self, idx: int) -> None:
        """Record a change made to a slot directly (status, agent connection, attributes).

        Such changes are rare and may change what every cached batch thinks
        of the slot (its spread value, memberOf results), so caches start over.
        """
        self.slots[idx].version += 1
        self._restart()

    def add(self, slot: InstanceSlot) -> None:
        self.slots.append(slot)
        self._restart()

    def remove(self, arn: str) -> InstanceSlot:
        slot = self.slots.pop(self.index_of(arn))
        self._restart()
        return slot

    def _changed(self, idx: int) -> None:
        self.log.append(idx)
        if len(self.log) > self.MAX_LOG:
            self._restart()

    def _restart(self) -> None:
        self.generation += 1
        self.log.clear()
        self.batches.clear()
        self.memberof_cache.clear()

    @classmethod
    def from_state(cls, instances: Iterable[ContainerInstance], tasks: Iterable[Task]) -> ClusterSnapshot:
        """Slots for the instances, with the task groups of the tasks that hold resources on them."""
        slots = {ci.container_instance_arn: slot_for(ci) for ci in instances}
        for task in tasks:
            slot = slots.get(task.container_instance_arn or "")
            if slot is not None and task.holds_resources:
                slot.group_counts[task.group] = slot.group_counts.get(task.group, 0) + 1
        return cls(list(slots.values()))


def slot_for(ci: ContainerInstance) -> InstanceSlot:
    """A container instance as placement sees it (no task groups yet)."""
    return InstanceSlot(
        ci.container_instance_arn,
        cpu=ci.remaining_resources.cpu, memory=ci.remaining_resources.memory,
        ports=ci.remaining_resources.ports, ports_udp=ci.remaining_resources.ports_udp,
        attributes=ci.attributes, ec2_instance_id=ci.ec2_instance_id, status=ci.status,
        agent_connected=ci.agent_connected, agent_version=ci.agent_version,
        registered_at=ci.registered_at, running_tasks_count=ci.running_tasks_count)
