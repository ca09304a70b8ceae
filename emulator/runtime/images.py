"""The images the cluster needs, made with no registry: bases, the instance image, the sample app.

`ensure_images()` makes sure three things exist in the host's Docker:

1. Bases. The upstream `python:3.11-slim` (for the app) and
   `debian:bookworm-slim` (for the instance), if they are present or can be
   pulled; where Docker Hub is unreachable (CI, these machines) ONE local base
   `ecsemu/base:bookworm` is bootstrapped from Debian's packages
   (`debootstrap --variant=minbase`, the mirror read from the host's apt
   sources) and imported.
2. The instance image `ecsemu/instance:latest` (our "ECS-optimized AMI"):
   Debian's docker.io with an entrypoint that starts the inner dockerd
   (`emulator/images/instance/`).
3. The sample app `web-app:v1`, built from `sample_app/` with the base as its
   `BASE_IMAGE` build argument.

Every image built here carries `io.ecsemu.role=image`, `io.ecsemu.image=<kind>`
and `io.ecsemu.source-hash=<hash of its build inputs>`; an image whose hash is
already there is not rebuilt, so a second run takes seconds. Only images with
those labels are ever removed (the previous build of a tag, once nothing else
names it).

`python -m emulator.runtime.images [--force] [--app-version v2 --tag web-app:v2]`
does the same from the command line, one progress line per step.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from .base import LABEL_PREFIX, LABEL_ROLE

Progress = Callable[[str], object]

# Labels. The role is "image" (base.py's vocabulary) and the kind says which:
# containers inherit their image's labels, so an image labelled role=instance
# would make every container started from it look like an emulator instance.
ROLE_IMAGE = "image"
LABEL_IMAGE_KIND = f"{LABEL_PREFIX}.image"          # "base" | "instance" | "app"
LABEL_SOURCE_HASH = f"{LABEL_PREFIX}.source-hash"
LABEL_APP_VERSION = f"{LABEL_PREFIX}.app-version"

UPSTREAM_APP_BASE = "python:3.11-slim"
UPSTREAM_INSTANCE_BASE = "debian:bookworm-slim"
LOCAL_BASE = "ecsemu/base:bookworm"
INSTANCE_IMAGE = "ecsemu/instance:latest"
APP_IMAGE = "web-app:v1"

SUITE = "bookworm"
# python3-pip: the app's Dockerfile runs `pip install --no-index -r requirements.txt`
# as the upstream python image would (nothing to install, no index contacted).
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates")
# Bump when the way the base is made changes (forces a rebuild everywhere).
BASE_RECIPE_VERSION = "1"

PULL_TIMEOUT_S = float(os.environ.get("ECSEMU_PULL_TIMEOUT_S", "60"))
MIRROR_ENV = "ECSEMU_DEBIAN_MIRROR"
BUILD_DIR_ENV = "ECSEMU_BUILD_DIR"
LOCK_ENV = "ECSEMU_IMAGES_LOCK"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"

PACKAGE_DIR = Path(__file__).resolve().parent.parent
INSTANCE_CONTEXT = PACKAGE_DIR / "images" / "instance"
SAMPLE_APP_DIR = PACKAGE_DIR.parent / "sample_app"

# Left out of build contexts and source hashes: byte-code and caches that
# running the unit tests leaves next to the sources.
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis"}
_IGNORED_SUFFIXES = (".pyc", ".pyo")

# Files slim Debian images leave out; deleted from the bootstrapped tree and
# kept out of later `apt-get install`s in images built on it.
_DPKG_SLIM = """\
# ecs-emulator's local base: like debian:*-slim, no docs, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""
_APT_SLIM = """\
# ecs-emulator's local base: keep images small, as debian:*-slim does.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::GzipIndexes "true";
"""


class ImageBuildError(RuntimeError):
    """An image could not be made; the message says what to do."""


