"""Two-dimensional scaling: how fast the simulator plays the seed's story and a large cluster, and at what memory.

- `simulate_story_s`: `ecsemu simulate`'s default spike on the default
  stack (2 x t3.medium, 4 tasks, CPU target 75%, targetCapacity 100), the
  21 AWS minutes 09:00-09:21; goal < 2 s. Also checks the story happened
  (desired 4 -> 8, ASG 2 -> 4, 8 RUNNING), so a fast run that did nothing
  cannot pass for a result.
- `simulate_1k_instances_s` / `_rss_mib`: 1,000 instances and 10,000 tasks
  behind one target group for one AWS hour of steady traffic; goals < 60 s
  and < 1 GiB.
- `metrics_cost_pct_core_50_tasks` comes from bench/metrics.py (real
  Docker), which this runs as well unless --no-docker.

    python bench/scaling.py [--json] [--no-docker]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.scenario import load_default_stack, parse_stack  # noqa: E402
from emulator.simulate import DEFAULT_TRAFFIC, parse_traffic, run  # noqa: E402

LARGE_INSTANCES, LARGE_TASKS = 1_000, 10_000


def story() -> dict:
    started = time.perf_counter()
    result = run(load_default_stack(), parse_traffic(DEFAULT_TRAFFIC), start="09:00", until="09:21")
    elapsed = time.perf_counter() - started
    final = result.final
    service = final["services"]["web-app-service"]
    happened = (service["desiredCount"] == 8 and service["runningCount"] == 8
                and final["auto_scaling_groups"]["ecs-instance-asg"] == 4)
    return {"simulate_story_s": round(elapsed, 3), "story_happened": happened,
            "story_final": {"desired": service["desiredCount"], "running": service["runningCount"],
                            "asg_desired": final["auto_scaling_groups"]["ecs-instance-asg"]}}


def large_stack_text() -> str:
    """1,000 c5.xlarge (4 vCPU) instances, one service of 10,000 tasks of 256 units / 256 MiB behind an ALB."""
    return yaml.safe_dump({
        "settings": {"timeScale": 1, "region": "us-east-1"},
        "cluster": {"clusterName": "big"},
        "autoScalingGroups": [{"AutoScalingGroupName": "big-asg",
                               "LaunchTemplate": {"LaunchTemplateName": "t", "InstanceType": "c5.xlarge"},
                               "MinSize": LARGE_INSTANCES, "MaxSize": LARGE_INSTANCES,
                               "DesiredCapacity": LARGE_INSTANCES,
                               "AvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}],
        "taskDefinitions": [{"family": "web", "containerDefinitions": [{
            "name": "web", "image": "web-app:v1", "cpu": 256, "memory": 256, "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}],
        "targetGroups": [{"Name": "big-tg", "Protocol": "HTTP", "Port": 8080, "HealthCheckPath": "/health",
                          "HealthCheckIntervalSeconds": 30}],
        "loadBalancers": [{"name": "big-alb", "listeners": [{"port": 8081, "targetGroup": "big-tg"}]}],
        "services": [{"serviceName": "web", "taskDefinition": "web", "desiredCount": LARGE_TASKS,
                      "loadBalancers": [{"targetGroupName": "big-tg", "containerName": "web",
                                         "containerPort": 8080}]}],
    })


def large() -> dict:
    stack = parse_stack(large_stack_text(), "bench-large")
    started = time.perf_counter()
    result = run(stack, parse_traffic("08:00=20000", cpu_ms_per_request=10), start="08:00", until="09:00")
    elapsed = time.perf_counter() - started
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    service = result.final["services"]["web"]
    return {"simulate_1k_instances_s": round(elapsed, 2), "simulate_1k_instances_rss_mib": round(rss_mib, 1),
            "large_final": {"instances": result.final["instances"], "running": service["runningCount"]}}


def metrics_cost() -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("metrics.py")), "--json"],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"metrics_cost_error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-docker", action="store_true", help="skip the real-Docker metrics cost figure")
    args = parser.parse_args()
    figures = story()
    if not args.no_docker:
        figures.update(metrics_cost())
    # Last: the large run's peak RSS is the process's, so nothing bigger may run before it.
    figures.update(large())
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
