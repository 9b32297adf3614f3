"""The node-loss scenario must fail, for the right reason, on each broken case, and pass on a sane
one. Each case deploys its variant of the sample app on the node-loss cluster (short timers:
fixtures.node_loss) and runs the same scenario and judge as the node-loss suite, losing a worker
with node-stop (power loss):

  default-toleration   3 replicas with the cluster's default toleration (admission adds it)
                       -> capacity-slo FAIL: the default toleration is named, the Service was at
                          1 of 3 replicas, and the reason says to set tolerationSeconds or run
                          more replicas
  short-toleration     4 replicas tolerating the lost node for 2 s -> passes
  statefulset          a 4-replica StatefulSet with an emptyDir data volume
                       -> statefulset-stuck FAIL (no replacement until the node is marked out of
                          service), and the out-of-service recovery rehearsed: the replacement
                          started, the emptyDir's fate reported

After every case no worker is left stopped, paused or partitioned (the no_node_left_lost fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.meta import expect_verdict
from kubedrill.check.verdict import combine
from kubedrill.cluster.handle import Cluster
from kubedrill.scenarios.drain import LoadPlan
from kubedrill.scenarios.node_loss import (
    NodeLossExpectations,
    judge,
    node_loss_sample,
    run_node_loss,
)
from kubedrill.workload.deploy import deployed

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]

LOSS = "node-stop"
EXPECT = NodeLossExpectations(min_serving=2, max_degraded_s=30.0)
CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    # name: (node_loss_sample variant, phrases the failed verdict must contain; empty = must pass)
    "default-toleration": ({"replicas": 3, "toleration_s": None},
                           ["capacity-slo: FAIL", "(the cluster's default, added by admission)",
                            "your Service was at 1 of 3 replicas", "tolerationSeconds", "run more replicas"]),
    "short-toleration": ({"replicas": 4, "toleration_s": 2}, []),
    "statefulset": ({"replicas": 4, "toleration_s": 2, "kind": "StatefulSet", "data_volume": True},
                    ["statefulset-stuck: FAIL", "is stuck", "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"]),
}
# Phrases a case's verdict must not contain: a wrong cause is as bad as a missing one.
WRONG: dict[str, list[str]] = {
    "default-toleration": ["eviction-bound: FAIL", "node-declared-lost: FAIL"],
    "statefulset": ["eviction-bound: FAIL", "out-of-service-recovery: FAIL", "capacity-slo: FAIL"],
}


@pytest.mark.usefixtures("no_node_left_lost")
@pytest.mark.parametrize("case", list(CASES))
def test_node_loss_verdict(case: str, node_loss_cluster: Cluster, sample_image: str, tmp_path: Path) -> None:
    cluster = node_loss_cluster
    if len(cluster.workers) < 2:
        pytest.skip("the node-loss scenario needs two workers (one lost, one to move to)")
    variant, phrases = CASES[case]
    spec = node_loss_sample(sample_image, **variant)
    with deployed(cluster, spec, purpose=f"node-loss-meta-{case}", expose_service=True) as d:
        record = run_node_loss(cluster, d, LOSS, load=LoadPlan(), workdir=tmp_path / "load")
    verdicts = judge(record, EXPECT)
    verdict = combine(f"node-loss/{LOSS}", verdicts)
    if case == "statefulset":
        recovery = next(v for v in verdicts if v.check == "out-of-service-recovery")
        assert recovery.passed, f"{case}: the out-of-service recovery should start the replacement: {recovery}"
        for phrase in ("replaced on", "emptyDir data: its data stayed on", "the replacement started with an empty one"):
            assert phrase in recovery.reason, f"{case}: the recovery does not report {phrase!r}: {recovery}"
    expect_verdict(case, verdict, phrases, WRONG.get(case, []))
