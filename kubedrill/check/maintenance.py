"""Maintenance timing and shutdown ordering: how long did each node take, and did pods get SIGTERM
only after traffic had stopped reaching them?

  check_durations       each drain <= max_drain_s, each node's round trip, the whole pass; windows
  check_sigterm_margin  a pod must stop receiving traffic at least min_margin_s before SIGTERM
  check_failed_requests at most slo.max_failed_requests requests fail during the operation

Why the margin: without a preStop sleep, the kubelet sends SIGTERM as the pod leaves the Service's
endpoints, and every proxy (kube-proxy on each node, load balancers) drops it only when it hears
about it. Requests routed meanwhile hit a closed port. On a small kind cluster the race is often
won and few requests fail, so the margin between "last request served" and "SIGTERM received" is
the robust measure of how close a workload runs to that edge; failures are counted as well, by
the availability check.
"""

from __future__ import annotations

from typing import Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import Operation, Window
from kubedrill.record import series as S
from kubedrill.record.lifecycle import parse_lifecycle
from kubedrill.record.maintenance import NodePass
from kubedrill.record.termination import PodEvidence


def node_windows(passes: Sequence[NodePass], t0: float) -> list[S.WindowPoint]:
    """Each node's round trip as a labelled window (seconds from t0), for the timeline plot."""
    out = []
    for p in passes:
        end = p.end if p.end is not None else (p.drained_at or p.start)
        out.append(S.window(p.start - t0, max(end, p.start) - t0, f"{p.node}: drain -> uncordon"))
    return out


def with_windows(verdict: Verdict, windows: list[S.WindowPoint]) -> Verdict:
    """The verdict with its shaded windows replaced (e.g. one per node instead of one for the pass)."""
    if windows:
        verdict.series[S.WINDOWS] = windows
    return verdict


def check_durations(passes: Sequence[NodePass], *, max_drain_s: float, expected_nodes: int, t0: float) -> Verdict:
    """Figures: drain time and round trip per node, and the whole pass; FAIL past max_drain_s,
    when a node's pods did not settle, or when the pass stopped before every node was done."""
    check = "durations"
    if not passes:
        return Verdict.unknown(check, "no node was drained: the maintenance did not run")
    figs: list[Figure] = []
    problems: list[str] = []
    for p in passes:
        figs.append(Figure("drain_time", None if p.drain_s is None else round(p.drain_s, 2), "s", p.node))
        if p.roundtrip_s is not None:
            figs.append(Figure("node_roundtrip", round(p.roundtrip_s, 2), "s", p.node))
        if p.reboot.get("reboot_s") is not None:
            figs.append(Figure("reboot_time", float(str(p.reboot["reboot_s"])), "s", p.node))
        if p.drain_s is not None and p.drain_s > max_drain_s:
            problems.append(f"drain of {p.node} took {p.drain_s:.0f} s (limit {max_drain_s:g} s)")
        if p.drain_failed:
            problems.append(f"drain of {p.node} did not finish: {p.drain_failed}")
        if p.settle_error:
            problems.append(f"the workload did not settle {p.settle_error}")
    end = max((p.end or p.start) for p in passes)
    total = end - passes[0].start
    figs.append(Figure("maintenance_pass", round(total, 2), "s", f"{len(passes)} node(s)"))
    if len(passes) < expected_nodes and not problems:
        problems.append(f"the pass stopped after {len(passes)} of {expected_nodes} nodes")
    series = S.windows(node_windows(passes, t0))
    if problems:
        return Verdict.fail(check, "; ".join(problems), figs, **series)
    drains = ", ".join(f"{p.node} {p.drain_s:.1f} s" for p in passes if p.drain_s is not None)
    return Verdict.ok(check, f"drains took {drains} (limit {max_drain_s:g} s); whole pass {total:.1f} s", figs, **series)


def _sigterm_at(pod: PodEvidence) -> tuple[float | None, str]:
    """When the pod got SIGTERM, from the sample app's lifecycle record; else, for a pod without a
    preStop hook, its deletion (the kubelet signals at once). Returns (time, how it was known)."""
    if pod.message.strip().startswith("{"):
        try:
            times = parse_lifecycle(pod.message).times()
        except ValueError:
            times = {}
        if "sigterm" in times:
            return times["sigterm"], "lifecycle"
    if not pod.prestop_hook and pod.deletion_seen_at is not None:
        return pod.deletion_seen_at, "deletion (no preStop hook)"
    return None, ""


