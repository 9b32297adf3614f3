"""Unplanned node loss, judged against a prediction made from the cluster's own settings.

The chain (kube-controller-manager's node lifecycle and taint-eviction controllers, v1.34):

  the kubelet renews its Lease every 10 s                     -> the last renewal before the loss
  the controller notices a renewal at its next pass           -> probe time in [renewal, renewal + period)
  no renewal for --node-monitor-grace-period                  -> Ready Unknown, taint unreachable:NoExecute,
                                                                 the node's pods marked not Ready, at the
                                                                 pass grace after the probe (passes keep
                                                                 their cadence)
  each pod's toleration of that taint runs out                -> the pod is deleted (evicted)
  its controller creates a replacement elsewhere              -> scheduled, then Ready

so Ready turns Unknown between `renewal + grace` and `renewal + grace + period`, and a pod that
tolerates the taint for `s` seconds is evicted `s` later (`predict`). The checkers compare every link
of the recorded timeline (kubedrill.record.eviction) with that prediction, judge the capacity the
Service kept against the workload's SLO (with a reason naming the toleration or the replica count
to change), the traffic outage against the moment the endpoints were updated, and, for a
StatefulSet, the pod that is never replaced until the node is marked out of service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import Operation, series
from kubedrill.record.eviction import (
    OUT_OF_SERVICE,
    UNREACHABLE,
    EvictionSettings,
    EvictionTimeline,
    PodLife,
    toleration_for,
)

# Between the controller's decision and the API showing it (a watch/poll away), and the taint
# eviction queue's own delay: observed well under a second on kind; the margin for "on time".
REACTION_S = 1.0


@dataclass(frozen=True)
class Prediction:
    """When the API should declare the node lost, from its last heartbeat and the cluster's timers."""

    heartbeat_at: float
    not_ready_from: float  # heartbeat + grace
    not_ready_by: float  # heartbeat + grace + period (+ reaction)
    taint: str = UNREACHABLE

    @property
    def not_ready_at(self) -> float:
        """The point estimate: the middle of the window."""
        return (self.not_ready_from + self.not_ready_by) / 2

    def evicted_at(self, toleration_s: float) -> float:
        return self.not_ready_at + toleration_s


def predict(settings: EvictionSettings, heartbeat_at: float) -> Prediction:
    """The node's NotReady window from its last lease renewal (see the module docstring)."""
    start = heartbeat_at + settings.grace_s
    return Prediction(heartbeat_at, start, start + settings.monitor_period_s + REACTION_S)


def _s(x: float) -> str:
    return f"{x:.1f} s"


def duration(seconds: float) -> str:
    """'5 min 12 s' or '48.3 s': how a developer reads an outage."""
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(round(seconds % 60))} s"
    return f"{seconds:.1f} s"


def _prediction(t: EvictionTimeline) -> Prediction | None:
    hb = t.last_heartbeat()
    return None if hb is None else predict(t.settings, hb)


