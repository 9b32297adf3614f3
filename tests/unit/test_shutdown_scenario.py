"""The shutdown drill's pure parts without a cluster: its causes come from the disruption registry
with one constructor, targets get the right thresholds and specs, and judge() carries the figures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from kubedrill.check.verdict import Status
from kubedrill.disrupt.base import lookup
from kubedrill.disrupt.pod import (
    DeletePod,
    EvictPod,
    RolloutRestart,
    termination_cause,
    termination_causes,
)
from kubedrill.record import Operation, Recorder
from kubedrill.record.termination import KubeEvent, PodEvidence, termination_record
from kubedrill.scenarios.shutdown import (
    DeployedTarget,
    ShutdownRecord,
    Target,
    TargetPool,
    judge,
)
from kubedrill.workload.deploy import Deployed
from kubedrill.workload.sample import sample_workload

POD = "kd-sample-0"


class NoCluster:
    """Constructing a disruption must not touch the cluster; any call fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the cluster was used ({name}) before inject()")


def workload(grace: int = 15, replicas: int = 3) -> Deployed:
    spec = sample_workload("graceful", replicas=replicas, grace_seconds=grace, prestop_seconds=5,
                           min_available=1).in_namespace("kd-shutdown-x")
    return Deployed(NoCluster(), spec, "Deployment", "kd-sample", 30080,  # type: ignore[arg-type]
                    ("http://127.0.0.1:30080", "http://127.0.0.1:31080"))


def test_causes_are_the_registered_pod_terminations_in_order() -> None:
    assert termination_causes() == ["delete", "evict", "rollout-restart"]
    assert [lookup(c) for c in termination_causes()] == [DeletePod, EvictPod, RolloutRestart]
    assert all(termination_cause(c).name == c for c in termination_causes())


def test_an_unknown_cause_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no disruption named 'reboot-pod'.*delete"):
        termination_cause("reboot-pod")


@pytest.mark.parametrize("cause", ["delete", "evict"])
def test_single_pod_causes_need_the_victim(cause: str) -> None:
    make = termination_cause(cause)
    assert make.targets_one_pod
    d = make(workload(), POD)
    assert d.victims == [POD] and d.namespace == "kd-shutdown-x" and d.workload == "kd-sample"
    assert d.recover_timeout_s == 120 + 2 * 15
    d.requested_at = 12.5
    assert d.deletion_requested_at(POD) == 12.5 and d.deletion_requested_at("other") is None
    with pytest.raises(ValueError, match="name the pod"):
        make(workload())


def test_rollout_restart_terminates_every_pod_and_lets_the_watch_time_them() -> None:
    make = termination_cause("rollout-restart")
    assert not make.targets_one_pod
    d = make(workload(grace=10, replicas=4))
    assert d.victims == [] and d.selector == "app.kubernetes.io/name=kd-sample"
    assert d.recover_timeout_s == 120 + 4 * (10 + 30)
    d.requested_at = 3.0
    assert d.deletion_requested_at("any") is None
    with pytest.raises(ValueError, match="terminates every pod"):
        make(workload(), POD)


def test_targets_thresholds_always_require_inflight() -> None:
    sample = Target("sample-graceful", sample_mode="graceful")
    th = sample.thresholds(0.9, 2)
    assert (th.max_grace_fraction, th.max_failed_requests, th.require_inflight) == (0.9, 2, True)
    # Without a slow_path draining is not measured: UNKNOWN, never a silent pass.
    no_slow = Target("mine", spec=dataclasses.replace(sample_workload("graceful"), slow_path=None))
    assert no_slow.thresholds(0.8, 0).require_inflight


def test_pool_specs_the_sample_app_for_any_free_port() -> None:
    pool = TargetPool(NoCluster(), sample_image=lambda: "kubedrill/sample-app:abc")  # type: ignore[arg-type]
    spec = pool.spec_for(Target("sample-slow-exit", sample_mode="slow-exit", sample_grace=12))
    assert spec.node_port is None and spec.grace_seconds == 12 and spec.replicas == 3
    assert spec.images == ("kubedrill/sample-app:abc",)
    with pytest.raises(ValueError, match="neither a workload spec nor a sample mode"):
        pool.spec_for(Target("empty"))


def test_half_the_traffic_goes_through_the_lagging_router() -> None:
    d = workload()
    assert DeployedTarget("t", d).traffic_urls == d.urls
    lagged = DeployedTarget("t", d, lb_url="http://127.0.0.1:30082").traffic_urls
    assert lagged == ("http://127.0.0.1:30082", "http://127.0.0.1:30080", "http://127.0.0.1:30082",
                      "http://127.0.0.1:31080")


