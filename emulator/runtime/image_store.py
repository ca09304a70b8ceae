"""Getting images into instances without a registry: our ECR.

A task's image is built (or pulled) on the host's daemon. When a task needs
it on an instance that doesn't have it yet, the image is saved once to a
tar file (cached by image id) and loaded into that instance's daemon, as
ECS pulls from ECR on first use; later tasks on the instance reuse it.
An image the host doesn't have stops the task with ECS's
`CannotPullContainerError`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import docker
import docker.errors

from .base import CannotPullContainerError


class ImageStore:
    def __init__(self, host: docker.DockerClient, cache_dir: Path) -> None:
        self.host = host
        self.cache_dir = cache_dir
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def ensure(self, inner: docker.DockerClient, instance_key: str, ref: str,
               while_loading: Callable[[], AbstractContextManager] = contextlib.nullcontext) -> None:
        """Make `ref` present in the instance's daemon (blocking; call from a worker thread).

        `while_loading` wraps the load itself (the runtime lifts the instance's CPU
        quota meanwhile: unpacking layers is the host's work, as an EC2 pull is not
        charged to the instance's vCPU share scaled down for a laptop).
        """
        with self._lock(instance_key, ref):
            try:
                inner.images.get(ref)
                return
            except docker.errors.ImageNotFound:
                pass
            tar = self._tar_for(ref)
            with while_loading(), open(tar, "rb") as data:
                inner.images.load(data)

    def _tar_for(self, ref: str) -> Path:
        try:
            image = self.host.images.get(ref)
        except docker.errors.ImageNotFound:
            raise CannotPullContainerError(ref, f"{ref}: not found") from None
        except docker.errors.APIError as exc:
            raise CannotPullContainerError(ref, str(exc.explanation or exc)) from None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        key = image.id.split(":", 1)[-1][:32]
        safe_ref = ref.replace("/", "_").replace(":", "_")
        tar = self.cache_dir / f"{safe_ref}-{key}.tar"
        if not tar.exists():
            partial = tar.with_suffix(f".partial-{os.getpid()}-{threading.get_ident()}")
            with open(partial, "wb") as out:
                for chunk in self.host.api.get_image(ref):  # keeps the tag, so the loaded image is named
                    out.write(chunk)
            partial.replace(tar)
        return tar

    def _lock(self, instance_key: str, ref: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((instance_key, ref), threading.Lock())

    def forget_instance(self, instance_key: str) -> None:
        with self._guard:
            for key in [k for k in self._locks if k[0] == instance_key]:
                del self._locks[key]