def check_node_declared_lost(t: EvictionTimeline) -> Verdict:
    """The node went Ready Unknown/False and got its NoExecute taint inside the predicted window."""
    name = "node-declared-lost"
    p = _prediction(t)
    if p is None:
        return Verdict.unknown(name, f"no lease renewal of {t.node} was seen, so its last heartbeat (where the grace "
                                     "period starts) is unknown; the observer must run before the node is lost")
    seen = t.first()
    tainted = t.tainted_at(p.taint)
    figures = [Figure("node_monitor_grace_period", t.settings.grace_s, "s", t.settings.source),
               Figure("node_monitor_period", t.settings.monitor_period_s, "s"),
               Figure("heartbeat_before_loss", round(t.lost_at - p.heartbeat_at, 2), "s",
                      "the node's last lease renewal, before the loss"),
               Figure("predicted_not_ready_after_loss", round(p.not_ready_at - t.lost_at, 2), "s",
                      f"window {p.not_ready_from - t.lost_at:.1f}..{p.not_ready_by - t.lost_at:.1f} s")]
    end = t.healed_at if t.healed_at is not None else t.end_at
    if seen is None:
        if end is not None and end < p.not_ready_by:
            return Verdict.unknown(name, f"the node was given back {end - t.lost_at:.1f} s after its loss, before the "
                                         f"predicted NotReady at {p.not_ready_by - t.lost_at:.1f} s", figures)
        return Verdict.fail(name, f"{t.node} never turned Ready Unknown/False in the {(end or t.lost_at) - t.lost_at:.0f} s "
                                  f"after it was lost (predicted by {p.not_ready_by - t.lost_at:.1f} s from its last "
                                  f"heartbeat and --node-monitor-grace-period {t.settings.grace_s:g} s); is the "
                                  "kube-controller-manager running and its node lifecycle controller enabled?", figures)
    figures.append(Figure("not_ready_after_loss", round(seen - t.lost_at, 2), "s"))
    figures.append(Figure("not_ready_error", round(seen - p.not_ready_at, 2), "s", "measured - predicted"))
    if tainted is not None:
        figures.append(Figure("tainted_after_loss", round(tainted - t.lost_at, 2), "s", f"{p.taint}:NoExecute"))
    problems = []
    if not p.not_ready_from - REACTION_S <= seen <= p.not_ready_by + REACTION_S:
        problems.append(f"{t.node} turned NotReady {seen - t.lost_at:.1f} s after its loss, outside the predicted "
                        f"{p.not_ready_from - t.lost_at:.1f}..{p.not_ready_by - t.lost_at:.1f} s (last heartbeat "
                        f"{t.lost_at - p.heartbeat_at:.1f} s before the loss + grace {t.settings.grace_s:g} s + up to "
                        f"one {t.settings.monitor_period_s:g} s monitor period); the controller manager's settings "
                        f"({t.settings.source}) are not what it runs with, or it is overloaded")
    if tainted is None:
        problems.append(f"{t.node} never got the {p.taint}:NoExecute taint, so no pod will be evicted from it "
                        "(taint-based eviction is off?)")
    if problems:
        return Verdict.fail(name, "; ".join(problems), figures)
    return Verdict.ok(name, f"{t.node} NotReady {seen - t.lost_at:.1f} s after its loss (predicted "
                            f"{p.not_ready_from - t.lost_at:.1f}..{p.not_ready_by - t.lost_at:.1f} s), tainted "
                            f"{p.taint}:NoExecute {(tainted or seen) - t.lost_at:.1f} s after it", figures)


@dataclass(frozen=True)
class EvictionMeasure:
    """One pod on the lost node: its toleration, predicted and measured eviction (None: not evicted)."""

    pod: str
    tolerated: bool
    toleration_s: float | None
    predicted_at: float | None  # None: tolerated for ever
    evicted_at: float | None

    @property
    def error(self) -> float | None:
        if self.predicted_at is None or self.evicted_at is None:
            return None
        return self.evicted_at - self.predicted_at


def eviction_measures(t: EvictionTimeline) -> list[EvictionMeasure]:
    """Predicted vs measured eviction for every workload pod on the lost node (the benchmark reads these)."""
    p = _prediction(t)
    out = []
    for pod in t.pods_on_node():
        tolerated, secs = toleration_for(pod.tolerations, UNREACHABLE)
        predicted = None
        if p is not None and not (tolerated and secs is None):
            predicted = p.evicted_at(secs or 0.0)
        out.append(EvictionMeasure(pod.name, tolerated, secs, predicted, pod.deletion_at))
    return out


def _phase_windows(t: EvictionTimeline, t0: float) -> list[series.WindowPoint]:
    """The timeline's phases as labelled windows (seconds from t0) for the report's plot."""
    out: list[series.WindowPoint] = []
    lost_end = t.first() or t.healed_at or t.end_at
    if lost_end is not None and lost_end >= t.lost_at:
        out.append(series.window(t.lost_at - t0, lost_end - t0, f"{t.node} lost, Ready until NotReady"))
    evicted = [p.deletion_at for p in t.pods_on_node() if p.deletion_at is not None]
    if lost_end is not None and evicted and max(evicted) >= lost_end:
        out.append(series.window(lost_end - t0, max(evicted) - t0, "NotReady until evicted (tolerationSeconds)"))
    ready = [p.ready_at for p in t.replacements() if p.ready_at is not None]
    if evicted and ready and max(ready) >= min(evicted):
        out.append(series.window(min(evicted) - t0, max(ready) - t0, "evicted until replacements Ready"))
    if t.out_of_service_at is not None:
        end = t.out_of_service_removed_at or t.end_at or t.out_of_service_at
        out.append(series.window(t.out_of_service_at - t0, max(end, t.out_of_service_at) - t0, "out-of-service taint"))
    return out


