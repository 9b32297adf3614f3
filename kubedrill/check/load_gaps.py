"""Load gaps: a load worker that stopped (evicted with the node it ran on, crashed) is the load
generator's failure, never the app's.

In-cluster load runs in pods, and the maintenance under test may take one of them down. Its
record reaches the judge as a "load-gap" event (at: when the worker was lost; data: pod, end --
None when it never came back --, reason). Two things follow, both pure:

  - `without_gap_failures`: requests of that worker that failed while it was being lost are
    dropped before any availability or shutdown checker sees them (they say nothing about the app);
  - `check_load_gaps`: a gap inside the judged window that left the app without any request for
    longer than `max_silence_s` hides the app's availability there: UNKNOWN, naming the span and
    the fix. A gap the other workers covered is PASS, saying so. `hidden_by_gaps` turns a PASS of
    the availability verdict into UNKNOWN in that case (a FAIL stays: what was seen failing was
    the app, since the lost worker's own failures were dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from kubedrill.check.verdict import Figure, Status, Verdict
from kubedrill.record import Event, Operation, Window

LOAD_GAP = "load-gap"


@dataclass(frozen=True)
class Gap:
    pod: str
    start: float
    end: float | None  # None: the worker never came back
    reason: str

    def until(self, horizon: float) -> float:
        return self.end if self.end is not None else horizon


def gaps_of(events: Sequence[Event]) -> list[Gap]:
    """The load-gap events of a record, as gaps."""
    out = []
    for e in events:
        if e.kind == LOAD_GAP:
            end = e.data.get("end")
            out.append(Gap(str(e.data.get("pod", "")), e.at, None if end is None else float(end), e.detail))
    return sorted(out, key=lambda g: g.start)


def _lost(op: Operation, gaps: Sequence[Gap]) -> bool:
    return op.outcome != "ok" and any(
        op.client == g.pod and op.end >= g.start - 1.0 and op.start <= g.until(math.inf) for g in gaps)


def without_gap_failures(ops: Sequence[Operation], gaps: Sequence[Gap]) -> list[Operation]:
    """`ops` without the failed requests of a worker while it was being lost (from 1 s before)."""
    return [o for o in ops if not _lost(o, gaps)] if gaps else list(ops)


def _silences(ops: Sequence[Operation], span: tuple[float, float], max_silence_s: float) -> list[tuple[float, float]]:
    """Stretches of `span` longer than max_silence_s in which no request started."""
    starts = sorted(o.start for o in ops if span[0] <= o.start <= span[1])
    out = []
    prev = span[0]
    for t in starts + [span[1]]:
        if t - prev > max_silence_s:
            out.append((prev, t))
        prev = t
    return out


def check_load_gaps(gaps: Sequence[Gap], ops: Sequence[Operation], window: Window | None,
                    max_silence_s: float = 2.0, t0: float | None = None) -> Verdict:
    """PASS when no gap touched the window or the other workers kept the load through it; UNKNOWN
    when a gap left the window without requests for longer than max_silence_s. `ops`: the load's
    requests (the lost worker's failures already dropped). t0: the origin of the times shown."""
    name = LOAD_GAP
    if window is None:
        return Verdict.unknown(name, "no window was recorded, so load gaps cannot be placed")
    origin = window.start if t0 is None else t0
    horizon = max([window.end] + [o.end for o in ops])
    inside = [g for g in gaps if g.start <= window.end and g.until(horizon) >= window.start]
    figures = [Figure("load_gaps", len(gaps), "workers", "; ".join(f"{g.pod}: {g.reason}" for g in gaps))]
    if not gaps:
        return Verdict.ok(name, "every load worker ran to the end", figures)
    if not inside:
        return Verdict.ok(name, f"{len(gaps)} load worker(s) lost outside the judged window "
                                f"({', '.join(g.pod for g in gaps)}): the window was fully loaded", figures)
    silent: list[tuple[Gap, tuple[float, float]]] = []
    for g in inside:
        span = (max(g.start, window.start), min(g.until(horizon), window.end))
        silent += [(g, s) for s in _silences(ops, span, max_silence_s)]
    if silent:
        g, (a, b) = max(silent, key=lambda x: x[1][1] - x[1][0])
        return Verdict.unknown(name, (
            f"load gap: load worker {g.pod} was lost at {g.start - origin:+.1f} s ({g.reason}) and no request was sent "
            f"from {a - origin:+.1f} s to {b - origin:+.1f} s, so the app's availability then is not known (not an app "
            "failure); keep load workers off the nodes under maintenance, or run more of them (--load-workers)"),
            figures + [Figure("load_gap_silence", round(b - a, 2), "s", g.pod)])
    covered = sum(1 for o in ops for g in inside if g.start <= o.start <= g.until(horizon))
    return Verdict.ok(name, f"load worker(s) {', '.join(g.pod for g in inside)} lost during the window "
                            f"({'; '.join(g.reason for g in inside)}); the others kept the load ({covered} requests "
                            "meanwhile), and the lost worker's own failed requests are not counted against the app",
                      figures)


def hidden_by_gaps(verdict: Verdict, gap_verdict: Verdict) -> Verdict:
    """An availability PASS the load could not back (the gap verdict is UNKNOWN) becomes UNKNOWN."""
    if verdict.status is Status.PASS and gap_verdict.status is Status.UNKNOWN:
        return Verdict(verdict.check, Status.UNKNOWN, f"{gap_verdict.reason} (seen otherwise: {verdict.reason})",
                       verdict.figures, verdict.series)
    return verdict
