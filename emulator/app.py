"""The emulator process: builds the object graph from a stack and runs its loops on one asyncio loop.

State lives in `<state dir>/state.db`; on start the process recovers what
its previous run left (instances and tasks are adopted, not recreated),
applies the stack idempotently (a stack's instances and services are
created once; a changed task definition becomes a new revision), and runs
the agent's event follower, the Auto Scaling groups and the service
scheduler, the ALB (its listeners, target groups and health checks, with
the services' tasks registered as targets) and the API endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .alb.service import AlbService
from .api.backend import Backend
from .api.native import add_native_routes
from .api.protocol import make_app
from .clock import RealClock
from .control.agent import ClusterAgent
from .control import scaling_state
from .control.asg import AutoScalingGroups
from .control.capacity_scaler import CapacityScaler
from .control.metric_alarms import apply_stack_alarms
from .control.load_balancing import ServiceLoadBalancing
from .control.recovery import recover
from .control.registry import register_task_definition
from .control.service_scheduler import ServiceScheduler
from .control.task_autoscaler import ServiceAutoScaler
from .metrics import MetricsCollector, MetricsExporter, MetricsStore, add_metrics_route
from .model.arn import service_arn
from .model.service import SERVICE_INACTIVE
from .model.shapes import to_api
from .model.state import StateStore
from .model.task_definition import TaskDefinition
from .runtime.base import Runtime
from .scenario import Stack

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path.home() / ".ecsemu"
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 4566


@dataclass
class Emulator:
    stack: Stack
    state_dir: Path | None = DEFAULT_STATE_DIR   # None: state in memory only (simulations)
    runtime: Runtime | None = None
    clock: RealClock | None = None
    rng: random.Random = field(default_factory=random.Random)
    api_host: str = DEFAULT_API_HOST
    api_port: int | None = DEFAULT_API_PORT   # None: no API endpoint (tests that drive the core directly)
    listen: bool = True                       # False: target groups and health checks, but no ALB listener
    loops: list[asyncio.Task] = field(default_factory=list)
    api_runner: web.AppRunner | None = None
    alb: AlbService | None = None
    metrics: Any = None                       # MetricsStore (CloudWatch-like datapoints) shared by the loops
    capacity_scaler: CapacityScaler | None = None
    # (load balancer name, configured listener port) -> the port it really listens on
    listener_ports: dict[tuple[str, int], int] = field(default_factory=dict)

    async def start(self) -> None:
        self.clock = self.clock or RealClock(self.stack.settings.time_scale)
        if self.state_dir is None:
            self.store = StateStore(None, clock=self.clock)
        else:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.store = StateStore(str(self.state_dir / "state.db"), clock=self.clock)
        if self.runtime is None:
            from .runtime.docker_runtime import DockerRuntime
            self.runtime = DockerRuntime(state_dir=self.state_dir)
        scale = self.stack.settings.instance_resource_scale
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, region=self.stack.settings.region,
                                  cpu_scale=scale.cpu, memory_scale=scale.memory,
                                  logs_dir=self.state_dir / "logs" if self.state_dir else None, rng=self.rng)
        self.asgs = AutoScalingGroups(self.store, self.agent, self.clock, rng=self.rng)
        self.scheduler = ServiceScheduler(self.store, self.agent, self.clock, rng=self.rng)
        # The in-memory runtime answers health checks itself: its addresses are labels, not hosts.
        self.alb = AlbService(self.clock, probe=getattr(self.runtime, "http_probe", None))
        self.load_balancing = ServiceLoadBalancing(self.store, self.agent, self.alb, self.clock,
                                                   self.scheduler.service_event)
        self.scheduler.load_balancing = self.load_balancing
        self.metrics = MetricsStore()
        self.collector = MetricsCollector(self.store, self.runtime, self.clock, self.metrics, self.alb,
                                          cpu_scale=scale.cpu, memory_scale=scale.memory)
        self.capacity_scaler = CapacityScaler(self.store, self.asgs, self.clock, self.metrics)
        self.autoscaler = ServiceAutoScaler(self.store, self.clock, self.metrics, region=self.stack.settings.region,
                                            rng=self.rng, sample_period=self.collector.sample_period)
        counts = await recover(self.agent)
        log.info("recovered: %s", counts)
        self.apply_stack()
        await self._start_alb()
        loop = asyncio.get_running_loop()
        self.loops = [loop.create_task(self.agent.follow_events(), name="agent-events"),
                      loop.create_task(self.asgs.run(), name="auto-scaling-groups"),
                      loop.create_task(self.scheduler.run(), name="service-scheduler"),
                      loop.create_task(self.collector.run(), name="metrics"),
                      loop.create_task(self.capacity_scaler.run(), name="capacity-providers"),
                      loop.create_task(self.autoscaler.run(), name="service-auto-scaling")]
        if self.api_port is not None:
            await self._start_api()

    async def _start_alb(self) -> None:
        """Target groups (with their health checks) and listeners as the store has them; tasks as targets."""
        for tg in self.store.list("target_group"):
            self.alb.ensure_target_group(tg)
        self.load_balancing.watch_target_groups()
        for lb in self.store.list("load_balancer") if self.listen else []:
            bound = await self.alb.ensure_load_balancer(lb)
            for port, real in bound.items():
                self.listener_ports[(lb.load_balancer_name, port)] = real
        self.load_balancing.sync()

    def alb_traffic(self, requests: float, task_arns: list[str]) -> None:
        """Count `requests` spread evenly over these tasks' targets, as if the ALB had routed them (simulations)."""
        if not task_arns or requests <= 0:
            return
        share = int(requests // len(task_arns))
        extra = int(requests) - share * len(task_arns)
        for i, arn in enumerate(task_arns):
            for binding in self.load_balancing.bindings_of(arn):
                self.alb.runtimes[binding.target_group_arn].stats.record_requests(
                    binding.target.target_id, share + (1 if i < extra else 0))

    def listener_urls(self) -> list[str]:
        """Where each ALB listener answers, e.g. http://127.0.0.1:8080/."""
        hosts = {lb.load_balancer_name: lb.host for lb in self.store.list("load_balancer")}
        return [f"http://{hosts.get(name, '127.0.0.1')}:{real}/"
                for (name, _), real in sorted(self.listener_ports.items())]

    async def _start_api(self) -> None:
        """The AWS-compatible endpoint (ECS's JSON 1.1 protocol) on api_host:api_port."""
        backend = Backend(self.store, self.clock, self.agent, self.stack.settings.region, self.rng, alb=self.alb,
                          extras={"capacity_scaler": self.capacity_scaler, "autoscaler": self.autoscaler,
                                  "metrics": self.metrics})
        app = make_app(backend)
        add_native_routes(app, backend, apply_stack=self.apply_new_stack)
        add_metrics_route(app, MetricsExporter(self.metrics, self.store, self.alb, clock=self.clock))
        self.api_runner = web.AppRunner(app, access_log=None)
        await self.api_runner.setup()
        site = web.TCPSite(self.api_runner, self.api_host, self.api_port)
        await site.start()
        self.api_port = site._server.sockets[0].getsockname()[1]  # the real one when 0 was asked for

    def apply_stack(self) -> None:
        """Create what the stack declares and the state doesn't have yet (safe to repeat)."""
        stack, store = self.stack, self.store
        cluster = store.get("cluster", stack.cluster.cluster_arn)
        if cluster is None or cluster.status != "ACTIVE":
            with store.transaction() as tx:
                tx.put("cluster", stack.cluster.cluster_arn, stack.cluster)
        for td in stack.task_definitions:
            self._register_if_changed(td)
        with store.transaction() as tx:  # the stack's ALB as ELBv2 would hold it (ARNs are stable)
            for tg in stack.target_groups:
                tx.put("target_group", tg.target_group_arn, tg)
            for lb in stack.load_balancers:
                tx.put("load_balancer", lb.load_balancer_arn, lb)
        for asg in stack.auto_scaling_groups:
            existing = store.get("auto_scaling_group", asg.auto_scaling_group_name)
            self.asgs.put(existing or asg, stack.cluster.cluster_name)  # scaling may have moved its desired
        for cp in stack.capacity_providers:
            if store.get("capacity_provider", cp.name) is None:
                scaling_state.create_capacity_provider(store, self.clock, cp, region=stack.settings.region)
        if stack.cluster.capacity_providers:
            scaling_state.put_cluster_capacity_providers(
                store, self.clock, stack.cluster.cluster_name, stack.cluster.capacity_providers,
                stack.cluster.default_capacity_provider_strategy, region=stack.settings.region)
        for req in stack.services:
            arn = service_arn(stack.cluster.cluster_name, req.service_name, region=stack.settings.region)
            existing = store.get("service", arn)
            if existing is None or existing.status == SERVICE_INACTIVE:
                from .control.services import create_service
                req.cluster = stack.cluster.cluster_name
                create_service(store, self.clock, req, region=stack.settings.region, rng=self.rng)
        for target in stack.scalable_targets:
            if store.get("scalable_target", scaling_state.target_key(
                    target.service_namespace, target.scalable_dimension, target.resource_id)) is None:
                scaling_state.register_scalable_target(store, self.clock, target, region=stack.settings.region)
        for policy in stack.scaling_policies:
            if not any(p.policy_name == policy.policy_name for p in scaling_state.scaling_policies_of(
                    store, policy.resource_id)):
                scaling_state.put_scaling_policy(store, self.clock, policy, region=stack.settings.region)
        apply_stack_alarms(store, self.clock, stack.metric_alarms, region=stack.settings.region)

    async def apply_new_stack(self, stack: Stack) -> dict:
        """POST /ecsemu/v1/stack: create what the new stack adds (existing resources are kept as they are)."""
        self.stack = stack
        before = {kind: self.store.count(kind) for kind in ("task_definition", "service", "target_group",
                                                              "load_balancer", "auto_scaling_group",
                                                              "metric_alarm")}
        self.apply_stack()
        await self._start_alb()
        return {kind: self.store.count(kind) - n for kind, n in before.items()}

    def _register_if_changed(self, td: TaskDefinition) -> None:
        latest = max((t for t in self.store.list("task_definition") if t.family == td.family and t.status == "ACTIVE"),
                     key=lambda t: t.revision, default=None)
        if latest is None or _content(latest) != _content(td):
            register_task_definition(self.store, td, self.clock.now(), region=self.stack.settings.region)

    async def stop(self, *, terminate: bool = False) -> None:
        """Stop the loops; with `terminate`, also every instance (and so every task) of this state."""
        if self.api_runner is not None:
            await self.api_runner.cleanup()
        if self.capacity_scaler is not None:
            self.capacity_scaler.close()
            self.collector.close()
            self.scheduler.close()
        if self.alb is not None:
            self.load_balancing.close()
            await self.alb.close()
        for task in self.loops:
            task.cancel()
        for task in self.loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if terminate:
            for ci in self.store.list("container_instance"):
                if ci.status != "INACTIVE":
                    await self.agent.terminate_instance(ci.container_instance_arn)
        await self.agent.settle()
        await self.runtime.close()
        self.store.close()


def _content(td: TaskDefinition) -> dict:
    """What makes two registrations the same task definition (not its revision, ARN or dates)."""
    data = to_api(td)
    for key in ("taskDefinitionArn", "revision", "status", "registeredAt", "deregisteredAt"):
        data.pop(key, None)
    return data
