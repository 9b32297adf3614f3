"""Shutdown: did a terminated pod leave without hurting anyone, and if not, what should change?

The input is one TerminationRecord per pod: what the kubelet, the app and the clients saw. All its
times are on ONE clock (seconds; the test's monotonic clock by convention, see
kubedrill.record.termination for converting the app's times). The checker judges, in order:

  evidence    an exit (code or time) and a start (deletion or SIGTERM) must be recorded, else UNKNOWN
  SIGKILL     exit 137 / killed: why (SIGTERM ignored, shutdown too slow, or killed early)
  exit code   anything but `expected_exit_codes` after SIGTERM
  grace       deletion-to-exit must stay within `max_grace_fraction` of terminationGracePeriodSeconds
  preStop     a declared preStop hook must not fail (FailedPreStopHook) and, where the app keeps a
              lifecycle record, must be seen running
  in-flight   requests in flight at SIGTERM must complete; a probe that finished early is UNKNOWN
  traffic     continuous-traffic failures from deletion to exit (+settle): zero by default

Every aspect rests on evidence any pod leaves (container status, Kubernetes events, what clients
saw, requests sent straight to the pod); the app's own lifecycle record (`app_record`) only
sharpens the times. What cannot be observed is UNKNOWN, never PASS.

Why these defaults are strict: each item is a real incident class during node maintenance, and a
gate that tolerates "a few" dropped requests hides exactly the bug this suite exists to find.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from kubedrill.check.verdict import Figure, Verdict, combine
from kubedrill.record import Operation
from kubedrill.record import series as S
from kubedrill.record.termination import PodEvidence, TerminationRecord

CHECK = "shutdown"
SIGTERM_EXIT = 143


@dataclass(frozen=True)
class ShutdownThresholds:
    """Strict by default: no failed request, exit 0, exit within 80% of the grace period."""

    max_grace_fraction: float = 0.8
    max_failed_requests: int = 0
    expected_exit_codes: tuple[int, ...] = (0,)
    require_inflight: bool = True
    require_traffic: bool = True
    min_prestop_seconds: float | None = None
    settle_seconds: float = 2.0


def check_shutdown(rec: TerminationRecord, thresholds: ShutdownThresholds = ShutdownThresholds()) -> Verdict:
    """One pod's termination judged on all the aspects in the module docstring."""
    name = f"{CHECK}[{rec.pod}]"
    t0 = rec.start
    if t0 is None:
        return Verdict.unknown(name, f"pod {rec.pod}: neither the deletion time nor SIGTERM receipt was recorded, so the "
                                     "shutdown cannot be timed; record the deletion request time")
    if rec.exit_at is None and rec.exit_code is None:
        return Verdict.unknown(name, f"pod {rec.pod}: no container exit was recorded (exit code and time unknown): the pod "
                                     "status was not captured before the pod disappeared; watch the pod until it is gone")
    verdicts = [
        _killed(rec, t0),
        _exit_code(rec, thresholds),
        _grace(rec, t0, thresholds),
        _prestop(rec, thresholds),
        _inflight(rec, t0, thresholds),
        _traffic(rec, t0, thresholds),
    ]
    v = combine(name, [x for x in verdicts if x is not None])
    v.figures[:0] = _figures(rec, t0)
    v.series.update(S.shutdown([_point(rec, t0, thresholds)]))
    return v


def _point(rec: TerminationRecord, t0: float, th: ShutdownThresholds) -> S.ShutdownPoint:
    # Seconds from deletion (where the grace period starts) to exit; None when it had to be killed.
    seconds = None if rec.killed or rec.exit_at is None else rec.exit_at - t0
    return S.shutdown_point(rec.pod, seconds, rec.grace_seconds, th.max_grace_fraction)


def check_shutdowns(records: Sequence[TerminationRecord], thresholds: ShutdownThresholds = ShutdownThresholds()) -> Verdict:
    """All terminated pods of a disruption; UNKNOWN if none was recorded."""
    if not records:
        return Verdict.unknown(CHECK, "no pod termination was recorded: the disruption terminated no pod of the workload")
    verdicts = [check_shutdown(r, thresholds) for r in records]
    v = combine(CHECK, verdicts)
    v.series.update(S.shutdown([p for x in verdicts for p in x.series.get(S.SHUTDOWN, [])]))
    return v


def _figures(rec: TerminationRecord, t0: float) -> list[Figure]:
    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    figs = [
        Figure("sigterm_after_deletion", rel(rec.sigterm_at), "s", rec.pod),
        Figure("listener_closed_after_deletion", rel(rec.shutdown_began_at), "s", rec.pod),
        Figure("exit_after_deletion", rel(rec.exit_at), "s", rec.pod),
        Figure("grace_period", rec.grace_seconds, "s", rec.pod),
        Figure("exit_code", rec.exit_code, "code", rec.pod),
    ]
    if rec.prestop_start is not None and rec.prestop_end is not None:
        figs.append(Figure("prestop_duration", round(rec.prestop_end - rec.prestop_start, 3), "s", rec.pod))
    return figs


