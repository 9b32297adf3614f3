"""Drain suite wiring: options, the workloads under test (every workload of the run config, else
the bundled sample app; one deployment per module and workload, through the one deploy path), and
a safety net that leaves no node cordoned. The drill itself is
kubedrill.scenarios.drain; the operations are the node operations of the disruption registry
(kubedrill.disrupt.node).

Options select the workload variant, so the same scenario can be run against broken cases:
`--sample-mode no-prestop`, `--replicas 1 --sample-pdb none`, `--sample-pdb max-unavailable=0`.
Load options (`--load-users`, `--load-rate`, `--load-processes`) size the locust run; see
suites/drain/README.md for distributed mode on big clusters. Where no host port reaches the
Service (provider generic, a kind cluster without port mappings), the load runs as locust pods in
the cluster (kubedrill.load.path; `--load-workers`, `--load-image`). Operations that need a shell
on nodes (reboot) skip on a provider that gives none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from fixtures.cluster import skip_without_node_access
from fixtures.workload import config_workloads, keep_namespaces
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.progress import say
from kubedrill.config import RunConfig
from kubedrill.disrupt.node import node_operations
from kubedrill.load.path import choose
from kubedrill.pytest_plugin import KD_CONFIG
from kubedrill.scenarios.drain import (
    LoadPlan,
    MaintenanceExpectations,
    MaintenanceSettings,
    bare_pod,
    maintenance_sample,
    no_room_for_load,
    unavailable,
)
from kubedrill.workload.deploy import Deployed, deployed
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError


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
    load_workers: int = 1  # in-cluster load pods: the run config's load.workers (--load-workers)
    load_image: str | None = None  # and load.image (--load-image)

    @classmethod
    def from_config(cls, config: pytest.Config) -> "DrainOptions":
        defaults: dict[str, Any] = {
            "sample_mode": "graceful", "replicas": 3, "sample_pdb": "min-available=2", "grace_seconds": 15,
            "prestop_seconds": 5.0, "bare_pod": False, "allow_force": False, "drain_timeout": 120,
            "max_drain_seconds": 120.0, "maintenance_seconds": 3.0, "min_sigterm_margin": 1.0,
            "max_p99_ratio": None, "load_users": 10, "load_rate": 50.0, "load_processes": 1,
            "load_keepalive": False}
        rc: RunConfig = config.stash[KD_CONFIG]
        return cls(**{k: config.getoption(k, default=v) for k, v in defaults.items()},
                   load_workers=rc.load.workers, load_image=rc.load.image)

    @property
    def settings(self) -> MaintenanceSettings:
        return MaintenanceSettings(drain_timeout_s=self.drain_timeout, allow_force=self.allow_force,
                                   maintenance_s=self.maintenance_seconds)

    @property
    def load(self) -> LoadPlan:
        return LoadPlan(users=self.load_users, rate=self.load_rate, processes=self.load_processes,
                        keep_alive=self.load_keepalive, workers=self.load_workers, image=self.load_image)


@pytest.fixture(scope="session")
def drain_opts(pytestconfig: pytest.Config) -> DrainOptions:
    """The drain suite's options."""
    return DrainOptions.from_config(pytestconfig)


@dataclass(frozen=True)
class DrainTarget:
    """A workload the suite drills, named `id` in test IDs: a spec of the run config (`--workload`
    is one), or the bundled sample app when the config names none."""

    id: str
    spec: WorkloadSpec | None = None  # None: the bundled sample app, built from the suite's options
    config_name: str | None = None  # the run config's workload name (its SLO overrides)

    @property
    def bundled(self) -> bool:
        return self.spec is None