def check_eviction_bound(t: EvictionTimeline, max_error_s: float = 5.0) -> Verdict:
    """Every workload pod on the lost node was evicted within `max_error_s` of its predicted time
    (last heartbeat + grace + monitor period + its tolerationSeconds); a pod that tolerates the
    taint for ever must not be evicted, and is named: it will never move."""
    name = "eviction-bound"
    p = _prediction(t)
    if p is None:
        return Verdict.unknown(name, f"no lease renewal of {t.node} was seen: the eviction cannot be predicted")
    pods = t.pods_on_node()
    if not pods:
        return Verdict.unknown(name, f"no pod of {t.workload_kind} {t.workload} ran on {t.node} when it was lost: "
                                     "nothing was there to evict")
    wins = series.windows(_phase_windows(t, t.lost_at))
    end = t.healed_at if t.healed_at is not None else t.end_at
    figures: list[Figure] = []
    problems, unknown, fine = [], [], []
    tainted = t.tainted_at(p.taint)
    for m in eviction_measures(t):
        if m.predicted_at is None:
            if m.evicted_at is not None:
                problems.append(f"{m.pod} tolerates {p.taint} for ever but was deleted "
                                f"{m.evicted_at - t.lost_at:.1f} s after the loss: something else deleted it")
            else:
                problems.append(f"{m.pod} tolerates {p.taint} for ever (no tolerationSeconds): it stays bound to the "
                                f"lost node and is never replaced; give it tolerationSeconds")
            continue
        tol = m.toleration_s or 0.0
        figures.append(Figure(f"predicted_eviction_after_loss[{m.pod}]", round(m.predicted_at - t.lost_at, 2), "s",
                              f"tolerationSeconds {tol:g}"))
        if m.evicted_at is None:
            if end is not None and end < m.predicted_at + max_error_s:
                unknown.append(f"{m.pod}: the node was given back {end - t.lost_at:.1f} s after its loss, before its "
                               f"predicted eviction at {m.predicted_at - t.lost_at:.1f} s")
            else:
                problems.append(f"{m.pod} was never evicted (predicted {m.predicted_at - t.lost_at:.1f} s after the "
                                f"loss: grace {t.settings.grace_s:g} s + tolerationSeconds {tol:g})")
            continue
        err = m.evicted_at - m.predicted_at
        figures += [Figure(f"eviction_after_loss[{m.pod}]", round(m.evicted_at - t.lost_at, 2), "s"),
                    Figure(f"eviction_error[{m.pod}]", round(err, 2), "s", "measured - predicted")]
        if tainted is not None:
            figures.append(Figure(f"eviction_after_taint[{m.pod}]", round(m.evicted_at - tainted, 2), "s",
                                  f"tolerationSeconds {tol:g}"))
        if abs(err) > max_error_s:
            problems.append(f"{m.pod} was evicted {m.evicted_at - t.lost_at:.1f} s after the loss, {err:+.1f} s from the "
                            f"predicted {m.predicted_at - t.lost_at:.1f} s (limit +-{max_error_s:g} s): "
                            + ("the taint-eviction controller was late (overloaded controller manager?)" if err > 0 else
                               "something evicted it before its toleration ran out"))
        else:
            fine.append(f"{m.pod} {m.evicted_at - t.lost_at:.1f} s (predicted {m.predicted_at - t.lost_at:.1f} s)")
    if problems:
        return Verdict.fail(name, "; ".join(problems + unknown), figures, **wins)
    if unknown:
        return Verdict.unknown(name, "; ".join(unknown), figures, **wins)
    return Verdict.ok(name, f"evicted within {max_error_s:g} s of the prediction: {', '.join(fine)}", figures, **wins)


