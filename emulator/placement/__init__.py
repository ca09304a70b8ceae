"""Task placement: ECS's filter -> constraint -> strategy pipeline, as pure functions.

`place_tasks(snapshot, request, rng)` returns a `PlacementPlan`: the
instance each task goes to, or ECS's failure reasons with the closest
matching instance. Nothing here does I/O or reads a clock.
"""

from .placer import PlacementPlan, place_tasks
from .snapshot import ClusterSnapshot, InstanceSlot, PlacementRequest, TaskNeeds

__all__ = ["ClusterSnapshot", "InstanceSlot", "PlacementPlan", "PlacementRequest", "TaskNeeds", "place_tasks"]
