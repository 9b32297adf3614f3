"""Make a host ready to run kind clusters: engine, kind CLI, node image. Idempotent and cached.

The choice of node image is automatic, overridable and printed:
  1. --node-image / KUBEDRILL_NODE_IMAGE if given;
  2. upstream kindest/node:<version> if present locally or pullable (an ordinary machine);
  3. else kubedrill's offline build (clusters/images/build-node-image.sh), built if missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kubedrill.cluster.paths import ENGINE_DIR, IMAGES_DIR, cache_dir, default_k8s_version, kind_binary, versions
from kubedrill.cluster.progress import say


class SetupError(RuntimeError):
    """A prerequisite is missing; the message names it and the fix."""


def run_recipe(argv: list[str], what: str, timeout: float, echo: Callable[[str], None] = say) -> list[str]:
    """Run a build recipe, echoing its `[kubedrill ...]` progress lines as they come (a cold build
    runs for many minutes); return all its output lines. SetupError names the recipe's last
    `ERROR:` line when it printed one, else its output's tail."""
    echo(f"{what} ...")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip()
            lines.append(line)
            if line.startswith("[kubedrill"):
                echo("  " + line)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    if proc.returncode != 0:
        errors = [ln.split("ERROR: ", 1)[1] for ln in lines if "] ERROR: " in ln]
        raise SetupError(errors[-1] if errors else
                         f"{what} failed (exit {proc.returncode}). Last output:\n" + "\n".join(lines[-25:]))
    return lines


def _stream(argv: list[str], what: str, timeout: float) -> str:
    """Run a recipe (run_recipe); return its last stdout line that is not progress."""
    lines = run_recipe(argv, what, timeout)
    return next((ln for ln in reversed(lines) if ln and not ln.startswith("[kubedrill")), "")


def docker_ok() -> tuple[bool, str]:
    if not shutil.which("docker"):
        return False, "no docker client on PATH"
    p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return False, (p.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return True, p.stdout.strip()


def ensure_engine() -> None:
    """A working Docker engine, or SetupError naming the problem and the fix."""
    if os.environ.get("KUBEDRILL_SKIP_ENGINE_SETUP"):
        ok, why = docker_ok()
        if not ok:
            raise SetupError(f"Docker engine not available ({why}) and KUBEDRILL_SKIP_ENGINE_SETUP is set. Start Docker.")
        return
    _stream(["bash", str(ENGINE_DIR / "ensure-docker.sh")], "checking the Docker engine", timeout=900)
    ok, why = docker_ok()
    if not ok:
        raise SetupError(f"Docker engine still not answering after setup: {why}")


def ensure_kind() -> Path:
    kb = kind_binary()
    if kb is None:
        _stream(["bash", str(IMAGES_DIR / "build-go-tools.sh"), "kind"], "building the kind CLI", timeout=1800)
        kb = kind_binary()
    if kb is None:
        raise SetupError("kind CLI not found after building it; see the output above")
    return kb


def _image_present(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=60).returncode == 0


def _try_pull(ref: str, timeout: float = 60) -> bool:
    try:
        return subprocess.run(["docker", "pull", ref], capture_output=True, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@dataclass(frozen=True)
class NodeImage:
    ref: str
    source: str  # "override" | "upstream" | "offline-build"


def upstream_ref(version: str) -> str:
    return f"kindest/node:{version}"


def offline_cached(version: str) -> str | None:
    p = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "kubedrill/node"],
                       capture_output=True, text=True, timeout=60)
    tags = [t for t in p.stdout.split() if t.startswith(f"kubedrill/node:{version}-")]
    return tags[0] if tags else None


def build_node_image(version: str) -> str:
    return _stream(["bash", str(IMAGES_DIR / "build-node-image.sh"), version],
                   f"building the offline kind node image for Kubernetes {version} (cold: ~15-25 min on 2 cores)",
                   timeout=7200)


LOCUST_RECIPE = IMAGES_DIR / "build-locust.sh"


def locust_image_tag() -> str:
    """The reference build-locust.sh builds now (its recipe hash); needs no Docker."""
    p = subprocess.run(["bash", str(LOCUST_RECIPE), "--print-tag"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0 or not p.stdout.strip():
        raise SetupError(f"{LOCUST_RECIPE} --print-tag failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
    return p.stdout.strip().splitlines()[-1]


def build_locust_image() -> str:
    """The in-cluster load image (kubedrill.load.incluster), built offline if missing; cached by recipe hash."""
    return _stream(["bash", str(LOCUST_RECIPE)], "the in-cluster locust image: from the cache, else built (cold: ~3-5 min)", timeout=1800)


def choose_node_image(version: str | None = None, override: str | None = None, allow_pull: bool | None = None) -> NodeImage:
    version = version or default_k8s_version()
    override = override or os.environ.get("KUBEDRILL_NODE_IMAGE")
    if override:
        if not _image_present(override) and not _try_pull(override):
            raise SetupError(f"node image {override!r} (from --node-image/KUBEDRILL_NODE_IMAGE) is not present and cannot be pulled")
        img = NodeImage(override, "override")
    else:
        if allow_pull is None:
            allow_pull = os.environ.get("KUBEDRILL_OFFLINE", "") == ""
        up = upstream_ref(version)
        if _image_present(up) or (allow_pull and _try_pull(up, timeout=45)):
            img = NodeImage(up, "upstream")
        else:
            # The recipe is cheap when cached (it checks and prints the cached tag), so always run it:
            # a changed recipe gets rebuilt instead of silently reusing a stale image.
            img = NodeImage(build_node_image(version), "offline-build")
    say(f"node image: {img.ref} ({img.source})")
    return img


def ensure_ready(k8s_version: str | None = None, need_kind: bool = True, node_image: str | None = None) -> NodeImage | None:
    """Everything a kind-based run needs. Returns the node image (None when need_kind is False)."""
    ensure_engine()
    if not need_kind:
        return None
    ensure_kind()
    return choose_node_image(k8s_version, node_image)


def main(argv: list[str] | None = None) -> int:
    """`kubedrill build [--version vX] [--all]`: build and cache everything offline (node images and
    the in-cluster locust image)."""
    import argparse

    ap = argparse.ArgumentParser(prog="kubedrill build", description=__doc__)
    ap.add_argument("--version", action="append", help="Kubernetes version(s) (default: pinned)")
    ap.add_argument("--with-upgrade-source", action="store_true", help="also build K8S_UPGRADE_FROM")
    args = ap.parse_args(argv)
    vs = args.version or [default_k8s_version()]
    if args.with_upgrade_source:
        vs.append(versions()["K8S_UPGRADE_FROM"])
    try:
        ensure_engine()
        ensure_kind()
        for v in vs:
            say(f"node image for {v}: {build_node_image(v)}")
        say(f"in-cluster load image: {build_locust_image()}")
    except SetupError as exc:
        say(f"ERROR: {exc}")
        return 2
    say(f"cache: {cache_dir()}")
    return 0