@dataclass
class BuiltImages:
    """What `ensure_images` settled on (names usable as FROM / image references)."""

    app_base: str                      # python:3.11-slim or ecsemu/base:bookworm
    instance_base: str                 # debian:bookworm-slim or ecsemu/base:bookworm
    instance: str = INSTANCE_IMAGE
    app: str = APP_IMAGE
    local_base: bool = False           # True when the Debian-bootstrapped base is in use
    built: list[str] = field(default_factory=list)     # images (re)built by this call
    seconds: dict[str, float] = field(default_factory=dict)  # step -> duration


# ------------------------------------------------------------------ helpers


def _line(progress: Progress, what: str, seconds: float | None = None) -> None:
    progress(f"[images] {what}" + ("" if seconds is None else f" ... {seconds:.1f} s"))


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    # Builds stream for minutes; the SDK's default 60 s read timeout is too short.
    return client if client is not None else docker.from_env(timeout=900)


def _get(client: docker.DockerClient, name: str):
    try:
        return client.images.get(name)
    except ImageNotFound:
        return None


def _is_ours(image) -> bool:
    return (image.labels or {}).get(LABEL_ROLE) == ROLE_IMAGE


def _up_to_date(client: docker.DockerClient, name: str, source_hash: str):
    image = _get(client, name)
    if image is not None and _is_ours(image) and image.labels.get(LABEL_SOURCE_HASH) == source_hash:
        return image
    return None


def _labels(kind: str, source_hash: str, **extra: str) -> dict[str, str]:
    return {LABEL_ROLE: ROLE_IMAGE, LABEL_IMAGE_KIND: kind, LABEL_SOURCE_HASH: source_hash, **extra}


def _forget_previous(client: docker.DockerClient, previous, new_id: str) -> None:
    """Remove the image a rebuilt tag used to name, if it is ours and now nameless."""
    if previous is None or previous.id == new_id or not _is_ours(previous):
        return
    try:
        previous.reload()
        if not previous.tags:
            client.images.remove(previous.id, noprune=False)
    except (NotFound, APIError):
        pass  # still used by a container, or already gone: leave it


def _made_here(image) -> bool:
    """An image this module made, not one built FROM it (which inherits its labels).

    Ours are either the imported base (no parent, one layer) or a legacy-builder
    build whose last step is the source-hash LABEL the build API appends.
    """
    attrs = image.attrs
    if not _is_ours(image):
        return False
    if not attrs.get("Parent") and len(attrs.get("RootFS", {}).get("Layers", [])) == 1:
        return (image.labels or {}).get(LABEL_IMAGE_KIND) == "base"
    cmd = (attrs.get("ContainerConfig") or {}).get("Cmd") or []
    return bool(cmd) and str(cmd[-1]).startswith(f"LABEL {LABEL_SOURCE_HASH}=")


def _prune_ours(client: docker.DockerClient) -> None:
    """Remove earlier builds of ours that nothing names any more (untagged, no child image).

    A replaced image cannot go while a container still uses it or (a base)
    while images built on it exist; it is removed by a later run instead.
    Builds hold the lock, so an untagged image of ours is never one in progress.
    """
    try:
        dangling = client.images.list(filters={"dangling": True, "label": f"{LABEL_ROLE}={ROLE_IMAGE}"})
    except APIError:
        return
    for image in dangling:
        if _made_here(image):
            try:
                client.images.remove(image.id, noprune=False)
            except (NotFound, APIError):
                pass  # in use: a later run retries


def _context_files(directory: Path) -> list[Path]:
    files = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part in _IGNORED_PARTS for part in rel.parts) or path.suffix in _IGNORED_SUFFIXES:
            continue
        if path.is_file():
            files.append(path)
    return files


def _hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:16]


def _tree_hash(directory: Path, dockerfile: str | None = None) -> list[str | bytes]:
    parts: list[str | bytes] = []
    for path in _context_files(directory):
        rel = path.relative_to(directory).as_posix()
        data = path.read_bytes()
        if dockerfile is not None and rel == "Dockerfile":
            data = dockerfile.encode()
        parts += [rel, oct(path.stat().st_mode & 0o111), data]
    return parts


