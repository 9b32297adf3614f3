"""Meta-tests: the upgrade suite, run against broken upgrades, must fail them for the right reason.

1. Two minors at once (v1.33 -> v1.35): refused before any cluster exists, with kubeadm's reason.
   No v1.35 build is needed: the refusal is the version check itself.
2. A worker upgraded before the control plane: the pure skew checker flags it on observed versions;
   then, for real, the suite runs with `--upgrade-order workers-first` on a v1.33.13 cluster and must
   fail on version skew at the first worker. The worker is then put back on v1.33.13.
3. A workload with one replica and no PodDisruptionBudget: the suite runs the real upgrade with it
   (`--workload`) and must report lost availability (failed requests) when its node is drained.

2 and 3 run the suite in a sub-process pytest session attached to one kind cluster created here
(`--kubeconfig/--context`), so only one cluster exists at a time. 3 upgrades that cluster, so it
runs last; the cluster is deleted at session end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from kubedrill.check.rollout import to_observed
from kubedrill.check.skew import Observed, skew_verdict
from kubedrill.record.versions import Version
from kubedrill.check.verdict import Status
from kubedrill.cluster.handle import Cluster
from kubedrill.record.cluster import NodeState, Snapshot
from kubedrill.cluster.paths import REPO, versions
from fixtures.cluster import VersionedClusters

SOURCE, TARGET = versions()["K8S_UPGRADE_FROM"], versions()["K8S_VERSION"]
SUITE = str(REPO / "suites" / "upgrade")
pytestmark = [pytest.mark.meta]


def run_suite(tmp: Path, *args: str, timeout: float = 2400) -> tuple[int, dict[str, Any], str]:
    """`pytest suites/upgrade ARGS` in a sub-process; returns (exit code, its results.json, output tail)."""
    reports = tmp / "reports"
    env = dict(os.environ, PYTHONPATH=str(REPO), KUBEDRILL_DEFER_UPGRADE="0")
    argv = [sys.executable, "-m", "pytest", SUITE, "-p", "no:cacheprovider", "--reports-dir", str(reports), *args]
    p = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    results = reports / "latest" / "results.json"
    doc = json.loads(results.read_text()) if results.exists() else {}
    (tmp / "suite-output.txt").write_text(out)
    return p.returncode, doc, out[-3000:]


def reasons(doc: dict[str, Any], test: str) -> str:
    """Headline and verdict reasons of one test of the sub-session (by name prefix)."""
    for t in doc.get("tests", []):
        if t["name"].startswith(test):
            return " | ".join([t.get("headline", ""), *(v["reason"] for v in t.get("verdicts", []))])
    raise AssertionError(f"{test} not in the sub-session's results: {[t['name'] for t in doc.get('tests', [])]}")


def outcome(doc: dict[str, Any], test: str) -> str:
    return next(t["outcome"] for t in doc.get("tests", []) if t["name"].startswith(test))


# --- 1. two minors at once ---------------------------------------------------------------------------

def test_two_minor_jump_is_refused_before_any_cluster(tmp_path: Path) -> None:
    code, doc, tail = run_suite(tmp_path, "--upgrade-from", "v1.33.13", "--upgrade-to", "v1.35.0", timeout=300)
    assert code != 0, f"the suite accepted a two-minor upgrade:\n{tail}"
    why = reasons(doc, "test_upgrade_plan_proposes_the_target")
    assert "kubeadm can upgrade only 1 minor version at a time" in why, why
    assert "refused before creating any cluster" in why, why
    assert all(t["outcome"] == "error" for t in doc["tests"]), [t["outcome"] for t in doc["tests"]]
    assert "creating kind cluster" not in tail


# --- 2. worker before control plane --------------------------------------------------------------------

def _snap(kubelets: dict[str, str], api: str) -> Snapshot:
    nodes = tuple(NodeState(n, ready=True, role="control-plane" if "control" in n else "worker", kubelet=v)
                  for n, v in kubelets.items())
    return Snapshot(0.0, nodes, label="after kd-worker", api_version=api,
                    components={"kube-apiserver": {"kd-control-plane": api}})


def test_worker_before_control_plane_is_a_skew_violation_on_observed_versions() -> None:
    seen = _snap({"kd-control-plane": SOURCE, "kd-worker": TARGET, "kd-worker2": SOURCE}, api=SOURCE)
    v = skew_verdict([to_observed(seen)])
    assert v.status is Status.FAIL
    assert f"kubelet on kd-worker at {TARGET}: newer than kube-apiserver {SOURCE}" in v.reason
    # the same versions in the right order (control plane first) are fine
    ok = Observed(0.0, {"kd-control-plane": Version.parse(TARGET)}, {"kd-worker": Version.parse(SOURCE)})
    assert skew_verdict([ok]).status is Status.PASS


@pytest.fixture(scope="module")
def meta_cluster(versioned_cluster_factory: VersionedClusters) -> Iterator[Cluster]:
    """One three-node kind cluster at the source version, shared by the real meta runs (in file order),
    deleted when this module ends (its own, even when the suite ran in the same session)."""
    deferred = os.environ.get("KUBEDRILL_DEFER_UPGRADE", "")
    if deferred not in ("", "0"):
        pytest.skip(f"UPGRADE META-TESTS DEFERRED by KUBEDRILL_DEFER_UPGRADE ({deferred}): they need the {SOURCE} node image")
    cluster = versioned_cluster_factory("three-node", SOURCE, "upgrade-meta")
    yield cluster
    versioned_cluster_factory.discard(cluster)


def _attach(c: Cluster) -> list[str]:
    assert c.context is not None
    return ["--kubeconfig", str(c.kubeconfig), "--context", c.context, "--allow-disruptive-on", c.context]


def _restore_worker(cluster: Cluster, node: str) -> None:
    """Put a worker back on the source version (binaries, kubelet restart), so the next run starts clean."""
    from kubedrill.cluster.waits import until
    from kubedrill.disrupt.node import uncordon
    from kubedrill.disrupt.upgrade import Release, kubelet_version_of, place_binary, restart_kubelet

    src = Release.from_cache(SOURCE)
    for name in ("kubeadm", "kubelet", "kubectl"):
        place_binary(cluster, node, src, name)
    restart_kubelet(cluster, node)
    until(f"{node} back on kubelet {SOURCE}", lambda: (lambda r: (r[0] and r[1] == SOURCE, str(r)))(
        kubelet_version_of(cluster, node)), timeout=240, interval=2)
    uncordon(cluster, node)


@pytest.mark.slow
@pytest.mark.needs_docker
def test_worker_upgraded_before_control_plane_fails_on_skew(meta_cluster: Cluster, tmp_path: Path) -> None:
    code, doc, tail = run_suite(tmp_path, *_attach(meta_cluster), "--upgrade-order", "workers-first")
    first_worker = meta_cluster.workers[0]
    try:
        assert code != 0, f"the suite passed a workers-first upgrade:\n{tail}"
        why = reasons(doc, "test_version_skew_within_policy_at_every_step")
        assert f"kubelet on {first_worker} at {TARGET}: newer than kube-apiserver {SOURCE}" in why, why
        steps = reasons(doc, "test_every_node_step_took_effect_and_kept_its_checks")
        assert f"halted after {first_worker}" in steps and "upgrade the control plane first" in steps, steps
        # the rollout stopped at the first violation: the control plane was never touched
        assert outcome(doc, "test_upgrade_plan_proposes_the_target") == "failed"
    finally:
        _restore_worker(meta_cluster, first_worker)


# --- 3. one replica, no PDB ------------------------------------------------------------------------------

WARMUP_S = 10


def _single_replica_spec(tmp: Path, image: str) -> Path:
    """A user workload spec: the sample app with one replica, no PodDisruptionBudget, and a 10 s warm-up.

    Why the warm-up: measured here, the graceful sample app keeps serving for its 5 s preStop after
    eviction while its replacement is Ready within ~2 s, so even one replica loses no request on this
    fast local cluster (a real finding, 0 of ~10k failed). An app that needs 10 s before it is Ready
    (a JVM, a cache warm-up) leaves a gap with no serving pod: that is the outage a single replica
    without a PDB risks, and the suite must report it.
    """
    from kubedrill.workload.sample import sample_workload

    # NodePort 30081: the previous sub-session's namespace (sample app on 30080) may still be terminating.
    spec = sample_workload("graceful", replicas=1, min_available=0, image=image, name="kd-single", node_port=30081)
    docs = [d for d in spec.documents if d["kind"] != "PodDisruptionBudget"]
    for d in docs:
        if d["kind"] == "Deployment":
            d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"] = WARMUP_S
    (tmp / "manifests.yaml").write_text(yaml.safe_dump_all(docs))
    (tmp / "workload.yaml").write_text(yaml.safe_dump({"name": "kd-single", "manifests": ["manifests.yaml"]}))
    return tmp / "workload.yaml"


@pytest.mark.slow
@pytest.mark.needs_docker
def test_single_replica_without_pdb_loses_availability(meta_cluster: Cluster, sample_image: str,
                                                       tmp_path: Path) -> None:
    spec = _single_replica_spec(tmp_path, sample_image)
    code, doc, tail = run_suite(tmp_path, *_attach(meta_cluster), "--workload", str(spec))
    assert code != 0, f"the suite passed an upgrade that took down a single-replica workload:\n{tail}"
    why = reasons(doc, "test_users_never_noticed")
    assert "request(s) failed" in why or "below the SLO" in why or "requests failed across the upgrade" in why, why
    steps = reasons(doc, "test_every_node_step_took_effect_and_kept_its_checks")
    assert "halted after" in steps and ("failed-requests" in steps or "availability" in steps), steps
