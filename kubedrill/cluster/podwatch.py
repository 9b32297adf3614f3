"""PodWatcher: record what happens to a namespace's pods while a disruption runs.

Why a watch and not polls: an evicted pod of a Deployment exists only until its container exits,
and its termination message (the sample app writes its lifecycle there: SIGTERM receipt, exit)
is visible for a moment before the pod object is deleted. A watch sees every update.

It records, on the test's monotonic clock: when each pod was first seen with a deletion timestamp
(the eviction), on which node, and the last termination message of its containers. It only
records; checks judge later. Bounded: each watch call lasts at most `chunk_s`, the thread stops
within that after stop(), and it gives up after `max_s` in total.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from kubedrill.cluster.handle import Cluster
from kubedrill.record import Recorder


@dataclass
class PodFate:
    name: str
    node: str | None = None
    first_seen: float | None = None
    deleting_at: float | None = None  # first time seen with metadata.deletionTimestamp
    termination_message: str = ""
    exit_code: int | None = None
    has_prestop: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)


class PodWatcher:
    """`with PodWatcher(cluster, ns, recorder) as w: ...` then `w.pods` -> {name: PodFate}."""

    def __init__(self, cluster: Cluster, namespace: str, recorder: Recorder | None = None, selector: str = "",
                 chunk_s: int = 5, max_s: float = 1800) -> None:
        self.cluster, self.namespace, self.selector = cluster, namespace, selector
        self.recorder = recorder
        self.chunk_s, self.max_s = chunk_s, max_s
        self.pods: dict[str, PodFate] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"kd-podwatch-{namespace}", daemon=True)

    def _seen(self, pod: Any) -> None:
        now = time.monotonic()
        name = pod.metadata.name
        with self._lock:
            fate = self.pods.setdefault(name, PodFate(name, first_seen=now))
            fate.node = pod.spec.node_name or fate.node
            fate.labels = dict(pod.metadata.labels or {})
            if fate.has_prestop is None:
                fate.has_prestop = any(c.lifecycle is not None and c.lifecycle.pre_stop is not None
                                       for c in (pod.spec.containers or []))
            new_deletion = pod.metadata.deletion_timestamp is not None and fate.deleting_at is None
            if new_deletion:
                fate.deleting_at = now
            for cs in pod.status.container_statuses or []:
                term = (cs.state and cs.state.terminated) or (cs.last_state and cs.last_state.terminated)
                if term is not None:
                    fate.termination_message = term.message or fate.termination_message
                    fate.exit_code = term.exit_code
        if new_deletion and self.recorder is not None:
            self.recorder.event("pod-deleting", name, at=now, node=fate.node or "")

    def _run(self) -> None:
        from kubernetes import watch

        core = self.cluster.core()
        deadline = time.monotonic() + self.max_s
        version = ""
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if not version:
                    listed = core.list_namespaced_pod(self.namespace, label_selector=self.selector, _request_timeout=30)
                    for p in listed.items:
                        self._seen(p)
                    version = listed.metadata.resource_version
                w = watch.Watch()
                for ev in w.stream(core.list_namespaced_pod, self.namespace, label_selector=self.selector,
                                   resource_version=version, timeout_seconds=self.chunk_s, _request_timeout=self.chunk_s + 10):
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        version = ""  # e.g. 410 Gone: list again
                        break
                    version = obj.metadata.resource_version or version
                    self._seen(obj)
                    if self._stop.is_set():
                        w.stop()
                        break
            except Exception as exc:  # noqa: BLE001 - a watch hiccup is recorded, then we list again
                self.errors.append(repr(exc)[:300])
                version = ""
                self._stop.wait(1.0)

    def start(self) -> "PodWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.chunk_s + 15)

    def __enter__(self) -> "PodWatcher":
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
