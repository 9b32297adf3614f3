"""Kubernetes client objects turned into kubedrill's plain records (kubedrill.record.cluster).

The one place that decides what "node Ready", "pod ready" or "a PDB's budget" means when read from
the API, so every observer, wait and disruption agrees.
"""

from __future__ import annotations

from typing import Any

from kubedrill.record.cluster import CONTROL_PLANE, WORKER, NodeState, PdbState, PodState, Taint

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def node_conditions(node: Any) -> dict[str, str]:
    return {c.type: c.status for c in (node.status.conditions or [])}


def node_ready(node: Any) -> bool:
    """The node's Ready condition is True (Unknown -- the node stopped reporting -- is not ready)."""
    return node_conditions(node).get("Ready") == "True"


def _wall(ts: Any) -> float | None:
    return None if ts is None or not hasattr(ts, "timestamp") else float(ts.timestamp())


def node_state(node: Any) -> NodeState:
    labels = node.metadata.labels or {}
    info = node.status.node_info
    return NodeState(
        name=node.metadata.name, ready=node_ready(node), schedulable=not bool(node.spec.unschedulable),
        role=CONTROL_PLANE if CONTROL_PLANE_LABEL in labels else WORKER,
        kubelet=str(info.kubelet_version) if info is not None else "",
        taints=tuple(Taint(t.key, t.effect, t.value or "", _wall(t.time_added)) for t in (node.spec.taints or [])),
        conditions=node_conditions(node))


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def pod_unschedulable(pod: Any) -> str:
    """The scheduler's reason a pod runs nowhere (its PodScheduled=False message), else ""."""
    for c in pod.status.conditions or []:
        if c.type == "PodScheduled" and c.status == "False":
            return str(c.message or c.reason or "not scheduled")
    return ""


def pod_state(pod: Any) -> PodState:
    owners = pod.metadata.owner_references or []
    ctrl = next((o for o in owners if o.controller), owners[0] if owners else None)
    statuses = pod.status.container_statuses or []
    return PodState(
        namespace=pod.metadata.namespace, name=pod.metadata.name, node=pod.spec.node_name, phase=pod.status.phase or "",
        ready=pod_ready(pod), deleting=pod.metadata.deletion_timestamp is not None,
        owner_kind=ctrl.kind if ctrl else None, owner_name=ctrl.name if ctrl else None,
        labels=dict(pod.metadata.labels or {}), restarts=sum(int(c.restart_count or 0) for c in statuses),
        unschedulable=pod_unschedulable(pod),
        empty_dirs=tuple(v.name for v in (getattr(pod.spec, "volumes", None) or []) if getattr(v, "empty_dir", None) is not None))


def _int_or_str(v: Any) -> int | str | None:
    if v is None:
        return None
    return v if isinstance(v, (int, str)) else str(v)


def pdb_state(pdb: Any) -> PdbState:
    st = pdb.status
    return PdbState(
        namespace=pdb.metadata.namespace, name=pdb.metadata.name,
        selector=dict((pdb.spec.selector.match_labels if pdb.spec.selector else None) or {}),
        min_available=_int_or_str(pdb.spec.min_available), max_unavailable=_int_or_str(pdb.spec.max_unavailable),
        disruptions_allowed=int(getattr(st, "disruptions_allowed", 0) or 0),
        current_healthy=int(getattr(st, "current_healthy", 0) or 0),
        desired_healthy=int(getattr(st, "desired_healthy", 0) or 0),
        expected_pods=int(getattr(st, "expected_pods", 0) or 0),
    )
