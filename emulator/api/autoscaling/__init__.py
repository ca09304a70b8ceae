"""Application Auto Scaling's JSON 1.1 operations (`AnyScaleFrontendService.<Op>`) for ECS services' desired count.

Handlers are `async (backend, params) -> dict`, as ECS's are, over
emulator.control.scaling_state. Only ServiceNamespace `ecs` with
ScalableDimension `ecs:service:DesiredCount` is served; anything else is a
ValidationException that says so.
"""

from __future__ import annotations

from . import activities, policies, targets

OPERATIONS = {
    **targets.OPERATIONS,
    **policies.OPERATIONS,
    **activities.OPERATIONS,
}
