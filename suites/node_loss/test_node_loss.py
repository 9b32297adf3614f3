"""Node loss: a worker lost without a drain, under locust load; the eviction timeline against the
bound predicted from the cluster's own settings.

For each node loss of the disruption registry and each workload case, steady locust load goes to
the workload's Service through the control-plane node's NodePort, then a worker -- the one running
most of its serving pods -- is lost with real Docker and iptables on a real kind cluster:

  node-stop       the node container is killed (power loss), started again at the end
  node-freeze     the node container is paused (a hung node), unpaused at the end
  node-partition  the node's traffic to the API server is dropped inside its network namespace

Then, from the record (kubedrill.scenarios.node_loss.judge): the node declared lost (Ready Unknown,
unreachable:NoExecute taint) within the window predicted from its last lease renewal and
--node-monitor-grace-period; each of its pods evicted within --max-eviction-error of its predicted
time (+ tolerationSeconds); the Service's serving replicas against the SLO (--min-serving,
--max-degraded-seconds), with the toleration or replica count to change when it fails; and the
traffic outage against the moment the endpoints dropped the lost pods. The timeline is plotted in
the report. No worker is left stopped, paused or partitioned (fixtures.node_loss).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kubedrill.check.verdict import combine
from kubedrill.cluster.handle import Cluster
from kubedrill.report.model import TestResult
from kubedrill.scenarios.drain import LoadPlan
from kubedrill.scenarios.node_loss import NodeLossExpectations, judge, node_loss_sample, run_node_loss
from kubedrill.workload.deploy import deployed

if TYPE_CHECKING:
    from suites.node_loss.conftest import Case

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive]


@pytest.mark.usefixtures("no_node_left_lost")
def test_node_loss(node_loss_cluster: Cluster, loss: str, case: Case, sample_image: str, kd_report: TestResult,
                   kd_artifacts: Path, tmp_path: Path, pytestconfig: pytest.Config) -> None:
    cluster = node_loss_cluster
    if len(cluster.workers) < 2:
        pytest.skip(f"losing a worker needs another to move pods to; {cluster.name} has {cluster.workers}")
    spec = node_loss_sample(sample_image, **case.variant(pytestconfig))
    expect = NodeLossExpectations(min_serving=pytestconfig.getoption("min_serving"),
                                  max_degraded_s=pytestconfig.getoption("max_degraded_seconds"),
                                  max_eviction_error_s=pytestconfig.getoption("max_eviction_error"))
    with deployed(cluster, spec, purpose=f"node-loss-{loss}", expose_service=True) as app:
        record = run_node_loss(cluster, app, loss, load=LoadPlan(), workdir=tmp_path / "load")
    record.dump(kd_artifacts)
    kd_report.figure("node_monitor_grace_period", record.timeline.settings.grace_s, "s",
                     record.timeline.settings.source)
    verdicts = [kd_report.add(v) for v in judge(record, expect)]
    verdict = combine(f"node-loss/{loss}", verdicts)
    assert verdict.passed, str(verdict)
