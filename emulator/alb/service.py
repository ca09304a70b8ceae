"""Everything ALB in the emulator process, driven by the model's ELBv2 shapes.

The app holds one `AlbService`: for each `TargetGroup` a runtime and its
health check loop, for each `LoadBalancer` listener a proxy port forwarding
to its target group. `ensure_*` make the running state match the model
(level-based: call them again after any change); the service scheduler
registers targets through `target_group(arn)`, subscribes to it, and the API
describes health from it.
"""

from __future__ import annotations

from typing import Any

from ..clock import Clock
from ..model.elb import LoadBalancer, TargetGroup
from .health import HealthChecker, Probe
from .proxy import AlbProxy, Listener
from .targets import TargetGroupRuntime


class AlbService:
    """Target group runtimes, their health checkers, and the listeners, for one process."""

    def __init__(self, clock: Clock, *, idle_timeout: float = 60.0, connect_timeout: float = 10.0,
                 health_checks: bool = True, probe: Probe | None = None) -> None:
        self.clock = clock
        self.proxy = AlbProxy(idle_timeout=idle_timeout, connect_timeout=connect_timeout)
        self.health_checks = health_checks
        self.probe = probe
        self.runtimes: dict[str, TargetGroupRuntime] = {}
        self.checkers: dict[str, HealthChecker] = {}
        self.listeners: dict[tuple[str, int], Listener] = {}  # (load balancer ARN, configured port)

    # --- target groups ------------------------------------------------------------------

    def target_group(self, arn: str) -> TargetGroupRuntime:
        """The runtime of a target group; KeyError when it was never ensured."""
        return self.runtimes[arn]

    def ensure_target_group(self, tg: TargetGroup) -> TargetGroupRuntime:
        """Create the group's runtime (and start its checks), or apply new settings to it."""
        arn = tg.target_group_arn or tg.target_group_name
        runtime = self.runtimes.get(arn)
        if runtime is None:
            runtime = self.runtimes[arn] = TargetGroupRuntime(tg, self.clock)
            if self.health_checks:
                checker = self.checkers[arn] = HealthChecker(runtime, self.clock, self.probe)
                checker.start()
        else:
            runtime.update_target_group(tg)
        return runtime

    async def remove_target_group(self, arn: str) -> None:
        checker = self.checkers.pop(arn, None)
        if checker is not None:
            await checker.stop()
        runtime = self.runtimes.pop(arn, None)
        if runtime is not None:
            await runtime.close()

    # --- load balancers ------------------------------------------------------------------

    async def ensure_load_balancer(self, lb: LoadBalancer) -> dict[int, int]:
        """Listen on every listener's port and forward to its target group; returns port -> bound port.

        A listener whose target group changed is pointed at the new one in place
        (open connections stay); listeners gone from the model are closed.
        """
        arn = lb.load_balancer_arn or lb.load_balancer_name
        wanted = {listener.port: listener for listener in lb.listeners}
        for key in [k for k in self.listeners if k[0] == arn and k[1] not in wanted]:
            await self.proxy.remove_listener(self.listeners.pop(key).port)
        bound = {}
        for port, listener in wanted.items():
            runtime = self.runtimes.get(listener.target_group_arn or "")
            if runtime is None:
                raise KeyError(f"listener {port} forwards to unknown target group {listener.target_group_arn}")
            running = self.listeners.get((arn, port))
            if running is None or running.host != lb.host:
                if running is not None:
                    await self.proxy.remove_listener(running.port)
                running = self.listeners[(arn, port)] = await self.proxy.add_listener(runtime, port, lb.host)
            if running.runtime is not runtime:
                self.proxy.set_target_group(running, runtime)
            bound[port] = running.port
        return bound

    async def remove_load_balancer(self, lb_arn: str) -> None:
        for key in [k for k in self.listeners if k[0] == lb_arn]:
            await self.proxy.remove_listener(self.listeners.pop(key).port)

    # --- reading ------------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per target group ARN: the CloudWatch counters plus Healthy/UnHealthyHostCount."""
        return {arn: {**rt.stats.snapshot(), **rt.counts()} for arn, rt in self.runtimes.items()}

    async def close(self) -> None:
        await self.proxy.close()
        for arn in list(self.runtimes):
            await self.remove_target_group(arn)
