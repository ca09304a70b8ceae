"""Reading task containers' counters from cgroup files: v1 and v2 layouts, built as plain folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.runtime.cgroups import V1, V2, CgroupLayout, find_container_cgroup, read_container

INSTANCE = "a" * 64
TASK_CONTAINER = "b" * 64


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_machine(root: Path, *, pid_cgroup: str = f"/docker/{INSTANCE}") -> tuple[CgroupLayout, Path]:
    proc = root / "proc"
    write(proc / "self" / "mountinfo",
          f"31 23 0:28 / {root}/cg rw,relatime - tmpfs tmpfs rw,mode=755\n"
          f"32 31 0:29 / {root}/cg/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
          f"35 31 0:32 / {root}/cg/memory rw,relatime - cgroup cgroup rw,memory\n"
          f"41 31 0:38 / {root}/cg/unified rw,relatime - cgroup2 cgroup2 rw\n")
    write(proc / "4242" / "cgroup", f"4:memory:{pid_cgroup}\n2:cpu,cpuacct:{pid_cgroup}\n0::{pid_cgroup}\n")
    cpu = root / "cg" / "cpu,cpuacct" / "docker" / INSTANCE / "ecs" / TASK_CONTAINER
    memory = root / "cg" / "memory" / "docker" / INSTANCE / "ecs" / TASK_CONTAINER
    write(cpu / "cpuacct.usage", "2500000000\n")
    write(memory / "memory.usage_in_bytes", "10485760\n")
    write(memory / "memory.stat", "cache 2097152\nrss 8388608\ntotal_cache 2097152\ntotal_inactive_file 1048576\n")
    return CgroupLayout.detect(proc), proc


def v2_machine(root: Path, *, pid_cgroup: str, task_dir: str) -> tuple[CgroupLayout, Path]:
    proc = root / "proc"
    write(proc / "self" / "mountinfo", f"30 23 0:27 / {root}/cg rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    write(proc / "4242" / "cgroup", f"0::{pid_cgroup}\n")
    task = root / "cg" / task_dir.strip("/")
    write(task / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    write(task / "memory.current", "10485760\n")
    write(task / "memory.stat", "anon 8388608\nfile 2097152\nactive_file 1048576\ninactive_file 524288\n")
    return CgroupLayout.detect(proc), proc


def test_cgroup_v1_cpuacct_usage_and_memory_less_page_cache(tmp_path):
    layout, proc = v1_machine(tmp_path)
    instance = layout.instance_cgroups(4242, INSTANCE, proc)

    assert instance.version == V1
    cgroup = find_container_cgroup(instance, TASK_CONTAINER)
    cpu_seconds, memory = read_container(cgroup)
    assert cpu_seconds == pytest.approx(2.5)
    assert memory == 10485760 - 2097152        # the ECS agent subtracts `cache` on cgroup v1


@pytest.mark.parametrize("pid_cgroup, task_dir", [
    (f"/docker/{INSTANCE}/init", f"/docker/{INSTANCE}/ecs/{TASK_CONTAINER}"),        # --cgroup-parent=.../ecs
    (f"/docker/{INSTANCE}/init", f"/docker/{INSTANCE}/docker/{TASK_CONTAINER}"),     # private cgroup namespace
    (f"/system.slice/docker-{INSTANCE}.scope/init",
     f"/system.slice/docker-{INSTANCE}.scope/docker/{TASK_CONTAINER}"),              # systemd driver outside
])
def test_cgroup_v2_usage_usec_and_memory_less_inactive_file(tmp_path, pid_cgroup, task_dir):
    layout, proc = v2_machine(tmp_path, pid_cgroup=pid_cgroup, task_dir=task_dir)
    instance = layout.instance_cgroups(4242, INSTANCE, proc)

    assert instance.version == V2
    cpu_seconds, memory = read_container(find_container_cgroup(instance, TASK_CONTAINER))
    assert cpu_seconds == pytest.approx(1.5)
    assert memory == 10485760 - 524288


def test_a_pid_from_another_namespace_falls_back_to_dockers_layout(tmp_path):
    layout, proc = v1_machine(tmp_path, pid_cgroup="/user.slice/some-other-process")

    instance = layout.instance_cgroups(4242, INSTANCE, proc)

    assert instance is not None
    assert instance.cpu == tmp_path / "cg" / "cpu,cpuacct" / "docker" / INSTANCE


def test_a_container_under_a_systemd_scope_is_found_by_search(tmp_path):
    layout, proc = v2_machine(tmp_path, pid_cgroup=f"/docker/{INSTANCE}",
                              task_dir=f"/docker/{INSTANCE}/nested/docker-{TASK_CONTAINER}.scope")
    instance = layout.instance_cgroups(4242, INSTANCE, proc)

    assert read_container(find_container_cgroup(instance, TASK_CONTAINER))[0] == pytest.approx(1.5)


def test_a_container_that_is_gone_is_not_found_and_reads_fail(tmp_path):
    layout, proc = v1_machine(tmp_path)
    instance = layout.instance_cgroups(4242, INSTANCE, proc)
    cgroup = find_container_cgroup(instance, TASK_CONTAINER)

    assert find_container_cgroup(instance, "c" * 64) is None
    for path in (cgroup.cpu_file, cgroup.memory_file, cgroup.memory_stat_file):
        Path(path).unlink()
    with pytest.raises(OSError):
        read_container(cgroup)


def test_no_cgroup_mounts_means_no_instance_cgroups(tmp_path):
    write(tmp_path / "proc" / "self" / "mountinfo", "")
    layout = CgroupLayout.detect(tmp_path / "proc")

    assert layout.version is None
    assert layout.instance_cgroups(4242, INSTANCE, tmp_path / "proc") is None
