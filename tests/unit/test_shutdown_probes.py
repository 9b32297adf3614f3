"""The shutdown suite's evidence path without a cluster: evidence -> TerminationRecord, the lagging
router's schedule, the workload exposure, and the traffic / slow-request probes on a local target."""

from __future__ import annotations

import json
import time

import pytest

from kubedrill.check.shutdown import check_shutdown
from kubedrill.check.verdict import Status
from kubedrill.load import LocalTarget
from kubedrill.load.inflight import SlowStream
from kubedrill.load.lagged_lb import LagQueue
from kubedrill.load.traffic import ServiceTraffic
from kubedrill.record import Operation, Recorder
from kubedrill.record.lifecycle import parse_lifecycle
from kubedrill.record.termination import (
    KubeEvent,
    PodEvidence,
    exit_estimate,
    in_flight_at,
    lifecycle_times,
    termination_record,
)
from kubedrill.workload.deploy import expose, workload_object
from kubedrill.workload.sample import sample_workload

POD = "app-1"


def evidence(clock: Recorder, deletion: float, *, events: list[tuple[str, float]] | None, exit_code: int = 0,
             reason: str = "Completed", finished: float | None = None, prestop_hook: bool = True,
             kube_events: tuple[KubeEvent, ...] = (), shared_clock: bool = True) -> PodEvidence:
    off = clock.wall0 - clock.mono0
    mono_off = 0.0 if shared_clock else 12345.0  # another host's boot time
    message = "" if events is None else json.dumps({"pod": POD, "node": "n", "mode": "m", "events": [
        {"event": e, "time": t + off, "mono": t + mono_off} | ({"code": exit_code} if e == "exit" else {})
        for e, t in events]})
    fin = finished if finished is not None else (events[-1][1] if events else deletion + 1)
    return PodEvidence(pod=POD, uid="u1", node="n", container="app", grace_seconds=15, prestop_hook=prestop_hook,
                       first_seen_at=deletion - 30, deletion_seen_at=deletion + 0.05,
                       deletion_timestamp_wall=deletion + off + 15, terminated_seen_at=fin + 0.8, gone_at=fin + 1,
                       exit_code=exit_code, reason=reason, signal=None, message=message,
                       started_wall=deletion - 30 + off, finished_wall=int(fin + off), events=kube_events)


def traffic(t0: float, t1: float) -> list[Operation]:
    return [Operation("http GET /", t0 + i / 20, t0 + i / 20 + 0.01, "ok") for i in range(int((t1 - t0) * 20))]


GRACEFUL = [("started", -30.0), ("prestop-start", 0.4), ("prestop-end", 5.4), ("sigterm", 5.45),
            ("listener-closed", 5.46), ("inflight-drained", 8.0), ("exit", 8.01)]


def test_graceful_evidence_becomes_a_passing_record() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    ev = evidence(clock, d, events=[(e, d + t) for e, t in GRACEFUL])
    slow = [Operation("slow", d - 1, d + 8, "ok", result=POD), Operation("slow", d - 1, d + 8, "ok", result="other"),
            Operation("slow", d - 9, d - 0.5, "ok", result=POD)]
    rec = termination_record(ev, clock, requested_at=d, slow=slow, traffic=traffic(d - 3, d + 12))
    assert (rec.deletion_at, rec.prestop_start, rec.sigterm_at) == (d, d + 0.4, d + 5.45)
    assert rec.exit_at == pytest.approx(d + 8.01)  # the app's own exit event, not finishedAt
    assert [o.result for o in rec.inflight] == [POD]  # only what this pod served at deletion
    v = check_shutdown(rec)
    assert v.status is Status.PASS, v.reason


def test_without_request_time_the_watch_sighting_is_the_deletion() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    rec = termination_record(evidence(clock, d, events=[(e, d + t) for e, t in GRACEFUL]), clock)
    assert rec.deletion_at == pytest.approx(d + 0.05)


