"""Upgrade suite wiring: versions, a cluster at the source version, the workloads, the target release,
and the rehearsal itself (kubedrill.scenarios.upgrade), run once per module and judged once.

The workloads are every workload of the run config (`--workload FILE` is one), else the graceful
sample app and nginx-correct from apps/thirdparty (scenarios.upgrade.default_workloads). An
upgrade is one event for all of them: they are deployed together, each on a host-mapped NodePort
of its own (kind configs map three), and each is judged on its own.

Options (also as environment variables, for `kubedrill run` and CI):
  --upgrade-from  KUBEDRILL_UPGRADE_FROM   default K8S_UPGRADE_FROM in clusters/versions.env
  --upgrade-to    KUBEDRILL_UPGRADE_TO     default K8S_VERSION
  --upgrade-config KUBEDRILL_UPGRADE_CONFIG three-node (default) | ha (slower, opt-in)
  --upgrade-order KUBEDRILL_UPGRADE_ORDER  control-plane-first (default) | workers-first (the mistake,
                                            for meta-tests: the suite must fail it on version skew)
KUBEDRILL_DEFER_UPGRADE=1 skips the suite with a loud reason (CI with cold caches: building the
source version's node image takes ~20 minutes on 2 cores).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Iterator

import pytest

from fixtures.cluster import VersionedClusters, skip_without_node_access
from kubedrill.check.verdict import Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.paths import versions
from kubedrill.cluster.progress import say
from kubedrill.config import RunConfig
from kubedrill.disrupt.upgrade import ORDERS, Release, ReleaseMissing
from kubedrill.record.versions import UpgradeRefused, check_upgrade_path
from kubedrill.scenarios.upgrade import (
    RehearsalRecord,
    Settings,
    default_workloads,
    judge,
    prepare_release,
    run_upgrade_rehearsal,
)
from kubedrill.workload.deploy import Deployed
from kubedrill.workload.spec import WorkloadSpec

HERE = os.path.dirname(__file__)
CONFIGS = ("three-node", "ha")
DEFER_ENV = "KUBEDRILL_DEFER_UPGRADE"


@contextlib.contextmanager
def live_progress(config: pytest.Config) -> Iterator[None]:
    """Let progress lines (kubedrill.cluster.progress.say) reach the terminal while a long step runs.

    Why: pytest's default fd-level capture also swallows writes to the original stderr, so a
    20-minute image build or a 10-minute rehearsal would look hung until it ends.
    """
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill upgrade")
    g.addoption("--upgrade-from", default=None, help="Kubernetes version the cluster starts at (default K8S_UPGRADE_FROM)")
    g.addoption("--upgrade-to", default=None, help="Kubernetes version to upgrade to (default K8S_VERSION)")
    g.addoption("--upgrade-config", default=None, choices=CONFIGS, help="three-node (default) or ha (slower, opt-in)")
    g.addoption("--upgrade-order", default=None, choices=ORDERS,
                help="control-plane-first (default); workers-first rehearses the mistake the suite must catch")


def _opt(config: pytest.Config, name: str, env: str, default: str) -> str:
    try:
        value = config.getoption(name)
    except ValueError:  # option not registered: this conftest was not an initial one
        value = None
    return str(value or os.environ.get(env) or default)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(DEFER_ENV, "") in ("", "0"):
        return
    why = os.environ[DEFER_ENV]
    why = "" if why in ("1", "true", "yes") else f" ({why})"  # CI puts its reason in the variable
    reason = (f"UPGRADE SUITE DEFERRED by {DEFER_ENV}{why}: the upgrade rehearsal needs node images of two "
              f"Kubernetes versions; build them with `python -m kubedrill build --with-upgrade-source` "
              f"(~20 min cold on 2 cores), then unset {DEFER_ENV}")
    mine = [i for i in items if str(i.path).startswith(HERE)]
    if mine:
        say(reason)
        from kubedrill.pytest_plugin import add_session_note

        add_session_note(config, reason)
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=reason))


@dataclass(frozen=True)
class UpgradeSetup:
    source: str
    target: str
    config: str
    order: str


UPGRADE_NEEDS = "the upgrade rehearsal (it replaces node binaries)"


@pytest.fixture(scope="session")
def upgrade_setup(pytestconfig: pytest.Config) -> UpgradeSetup:
    """What to rehearse; an upgrade kubeadm would refuse (two minors at once) fails here, before any cluster."""
    skip_without_node_access(pytestconfig, UPGRADE_NEEDS)
    pinned = versions()
    setup = UpgradeSetup(
        source=_opt(pytestconfig, "upgrade_from", "KUBEDRILL_UPGRADE_FROM", pinned["K8S_UPGRADE_FROM"]),
        target=_opt(pytestconfig, "upgrade_to", "KUBEDRILL_UPGRADE_TO", pinned["K8S_VERSION"]),
        config=_opt(pytestconfig, "upgrade_config", "KUBEDRILL_UPGRADE_CONFIG", "three-node"),
        order=_opt(pytestconfig, "upgrade_order", "KUBEDRILL_UPGRADE_ORDER", "control-plane-first"),
    )
    if setup.config not in CONFIGS or setup.order not in ORDERS:
        raise pytest.UsageError(f"--upgrade-config must be one of {CONFIGS}, --upgrade-order one of {ORDERS}; got "
                                f"{setup.config!r}, {setup.order!r}")
    refused = ""
    try:
        check_upgrade_path(setup.source, setup.target, setup.target)
    except UpgradeRefused as exc:
        refused = str(exc)
    if refused:  # failed outside the except block, so the report shows one clear message, not a chain
        pytest.fail(f"{refused} (refused before creating any cluster, as `kubeadm upgrade apply {setup.target}` would "
                    f"refuse it on a {setup.source} cluster)", pytrace=False)
    return setup


@pytest.fixture(scope="session")
def target_release(pytestconfig: pytest.Config, upgrade_setup: UpgradeSetup) -> Release:
    """The target version's binaries and image tarballs from the offline cache (built if missing, with progress)."""
    from kubedrill.cluster.setup import SetupError

    problem = ""
    try:
        with live_progress(pytestconfig):
            return prepare_release(upgrade_setup.target)
    except (SetupError, ReleaseMissing) as exc:
        problem = str(exc)
    pytest.fail(f"the target release {upgrade_setup.target} could not be prepared: {problem}", pytrace=False)


