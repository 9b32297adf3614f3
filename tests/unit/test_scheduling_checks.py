"""Scheduling, PDB, bare-pod, duration and SIGTERM-margin checks on hand-made records, and the
kubectl drain output parser on outputs captured from kubectl v1.34 on a kind cluster."""

from __future__ import annotations

import json

from kubedrill.check.maintenance import (
    check_durations,
    check_failed_requests,
    check_sigterm_margin,
    node_windows,
    with_windows,
)
from kubedrill.check.scheduling import (
    check_bare_pods,
    check_cordon,
    check_daemonsets_stay,
    check_local_data,
    check_pdbs,
    check_rescheduled,
    check_schedulable,
    check_single_replica,
    scheduling_causes,
)
from kubedrill.check.verdict import Status, Verdict
from kubedrill.record.termination import PodEvidence
from kubedrill.record.cluster import NodeState, PdbState, PodState, SchedulingFailure, Snapshot, WorkloadState
from kubedrill.record.drain_log import parse_drain_output
from kubedrill.record.maintenance import NodePass
from kubedrill.record import Operation, Window
from kubedrill.record import series as S

NS = "kd-t"
SEL = {"app.kubernetes.io/name": "kd-sample"}
WL = WorkloadState("Deployment", NS, "kd-sample", 3, SEL)

# Captured from `kubectl drain` (v1.34.4) against kind, under load.
OUT_OK = """node/w1 cordoned
evicting pod kd-t/kd-sample-a
evicting pod kd-t/kd-sample-b
evicting pod kd-t/kd-sample-b
pod/kd-sample-a evicted
pod/kd-sample-b evicted
node/w1 drained
Warning: ignoring DaemonSet-managed Pods: kube-system/kindnet-t9q5v, kube-system/kube-proxy-bgg65
error when evicting pods/"kd-sample-b" -n "kd-t" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
"""
OUT_PDB_TIMEOUT = """node/w1 cordoned
evicting pod kd-t/kd-sample-a
evicting pod kd-t/kd-sample-b
error when evicting pods/"kd-sample-a" -n "kd-t" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
error when evicting pods/"kd-sample-b" -n "kd-t" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
error when evicting pods/"kd-sample-a" -n "kd-t" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
There are pending pods in node "w1" when an error occurred: [error when evicting pods/"kd-sample-a" -n "kd-t": global timeout reached: 30s, error when evicting pods/"kd-sample-b" -n "kd-t": global timeout reached: 30s]
error: unable to drain node "w1" due to error: [error when evicting pods/"kd-sample-a" -n "kd-t": global timeout reached: 30s, error when evicting pods/"kd-sample-b" -n "kd-t": global timeout reached: 30s], continuing command...
There are pending nodes to be drained:
 w1
"""
OUT_BARE = """node/w1 cordoned
error: unable to drain node "w1" due to error: cannot delete cannot delete Pods that declare no controller (use --force to override): kd-exp4/bare, continuing command...
There are pending nodes to be drained:
 w1
cannot delete cannot delete Pods that declare no controller (use --force to override): kd-exp4/bare
"""
OUT_FORCE = """node/w1 already cordoned
Warning: ignoring DaemonSet-managed Pods: kube-system/kindnet-t9q5v, kube-system/kube-proxy-bgg65; deleting Pods that declare no controller: kd-exp4/bare
evicting pod kd-exp4/bare
pod/bare evicted
node/w1 drained
"""


def pod(name: str, node: str, *, owner: str | None = "ReplicaSet", owner_name: str = "kd-sample-rs", ns: str = NS,
        labels: dict[str, str] | None = None, ready: bool = True, deleting: bool = False) -> PodState:
    return PodState(ns, name, node, "Running", ready, deleting, owner, owner_name if owner else None,
                    dict(SEL if labels is None else labels))


def ds(name: str, node: str, owner_name: str) -> PodState:
    return pod(name, node, owner="DaemonSet", owner_name=owner_name, ns="kube-system", labels={"k8s-app": owner_name})


def snap(pods: list[PodState], *, cordoned: tuple[str, ...] = (), pdbs: tuple[PdbState, ...] = (),
         workloads: tuple[WorkloadState, ...] = (WL,), at: float = 0.0) -> Snapshot:
    nodes = tuple(NodeState(n, ready=True, schedulable=n not in cordoned) for n in ("cp", "w1", "w2"))
    return Snapshot(at, nodes, tuple(pods), pdbs, workloads)