def drain_targets(config: pytest.Config) -> list[DrainTarget]:
    """Every workload of the run config, in its order; a spec that does not load stops the run
    before any cluster is made."""
    rc: RunConfig = config.stash[KD_CONFIG]
    if not rc.workloads:
        return [DrainTarget(f"sample-{config.getoption('sample_mode', default='graceful')}")]
    return [DrainTarget(w.id, w.spec, w.config_name) for w in config_workloads(config)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`workload/operation` IDs, e.g. sample-graceful/rolling-drain; operations from the registry."""
    if "operation" in metafunc.fixturenames and "app" in metafunc.fixturenames:
        cases = [(t, op) for t in drain_targets(metafunc.config) for op in node_operations()]
        metafunc.parametrize(("app", "operation"), cases, ids=[f"{t.id}/{op}" for t, op in cases],
                             indirect=["app"], scope="module")


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, cluster: Cluster, drain_opts: DrainOptions) -> Iterator[Deployed]:
    """The workload under test, deployed once per module in its own namespace (removed after) and,
    where the load comes from this runner, exposed on a host-mapped NodePort."""
    if len(cluster.workers) < 2:
        pytest.skip(f"draining needs two workers to move pods between; {cluster.name} has {cluster.workers}")
    target: DrainTarget = request.param
    extra: list[dict[str, Any]] = []
    if target.spec is not None:
        spec = target.spec
    else:
        o = drain_opts
        try:
            spec = maintenance_sample(str(request.getfixturevalue("sample_image")), o.sample_mode, replicas=o.replicas,
                                      pdb=o.sample_pdb, grace_seconds=o.grace_seconds,
                                      prestop_seconds=o.prestop_seconds)
        except WorkloadSpecError as exc:
            raise pytest.UsageError(f"drain suite options: {exc}") from exc
        if o.bare_pod:
            extra = [bare_pod(w, spec.images[0]) for w in cluster.workers]
    with deployed(cluster, spec, purpose=f"drain-{target.id}", expose_service=not choose(cluster).in_cluster,
                  extra_docs=extra, keep=keep_namespaces(request.config)) as d:
        if d.kind not in ("Deployment", "StatefulSet"):
            pytest.skip(f"workload {target.id} is a {d.kind}: kubectl drain leaves DaemonSet pods in place "
                        "(--ignore-daemonsets), so the drain suite judges Deployments and StatefulSets")
        yield d


@pytest.fixture
def target(request: pytest.FixtureRequest, app: Deployed) -> DrainTarget:
    """The drilled workload's target (the `app` fixture's parameter)."""
    param: DrainTarget = request.node.callspec.params["app"]
    return param


@pytest.fixture
def expectations(target: DrainTarget, drain_opts: DrainOptions, kd_config: RunConfig) -> MaintenanceExpectations:
    """The bundled sample app must lose no request (SLO 1.0, no failed request); a user workload is
    held to its SLO in the run config (availability and max_failed_requests, its own or the global)."""
    o = drain_opts
    slo = kd_config.slo_for(target.config_name)
    return MaintenanceExpectations(
        slo=1.0 if target.bundled else slo.availability,
        max_failed_requests=0 if target.bundled else slo.max_failed_requests,
        min_load_rps=slo.min_load_rps, max_p99_ratio=o.max_p99_ratio, max_drain_s=o.max_drain_seconds,
        min_sigterm_margin_s=o.min_sigterm_margin)


@pytest.fixture(autouse=True)
def _operation_runs_here(request: pytest.FixtureRequest) -> None:
    """Skip an operation that cannot run on this cluster for want of what the provider gives: a
    shell on nodes (reboot), or, for in-cluster load, a worker the operation leaves alone."""
    callspec = getattr(request.node, "callspec", None)
    operation = callspec.params.get("operation") if callspec is not None else None
    if operation is None:
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    why = unavailable(cluster, operation)
    if why is not None:  # skipped only where node access is missing: elsewhere the drill says UNKNOWN
        skip_without_node_access(request.config, f"{operation} ({why})", cluster)
    room = no_room_for_load(cluster, operation)
    if room is not None:
        pytest.skip(room)


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
    """Where locust writes its per-request logs (under the test's tmp dir, so a leftover locust
    process can be found by its working directory)."""
    return tmp_path / "load"