def graceful_record(clock: Recorder) -> tuple[PodEvidence, list[Operation], list[Operation], float]:
    """One pod deleted at t0+3 s: preStop 5 s, SIGTERM, drained, exit 0 at +9 s; grace 15 s."""
    t0 = clock.mono0 + 1.0
    deletion = t0 + 3.0
    traffic = [Operation("http GET /", t0 + i / 40, t0 + i / 40 + 0.004, "ok", result="p") for i in range(800)]
    slow = [Operation("slow", deletion - 1, deletion + 8, "ok", result=POD)]
    off = clock.wall0 - clock.mono0
    events = [("started", t0 - 30), ("prestop-start", deletion + 0.3), ("prestop-end", deletion + 5.3),
              ("sigterm", deletion + 5.32), ("listener-closed", deletion + 5.33), ("inflight-drained", deletion + 8.0),
              ("exit", deletion + 9.01)]
    message = json.dumps({"pod": POD, "node": "n1", "mode": "graceful",
                          "events": [{"event": e, "time": t + off, "mono": t} | ({"code": 0} if e == "exit" else {})
                                     for e, t in events]})
    ev = PodEvidence(pod=POD, uid="u", node="n1", container="app", grace_seconds=15, prestop_hook=True,
                     first_seen_at=t0, deletion_seen_at=deletion + 0.05, deletion_timestamp_wall=deletion + off + 15,
                     terminated_seen_at=deletion + 9.5, gone_at=deletion + 10, exit_code=0, reason="Completed",
                     signal=None, message=message, started_wall=t0 - 30 + off, finished_wall=deletion + 9 + off)
    return ev, slow, traffic, deletion


def test_judge_gives_the_shutdown_verdict_with_the_drills_figures(tmp_path: Path) -> None:
    clock = Recorder("shutdown/sample-graceful/delete")
    ev, slow, traffic, deletion = graceful_record(clock)
    rec = termination_record(ev, clock, requested_at=deletion, slow=slow, traffic=traffic)
    record = ShutdownRecord("delete", DeletePod(workload(), POD), clock, [rec], [ev], "800 requests (0 failed)",
                            800, 0, 24, ["victim held 1 slow request(s)"])
    [verdict] = judge(record)
    assert verdict.check == "shutdown" and verdict.passed, verdict
    names = [f.name for f in verdict.figures]
    for name in ("exit_after_deletion", "grace_used", "sigkilled", "prestop_ran", "inflight_requests", "exit_reason",
                 "requests", "requests_failed", "slow_requests_started"):
        assert name in names, f"{name} missing from {names}"
    record.dump(tmp_path / "artifacts")
    assert {p.name for p in (tmp_path / "artifacts").iterdir()} == {"pods.json", "records.json", "history.json", "runtime.json"}


def test_judge_without_a_terminated_pod_is_unknown() -> None:
    record = ShutdownRecord("delete", DeletePod(workload(), POD), Recorder(), [], [], "0 requests", 0, 0, 0)
    [verdict] = judge(record)
    assert verdict.status is Status.UNKNOWN and "terminated no pod" in verdict.reason



def test_judge_without_the_app_record_rests_on_what_any_pod_leaves() -> None:
    clock = Recorder("shutdown/sample-graceful/delete")
    ev, slow, traffic, deletion = graceful_record(clock)
    ev = dataclasses.replace(ev, events=(KubeEvent("Killing", "Normal", "Stopping container app", 1, None, None),))
    direct = [Operation("direct GET /", deletion - 2 + i / 4, deletion - 2 + i / 4 + 0.01, "ok" if i < 28 else "fail",
                        result=POD) for i in range(40)]  # answered until SIGTERM (+5 s), then refused
    rec = termination_record(ev, clock, requested_at=deletion, slow=slow, traffic=traffic, direct=direct)
    idle = Operation("slow", deletion - 20, deletion - 11, "ok", result="kd-sample-1")
    record = ShutdownRecord("delete", DeletePod(workload(), POD), clock, [rec], [ev], "800 requests (0 failed)",
                            800, 0, 1, [], grace=15, slow_ops=slow, traffic_ops=traffic, direct_ops=direct,
                            idle_slow=idle)
    record.disruption.requested_at = deletion
    [off] = judge(record, app_record=False)
    assert off.passed and "preStop hook ran without failing" in off.reason, off
    figures = {f.name: f for f in off.figures}
    assert figures["app_record"].value == 0
    assert figures["slow_request_idle_s"].value == 9.0 and "spans it" in figures["slow_request_idle_s"].detail
    short = dataclasses.replace(record, idle_slow=dataclasses.replace(idle, end=idle.start + 2.0))
    [v] = judge(short, app_record=False)
    assert "TOO SHORT to span the termination" in {f.name: f for f in v.figures}["slow_request_idle_s"].detail
