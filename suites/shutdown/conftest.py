"""Shutdown suite wiring: which workloads, which termination causes, and their lifetimes.

Workloads: those of the run config / `--workload FILE` (WorkloadSpec YAML), else the bundled
sample app in `--sample-mode` (graceful by default; `all` for every mode). Causes: pod delete,
eviction and rollout restart: every pod termination disruption in the registry
(kubedrill.disrupt.pod). Test IDs are built from parts: `sample-graceful/delete`. The drill itself
is kubedrill.scenarios.shutdown.

One workload is deployed at a time and reused by its causes (tests are ordered workload-major),
because node ports are cluster-wide and only 30080-30082 reach the host on kind. Traffic takes the
path kubedrill.load.path chooses: those host ports on a kind cluster that maps them, else locust
pods in the cluster (provider generic, a plain `kind create cluster`; --load-workers, --load-image).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from fixtures.workload import keep_namespaces, spec_path
from kubedrill.check.shutdown import ShutdownThresholds
from kubedrill.cluster.handle import Cluster
from kubedrill.config import RunConfig
from kubedrill.disrupt.pod import termination_causes
from kubedrill.pytest_plugin import KD_CONFIG
from kubedrill.scenarios.shutdown import LoadOptions, Target, TargetPool
from kubedrill.workload.sample import SAMPLE_MODES
from kubedrill.workload.spec import WorkloadSpecError, load_workload


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill shutdown suite")
    # --sample-mode is a shared option of the kubedrill plugin (the drain suite reads it too).
    g.addoption("--sample-grace", type=int, default=15,
                help="the sample app's terminationGracePeriodSeconds (default 15)")
    g.addoption("--shutdown-lb-lag", type=float, default=1.0,
                help="seconds the lagging router in front of the Service learns endpoint changes late, like an "
                     "ingress or cloud load balancer; half the traffic goes through it (0: none; default 1)")


def _opt(config: pytest.Config, name: str, default: object) -> object:
    """Options of this conftest exist only when pytest loaded it at startup (`pytest suites/shutdown`)."""
    return config.getoption(name, default=default)


def _sample_modes(config: pytest.Config) -> list[str]:
    raw = str(_opt(config, "sample_mode", "graceful"))
    modes = list(SAMPLE_MODES) if raw == "all" else [m.strip() for m in raw.split(",") if m.strip()]
    bad = [m for m in modes if m not in SAMPLE_MODES]
    if bad or not modes:
        raise pytest.UsageError(f"--sample-mode {raw!r}: {', '.join(bad) or 'nothing'} is not a sample app mode; "
                                f"use one or more of {', '.join(SAMPLE_MODES)} (comma-separated) or 'all'")
    return modes


def collect_targets(config: pytest.Config) -> list[Target]:
    """The run's workloads as drill targets; a spec that does not load stops the run before any cluster."""
    rc: RunConfig = config.stash[KD_CONFIG]
    if not rc.workloads:
        grace = int(str(_opt(config, "sample_grace", 15)))
        return [Target(f"sample-{m}", sample_mode=m, sample_grace=grace) for m in _sample_modes(config)]
    targets: list[Target] = []
    for w in rc.workloads:
        if w.spec is None:
            targets.append(Target(w.name, config_name=w.name, unsupported=(
                f"workload {w.name!r} is given inline (manifests:); the shutdown suite needs a workload spec file "
                "(spec: my-app.yaml, see suites/shutdown/example-workload.yaml)")))
            continue
        try:
            spec = load_workload(spec_path(rc, w.spec))
        except WorkloadSpecError as exc:
            raise pytest.UsageError(f"workload {w.name!r}: {exc}") from None
        tid = spec.name if all(t.id != spec.name for t in targets) else f"{spec.name}-{w.name}"
        targets.append(Target(tid, spec=spec, config_name=w.name))
    return targets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    cases = [(t, cause) for t in collect_targets(metafunc.config) for cause in termination_causes()]
    metafunc.parametrize("case", cases, ids=[f"{t.id}/{c}" for t, c in cases])


@pytest.fixture(scope="module")
def shutdown_pool(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[TargetPool]:
    """Deploys the drilled workload (one at a time) and tears it down when the next is needed."""
    rc: RunConfig = request.config.stash[KD_CONFIG]
    pool = TargetPool(cluster, sample_image=lambda: str(request.getfixturevalue("sample_image")),
                      keep_namespaces=keep_namespaces(request.config),
                      lb_lag_s=float(str(_opt(request.config, "shutdown_lb_lag", 1.0))),
                      load=LoadOptions(workers=rc.load.workers, image=rc.load.image))
    try:
        yield pool
    finally:
        pool.release()


@pytest.fixture
def thresholds(case: tuple[Target, str], kd_config: RunConfig) -> ShutdownThresholds:
    """Strict defaults (zero failed requests, exit within 80% of grace) from the run config's SLO,
    per workload when it overrides them (`--kd-set slo.grace_budget_ratio=0.9` etc.)."""
    target, _ = case
    slo = kd_config.slo_for(target.config_name)
    return target.thresholds(slo.grace_budget_ratio, slo.max_failed_requests)
