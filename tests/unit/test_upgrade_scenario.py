"""The pure parts of kubedrill.scenarios.upgrade: judging a hand-made rehearsal record, and its dump.

The record below is what a good three-node rehearsal leaves behind (control plane first, two
workloads under load all along, every checkpoint at the versions it should show); each test breaks
one part of it and checks that exactly the verdict that should catch it does -- for the workload
it broke, not the other -- with a reason naming what broke.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubedrill.check.rollout import Expectation
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.upgrade import Role
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record.cluster import NodeState, PodState, Snapshot, WorkloadState
from kubedrill.record.maintenance import Phase
from kubedrill.record.versions import parse_upgrade_plan
from kubedrill.scenarios.drain import as_statefulset
from kubedrill.scenarios.upgrade import (
    NodeRecord,
    RehearsalRecord,
    Settings,
    WorkloadRun,
    judge,
    judge_node,
    load_port,
    plan_loads,
    step_check,
    workload_check,
)
from kubedrill.workload.deploy import Deployed, expose
from kubedrill.workload.sample import sample_workload

OLD, NEW = "v1.33.13", "v1.34.4"
CP, W1, W2 = "kdupgrade-control-plane", "kdupgrade-worker", "kdupgrade-worker2"  # as in the captured plan
NODES = [CP, W1, W2]
PLAN = Path(__file__).parent / "data" / "kubeadm-upgrade-plan-v1.33.13-v1.34.4.txt"
EXP = Expectation(OLD, NEW, etcd_target="3.6.5-0", coredns_target="v1.12.1")
# (node, window) in rollout order; staging runs 20..30, the loads 0..200
STEPS = [(CP, Window(30, 80)), (W1, Window(90, 110)), (W2, Window(120, 140))]
SAMPLE, NGINX = "kd-sample", "nginx-correct"  # the workloads' ids: a Deployment and a StatefulSet
WORKLOADS = [SAMPLE, NGINX]


def snap(at: float, label: str, done: list[str], out: tuple[str, ...] = ()) -> Snapshot:
    """The cluster as it should look with the nodes `done` upgraded (addons follow the control plane)."""
    cp_done = CP in done
    nodes = tuple(NodeState(n, ready=True, schedulable=n not in out, role="control-plane" if n == CP else "worker",
                            kubelet=NEW if n in done else OLD) for n in NODES)
    comps = {c: {CP: NEW if cp_done else OLD} for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    comps["etcd"] = {CP: "3.6.5-0" if cp_done else "3.5.24-0"}
    comps["kube-proxy"] = {n: NEW if cp_done else OLD for n in NODES}
    comps["coredns"] = {"coredns-a": "v1.12.1" if cp_done else "v1.12.0"}
    return Snapshot(at, nodes, label=label, api_version=NEW if cp_done else OLD, components=comps)


def workload(wid: str = SAMPLE, ready: int = 3, restarts: int = 0) -> WorkloadState:
    kind = "Deployment" if wid == SAMPLE else "StatefulSet"
    pods = tuple(PodState(f"kd-upgrade-{wid}", f"{wid}-{i}", W1, "Running", True, restarts=restarts) for i in range(3))
    return WorkloadState(kind, f"kd-upgrade-{wid}", wid, 3, {"app": wid}, ready, ready, pods)


def run(wid: str) -> WorkloadRun:
    """A workload whose load ran 0..200 s at 10 req/s without a failure, back at 3/3 at the end."""
    st = workload(wid)
    return WorkloadRun(wid, st.kind, st.namespace, wid, host_port=41000 + WORKLOADS.index(wid), rate=12.5,
                       operations=[Operation("http", t / 10, t / 10 + 0.01, "ok") for t in range(0, 2000)], final=st)


def good_record() -> RehearsalRecord:
    rec = RehearsalRecord(Settings(OLD, NEW), "kdupgrade", Recorder("upgrade"), all_nodes=list(NODES),
                          control_planes=[CP], sequence=list(NODES), expectation=EXP, started=0.0, finished=205.0,
                          workloads=[run(w) for w in WORKLOADS])
    rec.plan_text = PLAN.read_text()
    rec.plan = parse_upgrade_plan(rec.plan_text)
    rec.stage_window = Window(20, 30)
    rec.kubelet_apiservers = [(0.0, {CP: CP, W1: CP, W2: CP})]
    rec.checkpoints.append(snap(5, "before", []))
    done: list[str] = []
    for node, window in STEPS:
        role: Role = "control-plane" if node == CP else "worker"
        nr = NodeRecord(node, role, "apply" if node == CP else "node", window=window,
                        phases=[Phase("drain", window.start, window.start + 5)],
                        workloads_before={w: workload(w) for w in WORKLOADS},
                        workloads_after={w: workload(w) for w in WORKLOADS})
        nr.before = snap(window.start - 1, f"before {node}", list(done))
        rec.samples.append(snap(window.start + 2, f"during {node}", list(done), out=(node,)))
        done.append(node)
        nr.after = snap(window.end + 2, f"after {node}", list(done))
        nr.verdicts = [Verdict.ok("step-effect", f"{node} moved")]
        rec.checkpoints += [nr.before, nr.after]
        rec.nodes.append(nr)
    rec.final = snap(150, "final", list(done))
    rec.checkpoints.append(rec.final)
    rec.data_before = {"kd-upgrade-data-000": "aa", "kd-upgrade-data-001": "bb"}
    rec.data_after = dict(rec.data_before)
    return rec


def by_check(rec: RehearsalRecord) -> dict[str, Verdict]:
    return {v.check: v for v in judge(rec)}


def test_a_good_rehearsal_passes_every_check_in_reading_order() -> None:
    verdicts = judge(good_record())
    assert [v.check for v in verdicts] == [
        "upgrade-plan", *(step_check(n) for n in NODES), "rollout", "version-skew", "nodes-out",
        "availability kd-sample", "failed-requests kd-sample", "availability nginx-correct",
        "failed-requests nginx-correct", "versions", "data", "replicas kd-sample", "replicas nginx-correct"]
    assert all(v.passed for v in verdicts), [str(v) for v in verdicts if not v.passed]
    v = {v.check: v for v in verdicts}
    assert v["upgrade-plan"].series["upgrade_plan"]["apply_command"].endswith(NEW)
    for w in WORKLOADS:  # each workload's own totals and its own whole-upgrade plot, marked with every window
        assert {f.name: f.value for f in v[workload_check("failed-requests", w)].figures}["requests_total"] == 2000
        availability = v[workload_check("availability", w)]
        assert availability.series["timeline"]["t"][0] == 0.0
        assert [x["label"] for x in availability.series["windows"]] == ["stage images", *(f"upgrade {n}" for n in NODES)]
    assert "StatefulSet kd-upgrade-nginx-correct/nginx-correct: 3/3 ready" in v["replicas nginx-correct"].reason


def test_a_node_step_is_judged_for_every_workload_on_its_own() -> None:
    rec = good_record()
    nr = rec.nodes[1]
    rec.workloads[1].operations[950] = Operation("http", 95.0, 95.5, "fail", detail="connection reset")
    nr.workloads_after[NGINX] = workload(NGINX, restarts=1)
    v = {x.check: x for x in judge_node(rec, nr, [CP, W1], [CP])}
    per_workload = [workload_check(c, w) for w in WORKLOADS for c in ("workload", "availability", "failed-requests")]
    assert per_workload == [c for c in v if c.endswith(tuple(WORKLOADS))]
    assert all(v[workload_check(c, SAMPLE)].passed for c in ("workload", "availability", "failed-requests"))
    assert "containers restarted: nginx-correct-0 (0 -> 1)" in v["workload nginx-correct"].reason
    failed = v["failed-requests nginx-correct"]
    assert failed.status is Status.FAIL and f"1 request(s) failed during the upgrade of {W1}" in failed.reason
    assert [str(x) for x in v.values() if not x.passed and not x.check.endswith(NGINX)] == []


def test_a_workload_not_read_around_a_step_is_unknown_not_pass() -> None:
    rec = good_record()
    del rec.nodes[0].workloads_after[SAMPLE]
    v = {x.check: x for x in judge_node(rec, rec.nodes[0], [CP], [CP])}
    assert v["workload kd-sample"].status is Status.UNKNOWN and f"after the upgrade of {CP}" in v["workload kd-sample"].reason


def test_a_halted_rollout_fails_the_rollout_and_the_end_state_says_why() -> None:
    rec = good_record()
    rec.nodes = rec.nodes[:1]
    rec.nodes[0].verdicts.append(Verdict.fail("version-skew", "kubelet on x newer than kube-apiserver"))
    rec.halted = f"halted after {CP}: version-skew: FAIL: kubelet on x newer than kube-apiserver"
    rec.final = snap(150, "final", [CP])
    rec.checkpoints[-1] = rec.final
    v = by_check(rec)
    assert v["rollout"].status is Status.FAIL and v["rollout"].reason == rec.halted
    assert v[step_check(CP)].status is Status.FAIL and "newer than kube-apiserver" in v[step_check(CP)].reason
    assert v["versions"].status is Status.FAIL and f"kubelet on {W1} reports {OLD}, expected {NEW}" in v["versions"].reason
    assert step_check(W1) not in v


def test_a_rollout_that_skipped_a_node_is_not_complete() -> None:
    rec = good_record()
    rec.nodes = [n for n in rec.nodes if n.node != W2]
    v = by_check(rec)
    assert v["rollout"].status is Status.FAIL and f"the rollout's sequence is {NODES}" in v["rollout"].reason


def test_a_step_error_fails_its_node_even_when_its_checks_passed() -> None:
    rec = good_record()
    rec.nodes[1].error = "drain of kdupgrade-worker failed after 240s: Cannot evict pod"
    assert by_check(rec)[step_check(W1)].reason == f"the step failed: {rec.nodes[1].error}"


def test_no_plan_recorded_fails_the_plan_check_with_the_halt() -> None:
    rec = good_record()
    rec.plan, rec.halted = None, f"halted after {W1}: skew"
    v = by_check(rec)["upgrade-plan"]
    assert v.status is Status.FAIL and "no `kubeadm upgrade plan` output was recorded (rollout halted after" in v.reason


def test_a_failed_request_fails_the_whole_upgrade_even_within_the_slo_ratio() -> None:
    rec = good_record()
    rec.workloads[0].operations[900] = Operation("http", 90.0, 90.5, "fail", detail="connection refused")
    v = by_check(rec)
    assert v["availability kd-sample"].passed  # 1 failure in ~1250 judged requests: ratio 0.9992, within the 0.999 SLO
    failed = v["failed-requests kd-sample"]
    assert failed.status is Status.FAIL
    assert "1 request(s) failed across the upgrade (allowed 0); first: connection refused" in failed.reason
    assert v["failed-requests nginx-correct"].passed  # the other workload's requests all succeeded


def test_an_outage_of_one_workload_fails_its_availability_only() -> None:
    rec = good_record()
    ops = rec.workloads[1].operations
    rec.workloads[1].operations = [Operation("http", o.start, o.end, "fail", detail="connection refused")
                                   if 95 <= o.start < 100 else o for o in ops]
    v = by_check(rec)
    assert v["availability nginx-correct"].status is Status.FAIL and "below the SLO" in v["availability nginx-correct"].reason
    assert v["availability kd-sample"].passed and v["failed-requests kd-sample"].passed


def test_no_workload_under_load_is_unknown_not_pass() -> None:
    rec = good_record()
    rec.workloads = []
    v = by_check(rec)
    assert v["availability"].status is Status.UNKNOWN and "no workload was kept under load" in v["availability"].reason


def test_two_nodes_out_at_once_is_caught_from_the_samples() -> None:
    rec = good_record()
    rec.samples.append(snap(95, f"during {W1}", [CP], out=(W1, W2)))
    v = by_check(rec)["nodes-out"]
    assert v.status is Status.FAIL and f"2 nodes out of service at once at during {W1}" in v.reason


def test_a_worker_ahead_of_the_api_server_is_a_skew_violation() -> None:
    rec = good_record()
    bad = snap(85, f"during {W1}", [])
    bad = Snapshot(bad.at, tuple(NodeState(n.name, True, role=n.role, kubelet=NEW if n.name == W1 else OLD)
                                 for n in bad.nodes), label=bad.label, api_version=OLD, components=bad.components)
    rec.samples.append(bad)
    v = by_check(rec)["version-skew"]
    assert v.status is Status.FAIL and f"kubelet on {W1} at {NEW}: newer than kube-apiserver {OLD}" in v.reason


def test_lost_data_and_missing_replicas_fail_the_end_state() -> None:
    rec = good_record()
    rec.data_after = {"kd-upgrade-data-000": "aa"}
    rec.workloads[1].final = workload(NGINX, ready=2)
    v = by_check(rec)
    assert v["data"].status is Status.FAIL and "kd-upgrade-data-001" in v["data"].reason
    replicas = v["replicas nginx-correct"]
    assert replicas.status is Status.FAIL and "nginx-correct: 2/3 ready at the end" in replicas.reason
    assert v["replicas kd-sample"].passed


def test_nothing_recorded_at_the_end_is_unknown_not_pass() -> None:
    rec = good_record()
    rec.final = None
    for w in rec.workloads:
        w.final = None
    v = by_check(rec)
    assert v["versions"].status is Status.UNKNOWN
    assert all(v[workload_check("replicas", w)].status is Status.UNKNOWN for w in WORKLOADS)


def test_the_upgrade_window_runs_from_staging_to_the_last_uncordon() -> None:
    rec = good_record()
    assert rec.upgrade_window == Window(20, 140)
    rec.stage_window = None
    assert rec.upgrade_window == Window(30, 140)
    rec.nodes = []
    assert rec.upgrade_window is None


def test_the_skew_view_uses_the_kubelet_map_read_last_before_the_snapshot() -> None:
    rec = good_record()
    rec.kubelet_apiservers = [(0.0, {W1: CP}), (100.0, {W1: "other"})]
    assert rec.observed(snap(50, "x", [])).kubelet_apiservers == {W1: CP}
    assert rec.observed(snap(150, "x", [])).kubelet_apiservers == {W1: "other"}
    rec.kubelet_apiservers = [(10.0, {W1: CP})]
    assert rec.observed(snap(5, "x", [])).kubelet_apiservers == {W1: CP}  # before the first read: the first map


def test_dump_writes_the_plan_the_kubeadm_logs_and_a_json_record(tmp_path: Path) -> None:
    rec = good_record()
    rec.nodes[0].kubeadm_output = "[upgrade/successful] SUCCESS!"
    rec.nodes[1].error = "drain failed"
    rec.workloads[1].operations[900] = Operation("http", 90.0, 90.5, "fail", detail="connection refused")
    rec.recorder.event("upgrade-phase-start", f"{CP} drain")
    rec.dump(tmp_path / "upgrade")
    assert (tmp_path / "upgrade" / "kubeadm-upgrade-plan.txt").read_text() == rec.plan_text
    assert (tmp_path / "upgrade" / f"kubeadm-{CP}.log").read_text() == "[upgrade/successful] SUCCESS!"
    assert (tmp_path / "upgrade" / f"kubeadm-{W1}.log").read_text() == "drain failed"
    doc = json.loads((tmp_path / "upgrade" / "record.json").read_text())
    assert [n["node"] for n in doc["nodes"]] == NODES and doc["nodes"][0]["phases"] == [{"name": "drain", "seconds": 5.0}]
    assert doc["data"]["before"] == rec.data_before and len(doc["checkpoints"]) == len(rec.checkpoints)
    # each workload's failed requests on their own, not the 1999 (and 2000) that succeeded
    assert doc["failed_requests"] == {SAMPLE: [], NGINX: [doc["failed_requests"][NGINX][0]]}
    assert doc["failed_requests"][NGINX][0]["detail"] == "connection refused"
    assert [(w["id"], w["kind"], w["requests"], w["failed"]) for w in doc["workloads"]] == [
        (SAMPLE, "Deployment", 2000, 0), (NGINX, "StatefulSet", 2000, 1)]
    assert [e["kind"] for e in doc["events"]] == ["upgrade-phase-start"]


def _cluster(ports: tuple[int, ...] = (30080, 30081, 30082)) -> Cluster:
    return Cluster(name="t", kubeconfig=Path("/nonexistent"), provider="kind",
                   nodes={"control-plane": ["cp1"], "worker": ["w1"]},
                   port_map={p: {"cp1": 41000 + i, "w1": 42000 + i} for i, p in enumerate(ports)})


def _deployed(cluster: Cluster, name: str, node_port: int | None, kind: str = "Deployment") -> Deployed:
    spec = sample_workload("graceful", replicas=3, image="kd-sample:test", name=name, node_port=None)
    if kind == "StatefulSet":
        spec = as_statefulset(spec)
    if node_port is not None:
        spec = expose(spec, node_port)
    return Deployed(cluster, spec.in_namespace(f"kd-{name}"), kind, name, node_port)


def test_the_load_goes_through_the_first_control_planes_host_port() -> None:
    cluster = _cluster()
    spec = sample_workload("graceful", replicas=3, image="kd-sample:test")
    assert load_port(cluster, Deployed(cluster, spec, "Deployment", "kd-sample")) == 41000
    bare = sample_workload("graceful", replicas=3, image="kd-sample:test", node_port=None)
    with pytest.raises(ValueError, match="has no NodePort Service"):
        load_port(cluster, Deployed(cluster, bare, "Deployment", "kd-sample"))


def test_each_workload_gets_its_own_port_and_a_share_of_the_rate() -> None:
    cluster = _cluster()
    runs = plan_loads(cluster, [_deployed(cluster, "kd-sample", 30080),
                                _deployed(cluster, "kd-db", 30082, kind="StatefulSet")], Settings(OLD, NEW, rate=25.0))
    assert [(r.id, r.kind, r.namespace, r.name, r.host_port, r.rate) for r in runs] == [
        ("kd-sample", "Deployment", "kd-kd-sample", "kd-sample", 41000, 12.5),
        ("kd-db", "StatefulSet", "kd-kd-db", "kd-db", 41002, 12.5)]


@pytest.mark.parametrize(("names", "ports", "settings", "match"), [
    ((), (), Settings(OLD, NEW), "at least one workload"),
    (("a", "a"), (30080, 30081), Settings(OLD, NEW), "a are given more than once"),
    (("a", "b", "c", "d"), (30080, 30081, 30082, None), Settings(OLD, NEW),
     "4 workloads .* maps 3 node port.*rehearse at most 3 workloads at once"),
    (("a", "b"), (30080, 30080), Settings(OLD, NEW), r"\[30080\] is shared"),
    (("a", "b"), (30080, None), Settings(OLD, NEW), "'b' has no NodePort Service"),
    (("a", "b", "c"), (30080, 30081, 30082), Settings(OLD, NEW, rate=12.0),
     "12 req/s split over 3 workloads is 4.0 req/s each, below the 5 req/s"),
], ids=["none", "same-id", "more-than-ports", "shared-port", "no-node-port", "rate-too-thin"])
def test_a_load_plan_that_cannot_be_judged_is_refused_before_anything_is_touched(
        names: tuple[str, ...], ports: tuple[int | None, ...], settings: Settings, match: str) -> None:
    cluster = _cluster()
    with pytest.raises(ValueError, match=match):
        plan_loads(cluster, [_deployed(cluster, n, p) for n, p in zip(names, ports)], settings)
