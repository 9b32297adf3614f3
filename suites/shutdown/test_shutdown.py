"""Graceful shutdown: when Kubernetes stops a pod, does it finish what it was doing and exit
cleanly before the kill?

For each workload and each termination cause (pod delete, eviction, rollout restart), under
continuous traffic through the Service and with slow requests in flight on the victim, every
terminated pod MUST: run its preStop hook (when it has one we can observe), exit 0 within the
grace budget (80% of terminationGracePeriodSeconds by default) without being SIGKILLed, complete
the requests it had accepted, and cost zero failed requests. The drill is
kubedrill.scenarios.shutdown and the judgement kubedrill.check.shutdown's; this test asserts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.check.shutdown import ShutdownThresholds
from kubedrill.check.verdict import combine
from kubedrill.cluster.handle import Cluster
from kubedrill.report.model import TestResult
from kubedrill.scenarios.shutdown import Target, TargetPool, judge, run_shutdown_drill

pytestmark = [pytest.mark.conformance, pytest.mark.needs_docker]


def test_pod_shuts_down_gracefully(case: tuple[Target, str], cluster: Cluster, shutdown_pool: TargetPool,
                                   thresholds: ShutdownThresholds, kd_report: TestResult, kd_artifacts: Path) -> None:
    target, cause = case
    if target.unsupported:
        pytest.skip(target.unsupported)
    record = run_shutdown_drill(cluster, shutdown_pool.get(target), cause)
    record.dump(kd_artifacts)

    # Evidence first: the cause must have terminated pods, each seen to its end, under traffic.
    assert record.records, f"{cause} terminated no pod of {target.id}: {record.disruption.effect}"
    # Every verdict is recorded before any is asserted: the gate (and gate.allow_unknown) judges the
    # test by all of them, not by the first that did not pass.
    verdicts = [kd_report.add(v) for v in judge(record, thresholds)]
    for verdict in verdicts:
        print(f"{target.id}/{cause}: {verdict}")
    verdict = combine(f"{target.id}/{cause}", verdicts)
    assert verdict.passed, str(verdict)