# -- capacity against the SLO ---------------------------------------------------------------------

def serving_steps(t: EvictionTimeline) -> list[tuple[float, int]]:
    """(time, serving endpoints) at the loss and at every change after it until the end of the
    record. Serving = ready in the Service's endpoints and, when the node's data plane was lost
    (stop, freeze), not on the lost node: the API still lists those pods as ready until the grace
    period ends, but nothing answers there."""
    state: dict[str, tuple[str | None, bool]] = dict(t.endpoints_at_start)
    changes = sorted(t.endpoints, key=lambda e: e.at)
    for e in changes:
        if e.at > t.lost_at:
            break
        _apply(state, e.pod, e.node, e.ready)

    def count() -> int:
        return sum(1 for node, ready in state.values() if ready and not (t.data_plane_lost and node == t.node))

    steps = [(t.lost_at, count())]
    for e in changes:
        if e.at <= t.lost_at:
            continue
        _apply(state, e.pod, e.node, e.ready)
        steps.append((e.at, count()))
    return steps


def _apply(state: dict[str, tuple[str | None, bool]], pod: str, node: str | None, ready: bool | None) -> None:
    if ready is None:
        state.pop(pod, None)
    else:
        state[pod] = (node, ready)


def below(steps: Sequence[tuple[float, int]], minimum: int, end: float) -> list[tuple[float, float, int]]:
    """Intervals (start, end, lowest count) during which the count stayed below `minimum`."""
    out: list[tuple[float, float, int]] = []
    start: float | None = None
    low = math.inf
    for i, (at, n) in enumerate(steps):
        nxt = steps[i + 1][0] if i + 1 < len(steps) else end
        if n < minimum:
            if start is None:
                start, low = at, n
            low = min(low, n)
        elif start is not None:
            out.append((start, at, int(low)))
            start, low = None, math.inf
        if i + 1 == len(steps) and start is not None:
            out.append((start, max(nxt, start), int(low)))
    return out


def replicas_needed(min_serving: int, workers: int) -> int:
    """The fewest replicas, spread evenly, that keep `min_serving` when the busiest worker is lost."""
    r = max(1, min_serving)
    while workers > 1 and r - math.ceil(r / workers) < min_serving:
        r += 1
    return r


