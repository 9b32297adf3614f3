"""Series builders produce the shapes the plots and the schema expect; bad shapes are named, not fatal."""

from __future__ import annotations

import pytest

from kubedrill.check.verdict import Verdict
from kubedrill.record import Operation
from kubedrill.record import series as S
from kubedrill.report.plots import render_series


def op(t: float, outcome: str) -> Operation:
    return Operation("GET", t, t + 0.01, outcome)  # type: ignore[arg-type]


def test_timeline_from_operations_buckets_by_start_and_keeps_gaps() -> None:
    ops = [op(10.1, "ok"), op(10.7, "fail"), op(13.2, "unknown"), op(13.9, "ok")]
    s = S.timeline_from_operations(ops, t0=10.0, bucket_s=1.0, windows=[S.window(1.0, 2.5, "drain w1")])
    tl = s["timeline"]
    assert tl["t"] == [0.0, 1.0, 2.0, 3.0]
    assert tl["ok"] == [1, 0, 0, 1] and tl["fail"] == [1, 0, 0, 0] and tl["unknown"] == [0, 0, 0, 1]
    assert s["windows"] == [{"start": 1.0, "end": 2.5, "label": "drain w1"}]
    assert S.problems(s) == []
    # Splats straight into a verdict.
    assert Verdict.ok("availability", "fine", **s).series == s


def test_timeline_empty_and_mismatched() -> None:
    assert S.timeline_from_operations([])["timeline"]["t"] == []
    with pytest.raises(ValueError, match="differ in length"):
        S.timeline([0, 1], [1], [0, 0])
    with pytest.raises(ValueError, match="bucket_s must be > 0"):
        S.timeline_from_operations([op(0, "ok")], bucket_s=0)


def test_window_rejects_reversed_interval() -> None:
    with pytest.raises(ValueError, match="ends .* before it starts"):
        S.window(5, 4, "x")


def test_shutdown_point_computes_budget() -> None:
    p = S.shutdown_point("web-1", 3.21234, 10, 0.8)
    assert p == {"pod": "web-1", "seconds": 3.212, "grace": 10.0, "budget": 8.0}
    assert S.shutdown_point("hung", None, 30)["seconds"] is None
    assert S.problems(S.shutdown([p])) == []


def test_elections_and_unavailability_with_limits() -> None:
    s = {**S.elections([S.election(1, 0.5, "kill")], limit_s=5),
         **S.unavailability([S.window(1, 3, "leader down")], limit_s=10)}
    assert s["elections_limit_s"] == 5 and s["unavailability_limit_s"] == 10
    assert S.problems(s) == []


def test_problems_name_the_bad_series() -> None:
    bad = {"timeline": {"t": [0, 1], "ok": [1], "fail": [0, 0]}, "windows": [[1, 2, True]],
           "shutdown": [{"pod": "x"}], "elections": "soon"}
    by_key = S.problems_by_key(bad)
    assert set(by_key) == {"timeline", "windows", "shutdown", "elections"}
    assert "timeline.ok: expected 2 numbers" in by_key["timeline"]


def test_render_draws_good_series_and_notes_bad_ones() -> None:
    raw = {**S.timeline([0, 1, 2], [5, 4, 5], [0, 1, 0]), "shutdown": "nope", "custom": [1, 2]}
    plots, notes = render_series(raw)
    assert len(plots) == 1 and plots[0].svg.startswith("<svg") and "<rect" in plots[0].svg
    assert any("'shutdown' not drawn" in n for n in notes)
    assert any("not drawn): custom" in n for n in notes)


def test_single_window_shorthand_is_drawn_as_disruption() -> None:
    raw = {"timeline": {"t": [0.0, 1.0], "ok": [3.0, 2.0], "fail": [0.0, 1.0]}, "window": {"start": 0.0, "end": 1.5}}
    plots, notes = render_series(raw)
    assert notes == [] and "disruption" in plots[0].svg


@pytest.mark.parametrize("raw", [
    S.shutdown([S.shutdown_point(f"p{i}", i * 1.5, 10, 0.8) for i in range(60)] + [S.shutdown_point("h", None, 10)]),
    S.elections([]),
    S.unavailability([]),
    S.windows([S.window(0, 0, "instant")]),
    S.timeline([0], [0], [0]),
])
def test_edge_cases_render_without_error(raw: dict) -> None:
    plots, notes = render_series(raw)
    assert plots and not notes
