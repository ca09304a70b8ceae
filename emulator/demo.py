"""`ecsemu demo` (`make demo`): the article's 09:00-09:21 story, live on real Docker, narrated as it happens.

The default stack runs at a time scale that plays it in a few minutes,
with the CPU target at 50% so that four saturated tasks ask for eight (on
a laptop-sized share of CPU, tasks cannot report much above 100%). A
bounded load generator on 127.0.0.1 plays normal traffic, the spike and
its end against the ALB; the narration comes from the emulator's own
event journal (AWS time, and wall time since the start), and every time
the cluster's shape changes the demo counts Docker's labelled containers
(instances, and tasks inside each instance's daemon) and says whether they
match what it narrated. It ends with a blue/green deployment of v2 under
load and its error count. Everything it started is removed at the end,
Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

TIME_SCALE = 15.0
CPU_TARGET = 50.0
SPIKE_RATE, SPIKE_CPU_MS = 40, 25       # 1 CPU-second a second: twice what four tasks reserve for real
NORMAL_RATE = 6
PHASE_LIMIT_S = 240                     # wall seconds any one phase may take before the demo gives up


@dataclass
class DemoReport:
    checks: list[tuple[str, bool]] = field(default_factory=list)   # (what was compared, matched)
    deploy_errors: int | None = None
    deploy_requests: int = 0
    completed: bool = False

    @property
    def ok(self) -> bool:
        return self.completed and all(m for _, m in self.checks) and self.deploy_errors == 0


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def demo_stack_text(port: int, time_scale: float = TIME_SCALE) -> str:
    from importlib.resources import files

    stack = yaml.safe_load((files("emulator") / "stacks" / "default.yaml").read_text())
    stack["settings"]["timeScale"] = time_scale
    stack["loadBalancers"][0]["listeners"][0]["port"] = port
    policy = stack["scalingPolicies"][0]
    policy["MaxCapacity"] = 8
    policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] = CPU_TARGET
    return yaml.safe_dump(stack)


class Demo:
    def __init__(self, state_dir: Path, *, time_scale: float = TIME_SCALE, out: Callable[[str], None] = print,
                 port: int = 8080) -> None:
        self.state_dir, self.time_scale, self.out = state_dir, time_scale, out
        self.port = _free_port(port)
        self.report = DemoReport()
        self.began = time.perf_counter()

    async def run(self) -> DemoReport:
        from .app import Emulator
        from .clock import RealClock
        from .runtime.docker_runtime import DockerRuntime
        from .scenario import parse_stack
        from .simulate import Narrator, Traffic

        from .daemon import remove_everything

        self.state_dir.mkdir(parents=True, exist_ok=True)
        await remove_everything(self.state_dir)  # a demo starts from nothing (an interrupted one may have left some)
        self.runtime = DockerRuntime(state_dir=self.state_dir)
        # AWS time starts at 08:50 today, so the story's clock reads like the article's morning.
        morning = time.time() - time.time() % 86400 + 8 * 3600 + 50 * 60
        self.emulator = Emulator(parse_stack(demo_stack_text(self.port, self.time_scale), "demo"),
                                 state_dir=self.state_dir, runtime=self.runtime,
                                 clock=RealClock(self.time_scale, start_aws=morning), api_port=0)
        self.load = None
        self.out(f"ecsemu demo: the article's scaling story on real Docker at {self.time_scale:g}x "
                 f"(an AWS minute is {60 / self.time_scale:.0f} s); ALB http://127.0.0.1:{self.port}/")
        await self.emulator.start()
        try:
            clock = self.emulator.clock
            self.narrator = Narrator(clock, self.began, Traffic(((0.0, 0.0),)), 0.0)
            self.narrator.last_rps = 0.0  # traffic is told by the phases here, not by a spec
            self.printed = 0
            await self._until(lambda s: s["running"] == s["desired"] == 4 and s["instances"] == 2,
                              "the cluster comes up: 2 instances, 4 tasks")
            self.narrator.skip_to_now(self.emulator)
            await self._phase("Normal traffic", NORMAL_RATE, SPIKE_CPU_MS,
                              lambda s: clock.now() - self._phase_start >= 120, "two quiet AWS minutes")
            await self._phase("Traffic spike", SPIKE_RATE, SPIKE_CPU_MS,
                              lambda s: s["desired"] >= 8 and s["running"] == s["desired"] and s["waiting"] == 0
                              and s["instances"] >= 4, "fully scaled: 8 tasks RUNNING on 4 instances")
            await self._phase("Traffic gone", 0, 0,
                              lambda s: s["desired"] <= 4 and s["asg"] == 2 and s["instances"] == 2,
                              "both dimensions scaled back in")
            await self._blue_green()
            self.report.completed = True
        finally:
            await self._stop_load()
            await self.emulator.stop(terminate=True)
            await remove_everything(self.state_dir)
            self.out(f"ecsemu demo: cleaned up ({time.perf_counter() - self.began:.0f} s in all)")
        return self.report

    # --- phases ------------------------------------------------------------------------------

    async def _phase(self, title: str, rate: float, cpu_ms: int, done, what: str) -> None:
        from .loadgen import BackgroundLoad, LoadSpec

        await self._stop_load()
        self._say(f"== {title}" + (f": {rate:g} requests/s of {cpu_ms} ms CPU on the ALB" if rate else ""))
        if rate:
            self.load = BackgroundLoad(LoadSpec(f"http://127.0.0.1:{self.port}/cpu?ms={cpu_ms}", rate=rate,
                                                duration_s=PHASE_LIMIT_S * 2, concurrency=64,
                                                timeout_s=30)).start()
        self._phase_start = self.emulator.clock.now()
        await self._until(done, what)

    async def _blue_green(self) -> None:
        from .cli_views import registration_input
        from .control import scaling_state
        from .control.registry import register_task_definition
        from .control.services import update_service
        from .loadgen import BackgroundLoad, LoadSpec
        from .model.shapes import to_api
        from .model.task_definition_validation import parse_task_definition
        from .runtime.images import build_app_image

        await self._stop_load()
        store = self.emulator.store
        service = next(iter(store.list("service")))
        cluster = service.cluster_arn.rsplit("/", 1)[-1]
        region = self.emulator.stack.settings.region
        self._say("== A full cluster again: register-scalable-target --min-capacity 4 "
                  "(two 1-vCPU tasks fill each t3.medium)")
        scaling_state.register_scalable_target(
            store, self.emulator.clock, {"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
                                         "ResourceId": f"service/{cluster}/{service.service_name}", "MinCapacity": 4},
            region=region)
        await self._until(lambda s: s["running"] == s["desired"] == 4 and s["completed"], "4 tasks RUNNING")
        self._say("== Blue/green deployment of v2 under 20 requests/s (maximumPercent 200, minimumHealthyPercent 100): "
                  "the new tasks need room, so the capacity provider grows the group")
        await asyncio.to_thread(build_app_image, "web-app:v2", "v2", progress=lambda *_: None)
        data = registration_input(to_api(store.get("task_definition", service.task_definition)), "web-app:v2", "v2")
        load = BackgroundLoad(LoadSpec(f"http://127.0.0.1:{self.port}/", rate=20, duration_s=PHASE_LIMIT_S * 2,
                                       concurrency=32, timeout_s=30, body_field="version")).start()
        try:
            td = register_task_definition(store, parse_task_definition(data), self.emulator.clock.now(),
                                          region=region)
            update_service(store, self.emulator.clock, cluster, service.service_name,
                           task_definition=td.task_definition_arn, rng=self.emulator.rng, region=region)
            await self._until(lambda s: s["completed"] and s["task_definition"] == td.task_definition_arn,
                              "deployment COMPLETED")
        finally:
            report = await asyncio.to_thread(load.finish)
        self.report.deploy_requests, self.report.deploy_errors = report.total, report.non_2xx
        versions = dict(report.values_after(0))
        self._say(f"Blue/green done: {report.total} requests during the deployment, {report.non_2xx} errors "
                  f"({'none' if report.non_2xx == 0 else 'SOME'}); answers by version {versions}")
        self._say("== After the deployment: the old tasks' instances are empty, and the group shrinks again")
        await self._until(lambda s: s["asg"] == 2 and s["instances"] == 2, "the group back at 2 instances")

    async def _stop_load(self) -> None:
        if self.load is not None:
            load, self.load = self.load, None
            await asyncio.to_thread(load.finish)

    # --- watching ------------------------------------------------------------------------------

    def _shape(self) -> dict:
        store = self.emulator.store
        tasks = [t for t in store.list("task") if t.last_status != "STOPPED"]
        service = next(iter(store.list("service")))
        asg = next(iter(store.list("auto_scaling_group")))
        primary = service.primary
        return {"desired": service.desired_count, "running": sum(t.last_status == "RUNNING" for t in tasks),
                "waiting": sum(t.last_status == "PROVISIONING" for t in tasks),
                "instances": sum(ci.status == "ACTIVE" for ci in store.list("container_instance")),
                "asg": asg.desired_capacity, "task_definition": service.task_definition,
                "completed": len(service.deployments) == 1 and primary is not None
                and primary.rollout_state == "COMPLETED"}

    async def _until(self, done, what: str) -> None:
        deadline = time.monotonic() + PHASE_LIMIT_S
        while True:
            await self._observe()
            if done(self._shape()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo: {what} did not happen within {PHASE_LIMIT_S} s")
            await asyncio.sleep(0.5)

    async def _observe(self) -> None:
        self.narrator.observe(self.emulator)
        fresh = self.narrator.lines[self.printed:]
        self.printed = len(self.narrator.lines)
        for line in fresh:
            self.out(_format(line, self.began))
            if line.text.startswith("["):
                await self._check_docker()

    async def _check_docker(self) -> None:
        """Count Docker's labelled containers and compare them with the state the narration tells.

        Docker's events reach the state within a fraction of a second, so a
        difference gets three looks, a moment apart, before it counts as one.
        """
        from .runtime.base import InstanceNotFound

        for attempt in range(3):
            store = self.emulator.store
            registered = {ci.ec2_instance_id for ci in store.list("container_instance") if ci.status != "INACTIVE"}
            instances = [s for s in await self.runtime.list_instances() if s.state == "running"]
            booting = sum(1 for s in instances if s.ec2_instance_id not in registered)
            task_containers = 0
            for status in instances:
                try:
                    tasks = await self.runtime.list_tasks(status.ec2_instance_id)
                except InstanceNotFound:  # still booting: its daemon does not answer yet
                    continue
                task_containers += sum(1 for t in tasks if any(c.state == "running" for c in t.containers))
            want_instances = len(registered)
            want_tasks = sum(1 for t in store.list("task") if t.last_status == "RUNNING")
            matched = (len(instances) - booting, task_containers) == (want_instances, want_tasks)
            if matched:
                break
            await asyncio.sleep(0.3)
        what = (f"docker: {len(instances)} instance containers ({booting} booting), {task_containers} running task "
                f"containers (narrated: {want_instances} instances, {want_tasks} RUNNING tasks)")
        self.report.checks.append((what, matched))
        self.out(f"        {what} {'-- matches' if matched else '-- MISMATCH'}")

    def _say(self, text: str) -> None:
        self.narrator.say(text)


def _format(line, began: float) -> str:
    from datetime import datetime, timezone

    stamp = datetime.fromtimestamp(line.aws_time, tz=timezone.utc).strftime("%H:%M:%S")
    return f"{stamp} (+{line.wall_s:5.1f} s)  {line.text}"


def main(state_dir: Path, time_scale: float = TIME_SCALE) -> int:
    demo = Demo(state_dir, time_scale=time_scale, out=lambda text: print(text, flush=True))
    try:
        report = asyncio.run(demo.run())
    except KeyboardInterrupt:
        from .daemon import remove_everything_sync

        removed = remove_everything_sync(state_dir)  # whatever the interrupted run could not stop itself
        print(f"ecsemu demo: interrupted; everything it started was removed ({removed} instance(s) left over)",
              file=sys.stderr)
        return 130
    except TimeoutError as exc:
        print(f"ecsemu demo: {exc}", file=sys.stderr)
        return 1
    bad = [what for what, ok in report.checks if not ok]
    print(f"ecsemu demo: {'OK' if report.ok else 'FAILED'}: {len(report.checks)} Docker checks"
          f"{', mismatches: ' + '; '.join(bad) if bad else ' matched'}; blue/green errors: {report.deploy_errors}")
    return 0 if report.ok else 1
