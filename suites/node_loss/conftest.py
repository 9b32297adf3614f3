"""Node-loss suite wiring: options, the cluster (fixtures.node_loss: short node-loss timers), and
the case matrix. The drill is kubedrill.scenarios.node_loss; the losses are the node-loss
disruptions of the registry (kubedrill.disrupt.node_loss).

Each test deploys its own copy of the workload (a lost worker's pods come back on the other one,
so a second drill on the same deployment would find every replica on one node), exposed on a
host-mapped NodePort, and removes it after. Test IDs are `<loss>/<workload case>`, e.g.
`node-stop/deployment-short-toleration`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubedrill.disrupt.node_loss import node_losses


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill node-loss suite")
    g.addoption("--node-loss-replicas", type=int, default=4,
                help="sample app replicas (default 4: two per worker, so losing one keeps two)")
    g.addoption("--toleration-seconds", type=int, default=2,
                help="the sample app's tolerationSeconds for unreachable/not-ready (default 2)")
    g.addoption("--min-serving", type=int, default=2, help="serving replicas the Service needs (default 2)")
    g.addoption("--max-degraded-seconds", type=float, default=30.0,
                help="how long the Service may have fewer than --min-serving (default 30)")
    g.addoption("--max-eviction-error", type=float, default=5.0,
                help="measured eviction may differ from the predicted time by this much (default 5 s)")


@dataclass(frozen=True)
class Case:
    """A workload variant the suite drills: `id` in test IDs."""

    id: str
    kind: str = "Deployment"
    toleration: str = "short"  # short: --toleration-seconds; default: the cluster's (admission adds it)

    def variant(self, config: pytest.Config) -> dict[str, Any]:
        """Keyword arguments of kubedrill.scenarios.node_loss.node_loss_sample."""
        tol = config.getoption("toleration_seconds", default=2) if self.toleration == "short" else None
        return {"replicas": config.getoption("node_loss_replicas", default=4), "toleration_s": tol, "kind": self.kind}


CASES = (Case("deployment-short-toleration"),)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`loss/case` IDs from the registry's node losses and the suite's cases."""
    if "loss" in metafunc.fixturenames and "case" in metafunc.fixturenames:
        pairs = [(loss, case) for loss in node_losses() for case in CASES]
        metafunc.parametrize(("loss", "case"), pairs, ids=[f"{loss}/{case.id}" for loss, case in pairs])
