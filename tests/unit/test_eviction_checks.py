"""The node-loss prediction and checkers (kubedrill.check.eviction) on hand-made timelines, and the
pure helpers that read the cluster's settings (kubedrill.observe.eviction) and tolerations."""

from __future__ import annotations

import dataclasses

import pytest

from kubedrill.check.eviction import (
    below,
    check_capacity_slo,
    check_eviction_bound,
    check_node_declared_lost,
    check_out_of_service_recovery,
    check_statefulset_stuck,
    check_traffic_outage,
    duration,
    eviction_measures,
    predict,
    replicas_needed,
)
from kubedrill.check.verdict import Status
from kubedrill.cluster import kindconfig
from kubedrill.observe.eviction import default_grace_s, go_duration
from kubedrill.record import Operation
from kubedrill.record.eviction import (
    NOT_READY,
    UNREACHABLE,
    EndpointSeen,
    EvictionSettings,
    EvictionTimeline,
    NodeSeen,
    PodLife,
    Toleration,
    Volume,
    toleration_for,
)
from kubedrill.record.series import problems

SETTINGS = EvictionSettings(grace_s=20, monitor_period_s=2, not_ready_toleration_s=30, unreachable_toleration_s=30,
                            k8s_version="v1.34.4", source="test")
LOST = 100.0
HEARTBEAT = 96.0  # 4 s before the loss: NotReady predicted in 116..119 (point 117.5)
W1, W2 = "kd-worker", "kd-worker2"
TAINTS = (f"{UNREACHABLE}:NoExecute", f"{UNREACHABLE}:NoSchedule")


def tol(seconds: float | None) -> tuple[Toleration, ...]:
    return tuple(Toleration(k, "Exists", "NoExecute", "", seconds) for k in (NOT_READY, UNREACHABLE))


def pod(name: str, node: str, *, seconds: float | None = 2, deletion: float | None = None, uid: str = "",
        first: float = 10.0, ready: float | None = 12.0, created: bool = False,
        volumes: tuple[Volume, ...] = ()) -> PodLife:
    return PodLife(name=name, uid=uid or f"uid-{name}-{first}", node=node, owner_kind="ReplicaSet", first_seen_at=first,
                   scheduled_at=first if created else None, ready_at=ready, deletion_at=deletion,
                   created_during_watch=created, tolerations=tol(seconds), volumes=volumes)


def timeline(pods: tuple[PodLife, ...], *, not_ready_at: float = 118.0, endpoints: tuple[EndpointSeen, ...] = (),
             kind: str = "Deployment", replicas: int = 4, **kw: object) -> EvictionTimeline:
    at_start = {p.name: (p.node, True) for p in pods if p.first_seen_at < LOST}
    base = dict(node=W1, disruption="node-stop", workload_kind=kind, workload="ns/kd-sample", replicas=replicas,
                settings=SETTINGS, lost_at=LOST, workers=(W1, W2), healed_at=200.0, heartbeats=(86.0, HEARTBEAT),
                node_seen=(NodeSeen(5.0, "True", ()), NodeSeen(not_ready_at, "Unknown", TAINTS)),
                endpoints=endpoints, pods=pods, endpoints_at_start=at_start, end_at=205.0)
    base.update(kw)
    return EvictionTimeline(**base)  # type: ignore[arg-type]


def healthy_deployment(seconds: float = 2) -> EvictionTimeline:
    """4 replicas, two on the lost worker, evicted on time, replaced on the other."""
    evict = 117.5 + seconds
    pods = (pod("a", W1, seconds=seconds, deletion=evict), pod("b", W1, seconds=seconds, deletion=evict + 0.3),
            pod("c", W2, seconds=seconds), pod("d", W2, seconds=seconds),
            pod("e", W2, seconds=seconds, first=evict + 0.5, ready=evict + 3, created=True),
            pod("f", W2, seconds=seconds, first=evict + 0.6, ready=evict + 3.2, created=True))
    eps = (EndpointSeen(118.8, "a", W1, False), EndpointSeen(118.8, "b", W1, False),
           EndpointSeen(evict + 3, "e", W2, True), EndpointSeen(evict + 3.2, "f", W2, True))
    return timeline(pods, endpoints=eps)


