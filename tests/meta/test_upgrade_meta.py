"""Meta-tests: broken upgrades must fail the upgrade rehearsal's checks, each for the right reason.

1. Two minors at once (v1.33 -> v1.35): the suite refuses before any cluster exists, with kubeadm's
   reason. No v1.35 build is needed: the refusal is the version check itself. This one runs the
   suite in a sub-process (the refusal is the suite's own setup; nothing else would run) and reads
   its results.json.
2. A worker upgraded before the control plane: the pure skew checker flags it on observed versions;
   then, for real, the rehearsal runs workers-first on a v1.33.13 cluster and must fail on version
   skew at the first worker and halt there. The worker is then put back on v1.33.13.
3. A workload with one replica and no PodDisruptionBudget, next to a healthy StatefulSet (the
   graceful sample app, 3 replicas, PDB): the real rehearsal runs with both, each under its own
   load, and must report lost availability (failed requests) for the single replica when its
   node is drained -- and not for the StatefulSet, whose checks must pass: the verdicts are per
   workload, and a StatefulSet is followed like a Deployment.

2 and 3 run the suite's own drill (`kubedrill.scenarios.upgrade.run_upgrade_rehearsal`) and its
checks (`judge`) directly on one kind cluster created here, so only one cluster exists at a time.
3 upgrades that cluster, so it runs last; the cluster is deleted when the module ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from fixtures.cluster import VersionedClusters
from kubedrill.check.rollout import to_observed
from kubedrill.check.skew import Observed, skew_verdict
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.paths import REPO, versions
from kubedrill.config import RunConfig
from kubedrill.disrupt.upgrade import Order, Release, ReleaseMissing
from kubedrill.record.cluster import NodeState, Snapshot
from kubedrill.record.versions import Version
from kubedrill.report.model import TestResult
from kubedrill.scenarios.upgrade import Settings, judge, prepare_release, run_upgrade_rehearsal, workload_check
from kubedrill.workload.deploy import deployed
from kubedrill.workload.spec import WorkloadSpec

SOURCE, TARGET = versions()["K8S_UPGRADE_FROM"], versions()["K8S_VERSION"]
SUITE = str(REPO / "suites" / "upgrade")
pytestmark = [pytest.mark.meta]


# --- 1. two minors at once ---------------------------------------------------------------------------

def test_two_minor_jump_is_refused_before_any_cluster(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    argv = [sys.executable, "-m", "pytest", SUITE, "-p", "no:cacheprovider", "--reports-dir", str(reports),
            "--upgrade-from", "v1.33.13", "--upgrade-to", "v1.35.0"]
    p = subprocess.run(argv, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), KUBEDRILL_DEFER_UPGRADE="0"),
                       capture_output=True, text=True, timeout=300)
    (tmp_path / "suite-output.txt").write_text(p.stdout + p.stderr)  # for a human, never parsed
    assert p.returncode != 0, f"the suite accepted a two-minor upgrade (exit 0); its output: {tmp_path}"
    tests: list[dict[str, Any]] = json.loads((reports / "latest" / "results.json").read_text())["tests"]
    assert tests, "the suite's results.json lists no tests"
    # Every test errors in the first fixture of the chain (upgrade_setup, session-scoped): the cluster
    # fixture, which depends on it, never ran.
    assert all(t["outcome"] == "error" for t in tests), [(t["name"], t["outcome"]) for t in tests]
    for t in tests:
        why = " | ".join([t.get("headline", ""), *(v["reason"] for v in t.get("verdicts", []))])
        assert "kubeadm can upgrade only 1 minor version at a time" in why, why
        assert "refused before creating any cluster" in why, why


# --- the real rehearsals (2, 3) ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def meta_cluster(versioned_cluster_factory: VersionedClusters) -> Iterator[Cluster]:
    """One three-node kind cluster at the source version, shared by the real rehearsals (in file order),
    deleted when this module ends."""
    deferred = os.environ.get("KUBEDRILL_DEFER_UPGRADE", "")
    if deferred not in ("", "0"):
        pytest.skip(f"UPGRADE META-TESTS DEFERRED by KUBEDRILL_DEFER_UPGRADE ({deferred}): they need the {SOURCE} node image")
    cluster = versioned_cluster_factory("three-node", SOURCE, "upgrade-meta")
    yield cluster
    versioned_cluster_factory.discard(cluster)


@pytest.fixture(scope="module")
def release() -> Release:
    """The target's binaries and images (the suite's `target_release`, built if missing)."""
    from kubedrill.cluster.setup import SetupError

    problem = ""
    try:
        return prepare_release(TARGET)
    except (SetupError, ReleaseMissing) as exc:
        problem = str(exc)
    pytest.fail(f"the target release {TARGET} could not be prepared: {problem}", pytrace=False)


def rehearse(cluster: Cluster, release: Release, specs: list[WorkloadSpec], kd_config: RunConfig,
             kd_report: TestResult, kd_artifacts: Path, order: Order = "control-plane-first") -> dict[str, Verdict]:
    """The suite's rehearsal and judgement with the suite's SLO settings, the workloads deployed
    together as the suite does (each on a free host-mapped NodePort); every verdict is reported."""
    slo = kd_config.slo
    settings = Settings(SOURCE, TARGET, order, slo=slo.availability, max_failed_requests=slo.max_failed_requests,
                        min_rate=slo.min_load_rps)
    with contextlib.ExitStack() as stack:
        workloads = [stack.enter_context(deployed(cluster, spec, purpose=f"upgrade-meta-{spec.name}",
                                                  expose_service=True, wait_deleted=False, timeout=300))
                     for spec in specs]
        rec = run_upgrade_rehearsal(cluster, release, workloads, settings)
    rec.dump(kd_artifacts / "upgrade")  # kept only if the meta-test fails
    return {v.check: kd_report.add(v) for v in judge(rec)}


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


def _restore_worker(cluster: Cluster, node: str) -> None:
    """Put a worker back on the source version (binaries, kubelet restart), so the next run starts clean."""
    from kubedrill.cluster.waits import until
    from kubedrill.disrupt.node import uncordon
    from kubedrill.disrupt.upgrade import kubelet_version_of, place_binary, restart_kubelet

    src = Release.from_cache(SOURCE)
    for name in ("kubeadm", "kubelet", "kubectl"):
        place_binary(cluster, node, src, name)
    restart_kubelet(cluster, node)

    def back() -> tuple[bool, str]:
        ready, version = kubelet_version_of(cluster, node)
        return ready and version == SOURCE, f"Ready={ready}, kubelet {version}"

    until(f"{node} back on kubelet {SOURCE}", back, timeout=240, interval=2)
    uncordon(cluster, node)


@pytest.mark.slow
@pytest.mark.needs_docker
def test_worker_upgraded_before_control_plane_fails_on_skew(meta_cluster: Cluster, release: Release,
                                                            sample_image: str, kd_config: RunConfig,
                                                            kd_report: TestResult, kd_artifacts: Path) -> None:
    from kubedrill.workload.sample import sample_workload

    first_worker = meta_cluster.workers[0]
    try:
        v = rehearse(meta_cluster, release, [sample_workload("graceful", replicas=3, image=sample_image)], kd_config,
                     kd_report, kd_artifacts, order="workers-first")
        skew = v["version-skew"]
        assert skew.status is Status.FAIL, f"the rehearsal passed a workers-first upgrade on skew: {skew}"
        assert f"kubelet on {first_worker} at {TARGET}: newer than kube-apiserver {SOURCE}" in skew.reason, skew
        rollout = v["rollout"].reason
        assert f"halted after {first_worker}" in rollout and "upgrade the control plane first" in rollout, rollout
        # the rollout stopped at the first violation: the control plane was never touched
        assert v["upgrade-plan"].status is Status.FAIL, v["upgrade-plan"]
    finally:
        _restore_worker(meta_cluster, first_worker)


# --- 3. one replica, no PDB ------------------------------------------------------------------------------

WARMUP_S = 10


def _single_replica_spec(image: str) -> WorkloadSpec:
    """The sample app with one replica, no PodDisruptionBudget, and a 10 s warm-up.

    Why the warm-up: measured here, the graceful sample app keeps serving for its 5 s preStop after
    eviction while its replacement is Ready within ~2 s, so even one replica loses no request on this
    fast local cluster (a real finding, 0 of ~10k failed). An app that needs 10 s before it is Ready
    (a JVM, a cache warm-up) leaves a gap with no serving pod: that is the outage a single replica
    without a PDB risks, and the rehearsal must report it.
    """
    from kubedrill.workload.sample import sample_workload

    spec = sample_workload("graceful", replicas=1, min_available=0, image=image, name="kd-single")
    docs = [d for d in spec.documents if d["kind"] != "PodDisruptionBudget"]
    for d in docs:
        if d["kind"] == "Deployment":
            d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"] = WARMUP_S
    return dataclasses.replace(spec, documents=tuple(docs))


@pytest.mark.slow
@pytest.mark.needs_docker
def test_single_replica_without_pdb_loses_availability(meta_cluster: Cluster, release: Release, sample_image: str,
                                                       kd_config: RunConfig, kd_report: TestResult,
                                                       kd_artifacts: Path) -> None:
    from kubedrill.scenarios.drain import as_statefulset
    from kubedrill.workload.sample import sample_workload

    single, healthy = "kd-single", "kd-sample"
    companion = as_statefulset(sample_workload("graceful", replicas=3, image=sample_image, name=healthy))
    v = rehearse(meta_cluster, release, [_single_replica_spec(sample_image), companion], kd_config, kd_report,
                 kd_artifacts)
    users = [v[workload_check("availability", single)], v[workload_check("failed-requests", single)]]
    assert not all(u.passed for u in users), f"the rehearsal passed an upgrade that took down a single-replica " \
                                             f"workload: {users}"
    why = " | ".join(u.reason for u in users)
    assert "request(s) failed" in why or "below the SLO" in why, why
    rollout = v["rollout"].reason
    assert "halted after" in rollout and (f"failed-requests {single}" in rollout or f"availability {single}" in rollout), \
        rollout
    # The single replica's outage is its own: the StatefulSet next to it kept serving through the same
    # rollout, and is back at 3/3 at the end.
    kept = [v[workload_check(c, healthy)] for c in ("availability", "failed-requests", "replicas")]
    assert all(k.passed for k in kept), f"the healthy StatefulSet beside the single replica was judged hurt: {kept}"
    assert "StatefulSet" in v[workload_check("replicas", healthy)].reason, v[workload_check("replicas", healthy)]