def test_sigkilled_pod_exit_comes_from_finished_at_within_half_a_second() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    killed_at = d + 15.3
    ev = evidence(clock, d, events=[("started", d - 30), ("prestop-start", d + 0.4), ("prestop-end", d + 5.4),
                                    ("sigterm", d + 5.45)], exit_code=137, reason="Error", finished=killed_at)
    est = exit_estimate(ev, clock)
    assert est is not None and abs(est - killed_at) <= 0.5
    rec = termination_record(ev, clock, requested_at=d, traffic=traffic(d - 3, d + 18))
    v = check_shutdown(rec)
    assert v.status is Status.FAIL and "the process ignored SIGTERM" in v.reason


def test_app_times_on_another_hosts_clock_use_wall_time() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    ev = evidence(clock, d, events=[(e, d + t) for e, t in GRACEFUL], shared_clock=False)
    life = parse_lifecycle(ev.message)
    assert lifecycle_times(life, clock)["sigterm"] == pytest.approx(d + 5.45, abs=1e-3)


KILLING = KubeEvent("Killing", "Normal", "Stopping container app", 1, None, None)


def test_an_app_without_a_lifecycle_record_is_judged_on_the_container_status() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    ev = evidence(clock, d, events=None, finished=d + 3.2, kube_events=(KILLING,))
    slow = [Operation("slow", d - 1, d + 3, "ok", result=POD)]
    rec = termination_record(ev, clock, requested_at=d, slow=slow, traffic=traffic(d - 3, d + 8))
    assert rec.sigterm_at is None and rec.prestop_expected and not rec.app_record
    assert rec.exit_at is not None and abs(rec.exit_at - (d + 3.2)) <= 0.5
    v = check_shutdown(rec)
    assert v.status is Status.PASS and "preStop hook ran without failing" in v.reason, v.reason
    # No event of the termination captured: a failed hook would not show, so it is not a pass.
    blind = termination_record(evidence(clock, d, events=None, finished=d + 3.2), clock, requested_at=d, slow=slow,
                               traffic=traffic(d - 3, d + 8))
    assert check_shutdown(blind).status is Status.UNKNOWN
    hook_failed = evidence(clock, d, events=None, finished=d + 3.2, kube_events=(
        KILLING, KubeEvent("FailedPreStopHook", "Warning", "exec failed", 1, None, None)))
    rec = termination_record(hook_failed, clock, requested_at=d, traffic=traffic(d - 3, d + 8))
    assert rec.prestop_failed == "exec failed" and "preStop hook failed" in check_shutdown(rec).reason


def test_a_dropped_app_record_is_judged_like_a_third_party_app() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    ev = evidence(clock, d, events=[(e, d + t) for e, t in GRACEFUL], kube_events=(KILLING,))
    rec = termination_record(ev, clock, requested_at=d, use_app_record=False)
    assert (rec.app_record, rec.sigterm_at, rec.prestop_start) == (False, None, None)


def direct(pod: str, t0: float, t1: float, outcome: str) -> list[Operation]:
    return [Operation("direct GET /", t0 + i / 4, t0 + i / 4 + 0.01, outcome, result=pod)  # type: ignore[arg-type]
            for i in range(int((t1 - t0) * 4))]


@pytest.mark.parametrize(("answered_until", "phrase"), [
    (15.0, "the process ignored SIGTERM (it kept answering"),
    (0.3, "shutdown was too slow (it stopped answering"),
    (None, "cannot tell whether the process ignored SIGTERM or handled it too slowly"),
])
def test_sigkill_cause_without_app_record_comes_from_requests_sent_to_the_pod(answered_until: float | None,
                                                                              phrase: str) -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    ev = evidence(clock, d, events=None, exit_code=137, reason="Error", finished=d + 15.1, prestop_hook=False,
                  kube_events=(KILLING,))
    ops = [] if answered_until is None else (direct(POD, d - 2, d + answered_until, "ok")
                                             + direct(POD, d + answered_until, d + 15, "fail"))
    rec = termination_record(ev, clock, requested_at=d, direct=ops + direct("other", d, d + 20, "ok"),
                             traffic=traffic(d - 3, d + 18))
    v = check_shutdown(rec)
    assert v.status is Status.FAIL and phrase in v.reason, v.reason