# -- settings and tolerations -------------------------------------------------------------------------

def test_go_durations_and_version_defaults() -> None:
    assert go_duration("20s") == 20 and go_duration("1m0s") == 60 and go_duration("500ms") == 0.5
    with pytest.raises(ValueError, match="not a Go duration"):
        go_duration("20 seconds")
    assert default_grace_s("v1.34.4") == 50 and default_grace_s("v1.31.2") == 40


def test_toleration_for_picks_the_shortest_matching_and_knows_forever() -> None:
    assert toleration_for(tol(30), UNREACHABLE) == (True, 30)
    assert toleration_for(tol(30) + (Toleration(UNREACHABLE, "Exists", "NoExecute", "", 5),), UNREACHABLE) == (True, 5)
    assert toleration_for((Toleration("", "Exists"),), UNREACHABLE) == (True, None)  # tolerates everything, for ever
    assert toleration_for((), UNREACHABLE) == (False, None)  # evicted at once
    assert toleration_for((Toleration(UNREACHABLE, "Exists", "NoSchedule"),), UNREACHABLE) == (False, None)


def test_node_loss_kind_config_keeps_the_short_timers() -> None:
    rendered = kindconfig.render("node-loss", "img", list(range(40000, 40010)))
    assert "node-monitor-grace-period" in rendered.text and "default-unreachable-toleration-seconds" in rendered.text
    assert rendered.roles == ["control-plane", "worker", "worker"]


# -- the prediction ---------------------------------------------------------------------------------

def test_prediction_window_from_the_last_heartbeat() -> None:
    p = predict(SETTINGS, HEARTBEAT)
    assert (p.not_ready_from, p.not_ready_by) == (116.0, 119.0) and p.evicted_at(2) == 119.5
    t = healthy_deployment()
    assert t.last_heartbeat() == HEARTBEAT
    assert [round(m.error or 0, 2) for m in eviction_measures(t)] == [0.0, 0.3]


def test_node_declared_lost_passes_in_the_window_and_fails_outside_it() -> None:
    ok = check_node_declared_lost(healthy_deployment())
    assert ok.status is Status.PASS and "NotReady 18.0 s after its loss" in ok.reason
    late = check_node_declared_lost(timeline((), not_ready_at=140.0))
    assert late.status is Status.FAIL and "outside the predicted 16.0..19.0 s" in late.reason
    never = check_node_declared_lost(timeline((), node_seen=(NodeSeen(5.0, "True", ()),)))
    assert never.status is Status.FAIL and "never turned Ready Unknown" in never.reason
    blind = check_node_declared_lost(timeline((), heartbeats=()))
    assert blind.status is Status.UNKNOWN and "no lease renewal" in blind.reason


def test_eviction_bound_pass_fail_and_unknown() -> None:
    ok = check_eviction_bound(healthy_deployment())
    assert ok.status is Status.PASS, ok.reason
    assert not problems(ok.series) and ok.series["windows"][0]["label"].endswith("lost, Ready until NotReady")
    t = healthy_deployment()
    slow = dataclasses.replace(t, pods=tuple(dataclasses.replace(p, deletion_at=135.0) if p.name == "a" else p
                                             for p in t.pods))
    v = check_eviction_bound(slow)
    assert v.status is Status.FAIL and "a was evicted 35.0 s after the loss, +15.5 s from the predicted 19.5 s" in v.reason
    forever = timeline((pod("a", W1, seconds=None),))
    v = check_eviction_bound(forever)
    assert v.status is Status.FAIL and "tolerates node.kubernetes.io/unreachable for ever" in v.reason
    nothing = timeline((pod("c", W2),))
    assert check_eviction_bound(nothing).status is Status.UNKNOWN
    early_heal = timeline((pod("a", W1, seconds=60),), healed_at=130.0)
    assert check_eviction_bound(early_heal).status is Status.UNKNOWN


