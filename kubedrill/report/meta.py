"""Run metadata for results.json: what ran, where, from which commit, and how to run it again.

A gate verdict is only worth something if someone can tell what it was a verdict *on* and rerun
it: versions (pinned in clusters/versions.env, overridden by the config, or recorded by the tests
from the live cluster, which wins), the host, the git commit and the exact command.
Every probe here tolerates failure (no git, no /proc) and reports None rather than raising.
"""

from __future__ import annotations

import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

import kubedrill

REPO_ROOT = Path(kubedrill.__file__).resolve().parent.parent
VERSIONS_ENV = REPO_ROOT / "clusters" / "versions.env"
# Environment variable the CLI sets so the report shows `kubedrill run ...` rather than the pytest
# command line it built.
COMMAND_ENV = "KUBEDRILL_COMMAND"

# Names in versions.env that do not follow the `<NAME>_VERSION` pattern or need a clearer name.
_ENV_NAMES = {"K8S_VERSION": "kubernetes", "K8S_UPGRADE_FROM": "kubernetes_upgrade_from"}
_ALIASES = {"k8s": "kubernetes", "kube": "kubernetes"}


def read_versions_env(path: Path = VERSIONS_ENV) -> dict[str, str]:
    """KEY=VALUE pairs of the pinned-versions file (comments and blanks skipped; {} if missing)."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return out


def version_name(key: str) -> str | None:
    """'ETCD_VERSION' -> 'etcd', 'k8s_version' -> 'kubernetes'; None if `key` is not a version key."""
    if key in _ENV_NAMES:
        return _ENV_NAMES[key]
    low = key.lower()
    if not low.endswith("_version"):
        return None
    name = low.removesuffix("_version")
    return _ALIASES.get(name, name)


def versions(pinned: Mapping[str, str], configured: Mapping[str, str | None],
             recorded: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Merge component versions; later sources win: versions.env < config < recorded by tests."""
    out: dict[str, dict[str, str]] = {}
    for source, items in (("versions.env", pinned), ("config", configured), ("recorded", recorded)):
        for key, value in items.items():
            name = version_name(key)
            if name and value not in (None, ""):
                out[name] = {"value": str(value), "source": source}
    return dict(sorted(out.items()))


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def host_info() -> dict[str, Any]:
    """The machine the run happened on: timings mean little without it."""
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
    }


def git_info(cwd: Path = REPO_ROOT) -> dict[str, Any]:
    """HEAD commit and whether the tree had local changes; None fields when git or commits are absent."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def reproduce_command(pytest_args: list[str], cwd: str | None = None) -> dict[str, str]:
    """The command that reruns this exact selection; the CLI's own command line when it started us."""
    cwd = cwd or os.getcwd()
    pytest_cmd = f"cd {shlex.quote(cwd)} && {shlex.quote(Path(sys.executable).name)} -m pytest {shlex.join(pytest_args)}"
    return {"command": os.environ.get(COMMAND_ENV) or pytest_cmd, "pytest": pytest_cmd.strip()}
