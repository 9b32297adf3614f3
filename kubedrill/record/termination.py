"""What is known about one pod's end: the API's evidence (PodEvidence, KubeEvent) and the
TerminationRecord the shutdown checker judges, with the pure functions that build one from the other.

All times are the test's monotonic clock (`Recorder.now()`). Kubernetes timestamps have a
resolution of one second (metav1.Time), so better sources win where they exist:

  deletion  the disruption's own request time; else when the pod watch first saw deletionTimestamp
            (late by the watch latency, well under a second)
  preStop, SIGTERM, exit
            the app's lifecycle record (optional: without one, a preStop failure shows as a
            FailedPreStopHook event, and whether the pod kept serving after the deletion shows in
            requests sent straight to it) in its termination message (the sample app writes one; any
            app may, see kubedrill.record.lifecycle), read on CLOCK_MONOTONIC when the app shares
            this host's kernel (kind) and on wall time otherwise
  exit      without an app record: the container runtime's exited_at where it was watched (kind
            nodes: containerd's task exit event, nanoseconds), else finishedAt (truncated to the
            second) + 0.5 s, capped by the moment the watch saw the container terminated (+-0.5 s)
  preStop   without an app record, an exec preStop hook is a process containerd starts in the
            container: where the runtime was watched, its exec start and exit are the hook's run
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from kubedrill.record import Operation, Recorder
from kubedrill.record.lifecycle import AppLifecycle, parse_lifecycle

SIGKILL_EXIT = 137
# The kubelet writes this reason, with exit code 137, when it could not find the container to read
# its status: the 137 is the kubelet's guess, not a SIGKILL anyone saw.
STATUS_UNKNOWN_REASON = "ContainerStatusUnknown"
# Finished-at has one-second resolution: the true exit lies in [finishedAt, finishedAt + 1).
FINISHED_AT_RESOLUTION_S = 1.0


@dataclass(frozen=True)
class KubeEvent:
    """One Kubernetes Event about a pod (reason Killing, FailedPreStopHook, ExceededGracePeriod, ...)."""

    reason: str
    type: str
    message: str
    count: int
    first_wall: float | None
    last_wall: float | None


@dataclass(frozen=True)
class RuntimeExec:
    """A process the runtime started inside the container after the watch began (an exec preStop
    hook, an exec probe, kubectl exec): containerd's exec-started and exit events. Unix times."""

    exec_id: str
    started_wall: float | None
    exited_wall: float | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class RuntimeEvidence:
    """The container runtime's own view of the judged container's end (containerd on a kind node).

    Why: the API's container status is the kubelet's copy, truncated to whole seconds, missing when
    the watch lost the pod, and guessed (137, ContainerStatusUnknown) when the kubelet lost the
    container. containerd reaped the process itself: its task exit event carries the exit status
    (128 + n when killed by signal n) and the time to the nanosecond, and every exec it ran in the
    container (an exec preStop hook) shows with its own start, end and exit status.

    available: the runtime was watched from before the termination to the container's exit;
    False with `note` saying why not (not a kind node, no container id, the stream failed).
    watched_from_wall: when the event stream was known to be running (execs after it are all seen).
    exit_code, exited_wall: containerd's /tasks/exit event for the container's init process.
    started_wall, finished_wall, reason: `crictl inspect` status, read right after the exit,
    before the kubelet removes the container.
    """

    available: bool
    note: str = ""
    container_id: str | None = None
    watched_from_wall: float | None = None
    exit_code: int | None = None
    exited_wall: float | None = None
    started_wall: float | None = None
    finished_wall: float | None = None
    reason: str | None = None
    execs: tuple[RuntimeExec, ...] = ()

    @property
    def signal(self) -> int | None:
        """The signal that killed the process, from the exit status the runtime reaped (128 + n)."""
        if self.exit_code is None or not 128 < self.exit_code <= 128 + 64:
            return None
        return self.exit_code - 128


