"""Turn a verdict's series (see kubedrill.record.series) into inline SVG plots.

Each plot answers one release-gate question at a glance: did requests fail while the node was
drained, did every pod exit before its grace period ran out, how long was etcd unavailable and how
long did elections take. A malformed series becomes a short note, never a crashed report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kubedrill.record import series as S
from kubedrill.report.svg import (BAND, FAIL, GRID, NEUTRAL, OK, UNKNOWN, Frame, close_svg, fmt, legend,
                                  legend_width, line, open_svg, rect, text, x_axis, y_axis)

WIDTH = 880
MAX_ROWS = 40


@dataclass(frozen=True)
class Plot:
    title: str
    svg: str


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _bands(f: Frame, windows: list[dict[str, Any]], top: float, bottom: float) -> str:
    """Shaded disruption windows with their labels, drawn behind the data."""
    parts = []
    for w in windows:
        x1, x2 = f.x(max(w["start"], f.x0)), f.x(min(w["end"], f.x1))
        label = str(w.get("label", ""))
        tip = f"{label}: {fmt(w['start'])}–{fmt(w['end'])} s ({fmt(w['end'] - w['start'])} s)"
        parts.append(rect(x1, top, max(x2 - x1, 1.5), bottom - top, BAND, 0.12, tip))
        parts.append(line(x1, top, x1, bottom, BAND, 1, "3,2"))
        parts.append(line(x2, top, x2, bottom, BAND, 1, "3,2"))
        if label:
            parts.append(text(x1 + 3, top + 11, _short(label, max(4, int((x2 - x1) / 6.5))), fill=BAND))
    return "".join(parts)


def timeline_plot(tl: dict[str, Any], windows: list[dict[str, Any]]) -> Plot:
    """Requests per time bucket, stacked ok/unknown/fail, with disruption windows shaded.

    A thin strip above the plot marks every bucket with a failure, because a handful of failed
    requests among thousands would be invisible as a sliver of a stacked column.
    """
    t = [float(x) for x in tl["t"]]
    n = len(t)
    ok = [float(x) for x in tl.get("ok", [0] * n)]
    fail = [float(x) for x in tl.get("fail", [0] * n)]
    unk = [float(x) for x in tl.get("unknown", [0] * n)]
    bucket = float(tl.get("bucket_s") or ((t[1] - t[0]) if n > 1 else 1.0))
    x_hi = max([t[-1] + bucket if n else 1.0, *(w["end"] for w in windows)])
    x_lo = min([t[0] if n else 0.0, *(w["start"] for w in windows)])
    y_hi = max([o + f + u for o, f, u in zip(ok, fail, unk)] or [1.0]) or 1.0
    total_fail, total = sum(fail), sum(ok) + sum(fail) + sum(unk)
    title = (f"Requests per {fmt(bucket)} s: {fmt(total_fail)} failed, {fmt(sum(unk))} unknown "
             f"of {fmt(total)}")
    f = Frame(WIDTH, 240, x_lo, x_hi, 0, y_hi * 1.08, top=40)
    parts = [open_svg(WIDTH, f.height, title), text(f.plot_left, 13, title, weight="600")]
    items = [("ok", OK), ("unknown", UNKNOWN), ("failed", FAIL)] + ([("disruption", BAND)] if windows else [])
    parts.append(legend(f.plot_right - legend_width(items), 13, items))
    parts.append(y_axis(f, "requests"))
    parts.append(_bands(f, windows, f.plot_top, f.plot_bottom))
    bw = max(f.x(bucket) - f.x(0) - (1 if f.x(bucket) - f.x(0) > 4 else 0), 0.8)
    strip_y = f.plot_top - 12
    parts.append(text(f.plot_left - 5, strip_y + 8, "errors", "end", NEUTRAL, size=9))
    parts.append(rect(f.plot_left, strip_y, f.plot_right - f.plot_left, 8, GRID, 0.35))
    for ti, o, fl, u in zip(t, ok, fail, unk):
        x = f.x(ti)
        base = 0.0
        tip = f"t={fmt(ti)} s: {fmt(o)} ok, {fmt(u)} unknown, {fmt(fl)} failed"
        for v, colour in ((o, OK), (u, UNKNOWN), (fl, FAIL)):
            if v > 0:
                parts.append(rect(x, f.y(base + v), bw, f.y(base) - f.y(base + v), colour, tip=tip))
                base += v
        if fl > 0 or u > 0:
            parts.append(rect(x, strip_y, max(bw, 2), 8, FAIL if fl > 0 else UNKNOWN, tip=tip))
    parts.append(x_axis(f, "seconds"))
    parts.append(close_svg())
    return Plot(title, "".join(parts))


def intervals_plot(rows: list[tuple[str, list[dict[str, Any]], str]], title: str) -> Plot:
    """One lane per kind of interval (disruptions, unavailability) on a shared time axis."""
    all_w = [w for _, ws, _ in rows for w in ws]
    x_lo = min([0.0, *(w["start"] for w in all_w)])
    x_hi = max([1.0, *(w["end"] for w in all_w)])
    x_hi += (x_hi - x_lo) * 0.03
    lane = 30
    height = 40 + lane * len(rows) + 34
    f = Frame(WIDTH, height, x_lo, x_hi, 0, len(rows), left=110, top=34)
    parts = [open_svg(WIDTH, height, title), text(f.plot_left, 13, title, weight="600")]
    for i, (name, ws, colour) in enumerate(rows):
        y = f.plot_top + i * lane + 5
        parts.append(text(f.plot_left - 6, y + 14, _short(name, 16), "end", NEUTRAL))
        parts.append(rect(f.plot_left, y, f.plot_right - f.plot_left, lane - 10, GRID, 0.3))
        for w in ws:
            x1, x2 = f.x(w["start"]), f.x(w["end"])
            dur = w["end"] - w["start"]
            label = str(w.get("label", ""))
            tip = f"{label + ': ' if label else ''}{fmt(w['start'])}–{fmt(w['end'])} s ({fmt(dur)} s)"
            parts.append(rect(x1, y, max(x2 - x1, 2), lane - 10, colour, 0.85, tip))
            caption = f"{label} {fmt(dur)} s".strip()
            if x2 - x1 > 6.5 * len(caption) + 6:
                parts.append(text(x1 + 4, y + 14, caption, fill="#ffffff"))
            else:
                parts.append(text(x2 + 3, y + 14, f"{fmt(dur)} s", fill=colour))
    parts.append(x_axis(f, "seconds"))
    parts.append(close_svg())
    return Plot(title, "".join(parts))


def shutdown_plot(points: list[dict[str, Any]]) -> Plot:
    """Per pod: time from SIGTERM to exit against the grace period (solid) and budget (dashed)."""
    def ratio(p: dict[str, Any]) -> float:
        return float("inf") if p.get("seconds") is None else p["seconds"] / (p["grace"] or 1)

    shown = sorted(points, key=ratio, reverse=True)[:MAX_ROWS]
    late = [p for p in points if p.get("seconds") is None or p["seconds"] > p["grace"]]
    over = [p for p in points if p.get("seconds") is None
            or p["seconds"] > (p["budget"] if p.get("budget") is not None else p["grace"])]
    title = (f"Shutdown time vs grace period: {len(points)} pods, {len(over)} past budget "
             f"({len(late)} past grace or killed)")
    if len(points) > len(shown):
        title += f" (slowest {len(shown)} shown)"
    x_hi = max([1.0, *(p["grace"] for p in shown), *((p["seconds"] or 0) for p in shown)]) * 1.08
    row = 22
    height = 40 + row * len(shown) + 34
    f = Frame(WIDTH, height, 0, x_hi, 0, 1, left=190, top=34)
    parts = [open_svg(WIDTH, height, title), text(8, 13, title, weight="600")]
    items = [("within budget", OK), ("past budget", UNKNOWN), ("past grace / killed", FAIL)]
    parts.append(legend(f.plot_right - legend_width(items), 13, items))
    for i, p in enumerate(shown):
        y = f.plot_top + i * row + 3
        secs, grace, budget = p.get("seconds"), float(p["grace"]), p.get("budget")
        parts.append(text(f.plot_left - 6, y + 12, _short(str(p.get("pod", "?")), 28), "end"))
        parts.append(rect(f.plot_left, y, f.x(grace) - f.plot_left, row - 6, GRID, 0.45,
                          f"grace period {fmt(grace)} s"))
        if secs is None:
            colour, shown_s, label = FAIL, grace, "did not exit"
        else:
            colour = FAIL if secs > grace else UNKNOWN if budget is not None and secs > budget else OK
            shown_s, label = float(secs), f"{fmt(secs)} s"
        parts.append(rect(f.plot_left, y + 2, f.x(shown_s) - f.plot_left, row - 10, colour,
                          tip=f"{p.get('pod')}: {label} (grace {fmt(grace)} s"
                              f"{', budget ' + fmt(budget) + ' s' if budget is not None else ''})"))
        parts.append(text(f.x(shown_s) + 4, y + 12, label, fill=colour if colour == FAIL else NEUTRAL))
        gx = f.x(grace)
        parts.append(line(gx, y - 1, gx, y + row - 5, "#24292f", 1.5))
        if budget is not None:
            bx = f.x(float(budget))
            parts.append(line(bx, y - 1, bx, y + row - 5, "#24292f", 1, "3,2"))
    parts.append(x_axis(f, "seconds from SIGTERM (solid line: grace period, dashed: budget)"))
    parts.append(close_svg())
    return Plot(title, "".join(parts))


def elections_plot(points: list[dict[str, Any]], limit: float | None) -> Plot:
    """One column per leader election, its duration against the limit."""
    n = len(points)
    worst = max((p["seconds"] for p in points), default=0.0)
    title = f"Leader elections: {n}, longest {fmt(worst)} s" + (f" (limit {fmt(limit)} s)" if limit is not None else "")
    y_hi = max([worst, limit or 0.0, 0.1]) * 1.15
    f = Frame(WIDTH, 220, 0, max(n, 1), 0, y_hi, top=30, bottom=40)
    parts = [open_svg(WIDTH, f.height, title), text(f.plot_left, 13, title, weight="600"), y_axis(f, "seconds")]
    slot = (f.plot_right - f.plot_left) / max(n, 1)
    bw = min(slot * 0.7, 60)
    for i, p in enumerate(points):
        secs = float(p["seconds"])
        colour = FAIL if limit is not None and secs > limit else OK
        x = f.plot_left + i * slot + (slot - bw) / 2
        label = str(p.get("label") or f"#{i + 1}")
        parts.append(rect(x, f.y(secs), bw, f.y(0) - f.y(secs), colour,
                          tip=f"{label} at t={fmt(p['at'])} s: {fmt(secs)} s"))
        parts.append(text(x + bw / 2, f.y(secs) - 3, fmt(secs), "middle"))
        if n <= 24:
            parts.append(text(x + bw / 2, f.plot_bottom + 14, _short(label, max(3, int(slot / 6.5))), "middle",
                              NEUTRAL))
    parts.append(line(f.plot_left, f.plot_bottom, f.plot_right, f.plot_bottom, NEUTRAL))
    if limit is not None:
        ly = f.y(limit)
        parts.append(line(f.plot_left, ly, f.plot_right, ly, FAIL, 1.2, "5,3"))
        parts.append(text(f.plot_right, ly - 4, f"limit {fmt(limit)} s", "end", FAIL))
    parts.append(text((f.plot_left + f.plot_right) / 2, f.height - 6, "election (hover for time)", "middle", NEUTRAL))
    parts.append(close_svg())
    return Plot(title, "".join(parts))


def _unavailability(series: dict[str, Any]) -> Plot:
    ws = series[S.UNAVAILABILITY]
    limit = series.get(S.UNAVAILABILITY_LIMIT)
    longest = max((w["end"] - w["start"] for w in ws), default=0.0)
    title = (f"Unavailability: {len(ws)} interval(s), longest {fmt(longest)} s"
             + (f" (limit {fmt(limit)} s)" if limit is not None else ""))
    rows: list[tuple[str, list[dict[str, Any]], str]] = []
    if series.get(S.WINDOWS) and series.get(S.TIMELINE) is None:
        rows.append(("disruption", series[S.WINDOWS], BAND))
    rows.append(("unavailable", ws, FAIL))
    return intervals_plot(rows, title)


def render_series(raw: dict[str, Any]) -> tuple[list[Plot], list[str]]:
    """All plots for one verdict's series, plus notes about series that could not be drawn.

    A malformed series is left out with a note naming the problem; the others are still drawn.
    """
    notes = [f"series {k!r} not drawn: {msg}" for k, msg in S.problems_by_key(raw).items()]
    series = S.usable(raw)
    plots: list[Plot] = []
    builders: list[tuple[str, Callable[[], Plot]]] = []
    if series.get(S.TIMELINE) is not None:
        builders.append((S.TIMELINE, lambda: timeline_plot(series[S.TIMELINE], series.get(S.WINDOWS) or [])))
    elif series.get(S.WINDOWS) and series.get(S.UNAVAILABILITY) is None:
        builders.append((S.WINDOWS, lambda: intervals_plot([("disruption", series[S.WINDOWS], BAND)],
                                                           "Disruption windows")))
    if series.get(S.UNAVAILABILITY) is not None:
        builders.append((S.UNAVAILABILITY, lambda: _unavailability(series)))
    if series.get(S.SHUTDOWN):
        builders.append((S.SHUTDOWN, lambda: shutdown_plot(series[S.SHUTDOWN])))
    if series.get(S.ELECTIONS) is not None:
        builders.append((S.ELECTIONS, lambda: elections_plot(series[S.ELECTIONS], series.get(S.ELECTIONS_LIMIT))))
    for name, build in builders:
        try:
            plots.append(build())
        except Exception as exc:  # noqa: BLE001 - a bad plot must not cost the whole report
            notes.append(f"series {name!r} not drawn: {exc!r}")
    extra = sorted(k for k in raw if k not in S.KNOWN)
    if extra:
        notes.append(f"other series recorded in results.json (not drawn): {', '.join(extra)}")
    return plots, notes
