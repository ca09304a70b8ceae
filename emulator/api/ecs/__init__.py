"""ECS's JSON 1.1 operations (`AmazonEC2ContainerServiceV20141113.<Op>`): one module per resource.

Every handler is `async (backend, params) -> dict`: it reads the request,
calls the core (store, registry, agent, services) and renders with the
model's AWS shapes. None of them sees HTTP; `emulator.api.protocol` does.
"""

from __future__ import annotations

from . import attributes, capacity_providers, clusters, container_instances, services, task_definitions, tasks

OPERATIONS = {
    **clusters.OPERATIONS,
    **task_definitions.OPERATIONS,
    **services.OPERATIONS,
    **tasks.OPERATIONS,
    **container_instances.OPERATIONS,
    **attributes.OPERATIONS,
    **capacity_providers.OPERATIONS,
}
