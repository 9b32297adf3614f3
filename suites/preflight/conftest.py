"""Preflight suite wiring: which manifests, which target versions, and one preflight pass per session.

The pass starts one real kube-apiserver (+ etcd) per version, one after the other, and is shared by
every test of the session (`preflight_report`). Inputs: `--preflight-manifests PATH` (repeatable),
else the bundled sample app's rendered manifests. The labelled set (cases/ + expected-findings.yaml)
is always run by test_labelled.py: it is how the suite proves it finds what it claims to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from kubedrill.check import preflight as P
from kubedrill.cluster.paths import default_k8s_version
from kubedrill.preflight import PreflightError
from kubedrill.preflight.apiserver import preflight_targets
from kubedrill.preflight.run import Report, preflight
from kubedrill.pytest_plugin import add_run_meta, add_session_note

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
EXPECTED = HERE / "expected-findings.yaml"
REPO = HERE.parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill preflight suite")
    g.addoption("--preflight-manifests", action="append", default=[], metavar="PATH",
                help="manifest file or directory to preflight (repeatable; default: the bundled sample app)")
    g.addoption("--preflight-target", action="append", default=[], metavar="VERSION",
                help="target Kubernetes version (repeatable; default PREFLIGHT_TARGETS in clusters/versions.env)")
    g.addoption("--preflight-current", default=None,
                help="the version the cluster runs now, asked as the control (default K8S_VERSION)")
    g.addoption("--preflight-fail-on", default=P.ERROR, choices=(P.ERROR, P.WARNING),
                help="lowest finding severity that fails a test (default error; warnings are reported)")


@dataclass(frozen=True)
class PreflightOptions:
    manifests: tuple[str, ...]
    targets: tuple[str, ...]
    current: str
    fail_on: str


def _opt(config: pytest.Config, name: str, default: object) -> object:
    try:
        return config.getoption(name)
    except ValueError:  # the suite's conftest was not an initial one (e.g. `pytest suites`)
        return default


@pytest.fixture(scope="session")
def preflight_options(pytestconfig: pytest.Config) -> PreflightOptions:
    targets = tuple(_opt(pytestconfig, "preflight_target", []) or preflight_targets())  # type: ignore[arg-type]
    current = str(_opt(pytestconfig, "preflight_current", None) or default_k8s_version())
    add_run_meta(pytestconfig, "preflight_targets", ",".join(targets))
    add_run_meta(pytestconfig, "preflight_current", current)
    return PreflightOptions(tuple(_opt(pytestconfig, "preflight_manifests", []) or ()),  # type: ignore[arg-type]
                            targets, current, str(_opt(pytestconfig, "preflight_fail_on", P.ERROR)))


def sample_manifests() -> list[P.Manifest]:
    """The bundled sample app (Deployment, Service, PDB) as the gate runs it, rendered."""
    from kubedrill.workload.sample import sample_workload

    spec = sample_workload()
    out = []
    for doc in spec.documents:
        meta = doc.get("metadata") or {}
        ref = P.ObjectRef(doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta.get("name", ""),
                          f"apps/sample/manifests/{doc['kind'].lower()} (rendered)")
        out.append(P.Manifest(ref, doc))
    return out


class Passes:
    """Preflight passes cached per input set for the session (each costs one API server per version)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.done: dict[str, Report | PreflightError] = {}

    def get(self, key: str, make: Callable[[], Report]) -> Report:
        if key not in self.done:
            try:
                self.done[key] = make()
            except PreflightError as exc:
                add_session_note(self.config, f"preflight of {key} failed: {str(exc)[:500]}")
                self.done[key] = exc
        got = self.done[key]
        if isinstance(got, PreflightError):
            pytest.fail(f"preflight could not run: {got}", pytrace=False)
        return got


@pytest.fixture(scope="session")
def preflight_passes(pytestconfig: pytest.Config) -> Iterator[Passes]:
    from kubedrill.cluster import kind

    kind.install_sigterm_handler()  # SIGTERM -> KeyboardInterrupt, so the API servers are stopped
    yield Passes(pytestconfig)


@pytest.fixture(scope="session")
def labelled_report(preflight_passes: Passes, preflight_options: PreflightOptions) -> Report:
    o = preflight_options
    return preflight_passes.get("the labelled set", lambda: preflight([CASES], o.targets, o.current, base=REPO))


@pytest.fixture(scope="session")
def preflight_report(preflight_passes: Passes, preflight_options: PreflightOptions,
                     request: pytest.FixtureRequest) -> Report:
    """The workload's manifests (files, else the sample app), plus, with --kubeconfig, the live
    cluster's workloads, PDBs, Services and CRDs (listed read-only)."""
    o = preflight_options
    live_objs: list[P.Manifest] = []
    if request.config.getoption("kubeconfig"):
        from kubedrill.preflight.live import list_objects

        live_objs = list_objects(request.getfixturevalue("existing_cluster"))
    if o.manifests:
        from kubedrill.preflight.inputs import read_manifests

        key = ", ".join(o.manifests) + (" + the live cluster" if live_objs else "")
        return preflight_passes.get(key, lambda: preflight([*read_manifests(list(o.manifests), base=Path.cwd()),
                                                            *live_objs], o.targets, o.current))
    return preflight_passes.get("the sample app" + (" + the live cluster" if live_objs else ""),
                                lambda: preflight([*sample_manifests(), *live_objs], o.targets, o.current))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking `target` run once per target version."""
    if "target" in metafunc.fixturenames:
        targets = _opt(metafunc.config, "preflight_target", []) or preflight_targets()
        metafunc.parametrize("target", list(targets))  # type: ignore[call-overload]