# -- capacity against the SLO ---------------------------------------------------------------------

def test_capacity_passes_with_enough_replicas() -> None:
    v = check_capacity_slo(healthy_deployment(), min_serving=2, max_degraded_s=30)
    assert v.status is Status.PASS and "never fewer than 2" in v.reason, v.reason


def test_capacity_fails_with_default_toleration_and_says_what_to_change() -> None:
    evict = 118.5 + 30
    pods = (pod("a", W1, seconds=30, deletion=evict), pod("b", W1, seconds=30, deletion=evict),
            pod("c", W2, seconds=30), pod("e", W2, seconds=30, first=evict + 0.5, ready=evict + 3.5, created=True),
            pod("f", W2, seconds=30, first=evict + 0.5, ready=evict + 4.0, created=True))
    eps = (EndpointSeen(118.8, "a", W1, False), EndpointSeen(118.8, "b", W1, False),
           EndpointSeen(evict + 3.5, "e", W2, True), EndpointSeen(evict + 4, "f", W2, True))
    v = check_capacity_slo(timeline(pods, endpoints=eps, replicas=3), min_serving=2, max_degraded_s=30)
    assert v.status is Status.FAIL
    for phrase in ("pods tolerate unreachable for 30 s (the cluster's default, added by admission)",
                   "your Service was at 1 of 3 replicas for 52.0 s", "set tolerationSeconds to 3 for this workload",
                   "or run more replicas (4 spread over 2 workers keep 2 serving"):
        assert phrase in v.reason, v.reason
    assert v.series["windows"][0]["label"] == "1 of 3 serving"


def test_capacity_counts_a_partitioned_nodes_pods_as_serving_until_the_endpoints_drop_them() -> None:
    t = dataclasses.replace(healthy_deployment(), data_plane_lost=False)
    assert check_capacity_slo(t, min_serving=4, max_degraded_s=1).status is Status.FAIL
    steps_below = below([(100.0, 4), (118.8, 2), (123.5, 4)], 4, 200.0)
    assert steps_below == [(118.8, 123.5, 2)]


def test_capacity_unknown_without_endpoints_and_helpers() -> None:
    t = dataclasses.replace(healthy_deployment(), endpoints_at_start={})
    assert check_capacity_slo(t, 2, 30).status is Status.UNKNOWN
    assert replicas_needed(2, 2) == 4 and replicas_needed(2, 3) == 3 and replicas_needed(1, 2) == 2
    assert duration(312) == "5 min 12 s" and duration(48.25) == "48.2 s"


# -- traffic --------------------------------------------------------------------------------------

def ops(failing_until: float, late: float | None = None) -> list[Operation]:
    out = []
    t = 80.0
    while t < 206.0:
        bad = LOST <= t <= failing_until and int(t * 10) % 2 == 0
        out.append(Operation("http GET", t, t + (3.0 if bad else 0.01), "fail" if bad else "ok", detail="timeout"))
        t += 0.1
    if late is not None:
        out.append(Operation("http GET", late, late + 0.01, "fail", detail="connection refused"))
    return sorted(out, key=lambda o: o.start)


def test_traffic_outage_until_the_endpoints_update_passes_with_a_plot() -> None:
    v = check_traffic_outage(ops(119.0), healthy_deployment())
    assert v.status is Status.PASS, v.reason
    assert "all within 5 s of the endpoints update 18.8 s after the loss" in v.reason
    assert not problems(v.series) and sum(v.series["timeline"]["fail"]) > 0 and v.series["windows"]


def test_traffic_failing_long_after_the_endpoints_update_fails() -> None:
    v = check_traffic_outage(ops(119.0, late=140.0), healthy_deployment())
    assert v.status is Status.FAIL and "kube-proxy kept routing to the lost pods" in v.reason
    limited = check_traffic_outage(ops(119.0), healthy_deployment(), max_outage_s=5)
    assert limited.status is Status.FAIL and "shorten --node-monitor-grace-period (20 s)" in limited.reason
    assert check_traffic_outage([], healthy_deployment()).status is Status.UNKNOWN


