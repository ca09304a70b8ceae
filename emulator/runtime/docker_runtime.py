"""The Docker runtime: EC2 instances as Docker-in-Docker hosts, tasks as real containers in them.

Each instance is a container of the instance image with its type's CPU and
memory (times the resource scales), its own volume for the inner Docker
data, and a host folder where its inner daemon's socket appears. Task
containers run in that inner daemon, in cgroups nested under the
instance's, so the instance's limits bound its tasks together. Labels on
every container are the truth: listing by label rebuilds the picture after
a restart (`adopt`). Docker's event streams (one per daemon, each read by a
thread) report container starts, exits, OOM kills and health changes
within a second. All docker-py calls run in worker threads.

Usage sampling (`task_usage`) reads each task container's cgroup files on
the host (cgroups.py): the containers come from what this runtime started
and Docker's start events, never from a per-sample API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from .base import (
    LABEL_AZ,
    LABEL_CLUSTER,
    LABEL_CONTAINER,
    LABEL_INSTANCE,
    LABEL_INSTANCE_TYPE,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_TASK,
    LABEL_TASK_ARN,
    CannotStartContainerError,
    ContainerStatus,
    InstanceNotFound,
    InstanceSpec,
    InstanceStatus,
    PortMappingSpec,
    RuntimeEvent,
    RuntimeFailure,
    TaskSpec,
    TaskStatus,
    TaskUsage,
)
from .cgroups import CgroupLayout, ContainerCgroup, InstanceCgroups, find_container_cgroup, read_container
from .docker_args import (LABEL_REAL_CPUS, LABEL_STOP_TIMEOUT, InstanceRecipe, cpu_quota_us, instance_create,
                          instance_name, task_container_kwargs)
from .image_store import ImageStore

log = logging.getLogger(__name__)

INSTANCE_IMAGE = "ecsemu/instance:latest"
READY_TIMEOUT_S = 60
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


class _QueueIterator:
    """Events from a queue; cancelling a wait loses nothing (unlike an async generator, which closes)."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime

    def __aiter__(self) -> _QueueIterator:
        return self

    async def __anext__(self) -> RuntimeEvent:
        self.runtime._bind_loop()
        return await self.runtime._queue.get()


def owner_for(state_dir: Path) -> str:
    """A short, stable owner label for one installation (its state directory)."""
    return hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:10]


@dataclass
class _Instance:
    ec2_instance_id: str
    cluster: str
    instance_type: str
    availability_zone: str
    container_id: str
    socket_dir: Path
    volume: str
    address: str | None
    inner: docker.DockerClient
    cpu_quota: int = -1                          # the instance's CFS quota (its scaled vCPUs)
    oom: set[str] = field(default_factory=set)   # inner container ids the kernel OOM-killed
    unthrottled: int = 0                         # runtime work in progress with the quota lifted
    throttle_lock: threading.Lock = field(default_factory=threading.Lock)
    watcher: threading.Thread | None = None
    closing: bool = False
    usage: _UsageRegistry = field(default_factory=lambda: _UsageRegistry())
    cgroups: InstanceCgroups | None = None       # found on the first sample
    cgroups_looked_up: bool = False

    def status(self, state: str = "running") -> InstanceStatus:
        return InstanceStatus(self.ec2_instance_id, self.cluster, self.instance_type, self.availability_zone,
                              state, self.address, self.container_id)


class _TaskCounters:
    """One task's running containers for sampling, and the CPU its exited containers had used."""

    __slots__ = ("containers", "last_cpu", "retired_cpu")

    def __init__(self) -> None:
        self.containers: dict[str, ContainerCgroup | None] = {}   # container id -> its files (None: not yet found)
        self.last_cpu: dict[str, float] = {}
        self.retired_cpu = 0.0

    def retire(self, container_id: str) -> None:
        """The container exited: its CPU stays in the task's total, so the total never goes back."""
        self.containers.pop(container_id, None)
        self.retired_cpu += self.last_cpu.pop(container_id, 0.0)


