"""What the cluster says about itself, recorded as plain snapshots (kubedrill.record.cluster): nodes
with their conditions and taints, pods, PodDisruptionBudgets, workloads, component versions.

Record first, judge later: these functions and the `Sampler` only read the API and write
snapshots; kubedrill.check.rollout and kubedrill.check.skew judge them afterwards. A read that
fails (an API server restarting mid-upgrade) is kept as a snapshot with `error` set: a gap in the
record is itself evidence, and a checker decides what it means.

Component versions come from what runs: the image tag of each control-plane static pod, kube-proxy
and CoreDNS pod (container status, falling back to the spec while a container starts), the kubelet
version each Node reports, and the API server's /version.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Mapping

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.states import node_state, pdb_state, pod_state
from kubedrill.record.cluster import NodeState, PdbState, PodState, SchedulingFailure, Snapshot, WorkloadState

# kube-system pods whose versions the upgrade changes, by the label that identifies them.
COMPONENT_LABELS: dict[str, str] = {
    "kube-apiserver": "component=kube-apiserver",
    "kube-controller-manager": "component=kube-controller-manager",
    "kube-scheduler": "component=kube-scheduler",
    "etcd": "component=etcd",
    "kube-proxy": "k8s-app=kube-proxy",
    "coredns": "k8s-app=kube-dns",
}


def _tag(image: str) -> str:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def _pod_image(pod: Any) -> str:
    for cs in pod.status.container_statuses or []:
        if cs.image and _tag(cs.image):
            return str(cs.image)
    return str(pod.spec.containers[0].image)


class Observer:
    """Reads snapshots through one API client (parsing the kubeconfig once per observer, not per call)."""

    def __init__(self, cluster: Cluster, request_timeout: float = 5.0) -> None:
        from kubernetes import client

        self.cluster = cluster
        self.timeout = request_timeout
        api = cluster.api_client()
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.version_api = client.VersionApi(api)

    def snapshot(self, label: str = "", namespaces: Iterable[str] | None = None, strict: bool = False) -> Snapshot:
        """Nodes, /version and kube-system component versions; with `namespaces` also every pod of the
        cluster and the PDBs and Deployments/StatefulSets of those namespaces. `strict` raises when a
        read failed instead of recording the gap (for checks that cannot judge a partial picture)."""
        at = time.monotonic()
        errors: list[str] = []
        try:
            api_version = str(self.version_api.get_code(_request_timeout=self.timeout).git_version)
        except Exception as exc:  # noqa: BLE001 - an unanswered /version is a recorded observation
            api_version = ""
            errors.append(f"/version: {type(exc).__name__}: {str(exc)[:120]}")
        nodes: list[NodeState] = []
        try:
            node_list: Any = self.core.list_node(_request_timeout=self.timeout)  # client models: Optional-typed
            nodes = [node_state(n) for n in node_list.items]
        except Exception as exc:  # noqa: BLE001
            errors.append(f"nodes: {type(exc).__name__}: {str(exc)[:120]}")
        components: dict[str, dict[str, str]] = {}
        try:
            pod_list: Any = self.core.list_namespaced_pod("kube-system", _request_timeout=self.timeout)
            system_pods = pod_list.items
            for comp, sel in COMPONENT_LABELS.items():
                key, _, value = sel.partition("=")
                seen: dict[str, str] = {}
                for p in system_pods:
                    if (p.metadata.labels or {}).get(key) != value or p.metadata.deletion_timestamp is not None:
                        continue
                    where = p.metadata.name if comp == "coredns" else (p.spec.node_name or p.metadata.name)
                    seen[where] = _tag(_pod_image(p))
                components[comp] = seen
        except Exception as exc:  # noqa: BLE001
            errors.append(f"kube-system pods: {type(exc).__name__}: {str(exc)[:120]}")
        pods: tuple[PodState, ...] = ()
        pdbs: list[PdbState] = []
        workloads: list[WorkloadState] = []
        if namespaces is not None:
            try:
                pod_items: Any = self.core.list_pod_for_all_namespaces(_request_timeout=self.timeout)
                pods = tuple(pod_state(p) for p in pod_items.items)
                for ns in namespaces:
                    listed: Any = self.policy.list_namespaced_pod_disruption_budget(ns, _request_timeout=self.timeout)
                    pdbs += [pdb_state(b) for b in listed.items]
                    workloads += self._workloads(ns)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"pods/PDBs/workloads: {type(exc).__name__}: {str(exc)[:120]}")
        snap = Snapshot(at, tuple(sorted(nodes, key=lambda n: n.name)), pods, tuple(pdbs), tuple(workloads), label,
                        api_version, components, "; ".join(errors))
        if strict and snap.error:
            raise RuntimeError(f"could not read the cluster's state ({label or 'snapshot'}): {snap.error}")
        return snap

    def _workloads(self, namespace: str) -> list[WorkloadState]:
        out: list[WorkloadState] = []
        for kind, lister in (("Deployment", self.apps.list_namespaced_deployment),
                             ("StatefulSet", self.apps.list_namespaced_stateful_set)):
            listed: Any = lister(namespace, _request_timeout=self.timeout)
            for w in listed.items:
                sel = dict((w.spec.selector.match_labels if w.spec.selector else None) or {})
                st = w.status
                out.append(WorkloadState(kind, namespace, w.metadata.name, int(w.spec.replicas or 0), sel,
                                         int(st.ready_replicas or 0), int(getattr(st, "available_replicas", 0) or 0)))
        return out

    def workload(self, namespace: str, name: str, kind: str = "Deployment") -> WorkloadState:
        """A Deployment, StatefulSet or DaemonSet with its pods, restarts included (a DaemonSet's
        replicas are the pods it should run: one per node it is scheduled on)."""
        read = {"Deployment": self.apps.read_namespaced_deployment,
                "StatefulSet": self.apps.read_namespaced_stateful_set,
                "DaemonSet": self.apps.read_namespaced_daemon_set}.get(kind)
        if read is None:
            raise ValueError(f"workload kind {kind!r} is not Deployment, StatefulSet or DaemonSet")
        d: Any = read(name, namespace, _request_timeout=self.timeout)
        selector = dict(d.spec.selector.match_labels or {})
        sel = ",".join(f"{k}={v}" for k, v in selector.items())
        listed: Any = self.core.list_namespaced_pod(namespace, label_selector=sel, _request_timeout=self.timeout)
        pods = tuple(sorted((pod_state(p) for p in listed.items), key=lambda p: p.name))
        st = d.status
        if kind == "DaemonSet":
            replicas, ready, available = st.desired_number_scheduled, st.number_ready, st.number_available
        else:
            replicas, ready, available = d.spec.replicas, st.ready_replicas, st.available_replicas
        return WorkloadState(kind, namespace, name, replicas or 0, selector, ready or 0, available or 0, pods)


def take_snapshot(cluster: Cluster, namespaces: Iterable[str] = (), label: str = "") -> Snapshot:
    """One strict snapshot with the pods, PDBs and workloads of `namespaces` (a drain's before/during/after)."""
    return Observer(cluster, request_timeout=30).snapshot(label, namespaces=list(namespaces), strict=True)


def _wall(ts: Any) -> float | None:
    return None if ts is None or not hasattr(ts, "timestamp") else float(ts.timestamp())


def scheduling_failures(cluster: Cluster, namespace: str, labels: Mapping[str, Mapping[str, str]] | None = None
                        ) -> list[SchedulingFailure]:
    """The namespace's FailedScheduling events, oldest first, on the monotonic clock. `labels`
    (pod name -> labels, e.g. from a PodWatch) lets a checker tell which workload a pod was.

    Why events and not only the pod's PodScheduled condition: a replacement that stayed Pending
    while a drain waited is scheduled as soon as the node is uncordoned; the event (kept an hour)
    is what still says why it could not run anywhere else. Newer schedulers write events through
    events.k8s.io, which fills eventTime and series instead of first/lastTimestamp and count."""
    listed: Any = cluster.core().list_namespaced_event(
        namespace, field_selector="reason=FailedScheduling,involvedObject.kind=Pod", _request_timeout=30)
    offset = time.time() - time.monotonic()
    out = []
    for e in listed.items:
        series = getattr(e, "series", None)
        first = _wall(e.first_timestamp or e.event_time)
        last = _wall(e.last_timestamp or (series.last_observed_time if series is not None else None) or e.event_time)
        pod = str(e.involved_object.name)
        out.append(SchedulingFailure(
            namespace=namespace, pod=pod, message=(e.message or "")[:500],
            first_at=None if first is None else first - offset, last_at=None if last is None else last - offset,
            count=int(e.count or (series.count if series is not None else 0) or 1),
            labels=dict((labels or {}).get(pod, {}))))
    return sorted(out, key=lambda f: f.first_at if f.first_at is not None else 0.0)


class Sampler:
    """A background thread taking a snapshot every `interval` seconds until stopped (bounded by max_seconds).

    Why a sampler as well as checkpoints: "never more than one node out" and the skew policy must
    hold *during* each step, not only at the checkpoints between steps.
    """

    def __init__(self, observer: Observer, interval: float = 3.0, max_seconds: float = 3600.0) -> None:
        self.observer = observer
        self.interval = interval
        self.max_seconds = max_seconds
        self.snapshots: list[Snapshot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.label = "sample"

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            snap = self.observer.snapshot(self.label)
            with self._lock:
                self.snapshots.append(snap)
            self._stop.wait(self.interval)

    def start(self) -> "Sampler":
        self._thread = threading.Thread(target=self._run, name="kd-upgrade-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the version sampler did not stop within {timeout:.0f}s: an API call is hanging "
                                   "past its request timeout")

    def taken(self) -> list[Snapshot]:
        with self._lock:
            return list(self.snapshots)