def check_capacity_slo(t: EvictionTimeline, min_serving: int, max_degraded_s: float) -> Verdict:
    """The Service kept at least `min_serving` serving replicas, or was below for at most
    `max_degraded_s`. A failure names the toleration the pods had (the cluster's default or their
    own), how long the Service was short and of how much, and the two ways out: the
    tolerationSeconds that fits the SLO with this cluster's grace period, or the replica count that
    never drops below it when one worker is lost."""
    name = "capacity-slo"
    steps = serving_steps(t)
    end = t.healed_at if t.healed_at is not None else t.end_at
    if end is None or not t.endpoints_at_start:
        return Verdict.unknown(name, f"the Service's endpoints of {t.workload} were not recorded: its capacity during "
                                     "the loss is unknown")
    at_start = steps[0][1] + (sum(1 for n, r in t.endpoints_at_start.values() if r and n == t.node)
                              if t.data_plane_lost else 0)
    short = below(steps, min_serving, end)
    longest = max((b - a for a, b, _ in short), default=0.0)
    lowest = min((n for _, _, n in short), default=min(n for _, n in steps))
    figures = [Figure("serving_before_loss", at_start, "replicas"), Figure("serving_lowest", lowest, "replicas"),
               Figure("below_slo_longest", round(longest, 2), "s", f"fewer than {min_serving} serving"),
               Figure("below_slo_total", round(sum(b - a for a, b, _ in short), 2), "s")]
    wins = series.windows([series.window(a - t.lost_at, b - t.lost_at, f"{n} of {t.replicas} serving")
                           for a, b, n in short])
    if longest <= max_degraded_s:
        how = (f"never fewer than {min_serving}" if not short else
               f"below {min_serving} for at most {longest:.1f} s (allowed {max_degraded_s:g} s)")
        return Verdict.ok(name, f"{t.workload_kind} {t.workload} kept capacity through the loss of {t.node}: {how}, "
                                f"lowest {lowest} of {t.replicas}", figures, **wins)
    pods = t.pods_on_node()
    tols = sorted({s for s in (toleration_for(p.tolerations, UNREACHABLE)[1] for p in pods) if s is not None})
    default = t.settings.unreachable_toleration_s
    if tols:
        whose = ("the cluster's default, added by admission" if tols == [default] else "set on the pods")
        tol_text = f"pods tolerate unreachable for {', '.join(f'{x:g}' for x in tols)} s ({whose})"
    else:
        tol_text = "the pods on the lost node tolerate unreachable for ever" if pods else "no pod ran on the lost node"
    starts = [p.ready_at - p.first_seen_at for p in t.replacements() if p.ready_at is not None]
    startup = max(starts) if starts else 5.0
    fixed = t.settings.grace_s + t.settings.monitor_period_s + REACTION_S + startup
    fit = math.floor(max_degraded_s - fixed)
    workers = max(len(t.workers), 2)
    more = replicas_needed(min_serving, workers)
    ways = []
    if fit >= 0:
        ways.append(f"set tolerationSeconds to {fit} for this workload (grace {t.settings.grace_s:g} s + monitor "
                    f"period + {startup:.0f} s to start a replacement leave {fit} s of the {max_degraded_s:g} s allowed)")
    else:
        ways.append(f"no tolerationSeconds fits: the node-monitor grace period ({t.settings.grace_s:g} s) and "
                    f"{startup:.0f} s to start a replacement already exceed the {max_degraded_s:g} s allowed")
    if more > t.replicas:
        ways.append(f"run more replicas ({more} spread over {workers} workers keep {min_serving} serving when one "
                    "is lost)")
    return Verdict.fail(name, f"{tol_text}: your Service was at {lowest} of {t.replicas} replicas for "
                              f"{duration(longest)} after {t.node} was lost (SLO: at least {min_serving} serving, at "
                              f"most {max_degraded_s:g} s below); " + " or ".join(ways), figures, **wins)


# -- traffic --------------------------------------------------------------------------------------

def endpoints_updated_at(t: EvictionTimeline) -> float | None:
    """When the last endpoint on the lost node stopped being ready (or was removed) after the loss."""
    on_node = {pod for pod, (node, ready) in t.endpoints_at_start.items() if node == t.node and ready}
    last: dict[str, float] = {}
    for e in sorted(t.endpoints, key=lambda e: e.at):
        if e.at >= t.lost_at and e.pod in on_node and not e.ready and e.pod not in last:
            last[e.pod] = e.at
    if not on_node or set(last) != on_node:
        return None
    return max(last.values())