def _killed(rec: TerminationRecord, t0: float) -> Verdict | None:
    if rec.reason == "OOMKilled":
        return Verdict.fail("sigkill", f"pod {rec.pod} was OOMKilled during shutdown: the shutdown path needs more memory "
                                   "than the container limit; raise the limit or lower the memory used while draining")
    if not rec.killed:
        return None
    grace = f"{rec.grace_seconds:g} s"
    # Tolerance: Kubernetes reports finishedAt in whole seconds, and the runtime kills a little late.
    if rec.exit_at is not None and rec.exit_at - t0 < rec.grace_seconds - max(1.5, 0.1 * rec.grace_seconds):
        return Verdict.fail("sigkill", f"pod {rec.pod} was SIGKILLed {rec.exit_at - t0:.1f} s after deletion, before its {grace} "
                                   "grace period ended: something other than the grace period killed it (liveness probe, "
                                   "OOM, node shutdown, or deletion with --grace-period=0)")
    if rec.sigterm_at is None and not rec.app_record:
        return Verdict.fail("sigkill", f"SIGKILLed after the {grace} grace period: {_kill_cause(rec, t0)}")
    if rec.sigterm_at is None:
        return Verdict.fail("sigkill", f"SIGKILLed after the {grace} grace period: the process ignored SIGTERM (no SIGTERM "
                                   "receipt was recorded; a shell as PID 1 or a missing handler does this: exec the server "
                                   "directly and handle SIGTERM)")
    if rec.shutdown_began_at is None:
        return Verdict.fail("sigkill", f"SIGKILLed after the {grace} grace period: the process ignored SIGTERM (received it "
                                   f"{rec.sigterm_at - t0:.1f} s after deletion but never stopped accepting connections); on "
                                   "SIGTERM close the listener, drain in-flight requests and exit")
    last = "draining in-flight requests" if rec.drained_at is None else "in its cleanup after draining"
    return Verdict.fail("sigkill", f"SIGKILLed after the {grace} grace period: shutdown was too slow (SIGTERM at "
                               f"{rec.sigterm_at - t0:+.1f} s, listener closed at {rec.shutdown_began_at - t0:+.1f} s, still "
                               f"{last} when killed); make shutdown finish within the grace period or raise "
                               "terminationGracePeriodSeconds")


# The last answer straight from the pod this close to its SIGKILL means it was still serving when killed.
KEPT_SERVING_S = 2.0


def _kill_cause(rec: TerminationRecord, t0: float) -> str:
    """Why a pod without a lifecycle record was killed, from requests sent straight to it: still
    answering until the kill means it ignored SIGTERM; no longer answering well before it means it
    reacted (closed its listener) but did not finish in time."""
    assert rec.exit_at is not None or rec.exit_code is not None
    after = sorted((o for o in rec.direct if o.start >= t0), key=lambda o: o.start)
    kill = rec.exit_at if rec.exit_at is not None else t0 + rec.grace_seconds
    answered = [o for o in after if o.outcome == "ok"]
    if not after:
        return ("cannot tell whether the process ignored SIGTERM or handled it too slowly (the app keeps no lifecycle "
                "record and no request reached the pod itself during its termination); either way make it exit within "
                "the grace period: handle SIGTERM, drain, exit")
    if answered and answered[-1].end >= kill - KEPT_SERVING_S:
        return (f"the process ignored SIGTERM (it kept answering requests sent straight to it until "
                f"{answered[-1].end - t0:.1f} s after deletion, then was killed at {kill - t0:.1f} s); a shell as PID 1 or "
                "a missing handler does this: exec the server directly and handle SIGTERM")
    stopped = next((o for o in after if o.outcome != "ok" and (not answered or o.start > answered[-1].start)), None)
    at = f"{stopped.start - t0:.1f} s after deletion" if stopped is not None else "early"
    return (f"shutdown was too slow (it stopped answering requests sent straight to it {at}, so it reacted to SIGTERM, "
            f"but was still running when killed {kill - t0:.1f} s after deletion); make shutdown finish within the grace "
            "period (shorter drain timeout) or raise terminationGracePeriodSeconds")


