"""The one deploy path: a workload spec onto a cluster in its own namespace, ready, and off again.

    with deployed(cluster, spec, purpose="drain-sample", expose=True) as d:
        d.namespace, d.kind, d.name, d.urls   # urls: http://127.0.0.1:<host port> per kind node

Sequence: the credentials asked whether they may create and delete namespaces (nothing is created
when they may not), a fresh namespace `kd-<purpose>-<hex>` (labelled, so a sweeper finds
leftovers), images loaded into kind nodes that lack them, the manifests applied, every Deployment/
StatefulSet/DaemonSet waited for (bounded, with pod states and events in the error; an image the
nodes cannot get ends the wait at once, saying so), and -- when asked -- the Service exposed on a
host-mapped NodePort and answering. Pods reach the Service by its cluster DNS name (`service_url`).
Teardown always runs: Services first and synchronously (node ports are cluster-wide, and the next workload must not find its port still
held by a terminating namespace), then the namespace.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from kubedrill.cluster.access import require_namespace_rights
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.images import load_images
from kubedrill.cluster.progress import say
from kubedrill.cluster.waits import GiveUp, until
from kubedrill.workload import apply
from kubedrill.workload.manifests import WORKLOAD_KINDS
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError, render_manifests

CONTROLLER_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class Deployed:
    """A workload on the cluster: its spec moved into its namespace (and exposed, if asked)."""

    cluster: Cluster
    spec: WorkloadSpec
    kind: str  # of the one controller whose pods are under test
    name: str
    node_port: int | None = None
    urls: tuple[str, ...] = ()  # through each kind node's host-mapped NodePort

    @property
    def namespace(self) -> str:
        assert self.spec.namespace is not None
        return self.spec.namespace

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.spec.selector.items())

    @property
    def service_url(self) -> str:
        """The Service as other pods reach it: its cluster DNS name and first port."""
        name, port = service_address(self.spec)
        return f"http://{name}.{self.namespace}.svc.cluster.local:{port}"

    @property
    def base_url(self) -> str:
        if not self.urls:
            raise RuntimeError(f"workload {self.spec.name} was deployed without a host-mapped NodePort (expose=False)")
        return self.urls[0]


# -- the workload object and its readiness -----------------------------------------------------

def _selects(doc: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = (doc.get("spec", {}).get("template", {}).get("metadata", {}) or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def workload_object(spec: WorkloadSpec) -> tuple[str, str]:
    """(kind, name) of the one Deployment/StatefulSet/DaemonSet whose pods are under test."""
    objs = [d for d in spec.documents if d["kind"] in WORKLOAD_KINDS and d["kind"] in CONTROLLER_KINDS]
    matching = [d for d in objs if _selects(d, dict(spec.selector))] or objs
    if len(matching) != 1:
        raise WorkloadSpecError(f"workload {spec.name!r}: expected one Deployment/StatefulSet/DaemonSet selecting "
                                f"{dict(spec.selector)}, found {[d['metadata']['name'] for d in matching] or 'none'}")
    return matching[0]["kind"], matching[0]["metadata"]["name"]


def workload_ready(cluster: Cluster, namespace: str, kind: str, name: str) -> tuple[bool, str]:
    """(all replicas updated, ready and available, what is seen) for a Deployment/StatefulSet/DaemonSet."""
    apps = cluster.apps()
    if kind == "Deployment":
        d = apps.read_namespaced_deployment(name, namespace, _request_timeout=30)
        want, st = d.spec.replicas or 0, d.status
        ok = ((st.observed_generation or 0) >= (d.metadata.generation or 0)
              and (st.updated_replicas or 0) >= want and (st.available_replicas or 0) >= want
              and (st.ready_replicas or 0) >= want)
        return ok, (f"deployment {name}: desired {want}, updated {st.updated_replicas or 0}, ready "
                    f"{st.ready_replicas or 0}, available {st.available_replicas or 0}")
    if kind == "StatefulSet":
        s = apps.read_namespaced_stateful_set(name, namespace, _request_timeout=30)
        want, st = s.spec.replicas or 0, s.status
        ok = (st.ready_replicas or 0) >= want and st.current_revision == st.update_revision
        return ok, (f"statefulset {name}: desired {want}, ready {st.ready_replicas or 0}, revision "
                    f"{st.current_revision}->{st.update_revision}")
    if kind == "DaemonSet":
        ds = apps.read_namespaced_daemon_set(name, namespace, _request_timeout=30)
        st = ds.status
        want = st.desired_number_scheduled or 0
        ok = (st.number_ready or 0) >= want and (st.updated_number_scheduled or 0) >= want
        return ok, f"daemonset {name}: desired {want}, ready {st.number_ready or 0}, updated {st.updated_number_scheduled or 0}"
    raise ValueError(f"workload kind {kind!r} is not one of {', '.join(CONTROLLER_KINDS)}")


# Waiting reasons of a container whose image the node cannot get. ErrImageNeverPull and
# InvalidImageName never resolve by waiting; a pull error may be a registry hiccup, so it ends the
# wait only once it has lasted PULL_PATIENCE_S (the kubelet retries after 10 s, then 20 s).
NEVER_PULLS = ("ErrImageNeverPull", "InvalidImageName")
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", *NEVER_PULLS)
PULL_PATIENCE_S = 30.0


@dataclass(frozen=True)
class PullFailure:
    pod: str
    container: str
    image: str
    reason: str
    message: str


def pull_failures(pods: Iterable[Any]) -> list[PullFailure]:
    """Containers (init containers too) of these V1Pods waiting on an image they cannot get."""
    out: list[PullFailure] = []
    for p in pods:
        statuses = list(p.status.init_container_statuses or []) + list(p.status.container_statuses or [])
        for c in statuses:
            waiting = c.state.waiting if c.state is not None else None
            if waiting is not None and waiting.reason in PULL_ERRORS:
                out.append(PullFailure(p.metadata.name, c.name, c.image, waiting.reason, (waiting.message or "")[:300]))
    return out


def pull_failure_message(cluster: Cluster, failures: list[PullFailure]) -> str:
    """What the nodes could not get, and the two ways out: put the image in the nodes, or name one they can pull."""
    f = failures[0]
    images = sorted({x.image for x in failures})
    if cluster.provider == "kind":
        load = " ".join(f"kind load docker-image {i} --name {cluster.name};" for i in images).rstrip(";")
    else:
        load = "push it to a registry the nodes pull from, or load it into every node's container runtime"
    return (f"pod {f.pod} cannot get image {f.image} for container {f.container} ({f.reason}: {f.message or 'no message'})"
            f"; images affected: {', '.join(images)}. The nodes of {cluster.name} do not have it and cannot pull it: "
            f"load the image into the nodes ({load}) or name an image they can pull in the workload spec")


def wait_workload_ready(cluster: Cluster, namespace: str, kind: str, name: str, timeout: float = 240) -> None:
    first_seen: dict[tuple[str, str], float] = {}

    def probe() -> tuple[bool, str]:
        ok, seen = workload_ready(cluster, namespace, kind, name)
        if ok:
            return ok, seen
        pods = cluster.core().list_namespaced_pod(namespace, _request_timeout=30).items
        failures = pull_failures(pods)
        now = time.monotonic()
        for key in [k for k in first_seen if k not in {(x.pod, x.container) for x in failures}]:
            del first_seen[key]
        stuck = [x for x in failures if x.reason in NEVER_PULLS
                 or now - first_seen.setdefault((x.pod, x.container), now) >= PULL_PATIENCE_S]
        if stuck:
            raise GiveUp(pull_failure_message(cluster, stuck))
        return ok, seen

    until(f"{kind} {namespace}/{name} to be ready", probe, timeout,
          interval=1.0, hint="ImagePullBackOff means the image is not in the nodes (kind load docker-image); Pending "
                             "pods name the scheduling constraint in their events",
          diagnose=lambda: cluster.kubectl("get", "pods,events", "-n", namespace, "-o", "wide", check=False,
                                           timeout=30).stdout)


def live_pods(cluster: Cluster, namespace: str, selector: str) -> list[str]:
    """Names of the selected pods that are not already being deleted, sorted."""
    pods = cluster.core().list_namespaced_pod(namespace, label_selector=selector, _request_timeout=30).items
    return sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None)


# -- exposing through a host-mapped NodePort (kind) ---------------------------------------------

def expose(spec: WorkloadSpec, node_port: int) -> WorkloadSpec:
    """The spec with its Service reachable on `node_port` (type NodePort, first port).

    Why rewrite the user's Service: on kind only a few node ports are mapped to 127.0.0.1, and the
    test's copy of the workload lives in a throwaway namespace, so changing the port there is safe.
    """
    services = [d for d in spec.documents if d["kind"] == "Service"]
    chosen = [d for d in services if d["metadata"]["name"] == spec.service] or services
    if len(chosen) != 1:
        raise WorkloadSpecError(f"workload {spec.name!r}: traffic goes through one Service; found "
                                f"{[d['metadata']['name'] for d in services] or 'none'} (set `service:` in the spec)")
    docs = [copy.deepcopy(d) for d in spec.documents]
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] == chosen[0]["metadata"]["name"]:
            d["spec"]["type"] = "NodePort"
            ports = d["spec"].get("ports") or []
            if not ports:
                raise WorkloadSpecError(f"workload {spec.name!r}: Service {d['metadata']['name']} has no ports")
            ports[0]["nodePort"] = node_port
    return dataclasses.replace(spec, documents=tuple(docs), node_port=node_port, service=chosen[0]["metadata"]["name"])


def service_address(spec: WorkloadSpec) -> tuple[str, int]:
    """The workload's Service (`service:` in the spec, else its only Service) and its first port."""
    services = [d for d in spec.documents if d["kind"] == "Service"]
    chosen = [d for d in services if d["metadata"]["name"] == spec.service] or services
    if len(chosen) != 1 or not (chosen[0].get("spec", {}).get("ports") or []):
        raise WorkloadSpecError(f"workload {spec.name!r}: traffic goes through one Service with a port; found "
                                f"{[d['metadata']['name'] for d in services] or 'none'} (set `service:` in the spec)")
    return chosen[0]["metadata"]["name"], int(chosen[0]["spec"]["ports"][0]["port"])


