"""The availability checker on hand-made histories: PASS, FAIL and the UNKNOWNs that guard it."""

from __future__ import annotations

from kubedrill.check.availability import availability, longest_failure_streak, percentile
from kubedrill.check.verdict import Status
from kubedrill.record import Operation, Window
from kubedrill.record import series as S


def steady(t0: float, t1: float, rate: float = 100.0, latency: float = 0.005,
           fail_between: tuple[float, float] | None = None, error: str = "ConnectionRefusedError") -> list[Operation]:
    """Requests every 1/rate s from t0 to t1; those starting inside fail_between fail."""
    ops = []
    n = int((t1 - t0) * rate)
    for i in range(n):
        start = t0 + i / rate
        bad = fail_between is not None and fail_between[0] <= start < fail_between[1]
        ops.append(Operation("http GET /", start, start + latency, "fail" if bad else "ok",
                             detail=error if bad else "", result="pod-a"))
    return ops


def fig(v, name):  # type: ignore[no-untyped-def]
    return next(f.value for f in v.figures if f.name == name)


def test_passes_when_nothing_fails_during_the_disruption() -> None:
    v = availability(steady(0, 40), Window(15, 25))
    assert v.status is Status.PASS, v.reason
    assert "1501/1501" in v.reason  # 15..30 s inclusive at 100 req/s
    assert fig(v, "success_ratio") == 1.0
    assert fig(v, "rate_before") == 100.0
    assert S.problems(v.series) == []
    assert v.series["windows"] == [{"start": 15.0, "end": 25.0, "label": "disruption"}]


def test_fails_below_slo_and_names_the_outage() -> None:
    ops = steady(0, 40, fail_between=(18.0, 18.5))
    v = availability(ops, Window(15, 25), slo=0.999)
    assert v.status is Status.FAIL
    assert "below the SLO 0.999" in v.reason
    assert "50 consecutive failures" in v.reason
    assert "ConnectionRefusedError" in v.reason
    assert "+3.00 s from the disruption start" in v.reason
    assert fig(v, "requests_failed") == 50
    assert fig(v, "longest_failure_streak") == 50
    tl = v.series["timeline"]
    assert tl["fail"][18] == 50 and tl["ok"][18] == 50
    assert S.problems(v.series) == []


def test_a_single_failure_fails_a_strict_slo() -> None:
    ops = steady(0, 40, fail_between=(20.0, 20.01))
    assert availability(ops, Window(15, 25), slo=1.0).status is Status.FAIL
    assert availability(ops, Window(15, 25), slo=0.99).status is Status.PASS


def test_failures_outside_the_judged_window_do_not_count_but_show_in_the_streak() -> None:
    ops = steady(0, 40, fail_between=(2.0, 2.2))
    v = availability(ops, Window(15, 25))
    assert v.status is Status.PASS, v.reason
    assert fig(v, "longest_failure_streak") == 20


def test_unknown_outcomes_count_as_failures() -> None:
    ops = steady(0, 40)
    ops[2000] = Operation("http GET /", ops[2000].start, ops[2000].start + 5, "unknown", detail="timeout")
    v = availability(ops, Window(15, 25), slo=1.0)
    assert v.status is Status.FAIL and "timeout" in v.reason


def test_unknown_without_a_disruption_window() -> None:
    v = availability(steady(0, 40), None)
    assert v.status is Status.UNKNOWN
    assert "disruption did not run" in v.reason


def test_unknown_when_load_was_not_running_before() -> None:
    v = availability(steady(15.5, 40), Window(15, 25))
    assert v.status is Status.UNKNOWN
    assert "load was not running" in v.reason


def test_unknown_when_load_rate_was_too_low_before() -> None:
    v = availability(steady(0, 40, rate=2), Window(15, 25), min_rate_before=5)
    assert v.status is Status.UNKNOWN
    assert "2.0 req/s" in v.reason


def test_unknown_when_load_stopped_before_the_disruption_ended() -> None:
    v = availability(steady(0, 20), Window(15, 25))
    assert v.status is Status.UNKNOWN
    assert "load stopped" in v.reason


def test_unknown_when_no_requests_at_all() -> None:
    assert availability([], Window(1, 2)).status is Status.UNKNOWN


def test_outage_length_limit() -> None:
    ops = steady(0, 40, fail_between=(18.0, 18.5))
    v = availability(ops, Window(15, 25), slo=0.9, max_outage_seconds=0.2)
    assert v.status is Status.FAIL and "longest outage lasted 0.49 s" in v.reason
    assert availability(ops, Window(15, 25), slo=0.9, max_outage_seconds=1.0).status is Status.PASS


def test_p99_latency_before_vs_during() -> None:
    ops = steady(0, 15) + steady(15, 25, latency=0.5) + steady(25, 40)
    v = availability(ops, Window(15, 25), max_p99_ratio=3)
    assert v.status is Status.FAIL and "p99 latency rose from 5 ms before to 500 ms" in v.reason
    assert fig(v, "p99_latency_before") == 5.0 and fig(v, "p99_latency_during") == 500.0
    assert availability(ops, Window(15, 25)).status is Status.PASS  # latency is a figure unless limited


def test_kind_filter_ignores_other_operations() -> None:
    other = [Operation("slow", 16, 17, "fail", detail="IncompleteRead")]
    assert availability(steady(0, 40) + other, Window(15, 25), kind="http").status is Status.PASS
    assert availability(steady(0, 40) + other, Window(15, 25), slo=1.0).status is Status.FAIL


def test_helpers() -> None:
    assert percentile([], 99) is None
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 101)), 99) == 99
    assert longest_failure_streak(steady(0, 1)) is None