def pdb(max_unavailable: int | None = None, min_available: int | None = None, allowed: int = 1) -> PdbState:
    return PdbState(NS, "kd-sample", SEL, min_available, max_unavailable, allowed, 3, 3 - allowed, 3)


def a_pass(node: str = "w1", out: str = OUT_OK, failed: str | None = None, start: float = 10.0, drain_s: float = 12.0,
           end: float | None = 30.0, settle_error: str | None = None) -> NodePass:
    log = parse_drain_output(out)
    return NodePass(node, start, drained_at=start + drain_s, end=end, drain_s=drain_s, log=log, drain_failed=failed,
                    drain_output=out, settle_error=settle_error)


BEFORE = snap([pod("a", "w1"), pod("b", "w1"), pod("c", "w2"), ds("kp1", "w1", "kube-proxy"),
               ds("kn1", "w1", "kindnet"), ds("kp2", "w2", "kube-proxy")], pdbs=(pdb(min_available=2),))
DRAINED = snap([pod("a2", "w2"), pod("b2", "w2"), pod("c", "w2"), ds("kp1", "w1", "kube-proxy"),
                ds("kn1", "w1", "kindnet"), ds("kp2", "w2", "kube-proxy")], cordoned=("w1",))


# --- kubectl drain output ---------------------------------------------------------------------

def test_parses_a_drain_that_waited_for_the_budget() -> None:
    log = parse_drain_output(OUT_OK)
    assert log.cordoned and log.drained and not log.timed_out and not log.error
    assert log.evicting == ("kd-t/kd-sample-a", "kd-t/kd-sample-b")
    assert log.evicted == ("kd-sample-a", "kd-sample-b")
    assert log.pdb_refused == ("kd-t/kd-sample-b",) and log.pdb_refusals == 1 and not log.blocked_by_pdb
    assert log.ignored_daemonset == ("kube-system/kindnet-t9q5v", "kube-system/kube-proxy-bgg65")


def test_parses_a_drain_blocked_by_a_budget_until_timeout() -> None:
    log = parse_drain_output(OUT_PDB_TIMEOUT)
    assert log.timed_out and not log.drained and log.blocked_by_pdb
    assert log.pdb_refused == ("kd-t/kd-sample-a", "kd-t/kd-sample-b") and log.pdb_refusals == 3
    assert log.error.startswith('error: unable to drain node "w1"')


def test_parses_bare_pods_blocking_and_forced() -> None:
    blocked = parse_drain_output(OUT_BARE)
    assert blocked.bare_blocking == ("kd-exp4/bare",) and not blocked.drained
    forced = parse_drain_output(OUT_FORCE)
    assert forced.bare_deleted == ("kd-exp4/bare",) and forced.drained and forced.cordoned
    assert forced.ignored_daemonset == ("kube-system/kindnet-t9q5v", "kube-system/kube-proxy-bgg65")


# --- cordon, rescheduling, DaemonSets, schedulable ----------------------------------------------

def test_cordon_keeps_pods_and_takes_no_new_ones() -> None:
    during = snap(list(BEFORE.pods), cordoned=("w1",))
    assert check_cordon(BEFORE, during, "w1").status is Status.PASS
    evicted = snap([p for p in BEFORE.pods if p.name != "a"], cordoned=("w1",))
    v = check_cordon(BEFORE, evicted, "w1")
    assert v.status is Status.FAIL and "kd-t/a left it" in v.reason
    assert check_cordon(BEFORE, snap(list(BEFORE.pods)), "w1").status is Status.FAIL  # still schedulable
    newcomer = snap([*BEFORE.pods, pod("z", "w1")], cordoned=("w1",))
    assert "got new pods: kd-t/z" in check_cordon(BEFORE, newcomer, "w1").reason


def test_evicted_pods_must_run_elsewhere_with_all_replicas() -> None:
    v = check_rescheduled(BEFORE, DRAINED, "w1", WL)
    assert v.status is Status.PASS and "2 evicted pod(s)" in v.reason and "on w2" in v.reason
    short = snap([pod("a2", "w2"), pod("c", "w2"), pod("b2", "w2", ready=False)], cordoned=("w1",))
    v = check_rescheduled(BEFORE, short, "w1", WL)
    assert v.status is Status.FAIL and "only 2/3 replicas" in v.reason
    stuck = snap([pod("a", "w1"), pod("b2", "w2"), pod("c", "w2"), pod("d", "w2")], cordoned=("w1",))
    assert "still on drained node w1" in check_rescheduled(BEFORE, stuck, "w1", WL).reason


