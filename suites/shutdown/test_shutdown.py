"""Graceful shutdown: when Kubernetes stops a pod, does it finish what it was doing and exit
cleanly before the kill?

For each workload and each termination cause (pod delete, eviction, rollout restart), under
continuous traffic through the Service and with slow requests in flight on the victim, every
terminated pod MUST: run its preStop hook (when it has one we can observe), exit 0 within the
grace budget (80% of terminationGracePeriodSeconds by default) without being SIGKILLed, complete
the requests it had accepted, and cost zero failed requests. The judgement is
kubedrill.check.shutdown's; this test records, asks, and reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.check.shutdown import ShutdownThresholds, check_shutdowns
from kubedrill.check.verdict import Verdict, safe_check
from kubedrill.cluster.handle import Cluster
from kubedrill.check.shutdown import termination_figures
from kubedrill.report.model import TestResult
from shutdown_drill import Target, TargetPool, run_drill

pytestmark = [pytest.mark.conformance, pytest.mark.needs_docker]


def test_pod_shuts_down_gracefully(case: tuple[Target, str], cluster: Cluster, shutdown_pool: TargetPool,
                                   thresholds: ShutdownThresholds, kd_report: TestResult, kd_artifacts: Path) -> None:
    target, cause = case
    if target.unsupported:
        pytest.skip(target.unsupported)
    deployed = shutdown_pool.get(target)
    result = run_drill(cluster, deployed, cause)
    result.dump(kd_artifacts)

    # Evidence first: the cause must have terminated pods, each seen to its end, under traffic.
    assert result.records, f"{cause} terminated no pod of {target.id}: {result.disruption.effect}"
    verdict: Verdict = kd_report.add(safe_check("shutdown", check_shutdowns, result.records, thresholds))
    for rec, ev in zip(result.records, result.evidence):
        for f in termination_figures(rec, ev, thresholds.settle_seconds):
            kd_report.figure(f.name, f.value, f.unit, f.detail)
    kd_report.figure("requests", result.traffic_requests, "requests", result.traffic)
    kd_report.figure("requests_failed", result.traffic_failed, "requests", "whole drill, all pods")
    kd_report.figure("slow_requests_started", result.slow_started, "requests", "; ".join(result.notes))
    print(f"{target.id}/{cause}: {verdict}")
    assert verdict.passed, f"{target.id}/{cause}: {verdict}"
