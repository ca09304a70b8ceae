"""Fluent builders for the placement engine's tests: clusters of slots, and requests.

    snapshot = a_cluster().with_instances(3, type="t3.medium", azs=AZS).build()
    request = a_request("service:web").needing(cpu=256, memory=512).count(3).distinct().build()

Instances are named `ci-0`, `ci-1`, ... unless given a name; the name is the
last part of the container-instance ARN (the id ECS shows in service events),
so tests can talk about instances by name and compare placements with `names()`.
Builders are values: every call returns a changed copy, so a table row's
builder can be extended in a test without touching the row.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

from emulator.model.container_instance import ACTIVE, DEFAULT_RESERVED_PORTS, DRAINING, standard_attributes
from emulator.model.instance_types import get_instance_type
from emulator.model.placement_spec import PlacementConstraint, PlacementStrategy
from emulator.placement import ClusterSnapshot, InstanceSlot, PlacementRequest, TaskNeeds

ARN_PREFIX = "arn:aws:ecs:us-east-1:123456789012:container-instance/test/"
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
AZ = "attribute:ecs.availability-zone"


def arn(name: str) -> str:
    return ARN_PREFIX + name


def name_of(instance_arn: str) -> str:
    return instance_arn.rsplit("/", 1)[-1]


def names(arns: Iterable[str]) -> list[str]:
    return [name_of(a) for a in arns]


# --- instances -----------------------------------------------------------------


class _Builder:
    def _copy(self):
        new = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, (set, dict, list)):
                setattr(new, name, copy.copy(value))
        return new


class SlotBuilder(_Builder):
    """One container instance: a catalogue type's registered resources, standard attributes, then tweaks."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._type = "t3.medium"
        self._az = AZS[0]
        self._cpu: int | None = None
        self._memory: int | None = None
        self._ports: set[int] = set(DEFAULT_RESERVED_PORTS)
        self._ports_udp: set[int] = set()
        self._attributes: dict[str, str | None] = {}
        self._dropped: set[str] = set()
        self._status = ACTIVE
        self._agent_connected = True
        self._groups: dict[str, int] = {}
        self._used = (0, 0)

    def type(self, name: str) -> SlotBuilder:
        new = self._copy()
        new._type = name
        return new

    def az(self, zone: str) -> SlotBuilder:
        new = self._copy()
        new._az = zone
        return new

    def cpu(self, units: int) -> SlotBuilder:
        """Remaining CPU units (overrides the type's registered CPU)."""
        new = self._copy()
        new._cpu = units
        return new

    def memory(self, mib: int) -> SlotBuilder:
        """Remaining memory (overrides the type's registered memory)."""
        new = self._copy()
        new._memory = mib
        return new

    def ports(self, *ports: int) -> SlotBuilder:
        """TCP host ports already in use, besides the reserved ones."""
        new = self._copy()
        new._ports |= set(ports)
        return new

    def no_reserved_ports(self) -> SlotBuilder:
        new = self._copy()
        new._ports -= DEFAULT_RESERVED_PORTS
        return new

    def udp(self, *ports: int) -> SlotBuilder:
        new = self._copy()
        new._ports_udp |= set(ports)
        return new

    def attr(self, name: str, value: str | None = None) -> SlotBuilder:
        new = self._copy()
        new._attributes[name] = value
        return new

    def without_attr(self, name: str) -> SlotBuilder:
        new = self._copy()
        new._dropped.add(name)
        return new

    def status(self, status: str) -> SlotBuilder:
        new = self._copy()
        new._status = status
        return new

    def draining(self) -> SlotBuilder:
        return self.status(DRAINING)

    def disconnected(self) -> SlotBuilder:
        new = self._copy()
        new._agent_connected = False
        return new

    def holding(self, group: str, n: int = 1, *, cpu: int = 0, memory: int = 0) -> SlotBuilder:
        """`n` running tasks of `group`, each reserving cpu/memory."""
        new = self._copy()
        new._groups[group] = new._groups.get(group, 0) + n
        used_cpu, used_memory = new._used
        new._used = (used_cpu + n * cpu, used_memory + n * memory)
        return new

    def build(self) -> InstanceSlot:
        itype = get_instance_type(self._type)
        attributes = standard_attributes(itype, self._az)
        attributes.update(self._attributes)
        for dropped in self._dropped:
            attributes.pop(dropped, None)
        cpu = (itype.cpu_units if self._cpu is None else self._cpu) - self._used[0]
        memory = (itype.registered_memory_mib() if self._memory is None else self._memory) - self._used[1]
        return InstanceSlot(
            arn(self._name), cpu=cpu, memory=memory, attributes=attributes,
            ports=self._ports, ports_udp=self._ports_udp, ec2_instance_id="i-" + self._name,
            status=self._status, agent_connected=self._agent_connected,
            running_tasks_count=sum(self._groups.values()), group_counts=self._groups)


