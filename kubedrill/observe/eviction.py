"""What a node loss looks like from the API, recorded on the test's clock: the cluster's eviction
timers (read, never assumed), and a poller for the lost node (Ready condition, taints, Lease
renewals) and the Service's EndpointSlices. Pods are PodWatch's (kubedrill.observe.pods).

Why a poller at 0.5 s and not watches: three small reads per tick are cheap, the lease and the
EndpointSlices would need two more watch streams with their own resume logic, and the timeline is
judged to seconds (the controller's own monitor period is 2-5 s). Wall-clock stamps the API gives
(lease renewTime) are converted to the monotonic clock with the offset taken at each read.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from typing import Any, Sequence

from kubedrill.cluster.handle import Cluster
from kubedrill.record import Recorder
from kubedrill.record.eviction import EndpointSeen, EvictionSettings, NodeSeen, PodLife, Volume

# Kubernetes' own defaults when a flag is not set (v1.34 source: nodelifecycle/config/v1alpha1
# defaults.go, cloud-provider config defaults.go, admission/defaulttolerationseconds).
DEFAULT_MONITOR_PERIOD_S = 5.0
DEFAULT_TOLERATION_S = 300.0


def default_grace_s(k8s_version: str) -> float:
    """--node-monitor-grace-period when unset: 50 s since v1.32, 40 s before."""
    m = re.match(r"v?(\d+)\.(\d+)", k8s_version or "")
    if m is None:
        return 50.0
    return 50.0 if (int(m.group(1)), int(m.group(2))) >= (1, 32) else 40.0


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """A Go duration ("20s", "1m0s", "500ms") in seconds; raises ValueError for anything else."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Go duration: {text!r} (expected e.g. 40s, 1m0s)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _flags(command: Sequence[str]) -> dict[str, str]:
    out = {}
    for arg in command:
        if arg.startswith("--") and "=" in arg:
            k, _, v = arg[2:].partition("=")
            out[k] = v
    return out


def _component_flags(cluster: Cluster, component: str) -> dict[str, str] | None:
    """The flags of a control-plane static pod (kubeadm puts them in the command), None if not visible."""
    pods: Any = cluster.core().list_namespaced_pod("kube-system", label_selector=f"component={component}",
                                                   _request_timeout=30)
    for p in pods.items:
        c = p.spec.containers[0]
        return _flags([*(c.command or []), *(c.args or [])])
    return None


def read_eviction_settings(cluster: Cluster) -> EvictionSettings:
    """The cluster's node-loss timers: from the kube-controller-manager's and kube-apiserver's
    flags where their pods are visible (kubeadm, kind), else Kubernetes' defaults for the API
    server's version; `source` says which."""
    from kubernetes import client

    version = str(client.VersionApi(cluster.api_client()).get_code(_request_timeout=30).git_version)
    said: list[str] = []
    kcm = _component_flags(cluster, "kube-controller-manager")
    api = _component_flags(cluster, "kube-apiserver")

    def pick(flags: dict[str, str] | None, who: str, flag: str, default: float, parse: Any) -> float:
        if flags is not None and flag in flags:
            said.append(f"{who} --{flag}={flags[flag]}")
            return float(parse(flags[flag]))
        said.append(f"--{flag} {default:g} s ({'unset: the default of ' + version if flags is not None else who + ' not visible: the default of ' + version})")
        return default

    grace = pick(kcm, "kube-controller-manager", "node-monitor-grace-period", default_grace_s(version), go_duration)
    period = pick(kcm, "kube-controller-manager", "node-monitor-period", DEFAULT_MONITOR_PERIOD_S, go_duration)
    not_ready = pick(api, "kube-apiserver", "default-not-ready-toleration-seconds", DEFAULT_TOLERATION_S, float)
    unreachable = pick(api, "kube-apiserver", "default-unreachable-toleration-seconds", DEFAULT_TOLERATION_S, float)
    return EvictionSettings(grace, period, not_ready, unreachable, version, "; ".join(said))


def with_pv_nodes(cluster: Cluster, namespace: str, pods: Sequence[PodLife]) -> list[PodLife]:
    """The pods with each claim's PersistentVolume and the nodes it is pinned to (its node
    affinity), so a checker can tell whether the data can follow the pod to another node."""
    core = cluster.core()
    out = []
    for p in pods:
        vols = []
        for v in p.volumes:
            if v.kind == "persistentVolumeClaim" and v.claim:
                vols.append(_pv_of(core, namespace, v))
            else:
                vols.append(v)
        out.append(replace(p, volumes=tuple(vols)))
    return out