@dataclass(frozen=True)
class PodEvidence:
    """What the API said about one pod's end. Monotonic times are the test's clock; *_wall are Unix."""

    pod: str
    uid: str
    node: str | None
    container: str | None  # the container judged: the first one in the pod spec
    grace_seconds: float | None  # deletionGracePeriodSeconds of this deletion, else the pod spec's
    prestop_hook: bool  # the judged container declares a preStop hook
    first_seen_at: float
    deletion_seen_at: float | None
    deletion_timestamp_wall: float | None  # metadata.deletionTimestamp = deletion + grace (1 s resolution)
    terminated_seen_at: float | None
    gone_at: float | None
    exit_code: int | None
    reason: str | None
    signal: int | None
    message: str
    started_wall: float | None
    finished_wall: float | None
    statuses: tuple[dict[str, Any], ...] = ()
    events: tuple[KubeEvent, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    # The preStop hook is an exec and no probe of the container execs: every exec the runtime ran
    # after the deletion is the hook (what makes runtime exec events evidence of the hook).
    prestop_exec_only: bool = False
    ready_changes: tuple[tuple[float, bool], ...] = ()  # (test clock, Ready condition) as the watch saw it change
    runtime: RuntimeEvidence | None = None

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class TerminationRecord:
    """Everything observed about one pod's termination; times in seconds on one clock.

    pod, grace_seconds: the pod and its terminationGracePeriodSeconds.
    deletion_at: when deletion (or eviction) was requested; the grace period counts from here.
    prestop_expected: the judged container declares a preStop hook.
    app_record: the app left a lifecycle record (kubedrill.record.lifecycle), so the absence of
        an event in it (no sigterm, no prestop-start) is evidence; False: only what any pod leaves.
    kube_events: reasons of the Kubernetes events about the pod (Killing, FailedPreStopHook, ...).
    prestop_failed: the message of a FailedPreStopHook event, if the kubelet reported one.
    direct: health requests sent straight to this pod (a port-forward) around its termination:
        whether it still answered after the deletion tells "ignored SIGTERM" from "too slow".
    prestop_start, prestop_end: preStop hook ran from .. to (app lifecycle events).
    sigterm_at: the app recorded receiving SIGTERM.
    shutdown_began_at: the app stopped accepting connections (listener closed).
    drained_at: the app finished its in-flight requests.
    exit_at: the container exited (app "exit" event, the runtime's exit event, or finishedAt).
    exit_code, reason: from the container's terminated state (reason: Completed, Error, OOMKilled).
    sigkilled: the runtime had to SIGKILL it; None means infer from exit status 137 (exit_status).
    inflight: slow-request probe operations started before the deletion (SlowProbe).
    traffic: continuous-load operations around the termination (LoadRunner); failures from
        deletion to exit+settle are attributed to this termination.
    unready_at: the first time the pod was seen NotReady before its deletion (readiness probes
        failing: with the in-flight probe running, the probe may be what made it unready).
    inflight_skipped: why no in-flight request was sent to this pod, when the drill chose not to.
    runtime_exit_code, runtime_exit_at: the container runtime's exit status and exit time (test
        clock) of the container, where it was watched (RuntimeEvidence); None when not.
    runtime_prestop: "ran" (the runtime ran the exec hook: prestop_start/end and
        prestop_exit_code are its), "not-run" (the runtime was watched through the termination and
        ran no exec in the container), None (the runtime cannot tell: not watched, or not an exec hook).
    prestop_exit_code: the exec hook's exit status as the runtime reaped it (with runtime_prestop "ran").
    runtime_note: why runtime evidence is missing, for reasons that must say what was not seen.
    """

    pod: str
    grace_seconds: float
    deletion_at: float | None = None
    prestop_expected: bool = True
    prestop_start: float | None = None
    prestop_end: float | None = None
    sigterm_at: float | None = None
    shutdown_began_at: float | None = None
    drained_at: float | None = None
    exit_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    sigkilled: bool | None = None
    inflight: tuple[Operation, ...] = ()
    traffic: tuple[Operation, ...] = ()
    app_record: bool = True
    kube_events: tuple[str, ...] = ()
    prestop_failed: str | None = None
    direct: tuple[Operation, ...] = ()
    unready_at: float | None = None
    inflight_skipped: str | None = None
    runtime_exit_code: int | None = None
    runtime_exit_at: float | None = None
    runtime_prestop: str | None = None
    prestop_exit_code: int | None = None
    runtime_note: str = ""

    @property
    def status_guessed(self) -> bool:
        """The API's exit status is the kubelet's guess (it lost the container), not an observation."""
        return self.reason == STATUS_UNKNOWN_REASON

    @property
    def exit_status(self) -> int | None:
        """The exit code as best known: the runtime's (it reaped the process), else the API's unless guessed."""
        if self.runtime_exit_code is not None:
            return self.runtime_exit_code
        return None if self.status_guessed else self.exit_code

    @property
    def killed(self) -> bool:
        if self.sigkilled is not None:
            return self.sigkilled
        return self.exit_status == SIGKILL_EXIT

    @property
    def start(self) -> float | None:
        """Where the shutdown starts on the record's clock: deletion, else preStop, else SIGTERM."""
        for t in (self.deletion_at, self.prestop_start, self.sigterm_at):
            if t is not None:
                return t
        return None

    @classmethod
    def from_events(
        cls,
        pod: str,
        grace_seconds: float,
        events: Mapping[str, float],
        *,
        deletion_at: float | None,
        exit_at: float | None = None,
        exit_code: int | None = None,
        reason: str | None = None,
        sigkilled: bool | None = None,
        prestop_expected: bool = True,
        inflight: Sequence[Operation] = (),
        traffic: Sequence[Operation] = (),
        app_record: bool = True,
        kube_events: Sequence[str] = (),
        prestop_failed: str | None = None,
        direct: Sequence[Operation] = (),
    ) -> "TerminationRecord":
        """Build from the sample app's lifecycle event times ({"sigterm": t, ...}, one clock).

        An explicit exit_at (the runtime's finishedAt) wins over the app's own "exit" event,
        because a SIGKILLed app never records one.
        """
        return cls(
            pod=pod,
            grace_seconds=grace_seconds,
            deletion_at=deletion_at,
            prestop_expected=prestop_expected,
            prestop_start=events.get("prestop-start"),
            prestop_end=events.get("prestop-end"),
            sigterm_at=events.get("sigterm", events.get("sigint")),
            shutdown_began_at=events.get("listener-closed"),
            drained_at=events.get("inflight-drained"),
            exit_at=exit_at if exit_at is not None else events.get("exit"),
            exit_code=exit_code,
            reason=reason,
            sigkilled=sigkilled,
            inflight=tuple(inflight),
            traffic=tuple(traffic),
            app_record=app_record,
            kube_events=tuple(kube_events),
            prestop_failed=prestop_failed,
            direct=tuple(direct),
        )


# -- evidence -> TerminationRecord ---------------------------------------------------------------

def app_lifecycle(ev: PodEvidence) -> AppLifecycle | None:
    """The app's own lifecycle record from its termination message, if it wrote one."""
    text = ev.message.strip()
    if not text.startswith("{"):
        return None
    try:
        life = parse_lifecycle(text)
    except ValueError:
        return None
    return life if life.events else None


def lifecycle_times(life: AppLifecycle, clock: Recorder) -> dict[str, float]:
    """Event times on the test's clock. CLOCK_MONOTONIC is used when the app shares this host's
    kernel, which shows as the same wall-minus-monotonic offset (kind nodes are containers)."""
    offset = clock.wall0 - clock.mono0
    first = life.events[0]
    if first.mono > 0 and abs((first.time - first.mono) - offset) < 0.5:
        return life.times("mono")
    return life.times("wall", offset=-offset)


def exit_estimate(ev: PodEvidence, clock: Recorder) -> float | None:
    """The container's exit on the test's clock from finishedAt (+-0.5 s, see module docstring)."""
    if ev.finished_wall is None:
        return ev.terminated_seen_at
    est = clock.mono0 + (ev.finished_wall - clock.wall0) + FINISHED_AT_RESOLUTION_S / 2
    return min(est, ev.terminated_seen_at) if ev.terminated_seen_at is not None else est


def in_flight_at(ops: Iterable[Operation], pod: str, at: float) -> list[Operation]:
    """Slow requests that `pod` was serving at time `at` (the pod is in Operation.result: the pod they
    were sent to, or the app's X-Pod header)."""
    return [o for o in ops if o.result == pod and o.start <= at <= o.end]


def runtime_prestop(ev: PodEvidence, clock: Recorder, deletion_at: float | None,
                    ) -> tuple[str | None, RuntimeExec | None]:
    """What the runtime says of the exec preStop hook: ("ran", its exec), ("not-run", None) when the
    runtime was watched from before the deletion to the exit and ran nothing in the container, or
    (None, None) when it cannot tell (not watched, no exec hook, or exec probes that look the same)."""
    rt = ev.runtime
    if rt is None or not rt.available or not ev.prestop_hook or not ev.prestop_exec_only or deletion_at is None:
        return None, None
    deleted_wall = clock.wall_at(deletion_at)
    end = rt.exited_wall if rt.exited_wall is not None else float("inf")
    # The kubelet starts the hook as soon as it sees the deletion (well under a second later).
    hooks = sorted((x for x in rt.execs if x.started_wall is not None and deleted_wall - 0.5 <= x.started_wall <= end),
                   key=lambda x: x.started_wall or 0.0)
    if hooks:
        return "ran", hooks[0]
    watched = rt.watched_from_wall is not None and rt.watched_from_wall <= deleted_wall
    return ("not-run", None) if watched and rt.exited_wall is not None else (None, None)


def termination_record(ev: PodEvidence, clock: Recorder, *, requested_at: float | None = None,
                       slow: Sequence[Operation] = (), traffic: Sequence[Operation] = (),
                       direct: Sequence[Operation] = (), grace_fallback: float | None = None,
                       use_app_record: bool = True, inflight_skipped: str | None = None) -> TerminationRecord:
    """Everything observed about one pod's end, on the test's clock, ready for check_shutdown.

    requested_at: when this process asked for the deletion (delete/evict); without it (a rollout,
    where the controller deletes) the watch's first sight of the deletionTimestamp is used.
    slow: all slow-request operations; the ones this pod was serving at deletion are its in-flight set.
    traffic: all continuous-load operations; the checker windows them around this termination.
    direct: requests sent straight to pods (Operation.result names the pod); this pod's are kept.
    use_app_record: False judges the pod only on what any pod leaves (events, container status,
    the runtime's view, the clients' view), as if the app wrote no lifecycle record.
    inflight_skipped: why the drill sent this pod no in-flight request, if it chose not to.
    """
    life = app_lifecycle(ev) if use_app_record else None
    times = lifecycle_times(life, clock) if life is not None else {}
    deletion_at = requested_at if requested_at is not None else ev.deletion_seen_at
    rt = ev.runtime
    runtime_exit_at = (clock.mono0 + (rt.exited_wall - clock.wall0)
                       if rt is not None and rt.exited_wall is not None else None)
    if "exit" in times:
        exit_at = times["exit"]
    else:
        exit_at = runtime_exit_at if runtime_exit_at is not None else exit_estimate(ev, clock)
    failed_hook = [e.message for e in ev.events if e.reason == "FailedPreStopHook"]
    grace = ev.grace_seconds if ev.grace_seconds is not None else grace_fallback
    if grace is None:
        raise ValueError(f"pod {ev.pod}: no grace period known (neither the deletion nor the pod spec gave one)")
    hook_seen, hook = runtime_prestop(ev, clock, deletion_at)
    if hook is not None and "prestop-start" not in times:
        times["prestop-start"] = clock.mono0 + ((hook.started_wall or 0.0) - clock.wall0)
        if hook.exited_wall is not None:
            times["prestop-end"] = clock.mono0 + (hook.exited_wall - clock.wall0)
    record = TerminationRecord.from_events(
        ev.pod, grace, times, deletion_at=deletion_at, exit_at=exit_at, exit_code=ev.exit_code, reason=ev.reason,
        prestop_expected=ev.prestop_hook,
        inflight=in_flight_at(slow, ev.pod, deletion_at) if deletion_at is not None else (),
        traffic=traffic, app_record=life is not None, kube_events=[e.reason for e in ev.events],
        prestop_failed=failed_hook[0] if failed_hook else None, direct=[o for o in direct if o.result == ev.pod],
    )
    unready = [t for t, ready in ev.ready_changes if not ready and (deletion_at is None or t < deletion_at)]
    note = ("" if rt is not None and rt.available else
            rt.note if rt is not None else "the container runtime was not watched")
    return dataclasses.replace(
        record, unready_at=unready[0] if unready else None, inflight_skipped=inflight_skipped,
        runtime_exit_code=rt.exit_code if rt is not None else None, runtime_exit_at=runtime_exit_at,
        runtime_prestop=hook_seen, prestop_exit_code=hook.exit_code if hook is not None else None, runtime_note=note)
