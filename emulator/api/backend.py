"""What every API handler works with: the state store, the clock, the agent, the region, a seeded rng."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..control.agent import ClusterAgent
from ..model.state import StateStore


@dataclass
class Backend:
    store: StateStore
    clock: Clock
    agent: ClusterAgent
    region: str = ""
    rng: random.Random = field(default_factory=random.Random)
    alb: Any = None         # the process's AlbService (target groups, listeners), when it runs one
    extras: dict[str, Any] = field(default_factory=dict)  # other loops the API reads (metrics, scaling)

    def __post_init__(self) -> None:
        self.region = self.region or self.agent.region

    @classmethod
    def of(cls, agent: ClusterAgent, rng: random.Random | None = None) -> Backend:
        """The backend of an agent: its store, clock and region."""
        return cls(agent.store, agent.clock, agent, agent.region, rng or random.Random())