def _exit_code(rec: TerminationRecord, th: ShutdownThresholds) -> Verdict | None:
    if rec.killed or rec.reason == "OOMKilled":
        return None
    if rec.exit_code is None:
        return Verdict.unknown("exit-code", f"pod {rec.pod}: the container's exit code was not recorded")
    if rec.exit_code == SIGTERM_EXIT and SIGTERM_EXIT not in th.expected_exit_codes:
        return Verdict.fail("exit-code", f"exit code {SIGTERM_EXIT} on SIGTERM: the process died of SIGTERM's default action, with "
                                   "no handler, so in-flight requests were cut off; handle SIGTERM, drain, and exit 0")
    if rec.exit_code not in th.expected_exit_codes:
        return Verdict.fail("exit-code", f"exit code {rec.exit_code} on SIGTERM: Kubernetes marks the container as Error, which looks "
                                   "like a crash to restart policies, Jobs and alerts; exit 0 after a clean shutdown")
    return Verdict.ok("exit-code", f"exit code {rec.exit_code}")


def _grace(rec: TerminationRecord, t0: float, th: ShutdownThresholds) -> Verdict | None:
    if rec.killed or rec.exit_at is None:
        return None
    used = rec.exit_at - t0
    frac = used / rec.grace_seconds if rec.grace_seconds > 0 else math.inf
    if frac > th.max_grace_fraction:
        return Verdict.fail("grace-period", f"shutdown used {frac:.0%} of the {rec.grace_seconds:g} s grace period (limit "
                                   f"{th.max_grace_fraction:.0%}): {used:.1f} s from deletion to exit; one slow drain away from "
                                   "a SIGKILL: raise terminationGracePeriodSeconds or shorten the preStop sleep or drain timeout")
    return Verdict.ok("grace-period", f"exited {used:.1f} s after deletion ({frac:.0%} of the {rec.grace_seconds:g} s grace period)")


def _prestop(rec: TerminationRecord, th: ShutdownThresholds) -> Verdict | None:
    if not rec.prestop_expected:
        return None
    if rec.prestop_failed is not None:
        return Verdict.fail("prestop", f"preStop hook failed in pod {rec.pod} (FailedPreStopHook: {rec.prestop_failed[:200]}): "
                                   "check the hook command exists in the image and exits 0")
    if not rec.app_record:
        if "Killing" not in rec.kube_events:
            return Verdict.unknown("prestop", f"pod {rec.pod}: no Kubernetes event of its termination was captured (no "
                                          "Killing event), so a failed preStop hook would not show; check event retention")
        return Verdict.ok("prestop", "preStop hook ran without failing (the kubelet reported Killing and no "
                                     "FailedPreStopHook; its duration is not observable without an app record)")
    if rec.prestop_start is None:
        return Verdict.fail("prestop", f"preStop hook did not run in pod {rec.pod} (no prestop-start was recorded): check the "
                                   "hook command exists in the image and look for FailedPreStopHook events on the pod")
    if th.min_prestop_seconds is not None and rec.prestop_end is not None:
        took = rec.prestop_end - rec.prestop_start
        if took < th.min_prestop_seconds:
            return Verdict.fail("prestop", f"preStop hook ran only {took:.1f} s (need >= {th.min_prestop_seconds:g} s for endpoint "
                                       "removal to propagate); lengthen its sleep")
    return Verdict.ok("prestop", "preStop hook ran")


def _inflight(rec: TerminationRecord, t0: float, th: ShutdownThresholds) -> Verdict | None:
    if not rec.inflight:
        if th.require_inflight:
            return Verdict.unknown("in-flight", f"pod {rec.pod}: no in-flight request was probed, so draining was not tested; "
                                          "give the workload spec a slow_path (any URL that takes a while)")
        return None
    term = rec.sigterm_at if rec.sigterm_at is not None else t0
    failed = [o for o in rec.inflight if o.outcome != "ok"]
    if not failed:
        if all(o.end < term for o in rec.inflight):
            return Verdict.unknown("in-flight", f"pod {rec.pod}: every slow request finished before SIGTERM, so draining was not "
                                          "tested; use a slower slow_path")
        return Verdict.ok("in-flight", f"{len(rec.inflight)} in-flight request(s) completed")
    first = min(failed, key=lambda o: o.end)
    err = _top_error(failed)
    when = f"{first.end - term:.1f} s after SIGTERM" if rec.sigterm_at is not None else f"{first.end - t0:.1f} s after deletion"
    if rec.killed and rec.exit_at is not None and first.end >= rec.exit_at - 0.5:
        why = "they were cut off by the SIGKILL at the end of the grace period"
    else:
        why = ("the server exits without waiting for in-flight requests; on SIGTERM stop accepting new connections and "
               "wait for active requests to finish (Go: http.Server.Shutdown) before exiting")
    return Verdict.fail("in-flight", f"{len(failed)} of {len(rec.inflight)} in-flight request(s) failed with {err} {when}: {why}")


