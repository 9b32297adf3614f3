"""Wrong restore procedures must fail the cluster-etcd suite's checks, each with its own reason.

Each case runs the real drill (`kubedrill.scenarios.etcd_restore`, the one the suite runs) with a
wrong variant of the real `RestoreProcedure`, then the real checkers (`judge`), and asserts that
the check that should catch the mistake fails and says why. They run directly on the outer
`cluster` fixture (three-node kind by default, or --kubeconfig of a kind cluster; it is rewound by
each restore, so give this module a cluster of its own), not through pytester: the drill is
already the suite's code path, and a sub-session would need a second cluster.

    restore while the API server keeps running -> apiservers-stopped-during-restore fails
    restore into the old (live) data dir       -> restore-took-effect and restored-objects fail
    a snapshot from another cluster            -> same-cluster and restored-objects fail
After the foreign-snapshot case the cluster is restored from its own backup with the runbook, so
the module leaves it healed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.etcd_backup import Backup, foreign_backup
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.etcd_restore import RestoreProcedure
from kubedrill.record import Recorder
from kubedrill.report.model import TestResult
from kubedrill.scenarios.etcd_restore import RestoreDrillRecord, judge, run_restore_drill

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]

# Wrong procedures never converge; do not wait the runbook's full budget to learn that.
READY_TIMEOUT_S = 90.0
CONVERGE_S = 60.0


def wrong(backup: Backup | None = None, **variant: bool) -> Callable[[Cluster, Backup, Recorder], RestoreProcedure]:
    """A procedure factory for a wrong variant (the drill passes this cluster's own backup)."""
    def make(c: Cluster, b: Backup, rec: Recorder) -> RestoreProcedure:
        return RestoreProcedure(c, backup or b, recorder=rec, ready_timeout_s=READY_TIMEOUT_S,
                                stop_apiservers=variant.get("stop_apiservers", True),
                                new_data_dir=variant.get("new_data_dir", True))
    return make


@pytest.fixture(scope="module")
def kind_cluster(cluster: Cluster) -> Cluster:
    if cluster.provider != "kind":
        pytest.skip("restore meta-tests run commands on the control-plane node: they need a kind cluster")
    return cluster


def _drill(cluster: Cluster, tmp: Path, make: Callable[[Cluster, Backup, Recorder], RestoreProcedure],
           kd_report: TestResult, kd_artifacts: Path) -> tuple[RestoreDrillRecord, dict[str, Verdict]]:
    r = run_restore_drill(cluster, tmp, make, converge_timeout_s=CONVERGE_S)
    r.dump(kd_artifacts / "restore-drill.json")
    verdicts = {v.check: v for v in judge(r)}
    for v in verdicts.values():
        kd_report.add(v)
    if r.objects is not None:
        r.objects.delete()
    return r, verdicts


def _expect_fail(verdicts: dict[str, Verdict], check: str, *phrases: str) -> None:
    v = verdicts[check]
    assert v.status is Status.FAIL, f"{check} should fail for this wrong procedure, got {v}"
    for p in phrases:
        assert p in v.reason, f"{check} failed, but its reason lacks {p!r}: {v.reason}"


def test_restore_with_api_server_running_is_caught(kind_cluster: Cluster, tmp_path: Path, kd_report: TestResult,
                                                   kd_artifacts: Path) -> None:
    r, v = _drill(kind_cluster, tmp_path,
                  wrong(stop_apiservers=False),
                  kd_report, kd_artifacts)
    assert r.variant == "api-running"
    assert r.effect.get("etcd_cluster_id_changed"), f"the restore itself should have happened: {r.effect}"
    _expect_fail(v, "apiservers-stopped-during-restore", "kube-apiserver was running on",
                 "lived through the restore")


def test_restore_into_old_data_dir_is_caught(kind_cluster: Cluster, tmp_path: Path, kd_report: TestResult,
                                             kd_artifacts: Path) -> None:
    r, v = _drill(kind_cluster, tmp_path,
                  wrong(new_data_dir=False),
                  kd_report, kd_artifacts)
    assert r.variant == "old-data-dir"
    _expect_fail(v, "procedure", "step 'restore' failed", "--data-dir=/var/lib/etcd")
    _expect_fail(v, "restore-took-effect", "still runs the pre-restore data", "did not take effect")
    _expect_fail(v, "restored-objects", "created after the snapshot are still present")


def test_snapshot_from_another_cluster_is_caught(kind_cluster: Cluster, tmp_path: Path, kd_report: TestResult,
                                                 kd_artifacts: Path) -> None:
    foreign = foreign_backup(kind_cluster, tmp_path / "foreign")
    assert foreign.cluster != kind_cluster.name and foreign.revision > 0, foreign
    r, v = _drill(kind_cluster, tmp_path, wrong(backup=foreign), kd_report, kd_artifacts)
    try:
        assert r.variant == "foreign-snapshot"
        _expect_fail(v, "same-cluster", "uid changed from", "another cluster")
        assert v["restored-objects"].status is not Status.PASS, v["restored-objects"]
    finally:
        # Put the cluster back: its own backup, restored by the runbook.
        assert r.backup is not None, "the drill took no backup of this cluster: it cannot be healed"
        heal = RestoreProcedure(kind_cluster, r.backup)
        with heal.applied():
            pass
        kd_report.add(Verdict.ok("healed", f"cluster restored from its own backup in {heal.window.duration:.0f}s"
                                           if heal.window else "cluster restored from its own backup"))
