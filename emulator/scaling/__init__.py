"""Two-dimensional scaling as pure decisions: metric datapoints -> alarm states -> new task and instance counts.

- `datapoints`: a CloudWatch-like series (per-period SampleCount/Sum/Min/Max/Average).
- `alarms`: CloudWatch alarm evaluation (M of N, TreatMissingData) with CloudWatch's reasons.
- `target_tracking` / `step_scaling`: Application Auto Scaling's policies on an ECS service.
- `capacity`: CapacityProviderReservation and the ECS-managed scaling of the ASG.

Nothing here does I/O or reads a clock: time comes in as AWS seconds, and
each `plan_*` returns a decision (with its reason) for a control loop to apply.
"""

from .alarms import ALARM, INSUFFICIENT_DATA, OK, AlarmEvaluation, MetricAlarm, evaluate_alarm, evaluate_series
from .capacity import (CapacityDecision, InstanceShape, InstanceView, Reservation, TaskNeed,
                       capacity_provider_reservation, plan_managed_scaling, reservation_percent, slot_utilization,
                       terminable_instances)
from .datapoints import Datapoint, MetricSeries
from .step_scaling import plan_step_scaling
from .target_tracking import (ScalingDecision, ScalingHistory, ServiceCounts, combine_decisions, managed_alarms,
                              plan_target_tracking)

__all__ = [
    "ALARM", "INSUFFICIENT_DATA", "OK", "AlarmEvaluation", "CapacityDecision", "Datapoint", "InstanceShape",
    "InstanceView", "MetricAlarm", "MetricSeries", "Reservation", "ScalingDecision", "ScalingHistory",
    "ServiceCounts", "TaskNeed", "capacity_provider_reservation", "combine_decisions", "evaluate_alarm",
    "evaluate_series", "managed_alarms", "plan_managed_scaling", "plan_step_scaling", "plan_target_tracking",
    "reservation_percent", "slot_utilization", "terminable_instances",
]
