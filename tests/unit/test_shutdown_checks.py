"""The shutdown checker on hand-made termination records, one per shutdown behaviour.

Times: deletion at 100.0 s, grace 30 s, unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses

import pytest

from kubedrill.check.shutdown import ShutdownThresholds, check_shutdown, check_shutdowns
from kubedrill.record.termination import TerminationRecord
from kubedrill.check.verdict import Status
from kubedrill.record import Operation
from kubedrill.record import series as S


def traffic(t0: float = 95.0, t1: float = 112.0, rate: float = 50.0,
            fail_between: tuple[float, float] | None = None, error: str = "ConnectionResetError") -> tuple[Operation, ...]:
    ops = []
    for i in range(int((t1 - t0) * rate)):
        s = t0 + i / rate
        bad = fail_between is not None and fail_between[0] <= s < fail_between[1]
        ops.append(Operation("http GET /", s, s + 0.004, "fail" if bad else "ok", detail=error if bad else ""))
    return tuple(ops)


def slow(start: float = 99.0, end: float = 107.0, ok: bool = True, error: str = "IncompleteRead(25 bytes read)") -> Operation:
    return Operation("slow", start, end, "ok" if ok else "fail", detail="" if ok else error)


GRACEFUL = TerminationRecord(
    pod="pod-a", grace_seconds=30, deletion_at=100.0, prestop_start=100.1, prestop_end=105.1, sigterm_at=105.2,
    shutdown_began_at=105.2, drained_at=107.0, exit_at=107.0, exit_code=0, reason="Completed",
    inflight=(slow(),), traffic=traffic(),
)


def change(**kw: object) -> TerminationRecord:
    return dataclasses.replace(GRACEFUL, **kw)  # type: ignore[arg-type]


def test_graceful_passes_with_figures_and_series() -> None:
    v = check_shutdown(GRACEFUL)
    assert v.status is Status.PASS, v.reason
    figs = {f.name: f.value for f in v.figures}
    assert figs["sigterm_after_deletion"] == 5.2
    assert figs["exit_after_deletion"] == 7.0
    assert figs["prestop_duration"] == 5.0
    assert v.series["shutdown"] == [{"pod": "pod-a", "seconds": 7.0, "grace": 30.0, "budget": 24.0}]
    assert S.problems(v.series) == []


def test_ignores_sigterm_is_sigkilled() -> None:
    v = check_shutdown(change(shutdown_began_at=None, drained_at=None, exit_at=130.1, exit_code=137, reason="Error",
                              inflight=(slow(end=130.1, ok=False),)))
    assert v.status is Status.FAIL
    assert "SIGKILLed after the 30 s grace period: the process ignored SIGTERM" in v.reason
    assert "cut off by the SIGKILL" in v.reason
    assert v.series["shutdown"][0]["seconds"] is None


def test_no_sigterm_receipt_and_sigkill() -> None:
    v = check_shutdown(change(sigterm_at=None, shutdown_began_at=None, drained_at=None, exit_at=130.0, exit_code=137))
    assert v.status is Status.FAIL
    assert "the process ignored SIGTERM (no SIGTERM receipt was recorded" in v.reason


def test_slow_exit_is_sigkilled_while_cleaning_up() -> None:
    v = check_shutdown(change(exit_at=130.0, exit_code=137, sigkilled=True))
    assert v.status is Status.FAIL
    assert "shutdown was too slow" in v.reason and "cleanup after draining" in v.reason


def test_killed_before_the_grace_period_ended() -> None:
    v = check_shutdown(change(exit_at=103.0, exit_code=137))
    assert v.status is Status.FAIL and "before its 30 s grace period ended" in v.reason


def test_abrupt_exit_drops_in_flight_requests() -> None:
    v = check_shutdown(change(shutdown_began_at=None, drained_at=None, exit_at=105.21,
                              inflight=(slow(end=105.22, ok=False),)))
    assert v.status is Status.FAIL
    assert "1 of 1 in-flight request(s) failed with IncompleteRead(25 bytes read) 0.0 s after SIGTERM" in v.reason
    assert "http.Server.Shutdown" in v.reason


def test_exit_code_one_on_sigterm() -> None:
    v = check_shutdown(change(exit_code=1, reason="Error"))
    assert v.status is Status.FAIL and "exit code 1 on SIGTERM" in v.reason
    assert check_shutdown(change(exit_code=1), ShutdownThresholds(expected_exit_codes=(0, 1))).status is Status.PASS


def test_exit_code_143_means_no_handler() -> None:
    v = check_shutdown(change(exit_code=143))
    assert v.status is Status.FAIL and "no handler" in v.reason


def test_grace_budget() -> None:
    v = check_shutdown(change(exit_at=127.6, drained_at=127.6))
    assert v.status is Status.FAIL
    assert "shutdown used 92% of the 30 s grace period (limit 80%)" in v.reason
    assert check_shutdown(change(exit_at=127.6), ShutdownThresholds(max_grace_fraction=0.95)).status is Status.PASS


def test_prestop_did_not_run() -> None:
    v = check_shutdown(change(prestop_start=None, prestop_end=None, sigterm_at=100.05, shutdown_began_at=100.05))
    assert v.status is Status.FAIL and "preStop hook did not run" in v.reason


def test_prestop_too_short_by_threshold() -> None:
    v = check_shutdown(change(prestop_end=101.1), ShutdownThresholds(min_prestop_seconds=5))
    assert v.status is Status.FAIL and "preStop hook ran only 1.0 s" in v.reason


def test_no_prestop_loses_traffic_and_says_how_long_to_sleep() -> None:
    rec = change(prestop_expected=False, prestop_start=None, prestop_end=None, sigterm_at=100.05,
                 shutdown_began_at=100.05, drained_at=100.06, exit_at=100.06,
                 traffic=traffic(fail_between=(100.45, 101.0), error="connection reset"))
    v = check_shutdown(rec)
    assert v.status is Status.FAIL
    assert ("failed with connection reset 0.4 s after SIGTERM: the server closes its listener before endpoints are "
            "removed; add a preStop sleep of at least 2 s") in v.reason


def test_prestop_shorter_than_propagation() -> None:
    rec = change(prestop_start=100.0, prestop_end=101.0, sigterm_at=101.05, shutdown_began_at=101.05, drained_at=101.1,
                 exit_at=101.1, traffic=traffic(fail_between=(101.1, 102.5)))
    v = check_shutdown(rec)
    assert v.status is Status.FAIL
    assert "the preStop sleep (1.0 s) ended before endpoint removal reached every client; lengthen it to at least 4 s" in v.reason


def test_failures_during_prestop_are_blamed_on_the_pod_not_propagation() -> None:
    v = check_shutdown(change(traffic=traffic(fail_between=(102.0, 103.0))))
    assert v.status is Status.FAIL and "before SIGTERM: the pod stopped serving during its preStop hook" in v.reason


def test_a_request_sent_before_sigterm_and_reset_by_it_failed_after_sigterm() -> None:
    """CI, 2026-12-02: no preStop, SIGTERM 0.3 s after deletion; requests sent 0.1 s after deletion were
    reset when the server closed its listener on SIGTERM. They failed at SIGTERM, not before it."""
    ops = list(traffic(error="connection reset"))
    ops = [dataclasses.replace(o, end=100.35, outcome="fail", detail="connection reset")
           if 100.1 <= o.start < 100.3 else o for o in ops]
    rec = change(prestop_expected=False, prestop_start=None, prestop_end=None, sigterm_at=100.3,
                 shutdown_began_at=100.3, drained_at=100.31, exit_at=100.31, traffic=tuple(ops))
    v = check_shutdown(rec)
    assert v.status is Status.FAIL
    assert "before SIGTERM" not in v.reason
    assert "the server closes its listener before endpoints are removed; add a preStop sleep" in v.reason


def test_failure_budget_is_configurable() -> None:
    rec = change(traffic=traffic(fail_between=(105.3, 105.5)))
    assert check_shutdown(rec).status is Status.FAIL
    assert check_shutdown(rec, ShutdownThresholds(max_failed_requests=10)).status is Status.PASS


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"exit_at": None, "exit_code": None}, "no container exit was recorded"),
        ({"deletion_at": None, "prestop_start": None, "sigterm_at": None}, "cannot be timed"),
        ({"inflight": ()}, "no in-flight request was probed"),
        ({"inflight": (slow(end=101.0),)}, "every slow request finished before SIGTERM"),
        ({"traffic": ()}, "no continuous traffic was recorded"),
        ({"traffic": traffic(t0=80, t1=90)}, "the load was not running when the pod was deleted"),
    ],
)
def test_unknown_when_the_evidence_is_missing(kw: dict[str, object], needle: str) -> None:
    v = check_shutdown(change(**kw))
    assert v.status is Status.UNKNOWN, v.reason
    assert needle in v.reason


def test_missing_probes_can_be_waived() -> None:
    th = ShutdownThresholds(require_inflight=False, require_traffic=False)
    assert check_shutdown(change(inflight=(), traffic=()), th).status is Status.PASS


def test_from_events_maps_the_sample_app_lifecycle() -> None:
    rec = TerminationRecord.from_events(
        "pod-b", 30, {"prestop-start": 1.0, "prestop-end": 6.0, "sigterm": 6.1, "listener-closed": 6.1,
                      "inflight-drained": 7.0, "exit": 7.1},
        deletion_at=0.9, exit_code=0, inflight=[slow(0.5, 7.0)], traffic=traffic(0, 10))
    assert (rec.prestop_start, rec.sigterm_at, rec.shutdown_began_at, rec.exit_at) == (1.0, 6.1, 6.1, 7.1)
    assert check_shutdown(rec).status is Status.PASS
    killed = TerminationRecord.from_events("pod-c", 30, {"sigterm": 6.1}, deletion_at=0.9, exit_at=30.9,
                                           exit_code=137, inflight=[slow(0.5, 30.9, ok=False)], traffic=traffic(0, 33))
    assert killed.exit_at == 30.9 and killed.killed


def test_many_pods() -> None:
    assert check_shutdowns([]).status is Status.UNKNOWN
    v = check_shutdowns([GRACEFUL, change(pod="pod-b", exit_code=1)])
    assert v.status is Status.FAIL and "pod-b" in v.reason and "pod-a" not in v.reason
    assert [p["pod"] for p in v.series["shutdown"]] == ["pod-a", "pod-b"]


def health(start: float, end: float, fail_from: float | None = None, every: float = 0.25) -> tuple[Operation, ...]:
    """Health checks sent straight to the pod; from `fail_from` on, none is answered within 1 s."""
    ops = []
    t = start
    while t < end:
        bad = fail_from is not None and t >= fail_from
        ops.append(Operation("direct GET /healthz", t, t + (1.0 if bad else 0.01), "unknown" if bad else "ok",
                             result="pod-a", detail="no answer within 1 s" if bad else ""))
        t += 1.0 if bad else every
    return tuple(ops)


TWO_SLOW = (slow(start=98.0), slow(start=98.0))  # the probe began 2 s before the deletion


def test_a_pod_the_probe_itself_made_unresponsive_is_unknown_not_failed() -> None:
    # Two slow requests took every worker: health checks went unanswered, then traffic failed.
    rec = change(inflight=TWO_SLOW, direct=health(90.0, 112.0, fail_from=98.1),
                 traffic=traffic(fail_between=(98.5, 99.9)))
    v = check_shutdown(rec)
    assert v.status is Status.UNKNOWN
    assert "the in-flight probe itself made the pod unready at 2 concurrent request(s)" in v.reason
    assert "a health check sent straight to it got no answer within 1 s 0.2 s after the probe began" in v.reason


def test_a_readiness_drop_while_only_the_probe_ran_is_the_probes_doing() -> None:
    v = check_shutdown(change(inflight=TWO_SLOW, unready_at=99.5, direct=health(90.0, 112.0)))
    assert v.status is Status.UNKNOWN
    assert "made the pod unready at 2 concurrent request(s)" in v.reason and "seen NotReady 1.5 s after" in v.reason


def test_an_app_unhealthy_before_the_probe_is_judged_as_usual() -> None:
    # It did not answer before the probe either: the probe is not what broke it.
    v = check_shutdown(change(inflight=TWO_SLOW, direct=health(90.0, 112.0, fail_from=90.0), unready_at=None))
    assert "in-flight probe itself" not in v.reason
    # Answering throughout, and NotReady only after the deletion (terminating): judged as usual.
    ok = check_shutdown(change(inflight=TWO_SLOW, direct=health(90.0, 112.0), unready_at=None))
    assert ok.status is Status.PASS, ok.reason


def test_in_flight_not_probed_on_purpose_says_why() -> None:
    why = "even one slow request left pod-b's health check unanswered while idle"
    v = check_shutdown(change(inflight=(), inflight_skipped=why))
    assert v.status is Status.UNKNOWN and f"no in-flight request was probed: {why}" in v.reason
