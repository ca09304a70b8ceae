"""Placement strategies as rankers: each turns an instance into a sort key, lower is better.

Strategies chain in the order given, as ECS applies them: the key of
`[spread AZ, binpack memory]` is (tasks of the group in the instance's AZ,
memory left on the instance), compared left to right; a seeded random
number breaks the remaining ties. A ranker is either *instance-level* (its
key depends only on the instance: binpack, spread on instanceId, random) or
*value-level* (spread on an attribute: its key is the count of the group's
tasks over all instances sharing the attribute's value). The placer uses
that split to rank in O(log n) per task.

binpack(cpu|memory): least remaining that still fits.
spread(instanceId|host): fewest tasks of the group on the instance.
spread(attribute:X): fewest tasks of the group on instances with the same X.
random: a random key.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model.placement_spec import PlacementStrategy
from .snapshot import InstanceSlot


@dataclass(frozen=True)
class Ranker:
    kind: str                 # "binpack-cpu", "binpack-memory", "spread-instance", "spread-attribute", "random"
    attribute: str | None = None

    @property
    def value_level(self) -> bool:
        return self.kind == "spread-attribute"

    def scorer(self, group: str, rng: random.Random) -> Callable[[InstanceSlot], float]:
        """slot -> this ranker's instance-level key (not for value-level rankers)."""
        kind = self.kind
        if kind == "binpack-memory":
            return lambda slot: slot.memory
        if kind == "binpack-cpu":
            return lambda slot: slot.cpu
        if kind == "spread-instance":
            return lambda slot: slot.group_counts.get(group, 0)
        if kind == "random":
            return lambda slot: rng.random()
        raise ValueError(f"{kind} ranks by attribute value, not by instance")


def rankers_for(strategies: Sequence[PlacementStrategy]) -> list[Ranker]:
    rankers = []
    for s in strategies:
        if s.type == "binpack":
            rankers.append(Ranker(f"binpack-{s.field}"))
        elif s.type == "spread" and s.field in ("instanceId", "host"):
            rankers.append(Ranker("spread-instance"))
        elif s.type == "spread":
            rankers.append(Ranker("spread-attribute", (s.field or "").removeprefix("attribute:")))
        else:
            rankers.append(Ranker("random"))
    return rankers
