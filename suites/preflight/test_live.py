"""Preflight of a live cluster (a kind cluster by default, or --kubeconfig/--context): the object view
of drain safety agrees with `kubectl drain --dry-run=server`, and the cluster's version skew against
each target is judged by the upgrade suite's skew policy. Read-only for nodes: nothing is cordoned or
evicted (dry-run); the test's own namespace is created and deleted.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterator

import pytest

from kubedrill.check import preflight as P
from kubedrill.check.verdict import Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.paths import versions
from kubedrill.cluster.waits import until
from kubedrill.preflight import live
from kubedrill.record.versions import Version
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.needs_docker, pytest.mark.conformance]


def _app(ns: str, app: str, budget: str) -> str:
    """Two pause pods and a PDB with `budget` (a minAvailable or maxUnavailable line)."""
    pause = f"registry.k8s.io/pause:{versions().get('PAUSE_VERSION', '3.10')}"
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: pause, image: {pause}, imagePullPolicy: IfNotPresent}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {app}-pdb, namespace: {ns}}}
spec:
  {budget}
  selector: {{matchLabels: {{app: {app}}}}}
"""


def _objects(ns: str) -> str:
    """`pinned`: its PDB allows no eviction (minAvailable = replicas); `free`: one may go."""
    return _app(ns, "pinned", "minAvailable: 2") + "---" + _app(ns, "free", "maxUnavailable: 1")


def _pdbs_computed(cluster: Cluster, ns: str) -> tuple[bool, str]:
    """Both PDBs' status written by the disruption controller for their current generation."""
    pdbs = json.loads(cluster.kubectl("get", "pdb", "-n", ns, "-o", "json").stdout)["items"]
    done = len(pdbs) == 2 and all((p.get("status") or {}).get("observedGeneration") == p["metadata"]["generation"]
                                  and p["status"].get("currentHealthy") == 2 for p in pdbs)
    return done, f"PDB status: {[p.get('status') for p in pdbs]}"


@pytest.fixture
def pinned_namespace(cluster: Cluster) -> Iterator[str]:
    ns = f"kd-preflight-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    try:
        cluster.kubectl("apply", "-f", "-", input=_objects(ns))
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/pinned", "deployment/free", "--timeout=180s",
                        timeout=200)
        until(f"the disruption controller to compute both PDBs' status in {ns}", lambda: _pdbs_computed(cluster, ns),
              timeout=60, interval=1, hint=f"kubectl get pdb -n {ns} -o yaml; is kube-controller-manager running?")
        yield ns
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_object_view_and_drain_dry_run_agree_on_the_blocking_pdb(cluster: Cluster, pinned_namespace: str,
                                                                  kd_report: TestResult) -> None:
    ns = pinned_namespace
    objs = live.list_objects(cluster, namespaces=[ns], with_crds=False)
    findings = P.drain_findings(objs)
    assert {(f.ref.name, f.check) for f in findings} == {("pinned-pdb", P.PDB_BLOCKS)}, findings
    for f in findings:
        kd_report.add(f.verdict())
    pods: list[dict[str, Any]] = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    predicted = live.predicted_blocked(findings, objs, pods)
    nodes = sorted({p["spec"]["nodeName"] for p in pods if p["metadata"]["name"].startswith("pinned-")})
    answers = [live.drain_dry_run(cluster, n) for n in nodes]
    agreement = kd_report.add(live.drain_agreement(predicted, answers))
    assert agreement.passed, str(agreement) + "\n" + "\n".join(a.output[-1500:] for a in answers)
    assert "pinned-pdb" in agreement.reason
    assert all(not any(p.startswith(f"{ns}/free-") for p in a.blocked) for a in answers)
    # Dry-run only: nothing was cordoned.
    nodes_now = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert not [n["metadata"]["name"] for n in nodes_now if n["spec"].get("unschedulable")]


def test_version_skew_against_each_target(cluster: Cluster, kd_report: TestResult) -> None:
    from kubedrill.preflight.apiserver import preflight_targets

    obs = live.observe_versions(cluster)
    assert obs.complete, f"no API server or kubelet version seen: {obs}"
    current = min(obs.apiservers.values())
    kubectl = live.kubectl_version(cluster)
    for t in preflight_targets():
        target = Version.parse(t)
        findings = live.skew_findings(obs, target, kubectl)
        for f in findings:
            kd_report.add(f.verdict())
        jump = target.minors_above(current)
        if jump > 1:  # kubeadm refuses skipping a minor: preflight must say so
            assert any("too high" in f.reason for f in findings), findings
        elif jump == 1:
            assert not [f for f in findings if f.severity == P.ERROR], findings
            kd_report.add(Verdict.ok(f"preflight/version-skew {t}", f"{current} -> {t}: one minor, every kubelet "
                                     "within the skew policy of the target"))
