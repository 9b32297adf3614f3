"""Drain: node maintenance under locust load keeps the workload available.

For each workload and node operation of the disruption registry, steady locust load goes to the
workload's Service through the control-plane node's NodePort (workers get drained and rebooted),
then one maintenance operation runs with real kubectl against a real kind cluster:

  cordon          cordon the busiest worker, hold, uncordon
  drain           drain it (--ignore-daemonsets --delete-emptydir-data), uncordon
  reboot          OS-upgrade rehearsal: drain, stop the node, 5 s down, start it, wait Ready, uncordon
  rolling-drain   every worker in turn: drain, work on it, uncordon, wait for the workload

Then, from the record (kubedrill.scenarios.drain.judge): availability (SLO; zero failed requests
for the bundled app, the run config's slo.max_failed_requests for a user workload; longest outage;
p99 during vs before), scheduling (cordon leaves pods alone, evicted pods run elsewhere, DaemonSets
stay, every node schedulable at the end), PodDisruptionBudgets (a blocked drain is named with its
cause: a budget allowing no disruption, or a replacement the scheduler could not place and why),
single replica without a PDB (maintenance risk), pods without a controller (block the drain unless
--allow-force), local data in emptyDir, shutdown ordering (SIGTERM after traffic left the pod;
UNKNOWN where responses do not name their pod) and durations (each drain, each node's round trip,
the whole pass). Every workload of the run config is drilled, as a Deployment or a StatefulSet.
An UNKNOWN verdict fails the test, and the report shows it as unknown, not as a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kubedrill.check.verdict import combine
from kubedrill.cluster.handle import Cluster
from kubedrill.report.model import TestResult
from kubedrill.scenarios.drain import MaintenanceExpectations, judge, load_figures, run_maintenance
from kubedrill.workload.deploy import Deployed

if TYPE_CHECKING:
    from suites.drain.conftest import DrainOptions

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive]


@pytest.mark.disruptive
def test_node_maintenance(cluster: Cluster, app: Deployed, operation: str, drain_opts: DrainOptions,
                          expectations: MaintenanceExpectations, kd_report: TestResult, kd_artifacts: Path,
                          load_dir: Path) -> None:
    record = run_maintenance(cluster, app, operation, drain_opts.settings, drain_opts.load, workdir=load_dir)
    record.dump(kd_artifacts)
    for f in load_figures(record):
        kd_report.figure(f.name, f.value, f.unit, f.detail)
    verdicts = [kd_report.add(v) for v in judge(record, expectations)]
    verdict = combine(f"drain/{operation}", verdicts)
    assert verdict.passed, str(verdict)
