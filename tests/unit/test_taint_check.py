"""The taint checker (the worked example of docs/DEVELOPING.md) on hand-made snapshots."""

from __future__ import annotations

from kubedrill.check.taint import check_taint_keeps_new_pods_off
from kubedrill.check.verdict import Status
from kubedrill.record.cluster import NodeState, PodState, Snapshot, Taint

KEY = "kubedrill.io/drill"


def snap(pods: dict[str, str], tainted: bool = True) -> Snapshot:
    nodes = (NodeState("w1", ready=True, taints=(Taint(KEY, "NoSchedule", "maintenance"),) if tainted else ()),
             NodeState("w2", ready=True))
    return Snapshot(0.0, nodes, tuple(PodState("ns", name, node, "Running", True, owner_kind="ReplicaSet")
                                      for name, node in pods.items()))


BEFORE = snap({"a": "w1", "b": "w2"}, tainted=False)


def test_new_pods_elsewhere_pass() -> None:
    v = check_taint_keeps_new_pods_off(BEFORE, snap({"a": "w1", "b": "w2", "c": "w2", "d": "w2"}), "w1", KEY)
    assert v.status is Status.PASS and "2 new pod(s) went elsewhere; 1 pod(s) already on w1 stayed" in v.reason


def test_a_new_pod_on_the_tainted_node_fails() -> None:
    v = check_taint_keeps_new_pods_off(BEFORE, snap({"a": "w1", "b": "w2", "c": "w1"}), "w1", KEY)
    assert v.status is Status.FAIL and "ns/c scheduled onto w1" in v.reason


def test_no_taint_or_no_new_pod_is_unknown() -> None:
    untainted = check_taint_keeps_new_pods_off(BEFORE, snap({"a": "w1", "c": "w2"}, tainted=False), "w1", KEY)
    assert untainted.status is Status.UNKNOWN and "did not carry taint" in untainted.reason
    idle = check_taint_keeps_new_pods_off(BEFORE, snap({"a": "w1", "b": "w2"}), "w1", KEY)
    assert idle.status is Status.UNKNOWN and "no pod was created" in idle.reason