def _node_ports_in_use(cluster: Cluster) -> set[int]:
    used: set[int] = set()
    for svc in cluster.core().list_service_for_all_namespaces(_request_timeout=30).items:
        for p in svc.spec.ports or []:
            if p.node_port:
                used.add(int(p.node_port))
    return used


def free_node_port(cluster: Cluster, preferred: int | None = None, timeout: float = 90) -> int:
    """A host-mapped node port that no Service holds, waiting (bounded) for one to be released."""
    mapped = sorted(cluster.port_map)
    if not mapped:
        raise RuntimeError(f"cluster {cluster.name} maps no node port to 127.0.0.1; traffic from this host goes "
                           "through one (kubedrill's kind configs map 30080-30082)")
    order = ([preferred] if preferred in mapped else []) + [p for p in mapped if p != preferred]
    found: list[int] = []

    def probe() -> tuple[bool, str]:
        used = _node_ports_in_use(cluster)
        free = [p for p in order if p not in used]
        found[:] = free[:1]
        return bool(free), f"mapped {mapped}, in use {sorted(used & set(mapped))}"

    until("a free host-mapped node port", probe, timeout, interval=2.0,
          hint="another workload's Service holds every mapped node port: delete leftover kd-* namespaces, or deploy "
               "fewer workloads at once on this cluster")
    return found[0]


