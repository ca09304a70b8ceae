"""Running the emulator in the background: start it once, find it again, stop it, tear everything down.

`ecsemu start` runs `ecsemu serve` as a detached process whose output goes
to `<state dir>/ecsemu.log` and whose pid is in `<state dir>/ecsemu.pid`;
a second start finds it running and says so. `ecsemu down` stops it and
removes every instance (and so every task), volume and file it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_WAIT_S = 60


def pid_file(state_dir: Path) -> Path:
    return state_dir / "ecsemu.pid"


def log_file(state_dir: Path) -> Path:
    return state_dir / "ecsemu.log"


def running_pid(state_dir: Path) -> int | None:
    """The pid of this state dir's emulator if it is alive."""
    try:
        pid = int(pid_file(state_dir).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def start_background(serve_args: list[str], state_dir: Path) -> int:
    """Start `ecsemu serve ARGS` detached; returns its pid (the caller waits for readiness)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_file(state_dir), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve", *serve_args],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True)
    pid_file(state_dir).write_text(str(proc.pid))
    return proc.pid


def stop_background(state_dir: Path) -> bool:
    """SIGTERM the emulator and wait for it to exit; False if none was running."""
    pid = running_pid(state_dir)
    if pid is None:
        pid_file(state_dir).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file(state_dir).unlink(missing_ok=True)
    return True


async def remove_everything(state_dir: Path) -> int:
    """Terminate every instance this state dir owns (tasks go with them), then delete its files."""
    from .runtime.docker_runtime import DockerRuntime
    runtime = DockerRuntime(state_dir=state_dir)
    removed = 0
    try:
        for status in await runtime.adopt_or_list():
            with contextlib.suppress(Exception):
                await runtime.terminate_instance(status.ec2_instance_id, stop_timeout_s=5)
                removed += 1
    finally:
        await runtime.close()
    for name in ("state.db", "state.db-wal", "state.db-shm", "logs", "task-logs", "image-cache"):
        path = state_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


def remove_everything_sync(state_dir: Path) -> int:
    return asyncio.run(remove_everything(state_dir))
