"""Scheduling checks for node maintenance: did cordon and drain move exactly what they should?

Pure functions over snapshots (kubedrill.record.cluster) and drain records
(kubedrill.record.maintenance.NodePass), each returning a Verdict:

  check_cordon           a cordoned node keeps its pods and takes no new ones
  check_rescheduled      the drained node's workload pods run again elsewhere, all replicas serving
  check_daemonsets_stay  DaemonSet pods (kube-proxy, CNI) stay on the drained node
  check_schedulable      every node is schedulable again at the end
  check_pdbs             a drain blocked by budget refusals is named with its cause: a budget that
                         allows no disruption, or a replacement the scheduler could place nowhere
  check_single_replica   one replica and no PDB: "maintenance risk" (a drain takes it offline)
  check_bare_pods        a pod without a controller blocks the drain unless --force was allowed
  check_local_data       evicted pods lose their emptyDir data (a StatefulSet's pods: FAIL)

Evidence first: a check whose precondition did not hold (no pod on the drained node, no drain
completed) says UNKNOWN with what was missing, never PASS.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record.cluster import PdbState, PodState, SchedulingFailure, Snapshot, WorkloadState
from kubedrill.record.maintenance import NodePass


def _names(pods: Sequence[PodState]) -> str:
    return ", ".join(sorted(p.key for p in pods)) or "none"


# Phrases of the scheduler's FailedScheduling / PodScheduled=False message -> the cause a reader fixes.
_SCHEDULER_CAUSES: tuple[tuple[str, str], ...] = (
    ("didn't match Pod's node affinity/selector", "node selector or node affinity"),
    ("node(s) didn't match node selector", "node selector or node affinity"),
    ("untolerated taint", "taints"),
    ("had taint", "taints"),
    ("Insufficient", "resources"),
    ("Too many pods", "resources"),
    ("didn't match pod anti-affinity rules", "pod anti-affinity"),
    ("didn't satisfy existing pods anti-affinity rules", "pod anti-affinity"),
    ("didn't match pod affinity rules", "pod affinity"),
    ("didn't match pod topology spread constraints", "topology spread constraints"),
    ("volume node affinity conflict", "volumes bound to the node"),
    ("unbound immediate PersistentVolumeClaims", "volumes bound to the node"),
    ("were unschedulable", "cordoned nodes"),
)


def scheduling_causes(message: str) -> list[str]:
    """What kept the scheduler from placing a pod, from its message ("0/3 nodes are available: 1
    node(s) didn't match Pod's node affinity/selector, ..."), most specific first; cordoned nodes
    last since a drain cordons one by design."""
    found: list[str] = []
    for phrase, cause in _SCHEDULER_CAUSES:
        if phrase in message and cause not in found:
            found.append(cause)
    return found or ["the scheduler's message names no known cause"]


def _selected(selector: Mapping[str, str], namespace: str, f: SchedulingFailure) -> bool:
    """A budget's selector covers the failed pod (its labels unknown: any pod of the namespace)."""
    if f.namespace != namespace:
        return False
    return not f.labels or all(f.labels.get(k) == v for k, v in selector.items())


def _unscheduled(failures: Sequence[SchedulingFailure]) -> str:
    """'pod P could not be scheduled (node selector or node affinity): <message>' per pod, latest message."""
    latest: dict[str, SchedulingFailure] = {}
    for f in failures:
        latest[f.key] = f
    return "; ".join(f"{k} could not be scheduled ({', '.join(scheduling_causes(f.message))}): {f.message.strip()}"
                     for k, f in sorted(latest.items()))


def check_cordon(before: Snapshot, during: Snapshot, node: str) -> Verdict:
    """While cordoned: the node is unschedulable, and the pods that ran on it still run there."""
    check = "cordon"
    state = during.node(node)
    if state is None:
        return Verdict.unknown(check, f"node {node} is missing from the snapshot taken while it was cordoned")
    if state.schedulable:
        return Verdict.fail(check, f"node {node} was still schedulable while cordoned: `kubectl cordon` did not take effect")
    was = {p.key for p in before.pods_on(node)}
    now = {p.key for p in during.pods_on(node)}
    gone, new = sorted(was - now), sorted(now - was)
    figs = [Figure("pods_on_cordoned_node", len(now), "pods", node)]
    if gone:
        return Verdict.fail(check, f"cordon of {node} must not touch running pods, but {', '.join(gone)} left it", figs)
    if new:
        return Verdict.fail(check, f"cordoned node {node} got new pods: {', '.join(new)}", figs)
    return Verdict.ok(check, f"cordoned {node} kept its {len(was)} pod(s) and took no new ones", figs)


def check_rescheduled(before: Snapshot, drained: Snapshot | None, node: str, workload: WorkloadState) -> Verdict:
    """Pods of `workload` evicted from `node` were replaced elsewhere: all replicas serve, none on `node`."""
    check = f"rescheduled[{node}]"
    evicted = [p for p in before.pods_of(workload) if p.node == node and p.serving]
    if not evicted:
        return Verdict.unknown(check, f"no pod of {workload.key} ran on {node} before the drain, so the drain proved nothing "
                                      "about rescheduling; drain a node that runs the workload")
    if drained is None:
        return Verdict.unknown(check, f"the drain of {node} did not complete, so where {_names(evicted)} went was not recorded")
    mine = drained.pods_of(workload)
    left = [p for p in mine if p.node == node and not p.deleting]
    serving = [p for p in mine if p.serving]
    elsewhere = sorted({p.node or "?" for p in serving if p.node != node})
    figs = [Figure("pods_evicted", len(evicted), "pods", node),
            Figure("replicas_serving_while_drained", len(serving), "pods", f"want {workload.replicas}")]
    if left:
        return Verdict.fail(check, f"{_names(left)} still on drained node {node}", figs)
    if len(serving) < workload.replicas:
        pending = [p for p in mine if p.unschedulable]
        why = ("; ".join(f"{p.key} could not be scheduled ({', '.join(scheduling_causes(p.unschedulable))}): "
                         f"{p.unschedulable.strip()}" for p in pending)
               or "no pod was unschedulable: look at readiness probes and image pulls of the replacements")
        return Verdict.fail(check, f"only {len(serving)}/{workload.replicas} replicas of {workload.key} were serving while "
                                   f"{node} was drained (evicted: {_names(evicted)}); the others did not get scheduled or "
                                   f"ready elsewhere: {why}", figs)
    return Verdict.ok(check, f"{len(evicted)} evicted pod(s) of {workload.key} replaced; {len(serving)}/{workload.replicas} "
                             f"replicas serving on {', '.join(elsewhere)}", figs)


def check_daemonsets_stay(before: Snapshot, drained: Snapshot | None, node: str) -> Verdict:
    """`--ignore-daemonsets` leaves DaemonSet pods in place: every DaemonSet on `node` before is still there."""
    check = f"daemonsets[{node}]"
    ds_before = {p.owner_name for p in before.pods_on(node) if p.owner_kind == "DaemonSet"}
    if not ds_before:
        return Verdict.unknown(check, f"no DaemonSet pod ran on {node} before the drain; nothing to check")
    if drained is None:
        return Verdict.unknown(check, f"the drain of {node} did not complete")
    ds_after = {p.owner_name for p in drained.pods_on(node) if p.owner_kind == "DaemonSet"}
    missing = sorted(str(d) for d in ds_before - ds_after)
    if missing:
        return Verdict.fail(check, f"DaemonSet pods of {', '.join(missing)} left drained node {node}: the node lost its "
                                   "networking/agents; drain must run with --ignore-daemonsets and must not delete them")
    return Verdict.ok(check, f"DaemonSet pods ({', '.join(sorted(str(d) for d in ds_before))}) stayed on {node}")


def check_schedulable(final: Snapshot, nodes: Sequence[str]) -> Verdict:
    """No node is left cordoned after maintenance."""
    check = "schedulable-at-end"
    seen = {n.name: n for n in final.nodes}
    missing = [n for n in nodes if n not in seen]
    cordoned = [n for n in nodes if n in seen and not seen[n].schedulable]
    not_ready = [n for n in nodes if n in seen and not seen[n].ready]
    if missing:
        return Verdict.fail(check, f"node(s) {', '.join(missing)} are gone from the cluster after maintenance")
    if cordoned:
        return Verdict.fail(check, f"node(s) {', '.join(cordoned)} left cordoned (SchedulingDisabled) after maintenance; "
                                   f"run `kubectl uncordon {' '.join(cordoned)}`")
    if not_ready:
        return Verdict.fail(check, f"node(s) {', '.join(not_ready)} not Ready after maintenance")
    return Verdict.ok(check, f"{', '.join(nodes)} schedulable and Ready at the end")


def _pdbs_for(pods: Sequence[str], snapshot: Snapshot) -> dict[str, list[PdbState]]:
    by_key = {p.key: p for p in snapshot.pods}
    out: dict[str, list[PdbState]] = {}
    for key in pods:
        pod = by_key.get(key)
        out[key] = [b for b in snapshot.pdbs if pod is not None and b.matches(pod)]
    return out


def _zero_budget(b: PdbState) -> bool:
    """Allows no eviction even with every pod healthy: no drain of a node with its pods can finish."""
    return b.disruptions_allowed == 0 and b.expected_pods > 0 and b.current_healthy >= b.expected_pods


def check_pdbs(before: Snapshot, passes: Sequence[NodePass], timeout_s: float,
               failures: Sequence[SchedulingFailure] = ()) -> Verdict:
    """PDB behaviour: refusals that blocked a drain until its timeout are named with the budget and
    with their cause.

    The cause decides the fix. A budget that allowed no disruption before the drain is the cause
    (allow one). A budget that allowed one is not: an eviction used it, and the replacement never
    became healthy, so the budget stayed exhausted. When the scheduler could place that
    replacement nowhere (`failures`: FailedScheduling events during the node's pass), its reason
    (node selector, affinity, taints, resources) is named; otherwise the replacement was scheduled
    but not ready in time. A refusal that only delayed a drain is the PDB working as intended and
    passes. A budget that allows no disruption with all pods healthy fails even if no drain hit it
    yet: the next maintenance of a node running its pods will.
    """
    check = "pdb"
    refusals = sum(p.log.pdb_refusals for p in passes if p.log is not None)
    figs = [Figure("pdb_eviction_refusals", refusals, "refusals", "kubectl retried these evictions")]
    problems: list[str] = []
    named: set[str] = set()
    for p in passes:
        if p.log is None or not p.drain_failed or not p.log.pdb_refused:
            continue
        by_pod = _pdbs_for(p.log.pdb_refused, before)
        budgets: dict[str, tuple[PdbState, list[str]]] = {}
        unmatched = []
        for pod, pdbs in by_pod.items():
            if not pdbs:
                unmatched.append(pod)
            for b in pdbs:
                budgets.setdefault(b.key, (b, []))[1].append(pod)
        what = "; ".join(f"PodDisruptionBudget {k} ({b.describe()}) refused eviction of {', '.join(sorted(ps))}"
                         for k, (b, ps) in sorted(budgets.items()))
        if unmatched:
            what += ("; " if what else "") + f"a PodDisruptionBudget not in the snapshot refused {', '.join(unmatched)}"
        named.update(budgets)
        timed = "timed out" if p.log.timed_out else "failed"
        head = (f"drain of {p.node} {timed} after {p.drain_s or 0:.0f} s (--timeout={timeout_s:g}s): {what} "
                f"({p.log.pdb_refusals} refusals)")
        end = p.end if p.end is not None else (p.drained_at if p.drained_at is not None else p.start + timeout_s)
        stuck = [f for f in failures if f.during(p.start, end)
                 and any(_selected(b.selector, b.namespace, f) for b, _ in budgets.values())]
        if budgets and all(_zero_budget(b) for b, _ in budgets.values()):
            problems.append(f"{head}; a budget that allows no disruption blocks every drain of a node running its "
                            "pods: allow one (maxUnavailable: 1, or minAvailable below the replica count)")
        elif stuck:
            allowed = ", ".join(f"{k} allowed {b.disruptions_allowed}" for k, (b, _) in sorted(budgets.items()))
            problems.append(f"{head}; the budget is not the cause ({allowed} before the drain): an evicted pod's "
                            f"replacement could not be scheduled on any other node, so the budget stayed exhausted: "
                            f"{_unscheduled(stuck)}. Let the workload's pods run on more than one node (relax the "
                            "nodeSelector or affinity, tolerate the taints, or free resources)")
        elif budgets:
            problems.append(f"{head}; the budget allowed a disruption before the drain, but the replacement of the "
                            "evicted pod did not become healthy before the timeout (no FailedScheduling was recorded): "
                            "look at the replacements' readiness probes and image pulls, or raise --drain-timeout")
        else:
            problems.append(head)
    for b in before.pdbs:
        if b.key not in named and _zero_budget(b):
            problems.append(f"PodDisruptionBudget {b.key} ({b.describe()}) allows no disruption even with every pod "
                            "healthy: any drain of a node running its pods will block until it times out")
    if problems:
        return Verdict.fail(check, "; ".join(problems), figs)
    if refusals:
        return Verdict.ok(check, f"PodDisruptionBudgets held back {refusals} eviction(s) until replacements were ready, "
                                 "and every drain finished", figs)
    return Verdict.ok(check, f"no eviction was refused ({len(before.pdbs)} PodDisruptionBudget(s) in scope)", figs)


def check_single_replica(before: Snapshot, namespace: str) -> Verdict:
    """A workload with one replica and no PDB is a maintenance risk: a drain takes it offline."""
    check = "maintenance-risk"
    workloads = [w for w in before.workloads if w.namespace == namespace]
    if not workloads:
        return Verdict.unknown(check, f"no Deployment or StatefulSet found in {namespace}")
    risky, unguarded = [], []
    for w in workloads:
        pods = before.pods_of(w)
        covered = any(b.matches(p) for b in before.pdbs for p in pods)
        if w.replicas <= 1 and not covered:
            risky.append(w)
        elif not covered:
            unguarded.append(w)
    if risky:
        return Verdict.fail(check, "maintenance risk: " + "; ".join(
            f"{w.key} runs {w.replicas} replica and no PodDisruptionBudget covers it, so draining its node takes it "
            "offline until a replacement is scheduled and ready" for w in risky)
            + ": run at least 2 replicas spread over nodes, with a PodDisruptionBudget (minAvailable: 1)")
    note = (f"; no PodDisruptionBudget for {', '.join(w.key for w in unguarded)}: a drain may evict all its replicas "
            "on one node at once" if unguarded else "")
    return Verdict.ok(check, f"{len(workloads)} workload(s) have more than one replica or a PodDisruptionBudget{note}")


def check_bare_pods(passes: Sequence[NodePass], force_allowed: bool) -> Verdict:
    """Pods without a controller: kubectl drain refuses them without --force (they would be gone
    for good); with --force allowed, deleting them is reported, since nothing recreates them."""
    check = "bare-pods"
    blocking = [(p.node, pod) for p in passes if p.log is not None for pod in p.log.bare_blocking]
    deleted = [(p.node, pod) for p in passes if p.log is not None for pod in p.log.bare_deleted]
    figs = [Figure("bare_pods_deleted", len(deleted), "pods")]
    if blocking:
        return Verdict.fail(check, "drain blocked by pods that declare no controller: "
                            + ", ".join(f"{pod} on {node}" for node, pod in blocking)
                            + "; draining would delete them and nothing would recreate them. Run them under a "
                              "controller (Deployment, StatefulSet, Job), or accept losing them with --allow-force "
                              "(kubectl drain --force)", figs)
    if deleted:
        return Verdict.ok(check, f"--force allowed: deleted {len(deleted)} pod(s) without a controller "
                                 f"({', '.join(pod for _, pod in deleted)}); they are not recreated", figs)
    note = " (--force allowed but not needed)" if force_allowed else ""
    return Verdict.ok(check, f"no pod without a controller was in the way{note}", figs)


def check_local_data(passes: Sequence[NodePass], before: Snapshot, namespace: str) -> Verdict:
    """Pods of `namespace` a drain evicted while they kept emptyDir volumes: `kubectl drain
    --delete-emptydir-data` deletes that data with the pod. A StatefulSet's pod exists to keep its
    state, so losing it FAILs; for other pods (caches, scratch space) it is reported."""
    check = "local-data"
    lost: list[PodState] = []
    drained = 0
    for p in passes:
        if p.log is None:
            continue
        drained += 1
        evicted = set(p.log.evicted) | {e.rsplit("/", 1)[-1] for e in p.log.evicting}
        lost += [q for q in (p.before or before).pods_on(p.node)
                 if q.namespace == namespace and q.empty_dirs and q.name in evicted]
    if not drained:
        return Verdict.unknown(check, "no drain ran, so no pod could lose local data")
    figs = [Figure("emptydir_pods_evicted", len(lost), "pods")]
    what = "; ".join(f"{q.key} ({', '.join(q.empty_dirs)})" for q in lost)
    stateful = [q for q in lost if q.owner_kind == "StatefulSet"]
    if stateful:
        return Verdict.fail(check, f"local data in emptyDir lost: the drain evicted StatefulSet pod(s) "
                                   f"{', '.join(q.key for q in stateful)} and deleted their emptyDir volume(s) with them "
                                   f"({what}); keep state that must survive a node's maintenance in a "
                                   "PersistentVolumeClaim (volumeClaimTemplates)", figs)
    if lost:
        return Verdict.ok(check, f"evicted pods lost their emptyDir data, which a drain deletes: {what}; fine for caches "
                                 "and scratch space, not for data that must survive", figs)
    return Verdict.ok(check, f"no evicted pod of {namespace} kept data in an emptyDir volume", figs)
