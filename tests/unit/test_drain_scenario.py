"""The pure parts of the node maintenance scenario (kubedrill.scenarios.drain) and of the node
operations (kubedrill.disrupt.node): the registry names, the order workers are taken in, the
workload variants, which checks judge which record, the record's dump, and each operation's
verify() against a stand-in API."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kubedrill.check.verdict import Status
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.base import lookup
from kubedrill.disrupt.node import (
    CordonNode,
    DrainNode,
    MaintenancePlan,
    NodeOperation,
    RebootNode,
    RollingDrain,
    evictable,
    node_operations,
)
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record.cluster import NodeState, PdbState, PodState, SchedulingFailure, Snapshot, WorkloadState
from kubedrill.record.drain_log import parse_drain_output
from kubedrill.record.maintenance import NodePass
from kubedrill.scenarios.drain import (
    LoadPlan,
    MaintenanceExpectations,
    MaintenanceRecord,
    MaintenanceSettings,
    bare_pod,
    judge,
    load_figures,
    maintenance_order,
    maintenance_sample,
    with_pdb,
    workload_state,
)
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError

NS = "kd-t"
SEL = {"app.kubernetes.io/name": "kd-sample"}
WL = WorkloadState("Deployment", NS, "kd-sample", 3, SEL)
WORKERS = ["w1", "w2"]
OUT_OK = """node/w1 cordoned
evicting pod kd-t/kd-sample-a
evicting pod kd-t/kd-sample-b
pod/kd-sample-a evicted
pod/kd-sample-b evicted
node/w1 drained
"""


def pod(name: str, node: str, *, owner: str | None = "ReplicaSet", ns: str = NS, ready: bool = True) -> PodState:
    return PodState(ns, name, node, "Running", ready, False, owner, f"{name}-owner" if owner else None, dict(SEL))


def snap(pods: list[PodState], cordoned: tuple[str, ...] = (), pdbs: tuple[PdbState, ...] = ()) -> Snapshot:
    nodes = tuple(NodeState(n, ready=True, schedulable=n not in cordoned) for n in ("cp", *WORKERS))
    return Snapshot(0.0, nodes, tuple(pods), pdbs, (WL,))


PDB = PdbState(NS, "kd-sample", SEL, 2, None, 1, 3, 2, 3)
BEFORE = snap([pod("a", "w1"), pod("b", "w1"), pod("c", "w2"), pod("kp1", "w1", owner="DaemonSet", ns="kube-system")],
              pdbs=(PDB,))
DRAINED = snap([pod("a2", "w2"), pod("b2", "w2"), pod("c", "w2"), pod("kp1", "w1", owner="DaemonSet", ns="kube-system")],
               cordoned=("w1",), pdbs=(PDB,))
FINAL = snap([pod("a2", "w2"), pod("b2", "w2"), pod("c", "w2")], pdbs=(PDB,))


def load(start: float = 0.0, end: float = 40.0, every: float = 0.05) -> list[Operation]:
    n = int((end - start) / every)
    return [Operation("http", start + i * every, start + i * every + 0.01, "ok") for i in range(n)]


def record(operation: str = "drain", **kw: Any) -> MaintenanceRecord:
    base: dict[str, Any] = dict(operation=operation, namespace=NS, workload=WL, workers=list(WORKERS), nodes=["w1"],
                                settings=MaintenanceSettings(), load=LoadPlan(), before=BEFORE, final=FINAL,
                                operations=load(), window=Window(10.0, 30.0))
    base.update(kw)
    return MaintenanceRecord(**base)


def a_pass(node: str = "w1", failed: str | None = None) -> NodePass:
    return NodePass(node, 10.0, drained_at=20.0, uncordoned_at=25.0, end=28.0, drain_s=10.0,
                    log=parse_drain_output(OUT_OK), drain_failed=failed, drain_output=OUT_OK, before=BEFORE,
                    drained=None if failed else DRAINED)


EXPECT = MaintenanceExpectations(slo=1.0)


# --- the registry ---------------------------------------------------------------------------------

def test_the_node_operations_are_registered_by_name_in_order() -> None:
    assert node_operations() == ("cordon", "drain", "reboot", "rolling-drain")
    for name in node_operations():
        cls = lookup(name)
        assert issubclass(cls, NodeOperation) and cls.name == name


def test_every_operation_is_planned_the_same_way() -> None:
    cluster = Cluster("t", Path("/nonexistent"), "kind", nodes={"worker": list(WORKERS)})
    plan = MaintenancePlan(drain_timeout_s=30, force=True, hold_s=2.0, maintenance_s=1.0)
    ops: dict[str, NodeOperation] = {}
    for name in node_operations():
        cls = lookup(name)
        assert issubclass(cls, NodeOperation)
        ops[name] = cls.planned(cluster, ["w2", "w1"], plan)
    assert [o.nodes for o in ops.values()] == [["w2"], ["w2"], ["w2"], ["w2", "w1"]]
    cordon, drain, reboot, rolling = ops.values()
    assert isinstance(cordon, CordonNode) and cordon.hold_s == 2.0
    assert isinstance(drain, DrainNode) and drain.timeout_s == 30 and drain.force and not drain.raise_on_failure
    assert isinstance(reboot, RebootNode) and not reboot.raise_on_failure and reboot.available() is None
    assert isinstance(rolling, RollingDrain) and rolling.maintenance_s == 1.0 and rolling.force


def test_daemonset_and_static_pods_stay_on_a_drained_node() -> None:
    assert evictable(pod("a", "w1"))
    assert evictable(pod("bare", "w1", owner=None))
    assert not evictable(pod("kp", "w1", owner="DaemonSet"))
    assert not evictable(pod("etcd-cp", "cp", owner="Node"))


# --- the workload and the order of the workers ------------------------------------------------------

def test_the_busiest_worker_goes_first_ties_to_the_earlier_one() -> None:
    assert maintenance_order(BEFORE, WL, WORKERS) == ["w1", "w2"]
    assert maintenance_order(snap([pod("a", "w2")]), WL, WORKERS) == ["w2", "w1"]
    assert maintenance_order(snap([pod("a", "w1"), pod("b", "w2")]), WL, WORKERS) == ["w1", "w2"]
    not_serving = snap([pod("a", "w2", ready=False), pod("b", "w1")])
    assert maintenance_order(not_serving, WL, WORKERS) == ["w1", "w2"]
    with pytest.raises(ValueError, match="at least one worker"):
        maintenance_order(BEFORE, WL, [])


def test_the_workload_under_test_must_be_in_the_snapshot() -> None:
    assert workload_state(BEFORE, NS, "kd-sample") == WL
    with pytest.raises(LookupError, match="no Deployment or StatefulSet kd-t/other .* Deployment/kd-t/kd-sample"):
        workload_state(BEFORE, NS, "other")


def spec_with_pdb() -> WorkloadSpec:
    return WorkloadSpec(name="kd-sample", namespace=NS, selector=dict(SEL), service="kd-sample", node_port=None,
                        service_port=80, replicas=3, grace_seconds=15, images=("img:1",),
                        documents=({"kind": "Deployment", "metadata": {"name": "kd-sample"}},
                                   {"kind": "PodDisruptionBudget", "metadata": {"name": "old"}}))


def test_the_budget_is_replaced_or_removed() -> None:
    spec = spec_with_pdb()
    assert [d["kind"] for d in with_pdb(spec, "none").documents] == ["Deployment"]
    pdb = with_pdb(spec, "max-unavailable=0").documents[-1]
    assert pdb["spec"] == {"maxUnavailable": 0, "selector": {"matchLabels": SEL}}
    assert with_pdb(spec, "min-available=2").documents[-1]["spec"]["minAvailable"] == 2
    assert len(with_pdb(spec, "min-available=2").documents) == 2
    for bad in ("max-unavailable", "min-available=two", "maxUnavailable=1"):
        with pytest.raises(WorkloadSpecError, match="expected none, min-available=N or max-unavailable=N"):
            with_pdb(spec, bad)


def test_a_bare_pod_is_pinned_and_namespaced_by_the_deploy_path() -> None:
    doc = bare_pod("kind-worker2", "img:1")
    assert doc["spec"]["nodeName"] == "kind-worker2" and "namespace" not in doc["metadata"]
    assert doc["metadata"]["name"] == "kd-bare-worker2" and "ownerReferences" not in doc["metadata"]


# --- judge -------------------------------------------------------------------------------------------

def names(verdicts: list[Any]) -> list[str]:
    return [v.check for v in verdicts]


def test_a_drain_is_judged_on_its_node_passes() -> None:
    verdicts = judge(record(passes=[a_pass()]), EXPECT)
    assert names(verdicts) == ["availability", "failed-requests", "maintenance-risk", "pdb", "bare-pods", "local-data",
                               "rescheduled[w1]", "daemonsets[w1]", "sigterm-margin", "durations", "schedulable-at-end"]
    by = {v.check: v for v in verdicts}
    assert by["availability"].passed and by["rescheduled[w1]"].passed and by["durations"].passed, verdicts
    assert by["failed-requests"].passed and by["local-data"].passed, verdicts
    # The load's responses name no pod (no X-Pod): the margin is not measured, and says so.
    assert by["sigterm-margin"].status is Status.UNKNOWN and "not measured" in by["sigterm-margin"].reason
    assert [w["label"] for w in by["availability"].series["windows"]] == ["w1: drain -> uncordon"]


def test_a_failed_drain_is_judged_but_not_its_rescheduling() -> None:
    verdicts = judge(record(operation="rolling-drain", nodes=list(WORKERS), passes=[a_pass(failed="timed out")]),
                     EXPECT)
    assert "rescheduled[w1]" not in names(verdicts) and "daemonsets[w1]" not in names(verdicts)
    by = {v.check: v for v in verdicts}
    assert by["durations"].status is Status.FAIL and "did not finish: timed out" in by["durations"].reason


def test_a_cordon_is_judged_on_the_snapshot_while_it_held() -> None:
    held = snap(list(BEFORE.pods), cordoned=("w1",), pdbs=(PDB,))
    verdicts = judge(record(operation="cordon", held=held), EXPECT)
    assert names(verdicts) == ["availability", "failed-requests", "cordon", "maintenance-risk", "schedulable-at-end"]
    assert all(v.passed for v in verdicts), verdicts


def test_failed_requests_are_capped_by_the_slo() -> None:
    ops = load()
    ops[300] = Operation("http", ops[300].start, ops[300].end, "fail", detail="connection refused")
    ops[310] = Operation("http", ops[310].start, ops[310].end, "fail", detail="connection refused")
    by = {v.check: v for v in judge(record(passes=[a_pass()], operations=ops), EXPECT)}
    assert by["failed-requests"].status is Status.FAIL and "2 of" in by["failed-requests"].reason
    assert "allowed 0, slo.max_failed_requests" in by["failed-requests"].reason
    loose = MaintenanceExpectations(slo=0.99, max_failed_requests=2)
    assert {v.check: v for v in judge(record(passes=[a_pass()], operations=ops), loose)}["failed-requests"].passed


def test_a_one_replica_statefulset_is_judged_a_maintenance_risk() -> None:
    sts = WorkloadState("StatefulSet", NS, "kd-sample", 1, SEL)
    one = Snapshot(0.0, BEFORE.nodes, (pod("kd-sample-0", "w1", owner="StatefulSet"),), (), (sts,))
    by = {v.check: v for v in judge(record(workload=sts, before=one, passes=[a_pass()]), EXPECT)}
    assert by["maintenance-risk"].status is Status.FAIL
    assert "StatefulSet/kd-t/kd-sample runs 1 replica and no PodDisruptionBudget" in by["maintenance-risk"].reason


def test_the_sample_app_can_be_a_statefulset_pinned_to_a_node() -> None:
    spec = maintenance_sample("img:1", replicas=2, pdb="min-available=1", kind="StatefulSet", node="w1")
    kinds = [d["kind"] for d in spec.documents]
    assert "StatefulSet" in kinds and "Deployment" not in kinds and kinds[-1] == "PodDisruptionBudget"
    sts = next(d for d in spec.documents if d["kind"] == "StatefulSet")
    assert sts["spec"]["serviceName"] == "kd-sample" and "strategy" not in sts["spec"]
    assert sts["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "w1"}
    plain = maintenance_sample("img:1")
    assert all("nodeSelector" not in d["spec"].get("template", {}).get("spec", {}) for d in plain.documents
               if d["kind"] == "Deployment")
    with pytest.raises(WorkloadSpecError, match="kind 'DaemonSet' is not Deployment or StatefulSet"):
        maintenance_sample("img:1", kind="DaemonSet")


def test_a_drain_blocked_by_an_unschedulable_replacement_names_the_scheduler() -> None:
    """Two replicas pinned to w1, minAvailable 1: one eviction is allowed, its replacement can go
    nowhere, and the budget then refuses the other until the timeout. The cause is scheduling."""
    budget = PdbState(NS, "kd-sample", SEL, 1, None, 1, 2, 1, 2)
    before = snap([pod("kd-sample-a", "w1"), pod("kd-sample-b", "w1")], pdbs=(budget,))
    out = OUT_OK.replace("node/w1 drained\n", "") + (
        'error when evicting pods/"kd-sample-b" -n "kd-t" (will retry after 5s): Cannot evict pod as it would '
        "violate the pod's disruption budget.\n")
    blocked = NodePass("w1", 10.0, drained_at=41.0, uncordoned_at=41.5, end=42.0, drain_s=31.0,
                       log=parse_drain_output(out), drain_failed="error: unable to drain node", drain_output=out,
                       before=before)
    pending = SchedulingFailure(NS, "kd-sample-c", "0/3 nodes are available: 1 node(s) didn't match Pod's node "
                                "affinity/selector, 1 node(s) had untolerated taint {node-role.kubernetes.io/"
                                "control-plane: }, 1 node(s) were unschedulable.", 11.0, 40.0, 7, dict(SEL))
    by = {v.check: v for v in judge(record(before=before, passes=[blocked], unschedulable=[pending]), EXPECT)}
    assert by["pdb"].status is Status.FAIL
    assert "the budget is not the cause (kd-t/kd-sample allowed 1 before the drain)" in by["pdb"].reason
    assert "kd-t/kd-sample-c could not be scheduled (node selector or node affinity, taints, cordoned nodes)" \
        in by["pdb"].reason
    assert "allows no disruption" not in by["pdb"].reason


def test_nothing_to_judge_is_unknown_never_a_pass() -> None:
    verdicts = judge(record(window=None), EXPECT)
    by = {v.check: v for v in verdicts}
    assert by["operation"].status is Status.UNKNOWN and by["availability"].status is Status.UNKNOWN
    assert judge(record(final=None, passes=[a_pass()]), EXPECT)[-1].status is Status.UNKNOWN


def test_a_node_left_cordoned_fails() -> None:
    verdicts = judge(record(passes=[a_pass()], final=snap([], cordoned=("w2",))), EXPECT)
    assert verdicts[-1].status is Status.FAIL and "kubectl uncordon w2" in verdicts[-1].reason


def test_the_load_figures_give_the_rate_achieved_while_the_operation_ran() -> None:
    target, during = load_figures(record())
    assert (target.name, target.value) == ("load_rate_target", 50.0)
    assert during.name == "load_rate_during" and during.value == pytest.approx(20.0, abs=0.2)


def test_the_record_dumps_json_the_load_log_and_each_drain_output(tmp_path: Path) -> None:
    rec = Recorder("t")
    rec.event("disruption-start", "drain")
    record(passes=[a_pass()], load_log="locust said", recorder=rec).dump(tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "record.json").read_text())
    assert doc["operation"] == "drain" and doc["passes"][0]["node"] == "w1" and doc["window"] == {"start": 10.0, "end": 30.0}
    assert doc["record"]["events"][0]["kind"] == "disruption-start"
    assert (tmp_path / "out" / "locust.log").read_text() == "locust said"
    assert (tmp_path / "out" / "drain-w1.txt").read_text() == OUT_OK


# --- verify() against a stand-in API -----------------------------------------------------------------

def api_node(name: str, unschedulable: bool, ready: bool = True) -> SimpleNamespace:
    return SimpleNamespace(metadata=SimpleNamespace(name=name, labels={}),
                           spec=SimpleNamespace(unschedulable=unschedulable, taints=None),
                           status=SimpleNamespace(node_info=None, conditions=[
                               SimpleNamespace(type="Ready", status="True" if ready else "False")]))


def api_pod(name: str, owner: str | None) -> SimpleNamespace:
    refs = [SimpleNamespace(kind=owner, name=f"{name}-owner", controller=True)] if owner else []
    return SimpleNamespace(metadata=SimpleNamespace(namespace=NS, name=name, owner_references=refs, labels={},
                                                    deletion_timestamp=None),
                           spec=SimpleNamespace(node_name="w1"),
                           status=SimpleNamespace(phase="Running", conditions=[], container_statuses=[]))


class FakeCore:
    def __init__(self, unschedulable: bool, pods: list[SimpleNamespace], ready: bool = True) -> None:
        self.unschedulable, self.pods, self.ready = unschedulable, pods, ready

    def read_node(self, name: str, **_: Any) -> SimpleNamespace:
        return api_node(name, self.unschedulable, self.ready)

    def list_pod_for_all_namespaces(self, **_: Any) -> SimpleNamespace:
        return SimpleNamespace(items=self.pods)


class FakeCluster(Cluster):
    fake: FakeCore

    def core(self) -> FakeCore:  # type: ignore[override]
        return self.fake


def fake_cluster(unschedulable: bool, pods: tuple[SimpleNamespace, ...] | list[SimpleNamespace] = (),
                 ready: bool = True) -> FakeCluster:
    c = FakeCluster("t", Path("/nonexistent"), "kind", nodes={"worker": list(WORKERS)})
    c.fake = FakeCore(unschedulable, list(pods), ready)
    return c


def test_a_cordon_took_effect_when_the_node_is_unschedulable() -> None:
    assert CordonNode(fake_cluster(True), "w1").verify()[0]
    took, seen = CordonNode(fake_cluster(False), "w1").verify()
    assert not took and "still schedulable" in seen


def test_a_drain_took_effect_when_cordoned_and_only_daemonset_pods_are_left() -> None:
    ds = [api_pod("kube-proxy-x", "DaemonSet")]
    assert DrainNode(fake_cluster(True, ds), "w1").verify()[0]
    took, seen = DrainNode(fake_cluster(True, ds + [api_pod("kd-sample-a", "ReplicaSet")]), "w1").verify()
    assert not took and "kd-t/kd-sample-a" in seen
    took, seen = DrainNode(fake_cluster(False), "w1").verify()
    assert not took and "never cordoned" in seen


def test_a_refused_drain_took_effect_the_checks_judge_the_refusal() -> None:
    d = DrainNode(fake_cluster(True, [api_pod("kd-sample-a", "ReplicaSet")]), "w1", raise_on_failure=False)
    d.failed = "global timeout reached: 30s"
    took, seen = d.verify()
    assert took and "did not finish (global timeout reached: 30s)" in seen


def test_a_reboot_took_effect_when_the_node_container_restarted_and_is_ready() -> None:
    def rebooted(started_after: str, ready: bool = True) -> tuple[bool, str]:
        r = RebootNode(fake_cluster(True, ready=ready), "w1")
        r.passes = [NodePass("w1", 0.0, reboot={"started_before": "t1", "started_after": started_after,
                                                 "notready_seen": False})]
        return r.verify()

    assert rebooted("t2")[0]
    took, seen = rebooted("t1")
    assert not took and "did not restart" in seen
    took, seen = rebooted("t2", ready=False)
    assert not took and "not Ready" in seen


def test_a_rolling_drain_took_effect_when_every_finished_drain_did() -> None:
    r = RollingDrain(fake_cluster(True), WORKERS)
    assert not r.verify()[0]
    r.passes = [NodePass("w1", 0.0), NodePass("w2", 1.0)]
    r._verified = [(True, "w1 cordoned and runs no evictable pod"), (True, "w2 cordoned and runs no evictable pod")]
    assert r.verify()[0]
    r._verified[1] = (False, "w2 is cordoned but still runs kd-t/x")
    took, seen = r.verify()
    assert not took and "kd-t/x" in seen


# --- FailedScheduling events from a stand-in API -------------------------------------------------------

def test_scheduling_failures_are_read_from_both_event_apis() -> None:
    """core/v1 events (first/lastTimestamp, count) and events.k8s.io ones (eventTime, series) alike,
    on the monotonic clock, with the pod's labels when the watch saw it."""
    import datetime as dt
    import time

    from kubedrill.observe.cluster import scheduling_failures

    now = dt.datetime.now(dt.timezone.utc)
    old_style = SimpleNamespace(involved_object=SimpleNamespace(name="kd-sample-c"), message="0/3 nodes: taint",
                                first_timestamp=now - dt.timedelta(seconds=20), last_timestamp=now, event_time=None,
                                count=4, series=None)
    new_style = SimpleNamespace(involved_object=SimpleNamespace(name="kd-sample-d"), message="0/3 nodes: cpu",
                                first_timestamp=None, last_timestamp=None, event_time=now - dt.timedelta(seconds=5),
                                count=None, series=SimpleNamespace(last_observed_time=now, count=3))
    seen: dict[str, Any] = {}

    def list_namespaced_event(ns: str, **kw: Any) -> SimpleNamespace:
        seen.update(kw, ns=ns)
        return SimpleNamespace(items=[new_style, old_style])

    cluster: Any = SimpleNamespace(core=lambda: SimpleNamespace(list_namespaced_event=list_namespaced_event))
    got = scheduling_failures(cluster, NS, labels={"kd-sample-c": dict(SEL)})
    assert seen["ns"] == NS and "reason=FailedScheduling" in seen["field_selector"]
    assert [(f.pod, f.count, dict(f.labels)) for f in got] == [("kd-sample-c", 4, SEL), ("kd-sample-d", 3, {})]
    mono = time.monotonic()
    assert got[0].first_at == pytest.approx(mono - 20, abs=2) and got[1].last_at == pytest.approx(mono, abs=2)
    assert got[0].during(mono - 10, mono) and not got[0].during(mono + 10, mono + 20)
