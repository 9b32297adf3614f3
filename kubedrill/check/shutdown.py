"""Shutdown: did a terminated pod leave without hurting anyone, and if not, what should change?

The input is one TerminationRecord per pod: what the kubelet, the app and the clients saw. All its
times are on ONE clock (seconds; the test's monotonic clock by convention, see
kubedrill.record.termination for converting the app's times). The checker judges, in order:

  probe load  the pod went unready (or stopped answering health checks sent straight to it) while
              only the in-flight probe was running, before the deletion: UNKNOWN, the probe's load
              and not the termination may explain what follows
  evidence    an exit (code or time) and a start (deletion or SIGTERM) must be recorded, else UNKNOWN
  SIGKILL     exit 137 / killed: why (SIGTERM ignored, shutdown too slow, or killed early)
  exit code   anything but `expected_exit_codes` after SIGTERM
  grace       deletion-to-exit must stay within `max_grace_fraction` of terminationGracePeriodSeconds
  preStop     a declared preStop hook must not fail (FailedPreStopHook) and, where the app keeps a
              lifecycle record, must be seen running
  in-flight   requests in flight at SIGTERM must complete; a probe that finished early is UNKNOWN
  traffic     continuous-traffic failures from deletion to exit (+settle): zero by default

Every aspect rests on evidence any pod leaves (container status, Kubernetes events, what clients
saw, requests sent straight to the pod, and on kind nodes the container runtime's own view: the
exit status containerd reaped, and the exec it ran for a preStop hook); the app's own lifecycle
record (`app_record`) only sharpens the times. What cannot be observed is UNKNOWN, never PASS.

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
from kubedrill.record.termination import SIGKILL_EXIT, PodEvidence, TerminationRecord

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
    overload = _probe_overload(rec, t0)
    if overload is not None:
        return Verdict.unknown(name, overload)
    if rec.exit_at is None and rec.exit_status is None:
        return Verdict.unknown(name, f"pod {rec.pod}: no container exit was recorded (exit code and time unknown): the pod "
                                     "status was not captured before the pod disappeared and the container runtime "
                                     f"did not report it either ({rec.runtime_note or 'no exit event'}); watch the pod "
                                     "until it is gone")
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
        Figure("exit_code", rec.exit_status, "code", rec.pod if rec.runtime_exit_code is None
               else f"{rec.pod}: as the container runtime reaped it (API status: {rec.exit_code}/{rec.reason})"),
    ]
    if rec.prestop_start is not None and rec.prestop_end is not None:
        figs.append(Figure("prestop_duration", round(rec.prestop_end - rec.prestop_start, 3), "s", rec.pod))
    return figs


def _probe_overload(rec: TerminationRecord, t0: float) -> str | None:
    """The reason to judge nothing, when the in-flight probe itself took the pod down before its
    deletion: it answered health checks sent straight to it (or was Ready) before the probe began,
    then went unready or left one unanswered while only the probe's requests were added. Everything
    after that (failed traffic, a slow exit) may be the probe's doing, not the app's shutdown."""
    if not rec.inflight:
        return None
    since = min(o.start for o in rec.inflight)
    if since >= t0:
        return None
    load = sum(1 for o in rec.inflight if o.start <= t0)
    before = [o for o in rec.direct if o.end <= since]
    during = [o for o in rec.direct if o.start >= since and o.end <= t0]
    healthy_before = bool(before) and before[-1].outcome == "ok"
    missed = [o for o in during if o.outcome != "ok"]
    sign = None
    if rec.unready_at is not None and since <= rec.unready_at < t0:
        sign = f"it was seen NotReady {rec.unready_at - since:.1f} s after the probe began"
    elif healthy_before and missed:
        sign = (f"a health check sent straight to it got {missed[0].detail or missed[0].outcome} "
                f"{missed[0].start - since:.1f} s after the probe began")
    if sign is None:
        return None
    return (f"pod {rec.pod}: the in-flight probe itself made the pod unready at {load} concurrent request(s), "
            f"before its deletion ({sign}; it answered before the probe): the shutdown is not judged, because the probe's load, not the "
            "termination, may explain what followed; send fewer in-flight requests per pod (the drill caps them at "
            "what the pod sustained while idle) or give the app more workers")


def _killed(rec: TerminationRecord, t0: float) -> Verdict | None:
    if rec.reason == "OOMKilled":
        return Verdict.fail("sigkill", f"pod {rec.pod} was OOMKilled during shutdown: the shutdown path needs more memory "
                                   "than the container limit; raise the limit or lower the memory used while draining")
    if rec.sigkilled is None and rec.exit_status is None and rec.status_guessed:
        return Verdict.unknown("sigkill", f"pod {rec.pod}: the kubelet lost the container and wrote exit code "
                                      f"{rec.exit_code} ({rec.reason}) as a guess, and the container runtime's exit "
                                      f"status was not seen ({rec.runtime_note or 'not watched'}): whether it was "
                                      "SIGKILLed cannot be told")
    if not rec.killed:
        return None
    v = _kill_verdict(rec, t0)
    if rec.sigkilled is None and rec.runtime_exit_code is not None and (rec.exit_code is None or rec.status_guessed):
        v.reason += (f" (exit status {rec.runtime_exit_code}, signal 9, as the container runtime reaped it; the API status "
                     f"was {'missing' if rec.exit_code is None else 'a guess: ' + str(rec.reason)})")
    return v


def _kill_verdict(rec: TerminationRecord, t0: float) -> Verdict:
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
    assert rec.exit_at is not None or rec.exit_status is not None
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
    code = rec.exit_status
    if code is None:
        guessed = f" (the API's {rec.exit_code} is the kubelet's guess: {rec.reason})" if rec.status_guessed else ""
        return Verdict.unknown("exit-code", f"pod {rec.pod}: the container's exit code was not recorded{guessed}, and "
                                        f"the container runtime did not report it ({rec.runtime_note or 'no exit event'})")
    source = (" (as the container runtime reaped it; the API status had none)"
              if rec.runtime_exit_code is not None and (rec.exit_code is None or rec.status_guessed) else "")
    if code == SIGTERM_EXIT and SIGTERM_EXIT not in th.expected_exit_codes:
        return Verdict.fail("exit-code", f"exit code {SIGTERM_EXIT} on SIGTERM{source}: the process died of SIGTERM's default "
                                   "action, with no handler, so in-flight requests were cut off; handle SIGTERM, drain, "
                                   "and exit 0")
    if code not in th.expected_exit_codes:
        return Verdict.fail("exit-code", f"exit code {code} on SIGTERM{source}: Kubernetes marks the container as Error, which "
                                   "looks like a crash to restart policies, Jobs and alerts; exit 0 after a clean shutdown")
    return Verdict.ok("exit-code", f"exit code {code}{source}")


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
    if rec.prestop_exit_code not in (None, 0):
        end, took = rec.prestop_end, _span(rec.prestop_start, rec.prestop_end)
        # Killed, not failed: at the container's own end, or when the grace period ran out (the
        # kubelet's exec timeout), the runtime ends the hook with a signal.
        t0 = rec.start
        out_of_time = end is not None and (
            (rec.exit_at is not None and end >= rec.exit_at - 0.5)
            or (t0 is not None and end - t0 >= rec.grace_seconds - 1.0))
        if rec.prestop_exit_code in (SIGKILL_EXIT, SIGTERM_EXIT) and out_of_time:
            return Verdict.fail("prestop", f"preStop hook in pod {rec.pod} was still running when the grace period ran out "
                                       f"(the container runtime ended it with exit {rec.prestop_exit_code} after {took}): "
                                       f"it must finish well within the {rec.grace_seconds:g} s grace period; shorten it "
                                       "or raise terminationGracePeriodSeconds")
        return Verdict.fail("prestop", f"preStop hook failed in pod {rec.pod}: the container runtime ran it and it exited "
                                   f"{rec.prestop_exit_code} after {took}; check the hook command exists in the image "
                                   "and exits 0")
    if rec.runtime_prestop == "not-run" and rec.prestop_start is None:
        return Verdict.fail("prestop", f"preStop hook did not run in pod {rec.pod}: the container runtime, watched from before "
                                   "the deletion to the container's exit, ran no exec in the container; check the hook "
                                   "is declared on the container that serves")
    if not rec.app_record and rec.runtime_prestop == "ran":
        return _prestop_duration(rec, th, by_runtime=True)
    if not rec.app_record:
        if "Killing" not in rec.kube_events:
            return Verdict.unknown("prestop", f"pod {rec.pod}: no Kubernetes event of its termination was captured (no "
                                          "Killing event), so a failed preStop hook would not show; check event retention")
        return Verdict.ok("prestop", "preStop hook ran without failing (the kubelet reported Killing and no "
                                     "FailedPreStopHook; its duration is not observable without an app record)")
    if rec.prestop_start is None:
        return Verdict.fail("prestop", f"preStop hook did not run in pod {rec.pod} (no prestop-start was recorded): check the "
                                   "hook command exists in the image and look for FailedPreStopHook events on the pod")
    return _prestop_duration(rec, th, by_runtime=False)


def _span(start: float | None, end: float | None) -> str:
    return "an unknown time" if start is None or end is None else f"{end - start:.1f} s"


def _prestop_duration(rec: TerminationRecord, th: ShutdownThresholds, by_runtime: bool) -> Verdict:
    assert rec.prestop_start is not None
    took = None if rec.prestop_end is None else rec.prestop_end - rec.prestop_start
    if th.min_prestop_seconds is not None and took is not None and took < th.min_prestop_seconds:
        return Verdict.fail("prestop", f"preStop hook ran only {took:.1f} s (need >= {th.min_prestop_seconds:g} s for endpoint "
                                   "removal to propagate); lengthen its sleep")
    if not by_runtime:
        return Verdict.ok("prestop", "preStop hook ran")
    ran = f"{took:.1f} s, exit {rec.prestop_exit_code}" if took is not None else "still running at the container's exit"
    return Verdict.ok("prestop", f"preStop hook ran (the container runtime ran its exec: {ran})")


def _inflight(rec: TerminationRecord, t0: float, th: ShutdownThresholds) -> Verdict | None:
    if not rec.inflight:
        if th.require_inflight and rec.inflight_skipped:
            return Verdict.unknown("in-flight", f"pod {rec.pod}: no in-flight request was probed: {rec.inflight_skipped}")
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
    # A request fails when its error comes back (its end), not when it was sent: one sent just before
    # SIGTERM and reset when the server closed its listener on SIGTERM failed because of SIGTERM.
    failed_at = min(o.end for o in failed)
    if rec.sigterm_at is not None and failed_at < rec.sigterm_at - 0.05:
        during = " during its preStop hook" if rec.prestop_start is not None else ""
        return Verdict.fail("traffic", f"{len(failed)} requests failed with {err} from {failed_at - t0:.1f} s after deletion, "
                                   f"before SIGTERM: the pod stopped serving{during} while still receiving "
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
    figs.append(_runtime_figure(rec, ev, t0))
    return figs


def _runtime_figure(rec: TerminationRecord, ev: PodEvidence, t0: float) -> Figure:
    """The container runtime's view of this pod's end, or why there is none."""
    rt = ev.runtime
    if rt is None or not rt.available:
        return Figure("runtime_exit_code", None, "code", f"{rec.pod}: not seen by the container runtime: "
                                                         f"{rec.runtime_note or 'not watched'}")
    parts = [f"containerd reaped exit status {rt.exit_code}" + (f" (signal {rt.signal})" if rt.signal else "")]
    if rec.runtime_exit_at is not None:
        parts.append(f"at {rec.runtime_exit_at - t0:+.3f} s after deletion")
    if rt.reason:
        parts.append(f"reason {rt.reason}")
    if rec.runtime_prestop == "ran" and rec.prestop_start is not None:
        took = "" if rec.prestop_end is None else f" for {rec.prestop_end - rec.prestop_start:.2f} s"
        parts.append(f"preStop exec ran{took} from {rec.prestop_start - t0:+.2f} s, exit {rec.prestop_exit_code}")
    elif rec.runtime_prestop == "not-run":
        parts.append("no exec ran in the container (no preStop hook)")
    return Figure("runtime_exit_code", rt.exit_code, "code", f"{rec.pod}: " + ", ".join(parts))
