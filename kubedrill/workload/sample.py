"""The bundled sample app (apps/sample/): its image, its modes and its WorkloadSpec.

Each SHUTDOWN_MODE reproduces one shutdown behaviour, so a suite can show that kubedrill tells
them apart: graceful passes; the others fail with a reason naming the mistake.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from kubedrill.workload.manifests import Manifest, render_template
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "apps" / "sample"
MANIFEST_DIR = APP_DIR / "manifests"
BUILD_SCRIPT = REPO_ROOT / "clusters" / "images" / "build-sample-app.sh"
IMAGE_REPO = "kubedrill/sample-app"

SAMPLE_MODES: tuple[str, ...] = ("graceful", "ignores-sigterm", "slow-exit", "abrupt", "exit-nonzero", "no-prestop")
# What each mode is expected to do wrong; the suites and the local test assert on these.
MODE_FAULTS: dict[str, str] = {
    "graceful": "",
    "ignores-sigterm": "ignores SIGTERM and is SIGKILLed at the end of the grace period",
    "slow-exit": "drains, then runs a cleanup longer than the grace period and is SIGKILLed",
    "abrupt": "exits at once on SIGTERM, dropping in-flight requests",
    "exit-nonzero": "drains cleanly but exits 1",
    "no-prestop": "has no preStop hook, so it stops listening before endpoints are removed",
}
SLOW_PATH = "/slow?seconds={seconds}"
DEFAULT_NODE_PORT = 30080


def _hashed_files(root: Path) -> list[str]:
    app = root / "apps" / "sample"
    files = [app / "go.mod", *app.glob("*.go"), root / "clusters" / "images" / "build-sample-app.sh"]
    rel = [str(f.relative_to(root)) for f in files if not f.name.endswith("_test.go")]
    return sorted(rel, key=lambda s: s.encode())


def sample_image_tag(root: Path = REPO_ROOT) -> str:
    """`kubedrill/sample-app:<srchash>` for the current source, without building anything.

    Mirrors `srchash` in clusters/images/build-sample-app.sh: sha256 of the `sha256sum` listing
    of the app's go.mod, non-test .go files and the build script (a unit test keeps them equal).
    """
    listing = "".join(f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  {rel}\n" for rel in _hashed_files(root))
    return f"{IMAGE_REPO}:{hashlib.sha256(listing.encode()).hexdigest()[:12]}"


def build_sample_image(timeout: float = 900.0) -> str:
    """Build (or find cached) the sample app image; returns its reference. Needs go and docker."""
    try:
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"building the sample app image did not finish within {timeout:.0f} s; run {BUILD_SCRIPT} by hand to see where it stalls"
        ) from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout.strip().splitlines()[-1]


def sample_workload(
    mode: str = "graceful",
    replicas: int = 3,
    grace_seconds: int = 30,
    *,
    namespace: str = "kd-sample",
    name: str = "kd-sample",
    image: str | None = None,
    prestop_seconds: float = 5,
    drain_seconds: float | None = None,
    node_port: int | None = DEFAULT_NODE_PORT,
    min_available: int = 2,
    pull_policy: str = "IfNotPresent",
    slo: float = 0.999,
) -> WorkloadSpec:
    """The sample app's WorkloadSpec with its rendered manifests (Deployment, Service, PDB).

    `drain_seconds` (how long the app waits for in-flight requests after SIGTERM) defaults to what
    is left of the grace period after the preStop sleep, less 2 s of margin. `node_port=None` lets
    Kubernetes pick one (needed when two namespaces run the sample app at once: node ports are
    cluster-wide). Raises WorkloadSpecError for combinations that cannot work.
    """
    if mode not in SAMPLE_MODES:
        raise WorkloadSpecError(f"sample app: mode {mode!r} is not one of {', '.join(SAMPLE_MODES)}")
    if replicas < 1:
        raise WorkloadSpecError(f"sample app: replicas must be >= 1, got {replicas}")
    if grace_seconds < 1:
        raise WorkloadSpecError(f"sample app: grace_seconds must be >= 1, got {grace_seconds}")
    if not 0 <= min_available <= replicas:
        raise WorkloadSpecError(
            f"sample app: a PodDisruptionBudget with minAvailable {min_available} and {replicas} replica(s) "
            "blocks every eviction; use replicas >= 3 or lower min_available"
        )
    uses_prestop = mode != "no-prestop"
    if uses_prestop and prestop_seconds >= grace_seconds:
        raise WorkloadSpecError(
            f"sample app: preStop sleep {prestop_seconds} s would use the whole {grace_seconds} s grace period "
            "(Kubernetes counts preStop against it); raise grace_seconds or lower prestop_seconds"
        )
    if node_port is not None and not 30000 <= node_port <= 32767:
        raise WorkloadSpecError(f"sample app: node_port must be in 30000-32767 (or None), got {node_port}")
    if pull_policy not in ("IfNotPresent", "Never"):
        raise WorkloadSpecError(f"sample app: pull_policy must be IfNotPresent or Never (no registry), got {pull_policy!r}")
    if drain_seconds is None:
        drain_seconds = max(1.0, grace_seconds - (prestop_seconds if uses_prestop else 0) - 2)
    image = image or sample_image_tag()
    values = {
        "name": name,
        "namespace": namespace,
        "mode": mode,
        "replicas": replicas,
        "grace_seconds": grace_seconds,
        "image": image,
        "pull_policy": pull_policy,
        "prestop_seconds": _num(prestop_seconds),
        "drain_seconds": _num(drain_seconds),
        "node_port": node_port if node_port is not None else 0,
        "min_available": min_available,
    }
    docs: list[Manifest] = []
    for fname in ("deployment.yaml", "service.yaml", "pdb.yaml"):
        docs.extend(render_template(MANIFEST_DIR / fname, values))
    for doc in docs:
        if doc["kind"] == "Deployment" and not uses_prestop:
            for c in doc["spec"]["template"]["spec"]["containers"]:
                c.pop("lifecycle", None)
        if doc["kind"] == "Service" and node_port is None:
            for p in doc["spec"]["ports"]:
                p.pop("nodePort", None)
    return WorkloadSpec(
        name=name,
        namespace=namespace,
        selector={"app.kubernetes.io/name": name},
        service=name,
        node_port=node_port,
        service_port=80,
        replicas=replicas,
        grace_seconds=grace_seconds,
        images=(image,),
        documents=tuple(docs),
        manifests=(MANIFEST_DIR,),
        health_path="/",
        slow_path=SLOW_PATH,
        slo=slo,
        prestop=uses_prestop,
        shutdown_mode=mode,
        extra={"prestop_seconds": prestop_seconds, "drain_seconds": drain_seconds, "min_available": min_available},
    )


def _num(x: float) -> str:
    """2.0 -> "2", 2.5 -> "2.5": the app parses either, but manifests read better without ".0"."""
    return str(int(x)) if float(x).is_integer() else str(x)
