"""Plot series conventions: the shapes checkers put into `Verdict.series` so the report can draw them.

A checker stays pure and knows nothing about SVG; it only returns data in one of these shapes,
built with the helpers below, and the report picks the plot by the series name. Every builder
returns a dict of {series name: payload} so it can be splatted into a verdict::

    Verdict.fail("availability", reason, figures, **series.timeline_from_operations(ops, t0=load_start,
                 windows=[series.window(d.start - load_start, d.end - load_start, "drain worker")]))

Times are seconds relative to a reference the checker chooses (usually the start of the load),
so plots from different tests line up from 0. The conventions (also in docs/results-schema.md):

- ``timeline``: {"t": [bucket start s], "ok": [count], "fail": [count], "unknown": [count]}
  requests per time bucket; drawn as stacked columns. ``bucket_s`` gives the bucket width.
- ``windows``: [{"start": s, "end": s, "label": str}] disruption windows, shaded over the timeline
  (or drawn on their own when there is no timeline).
- ``shutdown``: [{"pod": str, "seconds": s, "grace": s, "budget": s|None}] time from SIGTERM to exit
  per pod against its terminationGracePeriodSeconds (and the budget = grace * grace_budget_ratio).
- ``unavailability``: [{"start": s, "end": s, "label": str}] intervals when etcd (or the API)
  refused or timed out writes.
- ``elections``: [{"at": s, "seconds": s, "label": str}] leader elections and how long each took;
  the sibling key ``elections_limit_s`` draws the threshold (``unavailability_limit_s`` likewise).
- ``window``: {"start": s, "end": s} a single unlabelled disruption window; accepted as shorthand
  for ``windows`` (kubedrill.check.availability emits it).

Unknown series names are kept in results.json and listed, not drawn.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence, TypedDict

from kubedrill.record import Operation


class TimelinePayload(TypedDict):
    t: list[float]
    ok: list[int]
    fail: list[int]
    unknown: list[int]
    bucket_s: float


class WindowPoint(TypedDict):
    start: float
    end: float
    label: str


class ShutdownPoint(TypedDict):
    pod: str
    seconds: float | None  # None: the pod did not exit (killed at the end of grace, or still running)
    grace: float
    budget: float | None


class ElectionPoint(TypedDict):
    at: float
    seconds: float
    label: str


TIMELINE = "timeline"
WINDOWS = "windows"
SHUTDOWN = "shutdown"
UNAVAILABILITY = "unavailability"
ELECTIONS = "elections"
ELECTIONS_LIMIT = "elections_limit_s"
UNAVAILABILITY_LIMIT = "unavailability_limit_s"
WINDOW = "window"
KNOWN: tuple[str, ...] = (TIMELINE, WINDOWS, WINDOW, SHUTDOWN, UNAVAILABILITY, ELECTIONS, ELECTIONS_LIMIT,
                          UNAVAILABILITY_LIMIT)


def _num(x: float) -> float:
    """Round for compact JSON; plots need milliseconds at most."""
    return round(float(x), 3)


def window(start: float, end: float, label: str) -> WindowPoint:
    """One labelled interval, e.g. window(12.0, 47.5, "drain kd-worker2")."""
    if end < start:
        raise ValueError(f"window {label!r} ends ({end}) before it starts ({start})")
    return {"start": _num(start), "end": _num(end), "label": label}


def windows(items: Iterable[WindowPoint]) -> dict[str, Any]:
    """Disruption windows alone (to add to a verdict whose timeline comes from elsewhere)."""
    return {WINDOWS: list(items)}


def timeline(t: Sequence[float], ok: Sequence[int], fail: Sequence[int], unknown: Sequence[int] | None = None,
             bucket_s: float | None = None, windows: Iterable[WindowPoint] = ()) -> dict[str, Any]:
    """A request timeline from pre-bucketed counts (all lists the same length)."""
    unknown = list(unknown) if unknown is not None else [0] * len(t)
    if not len(t) == len(ok) == len(fail) == len(unknown):
        raise ValueError(f"timeline lists differ in length: t={len(t)} ok={len(ok)} fail={len(fail)} "
                         f"unknown={len(unknown)}")
    if bucket_s is None:
        bucket_s = (t[1] - t[0]) if len(t) > 1 else 1.0
    payload: TimelinePayload = {"t": [_num(x) for x in t], "ok": [int(x) for x in ok], "fail": [int(x) for x in fail],
                                "unknown": [int(x) for x in unknown], "bucket_s": _num(bucket_s)}
    out: dict[str, Any] = {TIMELINE: payload}
    wins = list(windows)
    if wins:
        out[WINDOWS] = wins
    return out


def timeline_from_operations(ops: Iterable[Operation], t0: float | None = None, bucket_s: float = 1.0,
                             windows: Iterable[WindowPoint] = ()) -> dict[str, Any]:
    """Bucket recorded operations by their start time (relative to `t0`, default the first start).

    Buckets with no requests stay in the timeline as zeros: a gap in traffic is itself a finding.
    """
    if bucket_s <= 0:
        raise ValueError(f"bucket_s must be > 0, got {bucket_s}")
    ops = list(ops)
    if not ops:
        return timeline([], [], [], [], bucket_s=bucket_s, windows=windows)
    base = min(o.start for o in ops) if t0 is None else t0
    last = max(o.start for o in ops) - base
    n = max(1, int(math.floor(last / bucket_s)) + 1)
    counts = {k: [0] * n for k in ("ok", "fail", "unknown")}
    for o in ops:
        i = int(math.floor((o.start - base) / bucket_s))
        if 0 <= i < n:
            counts[o.outcome][i] += 1
    return timeline([i * bucket_s for i in range(n)], counts["ok"], counts["fail"], counts["unknown"],
                    bucket_s=bucket_s, windows=windows)


def shutdown_point(pod: str, seconds: float | None, grace: float, budget_ratio: float | None = None) -> ShutdownPoint:
    """One pod's shutdown: seconds from SIGTERM to exit (None if it never exited) against its grace."""
    return {"pod": pod, "seconds": None if seconds is None else _num(seconds), "grace": _num(grace),
            "budget": None if budget_ratio is None else _num(grace * budget_ratio)}