# -- the context manager ------------------------------------------------------------------------

@contextlib.contextmanager
def deployed(cluster: Cluster, spec: WorkloadSpec, *, purpose: str, expose_service: bool = False,
             extra_docs: Iterable[dict[str, Any]] = (), keep: bool = False, wait_deleted: bool = True,
             timeout: float = 240) -> Iterator[Deployed]:
    """Deploy `spec` in a fresh namespace, wait until it is ready, yield it, always remove it.

    expose_service: give its Service a free host-mapped NodePort (the spec's own when free) and
    wait until it answers on spec.health_path through the first node. extra_docs: more objects for
    the same namespace (e.g. a bare pod). keep: leave the namespace for inspection.
    """
    require_namespace_rights(cluster)
    ns = apply.unique_namespace(purpose)
    spec = spec.in_namespace(ns)
    node_port: int | None = None
    if expose_service:
        node_port = free_node_port(cluster, spec.node_port)
        spec = expose(spec, node_port)
    kind, name = workload_object(spec)
    load_images(cluster, spec.images)
    apply.create_namespace(cluster, ns)
    try:
        apply.apply_docs(cluster, render_manifests(spec) + list(extra_docs), ns)
        for doc in spec.documents:
            if doc["kind"] in CONTROLLER_KINDS:
                wait_workload_ready(cluster, ns, doc["kind"], doc["metadata"]["name"], timeout)
        urls: tuple[str, ...] = ()
        if node_port is not None:
            urls = tuple(f"http://127.0.0.1:{hp}" for hp in cluster.port_map[node_port].values())
            apply.wait_http(urls[0] + spec.health_path, timeout=60)
        say(f"{purpose}: {kind} {ns}/{name} ready" + (f" on NodePort {node_port}" if node_port else ""))
        yield Deployed(cluster, spec, kind, name, node_port, urls)
    finally:
        if not keep:
            apply.delete_namespace(cluster, ns, wait=wait_deleted)
