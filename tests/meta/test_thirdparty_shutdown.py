"""Meta: the shutdown drill judges servers nobody here wrote as their measured ground truth says.

Each case of apps/thirdparty (nginx, Apache httpd, gunicorn, Node.js from Debian packages, in a
correct and a broken shutdown configuration) is loaded from its workload spec -- the documented
format and nothing else -- deployed through the suite's pool, terminated by pod delete under the
suite's drill, and judged by the suite's judge and default thresholds. The verdict and reasons
MUST match apps/thirdparty/workloads/expected.yaml, measured in plain Docker
(benchmarks/results/thirdparty-ground-truth.md): these apps write no lifecycle record, so every
verdict rests on what any pod leaves.

    pass          every sub-check passes
    fail          every expected reason fails; nothing else fails, except `traffic` for a case
                  without a preStop hook (requests routed to a pod that stopped serving before
                  its endpoint was removed: a real fault of those configurations, measured by
                  kubedrill and outside the Docker ground truth, which has no Service)
    sigkill_cause the SIGKILL reason says which: ignored SIGTERM, or handled it too slowly

Needs the image: `bash clusters/images/build-thirdparty.sh` (the manifests name its tag).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from fixtures.workload import keep_namespaces
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.config import SLOConfig
from kubedrill.report.model import TestResult
from kubedrill.scenarios.shutdown import Target, TargetPool, judge, run_shutdown_drill
from kubedrill.workload.spec import load_workload

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.slow]

WORKLOADS = Path(__file__).resolve().parents[2] / "apps" / "thirdparty" / "workloads"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((WORKLOADS / "expected.yaml").read_text())["cases"]
SUBCHECKS = ("sigkill", "exit-code", "grace-period", "prestop", "in-flight", "traffic")
CAUSE = "delete"
KILL_PHRASE = {"ignored-sigterm": "the process ignored SIGTERM", "slow-shutdown": "shutdown was too slow"}


def failing_subchecks(verdict: Verdict) -> set[str]:
    return {m for m in re.findall(r"([\w-]+): FAIL:", verdict.reason) if m in SUBCHECKS}


@pytest.fixture(scope="module")
def pool(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[TargetPool]:
    if cluster.provider != "kind" or not cluster.port_map:
        pytest.skip("the shutdown drill needs a kind cluster on this host (NodePorts mapped to 127.0.0.1)")
    p = TargetPool(cluster, sample_image=lambda: "", keep_namespaces=keep_namespaces(request.config))
    try:
        yield p
    finally:
        p.release()


@pytest.mark.parametrize("case", sorted(EXPECTED), ids=[f"{c}/{CAUSE}" for c in sorted(EXPECTED)])
def test_shutdown_drill_matches_thirdparty_ground_truth(case: str, cluster: Cluster, pool: TargetPool,
                                                        kd_report: TestResult) -> None:
    spec = load_workload(WORKLOADS / f"{case}.yaml")
    target = Target(case, spec=spec)
    slo = SLOConfig()
    t0 = time.monotonic()
    record = run_shutdown_drill(cluster, pool.get(target), CAUSE)
    verdicts = judge(record, target.thresholds(slo.grace_budget_ratio, slo.max_failed_requests))
    kd_report.figure("drill", round(time.monotonic() - t0, 1), "s", case)
    assert record.records, f"{case}/{CAUSE} terminated no pod: {record.disruption.effect}"
    (verdict,) = [v for v in verdicts if v.check == "shutdown"]
    kd_report.add(verdict)
    want = EXPECTED[case]
    print(f"{case}/{CAUSE}: expected {want['verdict']} {want['reasons']}; got {verdict}")
    if want["verdict"] == "pass":
        assert verdict.status is Status.PASS, f"{case}: a correct configuration must pass:\n{verdict}"
        return
    assert verdict.status is Status.FAIL, f"{case}: the verdict should FAIL for {want['reasons']}:\n{verdict}"
    failing = failing_subchecks(verdict)
    allowed = set(want["reasons"]) | (set() if spec.prestop else {"traffic"})
    assert set(want["reasons"]) <= failing <= allowed, (
        f"{case}: expected {sorted(want['reasons'])} to fail (and at most {sorted(allowed)}), got {sorted(failing)}:\n"
        f"{verdict}")
    if "sigkill_cause" in want:
        phrase = KILL_PHRASE[want["sigkill_cause"]]
        assert phrase in verdict.reason, f"{case}: the SIGKILL reason should say {phrase!r}:\n{verdict}"
