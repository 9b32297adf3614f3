"""Evidence of pod terminations, and the TerminationRecord the shutdown checker judges.

`PodWatch` watches a workload's pods and keeps, for each one, what the API said about it up to and
including its DELETED event; `evidence(pod)` adds the pod's Kubernetes events (Killing,
FailedPreStopHook, ...). Why a watch rather than a read afterwards: a deleted pod's object is
removed moments after its container exits, taking the exit code, reason and termination message
with it. The DELETED event carries the final object, in which the kubelet has already written the
terminated container state (it keeps the pod until that status is synced).

All times are the test's monotonic clock (`Recorder.now()`). Kubernetes timestamps have a
resolution of one second (metav1.Time), so better sources win where they exist:

  deletion  the disruption's own request time; else when this watch first saw deletionTimestamp
            (late by the watch latency, well under a second)
  preStop, SIGTERM, exit
            the app's lifecycle record in its termination message (the sample app writes one; any
            app may, see kubedrill.workload.lifecycle), read on CLOCK_MONOTONIC when the app shares
            this host's kernel (kind) and on wall time otherwise
  exit      without an app record: finishedAt (truncated to the second) + 0.5 s, capped by the
            moment this watch saw the container terminated, so within +-0.5 s

This module records and converts; it never judges (kubedrill.check.shutdown does).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from kubedrill.check.shutdown import TerminationRecord
from kubedrill.check.verdict import Figure
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.waits import until
from kubedrill.record import Operation, Recorder
from kubedrill.workload.lifecycle import AppLifecycle, parse_lifecycle

# Finished-at has one-second resolution: the true exit lies in [finishedAt, finishedAt + 1).
FINISHED_AT_RESOLUTION_S = 1.0


def _wall(ts: datetime | None) -> float | None:
    return None if ts is None else ts.timestamp()


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

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class _PodState:
    name: str
    uid: str
    first_seen_at: float
    node: str | None = None
    container: str | None = None
    spec_grace: float | None = None
    prestop_hook: bool = False
    deletion_seen_at: float | None = None
    deletion_timestamp_wall: float | None = None
    deletion_grace: float | None = None
    terminated_seen_at: float | None = None
    gone_at: float | None = None
    terminated: Any = None  # V1ContainerStateTerminated of the judged container
    statuses: list[dict[str, Any]] = field(default_factory=list)


class PodWatch:
    """Watch the pods of `selector` in `namespace` from `start()` (a list, then a watch from its
    resourceVersion, so no change is missed) until `stop()`. Bounded by `max_seconds`.

    Recorder events: pod-deleting, pod-terminated (with exit code), pod-gone.
    """

    def __init__(self, cluster: Cluster, namespace: str, selector: str, recorder: Recorder, *,
                 max_seconds: float = 900, chunk_seconds: int = 5) -> None:
        self.cluster, self.namespace, self.selector = cluster, namespace, selector
        self.recorder = recorder
        self.max_seconds, self.chunk_seconds = max_seconds, chunk_seconds
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._by_uid: dict[str, _PodState] = {}
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kd-podwatch-{namespace}", daemon=True)
        self._watch: Any = None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "PodWatch":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._synced.wait(timeout):
            self.stop()
            raise TimeoutError(f"the pod watch on {self.namespace} ({self.selector}) did not complete its first list "
                               f"within {timeout:g} s; errors: {self.errors[-3:] or 'none'}. Is the API server reachable?")

    def stop(self) -> None:
        self._stop.set()
        w = self._watch
        if w is not None:
            w.stop()
        # The stream notices at its next event or when its chunk ends (<= chunk_seconds); the thread is
        # a bounded daemon, so waiting briefly is enough and keeps teardown from idling on a quiet watch.
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        core = self.cluster.core()
        deadline = time.monotonic() + self.max_seconds
        rv: str | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if rv is None:
                    listing = core.list_namespaced_pod(self.namespace, label_selector=self.selector, _request_timeout=30)
                    now = time.monotonic()
                    for p in listing.items:
                        self._observe("LISTED", p, now)
                    rv = listing.metadata.resource_version
                    self._synced.set()
                w = watch.Watch()
                self._watch = w
                left = max(1, min(self.chunk_seconds, int(deadline - time.monotonic())))
                for ev in w.stream(core.list_namespaced_pod, self.namespace, label_selector=self.selector,
                                   resource_version=rv, timeout_seconds=left, _request_timeout=left + 15):
                    now = time.monotonic()
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        code = obj.get("code") if isinstance(obj, dict) else None
                        if code == 410:  # resourceVersion too old: list again
                            rv = None
                            break
                        self.errors.append(f"watch error event: {str(obj)[:200]}")
                        continue
                    rv = obj.metadata.resource_version or rv
                    self._observe(ev["type"], obj, now)
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                else:
                    self.errors.append(f"HTTP {exc.status}: {str(exc.reason)[:200]}")
                    self._stop.wait(0.5)
            except Exception as exc:  # noqa: BLE001 - a transport error is recorded, and the watch resumes
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                self._stop.wait(0.5)

    def _observe(self, kind: str, pod: Any, now: float) -> None:
        meta, spec, status = pod.metadata, pod.spec, pod.status
        with self._lock:
            st = self._by_uid.get(meta.uid)
            if st is None:
                containers = (spec.containers or []) if spec is not None else []
                first = containers[0] if containers else None
                st = _PodState(name=meta.name, uid=meta.uid, first_seen_at=now,
                               container=first.name if first is not None else None,
                               spec_grace=None if spec is None else spec.termination_grace_period_seconds,
                               prestop_hook=bool(first is not None and first.lifecycle is not None
                                                 and first.lifecycle.pre_stop is not None))
                self._by_uid[meta.uid] = st
            if spec is not None and spec.node_name:
                st.node = spec.node_name
            if meta.deletion_timestamp is not None and st.deletion_seen_at is None:
                st.deletion_seen_at = now
                st.deletion_timestamp_wall = _wall(meta.deletion_timestamp)
                st.deletion_grace = meta.deletion_grace_period_seconds
                self.recorder.event("pod-deleting", st.name, at=now, grace=meta.deletion_grace_period_seconds)
            statuses = (status.container_statuses or []) if status is not None else []
            if statuses:
                st.statuses = [s.to_dict() for s in statuses]
            for s in statuses:
                if s.name == st.container and s.state is not None and s.state.terminated is not None:
                    st.terminated = s.state.terminated
                    if st.terminated_seen_at is None:
                        st.terminated_seen_at = now
                        self.recorder.event("pod-terminated", st.name, at=now, exit_code=s.state.terminated.exit_code,
                                            reason=s.state.terminated.reason)
            if kind == "DELETED" and st.gone_at is None:
                st.gone_at = now
                self.recorder.event("pod-gone", st.name, at=now)

    # -- queries --------------------------------------------------------------------------------
    def _state(self, pod: str) -> _PodState | None:
        """The first-seen pod of that name (a StatefulSet reuses names for the replacement)."""
        with self._lock:
            same = [s for s in self._by_uid.values() if s.name == pod]
        return min(same, key=lambda s: s.first_seen_at) if same else None

    def seen(self) -> list[str]:
        with self._lock:
            return sorted({s.name for s in self._by_uid.values()})

    def deleting_since(self, pod: str) -> float | None:
        st = self._state(pod)
        return None if st is None else st.deletion_seen_at

    def gone(self, pod: str) -> bool:
        st = self._state(pod)
        return st is not None and st.gone_at is not None

    def summary(self) -> str:
        with self._lock:
            states = sorted(self._by_uid.values(), key=lambda s: s.first_seen_at)
        parts = []
        for s in states:
            term = "" if s.terminated is None else f" exit={s.terminated.exit_code}/{s.terminated.reason}"
            parts.append(f"{s.name}: deleting={'yes' if s.deletion_seen_at else 'no'}{term} "
                         f"gone={'yes' if s.gone_at else 'no'}")
        return "; ".join(parts) or "no pods seen"

    def wait_gone(self, pods: Sequence[str], timeout: float) -> None:
        """Block until every pod in `pods` is deleted from the API (its DELETED event was seen)."""
        def probe() -> tuple[bool, str]:
            left = [p for p in pods if not self.gone(p)]
            return not left, f"still present: {left}; {self.summary()}" + (f"; watch errors: {self.errors[-2:]}" if self.errors else "")

        def diag() -> str:
            return self.cluster.kubectl("get", "pods", "-n", self.namespace, "-o", "wide", check=False, timeout=30).stdout

        until(f"pods {', '.join(pods)} to terminate and be removed", probe, timeout, interval=0.5,
              hint="a pod stuck Terminating usually has a finalizer or a node that stopped reporting", diagnose=diag)

    def evidence(self, pod: str, with_events: bool = True) -> PodEvidence:
        st = self._state(pod)
        if st is None:
            raise KeyError(f"pod {pod} was never seen by the watch on {self.namespace} ({self.selector}); seen: {self.seen()}")
        t = st.terminated
        grace = st.deletion_grace if st.deletion_grace is not None else st.spec_grace
        return PodEvidence(
            pod=st.name, uid=st.uid, node=st.node, container=st.container,
            grace_seconds=None if grace is None else float(grace),
            prestop_hook=st.prestop_hook, first_seen_at=st.first_seen_at, deletion_seen_at=st.deletion_seen_at,
            deletion_timestamp_wall=st.deletion_timestamp_wall, terminated_seen_at=st.terminated_seen_at,
            gone_at=st.gone_at,
            exit_code=None if t is None else t.exit_code, reason=None if t is None else t.reason,
            signal=None if t is None else t.signal, message="" if t is None else (t.message or ""),
            started_wall=None if t is None else _wall(t.started_at),
            finished_wall=None if t is None else _wall(t.finished_at),
            statuses=tuple(st.statuses),
            events=tuple(pod_events(self.cluster, self.namespace, pod)) if with_events else (),
        )


def pod_events(cluster: Cluster, namespace: str, pod: str) -> list[KubeEvent]:
    """The Kubernetes Events about one pod, oldest first (they outlive the pod by an hour)."""
    items = cluster.core().list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod}", _request_timeout=30).items
    out = [KubeEvent(reason=e.reason or "", type=e.type or "", message=(e.message or "")[:500], count=e.count or 1,
                     first_wall=_wall(e.first_timestamp or e.event_time), last_wall=_wall(e.last_timestamp or e.event_time))
           for e in items]
    return sorted(out, key=lambda e: e.first_wall or 0.0)


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
    """Slow requests that `pod` was serving at time `at` (the pod is in Operation.result, from X-Pod)."""
    return [o for o in ops if o.result == pod and o.start <= at <= o.end]


def termination_record(ev: PodEvidence, clock: Recorder, *, requested_at: float | None = None,
                       slow: Sequence[Operation] = (), traffic: Sequence[Operation] = (),
                       grace_fallback: float | None = None) -> TerminationRecord:
    """Everything observed about one pod's end, on the test's clock, ready for check_shutdown.

    requested_at: when this process asked for the deletion (delete/evict); without it (a rollout,
    where the controller deletes) the watch's first sight of the deletionTimestamp is used.
    slow: all slow-request operations; the ones this pod was serving at deletion are its in-flight set.
    traffic: all continuous-load operations; the checker windows them around this termination.
    """
    life = app_lifecycle(ev)
    times = lifecycle_times(life, clock) if life is not None else {}
    deletion_at = requested_at if requested_at is not None else ev.deletion_seen_at
    exit_at = times.get("exit") if "exit" in times else exit_estimate(ev, clock)
    # A preStop run is observable only through the app's record (or a FailedPreStopHook event).
    failed_hook = any(e.reason == "FailedPreStopHook" for e in ev.events)
    prestop_expected = ev.prestop_hook and (life is not None or failed_hook)
    grace = ev.grace_seconds if ev.grace_seconds is not None else grace_fallback
    if grace is None:
        raise ValueError(f"pod {ev.pod}: no grace period known (neither the deletion nor the pod spec gave one)")
    return TerminationRecord.from_events(
        ev.pod, grace, times, deletion_at=deletion_at, exit_at=exit_at, exit_code=ev.exit_code, reason=ev.reason,
        prestop_expected=prestop_expected,
        inflight=in_flight_at(slow, ev.pod, deletion_at) if deletion_at is not None else (),
        traffic=traffic,
    )


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
    figs.append(Figure("prestop_ran", int(rec.prestop_start is not None), "bool",
                       rec.pod if rec.prestop_expected else f"{rec.pod}: not observable (no app lifecycle record)"))
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