def test_traffic_that_stopped_before_the_deletion_is_unknown_not_a_pass() -> None:
    clock = Recorder()
    d = clock.mono0 + 100
    ev = evidence(clock, d, events=[(e, d + t) for e, t in GRACEFUL])
    slow = [Operation("slow", d - 1, d + 8, "ok", result=POD)]
    rec = termination_record(ev, clock, requested_at=d, slow=slow, traffic=traffic(d - 3, d - 0.1))
    v = check_shutdown(rec)
    assert v.status is Status.UNKNOWN and "no request was sent from its deletion to its exit" in v.reason, v.reason


def test_in_flight_means_served_by_the_pod_at_that_moment() -> None:
    ops = [Operation("slow", 1, 5, "ok", result="a"), Operation("slow", 1, 2, "ok", result="a"),
           Operation("slow", 1, 5, "ok", result="b")]
    assert in_flight_at(ops, "a", 3.0) == [ops[0]]


def test_lag_queue_releases_states_lag_seconds_late() -> None:
    q = LagQueue(1.0)
    a = (("10.0.0.1", True, True, False, "n", "p1"),)
    b = (("10.0.0.1", False, False, True, "n", "p1"),)
    q.observe(0.0, a)
    assert q.due(0.5) is None
    assert q.due(1.0) == a
    q.observe(1.2, b)
    assert q.due(1.5) == a and q.due(2.1) == a
    assert q.due(2.2) == b and q.due(9.0) == b


def test_expose_rewrites_the_service_node_port_only_in_the_copy() -> None:
    spec = sample_workload("graceful", node_port=30080)
    exposed = expose(spec, 30082)
    svc = next(d for d in exposed.documents if d["kind"] == "Service")
    assert svc["spec"]["ports"][0]["nodePort"] == 30082 and exposed.node_port == 30082
    assert next(d for d in spec.documents if d["kind"] == "Service")["spec"]["ports"][0]["nodePort"] == 30080
    assert workload_object(spec) == ("Deployment", "kd-sample")


def test_service_traffic_records_every_request_and_sees_refusals() -> None:
    rec = Recorder()
    with LocalTarget(pod="p") as target:
        port = int(target.url.rsplit(":", 1)[1])
        with ServiceTraffic([target.url], recorder=rec, rate=50, workers=2, max_requests=40, max_run_s=5) as t:
            time.sleep(0.5)
    ops = t.operations
    assert len(ops) >= 15 and all(o.outcome == "ok" and o.result == "p" for o in ops)
    refused = ServiceTraffic([f"http://127.0.0.1:{port}"], recorder=rec, rate=20, workers=1, max_requests=3)
    with pytest.raises(TimeoutError):
        refused.start(first_answer_timeout=0.5)
    assert refused.operations and refused.operations[0].detail == "connection refused"
    with pytest.raises(ValueError):
        ServiceTraffic(["http://10.1.2.3:80"], recorder=rec)


def test_slow_stream_to_one_pod_records_it_as_the_holder() -> None:
    rec = Recorder()
    with LocalTarget(pod="ignored-x-pod") as target:
        stream = SlowStream(target.url, 0.6, recorder=rec, every_s=0.05, per_tick=1, max_requests=6, max_run_s=5,
                            pod="victim")
        with stream:
            time.sleep(0.2)
            stream.stop_starting()
    assert 1 <= stream.started <= 6 and len(stream.operations) == stream.started  # stopped early, all ended
    # Sent straight to a pod (a port-forward in the drill): that pod holds it, whatever the app says.
    assert all(o.outcome == "ok" and o.result == "victim" for o in stream.operations)