def _pv_of(core: Any, namespace: str, v: Volume) -> Volume:
    try:
        pvc = core.read_namespaced_persistent_volume_claim(v.claim, namespace, _request_timeout=30)
        pv_name = pvc.spec.volume_name or ""
        if not pv_name:
            return v
        pv = core.read_persistent_volume(pv_name, _request_timeout=30)
    except Exception:  # noqa: BLE001 - a claim that cannot be read is reported as unbound
        return v
    nodes: list[str] = []
    aff = pv.spec.node_affinity
    for term in ((aff.required.node_selector_terms or []) if aff is not None and aff.required is not None else []):
        for e in term.match_expressions or []:
            if e.key == "kubernetes.io/hostname" and e.operator == "In":
                nodes += list(e.values or [])
    return replace(v, pv=pv_name, pv_nodes=tuple(nodes))


class NodeLossObserver:
    """Poll the lost node, its Lease and the Service's EndpointSlices every `interval` seconds
    from start() to stop() (bounded by max_seconds), keeping only changes."""

    def __init__(self, cluster: Cluster, node: str, namespace: str, service: str, recorder: Recorder | None = None,
                 *, interval: float = 0.5, max_seconds: float = 900.0) -> None:
        from kubernetes import client

        api = cluster.api_client()
        self.core, self.coord, self.discovery = client.CoreV1Api(api), client.CoordinationV1Api(api), \
            client.DiscoveryV1Api(api)
        self.node, self.namespace, self.service = node, namespace, service
        self.recorder = recorder if recorder is not None else Recorder(f"node-loss/{node}")
        self.interval, self.max_seconds = interval, max_seconds
        self.errors: list[str] = []
        self.heartbeats: list[float] = []
        self.node_seen: list[NodeSeen] = []
        self.endpoints: list[EndpointSeen] = []
        self.endpoints_at_start: dict[str, tuple[str | None, bool]] = {}
        self._renewals: set[float] = set()
        self._eps: dict[str, tuple[str | None, bool]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kd-node-loss-{node}", daemon=True)

    def __enter__(self) -> "NodeLossObserver":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._tick()  # the state before anything happens, synchronously
        if self._eps is None:
            raise RuntimeError(f"could not read the EndpointSlices of Service {self.namespace}/{self.service}: "
                               f"{self.errors[-3:]}; is the Service there and the API reachable?")
        self.endpoints_at_start = dict(self._eps)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            self._tick()

    def _tick(self) -> None:
        for read in (self._read_node, self._read_lease, self._read_endpoints):
            try:
                read()
            except Exception as exc:  # noqa: BLE001 - a failed read is a gap in the record, kept as an error
                if len(self.errors) < 200:
                    self.errors.append(f"{read.__name__}: {type(exc).__name__}: {str(exc)[:160]}")

    def _read_node(self) -> None:
        n: Any = self.core.read_node(self.node, _request_timeout=5)
        now = time.monotonic()
        cond = next((c for c in (n.status.conditions or []) if c.type == "Ready"), None)
        ready = cond.status if cond is not None else ""
        taints = tuple(sorted(f"{t.key}:{t.effect}" for t in (n.spec.taints or [])))
        # A node status update is a heartbeat too (the controller resets its clock on either): the
        # kubelet posts one when its status changes, e.g. right after an image was loaded.
        if cond is not None and cond.last_heartbeat_time is not None and ready == "True":
            self._heartbeat(cond.last_heartbeat_time.timestamp())
        with self._lock:
            last = self.node_seen[-1] if self.node_seen else None
            if last is None or (last.ready, last.taints) != (ready, taints):
                self.node_seen.append(NodeSeen(now, ready, taints))
                self.recorder.event("node-changed", self.node, at=now, ready=ready, taints=",".join(taints))

    def _read_lease(self) -> None:
        lease: Any = self.coord.read_namespaced_lease(self.node, "kube-node-lease", _request_timeout=5)
        renew = lease.spec.renew_time if lease.spec is not None else None
        if renew is None:
            return
        self._heartbeat(renew.timestamp())

    def _heartbeat(self, wall: float) -> None:
        offset = time.time() - time.monotonic()
        with self._lock:
            if wall not in self._renewals:
                self._renewals.add(wall)
                self.heartbeats.append(wall - offset)
                self.heartbeats.sort()

    def _read_endpoints(self) -> None:
        slices: Any = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.service}", _request_timeout=5)
        now = time.monotonic()
        seen: dict[str, tuple[str | None, bool]] = {}
        for s in slices.items:
            for e in s.endpoints or []:
                pod = e.target_ref.name if e.target_ref is not None else (e.addresses or ["?"])[0]
                ready = bool(e.conditions is not None and e.conditions.ready)
                seen[pod] = (e.node_name, ready)
        with self._lock:
            before = self._eps
            self._eps = seen
            if before is None:
                return
            for pod, (node, ready) in seen.items():
                if before.get(pod) != (node, ready):
                    self.endpoints.append(EndpointSeen(now, pod, node, ready))
            for pod, (node, _) in before.items():
                if pod not in seen:
                    self.endpoints.append(EndpointSeen(now, pod, node, None))
