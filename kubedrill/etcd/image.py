"""The etcd image: built locally from the pinned release, never pulled.

`ensure_image()` returns the tag of kubedrill/etcd:<ETCD_VERSION>, running
clusters/images/build-etcd.sh when the image is missing. The build prints its own progress; a
file lock keeps two xdist workers from building at once (the second waits, then finds it built).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

import docker
import docker.errors

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "clusters" / "images" / "build-etcd.sh"
VERSIONS_FILE = REPO_ROOT / "clusters" / "versions.env"


def cache_dir() -> Path:
    return Path(os.environ.get("KUBEDRILL_CACHE", str(Path.home() / ".cache" / "kubedrill")))


def pinned_version(name: str = "ETCD_VERSION") -> str:
    """A value from clusters/versions.env, the one pinned-versions file."""
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(f"{name} is not set in {VERSIONS_FILE}")


def image_tag(version: str) -> str:
    return f"kubedrill/etcd:{version}"


def image_present(tag: str) -> bool:
    try:
        docker.from_env().images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_image(version: str | None = None, stream: TextIO | None = None) -> str:
    """Return the local etcd image tag for version, building it first if it is missing.

    stream: where the build's progress goes (default: this process's stderr, unbuffered).
    Raises RuntimeError with the build's exit code and a hint when the build fails.
    """
    version = version or pinned_version()
    tag = image_tag(version)
    if image_present(tag):
        return tag
    lock_path = cache_dir() / "etcd" / f".build-{version}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # bounded by the build itself, which has its own failure modes
        if image_present(tag):
            return tag
        out = stream if stream is not None else sys.stderr
        print(f"[kubedrill] etcd image {tag} not found; building it with {BUILD_SCRIPT} ...", file=out, flush=True)
        rc = subprocess.call(["bash", str(BUILD_SCRIPT), version], stdout=out, stderr=out, timeout=3600)
        if rc != 0 or not image_present(tag):
            raise RuntimeError(
                f"building {tag} failed (exit {rc}); expected the image to exist afterwards. "
                f"Run `{BUILD_SCRIPT} {version}` by hand to see the full log; it needs Go and the Go module proxy."
            )
    return tag