def test_rescheduling_without_evidence_is_unknown() -> None:
    assert "still on drained node w2" in check_rescheduled(BEFORE, DRAINED, "w2", WL).reason  # w2 was not drained
    nothing = snap([pod("c", "w2")])
    v = check_rescheduled(nothing, DRAINED, "w1", WL)
    assert v.status is Status.UNKNOWN and "proved nothing" in v.reason
    assert check_rescheduled(BEFORE, None, "w1", WL).status is Status.UNKNOWN


def test_daemonset_pods_stay_on_the_drained_node() -> None:
    assert check_daemonsets_stay(BEFORE, DRAINED, "w1").status is Status.PASS
    lost = snap([p for p in DRAINED.pods if p.name != "kn1"], cordoned=("w1",))
    v = check_daemonsets_stay(BEFORE, lost, "w1")
    assert v.status is Status.FAIL and "kindnet" in v.reason


def test_no_node_may_stay_cordoned() -> None:
    assert check_schedulable(DRAINED, ["w2"]).status is Status.PASS
    v = check_schedulable(DRAINED, ["w1", "w2"])
    assert v.status is Status.FAIL and "kubectl uncordon w1" in v.reason


# --- PDBs, single replica, bare pods ----------------------------------------------------------

def test_a_budget_that_only_delayed_the_drain_passes() -> None:
    v = check_pdbs(BEFORE, [a_pass()], 120)
    assert v.status is Status.PASS and "held back 1 eviction" in v.reason


def test_a_budget_allowing_no_disruption_is_named_when_it_blocks_the_drain() -> None:
    before = snap(list(BEFORE.pods), pdbs=(pdb(max_unavailable=0, allowed=0),))
    p = a_pass(out=OUT_PDB_TIMEOUT, failed="error: unable to drain node", drain_s=31.0)
    p.log = parse_drain_output(OUT_PDB_TIMEOUT.replace('"kd-sample-a"', '"a"').replace('"kd-sample-b"', '"b"'))
    v = check_pdbs(before, [p], 30)
    assert v.status is Status.FAIL
    assert "drain of w1 timed out after 31 s (--timeout=30s)" in v.reason
    assert "PodDisruptionBudget kd-t/kd-sample (maxUnavailable: 0; 3/3 healthy, disruptionsAllowed 0)" in v.reason
    assert "refused eviction of kd-t/a, kd-t/b" in v.reason
    assert v.reason.count("PodDisruptionBudget kd-t/kd-sample") == 1  # named once, not again as a static finding


def test_a_zero_budget_fails_even_before_a_drain_hits_it() -> None:
    before = snap(list(BEFORE.pods), pdbs=(pdb(min_available=3, allowed=0),))
    v = check_pdbs(before, [], 120)
    assert v.status is Status.FAIL and "allows no disruption even with every pod healthy" in v.reason


def test_single_replica_without_budget_is_a_maintenance_risk() -> None:
    one = WorkloadState("Deployment", NS, "kd-sample", 1, SEL)
    v = check_single_replica(snap([pod("a", "w1")], workloads=(one,)), NS)
    assert v.status is Status.FAIL and v.reason.startswith("maintenance risk:")
    assert check_single_replica(snap([pod("a", "w1")], workloads=(one,), pdbs=(pdb(min_available=1, allowed=0),)),
                                NS).status is Status.PASS  # covered: check_pdbs judges that budget
    ok = check_single_replica(snap(list(BEFORE.pods), pdbs=()), NS)
    assert ok.status is Status.PASS and "no PodDisruptionBudget for Deployment/kd-t/kd-sample" in ok.reason
    assert check_single_replica(snap([]), "elsewhere").status is Status.UNKNOWN


def test_bare_pods_block_unless_force_is_allowed() -> None:
    v = check_bare_pods([a_pass(out=OUT_BARE, failed="error")], force_allowed=False)
    assert v.status is Status.FAIL and "kd-exp4/bare on w1" in v.reason and "--allow-force" in v.reason
    forced = check_bare_pods([a_pass(out=OUT_FORCE)], force_allowed=True)
    assert forced.status is Status.PASS and "deleted 1 pod(s)" in forced.reason
    assert check_bare_pods([a_pass()], force_allowed=False).status is Status.PASS