def _context_tar(directory: Path, dockerfile: str | None = None) -> io.BytesIO:
    """The build context as a tar: the directory minus caches, optionally another Dockerfile."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in _context_files(directory):
            rel = path.relative_to(directory).as_posix()
            if dockerfile is not None and rel == "Dockerfile":
                continue
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0  # content, not timestamps, decides the layer cache
            with path.open("rb") as f:
                tar.addfile(info, f)
        if dockerfile is not None:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _build(client: docker.DockerClient, *, context: io.BytesIO, tag: str, buildargs: dict[str, str],
           labels: dict[str, str], nocache: bool) -> str:
    """Build with the daemon's (legacy) builder; returns the image id, or raises with the log's tail."""
    log: list[str] = []
    image_id = None
    stream = client.api.build(fileobj=context, custom_context=True, tag=tag, buildargs=buildargs,
                              labels=labels, rm=True, forcerm=True, pull=False, nocache=nocache,
                              decode=True, timeout=None)
    for chunk in stream:
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        if "error" in chunk:
            tail = "".join(log)[-3000:]
            raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}\n{tail}")
    if image_id is None:
        image_id = client.images.get(tag).id
    return image_id


@contextlib.contextmanager
def _build_lock(progress: Progress) -> Iterator[None]:
    """One image build at a time on this machine: two processes building the same
    inputs would both commit an image and leave one of them nameless."""
    path = Path(os.environ.get(LOCK_ENV) or Path(tempfile.gettempdir()) / "ecsemu-images.lock")
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            t0 = time.monotonic()
            fcntl.flock(f, fcntl.LOCK_EX)
            _line(progress, f"waited for another image build ({path})", time.monotonic() - t0)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------ Debian mirror


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in block.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            if ":" in raw:
                key, _, value = raw.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields


def _sources_files(etc_apt: Path) -> tuple[list[Path], list[Path]]:
    d = etc_apt / "sources.list.d"
    deb822 = sorted(d.glob("*.sources")) if d.is_dir() else []
    lists = ([etc_apt / "sources.list"] if (etc_apt / "sources.list").is_file() else [])
    lists += sorted(d.glob("*.list")) if d.is_dir() else []
    return deb822, lists


def debian_stanzas(suite: str = SUITE, etc_apt: Path = Path("/etc/apt")) -> list[dict[str, str]]:
    """The host's enabled deb822 stanzas for `suite` and its -updates/-security companions."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    found = []
    for path in _sources_files(etc_apt)[0]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for st in _deb822_stanzas(text):
            if st.get("enabled", "yes").lower() == "no" or "deb" not in st.get("types", "").split():
                continue
            if set(st.get("suites", "").split()) & wanted and st.get("uris"):
                found.append(st)
    return found


