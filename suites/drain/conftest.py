"""Drain suite wiring: options, the workload under test (one deployment per module and workload),
the locust load aimed at it, and a safety net that leaves no node cordoned.

Options select the workload variant, so the project's meta-tests can run this same suite against
broken cases: `--sample-mode no-prestop`, `--replicas 1 --sample-pdb none`,
`--sample-pdb max-unavailable=0`.
Load options (`--load-users`, `--load-rate`, `--load-processes`) size the locust run; see
suites/drain/README.md for distributed mode on big clusters.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.progress import say
from kubedrill.workload import apply
from kubedrill.workload.spec import WorkloadSpec, render_manifests

OPERATIONS: tuple[str, ...] = ("cordon", "drain-worker", "reboot-worker", "rolling-drain")
NODE_PORTS: tuple[int, ...] = (30080, 30081, 30082)  # mapped to 127.0.0.1 on every kind node


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill drain suite")
    # --sample-mode is a shared option of the kubedrill plugin (the shutdown suite reads it too).
    g.addoption("--replicas", type=int, default=3, help="sample app replicas (default 3)")
    g.addoption("--sample-pdb", default="min-available=2",
                help="sample app PodDisruptionBudget: min-available=N | max-unavailable=N | none (default min-available=2)")
    g.addoption("--grace-seconds", type=int, default=15, help="sample app terminationGracePeriodSeconds (default 15)")
    g.addoption("--prestop-seconds", type=float, default=5.0,
                help="sample app preStop sleep (default 5: on a busy host kube-proxy took up to 2.7 s to drop a pod)")
    g.addoption("--bare-pod", action="store_true", help="also run one pod without a controller on every worker")
    g.addoption("--allow-force", action="store_true",
                help="allow kubectl drain --force: pods without a controller are deleted (and never come back)")
    g.addoption("--drain-timeout", type=int, default=120, help="kubectl drain --timeout in seconds (default 120)")
    g.addoption("--max-drain-seconds", type=float, default=120.0, help="a drain taking longer fails (default 120)")
    g.addoption("--maintenance-seconds", type=float, default=3.0,
                help="rolling drain: time 'working' on each drained node before uncordon (default 3)")
    g.addoption("--min-sigterm-margin", type=float, default=1.0,
                help="a pod must stop receiving traffic this long before SIGTERM (default 1 s)")
    g.addoption("--max-p99-ratio", type=float, default=None,
                help="fail if p99 latency during the drain exceeds this multiple of p99 before (default: report only)")
    g.addoption("--load-users", type=int, default=10, help="locust users (default 10)")
    g.addoption("--load-rate", type=float, default=50.0, help="total target requests/s (default 50)")
    g.addoption("--load-processes", type=int, default=1, help="locust processes (distributed mode when > 1)")
    g.addoption("--load-keepalive", action="store_true",
                help="reuse connections (default: a new connection per request, which exposes stale routing)")


@dataclass(frozen=True)
class DrainOptions:
    """The suite's options, read once (getoption with defaults also works when the suite's conftest
    was not an initial one, e.g. `pytest suites`)."""

    sample_mode: str
    replicas: int
    sample_pdb: str
    grace_seconds: int
    prestop_seconds: float
    bare_pod: bool
    allow_force: bool
    drain_timeout: int
    max_drain_seconds: float
    maintenance_seconds: float
    min_sigterm_margin: float
    max_p99_ratio: float | None
    load_users: int
    load_rate: float
    load_processes: int
    load_keepalive: bool

    @classmethod
    def from_config(cls, config: pytest.Config) -> "DrainOptions":
        defaults = {"sample_mode": "graceful", "replicas": 3, "sample_pdb": "min-available=2", "grace_seconds": 15,
                    "prestop_seconds": 5.0, "bare_pod": False, "allow_force": False, "drain_timeout": 120,
                    "max_drain_seconds": 120.0, "maintenance_seconds": 3.0, "min_sigterm_margin": 1.0,
                    "max_p99_ratio": None, "load_users": 10, "load_rate": 50.0, "load_processes": 1,
                    "load_keepalive": False}
        return cls(**{k: config.getoption(k, default=v) for k, v in defaults.items()})


@pytest.fixture(scope="session")
def drain_opts(pytestconfig: pytest.Config) -> DrainOptions:
    """The drain suite's options."""
    return DrainOptions.from_config(pytestconfig)


def workload_ids(config: pytest.Config) -> list[str]:
    if config.getoption("workload", default=None):
        return ["user-workload"]
    return [f"sample-{config.getoption('sample_mode', default='graceful')}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`workload/operation` IDs, e.g. sample-graceful/rolling-drain."""
    if "operation" in metafunc.fixturenames and "app" in metafunc.fixturenames:
        cases = [(w, op) for w in workload_ids(metafunc.config) for op in OPERATIONS]
        metafunc.parametrize(("app", "operation"), cases, ids=[f"{w}/{op}" for w, op in cases],
                             indirect=["app"], scope="module")


def with_pdb(spec: WorkloadSpec, pdb: str) -> WorkloadSpec:
    """The spec with its PodDisruptionBudget replaced: "none", "min-available=N", "max-unavailable=N"."""
    kind, _, value = pdb.partition("=")
    docs = [copy.deepcopy(d) for d in spec.documents if d["kind"] != "PodDisruptionBudget"]
    if kind == "none":
        return dataclasses.replace(spec, documents=tuple(docs))
    if kind not in ("min-available", "max-unavailable") or not value.isdigit():
        raise pytest.UsageError(f"--sample-pdb {pdb!r}: expected none, min-available=N or max-unavailable=N")
    field = "minAvailable" if kind == "min-available" else "maxUnavailable"
    docs.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                 "metadata": {"name": spec.name, "namespace": spec.namespace,
                              "labels": {"app.kubernetes.io/part-of": "kubedrill"}},
                 "spec": {field: int(value), "selector": {"matchLabels": dict(spec.selector)}}})
    return dataclasses.replace(spec, documents=tuple(docs))