def check_traffic_outage(ops: Sequence[Operation], t: EvictionTimeline, slack_s: float = 5.0,
                         max_outage_s: float | None = None) -> Verdict:
    """Requests failed only until the Service's endpoints dropped the lost node's pods (+ `slack_s`
    for kube-proxy to apply it), and that update came when predicted (the node declared lost).
    `max_outage_s` also bounds the outage itself (None: report it). Carries the request timeline
    with the phases of the loss, for the report's plot."""
    name = "traffic-outage"
    http = [o for o in ops if o.kind.startswith("http")]
    if not http:
        return Verdict.unknown(name, "no request was recorded: the load did not run")
    t0 = min(o.start for o in http)
    plot = series.timeline_from_operations(http, t0=t0, windows=_phase_windows(t, t0))
    end = t.healed_at if t.healed_at is not None else t.end_at
    before = [o for o in http if o.start < t.lost_at]
    if not before or (end is not None and max(o.start for o in http) < end - 1.0):
        return Verdict.unknown(name, "the load did not run across the whole loss (no request before it, or it stopped "
                                     "before the node was given back)", **plot)
    during = [o for o in http if t.lost_at <= o.start <= (end if end is not None else math.inf)]
    if not during:
        return Verdict.unknown(name, f"no request started while {t.node} was lost: nothing shows what the "
                                     "workload's clients saw", **plot)
    failed = [o for o in during if o.outcome != "ok"]
    ratio = (len(during) - len(failed)) / len(during)
    outage = (max(o.end for o in failed) - t.lost_at) if failed else 0.0
    updated = endpoints_updated_at(t)
    p = _prediction(t)
    figures = [Figure("requests_during_loss", len(during), "requests"), Figure("requests_failed", len(failed), "requests"),
               Figure("success_ratio", round(ratio, 5), "ratio", "from the loss until the node was given back"),
               Figure("traffic_outage", round(outage, 2), "s", "from the loss to the last failed request")]
    if updated is not None:
        figures.append(Figure("endpoints_updated_after_loss", round(updated - t.lost_at, 2), "s"))
    if p is not None:
        figures.append(Figure("predicted_outage", round(p.not_ready_by - t.lost_at, 2), "s",
                              "requests to the lost node's pods fail until it is declared lost"))
    if not failed:
        return Verdict.ok(name, f"no request failed during the loss of {t.node} ({len(during)} requests)"
                                + ("" if t.data_plane_lost else ": its pods kept serving while its kubelet was cut off"),
                          figures, **plot)
    if updated is None:
        return Verdict.unknown(name, f"{len(failed)} of {len(during)} requests failed, and the endpoints of the pods on "
                                     f"{t.node} were never seen leaving the Service: the outage cannot be attributed",
                               figures, **plot)
    # A request sent before the update may fail after it (a connect timeout to a lost pod); one
    # *sent* more than slack_s after it was routed on stale rules.
    late = [o for o in failed if o.start > updated + slack_s]
    problems = []
    if late:
        problems.append(f"{len(late)} request(s) sent more than {slack_s:g} s after the endpoints on {t.node} were "
                        f"updated ({updated - t.lost_at:.1f} s after the loss) failed, the last sent at "
                        f"{max(o.start for o in late) - t.lost_at:.1f} s: kube-proxy kept routing to the lost pods, or "
                        f"the pods left could not take the load (first late error: {late[0].detail or late[0].outcome})")
    if p is not None and updated > p.not_ready_by + slack_s:
        problems.append(f"the endpoints were updated {updated - t.lost_at:.1f} s after the loss, later than the predicted "
                        f"{p.not_ready_by - t.lost_at:.1f} s + {slack_s:g} s")
    if max_outage_s is not None and outage > max_outage_s:
        problems.append(f"requests failed for {outage:.1f} s after the loss (limit {max_outage_s:g} s): they fail until "
                        f"the node is declared lost, so shorten --node-monitor-grace-period "
                        f"({t.settings.grace_s:g} s) or put a health-checking proxy in front")
    if problems:
        return Verdict.fail(name, "; ".join(problems), figures, **plot)
    return Verdict.ok(name, f"{len(failed)} of {len(during)} requests failed, all within {slack_s:g} s of the endpoints "
                            f"update {updated - t.lost_at:.1f} s after the loss (the cost of the grace period)",
                      figures, **plot)


# -- StatefulSets ---------------------------------------------------------------------------------

def _successor(t: EvictionTimeline, pod: PodLife) -> PodLife | None:
    """A StatefulSet's replacement: the same name, another uid, created after the loss."""
    same = [p for p in t.pods if p.name == pod.name and p.uid != pod.uid and p.first_seen_at >= t.lost_at]
    return min(same, key=lambda p: p.first_seen_at) if same else None