# --- durations and windows --------------------------------------------------------------------

def test_durations_report_each_drain_and_round_trip_and_the_pass() -> None:
    passes = [a_pass("w1", start=10, drain_s=12, end=30), a_pass("w2", start=31, drain_s=15, end=52)]
    v = check_durations(passes, max_drain_s=120, expected_nodes=2, t0=5.0)
    assert v.status is Status.PASS
    figs = {(f.name, f.detail): f.value for f in v.figures}
    assert figs[("drain_time", "w1")] == 12 and figs[("node_roundtrip", "w2")] == 21
    assert figs[("maintenance_pass", "2 node(s)")] == 42
    assert v.series["windows"][1] == {"start": 26.0, "end": 47.0, "label": "w2: drain -> uncordon"}
    assert S.problems(v.series) == []


def test_durations_fail_on_slow_or_unfinished_drains() -> None:
    slow = check_durations([a_pass(drain_s=130, end=150)], max_drain_s=120, expected_nodes=1, t0=0)
    assert slow.status is Status.FAIL and "took 130 s (limit 120 s)" in slow.reason
    stopped = check_durations([a_pass()], max_drain_s=120, expected_nodes=2, t0=0)
    assert "stopped after 1 of 2 nodes" in stopped.reason
    unsettled = check_durations([a_pass(settle_error="after the drain of w1: timed out")], max_drain_s=120,
                                expected_nodes=1, t0=0)
    assert unsettled.status is Status.FAIL and "did not settle" in unsettled.reason
    assert check_durations([], max_drain_s=120, expected_nodes=1, t0=0).status is Status.UNKNOWN


def test_node_windows_replace_the_single_disruption_window() -> None:
    v = Verdict.ok("availability", "fine", [], windows=[S.window(0, 10, "disruption")])
    with_windows(v, node_windows([a_pass("w1", start=2, end=6)], t0=1))
    assert v.series["windows"] == [{"start": 1.0, "end": 5.0, "label": "w1: drain -> uncordon"}]


# --- SIGTERM margin ---------------------------------------------------------------------------

def lifecycle(sigterm: float) -> str:
    return json.dumps({"pod": "p", "node": "w1", "mode": "x", "events": [
        {"event": "started", "time": 1.0, "mono": 1.0}, {"event": "sigterm", "time": sigterm, "mono": sigterm}]})


def evidence(pod: str, node: str | None = None, deleting_at: float | None = None, termination_message: str = "",
         has_prestop: bool = False) -> PodEvidence:
    """What the pod watch records about a pod, reduced to what the margin check reads."""
    return PodEvidence(pod=pod, uid=pod, node=node, container="app", grace_seconds=30.0, prestop_hook=has_prestop,
                       first_seen_at=0.0, deletion_seen_at=deleting_at, deletion_timestamp_wall=None,
                       terminated_seen_at=None, gone_at=None, exit_code=None, reason=None, signal=None,
                       message=termination_message, started_wall=None, finished_wall=None)


def served(pod_name: str, last: float) -> list[Operation]:
    return [Operation("http GET /", t, t + 0.01, "ok", result=pod_name) for t in (last - 2, last - 1, last)]


def test_sigterm_margin_passes_with_a_prestop_sleep() -> None:
    fate = evidence("p1", "w1", deleting_at=100.0, termination_message=lifecycle(103.0), has_prestop=True)
    v = check_sigterm_margin([fate], served("p1", 100.2), min_margin_s=1.0)
    assert v.status is Status.PASS
    assert v.figures[0].value == 2.8 and "lifecycle" in v.figures[0].detail


def test_sigterm_margin_fails_without_prestop() -> None:
    fate = evidence("p1", "w1", deleting_at=100.0, termination_message=lifecycle(100.1), has_prestop=False)
    v = check_sigterm_margin([fate], served("p1", 100.05), min_margin_s=1.0)
    assert v.status is Status.FAIL
    assert "requests can be dropped during drain" in v.reason and "no preStop hook" in v.reason
    # No lifecycle record: a pod without preStop is signalled at deletion.
    bare = evidence("p2", "w1", deleting_at=50.0, has_prestop=False)
    assert check_sigterm_margin([bare], served("p2", 50.2)).status is Status.FAIL


