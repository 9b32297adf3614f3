"""PodWatch: the one pod watcher. It records what happens to pods while a disruption runs.

Why a watch and not polls: a deleted pod's object is removed moments after its container exits,
taking the exit code, reason and termination message with it. The DELETED event carries the final
object, in which the kubelet has already written the terminated container state. `evidence(pod)`
turns what was seen into a kubedrill.record.termination.PodEvidence and adds the pod's Kubernetes
events (Killing, FailedPreStopHook, ...).

It only records; checkers judge later. Bounded: each watch call lasts at most `chunk_seconds`, the
thread stops soon after stop(), and it gives up after `max_seconds` in total.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.waits import until
from kubedrill.record import Recorder
from kubedrill.record.eviction import PodLife, Toleration, Volume
from kubedrill.record.termination import KubeEvent, PodEvidence


def _wall(ts: datetime | None) -> float | None:
    return None if ts is None else ts.timestamp()


@dataclass
class _PodState:
    name: str
    uid: str
    first_seen_at: float
    node: str | None = None
    container: str | None = None
    spec_grace: float | None = None
    prestop_hook: bool = False
    prestop_exec_only: bool = False
    ready: bool | None = None
    ready_changes: list[tuple[float, bool]] = field(default_factory=list)
    deletion_seen_at: float | None = None
    deletion_timestamp_wall: float | None = None
    deletion_grace: float | None = None
    terminated_seen_at: float | None = None
    gone_at: float | None = None
    terminated: Any = None  # V1ContainerStateTerminated of the judged container
    statuses: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    # Its life (kubedrill.record.eviction.PodLife): when it was bound, Ready, not Ready again.
    created_during_watch: bool = False
    owner_kind: str | None = None
    scheduled_at: float | None = None
    tolerations: tuple[Toleration, ...] = ()
    volumes: tuple[Volume, ...] = ()


def _tolerations(spec: Any) -> tuple[Toleration, ...]:
    return tuple(Toleration(t.key or "", t.operator or "Equal", t.effect or "", t.value or "",
                            None if t.toleration_seconds is None else float(t.toleration_seconds))
                 for t in (getattr(spec, "tolerations", None) or []))


def _volumes(spec: Any) -> tuple[Volume, ...]:
    out = []
    for v in getattr(spec, "volumes", None) or []:
        if getattr(v, "empty_dir", None) is not None:
            out.append(Volume(v.name, "emptyDir"))
        elif getattr(v, "persistent_volume_claim", None) is not None:
            out.append(Volume(v.name, "persistentVolumeClaim", claim=v.persistent_volume_claim.claim_name))
        elif getattr(v, "host_path", None) is not None:
            out.append(Volume(v.name, "hostPath"))
    return tuple(out)


class PodWatch:
    """Watch the pods of `selector` (all pods when empty) in `namespace` from `start()` (a list, then a
    watch from its resourceVersion, so no change is missed) until `stop()`. Bounded by `max_seconds`.

    Recorder events: pod-deleting, pod-terminated (with exit code), pod-gone; with `lives()` also
    each pod's binding and readiness over time (a node loss's replacements).
    """

    def __init__(self, cluster: Cluster, namespace: str, selector: str = "", recorder: Recorder | None = None, *,
                 max_seconds: float = 900, chunk_seconds: int = 5) -> None:
        self.cluster, self.namespace, self.selector = cluster, namespace, selector
        self.recorder = recorder if recorder is not None else Recorder(f"pods/{namespace}")
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
                                                 and first.lifecycle.pre_stop is not None),
                               prestop_exec_only=_prestop_exec_only(first))
                st.created_during_watch = kind != "LISTED"
                owners = meta.owner_references or []
                ctrl = next((o for o in owners if o.controller), owners[0] if owners else None)
                st.owner_kind = ctrl.kind if ctrl is not None else None
                st.tolerations, st.volumes = _tolerations(spec), _volumes(spec)
                self._by_uid[meta.uid] = st
            ready = next((c.status == "True" for c in (status.conditions or []) if c.type == "Ready"), None) \
                if status is not None else None
            if ready is not None and ready != st.ready:
                st.ready = ready
                st.ready_changes.append((now, ready))
                if not ready and kind != "LISTED":
                    self.recorder.event("pod-unready", st.name, at=now)
            if spec is not None and spec.node_name:
                st.node = spec.node_name
                if st.scheduled_at is None and st.created_during_watch:
                    st.scheduled_at = now
            st.labels = dict(meta.labels or {})
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
            labels=dict(st.labels), prestop_exec_only=st.prestop_exec_only,
            ready_changes=tuple(st.ready_changes),
        )

    def lives(self) -> list[PodLife]:
        """Every pod seen (a StatefulSet's replacement is its own entry: same name, new uid), first
        seen first. A pod listed at the start counts as scheduled and Ready from before the watch."""
        with self._lock:
            states = sorted(self._by_uid.values(), key=lambda s: s.first_seen_at)
            return [PodLife(name=s.name, uid=s.uid, node=s.node, owner_kind=s.owner_kind, first_seen_at=s.first_seen_at,
                            scheduled_at=s.scheduled_at, ready_at=_first(s.ready_changes, True),
                            unready_at=_first(s.ready_changes, False, after=_first(s.ready_changes, True)),
                            deletion_at=s.deletion_seen_at, gone_at=s.gone_at,
                            created_during_watch=s.created_during_watch, tolerations=s.tolerations,
                            volumes=s.volumes, labels=dict(s.labels))
                    for s in states]

    def all_evidence(self, with_events: bool = False) -> list[PodEvidence]:
        """Evidence of every pod seen, first seen first."""
        return [self.evidence(name, with_events) for name in self.seen()]


def _first(changes: list[tuple[float, bool]], ready: bool, after: float | None = None) -> float | None:
    """When the pod was first seen with Ready == `ready` (after `after`, if given)."""
    if after is None and not ready:
        return None
    return next((t for t, r in changes if r == ready and (after is None or t >= after)), None)


def _prestop_exec_only(container: Any) -> bool:
    """The container's preStop hook is an exec and none of its probes execs: then every process the
    runtime starts in it after the deletion is the hook (kubedrill.observe.runtime)."""
    if container is None or container.lifecycle is None or container.lifecycle.pre_stop is None:
        return False
    if container.lifecycle.pre_stop._exec is None:
        return False
    probes = (container.readiness_probe, container.liveness_probe, container.startup_probe)
    return all(p is None or p._exec is None for p in probes)


def pod_events(cluster: Cluster, namespace: str, pod: str) -> list[KubeEvent]:
    """The Kubernetes Events about one pod, oldest first (they outlive the pod by an hour)."""
    items = cluster.core().list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod}", _request_timeout=30).items
    out = [KubeEvent(reason=e.reason or "", type=e.type or "", message=(e.message or "")[:500], count=e.count or 1,
                     first_wall=_wall(e.first_timestamp or e.event_time), last_wall=_wall(e.last_timestamp or e.event_time))
           for e in items]
    return sorted(out, key=lambda e: e.first_wall or 0.0)