def check_statefulset_stuck(t: EvictionTimeline) -> Verdict:
    """A StatefulSet pod on the lost node is reported stuck while no replacement of the same name
    exists: the controller waits for the old pod to be gone, which needs the node back or an
    operator's out-of-service taint."""
    name = "statefulset-stuck"
    pods = t.pods_on_node()
    if t.workload_kind != "StatefulSet":
        return Verdict.unknown(name, f"{t.workload_kind} {t.workload} is not a StatefulSet")
    if not pods:
        return Verdict.unknown(name, f"no pod of StatefulSet {t.workload} ran on {t.node} when it was lost")
    end = t.out_of_service_at or t.healed_at or t.end_at or t.lost_at
    stuck, fine = [], []
    for pod in pods:
        nxt = _successor(t, pod)
        if nxt is not None and nxt.first_seen_at <= end:
            fine.append(f"{pod.name} replaced {nxt.first_seen_at - t.lost_at:.1f} s after the loss")
            continue
        since = pod.deletion_at if pod.deletion_at is not None else t.lost_at
        stuck.append((pod, end - since))
    figures = [Figure(f"stuck[{p.name}]", round(s, 1), "s", "Terminating with no replacement") for p, s in stuck]
    if not stuck:
        return Verdict.ok(name, "; ".join(fine), figures)
    what = ", ".join(f"{p.name} ({'Terminating' if p.deletion_at is not None else 'bound to the node'} for {s:.0f} s)"
                     for p, s in stuck)
    return Verdict.fail(name, f"StatefulSet {t.workload} is stuck: {what} on lost node {t.node} with no replacement. "
                              "A StatefulSet never starts a pod of the same name until the old one is confirmed gone; "
                              f"once the node is known to be down, taint it {OUT_OF_SERVICE}=nodeshutdown:NoExecute "
                              "to force-delete its pods and detach their volumes", figures)


def volume_fate(t: EvictionTimeline, pod: PodLife, successor: PodLife | None) -> list[str]:
    """What happened to each data volume of a pod lost with its node, in words."""
    out = []
    for v in pod.volumes:
        if v.kind == "emptyDir":
            out.append(f"emptyDir {v.name}: its data stayed on {t.node} and is lost; the replacement started with an "
                       "empty one")
        elif v.kind == "persistentVolumeClaim":
            if t.node in v.pv_nodes:
                out.append(f"PVC {v.claim} is bound to {v.pv}, usable only from {', '.join(v.pv_nodes)}: the data is "
                           f"on {t.node} alone and a replacement cannot start elsewhere until the node returns")
            else:
                where = successor.node if successor is not None and successor.node else "another node"
                out.append(f"PVC {v.claim} ({v.pv or 'unbound'}) is not tied to a node: detached from {t.node} and "
                           f"attached on {where}, the data is kept")
        elif v.kind == "hostPath":
            out.append(f"hostPath {v.name}: its data stays on {t.node}; the replacement sees its own node's path")
    return out or ["no data volume (emptyDir, hostPath or PVC): nothing to lose"]


def check_out_of_service_recovery(t: EvictionTimeline, max_s: float = 60.0) -> Verdict:
    """The documented recovery: after the out-of-service taint, every stuck StatefulSet pod's
    replacement starts (Ready) within `max_s`; the fate of each data volume is reported."""
    name = "out-of-service-recovery"
    if t.out_of_service_at is None:
        return Verdict.unknown(name, f"{t.node} was never tainted {OUT_OF_SERVICE}: the recovery was not rehearsed")
    pods = t.pods_on_node()
    if not pods:
        return Verdict.unknown(name, f"no pod of {t.workload} ran on {t.node} when it was lost")
    problems, fine, fates = [], [], []
    figures: list[Figure] = []
    for pod in pods:
        nxt = _successor(t, pod) if t.workload_kind == "StatefulSet" else None
        fates += [f"{pod.name}: {f}" for f in volume_fate(t, pod, nxt)]
        if nxt is None or nxt.ready_at is None:
            problems.append(f"{pod.name} had no Ready replacement {((t.end_at or t.out_of_service_at) - t.out_of_service_at):.0f} s "
                            f"after the {OUT_OF_SERVICE} taint" + ("" if nxt is None else f" (created, on {nxt.node})"))
            continue
        took = nxt.ready_at - t.out_of_service_at
        figures.append(Figure(f"replacement_ready_after_out_of_service[{pod.name}]", round(took, 2), "s"))
        if took > max_s:
            problems.append(f"{pod.name}'s replacement was Ready {took:.1f} s after the taint (limit {max_s:g} s)")
        else:
            fine.append(f"{pod.name} replaced on {nxt.node}, Ready {took:.1f} s after the taint")
    fate = "; data: " + "; ".join(fates)
    if problems:
        return Verdict.fail(name, "; ".join(problems) + fate, figures)
    return Verdict.ok(name, "; ".join(fine) + fate, figures)
