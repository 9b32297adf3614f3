"""The third-party servers of apps/thirdparty as workloads: a case's spec, with its image built.

    spec = thirdparty_workload("nginx-correct")   # nginx from Debian, graceful shutdown configured

The cases (nginx, Apache httpd, gunicorn, Node.js, each correct and broken) are described only by
the documented workload spec, so a drill run on them shows what kubedrill says about a server
nobody here wrote (apps/thirdparty/README.md). Their manifests name the image by the build
recipe's hash; the image is built offline from Debian packages by clusters/images/build-thirdparty.sh
(cached: a second call only checks the tag).
"""

from __future__ import annotations

import subprocess

from kubedrill.cluster.paths import REPO
from kubedrill.workload.spec import WorkloadSpec, load_workload

WORKLOADS = REPO / "apps" / "thirdparty" / "workloads"
BUILD_SCRIPT = REPO / "clusters" / "images" / "build-thirdparty.sh"


def build_thirdparty_image(timeout: float = 1800.0) -> str:
    """Build (or find cached) the third-party servers image; returns its reference.

    Why a long timeout: a cold build debootstraps Debian bookworm with four servers (minutes on 2
    cores); a cached one returns in about a second."""
    try:
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"building the third-party servers image did not finish within {timeout:.0f} s; run "
                           f"{BUILD_SCRIPT} by hand to see where it stalls") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout.strip().splitlines()[-1]


def thirdparty_workload(case: str) -> WorkloadSpec:
    """The spec of one case (apps/thirdparty/workloads/<case>.yaml), its image built if missing.

    Raises RuntimeError when the build fails, or when it builds another tag than the manifests
    name (the recipe changed and the manifests fell behind)."""
    spec = load_workload(WORKLOADS / f"{case}.yaml")
    built = build_thirdparty_image()
    if built not in spec.images:
        raise RuntimeError(f"third-party case {case!r} names the image {', '.join(spec.images)} but the current recipe "
                           f"builds {built}: update the tag in {WORKLOADS / 'manifests'} (tests/integration/"
                           "test_thirdparty_ground_truth.py prints the sed line)")
    return spec