def free_node_port(cluster: Cluster) -> int:
    """A host-mapped NodePort no Service uses yet (node ports are cluster-wide; a namespace deleted
    in the background may still hold the last one)."""
    used = {p.node_port for s in cluster.core().list_service_for_all_namespaces().items
            for p in (s.spec.ports or []) if p.node_port}
    free = [p for p in NODE_PORTS if p not in used and p in cluster.port_map]
    if not free:
        raise RuntimeError(f"all host-mapped NodePorts {NODE_PORTS} are taken ({sorted(used & set(NODE_PORTS))}); "
                           "delete leftover kd-* namespaces or wait for their deletion to finish")
    return free[0]


def _bare_pod(spec: WorkloadSpec, node: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"kd-bare-{node.rsplit('-', 1)[-1]}", "namespace": spec.namespace,
                         "labels": {"app.kubernetes.io/part-of": "kubedrill", "kubedrill.io/bare": "true"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "app", "image": image, "imagePullPolicy": "IfNotPresent"}]}}


@dataclass(frozen=True)
class DeployedApp:
    spec: WorkloadSpec
    bundled: bool  # the bundled sample app (judged strictly: zero failed requests when graceful)

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.spec.selector.items())


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, cluster: Cluster, drain_opts: DrainOptions) -> Iterator[DeployedApp]:
    """The workload under test, deployed once per module in its own namespace (deleted after)."""
    from fixtures.workload import ensure_images

    if cluster.provider != "kind":
        pytest.skip("the drain suite sends load to 127.0.0.1 through kind's NodePort mappings; attach a kind cluster")
    if len(cluster.workers) < 2:
        pytest.skip(f"draining needs two workers to move pods between; {cluster.name} has {cluster.workers}")
    port = free_node_port(cluster)
    user_spec = request.config.getoption("workload", default=None)
    if user_spec:
        from kubedrill.workload.spec import load_workload

        spec, bundled = load_workload(user_spec), False
        if spec.node_port not in NODE_PORTS:
            pytest.skip(f"workload {spec.name}: its Service needs nodePort in {NODE_PORTS} (host-mapped on kind)")
    else:
        from kubedrill.workload.sample import sample_workload

        image = request.getfixturevalue("sample_image")
        o = drain_opts
        spec = sample_workload(o.sample_mode, replicas=o.replicas, grace_seconds=o.grace_seconds,
                               prestop_seconds=o.prestop_seconds, image=image, node_port=port,
                               min_available=min(1, o.replicas))
        spec, bundled = with_pdb(spec, o.sample_pdb), True
    ns = apply.unique_namespace(f"drain-{request.param}")
    spec = spec.in_namespace(ns)
    ensure_images(cluster, spec)
    apply.create_namespace(cluster, ns)
    try:
        docs = render_manifests(spec)
        if drain_opts.bare_pod and bundled:
            docs += [_bare_pod(spec, w, spec.images[0]) for w in cluster.workers]
        apply.apply_docs(cluster, docs, ns)
        for doc in spec.documents:
            if doc["kind"] == "Deployment":
                apply.wait_deployment_available(cluster, ns, doc["metadata"]["name"], timeout=240)
        say(f"drain suite: {request.param} deployed in {ns} (NodePort {spec.node_port})")
        yield DeployedApp(spec, bundled)
    finally:
        if not request.config.getoption("keep_cluster"):
            # The Service first, synchronously: it frees the NodePort for the next deployment.
            if spec.service:
                cluster.kubectl("delete", "service", spec.service, "-n", ns, "--ignore-not-found", "--wait=true",
                                timeout=60, check=False)
            apply.delete_namespace(cluster, ns, wait=True)


@pytest.fixture(autouse=True)
def _no_node_left_cordoned(request: pytest.FixtureRequest) -> Iterator[None]:
    """Safety net behind every disruption's own heal: uncordon any worker still cordoned after a test."""
    yield
    if "cluster" not in request.fixturenames:
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    for n in cluster.core().list_node().items:
        if n.spec.unschedulable and n.metadata.name in cluster.workers:
            say(f"drain suite: {n.metadata.name} was left cordoned; uncordoning it")
            cluster.kubectl("uncordon", n.metadata.name, timeout=60, check=False)


@pytest.fixture
def load_dir(tmp_path: Path) -> Path:
    """Where locust writes its per-request logs (under the test's tmp dir, so meta-tests can find
    any locust process left behind by its working directory)."""
    return tmp_path / "load"