class _UsageRegistry:
    """Running task containers of one instance, fed by run_task, start/die events and (after adopt) one listing."""

    def __init__(self, seeded: bool = True) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, _TaskCounters] = {}
        self.task_of: dict[str, str] = {}    # container id -> task id
        self.seeded = seeded

    def started(self, task_id: str, container_id: str) -> None:
        with self.lock:
            counters = self.tasks.get(task_id)
            if counters is None:
                counters = self.tasks[task_id] = _TaskCounters()
            counters.containers.setdefault(container_id, None)
            self.task_of[container_id] = task_id

    def exited(self, container_id: str) -> None:
        with self.lock:
            task_id = self.task_of.pop(container_id, None)
            counters = self.tasks.get(task_id or "")
            if counters is not None:
                counters.retire(container_id)
                if not counters.containers:
                    del self.tasks[task_id]

    def forget_task(self, task_id: str) -> None:
        with self.lock:
            counters = self.tasks.pop(task_id, None)
            for container_id in counters.containers if counters else ():
                self.task_of.pop(container_id, None)


class DockerRuntime:
    def __init__(self, *, state_dir: Path, owner: str | None = None, client: docker.DockerClient | None = None,
                 image: str = INSTANCE_IMAGE, recipe: InstanceRecipe | None = None,
                 run_dir: Path | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.owner = owner or owner_for(self.state_dir)
        self.client = client or docker.from_env(timeout=300)
        self.image = image
        self._recipe = recipe
        # Unix socket paths are limited to ~107 bytes, so sockets live under a short folder.
        self.run_dir = run_dir or Path(f"/tmp/ecsemu-{self.owner}")
        self.images = ImageStore(self.client, self.state_dir / "image-cache")
        self.instances: dict[str, _Instance] = {}
        self._queue: asyncio.Queue[RuntimeEvent] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outer_events = None
        self._closed = False
        self._cgroup_layout: CgroupLayout | None = None

    # --- events --------------------------------------------------------------

    def _post(self, event: RuntimeEvent) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return _QueueIterator(self)

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            threading.Thread(target=self._watch_instances, name="ecsemu-outer-events", daemon=True).start()

    def _watch_instances(self) -> None:
        """Instance containers that die (killed from outside, OOM of the whole host) -> instance events."""
        filters = {"type": "container", "event": ["die"], "label": [f"{LABEL_OWNER}={self.owner}",
                                                                     f"{LABEL_ROLE}=instance"]}
        try:
            self._outer_events = self.client.events(decode=True, filters=filters)
            for ev in self._outer_events:
                ec2_id = ev.get("Actor", {}).get("Attributes", {}).get(LABEL_INSTANCE)
                inst = self.instances.get(ec2_id or "")
                if ec2_id and not (inst and inst.closing):
                    self._post(RuntimeEvent(ec2_id, instance_state="stopped"))
        except Exception:  # the stream ends when the runtime closes
            if not self._closed:
                log.exception("outer Docker event stream ended")

    def _watch_tasks(self, inst: _Instance) -> None:
        filters = {"type": "container", "label": [f"{LABEL_OWNER}={self.owner}"]}
        try:
            for ev in inst.inner.events(decode=True, filters=filters):
                event = self._task_event(inst, ev)
                if event is not None:
                    self._post(event)
        except Exception:
            if not inst.closing and not self._closed:
                log.warning("event stream of instance %s ended", inst.ec2_instance_id)

    def _task_event(self, inst: _Instance, ev: dict) -> RuntimeEvent | None:
        action = ev.get("Action") or ev.get("status") or ""
        attrs = ev.get("Actor", {}).get("Attributes", {})
        task_id, name, cid = attrs.get(LABEL_TASK), attrs.get(LABEL_CONTAINER), ev.get("id", "")
        if not task_id or not name:
            return None
        if action == "oom":
            inst.oom.add(cid)
            return None
        if action == "start":
            inst.usage.started(task_id, cid)
            # Inspect now so the event carries the host ports Docker picked: a task must
            # not be RUNNING without its network bindings (the ALB registers them).
            try:
                status = self._container_status(inst, inst.inner.containers.get(cid))
            except docker.errors.NotFound:
                return None
        elif action == "die":
            inst.usage.exited(cid)
            code = int(attrs.get("exitCode", "0") or 0)
            reason = OOM_REASON if cid in inst.oom else None
            status = ContainerStatus(name, "exited", cid, exit_code=code, reason=reason)
        elif action.startswith("health_status"):
            status = ContainerStatus(name, "running", cid, health=action.split(":", 1)[1].strip())
        else:
            return None
        return RuntimeEvent(inst.ec2_instance_id, task_id, status)

    # --- instances -----------------------------------------------------------

    def recipe(self) -> InstanceRecipe:
        """--privileged where it works (most laptops), the capability recipe where it doesn't."""
        if self._recipe is None:
            probe = self.client.containers.create(self.image, entrypoint=["true"], privileged=True,
                                                  labels={LABEL_OWNER: self.owner, LABEL_ROLE: "probe"})
            try:
                probe.start()
                self._recipe = InstanceRecipe(privileged=True)
            except docker.errors.APIError:  # "unable to apply caps: operation not permitted"
                self._recipe = InstanceRecipe(privileged=False)
            finally:
                probe.remove(force=True)
        return self._recipe

    async def launch_instance(self, spec: InstanceSpec) -> InstanceStatus:
        self._bind_loop()
        if spec.ec2_instance_id in self.instances:
            raise ValueError(f"instance {spec.ec2_instance_id} already exists")
        inst = await asyncio.to_thread(self._launch, spec)
        self.instances[spec.ec2_instance_id] = inst
        self._start_watcher(inst)
        return inst.status()

    def _launch(self, spec: InstanceSpec) -> _Instance:
        name = instance_name(self.owner, spec.ec2_instance_id)
        volume = f"{name}-data"
        socket_dir = self.run_dir / spec.ec2_instance_id
        socket_dir.mkdir(parents=True, exist_ok=True)
        self.client.volumes.create(volume, labels={LABEL_OWNER: self.owner, LABEL_ROLE: "instance-data",
                                                   LABEL_INSTANCE: spec.ec2_instance_id})
        container = None
        try:
            args = instance_create(self.owner, spec, image=self.image, volume=volume,
                                   socket_dir=str(socket_dir), recipe=self.recipe())
            host_config = self.client.api.create_host_config(**args.host_config)
            host_config.update(args.raw_host_config)
            created = self.client.api.create_container(host_config=host_config, **args.create)
            container = self.client.containers.get(created["Id"])
            container.start()
            inner = self._wait_ready(container, socket_dir)
            container.reload()
            address = container.attrs["NetworkSettings"].get("IPAddress") or None
            return _Instance(spec.ec2_instance_id, spec.cluster, spec.instance_type.name, spec.availability_zone,
                             container.id, socket_dir, volume, address, inner,
                             cpu_quota=args.host_config["cpu_quota"])
        except Exception:
            self._remove_instance_resources(container.id if container else name, volume, socket_dir)
            raise

    def _wait_ready(self, container, socket_dir: Path) -> docker.DockerClient:
        """Until the inner daemon answers on its socket (an external process starting: polled)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        sock = socket_dir / "docker.sock"
        while time.monotonic() < deadline:
            if sock.exists():
                inner = docker.DockerClient(base_url=f"unix://{sock}", timeout=300)
                with contextlib.suppress(Exception):
                    if inner.ping():
                        return inner
                inner.close()
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=20).decode(errors="replace")
                raise RuntimeFailure(f"instance container exited while starting its Docker daemon:\n{logs}")
            time.sleep(0.05)
        raise RuntimeFailure(f"the instance's Docker daemon did not answer within {READY_TIMEOUT_S} s")

    def _start_watcher(self, inst: _Instance) -> None:
        inst.watcher = threading.Thread(target=self._watch_tasks, args=(inst,), daemon=True,
                                        name=f"ecsemu-events-{inst.ec2_instance_id}")
        inst.watcher.start()

    async def terminate_instance(self, ec2_instance_id: str, *, stop_timeout_s: float = 30) -> None:
        inst = self._instance(ec2_instance_id)
        inst.closing = True
        await asyncio.to_thread(self._stop_all_tasks, inst, stop_timeout_s)
        self.instances.pop(ec2_instance_id, None)
        await asyncio.to_thread(self._remove_instance_resources, inst.container_id, inst.volume, inst.socket_dir)
        inst.inner.close()
        self.images.forget_instance(ec2_instance_id)
        self._post(RuntimeEvent(ec2_instance_id, instance_state="stopped"))

    def _stop_all_tasks(self, inst: _Instance, stop_timeout_s: float) -> None:
        """SIGTERM every task container, SIGKILL after its own stopTimeout (at most `stop_timeout_s`)."""
        with contextlib.suppress(Exception):
            containers = inst.inner.containers.list(filters={"label": [f"{LABEL_OWNER}={self.owner}"]})
            self._stop_containers(containers, cap_s=stop_timeout_s)

    def _stop_containers(self, containers: list, cap_s: float | None = None) -> None:
        threads = []
        for c in containers:
            timeout = float(c.labels.get(LABEL_STOP_TIMEOUT) or 30)
            threads.append(threading.Thread(target=self._stop_container,
                                            args=(c, min(timeout, cap_s) if cap_s is not None else timeout)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @staticmethod
    def _stop_container(container, timeout: float) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.stop(timeout=int(timeout))

    def _remove_instance_resources(self, container_ref: str, volume: str, socket_dir: Path) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(container_ref).remove(force=True, v=True)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.volumes.get(volume).remove(force=True)
        shutil.rmtree(socket_dir, ignore_errors=True)

    async def list_instances(self, cluster: str | None = None) -> list[InstanceStatus]:
        return await asyncio.to_thread(self._list_instances, cluster)

    def _list_instances(self, cluster: str | None) -> list[InstanceStatus]:
        labels = [f"{LABEL_OWNER}={self.owner}", f"{LABEL_ROLE}=instance"]
        if cluster:
            labels.append(f"{LABEL_CLUSTER}={cluster}")
        result = []
        for c in self.client.containers.list(all=True, filters={"label": labels}):
            lb = c.labels
            state = "running" if c.status == "running" else "stopped"
            address = c.attrs["NetworkSettings"].get("IPAddress") or None
            result.append(InstanceStatus(lb.get(LABEL_INSTANCE, ""), lb.get(LABEL_CLUSTER, ""),
                                         lb.get(LABEL_INSTANCE_TYPE, ""), lb.get(LABEL_AZ, ""), state, address, c.id))
        return result

    async def adopt(self) -> list[InstanceStatus]:
        """After a restart: reconnect to every running instance of this owner (and watch it again)."""
        self._bind_loop()
        found = await self.list_instances()
        for status in found:
            if status.state != "running" or status.ec2_instance_id in self.instances:
                continue
            socket_dir = self.run_dir / status.ec2_instance_id
            container = await asyncio.to_thread(self.client.containers.get, status.runtime_id)
            inner = await asyncio.to_thread(self._wait_ready, container, socket_dir)
            inst = _Instance(status.ec2_instance_id, status.cluster, status.instance_type, status.availability_zone,
                             status.runtime_id or "", socket_dir, f"{container.name}-data", status.address, inner,
                             cpu_quota=cpu_quota_us(float(container.labels[LABEL_REAL_CPUS])))
            self._set_quota(inst, inst.cpu_quota)  # an emulator that died mid-start may have left it lifted
            inst.usage.seeded = False                # its running containers are listed on the first sample
            self.instances[status.ec2_instance_id] = inst
            self._start_watcher(inst)
        return found

    async def adopt_or_list(self) -> list[InstanceStatus]:
        """Every instance of this owner: running ones adopted (so they can be terminated), others listed.

        Stopped instance containers are adopted too, without waiting for a daemon."""
        found = await self.adopt()
        for status in found:
            if status.ec2_instance_id not in self.instances:
                container = await asyncio.to_thread(self.client.containers.get, status.runtime_id)
                self.instances[status.ec2_instance_id] = _Instance(
                    status.ec2_instance_id, status.cluster, status.instance_type, status.availability_zone,
                    status.runtime_id or "", self.run_dir / status.ec2_instance_id, f"{container.name}-data",
                    status.address, docker.DockerClient(base_url="unix:///nonexistent", timeout=1))
        return found

    def _instance(self, ec2_instance_id: str) -> _Instance:
        try:
            return self.instances[ec2_instance_id]
        except KeyError:
            raise InstanceNotFound(f"no running instance {ec2_instance_id}") from None

    # --- tasks ---------------------------------------------------------------

    async def run_task(self, spec: TaskSpec) -> TaskStatus:
        inst = self._instance(spec.ec2_instance_id)
        return await asyncio.to_thread(self._run_task, inst, spec)

    def _run_task(self, inst: _Instance, spec: TaskSpec) -> TaskStatus:
        for image in dict.fromkeys(c.image for c in spec.containers):
            self.images.ensure(inst.inner, inst.ec2_instance_id, image,
                               while_loading=lambda: self._unthrottled(inst))
        created = []
        try:
            for container in spec.containers:
                created.append(inst.inner.containers.create(**task_container_kwargs(self.owner, spec, container)))
            with self._unthrottled(inst):
                for c in created:
                    c.start()
                    inst.usage.started(spec.task_id, c.id)
            for c in created:
                c.reload()  # the host ports Docker picked
        except docker.errors.APIError as exc:
            for c in created:
                with contextlib.suppress(docker.errors.APIError):
                    c.remove(force=True)
            raise CannotStartContainerError(f"CannotStartContainerError: {exc.explanation or exc}") from None
        return TaskStatus(spec.task_id, spec.task_arn, inst.ec2_instance_id,
                          [self._container_status(inst, c) for c in created])

    @contextlib.contextmanager
    def _unthrottled(self, inst: _Instance):
        """Lift the instance's CPU quota while the container runtime works (an image load,
        a container start), then put it back: that work is the host's, not the app's, and
        the scaled-down share would make it several times slower than on a real instance.
        Overlapping uses nest: the last one out restores the quota."""
        with inst.throttle_lock:
            inst.unthrottled += 1
            if inst.unthrottled == 1:
                self._set_quota(inst, -1)
        try:
            yield
        finally:
            with inst.throttle_lock:
                inst.unthrottled -= 1
                if inst.unthrottled == 0:
                    self._set_quota(inst, inst.cpu_quota)

    def _set_quota(self, inst: _Instance, quota: int) -> None:
        with contextlib.suppress(docker.errors.APIError):
            self.client.api.update_container(inst.container_id, cpu_quota=quota)

    def _task_containers(self, inst: _Instance, task_id: str | None = None) -> list:
        labels = [f"{LABEL_OWNER}={self.owner}"] + ([f"{LABEL_TASK}={task_id}"] if task_id else [])
        for _ in range(3):
            try:
                return inst.inner.containers.list(all=True, filters={"label": labels})
            except docker.errors.NotFound:  # removed between the listing and its inspection: list again
                continue
        return inst.inner.containers.list(all=True, filters={"label": labels})

    def _collect(self, inst: _Instance, containers: list) -> list[TaskStatus]:
        tasks: dict[str, TaskStatus] = {}
        for c in containers:
            lb = c.labels
            task = tasks.setdefault(lb[LABEL_TASK], TaskStatus(lb[LABEL_TASK], lb.get(LABEL_TASK_ARN, ""),
                                                               inst.ec2_instance_id))
            task.containers.append(self._container_status(inst, c))
        return list(tasks.values())

    @staticmethod
    def _container_status(inst: _Instance, c) -> ContainerStatus:
        state = c.attrs.get("State", {})
        status = {"running": "running", "exited": "exited", "dead": "exited"}.get(state.get("Status"), "created")
        health = (state.get("Health") or {}).get("Status")
        oom = state.get("OOMKilled") or c.id in inst.oom
        bindings = []
        for key, hosts in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
            port, _, proto = key.partition("/")
            for h in hosts or []:
                if h.get("HostIp") in ("0.0.0.0", "", None):
                    bindings.append(PortMappingSpec(int(port), int(h["HostPort"]), proto or "tcp"))
        return ContainerStatus(
            name=c.labels.get(LABEL_CONTAINER, c.name), state=status, runtime_id=c.id,
            exit_code=state.get("ExitCode") if status == "exited" else None, health=health,
            reason=OOM_REASON if (status == "exited" and oom) else (state.get("Error") or None),
            network_bindings=tuple(bindings))

    async def stop_task(self, ec2_instance_id: str, task_id: str) -> None:
        inst = self._instance(ec2_instance_id)
        await asyncio.to_thread(self._stop_task, inst, task_id)

    def _stop_task(self, inst: _Instance, task_id: str) -> None:
        self._stop_containers(self._task_containers(inst, task_id))

    async def remove_task(self, ec2_instance_id: str, task_id: str) -> None:
        inst = self._instance(ec2_instance_id)
        await asyncio.to_thread(self._remove_task, inst, task_id)

    def _remove_task(self, inst: _Instance, task_id: str) -> None:
        inst.usage.forget_task(task_id)
        for c in self._task_containers(inst, task_id):
            with contextlib.suppress(docker.errors.NotFound):
                kept = self._kept_log(inst.ec2_instance_id, task_id, c.labels.get(LABEL_CONTAINER, c.name))
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_bytes(c.logs(stdout=True, stderr=True))  # logs outlive the container
                c.remove(force=True)

    def _kept_log(self, ec2_instance_id: str, task_id: str, container: str) -> Path:
        return self.state_dir / "task-logs" / ec2_instance_id / task_id / f"{container}.log"

    async def list_tasks(self, ec2_instance_id: str) -> list[TaskStatus]:
        inst = self._instance(ec2_instance_id)
        return await asyncio.to_thread(lambda: self._collect(inst, self._task_containers(inst)))

    async def task_usage(self, ec2_instance_id: str) -> list[TaskUsage]:
        """Every running task's counters from its cgroup files: one worker-thread call per instance."""
        inst = self._instance(ec2_instance_id)
        return await asyncio.to_thread(self._sample_usage, inst)

    def _sample_usage(self, inst: _Instance) -> list[TaskUsage]:
        registry = inst.usage
        if not inst.cgroups_looked_up:
            inst.cgroups = self._find_instance_cgroups(inst)
            inst.cgroups_looked_up = True
        if inst.cgroups is None:
            return []
        if not registry.seeded:
            self._seed_usage(inst)
        with registry.lock:
            tasks = [(task_id, counters, list(counters.containers.items()))
                     for task_id, counters in registry.tasks.items()]
        result = []
        for task_id, counters, containers in tasks:
            cpu_total, memory, alive = 0.0, 0, False
            for container_id, cgroup in containers:
                if cgroup is None:
                    cgroup = find_container_cgroup(inst.cgroups, container_id)
                try:
                    if cgroup is None:
                        raise FileNotFoundError(container_id)
                    cpu, mem = read_container(cgroup)
                except (OSError, ValueError):   # exited (its cgroup is gone)
                    registry.exited(container_id)
                    continue
                with registry.lock:
                    if container_id not in counters.containers:   # a die event retired it meanwhile
                        continue
                    counters.containers[container_id] = cgroup
                    counters.last_cpu[container_id] = cpu
                cpu_total, memory, alive = cpu_total + cpu, memory + mem, True
            if alive:
                result.append(TaskUsage(task_id, counters.retired_cpu + cpu_total, memory, time.monotonic()))
        return result

    def _find_instance_cgroups(self, inst: _Instance) -> InstanceCgroups | None:
        if self._cgroup_layout is None:
            self._cgroup_layout = CgroupLayout.detect()
        try:
            pid = int(self.client.api.inspect_container(inst.container_id)["State"]["Pid"] or 0)
        except docker.errors.APIError:
            pid = 0
        found = self._cgroup_layout.instance_cgroups(pid, inst.container_id)
        if found is None:
            log.warning("no cgroup found for instance %s (container %s): its tasks report no usage",
                        inst.ec2_instance_id, inst.container_id[:12])
        return found

    def _seed_usage(self, inst: _Instance) -> None:
        """After adopt: the task containers already running (later ones arrive by run_task and events)."""
        running = inst.inner.containers.list(filters={"label": [f"{LABEL_OWNER}={self.owner}"], "status": "running"})
        for c in running:
            task_id = c.labels.get(LABEL_TASK)
            if task_id:
                inst.usage.started(task_id, c.id)
        inst.usage.seeded = True

    async def task_logs(self, ec2_instance_id: str, task_id: str, container: str) -> str:
        inst = self.instances.get(ec2_instance_id)
        if inst is None:
            kept = self._kept_log(ec2_instance_id, task_id, container)
            if kept.exists():
                return kept.read_text(errors="replace")
            raise InstanceNotFound(f"no running instance {ec2_instance_id}")

        def read() -> str:
            for c in self._task_containers(inst, task_id):
                if c.labels.get(LABEL_CONTAINER) == container:
                    return c.logs(stdout=True, stderr=True).decode(errors="replace")
            kept = self._kept_log(ec2_instance_id, task_id, container)
            return kept.read_text(errors="replace") if kept.exists() else ""
        return await asyncio.to_thread(read)

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.run_dir.rmdir()  # only when no instance's socket folder is left in it
        for inst in self.instances.values():
            inst.closing = True
            inst.inner.close()
        if self._outer_events is not None:
            with contextlib.suppress(Exception):
                self._outer_events.close()
