"""Availability: did the workload keep answering while the disruption ran?

Judged on the requests that started inside the disruption window or up to `after_seconds` after
it (effects such as endpoint propagation lag the disruption). Assumptions are checked first, and
a broken one gives UNKNOWN, never PASS: the disruption must have happened (a window exists), the
load must have been running at a useful rate before it began, and still running when it ended.
"unknown" outcomes (timeouts) count as failures: a client that got no answer was not served.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import series as S
from kubedrill.record import Operation, Window

CHECK = "availability"
MAX_BUCKETS = 3600  # timeline points kept for plots; buckets widen past this


@dataclass(frozen=True)
class Streak:
    """The longest run of consecutive non-ok requests (ordered by start time)."""

    count: int
    start: float
    end: float
    first_error: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def longest_failure_streak(ops: Sequence[Operation]) -> Streak | None:
    """Longest run of consecutive failed requests by start order; None if none failed."""
    best: Streak | None = None
    run: list[Operation] = []
    for op in sorted(ops, key=lambda o: o.start):
        if op.outcome == "ok":
            run = []
            continue
        run.append(op)
        if best is None or len(run) > best.count:
            best = Streak(len(run), run[0].start, max(o.end for o in run), run[0].detail)
    return best


def availability(
    history: Sequence[Operation],
    window: Window | None,
    *,
    slo: float = 0.999,
    kind: str | None = None,
    min_rate_before: float = 5.0,
    before_seconds: float = 10.0,
    after_seconds: float = 5.0,
    max_outage_seconds: float | None = None,
    max_p99_ratio: float | None = None,
    bucket_seconds: float = 1.0,
    label: str = "disruption",
) -> Verdict:
    """Judge success ratio against `slo` over the disruption window (+`after_seconds`).

    kind: only operations whose kind starts with this (e.g. "http"); None means all.
    max_outage_seconds: also FAIL if the longest failure streak lasted longer than this.
    max_p99_ratio: also FAIL if p99 latency during the window exceeds this multiple of p99 before.
    Series (kubedrill.record.series conventions): "timeline" (requests per bucket by outcome, t in
    seconds from the first request) and "windows" (the disruption, labelled `label`).
    """
    if window is None:
        return Verdict.unknown(CHECK, "no disruption window was recorded: the disruption did not run (or did not "
                                      "record its start and end), so availability under it cannot be judged")
    ops = [o for o in history if kind is None or o.kind.startswith(kind)]
    if not ops:
        return Verdict.unknown(CHECK, f"load was not running: no {kind or ''} requests were recorded".replace("  ", " "))
    first_start = min(o.start for o in ops)
    while (max(o.start for o in ops) - first_start) / bucket_seconds > MAX_BUCKETS:
        bucket_seconds *= 2
    series = S.timeline_from_operations(
        ops, t0=first_start, bucket_s=bucket_seconds,
        windows=[S.window(window.start - first_start, window.end - first_start, label)])
    last_start = max(o.start for o in ops)
    span_before = window.start - max(window.start - before_seconds, first_start)
    before = [o for o in ops if window.start - before_seconds <= o.start < window.start]
    rate_before = len(before) / span_before if span_before > 0 else 0.0
    fig_rate = Figure("rate_before", round(rate_before, 2), "req/s", f"in the {before_seconds:g} s before the disruption")
    if span_before < 1.0 or rate_before < min_rate_before:
        return Verdict.unknown(
            CHECK,
            f"load was not running before the disruption: {rate_before:.1f} req/s over the {max(span_before, 0):.1f} s "
            f"before it began (need >= {min_rate_before:g} req/s for at least 1 s); start the load earlier "
            "(LoadRunner waits for the first requests) or raise its rate",
            [fig_rate], **series)
    if last_start < window.end - 1.0:
        return Verdict.unknown(
            CHECK,
            f"load stopped {window.end - last_start:.1f} s before the disruption ended (last request started "
            f"{last_start - window.start:.1f} s into a {window.duration:.1f} s disruption); raise the load's run time "
            "or request limit so it outlasts the disruption",
            [fig_rate], **series)

    judged = [o for o in ops if window.start <= o.start <= window.end + after_seconds]
    ok = sum(1 for o in judged if o.outcome == "ok")
    failed = [o for o in judged if o.outcome != "ok"]
    ratio = ok / len(judged) if judged else 0.0
    streak = longest_failure_streak(ops)
    during_ok = [o.latency for o in ops if o.outcome == "ok" and window.overlaps(o)]
    p99_before = percentile([o.latency for o in before if o.outcome == "ok"], 99)
    p99_during = percentile(during_ok, 99)
    figures = [
        Figure("success_ratio", round(ratio, 6), "ratio", f"during the disruption and {after_seconds:g} s after; SLO {slo}"),
        Figure("requests_judged", len(judged), "requests"),
        Figure("requests_failed", len(failed), "requests", _error_summary(failed)),
        fig_rate,
        Figure("longest_failure_streak", streak.count if streak else 0, "requests"),
        Figure("longest_failure_streak_seconds", round(streak.seconds, 3) if streak else 0.0, "s"),
        Figure("p99_latency_before", _ms(p99_before), "ms", "ok requests"),
        Figure("p99_latency_during", _ms(p99_during), "ms", "ok requests overlapping the disruption"),
        Figure("disruption_seconds", round(window.duration, 3), "s"),
    ]
    problems: list[str] = []
    if ratio < slo:
        problems.append(
            f"success ratio {ratio:.4f} ({ok}/{len(judged)}) during the disruption and {after_seconds:g} s after is below "
            f"the SLO {slo}; {_error_summary(failed)}")
    if max_outage_seconds is not None and streak is not None and streak.seconds > max_outage_seconds:
        problems.append(f"the longest outage lasted {streak.seconds:.2f} s (limit {max_outage_seconds:g} s)")
    if max_p99_ratio is not None and p99_before and p99_during and p99_during > max_p99_ratio * p99_before:
        problems.append(
            f"p99 latency rose from {p99_before * 1000:.0f} ms before to {p99_during * 1000:.0f} ms during the disruption "
            f"(limit x{max_p99_ratio:g})")
    if problems and streak is not None:
        problems.append(
            f"longest outage: {streak.count} consecutive failures over {streak.seconds:.2f} s starting "
            f"{streak.start - window.start:+.2f} s from the disruption start (first error: {streak.first_error or 'none given'})")
    if problems:
        return Verdict.fail(CHECK, "; ".join(problems), figures, **series)
    return Verdict.ok(
        CHECK,
        f"{ok}/{len(judged)} requests succeeded (ratio {ratio:.4f} >= SLO {slo}) during a {window.duration:.1f} s disruption "
        f"and {after_seconds:g} s after, at {rate_before:.0f} req/s",
        figures, **series)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _error_summary(failed: Sequence[Operation]) -> str:
    if not failed:
        return "no failures"
    top = Counter(o.detail or o.outcome for o in failed).most_common(3)
    return "errors: " + ", ".join(f"{n}x {err}" for err, n in top)
