"""The EC2 instance-type catalogue: AWS's published vCPU and memory per type.

An ECS container instance registers 1,024 CPU units per vCPU and the type's
memory *less* what the OS and the ECS agent keep for themselves. That gap is
the seed article's pitfall: a t3.medium has 4 GiB, registers about 3.5 GiB,
and so holds three tasks of 1 GiB, not four.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU_UNITS_PER_VCPU = 1024

# Memory the OS and agent keep on a 4 GiB instance (the seed: agent ~200 MB,
# OS ~300 MB). Smaller types keep proportionally less, so a t3.small still
# takes the seed's 1.5 GiB single task.
DEFAULT_RESERVED_MEMORY_MIB = 512


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    architecture: str = "x86_64"

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def cpu_units(self) -> int:
        return self.vcpus * CPU_UNITS_PER_VCPU

    def registered_memory_mib(self, reserved_memory_mib: int | None = None) -> int:
        """Memory the agent registers: the type's memory less the OS/agent share.

        `reserved_memory_mib=None` applies the default rule: 512 MiB, or an
        eighth of the memory on types smaller than 4 GiB.
        """
        if reserved_memory_mib is None:
            reserved_memory_mib = min(DEFAULT_RESERVED_MEMORY_MIB, self.memory_mib // 8)
        return max(0, self.memory_mib - reserved_memory_mib)


def _family(family: str, sizes: dict[str, tuple[int, float]]) -> dict[str, InstanceType]:
    return {
        f"{family}.{size}": InstanceType(f"{family}.{size}", vcpus, int(gib * 1024))
        for size, (vcpus, gib) in sizes.items()
    }


# (vCPUs, GiB) as published on the EC2 instance-type pages.
_T3 = {
    "nano": (2, 0.5), "micro": (2, 1), "small": (2, 2), "medium": (2, 4),
    "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32),
}
_T2 = {
    "nano": (1, 0.5), "micro": (1, 1), "small": (1, 2), "medium": (2, 4),
    "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32),
}
_M5 = {
    "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64),
    "8xlarge": (32, 128), "12xlarge": (48, 192), "16xlarge": (64, 256), "24xlarge": (96, 384),
}
_C5 = {
    "large": (2, 4), "xlarge": (4, 8), "2xlarge": (8, 16), "4xlarge": (16, 32),
    "9xlarge": (36, 72), "12xlarge": (48, 96), "18xlarge": (72, 144), "24xlarge": (96, 192),
}
_R5 = {
    "large": (2, 16), "xlarge": (4, 32), "2xlarge": (8, 64), "4xlarge": (16, 128),
    "8xlarge": (32, 256), "12xlarge": (48, 384), "16xlarge": (64, 512), "24xlarge": (96, 768),
}

INSTANCE_TYPES: dict[str, InstanceType] = {
    **_family("t2", _T2),
    **_family("t3", _T3),
    **_family("t3a", _T3),
    **_family("m5", _M5),
    **_family("m6i", _M5),
    **_family("c5", _C5),
    **_family("c6i", {k: v for k, v in _C5.items() if k not in ("9xlarge", "18xlarge")}),
    **_family("r5", _R5),
    **_family("r6i", _R5),
}


def get_instance_type(name: str) -> InstanceType:
    """The catalogue entry for `name`; a ValueError in AWS's words otherwise."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        raise ValueError(
            f"The instance type '{name}' is not supported. "
            f"Supported families: {', '.join(sorted({t.family for t in INSTANCE_TYPES.values()}))}."
        ) from None
