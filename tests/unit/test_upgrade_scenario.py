"""The pure parts of kubedrill.scenarios.upgrade: judging a hand-made rehearsal record, and its dump.

The record below is what a good three-node rehearsal leaves behind (control plane first, load all
along, every checkpoint at the versions it should show); each test breaks one part of it and
checks that exactly the verdict that should catch it does, with a reason naming what broke.
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
from kubedrill.scenarios.upgrade import NodeRecord, RehearsalRecord, Settings, judge, load_port, step_check
from kubedrill.workload.deploy import Deployed
from kubedrill.workload.sample import sample_workload

OLD, NEW = "v1.33.13", "v1.34.4"
CP, W1, W2 = "kdupgrade-control-plane", "kdupgrade-worker", "kdupgrade-worker2"  # as in the captured plan
NODES = [CP, W1, W2]
PLAN = Path(__file__).parent / "data" / "kubeadm-upgrade-plan-v1.33.13-v1.34.4.txt"
EXP = Expectation(OLD, NEW, etcd_target="3.6.5-0", coredns_target="v1.12.1")
# (node, window) in rollout order; staging runs 20..30, the load 0..200
STEPS = [(CP, Window(30, 80)), (W1, Window(90, 110)), (W2, Window(120, 140))]


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


def workload(ready: int = 3) -> WorkloadState:
    pods = tuple(PodState("kd-upgrade", f"app-{i}", W1, "Running", True) for i in range(3))
    return WorkloadState("Deployment", "kd-upgrade", "kd-sample", 3, {"app": "kd-sample"}, ready, ready, pods)


def good_record() -> RehearsalRecord:
    rec = RehearsalRecord(Settings(OLD, NEW), "kdupgrade", Recorder("upgrade"), all_nodes=list(NODES),
                          control_planes=[CP], sequence=list(NODES), expectation=EXP, started=0.0, finished=205.0)
    rec.plan_text = PLAN.read_text()
    rec.plan = parse_upgrade_plan(rec.plan_text)
    rec.stage_window = Window(20, 30)
    rec.operations = [Operation("http", t / 10, t / 10 + 0.01, "ok") for t in range(0, 2000)]
    rec.kubelet_apiservers = [(0.0, {CP: CP, W1: CP, W2: CP})]
    rec.checkpoints.append(snap(5, "before", []))
    done: list[str] = []
    for node, window in STEPS:
        role: Role = "control-plane" if node == CP else "worker"
        nr = NodeRecord(node, role, "apply" if node == CP else "node", window=window,
                        phases=[Phase("drain", window.start, window.start + 5)],
                        workload_before=workload(), workload_after=workload())
        nr.before = snap(window.start - 1, f"before {node}", list(done))
        rec.samples.append(snap(window.start + 2, f"during {node}", list(done), out=(node,)))
        done.append(node)
        nr.after = snap(window.end + 2, f"after {node}", list(done))
        nr.verdicts = [Verdict.ok("step-effect", f"{node} moved")]
        rec.checkpoints += [nr.before, nr.after]
        rec.nodes.append(nr)
    rec.final = snap(150, "final", list(done))
    rec.checkpoints.append(rec.final)
    rec.final_workload = workload()
    rec.data_before = {"kd-upgrade-data-000": "aa", "kd-upgrade-data-001": "bb"}
    rec.data_after = dict(rec.data_before)
    return rec


def by_check(rec: RehearsalRecord) -> dict[str, Verdict]:
    return {v.check: v for v in judge(rec)}


def test_a_good_rehearsal_passes_every_check_in_reading_order() -> None:
    verdicts = judge(good_record())
    assert [v.check for v in verdicts] == ["upgrade-plan", *(step_check(n) for n in NODES), "rollout", "version-skew",
                                           "nodes-out", "availability", "failed-requests", "versions", "data",
                                           "replicas"]
    assert all(v.passed for v in verdicts), [str(v) for v in verdicts if not v.passed]
    v = {v.check: v for v in verdicts}
    assert v["upgrade-plan"].series["upgrade_plan"]["apply_command"].endswith(NEW)
    assert {f.name: f.value for f in v["failed-requests"].figures}["requests_total"] == 2000
    assert [w["label"] for w in v["availability"].series["windows"]] == ["stage images", *(f"upgrade {n}" for n in NODES)]


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
    rec.operations[900] = Operation("http", 90.0, 90.5, "fail", detail="connection refused")
    v = by_check(rec)
    assert v["availability"].passed  # 1 failure in ~1250 judged requests: ratio 0.9992, within the 0.999 SLO
    assert v["failed-requests"].status is Status.FAIL
    assert "1 request(s) failed across the upgrade (allowed 0); first: connection refused" in v["failed-requests"].reason


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
    rec.final_workload = workload(ready=2)
    v = by_check(rec)
    assert v["data"].status is Status.FAIL and "kd-upgrade-data-001" in v["data"].reason
    assert v["replicas"].status is Status.FAIL and "2/3 ready at the end" in v["replicas"].reason


def test_nothing_recorded_at_the_end_is_unknown_not_pass() -> None:
    rec = good_record()
    rec.final, rec.final_workload = None, None
    v = by_check(rec)
    assert v["versions"].status is Status.UNKNOWN and v["replicas"].status is Status.UNKNOWN


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
    rec.operations[900] = Operation("http", 90.0, 90.5, "fail", detail="connection refused")
    rec.recorder.event("upgrade-phase-start", f"{CP} drain")
    rec.dump(tmp_path / "upgrade")
    assert (tmp_path / "upgrade" / "kubeadm-upgrade-plan.txt").read_text() == rec.plan_text
    assert (tmp_path / "upgrade" / f"kubeadm-{CP}.log").read_text() == "[upgrade/successful] SUCCESS!"
    assert (tmp_path / "upgrade" / f"kubeadm-{W1}.log").read_text() == "drain failed"
    doc = json.loads((tmp_path / "upgrade" / "record.json").read_text())
    assert [n["node"] for n in doc["nodes"]] == NODES and doc["nodes"][0]["phases"] == [{"name": "drain", "seconds": 5.0}]
    assert doc["data"]["before"] == rec.data_before and len(doc["checkpoints"]) == len(rec.checkpoints)
    assert [o["detail"] for o in doc["failed_requests"]] == ["connection refused"]  # not the 1999 that succeeded
    assert [e["kind"] for e in doc["events"]] == ["upgrade-phase-start"]


def test_the_load_goes_through_the_first_control_planes_host_port() -> None:
    cluster = Cluster(name="t", kubeconfig=Path("/nonexistent"), provider="kind",
                      nodes={"control-plane": ["cp1"], "worker": ["w1"]},
                      port_map={30080: {"cp1": 41000, "w1": 41001}})
    spec = sample_workload("graceful", replicas=3, image="kd-sample:test")
    assert load_port(cluster, Deployed(cluster, spec, "Deployment", "kd-sample")) == 41000
    bare = sample_workload("graceful", replicas=3, image="kd-sample:test", node_port=None)
    with pytest.raises(ValueError, match="has no NodePort Service"):
        load_port(cluster, Deployed(cluster, bare, "Deployment", "kd-sample"))