def check_sigterm_margin(pods: Sequence[PodEvidence], ops: Sequence[Operation], *, min_margin_s: float = 1.0,
                         around: Sequence[tuple[float, float]] = ()) -> Verdict:
    """For each pod deleted during the disruption: SIGTERM time minus the start of the last request
    routed to it (responses name their pod in X-Pod). The start, not the end: a request is routed
    when it connects, and one already in flight at SIGTERM is the app's to finish (the shutdown
    suite checks that). Near zero or negative: clients were still sent to a pod being told to stop."""
    check = "sigterm-margin"
    served: dict[str, float] = {}
    for o in ops:
        if o.outcome == "ok" and o.result:
            pod = str(o.result)
            served[pod] = max(served.get(pod, o.start), o.start)
    if not served:
        return Verdict.unknown(check, "not measured: no response named the pod that answered it (X-Pod header), so "
                                      "when each pod stopped receiving traffic is unknown; its SIGTERM margin "
                                      "cannot be judged")
    deleted = [p for p in pods if p.deletion_seen_at is not None
               and (not around or any(a <= p.deletion_seen_at <= b for a, b in around))]
    figs: list[Figure] = []
    short: list[str] = []
    unmeasured: list[str] = []
    measured = 0
    for f in sorted(deleted, key=lambda p: p.deletion_seen_at or 0):
        sig, how = _sigterm_at(f)
        last = served.get(f.pod)
        if sig is None or last is None:
            unmeasured.append(f"{f.pod} ({'no SIGTERM time' if sig is None else 'no request answered by it'})")
            continue
        measured += 1
        margin = sig - last
        figs.append(Figure("sigterm_margin", round(margin, 3), "s", f"{f.pod} ({how})"))
        if margin < min_margin_s:
            hook = "its preStop hook is too short" if f.prestop_hook else "it has no preStop hook"
            short.append(f"{f.pod} got SIGTERM {margin:+.2f} s after the last request routed to it (need >= {min_margin_s:g} s; "
                         f"{hook})")
    if not deleted:
        return Verdict.unknown(check, "no pod was deleted during the disruption, so shutdown ordering was not exercised")
    if not measured:
        return Verdict.unknown(check, f"not measured for {len(deleted)} deleted pod(s): {', '.join(unmeasured)}. A SIGTERM "
                                      "time comes from the pod's lifecycle record, or from its deletion when it has no "
                                      "preStop hook; the last request from responses naming their pod (X-Pod)", figs)
    if short:
        return Verdict.fail(check, "requests can be dropped during drain: " + "; ".join(short)
                            + ". SIGTERM arrives while clients are still routed to the pod; add a preStop sleep longer "
                              "than endpoint propagation (a few seconds)", figs)
    note = f"; not measured for {', '.join(unmeasured)}" if unmeasured else ""
    return Verdict.ok(check, f"{measured} evicted pod(s) stopped receiving traffic >= {min_margin_s:g} s before SIGTERM"
                             f"{note}", figs)


def check_failed_requests(ops: Sequence[Operation], window: Window | None, *, allowed: int,
                          after_s: float) -> Verdict:
    """At most `allowed` requests started during the operation (and `after_s` past it, while endpoint
    changes settle) may fail: the run config's slo.max_failed_requests, an absolute cap next to the
    availability ratio, which on a long operation would forgive a burst of failures."""
    check = "failed-requests"
    if window is None:
        return Verdict.unknown(check, "no operation window was recorded, so no request can be said to fall in it")
    judged = [o for o in ops if o.kind.startswith("http") and window.start <= o.start <= window.end + after_s]
    if not judged:
        return Verdict.unknown(check, "no request was sent while the operation ran: the load was not running")
    failed = [o for o in judged if o.outcome != "ok"]
    figs = [Figure("failed_requests", len(failed), "requests", f"of {len(judged)}, allowed {allowed}")]
    if len(failed) > allowed:
        return Verdict.fail(check, f"{len(failed)} of {len(judged)} request(s) failed during the operation (allowed "
                                   f"{allowed}, slo.max_failed_requests); first: {failed[0].detail or failed[0].outcome}",
                            figs)
    return Verdict.ok(check, f"{len(failed)} of {len(judged)} request(s) failed during the operation (allowed {allowed})",
                      figs)
