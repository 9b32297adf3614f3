"""Snapshots of cluster state (nodes, pods, PodDisruptionBudgets, workloads) as plain frozen data.

Why plain data: the scheduling checks (kubedrill.check.scheduling) must be pure functions that the
unit tests feed by hand, so what they read cannot be kubernetes-client objects. A drain test takes
a snapshot before, while the node is drained, and at the end, and judges the three afterwards
(record first, judge later).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from kubedrill.cluster.handle import Cluster


@dataclass(frozen=True)
class NodeState:
    name: str
    schedulable: bool
    ready: bool


@dataclass(frozen=True)
class PodState:
    """One pod. owner_kind None means a bare pod (no controller recreates it)."""

    namespace: str
    name: str
    node: str | None
    phase: str
    ready: bool
    deleting: bool
    owner_kind: str | None
    owner_name: str | None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def serving(self) -> bool:
        """Running, ready and not being deleted: it counts as an available replica."""
        return self.phase == "Running" and self.ready and not self.deleting


@dataclass(frozen=True)
class PdbState:
    """A PodDisruptionBudget with its live status (only matchLabels selectors are understood)."""

    namespace: str
    name: str
    selector: Mapping[str, str]
    min_available: int | str | None
    max_unavailable: int | str | None
    disruptions_allowed: int
    current_healthy: int
    desired_healthy: int
    expected_pods: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, pod: PodState) -> bool:
        return (pod.namespace == self.namespace and bool(self.selector)
                and all(pod.labels.get(k) == v for k, v in self.selector.items()))

    def describe(self) -> str:
        spec = (f"minAvailable: {self.min_available}" if self.min_available is not None
                else f"maxUnavailable: {self.max_unavailable}")
        return f"{spec}; {self.current_healthy}/{self.expected_pods} healthy, disruptionsAllowed {self.disruptions_allowed}"


@dataclass(frozen=True)
class WorkloadState:
    """A Deployment or StatefulSet: how many replicas it wants and which pods are its own."""

    kind: str
    namespace: str
    name: str
    replicas: int
    selector: Mapping[str, str]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def owns(self, pod: PodState) -> bool:
        return (pod.namespace == self.namespace and bool(self.selector)
                and all(pod.labels.get(k) == v for k, v in self.selector.items()))


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic() when taken
    nodes: Mapping[str, NodeState]
    pods: tuple[PodState, ...]
    pdbs: tuple[PdbState, ...] = ()
    workloads: tuple[WorkloadState, ...] = ()

    def pods_on(self, node: str) -> list[PodState]:
        return [p for p in self.pods if p.node == node and not p.deleting]

    def pods_of(self, workload: WorkloadState) -> list[PodState]:
        return [p for p in self.pods if workload.owns(p)]

    def workload(self, namespace: str, name: str) -> WorkloadState | None:
        return next((w for w in self.workloads if w.namespace == namespace and w.name == name), None)


# --- taking one from a live cluster ------------------------------------------------------------

def _int_or_str(v: Any) -> int | str | None:
    if v is None:
        return None
    return v if isinstance(v, (int, str)) else str(v)


def _pod_state(p: Any) -> PodState:
    owners = p.metadata.owner_references or []
    ctrl = next((o for o in owners if o.controller), owners[0] if owners else None)
    conds = {c.type: c.status for c in (p.status.conditions or [])}
    return PodState(
        namespace=p.metadata.namespace, name=p.metadata.name, node=p.spec.node_name, phase=p.status.phase or "",
        ready=conds.get("Ready") == "True", deleting=p.metadata.deletion_timestamp is not None,
        owner_kind=ctrl.kind if ctrl else None, owner_name=ctrl.name if ctrl else None,
        labels=dict(p.metadata.labels or {}),
    )


def _pdb_state(b: Any) -> PdbState:
    st = b.status
    return PdbState(
        namespace=b.metadata.namespace, name=b.metadata.name,
        selector=dict((b.spec.selector.match_labels if b.spec.selector else None) or {}),
        min_available=_int_or_str(b.spec.min_available), max_unavailable=_int_or_str(b.spec.max_unavailable),
        disruptions_allowed=int(getattr(st, "disruptions_allowed", 0) or 0),
        current_healthy=int(getattr(st, "current_healthy", 0) or 0),
        desired_healthy=int(getattr(st, "desired_healthy", 0) or 0),
        expected_pods=int(getattr(st, "expected_pods", 0) or 0),
    )


def take_snapshot(cluster: Cluster, namespaces: Iterable[str] = ()) -> Snapshot:
    """Nodes and every pod of the cluster; PDBs and Deployments/StatefulSets of `namespaces`."""
    core, apps, policy = cluster.core(), cluster.apps(), cluster.policy()
    at = time.monotonic()
    nodes = {}
    for n in core.list_node(_request_timeout=30).items:
        ready = any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
        nodes[n.metadata.name] = NodeState(n.metadata.name, not bool(n.spec.unschedulable), ready)
    pods = tuple(_pod_state(p) for p in core.list_pod_for_all_namespaces(_request_timeout=30).items)
    pdbs: list[PdbState] = []
    workloads: list[WorkloadState] = []
    for ns in namespaces:
        pdbs += [_pdb_state(b) for b in policy.list_namespaced_pod_disruption_budget(ns, _request_timeout=30).items]
        for kind, items in (("Deployment", apps.list_namespaced_deployment(ns, _request_timeout=30).items),
                            ("StatefulSet", apps.list_namespaced_stateful_set(ns, _request_timeout=30).items)):
            for w in items:
                sel = dict((w.spec.selector.match_labels if w.spec.selector else None) or {})
                workloads.append(WorkloadState(kind, ns, w.metadata.name, int(w.spec.replicas or 0), sel))
    return Snapshot(at, nodes, pods, tuple(pdbs), tuple(workloads))