def an_instance(name: str) -> SlotBuilder:
    return SlotBuilder(name)


class ClusterBuilder(_Builder):
    def __init__(self) -> None:
        self._slots: list[SlotBuilder] = []

    def with_instances(self, n: int, *, type: str = "t3.medium", azs: Sequence[str] = AZS[:1],
                       prefix: str = "ci-") -> ClusterBuilder:
        """`n` identical instances of a catalogue type, dealt round-robin over `azs`."""
        new = self._copy()
        start = len(new._slots)
        for i in range(n):
            new._slots.append(an_instance(f"{prefix}{start + i}").type(type).az(azs[i % len(azs)]))
        return new

    def with_instance(self, *slots: SlotBuilder) -> ClusterBuilder:
        new = self._copy()
        new._slots.extend(slots)
        return new

    def build(self) -> ClusterSnapshot:
        return ClusterSnapshot(s.build() for s in self._slots)


def a_cluster() -> ClusterBuilder:
    return ClusterBuilder()


# --- requests ------------------------------------------------------------------


class RequestBuilder(_Builder):
    def __init__(self, group: str) -> None:
        self._group = group
        self._needs = TaskNeeds()
        self._count = 1
        self._constraints: list[PlacementConstraint] = []
        self._strategies: list[PlacementStrategy] = []

    def needing(self, *, cpu: int = 0, memory: int = 0, ports: Iterable[int] = (),
                udp: Iterable[int] = ()) -> RequestBuilder:
        new = self._copy()
        new._needs = TaskNeeds(cpu, memory, frozenset(ports), frozenset(udp))
        return new

    def needs(self, needs: TaskNeeds) -> RequestBuilder:
        new = self._copy()
        new._needs = needs
        return new

    def count(self, n: int) -> RequestBuilder:
        new = self._copy()
        new._count = n
        return new

    def distinct(self) -> RequestBuilder:
        new = self._copy()
        new._constraints.append(PlacementConstraint("distinctInstance"))
        return new

    def member_of(self, expression: str) -> RequestBuilder:
        new = self._copy()
        new._constraints.append(PlacementConstraint("memberOf", expression))
        return new

    def binpack(self, field: str) -> RequestBuilder:
        new = self._copy()
        new._strategies.append(PlacementStrategy("binpack", field))
        return new

    def spread(self, field: str) -> RequestBuilder:
        new = self._copy()
        new._strategies.append(PlacementStrategy("spread", field))
        return new

    def random(self) -> RequestBuilder:
        new = self._copy()
        new._strategies.append(PlacementStrategy("random"))
        return new

    def strategies(self, strategies: Iterable[PlacementStrategy]) -> RequestBuilder:
        new = self._copy()
        new._strategies.extend(strategies)
        return new

    def build(self) -> PlacementRequest:
        return PlacementRequest(self._group, self._needs, self._count,
                                tuple(self._constraints), tuple(self._strategies))


def a_request(group: str = "service:web") -> RequestBuilder:
    return RequestBuilder(group)


# --- helpers -------------------------------------------------------------------


def copy_snapshot(snapshot: ClusterSnapshot) -> ClusterSnapshot:
    """An independent snapshot with the same slots (no cached batches)."""
    return ClusterSnapshot(copy_slot(s) for s in snapshot.slots)


def copy_slot(s: InstanceSlot) -> InstanceSlot:
    return InstanceSlot(
        s.arn, cpu=s.cpu, memory=s.memory, attributes=s.attributes, ports=s.ports, ports_udp=s.ports_udp,
        ec2_instance_id=s.ec2_instance_id, status=s.status, agent_connected=s.agent_connected,
        agent_version=s.agent_version, registered_at=s.registered_at,
        running_tasks_count=s.running_tasks_count, group_counts=s.group_counts)


def slot_named(snapshot: ClusterSnapshot, name: str) -> InstanceSlot:
    return snapshot.slots[snapshot.index_of(arn(name))]


def per_value(snapshot: ClusterSnapshot, arns: Iterable[str], attribute: str) -> dict[str | None, int]:
    """How many of `arns` landed on each value of `attribute`."""
    by_arn = snapshot.by_arn()
    counts: dict[str | None, int] = {}
    for a in arns:
        value = by_arn[a].attributes.get(attribute)
        counts[value] = counts.get(value, 0) + 1
    return counts
