"""Task output kept per log group and stream (awslogs naming), so it outlives the containers."""

from __future__ import annotations

from pathlib import Path


class LogStore:
    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._memory: dict[tuple[str, str], str] = {}

    def _path(self, group: str, stream: str) -> Path:
        assert self.root is not None
        safe = [part for part in (group.strip("/") + "/" + stream).split("/") if part not in ("", ".", "..")]
        return self.root.joinpath(*safe)

    def write(self, group: str, stream: str, text: str) -> None:
        if self.root is None:
            self._memory[(group, stream)] = text
            return
        path = self._path(group, stream)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def read(self, group: str, stream: str) -> str | None:
        if self.root is None:
            return self._memory.get((group, stream))
        path = self._path(group, stream)
        return path.read_text() if path.exists() else None

    def streams(self, group: str) -> list[str]:
        if self.root is None:
            return sorted(s for g, s in self._memory if g == group)
        base = self._path(group, "")
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) if base.exists() else []
