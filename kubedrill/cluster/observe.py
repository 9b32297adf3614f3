"""What the cluster says about itself, recorded as plain snapshots: versions, node states, workloads.

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
from dataclasses import dataclass, field
from typing import Any, Mapping

from kubedrill.cluster.handle import Cluster

# kube-system pods whose versions the upgrade changes, by the label that identifies them.
COMPONENT_LABELS: dict[str, str] = {
    "kube-apiserver": "component=kube-apiserver",
    "kube-controller-manager": "component=kube-controller-manager",
    "kube-scheduler": "component=kube-scheduler",
    "etcd": "component=etcd",
    "kube-proxy": "k8s-app=kube-proxy",
    "coredns": "k8s-app=kube-dns",
}


@dataclass(frozen=True)
class NodeState:
    name: str
    role: str  # control-plane | worker
    ready: bool
    unschedulable: bool
    kubelet: str  # status.nodeInfo.kubeletVersion

    @property
    def out(self) -> bool:
        """Out of service for workloads: cordoned or not Ready."""
        return self.unschedulable or not self.ready


@dataclass(frozen=True)
class Snapshot:
    """The cluster at one moment (`at` on the monotonic clock)."""

    at: float
    label: str
    api_version: str  # kube-apiserver /version gitVersion; "" when it did not answer
    nodes: tuple[NodeState, ...] = ()
    # component -> {node: image tag}; coredns (a Deployment) is keyed by pod name instead.
    components: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    error: str = ""

    def node(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes if n.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "label": self.label, "api_version": self.api_version, "error": self.error,
                "nodes": [n.__dict__ for n in self.nodes],
                "components": {k: dict(v) for k, v in self.components.items()}}


@dataclass(frozen=True)
class PodState:
    name: str
    node: str
    phase: str
    ready: bool
    restarts: int
    terminating: bool


@dataclass(frozen=True)
class WorkloadState:
    namespace: str
    name: str
    desired: int
    ready: int
    available: int
    pods: tuple[PodState, ...]


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
        self.version_api = client.VersionApi(api)

    def snapshot(self, label: str = "") -> Snapshot:
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
            for n in node_list.items:
                labels = n.metadata.labels or {}
                conds = {c.type: c.status for c in (n.status.conditions or [])}
                nodes.append(NodeState(
                    name=n.metadata.name,
                    role="control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker",
                    ready=conds.get("Ready") == "True", unschedulable=bool(n.spec.unschedulable),
                    kubelet=str(n.status.node_info.kubelet_version)))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"nodes: {type(exc).__name__}: {str(exc)[:120]}")
        components: dict[str, dict[str, str]] = {}
        try:
            pod_list: Any = self.core.list_namespaced_pod("kube-system", _request_timeout=self.timeout)
            pods = pod_list.items
            for comp, sel in COMPONENT_LABELS.items():
                key, _, value = sel.partition("=")
                seen: dict[str, str] = {}
                for p in pods:
                    if (p.metadata.labels or {}).get(key) != value or p.metadata.deletion_timestamp is not None:
                        continue
                    where = p.metadata.name if comp == "coredns" else (p.spec.node_name or p.metadata.name)
                    seen[where] = _tag(_pod_image(p))
                components[comp] = seen
        except Exception as exc:  # noqa: BLE001
            errors.append(f"kube-system pods: {type(exc).__name__}: {str(exc)[:120]}")
        return Snapshot(at, label, api_version, tuple(sorted(nodes, key=lambda n: n.name)), components,
                        "; ".join(errors))

    def workload(self, namespace: str, name: str) -> WorkloadState:
        d: Any = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=self.timeout)
        sel = ",".join(f"{k}={v}" for k, v in (d.spec.selector.match_labels or {}).items())
        pods = []
        listed: Any = self.core.list_namespaced_pod(namespace, label_selector=sel, _request_timeout=self.timeout)
        for p in listed.items:
            cs = p.status.container_statuses or []
            pods.append(PodState(p.metadata.name, p.spec.node_name or "", p.status.phase or "",
                                 bool(cs) and all(c.ready for c in cs), sum(c.restart_count for c in cs),
                                 p.metadata.deletion_timestamp is not None))
        st = d.status
        return WorkloadState(namespace, name, d.spec.replicas or 0, st.ready_replicas or 0, st.available_replicas or 0,
                             tuple(sorted(pods, key=lambda p: p.name)))


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
