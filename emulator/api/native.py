"""The emulator's native API under `/ecsemu/v1/`: what AWS has no call for (events, target health, logs,
time scale, stack files, a one-call summary), as JSON over the same aiohttp endpoint.

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
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..control.registry import get_cluster
from ..control.task_specs import container_spec
from ..errors import AwsError, InvalidParameterException, ServerException
from ..model.arn import short_name
from ..model.container_instance import INACTIVE
from ..model.events import Event
from ..model.service import SERVICE_INACTIVE, Service
from ..model.state import CommitNotice
from ..model.task import STOPPED, Task
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

