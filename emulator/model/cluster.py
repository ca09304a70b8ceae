"""Clusters, in DescribeClusters' shape."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CapacityProviderStrategyItem:
    capacity_provider: str
    weight: int = 0
    base: int = 0


@dataclass
class Tag:
    key: str
    value: str = ""


@dataclass
class Cluster:
    cluster_arn: str
    cluster_name: str
    status: str = "ACTIVE"
    registered_container_instances_count: int = 0
    running_tasks_count: int = 0
    pending_tasks_count: int = 0
    active_services_count: int = 0
    capacity_providers: list[str] = field(default_factory=list)
    default_capacity_provider_strategy: list[CapacityProviderStrategyItem] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    settings: list[dict[str, str]] = field(default_factory=lambda: [{"name": "containerInsights", "value": "enabled"}])
