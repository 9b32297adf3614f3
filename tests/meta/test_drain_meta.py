"""The drain suite must fail, for the right reason, on each broken maintenance case, and pass on a
sane one. Each case runs the real suite (suites/drain, operation drain-worker) in a pytest
subprocess against this session's cluster, so no cluster is created per case:

  graceful        3 replicas, PDB minAvailable 2, preStop          -> passes
  single-replica  1 replica, no PDB                                -> "maintenance risk"
  no-prestop      no preStop hook: SIGTERM as traffic still arrives -> "requests can be dropped during drain"
  pdb-blocks      PDB maxUnavailable 0, drain timeout 30 s         -> drain times out, the PDB is named

After every case: no node is left cordoned and no locust process of the inner run is alive.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubedrill.cluster.handle import Cluster

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]

SUITE = Path(__file__).resolve().parents[2] / "suites" / "drain"
# Read at import, before pytester points HOME at its tmp dir: the inner run needs the real HOME
# for kubedrill's tool cache (kind, kubectl) and the Go build cache of the sample app image.
REAL_HOME = os.environ.get("HOME", str(Path.home()))
CASES: dict[str, tuple[list[str], list[str]]] = {
    # name: (suite options, phrases the failure must contain; empty = must pass)
    "graceful": ([], []),
    "single-replica": (["--replicas", "1", "--sample-pdb", "none"],
                       ["maintenance risk", "runs 1 replica and no PodDisruptionBudget"]),
    "no-prestop": (["--sample-mode", "no-prestop"],
                   ["sigterm-margin: FAIL", "requests can be dropped during drain", "no preStop hook"]),
    "pdb-blocks": (["--sample-pdb", "max-unavailable=0", "--drain-timeout", "30"],
                   ["pdb: FAIL", "timed out", "PodDisruptionBudget kd-drain-", "/kd-sample (maxUnavailable: 0"]),
}


def _locust_left(root: Path) -> list[str]:
    """Processes whose working directory is under `root` (the inner run's locust workdirs)."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(root)) and "locust" in cmd:
            left.append(f"{entry.name}: {cmd[:120]}")
    return left


@pytest.mark.parametrize("case", list(CASES))
def test_drain_suite_verdict(case: str, cluster: Cluster, pytester: pytest.Pytester,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    if cluster.provider != "kind" or not cluster.context:
        pytest.skip("the drain suite needs a kind cluster (node exec and port mappings)")
    monkeypatch.setenv("HOME", REAL_HOME)
    options, phrases = CASES[case]
    result = pytester.runpytest_subprocess(
        str(SUITE), "-k", "drain-worker", "--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context,
        "--allow-disruptive-on", cluster.context, "--no-kd-reports", *options, timeout=420)
    out = result.stdout.str()
    cordoned = [n.metadata.name for n in cluster.core().list_node().items if n.spec.unschedulable]
    assert not cordoned, f"{case}: node(s) left cordoned after the inner run: {cordoned}"
    left = _locust_left(pytester.path)
    assert not left, f"{case}: locust processes left running after the inner run: {left}"
    if not phrases:
        assert result.ret == 0, f"{case}: the suite should pass on a sane workload; output:\n{out[-6000:]}"
        result.assert_outcomes(passed=1)
        return
    result.assert_outcomes(failed=1)
    failure = "\n".join(ln for ln in out.splitlines() if ln.startswith("E ") and "drain/drain-worker" in ln)
    assert failure, f"{case}: no verdict line in the failure output:\n{out[-6000:]}"
    missing = [p for p in phrases if p not in failure]
    assert not missing, f"{case}: the failure does not say {missing}; it says:\n{failure[:3000]}"
