"""A NoSchedule taint keeps new pods off its node and leaves the pods already there alone."""

from __future__ import annotations

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record.cluster import Snapshot


def check_taint_keeps_new_pods_off(before: Snapshot, after: Snapshot, node: str, key: str) -> Verdict:
    """`before`: taken before the taint; `after`: while it was on and new pods had been scheduled.
    DaemonSet pods are left out: they belong to their node by design."""
    name = "taint-keeps-new-pods-off"
    seen = after.node(node)
    if seen is None or seen.tainted(key) is None:
        return Verdict.unknown(name, f"{node} did not carry taint {key} when the pods were observed: nothing to judge")
    known = {p.key for p in before.pods}
    new = [p for p in after.pods if p.key not in known and p.owner_kind != "DaemonSet" and not p.deleting]
    if not new:
        return Verdict.unknown(name, f"no pod was created while {node} was tainted, so the taint was not exercised")
    landed = [p.key for p in new if p.node == node]
    stayed = [p.key for p in before.pods_on(node) if p.key in {q.key for q in after.pods_on(node)}]
    figures = [Figure("new_pods", len(new), "pods"), Figure("new_pods_on_tainted_node", len(landed), "pods", node)]
    if landed:
        return Verdict.fail(name, f"{', '.join(landed)} scheduled onto {node} despite its NoSchedule taint {key}",
                            figures)
    return Verdict.ok(name, f"{len(new)} new pod(s) went elsewhere; {len(stayed)} pod(s) already on {node} stayed",
                      figures)