def debian_mirror(suite: str = SUITE, etc_apt: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this host's apt uses for `suite` (never hard-coded).

    $ECSEMU_DEBIAN_MIRROR wins; then the `URIs:` of the deb822 stanza listing
    the suite in /etc/apt/sources.list.d/*.sources; then a `deb URI suite ...`
    line of /etc/apt/sources.list(.d/*.list).
    """
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV].strip()
    for st in debian_stanzas(suite, etc_apt):
        if suite in st.get("suites", "").split():
            return st["uris"].split()[0]
    for path in _sources_files(etc_apt)[1]:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for raw in lines:
            words = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    # A host on another Debian release: its archive mirror serves every suite.
    for uri in _archive_uris(etc_apt):
        return uri
    raise ImageBuildError(
        f"no Debian mirror for {suite!r} found in {etc_apt}/sources.list.d/*.sources (a deb822 stanza "
        f"with 'Suites: {suite}' and 'URIs: ...') nor in {etc_apt}/sources.list; "
        f"set {MIRROR_ENV}=http://<your Debian mirror>/debian, or make Docker Hub reachable "
        f"so {UPSTREAM_APP_BASE} and {UPSTREAM_INSTANCE_BASE} can be pulled")


def _archive_uris(etc_apt: Path) -> Iterator[str]:
    """URIs of the host's Debian archive (.../debian, not -security) in any enabled source."""
    deb822, lists = _sources_files(etc_apt)
    for path in deb822:
        with contextlib.suppress(OSError):
            for st in _deb822_stanzas(path.read_text()):
                if st.get("enabled", "yes").lower() != "no" and "deb" in st.get("types", "").split():
                    yield from (u for u in st.get("uris", "").split() if u.rstrip("/").endswith("/debian"))
    for path in lists:
        with contextlib.suppress(OSError):
            for raw in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[1].rstrip("/").endswith("/debian"):
                    yield words[1]


def _rootfs_sources(suite: str, mirror: str) -> str:
    """deb822 sources for the bootstrapped base: the host's stanzas for the suite, or the mirror alone."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    stanzas = [] if os.environ.get(MIRROR_ENV) else debian_stanzas(suite)
    out = []
    for st in stanzas:
        suites = [s for s in st["suites"].split() if s in {suite, f"{suite}-updates", f"{suite}-security"}]
        out.append(f"Types: deb\nURIs: {st['uris']}\nSuites: {' '.join(suites)}\n"
                   f"Components: {st.get('components', 'main')}\nSigned-By: {keyring}\n")
    if not out:
        out.append(f"Types: deb\nURIs: {mirror}\nSuites: {suite}\nComponents: main\nSigned-By: {keyring}\n")
    return "\n".join(out)


# ------------------------------------------------------------------ step 1: bases


def _try_pull(client: docker.DockerClient, name: str, timeout_s: float) -> tuple[bool, str]:
    """Pull `name` within timeout_s; (ok, why not). A pull that outlives the wait goes on in the daemon."""
    repo, _, tag = name.rpartition(":")
    result: dict[str, object] = {}

    def pull() -> None:
        try:
            client.images.pull(repo, tag=tag)
            result["ok"] = True
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            result["error"] = exc

    t = threading.Thread(target=pull, daemon=True, name=f"pull {name}")
    t.start()
    t.join(timeout_s)
    if result.get("ok"):
        return True, ""
    if "error" in result:
        exc = result["error"]
        msg = getattr(exc, "explanation", None) or str(exc)
        return False, str(msg).splitlines()[0][:160]
    return False, f"no answer within {timeout_s:.0f} s"


def base_source_hash() -> str:
    return _hash("base", BASE_RECIPE_VERSION, SUITE, "minbase", *BASE_PACKAGES, _DPKG_SLIM, _APT_SLIM)


def _unmount_below(root: Path) -> None:
    """Unmount anything debootstrap left mounted inside the tree (an interrupted run leaves /proc, /sys)."""
    prefix = str(root.resolve()) + "/"
    try:
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def _remove_tree(root: Path) -> None:
    _unmount_below(root)
    # --one-file-system: never follow a mount that could not be undone into the host's /proc or /dev.
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False, capture_output=True)


def _slim_rootfs(rootfs: Path, mirror: str) -> None:
    """Make the tree look like a slim Debian image before import."""
    def clear(rel: str, *, dirs: bool = True, keep: str | None = None) -> None:
        d = rootfs / rel
        if not d.is_dir():
            return
        for p in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if p.is_symlink() or p.is_file():
                if p.name != keep:
                    p.unlink()
            elif dirs and p.is_dir() and not any(p.iterdir()):
                p.rmdir()

    # apt and dpkg expect their directories; only their contents go.
    for rel in ("var/cache/apt", "var/lib/apt/lists", "var/log"):
        clear(rel, dirs=False)
    clear("usr/share/doc", keep="copyright")
    for rel in ("usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian"):
        clear(rel)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/ecsemu-slim").write_text(_DPKG_SLIM)
    (rootfs / "etc/apt/apt.conf.d/ecsemu-slim").write_text(_APT_SLIM)
    # Sources in the layout debian:bookworm-slim uses, pointing at this host's mirror.
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(_rootfs_sources(SUITE, mirror))
    # Docker provides these per container; the host's copies do not belong in an image.
    for rel in ("etc/resolv.conf", "etc/hostname"):
        p = rootfs / rel
        if p.is_file() and not p.is_symlink():
            p.write_text("")


def _tar_stream(rootfs: Path) -> Iterator[bytes]:
    proc = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        while chunk := proc.stdout.read(1 << 20):
            yield chunk
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            raise ImageBuildError(f"tar of {rootfs} failed: {err.strip()}")


def build_local_base(client: docker.DockerClient, progress: Progress = print, *,
                     source_hash: str | None = None) -> str:
    """debootstrap Debian (minbase + python3) into a temporary tree and import it as ecsemu/base:bookworm."""
    source_hash = source_hash or base_source_hash()
    if os.geteuid() != 0:
        raise ImageBuildError("building the local base needs root (debootstrap); run as root, "
                              "or make Docker Hub reachable")
    debootstrap = _which("debootstrap")
    if debootstrap is None:
        raise ImageBuildError("debootstrap not found: install debootstrap (apt-get install debootstrap) "
                              "or make Docker Hub reachable")
    mirror = debian_mirror()
    parent = Path(os.environ.get(BUILD_DIR_ENV, "/var/tmp"))
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ecsemu-rootfs-", dir=parent))
    rootfs = work / "rootfs"
    previous = _get(client, LOCAL_BASE)
    try:
        t0 = time.monotonic()
        cmd = [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
               SUITE, str(rootfs), mirror]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log = (work / "rootfs/debootstrap/debootstrap.log")
            detail = log.read_text()[-2000:] if log.is_file() else (proc.stdout + proc.stderr)[-2000:]
            raise ImageBuildError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{detail}")
        _slim_rootfs(rootfs, mirror)
        _line(progress, f"base: debootstrap {SUITE} ({', '.join(BASE_PACKAGES)}) from {mirror}",
              time.monotonic() - t0)

        t0 = time.monotonic()
        repo, _, tag = LOCAL_BASE.rpartition(":")
        labels = _labels("base", source_hash)
        changes = [f"LABEL {k}={v}" for k, v in labels.items()] + [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["bash"]',
        ]
        client.api.import_image_from_stream(_tar_stream(rootfs), repository=repo, tag=tag, changes=changes)
        image = client.images.get(LOCAL_BASE)
        _forget_previous(client, previous, image.id)
        size = image.attrs.get("Size", 0) / 1e6
        _line(progress, f"base: import {LOCAL_BASE} ({size:.0f} MB)", time.monotonic() - t0)
        return image.id
    finally:
        _remove_tree(work)


def _which(name: str) -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin"]:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def _ensure_bases(client: docker.DockerClient, progress: Progress, force: bool,
                  built: list[str], seconds: dict[str, float]) -> tuple[str, str, bool]:
    t0 = time.monotonic()
    have = {name: _get(client, name) is not None for name in (UPSTREAM_APP_BASE, UPSTREAM_INSTANCE_BASE)}
    base_hash = base_source_hash()
    local_ok = not force and _up_to_date(client, LOCAL_BASE, base_hash) is not None
    why: dict[str, str] = {}
    if not all(have.values()) and not local_ok:
        # Pull only what is missing and only when no usable local base exists:
        # on a machine without Docker Hub a second run must not wait for a pull again.
        for name in [n for n, ok in have.items() if not ok]:
            have[name], why[name] = _try_pull(client, name, PULL_TIMEOUT_S)
    app_base = UPSTREAM_APP_BASE if have[UPSTREAM_APP_BASE] else LOCAL_BASE
    instance_base = UPSTREAM_INSTANCE_BASE if have[UPSTREAM_INSTANCE_BASE] else LOCAL_BASE
    need_local = LOCAL_BASE in (app_base, instance_base)
    upstream = [n for n, ok in have.items() if ok]
    missing = [n for n, ok in have.items() if not ok]
    if not missing:
        what = f"bases: upstream {', '.join(upstream)}"
    else:
        reason = ("; ".join(f"{n}: {w}" for n, w in why.items() if w)
                  or f"not present locally; not pulled since {LOCAL_BASE} is up to date")
        what = (f"bases: {', '.join(missing)} not available ({reason}); "
                f"using {LOCAL_BASE}" + (f" and {', '.join(upstream)}" if upstream else ""))
    seconds["bases"] = time.monotonic() - t0
    _line(progress, what, seconds["bases"])

    if need_local:
        if local_ok:
            _line(progress, "base: up to date")
        else:
            t0 = time.monotonic()
            build_local_base(client, progress, source_hash=base_hash)
            built.append(LOCAL_BASE)
            seconds["base"] = time.monotonic() - t0
    return app_base, instance_base, need_local


# ------------------------------------------------------------------ step 2: the instance image


def _apt_mirror_arg(base: str) -> str:
    """The host's mirror, when the base is the upstream image and the host uses another mirror."""
    if base == LOCAL_BASE:
        return ""  # bootstrapped from the host's mirror: its sources already point there
    try:
        mirror = debian_mirror()
    except ImageBuildError:
        return ""
    return "" if mirror.rstrip("/") == DEFAULT_DEBIAN_MIRROR else mirror


def build_instance_image(client: docker.DockerClient | None = None, *, base: str, progress: Progress = print,
                         force: bool = False, tag: str = INSTANCE_IMAGE) -> tuple[str, bool]:
    """Build the instance image FROM `base` unless an up-to-date one exists; (image id, built?)."""
    with _build_lock(progress):
        return _build_instance(_client(client), base, progress, force, tag)


def _build_instance(client: docker.DockerClient, base: str, progress: Progress, force: bool,
                    tag: str) -> tuple[str, bool]:
    base_image = _get(client, base)
    if base_image is None:
        raise ImageBuildError(f"base image {base} is missing")
    apt_mirror = _apt_mirror_arg(base)
    source_hash = _hash("instance", base_image.id, apt_mirror, *_tree_hash(INSTANCE_CONTEXT))
    current = None if force else _up_to_date(client, tag, source_hash)
    if current is not None:
        _line(progress, "instance: up to date")
        return current.id, False
    previous = _get(client, tag)
    t0 = time.monotonic()
    image_id = _build(client, context=_context_tar(INSTANCE_CONTEXT), tag=tag,
                      buildargs={"BASE": base, "APT_MIRROR": apt_mirror},
                      labels=_labels("instance", source_hash), nocache=force)
    _forget_previous(client, previous, image_id)
    _line(progress, f"instance: build {tag} FROM {base} (docker.io, iptables)", time.monotonic() - t0)
    return image_id, True


# ------------------------------------------------------------------ step 3: the sample app


def app_base_image(client: docker.DockerClient | None = None) -> str:
    """The BASE_IMAGE for app builds: the upstream python image when present, else the local base."""
    client = _client(client)
    if _get(client, UPSTREAM_APP_BASE) is not None:
        return UPSTREAM_APP_BASE
    if _get(client, LOCAL_BASE) is not None:
        return LOCAL_BASE
    raise ImageBuildError(f"neither {UPSTREAM_APP_BASE} nor {LOCAL_BASE} exists: run ensure_images() "
                          f"(make images) first")


def build_app_image(tag: str, version: str | None = None, context: Path | str = SAMPLE_APP_DIR, *,
                    client: docker.DockerClient | None = None, base: str | None = None,
                    progress: Progress = print, force: bool = False) -> str:
    """Build the sample app (or another app directory with a Dockerfile) as `tag`; returns the image id.

    `version` bakes `APP_VERSION=<version>` into the image (a line added to the
    end of the Dockerfile), as a person would when building a new version;
    None keeps the Dockerfile's own. Skipped when an image with the same build
    inputs already carries the tag.
    """
    with _build_lock(progress):
        image_id, _ = _build_app(_client(client), tag, version, Path(context), base, progress, force,
                                 f"app {tag}")
    return image_id


def _build_app(client: docker.DockerClient, tag: str, version: str | None, context: Path, base: str | None,
               progress: Progress, force: bool, what: str) -> tuple[str, bool]:
    base = base or app_base_image(client)
    base_image = _get(client, base)
    if base_image is None:
        raise ImageBuildError(f"base image {base} is missing")
    dockerfile = None
    if version is not None:
        if not re.fullmatch(r"[A-Za-z0-9._+-]+", version):
            raise ImageBuildError(f"version {version!r}: use letters, digits and . _ + - only")
        original = (context / "Dockerfile").read_text()
        dockerfile = (original.rstrip("\n")
                      + f"\n# Added by ecs-emulator's build_app_image.\nENV APP_VERSION={version}\n")
    source_hash = _hash("app", base_image.id, *_tree_hash(context, dockerfile))
    current = None if force else _up_to_date(client, tag, source_hash)
    if current is not None:
        _line(progress, f"{what}: up to date")
        return current.id, False
    previous = _get(client, tag)
    t0 = time.monotonic()
    extra = {LABEL_APP_VERSION: version} if version else {}
    image_id = _build(client, context=_context_tar(context, dockerfile), tag=tag,
                      buildargs={"BASE_IMAGE": base}, labels=_labels("app", source_hash, **extra), nocache=force)
    _forget_previous(client, previous, image_id)
    _line(progress, f"{what}: build " + ("" if tag in what else f"{tag} ") + f"from {context.name}/ FROM {base}"
          + (f" (APP_VERSION={version})" if version else ""), time.monotonic() - t0)
    return image_id, True


# ------------------------------------------------------------------ all of it


def ensure_images(client: docker.DockerClient | None = None, progress: Progress = print,
                  force: bool = False) -> BuiltImages:
    """Make sure the bases, the instance image and web-app:v1 exist (built only when their inputs changed)."""
    client = _client(client)
    try:
        client.ping()
    except DockerException as exc:
        raise ImageBuildError(f"Docker is not reachable: {exc}") from exc
    with _build_lock(progress):
        return _ensure_images(client, progress, force)


def _ensure_images(client: docker.DockerClient, progress: Progress, force: bool) -> BuiltImages:
    t_all = time.monotonic()
    built: list[str] = []
    seconds: dict[str, float] = {}
    app_base, instance_base, local = _ensure_bases(client, progress, force, built, seconds)

    t0 = time.monotonic()
    _, did = _build_instance(client, instance_base, progress, force, INSTANCE_IMAGE)
    seconds["instance"] = time.monotonic() - t0
    if did:
        built.append(INSTANCE_IMAGE)

    t0 = time.monotonic()
    _, did = _build_app(client, APP_IMAGE, None, SAMPLE_APP_DIR, app_base, progress, force, "app")
    seconds["app"] = time.monotonic() - t0
    if did:
        built.append(APP_IMAGE)
    _prune_ours(client)
    seconds["total"] = time.monotonic() - t_all
    _line(progress, f"done: {INSTANCE_IMAGE}, {APP_IMAGE} ready"
          + (f" (built {', '.join(built)})" if built else " (nothing to build)"), seconds["total"])
    return BuiltImages(app_base=app_base, instance_base=instance_base, local_base=local,
                       built=built, seconds=seconds)


def copy_image(name: str, source: docker.DockerClient, target: docker.DockerClient) -> float:
    """`docker save NAME | target docker load`, streamed; returns seconds.

    `named=` matters: the SDK's default (`named=False`) saves the image without its tag.
    """
    t0 = time.monotonic()
    data = source.images.get(name).save(chunk_size=1 << 20, named=name)
    target.images.load(data)
    return time.monotonic() - t0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.runtime.images",
        description="Make sure the emulator's images exist (bases, ecsemu/instance, web-app:v1); "
                    "optionally build another version of the sample app.")
    parser.add_argument("--force", action="store_true", help="rebuild even what is up to date")
    parser.add_argument("--app-version", help="also build the sample app with APP_VERSION=this")
    parser.add_argument("--tag", help="tag for --app-version (default web-app:<version>)")
    parser.add_argument("--context", type=Path, default=SAMPLE_APP_DIR,
                        help="app directory for --app-version (default: sample_app/)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.tag and not args.app_version:
        parser.error("--tag needs --app-version")

    def progress(line: str) -> None:
        print(line, flush=True)

    if args.app_version and not re.fullmatch(r"[A-Za-z0-9._+-]+", args.app_version):
        parser.error(f"--app-version {args.app_version!r}: use letters, digits and . _ + - only")
    try:
        client = _client(None)
        ensure_images(client, progress=progress, force=args.force)
        if args.app_version:
            tag = args.tag or f"web-app:{args.app_version}"
            build_app_image(tag, args.app_version, args.context, client=client, progress=progress,
                            force=args.force)
    except (ImageBuildError, DockerException) as exc:
        print(f"[images] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
