"""Where things are: the repo's recipes, the build cache, the pinned versions."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
IMAGES_DIR = CLUSTERS / "images"
KIND_CONFIGS = CLUSTERS / "kind"
ENGINE_DIR = CLUSTERS / "engine"


def cache_dir() -> Path:
    return Path(os.environ.get("KUBEDRILL_CACHE", Path.home() / ".cache" / "kubedrill"))


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """clusters/versions.env as a dict (KEY=VALUE lines; comments ignored)."""
    out: dict[str, str] = {}
    for line in (CLUSTERS / "versions.env").read_text().splitlines():
        m = re.match(r"^\s*([A-Z0-9_]+)=(\S*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def default_k8s_version() -> str:
    return os.environ.get("KUBEDRILL_K8S_VERSION") or versions()["K8S_VERSION"]


def kind_binary() -> Path | None:
    """kind built by build-go-tools.sh, else one on PATH."""
    built = cache_dir() / "tools" / f"kind-{versions()['KIND_VERSION']}" / "kind"
    if built.exists():
        return built
    from shutil import which

    found = which("kind")
    return Path(found) if found else None


def k8s_bin(version: str, name: str) -> Path:
    return cache_dir() / "k8s" / version / "bin" / name


def kubectl_binary() -> str:
    """Prefer the kubectl built for the default version (matching skew), else PATH's kubectl."""
    built = k8s_bin(default_k8s_version(), "kubectl")
    return str(built) if built.exists() else "kubectl"
