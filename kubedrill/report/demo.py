"""A made-up but realistic run, used by the report tests and by `kubedrill report --demo`.

It exercises every plot convention in series.py and every outcome, so a change to the report
can be looked at without a cluster: `python -m kubedrill report --demo -o /tmp/demo.html`.
"""

from __future__ import annotations

import random

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import Operation
from kubedrill.record import series as S
from kubedrill.report.model import TestResult


def _drain_ops(rng: random.Random, fail_during: bool) -> list[Operation]:
    """Two minutes of ~20 req/s with a drain from 40 s to 75 s (a burst of failures if asked)."""
    ops = []
    for i in range(120 * 20):
        t = i / 20 + rng.random() * 0.04
        outcome = "ok"
        if fail_during and 52 <= t < 55.5:
            outcome = "fail" if rng.random() < 0.6 else "unknown"
        ops.append(Operation("GET /", t, t + 0.01, outcome))  # type: ignore[arg-type]
    return ops


def demo_results(failing: bool = True) -> list[TestResult]:
    """Results for one run across four suites; with `failing` the drain and shutdown gates fail."""
    rng = random.Random(7)
    out: list[TestResult] = []

    smoke = TestResult("suites/smoke/test_smoke.py::test_workload_serves", suite="smoke", outcome="passed",
                       duration_s=3.2)
    smoke.add(Verdict.ok("serves", "200 OK from 3 of 3 endpoints", [Figure("p99_latency", 0.012, "s")]))
    out.append(smoke)

    ops = _drain_ops(rng, failing)
    win = [S.window(40.0, 75.0, "drain kd-worker2")]
    failed = sum(1 for o in ops if o.outcome == "fail")
    unknown = sum(1 for o in ops if o.outcome == "unknown")
    ratio = (len(ops) - failed - unknown) / len(ops)
    figs = [Figure("availability", round(ratio, 5), "ratio"), Figure("failed_requests", failed, "requests"),
            Figure("unknown_requests", unknown, "requests"), Figure("drain_time", 35.0, "s"),
            Figure("requests", len(ops), "requests")]
    drain_series = S.timeline_from_operations(ops, t0=0.0, bucket_s=1.0, windows=win)
    if failing:
        v = Verdict.fail("availability", f"{failed} requests failed and {unknown} were unanswered while draining "
                         "kd-worker2 (allowed 0); the Service kept routing to terminating pods for 3.5 s: add a "
                         "preStop sleep longer than endpoint propagation", figs, **drain_series)
    else:
        v = Verdict.ok("availability", "0 failed requests during the drain (allowed 0)", figs, **drain_series)
    drain = TestResult("suites/drain/test_drain.py::test_drain_keeps_slo[three-node]", suite="drain",
                       outcome="failed" if failing else "passed", duration_s=96.4)
    drain.add(v)
    drain.add(Verdict.ok("pdb_respected", "never fewer than 2 ready replicas (minAvailable 2)"))
    if failing:
        drain.headline = "AssertionError: availability: FAIL: 61 requests failed ..."
    out.append(drain)

    points = [S.shutdown_point(f"web-7d9c-{i}", 1.2 + i * 0.9, 10.0, 0.8) for i in range(5)]
    if failing:
        points.append(S.shutdown_point("web-7d9c-slow", 10.4, 10.0, 0.8))
        points.append(S.shutdown_point("web-7d9c-hung", None, 10.0, 0.8))
    shut = TestResult("suites/shutdown/test_shutdown.py::test_exits_within_grace", suite="shutdown",
                      outcome="failed" if failing else "passed", duration_s=41.0)
    late = [p["pod"] for p in points if p["seconds"] is None or p["seconds"] > (p["budget"] or p["grace"])]
    shut.add((Verdict.fail if failing else Verdict.ok)(
        "graceful_shutdown",
        (f"{len(late)} pods did not exit within 80% of their 10 s grace period: {', '.join(late)}"
         if failing else "all pods exited within 80% of their grace period"),
        [Figure("max_shutdown", max(p["seconds"] or 10.0 for p in points), "s"),
         Figure("grace_period", 10.0, "s")], **S.shutdown(points)))
    if failing:
        shut.artifact("artifacts/suites-shutdown-test_shutdown.py-test_exits_within_grace/", "pod logs")
    out.append(shut)

    etcd = TestResult("suites/etcd/test_etcd_faults.py::test_leader_kill[3-members]", suite="etcd",
                      outcome="passed", duration_s=58.7)
    etcd.add(Verdict.ok(
        "unavailability", "longest write outage 2.4 s (limit 10 s)", [Figure("max_unavailability", 2.4, "s")],
        **S.unavailability([S.window(12.0, 14.4, "leader killed"), S.window(40.2, 41.1, "member restarted")],
                           limit_s=10.0),
        **S.windows([S.window(11.9, 13.0, "kill leader"), S.window(40.0, 41.0, "restart member")])))
    etcd.add(Verdict.ok("elections", "2 elections, longest 1.9 s (limit 5 s)",
                        [Figure("max_election", 1.9, "s")],
                        **S.elections([S.election(12.1, 1.9, "kill etcd-0"), S.election(40.3, 0.7, "restart")],
                                      limit_s=5.0)))
    etcd.add(Verdict.ok("lost_writes", "0 of 8,412 acknowledged writes lost", [Figure("lost_writes", 0, "writes")]))
    out.append(etcd)

    out.append(TestResult("suites/upgrade/test_upgrade.py::test_rolling_upgrade", suite="upgrade", outcome="skipped",
                          headline="upgrade needs node access: provider generic (Kubernetes API only)"))
    return out
