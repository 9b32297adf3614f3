"""Meta: the shutdown drill tells the sample app's shutdown modes apart, each for its own reason.

Each case deploys the sample app in one mode on this session's cluster through the suite's own
pool (kubedrill.scenarios.shutdown.TargetPool: the one deploy path plus the lagging router), runs
the suite's drill with one cause (pod delete) and judges it with the suite's judge and default
thresholds -- the calls suites/shutdown makes, without a second pytest run. graceful
MUST pass; every broken mode MUST fail, and the failing sub-checks of its verdict MUST be exactly
the ones that mode is built to break: a verdict that fails for an unrelated reason would be a
suite bug hiding behind a red test.
"""

from __future__ import annotations

import re
import time
from typing import Iterator

import pytest

from fixtures.workload import keep_namespaces
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.config import SLOConfig
from kubedrill.report.model import TestResult
from kubedrill.scenarios.shutdown import Target, TargetPool, judge, run_shutdown_drill

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.slow]

SUBCHECKS = ("sigkill", "exit-code", "grace-period", "prestop", "in-flight", "traffic")
CAUSE = "delete"

# mode -> (failing sub-checks, a phrase the reason must contain)
EXPECTED: dict[str, tuple[frozenset[str], str]] = {
    "graceful": (frozenset(), "preStop hook ran"),
    "ignores-sigterm": (frozenset({"sigkill"}), "the process ignored SIGTERM"),
    "slow-exit": (frozenset({"sigkill"}), "shutdown was too slow"),
    "abrupt": (frozenset({"in-flight"}), "the server exits without waiting for in-flight requests"),
    "exit-nonzero": (frozenset({"exit-code"}), "exit code 1 on SIGTERM"),
    "no-prestop": (frozenset({"traffic"}), "the server closes its listener before endpoints are removed; add a preStop sleep"),
}


def failing_subchecks(verdict: Verdict) -> set[str]:
    """Sub-checks the combined shutdown verdict reports as failed ("<name>: FAIL: ..." in its reason)."""
    return {m for m in re.findall(r"([\w-]+): FAIL:", verdict.reason) if m in SUBCHECKS}


@pytest.fixture(scope="module")
def pool(cluster: Cluster, sample_image: str, request: pytest.FixtureRequest) -> Iterator[TargetPool]:
    """The suite's pool with the suite's defaults (lagging router 1 s late); one mode deployed at a time."""
    if cluster.provider != "kind" or not cluster.port_map:
        pytest.skip("the shutdown drill needs a kind cluster on this host (NodePorts mapped to 127.0.0.1)")
    p = TargetPool(cluster, sample_image=lambda: sample_image, keep_namespaces=keep_namespaces(request.config))
    try:
        yield p
    finally:
        p.release()


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_shutdown_suite_judges_sample_mode(mode: str, cluster: Cluster, pool: TargetPool,
                                           kd_report: TestResult) -> None:
    target = Target(f"sample-{mode}", sample_mode=mode)
    slo = SLOConfig()  # the suite's thresholds when the run config overrides nothing
    t0 = time.monotonic()
    record = run_shutdown_drill(cluster, pool.get(target), CAUSE)
    verdicts = judge(record, target.thresholds(slo.grace_budget_ratio, slo.max_failed_requests))
    kd_report.figure("drill", round(time.monotonic() - t0, 1), "s", mode)
    assert record.records, f"{target.id}/{CAUSE} terminated no pod: {record.disruption.effect}"
    shutdown = [v for v in verdicts if v.check == "shutdown"]
    assert len(shutdown) == 1, f"{target.id}/{CAUSE}: expected one shutdown verdict, got {[str(v) for v in verdicts]}"
    verdict = shutdown[0]
    broken, phrase = EXPECTED[mode]
    if not broken:
        assert all(v.passed for v in verdicts) and phrase in verdict.reason, \
            f"{target.id}/{CAUSE}: {'; '.join(str(v) for v in verdicts)}"
        return
    assert verdict.status is Status.FAIL, f"{mode}: the verdict should FAIL:\n{verdict}"
    assert phrase in verdict.reason, f"{mode}: the verdict should say {phrase!r}:\n{verdict}"
    assert failing_subchecks(verdict) == set(broken), (
        f"{mode}: expected only {sorted(broken)} to fail, got {sorted(failing_subchecks(verdict))}:\n{verdict}")
