"""CloudWatch's names for what the metrics layer publishes: namespaces, metrics, dimensions.

Readers of the MetricsStore (alarms, target tracking, the capacity scaler,
the exporter) use these so a typo can't silently read an empty series.
"""

from __future__ import annotations

# Namespaces
ECS = "AWS/ECS"
CONTAINER_INSIGHTS = "ECS/ContainerInsights"
MANAGED_SCALING = "AWS/ECS/ManagedScaling"
APPLICATION_ELB = "AWS/ApplicationELB"
AUTO_SCALING = "AWS/AutoScaling"
EMULATOR = "ECSEmulator"   # what has no CloudWatch metric (failed tasks): the emulator's own namespace

# Dimensions
CLUSTER_NAME, SERVICE_NAME = "ClusterName", "ServiceName"
CAPACITY_PROVIDER_NAME = "CapacityProviderName"
TARGET_GROUP, LOAD_BALANCER = "TargetGroup", "LoadBalancer"
AUTO_SCALING_GROUP_NAME = "AutoScalingGroupName"

# AWS/ECS (service: ClusterName + ServiceName; cluster: ClusterName)
CPU_UTILIZATION, MEMORY_UTILIZATION = "CPUUtilization", "MemoryUtilization"
CPU_RESERVATION, MEMORY_RESERVATION = "CPUReservation", "MemoryReservation"

# ECS/ContainerInsights
RUNNING_TASK_COUNT, PENDING_TASK_COUNT, DESIRED_TASK_COUNT = "RunningTaskCount", "PendingTaskCount", "DesiredTaskCount"
CONTAINER_INSTANCE_COUNT, SERVICE_COUNT, TASK_COUNT = "ContainerInstanceCount", "ServiceCount", "TaskCount"
CPU_UTILIZED, CPU_RESERVED = "CpuUtilized", "CpuReserved"             # CPU units
MEMORY_UTILIZED, MEMORY_RESERVED = "MemoryUtilized", "MemoryReserved"  # MiB

# AWS/ECS/ManagedScaling (ClusterName + CapacityProviderName), published by the capacity scaler
CAPACITY_PROVIDER_RESERVATION = "CapacityProviderReservation"

# AWS/ApplicationELB (TargetGroup; and LoadBalancer + TargetGroup)
REQUEST_COUNT, REQUEST_COUNT_PER_TARGET = "RequestCount", "RequestCountPerTarget"
TARGET_RESPONSE_TIME = "TargetResponseTime"
HEALTHY_HOST_COUNT, UNHEALTHY_HOST_COUNT = "HealthyHostCount", "UnHealthyHostCount"
TARGET_CODE_CLASSES = ("2XX", "3XX", "4XX", "5XX")
ELB_CODES = ("4XX", "5XX", "502", "503", "504")


def target_code_count(klass: str) -> str:
    return f"HTTPCode_Target_{klass}_Count"


def elb_code_count(code: str) -> str:
    return f"HTTPCode_ELB_{code}_Count"


# AWS/AutoScaling (AutoScalingGroupName)
GROUP_DESIRED_CAPACITY, GROUP_IN_SERVICE_INSTANCES = "GroupDesiredCapacity", "GroupInServiceInstances"
GROUP_MIN_SIZE, GROUP_MAX_SIZE, GROUP_TOTAL_INSTANCES = "GroupMinSize", "GroupMaxSize", "GroupTotalInstances"

# ECSEmulator (ClusterName; ClusterName + ServiceName): a counter
FAILED_TASK_COUNT = "FailedTaskCount"
