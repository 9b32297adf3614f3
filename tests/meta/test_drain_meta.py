"""The drain scenario must fail, for the right reason, on each broken maintenance case, and pass on
a sane one. Each case deploys its variant of the sample app on this session's cluster and runs the
same scenario and judge as the drain suite (operation "drain"), so no cluster is created per case:

  graceful        3 replicas, PDB minAvailable 2, preStop          -> passes
  single-replica  1 replica, no PDB                                -> "maintenance risk"
  no-prestop      no preStop hook: SIGTERM as traffic still arrives -> "requests can be dropped during drain"
  pdb-blocks      PDB maxUnavailable 0, drain timeout 30 s         -> drain times out, the PDB is named
  pinned          2 replicas pinned to the first worker by a nodeSelector, PDB minAvailable 1, drain
                  timeout 30 s -> the budget allowed one; the replacement could not be scheduled, and
                  the verdict says so (not "allows no disruption")
  statefulset-single-replica  a 1-replica StatefulSet, no PDB      -> "maintenance risk", not a timeout

After every case: no node is left cordoned and no locust process of the run is alive.

graceful and no-prestop also run on provider generic (ids ending in `/generic`, `-k generic`): the
same cluster with the Kubernetes API only, so the load runs as locust pods in the cluster, kept off
the drained node (kubedrill.load.path); same verdicts, for the same reasons.

no-prestop also runs as a rolling drain (every worker in turn; ids `no-prestop/rolling-drain`), on
both providers: the suite shows the rolling drain passing on the graceful app, this shows it failing,
for the same reason as one drain. On generic the in-cluster load pods then sit on the control-plane
node, the one node the drill leaves alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from fixtures.cluster import api_only, locust_image
from fixtures.meta import expect_verdict
from kubedrill.check.verdict import combine
from kubedrill.cluster.handle import Cluster
from kubedrill.config import RunConfig
from kubedrill.load.path import choose
from kubedrill.scenarios.drain import (
    LoadPlan,
    MaintenanceExpectations,
    MaintenanceSettings,
    judge,
    maintenance_sample,
    run_maintenance,
)
from kubedrill.workload.deploy import deployed

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]

OPERATION = "drain"  # every case's, but for ROLLING below
CASES: dict[str, tuple[dict[str, Any], MaintenanceSettings, list[str]]] = {
    # name: (sample app variant, settings, phrases the failed verdict must contain; empty = must pass).
    # "node": PINNED pins the app to the cluster's first worker.
    "graceful": ({}, MaintenanceSettings(), []),
    "single-replica": ({"replicas": 1, "pdb": "none"}, MaintenanceSettings(),
                       ["maintenance risk", "runs 1 replica and no PodDisruptionBudget"]),
    "no-prestop": ({"mode": "no-prestop"}, MaintenanceSettings(),
                   ["sigterm-margin: FAIL", "requests can be dropped during drain", "no preStop hook"]),
    "pdb-blocks": ({"pdb": "max-unavailable=0"}, MaintenanceSettings(drain_timeout_s=30),
                   ["pdb: FAIL", "timed out", "PodDisruptionBudget kd-drain-", "/kd-sample (maxUnavailable: 0"]),
    "pinned": ({"replicas": 2, "pdb": "min-available=1", "node": "PINNED"}, MaintenanceSettings(drain_timeout_s=30),
               ["pdb: FAIL", "timed out", "the budget is not the cause", "allowed 1 before the drain",
                "could not be scheduled (node selector or node affinity"]),
    "statefulset-single-replica": ({"replicas": 1, "pdb": "none", "kind": "StatefulSet"}, MaintenanceSettings(),
                                   ["maintenance risk", "StatefulSet/", "runs 1 replica and no PodDisruptionBudget"]),
}
# Phrases a case's verdict must not contain: a wrong cause is as bad as a missing one.
WRONG: dict[str, list[str]] = {"pinned": ["allows no disruption"]}
PINNED = "PINNED"


def _locust_left(root: Path) -> list[str]:
    """Processes whose working directory is under `root` (the run's locust workdir)."""
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


def _uncordon_all(cluster: Cluster) -> list[str]:
    """Uncordon every cordoned node (so the next case starts clean); returns the names found cordoned."""
    cordoned = [n.metadata.name for n in cluster.core().list_node().items if n.spec.unschedulable]
    for node in cordoned:
        cluster.kubectl("uncordon", node, timeout=60, check=False)
    return cordoned


GENERIC_CASES = ("graceful", "no-prestop")
ROLLING = "rolling-drain"
RUNS = ([(c, "kind", OPERATION) for c in CASES] + [(c, "generic", OPERATION) for c in GENERIC_CASES]
        + [("no-prestop", p, ROLLING) for p in ("kind", "generic")])


def _run_id(case: str, provider: str, operation: str) -> str:
    return case + ("" if operation == OPERATION else f"/{operation}") + ("/generic" if provider == "generic" else "")


@pytest.mark.parametrize(("case", "provider", "operation"), RUNS, ids=[_run_id(*r) for r in RUNS])
def test_drain_verdict(case: str, provider: str, operation: str, cluster: Cluster, sample_image: str,
                       kd_config: RunConfig, publish_images: Callable[[Iterable[str]], None],
                       request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if len(cluster.workers) < 2:
        pytest.skip("the drain scenario needs two workers (pods to move)")
    if provider == "kind" and (cluster.provider != "kind" or not cluster.port_map):
        pytest.skip("the kind path sends from this host through NodePorts mapped to 127.0.0.1; this cluster maps none "
                    "(its generic cases run)")
    if provider == "generic":
        cluster = api_only(cluster, publish_images, [sample_image, locust_image(request.config)])
    run_id = _run_id(case, provider, operation)
    variant, settings, phrases = CASES[case]
    if variant.get("node") == PINNED:
        variant = {**variant, "node": cluster.workers[0]}
    spec = maintenance_sample(sample_image, **variant)
    try:
        with deployed(cluster, spec, purpose=f"drain-meta-{case}", expose_service=not choose(cluster).in_cluster) as d:
            record = run_maintenance(cluster, d, operation, settings,
                                     LoadPlan(workers=kd_config.load.workers, image=kd_config.load.image),
                                     workdir=tmp_path / "load")
    finally:
        cordoned = _uncordon_all(cluster)
    assert not cordoned, f"{run_id}: node(s) left cordoned after the scenario: {cordoned}"
    left = _locust_left(tmp_path)
    assert not left, f"{run_id}: locust processes left running after the scenario: {left}"
    expect = MaintenanceExpectations(slo=1.0, min_load_rps=kd_config.slo.min_load_rps)
    verdict = combine(f"drain/{operation}", judge(record, expect))
    if operation == ROLLING:
        assert sorted(record.nodes) == sorted(cluster.workers), (
            f"{run_id}: the rolling drain covered {record.nodes}, not every worker of {cluster.workers}")
    expect_verdict(run_id, verdict, phrases, WRONG.get(case, []))