def _traffic(rec: TerminationRecord, t0: float, th: ShutdownThresholds) -> Verdict | None:
    if not rec.traffic:
        if th.require_traffic:
            return Verdict.unknown("traffic", f"pod {rec.pod}: no continuous traffic was recorded around the termination, so "
                                          "dropped requests cannot be seen; run a LoadRunner across the deletion")
        return None
    if not any(t0 - 2.0 <= o.start <= t0 for o in rec.traffic):
        return Verdict.unknown("traffic", f"pod {rec.pod}: the load was not running when the pod was deleted (no request in the "
                                      "2 s before deletion); start the load earlier")
    until = (rec.exit_at if rec.exit_at is not None else t0 + rec.grace_seconds) + th.settle_seconds
    failed = [o for o in rec.traffic if o.outcome != "ok" and o.end >= t0 and o.start <= until]
    n = sum(1 for o in rec.traffic if t0 <= o.start <= until)
    if n == 0 and not failed:
        return Verdict.unknown("traffic", f"pod {rec.pod}: no request was sent from its deletion to its exit, so dropped "
                                      "requests cannot be seen; keep the load running until the pod is gone")
    if len(failed) <= th.max_failed_requests:
        return Verdict.ok("traffic", f"{n} requests from deletion to exit, {len(failed)} failed")
    first = min(failed, key=lambda o: o.start)
    last_end = max(o.end for o in failed)
    err = _top_error(failed)
    need = max(2, math.ceil(last_end - t0) + 1)
    if rec.sigterm_at is not None and first.start < rec.sigterm_at - 0.05:
        return Verdict.fail("traffic", f"{len(failed)} requests failed with {err} from {first.start - t0:.1f} s after deletion, "
                                   "before SIGTERM: the pod stopped serving during its preStop hook while still receiving "
                                   "traffic; keep serving until SIGTERM")
    ref = rec.sigterm_at if rec.sigterm_at is not None else t0
    label = "SIGTERM" if rec.sigterm_at is not None else "deletion"
    head = f"{len(failed)} requests failed with {err} {first.start - ref:.1f} s after {label}"
    if rec.prestop_start is not None and rec.prestop_end is not None:
        return Verdict.fail("traffic", f"{head}: the preStop sleep ({rec.prestop_end - rec.prestop_start:.1f} s) ended before "
                                   f"endpoint removal reached every client; lengthen it to at least {need} s")
    return Verdict.fail("traffic", f"{head}: the server closes its listener before endpoints are removed; add a preStop "
                               f"sleep of at least {need} s")


def _top_error(ops: Sequence[Operation]) -> str:
    err, _ = Counter(o.detail or o.outcome for o in ops).most_common(1)[0]
    return err.rstrip(". ")


def termination_figures(rec: TerminationRecord, ev: PodEvidence, settle_s: float = 2.0) -> list[Figure]:
    """Measurements the checker does not already report: when preStop started, the share of the grace
    budget used, whether the kubelet had to SIGKILL, and the requests that failed around this pod's end."""
    t0 = rec.start
    figs: list[Figure] = []
    if t0 is None:
        return figs

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    figs.append(Figure("prestop_start_after_deletion", rel(rec.prestop_start), "s", rec.pod))
    if rec.exit_at is not None and rec.grace_seconds > 0:
        figs.append(Figure("grace_used", round(100 * (rec.exit_at - t0) / rec.grace_seconds, 1), "%", rec.pod))
    figs.append(Figure("sigkilled", int(rec.killed), "bool", rec.pod))
    if rec.prestop_expected and rec.app_record:
        figs.append(Figure("prestop_ran", int(rec.prestop_start is not None), "bool", rec.pod))
    elif rec.prestop_expected:
        figs.append(Figure("prestop_failed", int(rec.prestop_failed is not None), "bool",
                           f"{rec.pod}: from events (no app lifecycle record)"))
    end = (rec.exit_at if rec.exit_at is not None else t0 + rec.grace_seconds) + settle_s
    window = [o for o in rec.traffic if t0 <= o.start <= end]
    failed = [o for o in window if o.outcome != "ok"]
    times = ", ".join(f"{o.start - t0:+.2f}s" for o in failed[:10]) + (" ..." if len(failed) > 10 else "")
    figs.append(Figure("requests_during_termination", len(window), "requests", rec.pod))
    figs.append(Figure("requests_failed_during_termination", len(failed), "requests",
                       f"{rec.pod}: at {times}" if failed else rec.pod))
    figs.append(Figure("inflight_requests", len(rec.inflight), "requests", rec.pod))
    figs.append(Figure("inflight_failed", sum(1 for o in rec.inflight if o.outcome != "ok"), "requests", rec.pod))
    kube = ", ".join(sorted({e.reason for e in ev.events}))
    figs.append(Figure("exit_reason", ev.exit_code, "code", f"{rec.pod}: {ev.reason}; events: {kube}"))
    return figs