def test_sigterm_margin_needs_evidence() -> None:
    fate = evidence("p1", "w1", deleting_at=100.0, termination_message=lifecycle(103.0), has_prestop=True)
    no_pod = check_sigterm_margin([fate], [Operation("http GET /", 1, 2, "ok")])
    assert no_pod.status is Status.UNKNOWN and no_pod.reason.startswith("not measured")  # no X-Pod: no PASS
    # A preStop hook and no lifecycle record: when SIGTERM came is not known, so nothing passes.
    hooked = evidence("p1", "w1", deleting_at=100.0, has_prestop=True)
    v = check_sigterm_margin([hooked], served("p1", 100.2))
    assert v.status is Status.UNKNOWN and "p1 (no SIGTERM time)" in v.reason
    partly = check_sigterm_margin([fate, evidence("p2", "w1", deleting_at=101.0, has_prestop=True)],
                                  served("p1", 100.2) + served("p2", 100.5))
    assert partly.status is Status.PASS and "not measured for p2 (no SIGTERM time)" in partly.reason
    assert check_sigterm_margin([evidence("p1")], served("p1", 5)).status is Status.UNKNOWN  # nothing deleted
    outside = check_sigterm_margin([fate], served("p1", 100.2), around=[(0.0, 50.0)])
    assert outside.status is Status.UNKNOWN


# --- the cause of a blocked or hurtful drain --------------------------------------------------------

SCHEDULER = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "


def blocked_pass(refused: tuple[str, ...] = ("kd-sample-b",), start: float = 10.0) -> NodePass:
    """A drain of w1 that timed out with the budget refusing `refused` (pods of namespace NS)."""
    out = "node/w1 cordoned\nevicting pod kd-t/kd-sample-a\npod/kd-sample-a evicted\n" + "".join(
        f'error when evicting pods/"{r}" -n "kd-t" (will retry after 5s): Cannot evict pod as it would violate the '
        "pod's disruption budget.\n" for r in refused) + "error: unable to drain node \"w1\" global timeout reached: 30s]\n"
    return NodePass("w1", start, drained_at=start + 31, end=start + 33, drain_s=31.0, log=parse_drain_output(out),
                    drain_failed="error: unable to drain node", drain_output=out)


TWO_ON_W1 = snap([pod("kd-sample-a", "w1"), pod("kd-sample-b", "w1")],
                 pdbs=(PdbState(NS, "kd-sample", SEL, 1, None, 1, 2, 1, 2),))


def failure(message: str, at: float = 12.0, labels: dict[str, str] | None = None) -> SchedulingFailure:
    return SchedulingFailure(NS, "kd-sample-c", message, at, at + 20, 5, dict(SEL if labels is None else labels))


def test_the_scheduler_message_names_the_cause() -> None:
    assert scheduling_causes(SCHEDULER + "2 node(s) didn't match Pod's node affinity/selector.") == \
        ["node selector or node affinity", "taints"]
    assert scheduling_causes("0/3 nodes are available: 2 Insufficient cpu.") == ["resources"]
    assert scheduling_causes("0/3 nodes are available: 2 node(s) didn't match pod anti-affinity rules.") == \
        ["pod anti-affinity"]
    assert scheduling_causes("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}.") == ["taints"]
    assert scheduling_causes("something new") == ["the scheduler's message names no known cause"]


def test_a_replacement_pinned_by_a_node_selector_is_the_cause_not_the_budget() -> None:
    pinned = failure(SCHEDULER + "1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable.")
    v = check_pdbs(TWO_ON_W1, [blocked_pass()], 30, [pinned])
    assert v.status is Status.FAIL and "drain of w1 timed out after 31 s" in v.reason
    assert "the budget is not the cause (kd-t/kd-sample allowed 1 before the drain)" in v.reason
    assert "kd-t/kd-sample-c could not be scheduled (node selector or node affinity, taints, cordoned nodes)" in v.reason
    assert "relax the nodeSelector or affinity" in v.reason and "allows no disruption" not in v.reason


