"""Placement throughput: how many tasks per second the placer puts on a large cluster.

Scenario (issue "Foundation"): container instances of mixed types in three
AZs, 10 tasks per instance from 100 services. Half the services use the
seed's HA settings (distinctInstance, spread on AZ then instanceId), the
other half binpack on memory under a memberOf constraint. Each service's
tasks are placed as one batch, as the service scheduler does. Printed at
100, 1,000 and 10,000 instances (tasks scale with instances), plus the
cost of one-task batches at 1,000 instances (a service growing by one).

    python bench/placement.py [--json] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.model.container_instance import DEFAULT_RESERVED_PORTS, standard_attributes  # noqa: E402
from emulator.model.instance_types import get_instance_type  # noqa: E402
from emulator.model.placement_spec import PlacementConstraint, PlacementStrategy  # noqa: E402
from emulator.placement import ClusterSnapshot, InstanceSlot, PlacementRequest, TaskNeeds, place_tasks  # noqa: E402

TYPES = ["t3.large", "m5.xlarge", "c5.2xlarge", "r5.xlarge", "m5.2xlarge"]
AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]
SERVICES = 100
TASKS_PER_INSTANCE = 10
MEMBER_OF = [
    "attribute:ecs.instance-type =~ m5.*",
    "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
    "not(attribute:ecs.instance-type == t3.large)",
    "attribute:ecs.cpu-architecture == x86_64 and attribute:ecs.os-type == linux",
    "attribute:ecs.instance-type in [c5.2xlarge, r5.xlarge]",
]
HA_CONSTRAINTS = (PlacementConstraint("distinctInstance"),)
HA_STRATEGIES = (PlacementStrategy("spread", "attribute:ecs.availability-zone"), PlacementStrategy("spread", "instanceId"))
BINPACK = (PlacementStrategy("binpack", "memory"),)


def build_cluster(instances: int) -> ClusterSnapshot:
    slots = []
    for i in range(instances):
        itype = get_instance_type(TYPES[i % len(TYPES)])
        slots.append(InstanceSlot(
            f"arn:aws:ecs:us-east-1:123456789012:container-instance/bench/{i:032x}",
            cpu=itype.cpu_units, memory=itype.registered_memory_mib(), ports=DEFAULT_RESERVED_PORTS,
            attributes=standard_attributes(itype, AZS[i % len(AZS)]), ec2_instance_id=f"i-{i:017x}"))
    return ClusterSnapshot(slots)


def service_request(index: int, count: int) -> PlacementRequest:
    if index % 2 == 0:
        return PlacementRequest(f"service:ha-{index}", TaskNeeds(cpu=256, memory=256), count,
                                HA_CONSTRAINTS, HA_STRATEGIES)
    expression = MEMBER_OF[(index // 2) % len(MEMBER_OF)]
    return PlacementRequest(f"service:packed-{index}", TaskNeeds(cpu=256, memory=512), count,
                            (PlacementConstraint("memberOf", expression),), BINPACK)


def run_scenario(instances: int, seed: int) -> dict:
    snapshot = build_cluster(instances)
    per_service = instances * TASKS_PER_INSTANCE // SERVICES
    rng = random.Random(seed)
    placed = failed = 0
    start = time.perf_counter()
    for index in range(SERVICES):
        plan = place_tasks(snapshot, service_request(index, per_service), rng)
        placed += len(plan.placements)
        failed += len(plan.failures)
    elapsed = time.perf_counter() - start
    return {"instances": instances, "tasks": placed, "failed": failed, "seconds": round(elapsed, 3),
            "placements_per_s": round(placed / elapsed)}


def run_single_task_batches(instances: int, seed: int, tasks: int = 5000) -> dict:
    """Services growing one task at a time, after each has placed once (the scheduler's steady state)."""
    snapshot = build_cluster(instances)
    rng = random.Random(seed)
    for i in range(SERVICES):
        place_tasks(snapshot, service_request(i, 1), rng)
    placed = 0
    start = time.perf_counter()
    for i in range(tasks):
        placed += len(place_tasks(snapshot, service_request(i % SERVICES, 1), rng).placements)
    elapsed = time.perf_counter() - start
    return {"instances": instances, "tasks": placed, "placements_per_s": round(placed / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = {n: run_scenario(n, args.seed) for n in (100, 1000, 10000)}
    single = run_single_task_batches(1000, args.seed)
    for r in results.values():
        print(f"{r['instances']:>6} instances: {r['tasks']:>7} tasks placed, {r['failed']} failed, "
              f"{r['seconds']:.2f} s, {r['placements_per_s']:,} placements/s")
    slowdown = results[100]["placements_per_s"] / results[10000]["placements_per_s"]
    print(f"slowdown 100 -> 10,000 instances: {slowdown:.2f}x (target <= 2x)")
    print(f"one-task batches at 1,000 instances: {single['placements_per_s']:,} placements/s")
    summary = {
        "scenario": (f"{SERVICES} services, {TASKS_PER_INSTANCE} tasks/instance, types {','.join(TYPES)}, "
                     f"{len(AZS)} AZs; half distinctInstance+spread(AZ)+spread(instanceId), "
                     "half binpack(memory)+memberOf; one batch per service"),
        "instances": 1000,
        "placements_per_s": results[1000]["placements_per_s"],
        "placements_per_s_100": results[100]["placements_per_s"],
        "placements_per_s_10000": results[10000]["placements_per_s"],
        "slowdown_100_to_10000": round(slowdown, 2),
        "failed": sum(r["failed"] for r in results.values()),
        "single_task_batches_per_s_1000": single["placements_per_s"],
    }
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
