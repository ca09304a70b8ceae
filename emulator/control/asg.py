"""Auto Scaling groups: keep each group's desired number of instances, balanced over its AZs.

An instance that dies is replaced; a group above its desired capacity
terminates instances as the ASG's default policy does (the AZ with the
most instances, then at random), never one protected from scale-in.
Which instances belong to a group is written on them as EC2's
`aws:autoscaling:groupName` tag. Capacity providers (which change the
desired capacity and lift scale-in protection) build on this.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

from ..clock import Clock
from ..model.container_instance import INACTIVE, ContainerInstance
from ..model.events import SCALING_ACTIVITY, Event
from ..model.scaling import AutoScalingGroup
from ..model.state import StateStore, register_kind
from .agent import ClusterAgent

log = logging.getLogger(__name__)

GROUP_TAG = "aws:autoscaling:groupName"
PROTECTED_TAG = "ecsemu:protected-from-scale-in"
RECONCILE_EVERY_S = 10

register_kind("auto_scaling_group", AutoScalingGroup)


def tag(ci: ContainerInstance, key: str) -> str | None:
    return next((t.get("value") for t in ci.tags if t.get("key") == key), None)


class AutoScalingGroups:
    def __init__(self, store: StateStore, agent: ClusterAgent, clock: Clock, *,
                 rng: random.Random | None = None) -> None:
        self.store, self.agent, self.clock = store, agent, clock
        self.rng = rng or random.Random()
        self.cluster_of: dict[str, str] = {}   # group name -> cluster its instances join (ECS_CLUSTER)
        self._instances: dict[str, tuple[int, list[ContainerInstance]]] = {}   # name -> (store version, them)

    def put(self, asg: AutoScalingGroup, cluster: str) -> None:
        self.cluster_of[asg.auto_scaling_group_name] = cluster
        with self.store.transaction() as tx:
            tx.put("auto_scaling_group", asg.auto_scaling_group_name, asg)

    def instances(self, name: str) -> list[ContainerInstance]:
        """The group's container instances that are not INACTIVE, in the store's order (found again
        whenever the store's container instances have changed since last asked)."""
        version = self.store.version("container_instance")
        kept = self._instances.get(name)
        if kept is None or kept[0] != version:
            index = self.store.index("container_instance", "asg", lambda ci: tag(ci, GROUP_TAG))
            kept = self._instances[name] = (version, [ci for ci in index.objects(name)
                                                      if ci.status != INACTIVE and tag(ci, GROUP_TAG) == name])
        return list(kept[1])

    async def run(self) -> None:
        while True:
            await self.reconcile_all()
            await self.clock.sleep(RECONCILE_EVERY_S)

    async def reconcile_all(self) -> None:
        for asg in self.store.list("auto_scaling_group"):
            try:
                await self.reconcile(asg)
            except Exception:
                log.exception("reconciling Auto Scaling group %s failed", asg.auto_scaling_group_name)

    async def reconcile(self, asg: AutoScalingGroup) -> None:
        live = self.instances(asg.auto_scaling_group_name)
        desired = asg.desired_capacity if asg.desired_capacity is not None else asg.min_size
        if len(live) < desired:
            await self._launch(asg, live, desired - len(live))
        elif len(live) > desired:
            await self._terminate(asg, live, len(live) - desired)

    async def _launch(self, asg: AutoScalingGroup, live: list[ContainerInstance], count: int) -> None:
        """Launch `count` instances at once (as EC2 does), each in the group's AZ with the fewest."""
        per_az = Counter({az: 0 for az in asg.availability_zones or ["us-east-1a"]})
        per_az.update(ci.availability_zone for ci in live if ci.availability_zone in per_az)
        zones = []
        for _ in range(count):
            az = min(per_az, key=lambda z: (per_az[z], z))  # balance over the group's AZs
            per_az[az] += 1
            zones.append(az)
        results = await asyncio.gather(*(self._launch_one(asg, az) for az in zones), return_exceptions=True)
        for error in [r for r in results if isinstance(r, BaseException)]:
            log.warning("Auto Scaling group %s could not launch an instance: %s", asg.auto_scaling_group_name, error)

    async def _launch_one(self, asg: AutoScalingGroup, az: str) -> None:
        group = asg.auto_scaling_group_arn or asg.auto_scaling_group_name
        with self.store.transaction() as tx:
            tx.record(Event(SCALING_ACTIVITY, group, f"Launching a new EC2 instance in {az}",
                            detail={"autoScalingGroupName": asg.auto_scaling_group_name, "availabilityZone": az}))
        ci = await self.agent.launch_instance(
            self.cluster_of.get(asg.auto_scaling_group_name, "default"), asg.instance_type.name, az,
            reserved_memory_mib=asg.reserved_memory_mib)
        ci.tags = [{"key": GROUP_TAG, "value": asg.auto_scaling_group_name}]
        if asg.new_instances_protected_from_scale_in:
            ci.tags.append({"key": PROTECTED_TAG, "value": "true"})
        with self.store.transaction() as tx:
            tx.put("container_instance", ci.container_instance_arn, ci)
            tx.record(Event(SCALING_ACTIVITY, group, f"Launching a new EC2 instance: {ci.ec2_instance_id} "
                                                     "(InService)",
                            detail={"autoScalingGroupName": asg.auto_scaling_group_name, "availabilityZone": az,
                                    "ec2InstanceId": ci.ec2_instance_id}))

    async def _terminate(self, asg: AutoScalingGroup, live: list[ContainerInstance], count: int) -> None:
        candidates = [ci for ci in live if tag(ci, PROTECTED_TAG) != "true"]
        for _ in range(min(count, len(candidates))):
            per_az = Counter(ci.availability_zone for ci in candidates)
            busiest = max(per_az.values())
            pool = [ci for ci in candidates if per_az[ci.availability_zone] == busiest]
            victim = self.rng.choice(sorted(pool, key=lambda ci: ci.ec2_instance_id))
            candidates.remove(victim)
            with self.store.transaction() as tx:
                tx.record(Event(SCALING_ACTIVITY, asg.auto_scaling_group_arn or asg.auto_scaling_group_name,
                                f"Terminating EC2 instance: {victim.ec2_instance_id}",
                                detail={"autoScalingGroupName": asg.auto_scaling_group_name}))
            await self.agent.terminate_instance(victim.container_instance_arn)
