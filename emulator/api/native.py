"""The emulator's native API under `/ecsemu/v1/`: what AWS has no call for (events, target health, logs,
time scale, stack files, a one-call summary, both scaling dimensions at once), as JSON over the same aiohttp
endpoint.

Errors read as AWS's do, `{"__type": code, "message": ...}` with a 4xx status,
so `ecsemu` renders them like ECS's. Every route reads the store on the event
loop's thread (the store belongs to it); the events long poll waits on the
store's commit notices, never by sleeping, and is bounded.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ..control import scaling_state
from ..control.asg import GROUP_TAG, PROTECTED_TAG, tag
from ..control.registry import get_cluster
from ..control.task_specs import container_spec
from ..errors import AwsError, ClusterNotFoundException, InvalidParameterException, ServerException
from ..model.arn import short_name
from ..model.cluster import Cluster
from ..model.container_instance import ACTIVE as INSTANCE_ACTIVE
from ..model.container_instance import INACTIVE
from ..model.events import SCALING_ACTIVITY, SERVICE_EVENT, Event
from ..model.scaling import ECS_NAMESPACE, AutoScalingGroup, CapacityProvider
from ..model.service import SERVICE_INACTIVE, Service
from ..model.shapes import to_pascal_api
from ..model.state import CommitNotice, StateStore
from ..model.task import PROVISIONING, RUNNING, STOPPED, Task
from ..placement import TaskNeeds
from ..scaling.alarms import INSUFFICIENT_DATA
from ..scaling.capacity import managed_scaling_alarms, slot_utilization
from ..scaling.target_tracking import managed_alarms, metric_spec
from ..runtime.base import RuntimeFailure
from ..scenario import Stack, StackError, parse_stack
from .backend import Backend
from .errors import RequestEntityTooLarge, SerializationException, UnknownOperationException

log = logging.getLogger(__name__)

PREFIX = "/ecsemu/v1"
MAX_WAIT_S = 30.0            # the events long poll never holds a request longer than this
DEFAULT_EVENTS_LIMIT = 100
MAX_EVENTS_LIMIT = 1000
MAX_TAIL_LINES = 100_000
MAX_TIME_BODY_BYTES = 4 * 1024
MAX_STACK_BODY_BYTES = 512 * 1024

DEFAULT_SCALING_EVENTS = 5      # GET /scaling's newest journal events (service events, scaling activities)
MAX_SCALING_EVENTS = 100
SCALING_ACTIVITIES = 20          # GET /scaling's newest scaling activities, both services' together
EVENT_SCAN_WINDOW = 256          # the newest events are looked for this many journal entries back, then 4x more
EVENT_SCAN_LIMIT = 65_536        # ... never further back than this

# What GET /scaling says each of the two instance gauges is (they are easily confused).
RESERVATION_DEFINITION = ("CapacityProviderReservation (AWS/ECS/ManagedScaling) = M / N x 100: N the group's "
                          "instances, M the instances needed (those running tasks, plus the step PROVISIONING "
                          "tasks need). What ECS managed scaling tracks against targetCapacity.")
SLOT_GAUGE_DEFINITION = ("The seed article's gauge, not a CloudWatch metric and not what ECS scales on: RUNNING "
                         "tasks x 100 / task slots, where task slots = how many tasks of the service's size (CPU, "
                         "memory, static ports) fit on the group's ACTIVE instances when each is empty.")

# The service metrics GET /scaling shows beside each service (AWS/ECS, ClusterName + ServiceName).
SERVICE_METRICS_NAMESPACE = "AWS/ECS"
SERVICE_METRICS = ("CPUUtilization", "MemoryUtilization")

APPLICATION_AUTO_SCALING, AUTO_SCALING = "application-autoscaling", "autoscaling"  # activities' Source

ApplyStack = Callable[[Stack], Any]


class TargetGroupNotFoundException(AwsError):
    """ELBv2's answer for a target group it does not know (its query protocol drops "Exception")."""

    code = "TargetGroupNotFound"
    status = 400


class UnsupportedFeatureException(AwsError):
    code = "UnsupportedFeatureException"
    status = 400


class UnknownRouteException(UnknownOperationException):
    status = 404


class MethodNotAllowedException(AwsError):
    code = "MethodNotAllowedException"
    status = 405