def test_no_request_during_the_loss_is_unknown_not_a_pass() -> None:
    paused = [o for o in ops(LOST - 1) if not LOST <= o.start < 200.0]
    v = check_traffic_outage(paused, healthy_deployment())
    assert v.status is Status.UNKNOWN and "no request started while" in v.reason


# -- StatefulSets ---------------------------------------------------------------------------------

def statefulset(recovered: bool) -> EvictionTimeline:
    data = (Volume("data", "emptyDir"),)
    pods = [pod("s-0", W1, deletion=120.5, volumes=data), pod("s-1", W2, volumes=data)]
    if recovered:
        pods.append(pod("s-0", W2, first=155.0, ready=158.0, created=True, uid="new", volumes=data))
    return timeline(tuple(pods), kind="StatefulSet", replicas=2, out_of_service_at=140.0 if recovered else None)


def test_statefulset_is_reported_stuck_and_its_recovery_with_the_data_fate() -> None:
    stuck = check_statefulset_stuck(statefulset(recovered=True))
    assert stuck.status is Status.FAIL and "s-0 (Terminating for 20 s)" in stuck.reason
    assert "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute" in stuck.reason
    rec = check_out_of_service_recovery(statefulset(recovered=True))
    assert rec.status is Status.PASS, rec.reason
    assert "s-0 replaced on kd-worker2, Ready 18.0 s after the taint" in rec.reason
    assert "emptyDir data: its data stayed on kd-worker and is lost" in rec.reason
    assert check_out_of_service_recovery(statefulset(recovered=False)).status is Status.UNKNOWN
    assert check_statefulset_stuck(healthy_deployment()).status is Status.UNKNOWN


def test_recovery_reports_a_pv_pinned_to_the_lost_node() -> None:
    pinned = (Volume("data", "persistentVolumeClaim", claim="data-s-0", pv="pvc-1", pv_nodes=(W1,)),)
    t = timeline((pod("s-0", W1, deletion=120.5, volumes=pinned),), kind="StatefulSet", replicas=1,
                 out_of_service_at=140.0)
    v = check_out_of_service_recovery(t)
    assert v.status is Status.FAIL and "PVC data-s-0 is bound to pvc-1, usable only from kd-worker" in v.reason


# -- the workload variants --------------------------------------------------------------------------

def test_node_loss_sample_sets_tolerations_and_the_data_volume() -> None:
    from kubedrill.scenarios.node_loss import node_loss_sample

    spec = node_loss_sample("kubedrill/sample-app:x", replicas=4, toleration_s=2, kind="StatefulSet", data_volume=True)
    (sts,) = [d for d in spec.documents if d["kind"] == "StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    assert {(t["key"], t["tolerationSeconds"]) for t in pod["tolerations"]} == {(UNREACHABLE, 2), (NOT_READY, 2)}
    assert pod["volumes"][-1] == {"name": "data", "emptyDir": {}}
    assert not [d for d in spec.documents if d["kind"] == "PodDisruptionBudget"]
    default = node_loss_sample("kubedrill/sample-app:x", replicas=3, toleration_s=None)
    (dep,) = [d for d in default.documents if d["kind"] == "Deployment"]
    assert "tolerations" not in dep["spec"]["template"]["spec"]  # admission adds the cluster's default


def test_a_renewal_stamped_during_a_partition_is_not_the_last_heartbeat() -> None:
    """The kubelet stamps renewTime when it builds the request; one built during the partition
    arrives after the heal and must not move the prediction (seen on kind: stamped at +29.6 s)."""
    t = dataclasses.replace(healthy_deployment(), heartbeats=(86.0, HEARTBEAT, LOST + 29.6), healed_at=LOST + 32)
    assert t.last_heartbeat() == HEARTBEAT and check_node_declared_lost(t).status is Status.PASS
