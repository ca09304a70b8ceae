"""Task containers' CPU and memory counters, read straight from the host's cgroup files.

A task container runs in its instance's inner daemon, in a cgroup nested
under the instance container's own (PLATFORM notes: cgroup v1 puts it at
`<controller mount>/docker/<instance id>/ecs/<container id>`; cgroup v2 at
`.../ecs/<id>` or, with a private cgroup namespace, `.../docker/<id>`).
Reading a few small files there costs microseconds, where Docker's stats
API costs a second per container; so the metrics layer samples this way.

What is read, as the ECS agent counts it:
- CPU: cgroup v1 `cpuacct.usage` (nanoseconds), v2 `cpu.stat` `usage_usec`;
- memory: v1 `memory.usage_in_bytes` less `cache` from `memory.stat` (the
  ECS agent's rule on cgroup v1: it subtracts the page cache, where
  `docker stats` subtracts `total_inactive_file`); v2 `memory.current` less
  `inactive_file` (the agent's and Docker's rule there).

Everything here is synchronous file I/O: call it from a worker thread.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

V1, V2 = 1, 2
# Where a cgroup-v1 memory.stat says how much of the usage is page cache.
_V1_CACHE, _V2_INACTIVE_FILE = b"cache", b"inactive_file"
MAX_SEARCH_DEPTH = 3   # instance cgroup -> ecs|docker -> <container id> (one level to spare)


@dataclass(frozen=True)
class _Mount:
    point: str      # where the hierarchy is mounted here
    root: str       # which cgroup of the hierarchy the mount shows (mountinfo's 4th field)


@dataclass(frozen=True)
class InstanceCgroups:
    """The instance container's cgroup directories for the controllers sampled."""

    version: int
    cpu: Path       # v1: the cpuacct hierarchy's directory; v2: the one directory
    memory: Path


@dataclass(frozen=True)
class ContainerCgroup:
    """The files one container's counters are read from."""

    version: int
    cpu_file: str
    memory_file: str
    memory_stat_file: str


class CgroupLayout:
    """Where this machine mounts its cgroup hierarchies (read once from /proc/self/mountinfo)."""

    def __init__(self, v1: dict[str, _Mount], v2: _Mount | None) -> None:
        self.v1 = v1          # controller name -> its hierarchy's mount
        self.v2 = v2

    @classmethod
    def detect(cls, proc: Path = Path("/proc")) -> CgroupLayout:
        v1: dict[str, _Mount] = {}
        v2 = None
        try:
            lines = (proc / "self" / "mountinfo").read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            left, sep, right = line.partition(" - ")
            if not sep:
                continue
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            mount = _Mount(_unescape(fields[4]), _unescape(fields[3]))
            if tail[0] == "cgroup2":
                v2 = v2 or mount
            elif tail[0] == "cgroup":
                for option in tail[2].split(","):
                    v1.setdefault(option, mount)
        return cls(v1, v2)

    @property
    def version(self) -> int | None:
        if "cpuacct" in self.v1 and "memory" in self.v1:
            return V1
        return V2 if self.v2 is not None else None

    def instance_cgroups(self, pid: int, container_id: str, proc: Path = Path("/proc")) -> InstanceCgroups | None:
        """The cgroup directories of the instance container whose init process is `pid` (host view).

        /proc/<pid>/cgroup names them; where that is unreadable (the emulator
        itself in another PID namespace), Docker's cgroupfs and systemd
        layouts are tried by the container id.
        """
        version = self.version
        if version is None:
            return None
        paths = _proc_cgroup_paths(proc / str(pid) / "cgroup") if pid > 0 else {}
        if version == V1:
            cpu = self._v1_dir("cpuacct", paths.get("cpuacct"), container_id)
            memory = self._v1_dir("memory", paths.get("memory"), container_id)
        else:
            cpu = memory = self._dir(self.v2, paths.get(""), container_id)
        if cpu is None or memory is None:
            return None
        return InstanceCgroups(version, cpu, memory)

    def _v1_dir(self, controller: str, path: str | None, container_id: str) -> Path | None:
        return self._dir(self.v1.get(controller), path, container_id)

    @staticmethod
    def _dir(mount: _Mount | None, path: str | None, container_id: str) -> Path | None:
        if mount is None:
            return None
        candidates = []
        # A pid from another PID namespace names some other process: trust only a path with the id in it.
        # Cut it after the container's own cgroup: on cgroup v2 the instance moves its processes into
        # an `init` leaf below it (entrypoint.sh), while its task containers are that leaf's siblings.
        if path is not None and container_id in path:
            parts = path.split("/")
            path = "/".join(parts[:next(i for i, part in enumerate(parts) if container_id in part) + 1])
            relative = path
            if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
                relative = path[len(mount.root):]
            candidates.append(Path(mount.point + relative))
        candidates += [Path(mount.point, "docker", container_id),
                       Path(mount.point, "system.slice", f"docker-{container_id}.scope")]
        return next((c for c in candidates if c.is_dir()), None)


