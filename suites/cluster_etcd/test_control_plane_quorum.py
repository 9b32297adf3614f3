"""Control-plane quorum on the HA config: 3 control planes (stacked etcd) behind kind's LB.

The drills are `kubedrill.scenarios.control_plane_quorum` (two recorded API probers through the
LB while control-plane node containers are `docker stop`ped):
  * one down: the API stays readable and writable through the LB (the outage is measured);
  * two down: etcd has no quorum; every write is refused or times out within the client timeout,
    and one write with a long timeout shows the API server itself gives up in bounded time;
  * both back: etcd has 3 healthy members with equal `endpoint hashkv`, the API is writable;
  * the etcd leader's node stopped: re-election measured from etcd and from the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from kubedrill.check.verdict import Figure, Verdict, combine
from kubedrill.cluster.handle import Cluster
from kubedrill.report.model import TestResult
from kubedrill.scenarios.control_plane_quorum import (DrillRecord, judge_quorum, judge_stop, quorum_figures,
                                                      run_quorum_drill, run_stop_drill, stop_figures)
from kubedrill.workload import apply

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]


@pytest.fixture(scope="module")
def probe_ns(ha_cluster: Cluster) -> Iterator[str]:
    """The namespace the probers write their ConfigMaps in."""
    ns = apply.unique_namespace("cp-quorum")
    apply.create_namespace(ha_cluster, ns)
    yield ns
    apply.delete_namespace(ha_cluster, ns, wait=False)


def _finish(kd_report: TestResult, kd_artifacts: Path, r: DrillRecord, verdicts: list[Verdict],
            figures: list[Figure]) -> None:
    for f in figures:
        kd_report.figure(f.name, f.value, f.unit, f.detail)
    for v in verdicts:
        kd_report.add(v)
    r.dump(kd_artifacts / "record.json")  # kept only if this test fails
    verdict = combine("control-plane-quorum", verdicts)
    assert verdict.passed, str(verdict)


def test_one_down_writable_two_down_refused_then_healed(ha_cluster: Cluster, probe_ns: str, kd_report: TestResult,
                                                        kd_artifacts: Path) -> None:
    r = run_quorum_drill(ha_cluster, probe_ns)
    _finish(kd_report, kd_artifacts, r, judge_quorum(r), quorum_figures(r))


def test_leader_node_stop_reelection_seen_from_api(ha_cluster: Cluster, probe_ns: str, kd_report: TestResult,
                                                   kd_artifacts: Path) -> None:
    r = run_stop_drill(ha_cluster, probe_ns, stop_leader=True)
    _finish(kd_report, kd_artifacts, r, judge_stop(r), stop_figures(r))