def shutdown(points: Iterable[ShutdownPoint]) -> dict[str, Any]:
    return {SHUTDOWN: list(points)}


def unavailability(intervals: Iterable[WindowPoint], limit_s: float | None = None) -> dict[str, Any]:
    """Intervals during which writes failed; `limit_s` is the longest one tolerated (drawn as a note)."""
    out: dict[str, Any] = {UNAVAILABILITY: list(intervals)}
    if limit_s is not None:
        out[UNAVAILABILITY_LIMIT] = _num(limit_s)
    return out


def election(at: float, seconds: float, label: str = "") -> ElectionPoint:
    return {"at": _num(at), "seconds": _num(seconds), "label": label}


def elections(points: Iterable[ElectionPoint], limit_s: float | None = None) -> dict[str, Any]:
    """Leader elections with their durations; `limit_s` draws the threshold line."""
    out: dict[str, Any] = {ELECTIONS: list(points)}
    if limit_s is not None:
        out[ELECTIONS_LIMIT] = _num(limit_s)
    return out


# --- reading back (the report must survive odd data: a bad series is reported, never fatal) ---------

def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _window_ok(w: Any) -> bool:
    return isinstance(w, dict) and _is_num(w.get("start")) and _is_num(w.get("end"))


def problems_by_key(series: dict[str, Any]) -> dict[str, str]:
    """{series name: what is wrong with it} for the known series that are malformed."""
    out: dict[str, str] = {}
    tl = series.get(TIMELINE)
    if tl is not None:
        if not isinstance(tl, dict) or not isinstance(tl.get("t"), list) or not all(_is_num(x) for x in tl["t"]):
            out[TIMELINE] = "expected {'t': [seconds], 'ok': [counts], 'fail': [counts]}"
        else:
            n = len(tl["t"])
            for k in ("ok", "fail", "unknown"):
                v = tl.get(k, [0] * n)
                if not isinstance(v, list) or len(v) != n or not all(_is_num(x) for x in v):
                    out[TIMELINE] = f"timeline.{k}: expected {n} numbers, one per timeline.t"
                    break
    for key in (WINDOWS, UNAVAILABILITY):
        v = series.get(key)
        if v is not None and (not isinstance(v, list) or not all(_window_ok(w) for w in v)):
            out[key] = "expected [{'start': s, 'end': s, 'label': str}, ...] (build with series.window())"
    if series.get(WINDOW) is not None and not _window_ok(series[WINDOW]):
        out[WINDOW] = "expected {'start': s, 'end': s}"
    v = series.get(SHUTDOWN)
    if v is not None and (not isinstance(v, list) or not all(
            isinstance(p, dict) and _is_num(p.get("grace")) and (p.get("seconds") is None or _is_num(p.get("seconds")))
            for p in v)):
        out[SHUTDOWN] = "expected [{'pod': str, 'seconds': s|None, 'grace': s}, ...] (build with series.shutdown_point())"
    v = series.get(ELECTIONS)
    if v is not None and (not isinstance(v, list) or not all(
            isinstance(p, dict) and _is_num(p.get("at")) and _is_num(p.get("seconds")) for p in v)):
        out[ELECTIONS] = "expected [{'at': s, 'seconds': s, 'label': str}, ...] (build with series.election())"
    for key in (ELECTIONS_LIMIT, UNAVAILABILITY_LIMIT):
        if series.get(key) is not None and not _is_num(series[key]):
            out[key] = "expected a number of seconds"
    return out


def problems(series: dict[str, Any]) -> list[str]:
    """What is wrong with the known series in a verdict's `series` (empty if all are well formed)."""
    return [f"{k}: {msg}" for k, msg in problems_by_key(series).items()]


def usable(series: dict[str, Any]) -> dict[str, Any]:
    """The well-formed known series, with the `window` shorthand folded into `windows`."""
    bad = problems_by_key(series)
    out = {k: v for k, v in series.items() if k in KNOWN and k not in bad}
    single = out.pop(WINDOW, None)
    if single is not None and WINDOWS not in out:
        out[WINDOWS] = [{"start": single["start"], "end": single["end"], "label": single.get("label", "disruption")}]
    return out