def find_container_cgroup(instance: InstanceCgroups, container_id: str) -> ContainerCgroup | None:
    """The files of a task container under its instance's cgroup, or None (not started, or gone)."""
    cpu_dir = _find_dir(instance.cpu, container_id)
    if cpu_dir is None:
        return None
    if instance.version == V1:
        memory_dir = _find_dir(instance.memory, container_id, hint=cpu_dir.relative_to(instance.cpu))
        if memory_dir is None:
            return None
        return ContainerCgroup(V1, str(cpu_dir / "cpuacct.usage"), str(memory_dir / "memory.usage_in_bytes"),
                               str(memory_dir / "memory.stat"))
    return ContainerCgroup(V2, str(cpu_dir / "cpu.stat"), str(cpu_dir / "memory.current"),
                           str(cpu_dir / "memory.stat"))


def read_container(cgroup: ContainerCgroup) -> tuple[float, int]:
    """(CPU seconds since the container started, memory bytes as ECS counts them).

    Raises OSError (FileNotFoundError, usually) once the container has exited.
    """
    if cgroup.version == V1:
        cpu_seconds = int(_read(cgroup.cpu_file)) / 1e9
        usage = int(_read(cgroup.memory_file))
        cache = _stat_value(_read(cgroup.memory_stat_file), _V1_CACHE)
    else:
        cpu_seconds = _stat_value(_read(cgroup.cpu_file), b"usage_usec") / 1e6
        usage = int(_read(cgroup.memory_file))
        cache = _stat_value(_read(cgroup.memory_stat_file), _V2_INACTIVE_FILE)
    return cpu_seconds, usage - cache if cache < usage else usage


# --- internals -----------------------------------------------------------------


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _stat_value(data: bytes, key: str | bytes) -> int:
    """The value of `key` in a flat-keyed cgroup file ("key value" lines); 0 when absent."""
    key = key.encode() if isinstance(key, str) else key
    start = 0
    while True:
        at = data.find(key + b" ", start)
        if at < 0:
            return 0
        if at == 0 or data[at - 1:at] == b"\n":
            end = data.find(b"\n", at)
            return int(data[at + len(key) + 1:end if end >= 0 else None])
        start = at + 1


def _proc_cgroup_paths(path: Path) -> dict[str, str]:
    """controller -> cgroup path, from /proc/<pid>/cgroup ("" is the v2 hierarchy)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller.removeprefix("name=")] = parts[2]
    return paths


def _find_dir(base: Path, container_id: str, hint: Path | None = None) -> Path | None:
    """The directory under `base` named for the container (cgroupfs `<id>` or systemd `docker-<id>.scope`)."""
    if hint is not None and (base / hint).is_dir():
        return base / hint
    for guess in (base / "ecs" / container_id, base / "docker" / container_id):
        if guess.is_dir():
            return guess
    names = (container_id, f"docker-{container_id}.scope")
    queue = deque([(base, 0)])
    while queue:
        directory, depth = queue.popleft()
        try:
            entries = [e for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for entry in entries:
            if entry.name in names:
                return Path(entry.path)
        if depth + 1 < MAX_SEARCH_DEPTH:
            queue.extend((Path(e.path), depth + 1) for e in entries)
    return None


def _unescape(field: str) -> str:
    """mountinfo escapes spaces and the like as octal (\\040)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape")
