"""kubeadm backup and restore of the cluster's own etcd, judged at the Kubernetes level.

One drill per module on a dedicated three-node cluster (`restore_cluster`): known objects are
seeded, an API prober starts, `etcdctl snapshot save` runs on the control plane with the kubeadm
certs, objects are created / changed / deleted after the snapshot, then the operator runbook
restores (API servers stopped, etcdutl into a new data dir with a revision bump, etcd pointed at
it, API back, scheduler / controller-manager / kubelets restarted). Each test below judges one
property of that single record, so a failure names the property that broke.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from kubedrill.check.verdict import Verdict, combine
from kubedrill.cluster.handle import Cluster
from kubedrill.report.model import TestResult
from kubedrill.scenarios.etcd_restore import RestoreDrillRecord, judge, restore_rto, run_restore_drill

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]


@pytest.fixture(scope="module")
def drill(restore_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestoreDrillRecord]:
    """The recorded drill (runs once per module; every test judges part of it)."""
    r = run_restore_drill(restore_cluster, tmp_path_factory.mktemp("etcd-backup"))
    yield r
    if r.objects is not None:  # an attached cluster outlives the module
        r.objects.delete()


@pytest.fixture(scope="module")
def verdicts(drill: RestoreDrillRecord) -> dict[str, Verdict]:
    return {v.check: v for v in judge(drill)}


def _judge(kd_report: TestResult, kd_artifacts: Path, drill: RestoreDrillRecord, verdicts: dict[str, Verdict],
           *names: str) -> None:
    """Report the named verdicts (plus a procedure crash, if any) and assert they all passed."""
    chosen = [verdicts[n] for n in ("procedure-completed", *names) if n in verdicts]
    for v in chosen:
        kd_report.add(v)
    drill.dump(kd_artifacts / "restore-drill.json")  # kept only if this test fails
    verdict = combine("etcd-restore", chosen)
    assert verdict.passed, str(verdict)


def test_backup_saved_with_kubeadm_certs(drill: RestoreDrillRecord, kd_report: TestResult,
                                         request: pytest.FixtureRequest) -> None:
    """`etcdctl snapshot save` on the control plane; status recorded; the file kept on the host."""
    b = drill.backup
    assert b is not None, "no backup was taken"
    assert b.host_path.exists() and b.host_path.stat().st_size > 0, f"snapshot {b.host_path} missing on the host"
    assert b.revision > 0 and int(b.status.get("totalKey", 0)) > 0, f"snapshot status looks empty: {b.status}"
    kd_report.figure("backup_seconds", round(b.seconds, 2), "s", b.node)
    kd_report.figure("snapshot_revision", b.revision, "rev")
    kd_report.figure("snapshot_keys", int(b.status["totalKey"]), "keys")
    kd_report.figure("snapshot_bytes", int(b.status["totalSize"]), "bytes")
    if not request.config.getoption("no_kd_reports"):
        keep = Path(request.config.getoption("reports_dir")).resolve() / "latest" / "artifacts" / "cluster-etcd-backup"
        keep.mkdir(parents=True, exist_ok=True)
        for f in b.host_path.parent.glob(b.host_path.name + "*"):
            shutil.copy2(f, keep / f.name)
        kd_report.artifact(keep, "etcd snapshot and its status")
    kd_report.add(Verdict.ok("backup", f"snapshot of {b.status['totalKey']} keys at revision {b.revision} "
                                       f"({b.status['totalSize']} bytes, sha256 {b.sha256[:12]}) saved in {b.seconds:.1f}s"))


def test_restore_runs_as_the_runbook_says(drill: RestoreDrillRecord, verdicts: dict[str, Verdict],
                                          kd_report: TestResult, kd_artifacts: Path) -> None:
    """Every step ran, no API server lived through the swap, etcd serves the restored data."""
    for s in drill.steps:
        kd_report.figure(f"step_{s.name}", round(s.seconds, 1), "s")
    _judge(kd_report, kd_artifacts, drill, verdicts, "procedure", "restore-took-effect",
           "apiservers-stopped-during-restore")


def test_snapshot_state_is_back_and_later_changes_are_gone(drill: RestoreDrillRecord, verdicts: dict[str, Verdict],
                                                           kd_report: TestResult, kd_artifacts: Path) -> None:
    _judge(kd_report, kd_artifacts, drill, verdicts, "post-snapshot-changes-made", "same-cluster", "restored-objects")


def test_resource_versions_keep_increasing(drill: RestoreDrillRecord, verdicts: dict[str, Verdict],
                                           kd_report: TestResult, kd_artifacts: Path) -> None:
    _judge(kd_report, kd_artifacts, drill, verdicts, "resource-version-monotonic")


def test_controllers_and_kubelets_converge(drill: RestoreDrillRecord, verdicts: dict[str, Verdict],
                                           kd_report: TestResult, kd_artifacts: Path) -> None:
    if drill.converge_s is not None:
        kd_report.figure("converge_after_restore", round(drill.converge_s, 1), "s")
    _judge(kd_report, kd_artifacts, drill, verdicts, "controllers-converged", "no-orphan-containers", "nodes-ready")


def test_restore_rto_recorded(drill: RestoreDrillRecord, verdicts: dict[str, Verdict], kd_report: TestResult,
                              kd_artifacts: Path) -> None:
    """RTO: API writes unavailable (first failed probe) until they succeed again."""
    rto = restore_rto(drill)
    assert rto is not None, "no procedure window recorded"
    _judge(kd_report, kd_artifacts, drill, verdicts, "restore-rto")