@pytest.fixture(scope="module")
def upgrade_cluster(pytestconfig: pytest.Config, upgrade_setup: UpgradeSetup, existing_cluster: Cluster | None,
                    versioned_cluster_factory: VersionedClusters) -> Iterator[Cluster]:
    """A cluster at the source version: a fresh kind cluster, or the kind cluster given by --kubeconfig/--context.

    Module-scoped: the rehearsal leaves its cluster at the target version, useless to anyone after,
    so a cluster kubedrill created is deleted as soon as the module ends (--keep-cluster keeps it).
    """
    if existing_cluster is not None:
        skip_without_node_access(pytestconfig, UPGRADE_NEEDS, existing_cluster)
        if existing_cluster.k8s_version != upgrade_setup.source:
            pytest.fail(f"the attached cluster runs {existing_cluster.k8s_version}; the rehearsal starts from "
                        f"{upgrade_setup.source}. Attach a cluster at {upgrade_setup.source} or let the suite create one",
                        pytrace=False)
        if not existing_cluster.disruptive_allowed:
            pytest.skip(f"the upgrade rehearsal changes the cluster; pass --allow-disruptive-on {existing_cluster.context}")
        yield existing_cluster
        return
    with live_progress(pytestconfig):  # a cold cache builds the source node image here (~20 min)
        cluster = versioned_cluster_factory(upgrade_setup.config, upgrade_setup.source, "upgrade-suite")
    yield cluster
    versioned_cluster_factory.discard(cluster)


@pytest.fixture(scope="module")
def upgrade_workloads(request: pytest.FixtureRequest, upgrade_cluster: Cluster) -> Iterator[list[Deployed]]:
    """The workloads kept available through the upgrade, deployed together (every workload of the
    run config, else the graceful sample app and nginx-correct), each on a free host-mapped
    NodePort; all removed after."""
    from fixtures.workload import config_workloads, keep_namespaces
    from kubedrill.workload.deploy import deployed

    configured = config_workloads(request.config)
    specs: list[WorkloadSpec] = [dataclasses.replace(c.spec, name=c.id) for c in configured]  # the id names checks
    problem = ""
    if not specs:
        try:
            specs = default_workloads(str(request.getfixturevalue("sample_image")))
        except RuntimeError as exc:  # an image could not be built
            problem = str(exc)
    if problem:  # failed outside the except block: one clear message, not a chain
        pytest.fail(f"the default upgrade workloads could not be prepared: {problem}", pytrace=False)
    mapped = sorted(upgrade_cluster.port_map)
    if len(specs) > len(mapped):
        pytest.fail(f"the run config names {len(specs)} workloads ({', '.join(s.name for s in specs)}), but cluster "
                    f"{upgrade_cluster.name} maps {len(mapped)} node port(s) to 127.0.0.1 "
                    f"({', '.join(map(str, mapped)) or 'none'}): the upgrade rehearsal sends each workload's load "
                    f"through a NodePort of its own, so it rehearses at most {len(mapped)} workloads at once; split "
                    "the run config's workloads over several runs", pytrace=False)
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(deployed(upgrade_cluster, spec, purpose=f"upgrade-{spec.name}", expose_service=True,
                                            keep=keep_namespaces(request.config), wait_deleted=False, timeout=300))
               for spec in specs]


@pytest.fixture(scope="module")
def rehearsal(pytestconfig: pytest.Config, upgrade_cluster: Cluster, upgrade_setup: UpgradeSetup,
              target_release: Release, upgrade_workloads: list[Deployed], kd_config: RunConfig) -> RehearsalRecord:
    """The whole upgrade with every workload under load, run once and recorded; the tests only judge the record."""
    slo = kd_config.slo
    settings = Settings(upgrade_setup.source, upgrade_setup.target, upgrade_setup.order,  # type: ignore[arg-type]
                        slo=slo.availability, max_failed_requests=slo.max_failed_requests, min_rate=slo.min_load_rps)
    from fixtures.workload import keep_namespaces

    with live_progress(pytestconfig):
        return run_upgrade_rehearsal(upgrade_cluster, target_release, upgrade_workloads, settings,
                                     keep_data=keep_namespaces(pytestconfig))


@pytest.fixture(scope="module")
def verdicts(rehearsal: RehearsalRecord) -> dict[str, Verdict]:
    """Every verdict of the rehearsal, by check name (kubedrill.scenarios.upgrade.judge)."""
    return {v.check: v for v in judge(rehearsal)}