def test_a_replacement_held_back_by_taints_or_resources_is_named() -> None:
    tainted = failure("0/3 nodes are available: 2 node(s) had untolerated taint {dedicated: db}, 1 node(s) were "
                      "unschedulable.")
    assert "could not be scheduled (taints, cordoned nodes)" in check_pdbs(TWO_ON_W1, [blocked_pass()], 30,
                                                                          [tainted]).reason
    full = failure("0/3 nodes are available: 2 Insufficient memory, 1 node(s) were unschedulable.")
    assert "could not be scheduled (resources, cordoned nodes)" in check_pdbs(TWO_ON_W1, [blocked_pass()], 30,
                                                                              [full]).reason


def test_scheduling_failures_of_other_pods_or_other_times_are_not_the_cause() -> None:
    other = failure("0/3 nodes are available: 2 Insufficient memory.", labels={"app": "other"})
    earlier = failure("0/3 nodes are available: 2 Insufficient memory.", at=-100.0)
    v = check_pdbs(TWO_ON_W1, [blocked_pass()], 30, [other, earlier])
    assert v.status is Status.FAIL and "could not be scheduled" not in v.reason
    assert "did not become healthy before the timeout (no FailedScheduling was recorded)" in v.reason


def test_a_budget_allowing_no_disruption_stays_the_cause_whatever_else_happened() -> None:
    zero = snap(list(TWO_ON_W1.pods), pdbs=(PdbState(NS, "kd-sample", SEL, None, 0, 0, 2, 2, 2),))
    v = check_pdbs(zero, [blocked_pass(("kd-sample-a", "kd-sample-b"))], 30, [])
    assert v.status is Status.FAIL and "a budget that allows no disruption blocks every drain" in v.reason


def test_replicas_that_find_no_node_are_named_by_the_rescheduling_check() -> None:
    stuck = PodState(NS, "a2", None, "Pending", False, False, "ReplicaSet", "kd-sample-rs", dict(SEL),
                     unschedulable="0/3 nodes are available: 3 Insufficient cpu.")
    drained = snap([stuck, pod("b2", "w2"), pod("c", "w2")], cordoned=("w1",))
    v = check_rescheduled(BEFORE, drained, "w1", WL)
    assert v.status is Status.FAIL and "kd-t/a2 could not be scheduled (resources)" in v.reason
    slow = snap([pod("a2", "w2", ready=False), pod("b2", "w2"), pod("c", "w2")], cordoned=("w1",))
    assert "no pod was unschedulable: look at readiness probes" in check_rescheduled(BEFORE, slow, "w1", WL).reason


def test_local_data_in_empty_dir_is_named() -> None:
    def with_data(name: str, owner: str) -> PodState:
        return PodState(NS, name, "w1", "Running", True, False, owner, "kd-sample", dict(SEL), empty_dirs=("data",))
    out = "node/w1 cordoned\nevicting pod kd-t/kd-sample-0\npod/kd-sample-0 evicted\nnode/w1 drained\n"
    p = NodePass("w1", 10.0, drained_at=20.0, end=25.0, drain_s=10.0, log=parse_drain_output(out), drain_output=out)
    stateful = snap([with_data("kd-sample-0", "StatefulSet")])
    v = check_local_data([p], stateful, NS)
    assert v.status is Status.FAIL and "local data in emptyDir lost" in v.reason and "kd-t/kd-sample-0 (data)" in v.reason
    cache = snap([with_data("kd-sample-0", "ReplicaSet")])
    ok = check_local_data([p], cache, NS)
    assert ok.status is Status.PASS and "lost their emptyDir data" in ok.reason
    assert check_local_data([], cache, NS).status is Status.UNKNOWN


def test_failed_requests_are_counted_in_the_operation_window() -> None:
    ops = [Operation("http GET /", t, t + 0.1, "ok") for t in range(0, 40)]
    ops[15] = Operation("http GET /", 15, 15.1, "fail", detail="503")
    ops[2] = Operation("http GET /", 2, 2.1, "fail", detail="before the operation")
    v = check_failed_requests(ops, Window(10.0, 20.0), allowed=0, after_s=5.0)
    assert v.status is Status.FAIL and "1 of 16 request(s) failed" in v.reason and "first: 503" in v.reason
    assert check_failed_requests(ops, Window(10.0, 20.0), allowed=1, after_s=5.0).status is Status.PASS
    assert check_failed_requests(ops, None, allowed=0, after_s=5.0).status is Status.UNKNOWN
    assert check_failed_requests([], Window(10.0, 20.0), allowed=0, after_s=5.0).status is Status.UNKNOWN