def add_native_routes(app: web.Application, backend: Backend, *, apply_stack: ApplyStack | None = None) -> None:
    """Serve the native API on `app` (before it starts); `apply_stack(stack)` backs POST /stack."""
    api = _NativeApi(backend, apply_stack)
    routes = {
        "/events": {"GET": api.events},
        "/target-health": {"GET": api.target_health},
        "/logs": {"GET": api.logs},
        "/time": {"GET": api.get_time, "PUT": api.put_time},
        "/stack": {"POST": api.post_stack},
        "/summary": {"GET": api.summary},
        "/scaling": {"GET": api.scaling},
    }
    for path, methods in routes.items():
        for method, handler in methods.items():
            app.router.add_route(method, PREFIX + path, _json_handler(handler))

    async def unknown(request: web.Request) -> web.Response:
        path = request.path.removeprefix(PREFIX)
        if path in routes:
            return _error(MethodNotAllowedException(
                f"{request.method} {request.path} is not supported; use {', '.join(sorted(routes[path]))}."))
        return _error(UnknownRouteException(f"{request.path} is not part of the native API; it serves "
                                            f"{', '.join(PREFIX + p for p in routes)}."))

    app.router.add_route("*", PREFIX + "/{rest:.*}", unknown)


def _json_handler(handler: Callable[[web.Request], Awaitable[Any]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        try:
            return _json(200, await handler(request))
        except AwsError as exc:
            return _error(exc)
        except Exception:
            log.exception("internal error in %s %s", request.method, request.path)
            return _error(ServerException("Internal error; the emulator's log has the details."))
    return respond


def _json(status: int, data: Any) -> web.Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    return web.Response(status=status, text=body, content_type="application/json")


def _error(exc: AwsError) -> web.Response:
    response = _json(exc.status, exc.to_api())
    response.headers["x-amzn-ErrorType"] = exc.code
    return response


class _NativeApi:
    def __init__(self, backend: Backend, apply_stack: ApplyStack | None) -> None:
        self.backend = backend
        self.store = backend.store
        self.apply_stack = apply_stack

    # --- events ----------------------------------------------------------------------

    async def events(self, request: web.Request) -> dict[str, Any]:
        """The journal after `since`, oldest first; with `wait`, held until one exists (or the wait ends)."""
        q = request.query
        since = _int(q, "since", 0, minimum=0)
        kinds = [k.strip() for k in q.get("kinds", "").split(",") if k.strip()] or None
        resource = q.get("resource") or None
        limit = _int(q, "limit", DEFAULT_EVENTS_LIMIT, minimum=1, maximum=MAX_EVENTS_LIMIT)
        wait = min(_float(q, "wait", 0.0, minimum=0.0), MAX_WAIT_S)
        found = self.store.events(since, kinds, resource, limit)
        if not found and wait > 0:
            found = await self._wait_for_events(since, kinds, resource, limit, wait)
        # Fewer than `limit`: nothing else matches up to the journal's end, so the next poll starts there.
        next_since = found[-1].seq if len(found) == limit else max(since, self.store.last_seq)
        return {"events": [_event(e) for e in found], "nextSince": next_since, "lastSeq": self.store.last_seq}

    async def _wait_for_events(self, since: int, kinds: list[str] | None, resource: str | None, limit: int,
                               wait: float) -> list[Event]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        committed = asyncio.Event()

        def on_commit(notice: CommitNotice) -> None:
            if notice.events:
                loop.call_soon_threadsafe(committed.set)

        unsubscribe = self.store.subscribe(on_commit)
        try:
            while True:
                found = self.store.events(since, kinds, resource, limit)
                remaining = deadline - loop.time()
                if found or remaining <= 0:
                    return found
                committed.clear()
                try:
                    await asyncio.wait_for(committed.wait(), remaining)
                except TimeoutError:
                    pass
        finally:
            unsubscribe()

    # --- target health -------------------------------------------------------------------

    async def target_health(self, request: web.Request) -> dict[str, Any]:
        """Every target group (or the one named) with DescribeTargetHealth's answer and its host counts."""
        wanted = request.query.get("targetGroup") or None
        alb = self.backend.alb
        runtimes = list(alb.runtimes.items()) if alb is not None else []
        if wanted is not None:
            runtimes = [(key, rt) for key, rt in runtimes
                        if wanted in (key, rt.arn, rt.target_group.target_group_name)]
            if not runtimes:
                raise TargetGroupNotFoundException(f"One or more target groups not found: {wanted}")
        groups = []
        for key, runtime in runtimes:
            states = list(runtime.targets.targets.values())
            descriptions = runtime.describe_target_health([ts.target for ts in states])
            for ts, description in zip(states, descriptions):
                if ts.target.task_arn:
                    description["TaskArn"] = ts.target.task_arn
            groups.append({"TargetGroupName": runtime.target_group.target_group_name,
                           "TargetGroupArn": runtime.arn or key,
                           "TargetHealthDescriptions": descriptions, **runtime.counts()})
        return {"TargetGroups": groups}

    # --- logs ----------------------------------------------------------------------------

    async def logs(self, request: web.Request) -> dict[str, Any]:
        """A task container's output: from its container while it exists, else from the kept log stream."""
        q = request.query
        task = self._find_task(q.get("cluster") or None, _required(q, "task"))
        tail = _int(q, "tail", None, minimum=0, maximum=MAX_TAIL_LINES)
        td = self.store.get("task_definition", task.task_definition_arn)
        names = [c.name for c in task.containers] or [c.name for c in (td.container_definitions if td else [])]
        name = q.get("container") or (names[0] if names else None)
        if name not in names:
            raise InvalidParameterException(f"The container {name} is not part of task {task.task_id}; its "
                                            f"containers are: {', '.join(names) or 'none'}.")
        group = stream = None
        if td is not None:
            definition = next((c for c in td.container_definitions if c.name == name), None)
            if definition is not None:
                spec = container_spec(definition, td, task, {}, self.backend.clock.time_scale)
                group, stream = spec.log_group, spec.log_stream
        source, text = await self._read_logs(task, name, group, stream)
        lines = text.splitlines()
        if tail is not None:
            lines = lines[-tail:] if tail else []
        return {"taskArn": task.task_arn, "containerName": name, "source": source,
                "logGroupName": group, "logStreamName": stream, "lines": lines}

    def _find_task(self, cluster_ref: str | None, ref: str) -> Task:
        cluster = get_cluster(self.store, cluster_ref, self.backend.region) if cluster_ref else None
        task_id = short_name(ref)
        for task in self.store.list("task"):
            if task.task_id == task_id and (cluster is None or task.cluster_arn == cluster.cluster_arn):
                return task
        raise InvalidParameterException("The referenced task was not found.")

    async def _read_logs(self, task: Task, name: str, group: str | None, stream: str | None) -> tuple[str, str]:
        agent = self.backend.agent
        ci = self.store.get("container_instance", task.container_instance_arn) if task.container_instance_arn else None
        if ci is not None and ci.status != INACTIVE:
            try:
                present = {t.task_id for t in await agent.runtime.list_tasks(ci.ec2_instance_id)}
                if task.task_id in present:
                    return "runtime", await agent.runtime.task_logs(ci.ec2_instance_id, task.task_id, name)
            except RuntimeFailure:
                pass  # the instance is gone: only what was kept is left
        kept = agent.logs.read(group, stream) if group and stream else None
        if kept is not None:
            return "logStore", kept
        if ci is not None:
            try:  # a runtime may keep a removed container's output itself
                return "runtime", await agent.runtime.task_logs(ci.ec2_instance_id, task.task_id, name)
            except RuntimeFailure:
                pass
        return "none", ""

    # --- time ----------------------------------------------------------------------------

    async def get_time(self, request: web.Request) -> dict[str, Any]:
        return self._time()

    async def put_time(self, request: web.Request) -> dict[str, Any]:
        data = _json_body(await _read_body(request, MAX_TIME_BODY_BYTES))
        scale = data.get("timeScale")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise InvalidParameterException("timeScale must be a number: AWS seconds per wall second.")
        setter = getattr(self.backend.clock, "set_time_scale", None)
        if setter is None:
            raise UnsupportedFeatureException("This emulator's clock cannot change its time scale.")
        try:
            setter(scale)
        except ValueError as exc:
            raise InvalidParameterException(str(exc)) from None
        log.info("time scale set to %g", self.backend.clock.time_scale)
        return self._time()

    def _time(self) -> dict[str, Any]:
        clock = self.backend.clock
        return {"timeScale": clock.time_scale, "awsTime": clock.now(), "wallTime": clock.wall()}

    # --- stack ---------------------------------------------------------------------------

    async def post_stack(self, request: web.Request) -> dict[str, Any]:
        """Apply a stack file's text: refused whole (nothing changed) when it does not load."""
        body = await _read_body(request, MAX_STACK_BODY_BYTES)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameterException("The stack file must be UTF-8 text.") from None
        try:  # `source` names the file in messages, as `ecsemu validate` does: `my-stack.yaml:14: ...`
            stack = parse_stack(text, request.query.get("source") or "stack")
            if self.apply_stack is None:
                raise UnsupportedFeatureException("This emulator process does not apply stack files at run time.")
            result = self.apply_stack(stack)
            if inspect.isawaitable(result):
                result = await result
        except StackError as exc:
            raise InvalidParameterException(str(exc)) from None
        answer: dict[str, Any] = {"stack": _stack_summary(stack)}
        if result is not None:
            answer["result"] = result
        return answer

    # --- summary -------------------------------------------------------------------------

    async def summary(self, request: web.Request) -> dict[str, Any]:
        """What `ecsemu status` shows: each cluster's instances (with their tasks and free resources) and
        services (with their deployments)."""
        wanted = request.query.get("cluster") or None
        clusters = ([get_cluster(self.store, wanted, self.backend.region)] if wanted else
                    [c for c in self.store.list("cluster") if c.status == "ACTIVE"])
        tasks = [t for t in self.store.list("task") if t.last_status != STOPPED]
        instances = [ci for ci in self.store.list("container_instance") if ci.status != INACTIVE]
        services = [s for s in self.store.list("service") if s.status != SERVICE_INACTIVE]
        clock = self.backend.clock
        return {
            "timeScale": clock.time_scale, "awsTime": clock.now(),
            "clusters": [{
                "clusterName": c.cluster_name, "clusterArn": c.cluster_arn, "status": c.status,
                "containerInstances": [_instance(ci, [t for t in tasks if t.container_instance_arn ==
                                                      ci.container_instance_arn])
                                       for ci in instances if ci.container_instance_arn.split("/")[1] ==
                                       c.cluster_name],
                "services": [_service(s) for s in services if s.cluster_arn == c.cluster_arn],
            } for c in clusters],
        }


    # --- scaling -------------------------------------------------------------------------

    async def scaling(self, request: web.Request) -> dict[str, Any]:
        """Both scaling dimensions of one cluster (the first ACTIVE one when none is named): Auto Scaling groups,
        capacity providers with CapacityProviderReservation, scalable targets with their policies and alarms,
        the newest scaling activities of both services, the services' counts and metrics, the instances and the
        newest journal events."""
        q = request.query
        events = _int(q, "events", DEFAULT_SCALING_EVENTS, minimum=0, maximum=MAX_SCALING_EVENTS)
        cluster = self._scaling_cluster(q.get("cluster") or None)
        return _ScalingView(self.backend, cluster).render(events)

    def _scaling_cluster(self, wanted: str | None) -> Cluster:
        if wanted:
            return get_cluster(self.store, wanted, self.backend.region)
        active = [c for c in self.store.list("cluster") if c.status == "ACTIVE"]
        if not active:
            raise ClusterNotFoundException("The emulator has no cluster yet: `ecsemu start` creates its stack's.")
        return active[0]


class _ScalingView:
    """GET /scaling's answer for one cluster, read from the store (and the scaling loops' memory) at one instant.

    Each part is in its own service's case: Auto Scaling groups and both services' scaling activities in
    PascalCase (EC2 Auto Scaling, Application Auto Scaling), capacity providers, services and instances in
    ECS's camelCase.
    """

    def __init__(self, backend: Backend, cluster: Cluster) -> None:
        self.backend, self.store, self.cluster = backend, backend.store, cluster
        self.name = cluster.cluster_name
        extras = backend.extras or {}
        self.capacity_scaler = extras.get("capacity_scaler")
        self.autoscaler = extras.get("autoscaler")
        self.metrics = extras.get("metrics")
        store = self.store
        self.all_instances = [ci for ci in store.list("container_instance") if ci.status != INACTIVE]
        self.instances = [ci for ci in self.all_instances if _instance_cluster(ci) == self.name]
        self.tasks = [t for t in store.list("task")
                      if t.last_status != STOPPED and t.cluster_arn == cluster.cluster_arn]
        self.services = [s for s in store.list("service")
                         if s.cluster_arn == cluster.cluster_arn and s.status != SERVICE_INACTIVE]
        self.providers: list[CapacityProvider] = [cp for cp in (store.get("capacity_provider", n)
                                                                for n in cluster.capacity_providers) if cp is not None]
        self.groups = self._groups()

    def render(self, events: int) -> dict[str, Any]:
        clock = self.backend.clock
        targets = self._scalable_targets()
        return {
            "clusterName": self.name, "clusterArn": self.cluster.cluster_arn,
            "awsTime": clock.now(), "timeScale": clock.time_scale,
            "autoScalingGroups": [self._group(g) for g in self.groups],
            "capacityProviders": [self._provider(cp) for cp in self.providers],
            "scalableTargets": targets,
            "scalingActivities": self._activities(),
            "services": [self._service(s) for s in self.services],
            "containerInstances": [self._instance(ci) for ci in self.instances],
            "events": [_event(e) for e in self._newest_events(events)],
        }

    # --- Auto Scaling groups --------------------------------------------------------------

    def _groups(self) -> list[AutoScalingGroup]:
        """The cluster's groups: its capacity providers' and those with instances in it (every group when the
        emulator has this one cluster only)."""
        wanted = {_group_name(cp) for cp in self.providers}
        wanted |= {tag(ci, GROUP_TAG) for ci in self.instances if tag(ci, GROUP_TAG)}
        only = [c for c in self.store.list("cluster") if c.status == "ACTIVE"] == [self.cluster]
        return [g for g in self.store.list("auto_scaling_group") if only or g.auto_scaling_group_name in wanted]

    def _members(self, group: AutoScalingGroup) -> list:
        return [ci for ci in self.all_instances if tag(ci, GROUP_TAG) == group.auto_scaling_group_name]

    def _group(self, group: AutoScalingGroup) -> dict[str, Any]:
        members = self._members(group)
        desired = group.desired_capacity if group.desired_capacity is not None else group.min_size
        provider = next((cp.name for cp in self.providers if _group_name(cp) == group.auto_scaling_group_name), None)
        return {
            "AutoScalingGroupName": group.auto_scaling_group_name, "AutoScalingGroupARN": group.auto_scaling_group_arn,
            "MinSize": group.min_size, "MaxSize": group.max_size, "DesiredCapacity": desired,
            "InstanceType": group.launch_template.instance_type,
            "AvailabilityZones": list(group.availability_zones),
            "NewInstancesProtectedFromScaleIn": group.new_instances_protected_from_scale_in,
            # ACTIVE container instances tagged with the group; the rest of desired is still launching.
            "InServiceInstances": sum(1 for ci in members if ci.status == INSTANCE_ACTIVE),
            "LaunchingInstances": max(0, desired - len(members)),
            "ProtectedInstances": sum(1 for ci in members if tag(ci, PROTECTED_TAG) == "true"),
            "CapacityProviderName": provider,
            "Instances": [{
                "InstanceId": ci.ec2_instance_id, "InstanceType": ci.instance_type,
                "AvailabilityZone": ci.availability_zone, "LifecycleState": "InService", "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": tag(ci, PROTECTED_TAG) == "true",
                "ContainerInstanceArn": ci.container_instance_arn, "ContainerInstanceStatus": ci.status,
            } for ci in members],
        }

    # --- capacity providers ---------------------------------------------------------------

    def _provider(self, cp: CapacityProvider) -> dict[str, Any]:
        asp = cp.auto_scaling_group_provider
        ms = asp.managed_scaling
        group_name = _group_name(cp)
        group = self.store.get("auto_scaling_group", group_name)
        scaler = self.capacity_scaler
        reservation = scaler.reservation(self.name, cp.name) if scaler is not None else None
        state = getattr(scaler, "states", {}).get((self.name, cp.name)) if scaler is not None else None
        alarms = []
        if group is not None:
            made = managed_scaling_alarms(cp, self.name, group_name)
            for alarm, current in ((made.high, getattr(state, "high_state", None)),
                                   (made.low, getattr(state, "low_state", None))):
                alarms.append({"alarmName": alarm.alarm_name, "comparisonOperator": alarm.comparison_operator,
                               "threshold": alarm.threshold, "evaluationPeriods": alarm.evaluation_periods,
                               "stateValue": current or INSUFFICIENT_DATA})
        return {
            "name": cp.name, "capacityProviderArn": cp.capacity_provider_arn, "status": cp.status,
            "autoScalingGroupName": group_name, "autoScalingGroupArn": asp.auto_scaling_group_arn,
            "managedScaling": {"status": ms.status, "targetCapacity": ms.target_capacity,
                               "minimumScalingStepSize": ms.minimum_scaling_step_size,
                               "maximumScalingStepSize": ms.maximum_scaling_step_size,
                               "instanceWarmupPeriod": ms.instance_warmup_period},
            "managedTerminationProtection": asp.managed_termination_protection,
            "managedDraining": asp.managed_draining,
            "capacityProviderReservation": None if reservation is None else {
                "value": reservation.value, "m": reservation.m, "n": reservation.n, "step": reservation.step,
                "excluded": reservation.excluded, "targetCapacity": ms.target_capacity,
                "definition": RESERVATION_DEFINITION},
            "managedScalingAlarms": alarms,
            "taskSlotGauge": {"definition": SLOT_GAUGE_DEFINITION,
                              "services": self._slot_gauges(cp, group)},
        }

    def _slot_gauges(self, cp: CapacityProvider, group: AutoScalingGroup | None) -> list[dict[str, Any]]:
        """The article's gauge for each service that uses the provider (or runs tasks on its group)."""
        members = [ci for ci in self._members(group) if ci.status == INSTANCE_ACTIVE] if group is not None else []
        on_group = {ci.container_instance_arn for ci in members}
        gauges = []
        for svc in self.services:
            mine = [t for t in self.tasks if t.group == svc.task_group]
            uses = any(item.capacity_provider == cp.name for item in svc.capacity_provider_strategy)
            if not uses and not any(t.container_instance_arn in on_group for t in mine):
                continue
            running = sum(1 for t in mine if t.last_status == RUNNING and t.container_instance_arn in on_group)
            slots = _task_slots(self.store.get("task_definition", svc.task_definition), members)
            gauges.append({"serviceName": svc.service_name, "runningTasks": running, "taskSlots": slots,
                           "percent": slot_utilization(running, slots) if slots else None})
        return gauges

    # --- service auto scaling -------------------------------------------------------------

    def _scalable_targets(self) -> list[dict[str, Any]]:
        prefix = f"service/{self.name}/"
        targets = [t for t in _all_pages(lambda token: scaling_state.describe_scalable_targets(
            self.store, ECS_NAMESPACE, next_token=token)) if t.resource_id.startswith(prefix)]
        desired = {s.service_name: s.desired_count for s in self.services}
        answer = []
        for target in targets:
            policies = _all_pages(lambda token, rid=target.resource_id: scaling_state.describe_scaling_policies(
                self.store, ECS_NAMESPACE, resource_id=rid, next_token=token))
            answer.append({
                "ResourceId": target.resource_id, "ServiceName": target.service_name,
                "ScalableDimension": target.scalable_dimension,
                "MinCapacity": target.min_capacity, "MaxCapacity": target.max_capacity,
                "DesiredCount": desired.get(target.service_name),
                "SuspendedState": to_pascal_api(target.suspended_state),
                "ScalingPolicies": [self._policy(p) for p in policies],
            })
        return answer

    def _policy(self, policy) -> dict[str, Any]:
        state = getattr(self.autoscaler, "states", {}).get(policy.resource_id) if self.autoscaler else None
        alarm_states = getattr(state, "alarm_states", {}) or {}
        tracking, step = policy.target_tracking_scaling_policy_configuration, policy.step_scaling_policy_configuration
        shapes = {}
        metric = None
        if tracking is not None:
            try:
                made = managed_alarms(policy)
                shapes = {a.alarm_name: a for a in (made.high, made.low) if a is not None}
                spec = metric_spec(tracking, policy.resource_id)
                metric = {"Namespace": spec.namespace, "MetricName": spec.metric_name, "Statistic": spec.statistic,
                          "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions]}
                predefined = tracking.predefined_metric_specification
                if predefined is not None:
                    metric["PredefinedMetricType"] = predefined.predefined_metric_type
            except ValueError:
                pass
        alarms = []
        for alarm in policy.alarms:
            shape = shapes.get(alarm.alarm_name)
            alarms.append({"AlarmName": alarm.alarm_name, "AlarmARN": alarm.alarm_arn,
                           "ComparisonOperator": shape.comparison_operator if shape else None,
                           "Threshold": shape.threshold if shape else None,
                           "EvaluationPeriods": shape.evaluation_periods if shape else None,
                           "StateValue": alarm_states.get(alarm.alarm_name, INSUFFICIENT_DATA)})
        last = next((d for d in getattr(state, "last_decisions", None) or []
                     if d is not None and d.policy_name == policy.policy_name), None)
        return {
            "PolicyName": policy.policy_name, "PolicyARN": policy.policy_arn, "PolicyType": policy.policy_type,
            "TargetValue": tracking.target_value if tracking else None,
            "Metric": metric,
            "ScaleOutCooldown": tracking.scale_out_cooldown if tracking else None,
            "ScaleInCooldown": tracking.scale_in_cooldown if tracking else None,
            "DisableScaleIn": tracking.disable_scale_in if tracking else None,
            "Cooldown": step.cooldown if step else None,
            "Alarms": alarms,
            "LastEvaluation": None if last is None else {"Capacity": last.capacity, "Reason": last.reason},
        }

    # --- scaling activities ---------------------------------------------------------------

    def _activities(self) -> list[dict[str, Any]]:
        """The newest SCALING_ACTIVITIES of both services, newest first."""
        prefix = f"service/{self.name}/"
        tasks_side: list[dict[str, Any]] = []
        token = None
        while len(tasks_side) < SCALING_ACTIVITIES:
            page, token = scaling_state.describe_scaling_activities(self.store, ECS_NAMESPACE, next_token=token)
            tasks_side += [{"Source": APPLICATION_AUTO_SCALING, **a.to_api()} for a in page
                           if a.resource_id.startswith(prefix)]
            if token is None:
                break
        instances_side = []
        for group in self.groups:
            instances_side += _group_activities(self.store, group)
        instances_side.sort(key=lambda a: -a["StartTime"])
        merged = sorted(tasks_side[:SCALING_ACTIVITIES] + instances_side, key=lambda a: -a["StartTime"])
        return merged[:SCALING_ACTIVITIES]

    # --- services and instances -----------------------------------------------------------

    def _service(self, svc: Service) -> dict[str, Any]:
        mine = [t for t in self.tasks if t.group == svc.task_group]
        running = sum(1 for t in mine if t.last_status == RUNNING)
        return {
            "serviceName": svc.service_name, "serviceArn": svc.service_arn, "status": svc.status,
            "taskDefinition": short_name(svc.task_definition), "desiredCount": svc.desired_count,
            "runningCount": running, "pendingCount": len(mine) - running,   # PROVISIONING counts as pending
            "provisioningCount": sum(1 for t in mine if t.last_status == PROVISIONING),
            "metrics": {name: self._latest(name, svc.service_name) for name in SERVICE_METRICS},
        }

    def _latest(self, metric: str, service: str) -> dict[str, Any] | None:
        """The newest datapoint of a service metric, when the process keeps metrics and has one."""
        latest = getattr(self.metrics, "latest", None)
        if latest is None:
            return None
        try:
            sample = latest(SERVICE_METRICS_NAMESPACE, metric, {"ClusterName": self.name, "ServiceName": service})
            value, timestamp = float(sample.value), float(sample.timestamp)
        except Exception:  # no datapoint yet (None), or a store that can't answer: nothing to show
            return None
        if not (math.isfinite(value) and math.isfinite(timestamp)):
            return None
        return {"value": value, "timestamp": timestamp}

    def _instance(self, ci) -> dict[str, Any]:
        data = _instance(ci, [t for t in self.tasks if t.container_instance_arn == ci.container_instance_arn])
        data["autoScalingGroupName"] = tag(ci, GROUP_TAG)
        data["protectedFromScaleIn"] = tag(ci, PROTECTED_TAG) == "true"
        return data

    # --- journal --------------------------------------------------------------------------

    def _newest_events(self, count: int) -> list[Event]:
        """The newest `count` service events and scaling activities of this cluster's services and groups,
        newest first, looked for in ever larger windows back from the journal's end (bounded)."""
        if count <= 0:
            return []
        service_prefix = self.cluster.cluster_arn.replace(":cluster/", ":service/", 1) + "/"
        groups = {g.auto_scaling_group_name for g in self.groups} | {
            g.auto_scaling_group_arn for g in self.groups if g.auto_scaling_group_arn}
        end = self.store.last_seq
        found: list[Event] = []
        window = EVENT_SCAN_WINDOW
        while True:
            since = max(0, end - window, self.store.last_seq - EVENT_SCAN_LIMIT)
            batch = [e for e in self.store.events(since, (SERVICE_EVENT, SCALING_ACTIVITY))
                     if e.seq <= end and (e.resource.startswith(service_prefix) or e.resource in groups)]
            found = batch + found
            if len(found) >= count or since <= max(0, self.store.last_seq - EVENT_SCAN_LIMIT):
                break
            end, window = since, window * 4
        return list(reversed(found[-count:]))


def _instance_cluster(ci) -> str:
    """The cluster name in `arn:...:container-instance/<cluster>/<id>`."""
    parts = ci.container_instance_arn.split("/")
    return parts[1] if len(parts) > 2 else ""


def _group_name(cp: CapacityProvider) -> str:
    ref = cp.auto_scaling_group_provider.auto_scaling_group_arn or ""
    return ref.rsplit("autoScalingGroupName/", 1)[-1]


def _all_pages(call: Callable[[str | None], tuple[list[Any], str | None]]) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page, token = call(token)
        items += page
        if token is None:
            return items


def _task_slots(td, instances: list) -> int | None:
    """How many tasks of the definition's size fit on these instances when each is empty; None if unknown."""
    if td is None:
        return None
    needs = TaskNeeds.of(td)
    static_ports = bool(needs.ports or needs.ports_udp)
    if needs.cpu <= 0 and needs.memory <= 0 and not static_ports:
        return None
    slots = 0
    for ci in instances:
        fits = [ci.registered_resources.cpu // needs.cpu if needs.cpu > 0 else math.inf,
                ci.registered_resources.memory // needs.memory if needs.memory > 0 else math.inf,
                1 if static_ports else math.inf]
        slots += int(min(fits))
    return slots


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _group_activities(store: StateStore, group: AutoScalingGroup) -> list[dict[str, Any]]:
    """The group's SCALING_ACTIVITY journal events as EC2 Auto Scaling's activities, newest first.

    A launch is two entries (started in an AZ, then InService with its instance id): they become one
    activity, InProgress until the second comes. A change of desired capacity by the capacity provider's
    policy is an activity of its own, and its Cause leads the Cause of the launches or terminations it
    brought, as in AWS ("At ... a monitor alarm ... changing the desired capacity from 2 to 4. At ... an
    instance was started in response to a difference between desired and actual capacity, ...").
    """
    name, arn = group.auto_scaling_group_name, group.auto_scaling_group_arn
    events = store.events(0, SCALING_ACTIVITY, arn or name)
    if arn and arn != name:
        events = sorted(events + store.events(0, SCALING_ACTIVITY, name), key=lambda e: e.seq)
    activities: list[dict[str, Any]] = []
    launching: dict[str, list[dict[str, Any]]] = {}   # AZ -> launches started there, oldest first
    change: dict[str, Any] | None = None              # the last desired-capacity change and what it still brings
    for e in events:
        d = e.detail or {}
        activity = {"Source": AUTO_SCALING, "ActivityId": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                          f"ecsemu/asg-activity/{e.seq}")),
                    "AutoScalingGroupName": name, "Description": e.message, "Cause": "",
                    "StartTime": e.aws_time, "EndTime": e.aws_time, "StatusCode": "Successful", "Details": e.message}
        if "from" in d and "to" in d:
            before, after = int(d["from"]), int(d["to"])
            activity["Description"] = f"Changing the desired capacity from {before} to {after}."
            activity["Cause"] = d.get("cause") or f"At {_utc(e.aws_time)} the desired capacity was changed from " \
                                                  f"{before} to {after}."
            change = {"cause": activity["Cause"], "from": before, "to": after, "left": abs(after - before),
                      "out": after > before}
        elif "availabilityZone" in d and "ec2InstanceId" not in d:   # a launch starts
            activity.update(StatusCode="InProgress", EndTime=None,
                            Cause=_instance_cause(change, True, e.aws_time))
            launching.setdefault(d["availabilityZone"], []).append(activity)
        elif "ec2InstanceId" in d:                                    # ... and is InService
            started = launching.get(d.get("availabilityZone", ""), [])
            if started:
                activity = started.pop(0)
                activities.remove(activity)
            else:
                activity["Cause"] = _instance_cause(change, True, e.aws_time)
            activity.update(Description=f"Launching a new EC2 instance: {d['ec2InstanceId']}",
                            StatusCode="Successful", EndTime=e.aws_time, Details=e.message)
        else:                                                         # a termination
            activity["Cause"] = _instance_cause(change, False, e.aws_time)
        activities.append(activity)
    activities.reverse()  # newest first, also among activities of the same instant
    activities.sort(key=lambda a: -a["StartTime"])
    return activities


def _instance_cause(change: dict[str, Any] | None, launch: bool, at: float) -> str:
    what = ("an instance was started" if launch else "an instance was taken out of service")
    text = f"At {_utc(at)} {what} in response to a difference between desired and actual capacity"
    if change is not None and change["left"] > 0 and change["out"] == launch:
        change["left"] -= 1
        verb = "increasing" if launch else "shrinking"
        return f"{change['cause']} {text}, {verb} the capacity from {change['from']} to {change['to']}."
    return text + "."


# --- rendering -------------------------------------------------------------------------


def _event(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "kind": e.kind, "resource": e.resource, "awsTime": e.aws_time, "wallTime": e.wall_time,
            "message": e.message, "detail": e.detail}


def _instance(ci, tasks: list[Task]) -> dict[str, Any]:
    registered, remaining = ci.registered_resources, ci.remaining_resources
    return {
        "containerInstanceArn": ci.container_instance_arn, "ec2InstanceId": ci.ec2_instance_id,
        "instanceType": ci.instance_type, "availabilityZone": ci.availability_zone, "status": ci.status,
        "runningTasksCount": ci.running_tasks_count, "pendingTasksCount": ci.pending_tasks_count,
        "registeredResources": {"cpu": registered.cpu, "memory": registered.memory},
        "remainingResources": {"cpu": remaining.cpu, "memory": remaining.memory},
        "tasks": [_task(t) for t in tasks],
    }


def _task(t: Task) -> dict[str, Any]:
    return {"taskArn": t.task_arn, "taskId": t.task_id, "taskDefinition": short_name(t.task_definition_arn),
            "group": t.group, "lastStatus": t.last_status, "desiredStatus": t.desired_status,
            "healthStatus": t.health_status}


def _service(s: Service) -> dict[str, Any]:
    return {
        "serviceName": s.service_name, "serviceArn": s.service_arn, "status": s.status,
        "taskDefinition": short_name(s.task_definition), "desiredCount": s.desired_count,
        "runningCount": s.running_count, "pendingCount": s.pending_count,
        "deployments": [{"id": d.id, "status": d.status, "taskDefinition": short_name(d.task_definition),
                         "desiredCount": d.desired_count, "runningCount": d.running_count,
                         "pendingCount": d.pending_count, "failedTasks": d.failed_tasks,
                         "rolloutState": d.rollout_state, "rolloutStateReason": d.rollout_state_reason}
                        for d in s.deployments],
    }


def _stack_summary(stack: Stack) -> dict[str, Any]:
    return {"clusterName": stack.cluster.cluster_name,
            "autoScalingGroups": [g.auto_scaling_group_name for g in stack.auto_scaling_groups],
            "taskDefinitions": [td.family for td in stack.task_definitions],
            "services": [s.service_name for s in stack.services],
            "targetGroups": [tg.target_group_name for tg in stack.target_groups],
            "loadBalancers": [lb.load_balancer_name for lb in stack.load_balancers]}


# --- reading requests ----------------------------------------------------------------------


async def _read_body(request: web.Request, limit: int) -> bytes:
    too_large = RequestEntityTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise too_large
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    return bytes(body)


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationException(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SerializationException("The request body must be a JSON object.")
    return data


def _required(query, name: str) -> str:
    value = query.get(name)
    if not value:
        raise InvalidParameterException(f"The query parameter '{name}' is required.")
    return value


def _int(query, name: str, default: int | None, *, minimum: int, maximum: int | None = None) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameterException(f"{name} must be a whole number, not '{text}'.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidParameterException(f"{name} must be {bound}, not {value}.")
    return value


def _float(query, name: str, default: float, *, minimum: float) -> float:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum:
        raise InvalidParameterException(f"{name} must be a number of seconds of at least {minimum:g}, not '{text}'.")
    return value

