"""Taint a node NoSchedule: the step before maintenance that keeps new pods off a node without
touching the ones it runs (the worked example of docs/DEVELOPING.md)."""

from __future__ import annotations

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.states import node_state
from kubedrill.disrupt.base import Disruption, register

DRILL_TAINT = "kubedrill.io/drill"


@register("taint-node")
class TaintNode(Disruption):
    """`kubectl taint node N kubedrill.io/drill=maintenance:NoSchedule`; heal removes the taint."""

    def __init__(self, cluster: Cluster, node: str, key: str = DRILL_TAINT) -> None:
        super().__init__()
        self.cluster, self.node, self.key = cluster, node, key

    def healthy(self) -> tuple[bool, str]:
        state = node_state(self.cluster.core().read_node(self.node))
        return state.ready, f"{self.node} Ready={state.ready}"

    def inject(self) -> None:
        self.cluster.kubectl("taint", "node", self.node, f"{self.key}=maintenance:NoSchedule", "--overwrite")

    def verify(self) -> tuple[bool, str]:
        state = node_state(self.cluster.core().read_node(self.node))
        taint = state.tainted(self.key)
        self.effect["taint"] = str(taint) if taint else ""
        return taint is not None, f"{self.node} taints: {', '.join(map(str, state.taints)) or 'none'}"

    def heal(self) -> None:
        self.cluster.kubectl("taint", "node", self.node, f"{self.key}-", check=False)
