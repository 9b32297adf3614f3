"""Preflight of the workload's manifests (`--preflight-manifests`, default the sample app):
what the target version refuses or warns about, what blocks or hurts a drain, what cuts a shutdown short.

Every finding becomes a verdict in results.json with the object, its file:line and the fix; errors
fail the test, warnings are reported (`--preflight-fail-on warning` makes them fail too).
"""

from __future__ import annotations

from typing import Any

import pytest

from kubedrill.check import preflight as P
from kubedrill.preflight.run import Report
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.conformance]


def _record(kd_report: TestResult, findings: list[P.Finding], check: str, checked: int, what: str,
            fail_on: str) -> None:
    for f in findings:
        kd_report.add(f.verdict(fail_on))
    summary = kd_report.add(P.summary_verdict(check, findings, checked, what, fail_on))
    assert summary.passed, str(summary)


def test_target_api_server_accepts_every_object(preflight_report: Report, preflight_options: Any,
                                                kd_report: TestResult, target: str) -> None:
    run = preflight_report.targets[target]
    kd_report.figure("apiserver_start", round(run.start_s, 2), "s", f"etcd + kube-apiserver {target} to /readyz")
    kd_report.figure("dry_run_all_objects", round(run.check_s, 2), "s", f"{len(run.results)} objects")
    _record(kd_report, preflight_report.api_findings(target), f"preflight/api {target}",
            len(preflight_report.manifests), f"objects sent to kube-apiserver {target}", preflight_options.fail_on)


def test_drain_safety(preflight_report: Report, preflight_options: Any, kd_report: TestResult) -> None:
    n = sum(1 for m in preflight_report.manifests if m.ref.kind in (*P.CONTROLLERS, "Pod", "PodDisruptionBudget"))
    _record(kd_report, preflight_report.drain, "preflight/drain", n, "workloads, pods and PDBs",
            preflight_options.fail_on)


def test_shutdown_safety(preflight_report: Report, preflight_options: Any, kd_report: TestResult) -> None:
    n = sum(1 for m in preflight_report.manifests if P.pod_template(m) is not None)
    _record(kd_report, preflight_report.shutdown, "preflight/shutdown", n, "pod templates",
            preflight_options.fail_on)

