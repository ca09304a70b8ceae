"""The pure core stays pure: model, placement and scaling never import I/O or async libraries.

Decisions are pure functions (DESIGN.md); this reads every import of the
pure packages (AST, not a regex) and fails on a forbidden module or on a
reach into a layer above them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"
PURE_PACKAGES = ("model", "placement", "scaling", "scheduling")
FORBIDDEN = {"asyncio", "docker", "aiohttp", "prometheus_client", "threading", "subprocess", "socket"}
# Project modules the pure core may use: itself and the error classes.
ALLOWED_INTERNAL = ("emulator.model", "emulator.placement", "emulator.scaling", "emulator.scheduling",
                    "emulator.errors")


def pure_modules() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES if (PACKAGE / pkg).is_dir() for p in (PACKAGE / pkg).rglob("*.py"))


def absolute_imports(path: Path) -> list[str]:
    module = "emulator." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: str) -> list[str]:
    """Every module `source` imports, relative imports resolved against `package`."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
    return names


def test_there_are_pure_modules_to_check():
    assert len(pure_modules()) >= 10


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_module_imports(path: Path):
    for name in absolute_imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}: the pure core must not"
        if top == "emulator":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name}, a layer above the pure core"


def test_checker_catches_a_forbidden_import():
    names = imports_in("import asyncio\nfrom ..runtime import docker\nfrom .query import x\n", "emulator.placement")
    assert names == ["asyncio", "emulator.runtime", "emulator.placement.query"]
