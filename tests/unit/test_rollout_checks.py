"""Rollout checkers (kubedrill.check.rollout) on hand-made snapshots: effect, versions, nodes out, workload, data."""

from __future__ import annotations

from kubedrill.check.rollout import (
    Expectation,
    data_intact,
    one_node_out_at_a_time,
    step_took_effect,
    to_observed,
    versions_as_expected,
    workload_intact,
)
from kubedrill.check.skew import skew_violations
from kubedrill.check.verdict import Status
from kubedrill.record.cluster import NodeState, PodState, Snapshot, WorkloadState

OLD, NEW = "v1.33.13", "v1.34.4"
EXP = Expectation(OLD, NEW, etcd_target="3.6.5-0", coredns_target="v1.12.1")


def snap(kubelets: dict[str, str], api: str = OLD, cp_images: str = OLD, out: tuple[str, ...] = (),
         notready: tuple[str, ...] = (), proxy: str | None = None, label: str = "", etcd: str = "3.5.24-0",
         coredns: str = "v1.12.0") -> Snapshot:
    nodes = tuple(NodeState(n, ready=n not in notready, schedulable=n not in out,
                            role="control-plane" if n == "cp" else "worker", kubelet=v)
                  for n, v in kubelets.items())
    comps = {c: {"cp": cp_images} for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    comps["etcd"] = {"cp": etcd}
    comps["kube-proxy"] = {n: proxy or api for n in kubelets}
    comps["coredns"] = {"coredns-a": coredns, "coredns-b": coredns}
    return Snapshot(0.0, nodes, label=label, api_version=api, components=comps)


ALL_OLD = {"cp": OLD, "w1": OLD, "w2": OLD}
CP_DONE = {"cp": NEW, "w1": OLD, "w2": OLD}


def test_versions_before_any_step_are_the_source() -> None:
    assert versions_as_expected(snap(ALL_OLD), [], EXP) == []


def test_versions_after_the_control_plane_step_include_addons_and_etcd() -> None:
    good = snap(CP_DONE, api=NEW, cp_images=NEW, etcd="3.6.5-0", coredns="v1.12.1")
    assert versions_as_expected(good, ["cp"], EXP, ["cp"]) == []
    stale = snap(CP_DONE, api=NEW, cp_images=NEW, etcd="3.5.24-0", proxy=OLD)
    problems = "\n".join(versions_as_expected(stale, ["cp"], EXP, ["cp"]))
    assert "etcd on cp runs 3.5.24-0, expected 3.6.5-0" in problems
    assert "kube-proxy on w1 runs v1.33.13" in problems
    assert "coredns pod coredns-a runs v1.12.0" in problems


def test_versions_flag_a_kubelet_that_did_not_move_and_a_notready_node() -> None:
    s = snap({"cp": NEW, "w1": OLD, "w2": OLD}, api=NEW, cp_images=NEW, etcd="3.6.5-0", coredns="v1.12.1",
             notready=("w2",))
    problems = versions_as_expected(s, ["cp", "w1"], EXP, ["cp"])
    assert "kubelet on w1 reports v1.33.13, expected v1.34.4" in problems
    assert "node w2 is NotReady" in problems


def test_step_effect_needs_the_version_to_change() -> None:
    before, after = snap(ALL_OLD), snap(CP_DONE, api=NEW, cp_images=NEW)
    assert step_took_effect("cp", before, after, NEW, control_plane=True).status is Status.PASS
    assert step_took_effect("w1", before, after, NEW, control_plane=False).status is Status.FAIL
    same = step_took_effect("cp", after, after, NEW, control_plane=True)
    assert same.status is Status.FAIL and "already at" in same.reason
    assert step_took_effect("nope", before, after, NEW, control_plane=False).status is Status.UNKNOWN


def test_two_nodes_out_at_once_fails_and_names_them() -> None:
    ok = [snap(ALL_OLD, out=("w1",)), snap(ALL_OLD, notready=("cp",))]
    assert one_node_out_at_a_time(ok).status is Status.PASS
    v = one_node_out_at_a_time([*ok, snap(ALL_OLD, out=("w1",), notready=("w2",), label="during w1")])
    assert v.status is Status.FAIL and "2 nodes out of service at once at during w1" in v.reason
    assert one_node_out_at_a_time([Snapshot(0.0)]).status is Status.UNKNOWN


def test_worker_first_snapshot_shows_a_skew_violation() -> None:
    wf = snap({"cp": OLD, "w1": NEW, "w2": OLD})
    (v,) = skew_violations(to_observed(wf))
    assert v.node == "w1" and v.component == "kubelet"


def _wl(ready: int, pods: list[tuple[str, str, int]]) -> WorkloadState:
    return WorkloadState("Deployment", "ns", "app", 3, {"app": "a"}, ready, ready,
                         tuple(PodState("ns", n, "w1", phase, phase == "Running", restarts=r) for n, phase, r in pods))


def test_workload_intact_catches_missing_replicas_failed_pods_and_restarts() -> None:
    before = _wl(3, [("a", "Running", 0), ("b", "Running", 0), ("c", "Running", 0)])
    assert workload_intact(before, before).status is Status.PASS
    after = _wl(2, [("a", "Running", 1), ("b", "Failed", 0), ("d", "Running", 0)])
    v = workload_intact(before, after)
    assert v.status is Status.FAIL
    assert "2/3 ready" in v.reason and "Failed/Unknown phase: b" in v.reason and "a (0 -> 1)" in v.reason


def test_data_intact_compares_checksums() -> None:
    before = {"cm-1": "aa", "cm-2": "bb"}
    assert data_intact(before, dict(before)).status is Status.PASS
    v = data_intact(before, {"cm-1": "zz", "cm-2": None})
    assert v.status is Status.FAIL and "1 object(s) missing (cm-2), 1 changed (cm-1)" in v.reason
    assert data_intact({}, {}).status is Status.UNKNOWN
