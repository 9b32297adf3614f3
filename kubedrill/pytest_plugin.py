"""The kubedrill pytest plugin: options, markers, the per-test result collector and the reports.

Every run writes reports/latest/{junit.xml,results.json,report.html} (and a timestamped copy),
whatever the outcome, so a release gate always has something to read.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Generator

import pytest

from kubedrill.report.model import TestResult

RESULT_KEY = pytest.StashKey[TestResult]()
OUTCOME_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
SESSION_RESULTS = pytest.StashKey[list[TestResult]]()
SESSION_T0 = pytest.StashKey[float]()
SESSION_NOTES = pytest.StashKey[list[str]]()

MARKERS = {
    "disruptive": "changes cluster state (drain, kill, restore); refused on an existing cluster unless allowed",
    "conformance": "read-only or self-contained check; safe anywhere",
    "cluster(config)": "the kind cluster config a test needs: single, three-node or ha",
    "needs_docker": "needs a Docker engine",
    "slow": "takes minutes",
    "meta": "runs a suite against a deliberately broken case (the project's own tests)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill")
    g.addoption("--kd-config", default=os.environ.get("KUBEDRILL_CONFIG"), help="kubedrill run config (YAML)")
    g.addoption("--cluster-config", default=None, help="kind cluster config name: single | three-node | ha")
    g.addoption("--k8s-version", default=None, help="Kubernetes version of the kind node image (default: clusters/versions.env)")
    g.addoption("--node-image", default=None, help="kind node image to use (default: upstream if pullable, else the local offline build)")
    g.addoption("--kubeconfig", default=None, help="use an existing cluster instead of creating a kind cluster")
    g.addoption("--context", default=None, help="kubeconfig context of the existing cluster")
    g.addoption("--allow-disruptive-on", default=None, help="name the existing context on which disruptive suites may run")
    g.addoption("--keep-cluster", action="store_true", help="do not delete kind clusters at the end (debugging)")
    g.addoption("--workload", default=None, help="workload spec (YAML) to test instead of the bundled sample app")
    g.addoption("--reports-dir", default=os.environ.get("KUBEDRILL_REPORTS", "reports"), help="where reports/latest goes")
    g.addoption("--no-kd-reports", action="store_true", help="do not write reports/ (used by the project's meta-tests)")


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    config.stash[SESSION_RESULTS] = []
    config.stash[SESSION_T0] = time.time()
    config.stash[SESSION_NOTES] = []
    if not config.getoption("no_kd_reports") and not hasattr(config, "workerinput"):
        latest = Path(config.getoption("reports_dir")) / "latest"
        if latest.exists():
            shutil.rmtree(latest, ignore_errors=True)
        latest.mkdir(parents=True, exist_ok=True)
        if not config.option.xmlpath:
            config.option.xmlpath = str(latest / "junit.xml")


def _suite_of(item: pytest.Item) -> str:
    parts = Path(str(item.path)).parts
    if "suites" in parts:
        i = parts.index("suites")
        if i + 1 < len(parts) - 1:
            return parts[i + 1]
    return Path(str(item.path)).stem


@pytest.fixture
def kd_report(request: pytest.FixtureRequest) -> TestResult:
    """The current test's result collector: `kd_report.add(verdict)`, `kd_report.figure(...)`."""
    return request.node.stash[RESULT_KEY]


def add_session_note(config: pytest.Config, note: str) -> None:
    """A line for the report's header, e.g. why cluster creation failed."""
    config.stash[SESSION_NOTES].append(note)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if RESULT_KEY not in item.stash:
        item.stash[RESULT_KEY] = TestResult(
            nodeid=item.nodeid, suite=_suite_of(item), markers=sorted({m.name for m in item.iter_markers()})
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, pytest.TestReport]:
    rep: pytest.TestReport = yield
    item.stash.setdefault(OUTCOME_KEY, {})[rep.when] = rep
    return rep


def test_failed(node: pytest.Item) -> bool:
    """True if setup or call of this test failed (used by fixtures that keep artifacts on failure)."""
    reps = node.stash.get(OUTCOME_KEY, {})
    return any(r.failed for r in reps.values())


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:  # noqa: ARG001
    pass


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    yield
    result = item.stash.get(RESULT_KEY, None) or TestResult(nodeid=item.nodeid, suite=_suite_of(item))
    reps = item.stash.get(OUTCOME_KEY, {})
    outcome = "passed"
    longrepr = ""
    duration = 0.0
    for when in ("setup", "call", "teardown"):
        rep = reps.get(when)
        if rep is None:
            continue
        duration += rep.duration
        if rep.skipped and outcome == "passed":
            outcome = "skipped"
            longrepr = str(rep.longrepr[-1]) if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        elif rep.failed:
            outcome = "failed" if when == "call" else "error"
            longrepr = str(rep.longrepr)
    result.outcome = outcome
    result.longrepr = longrepr
    result.duration_s = duration
    item.config.stash[SESSION_RESULTS].append(result)
    if hasattr(item.config, "workerinput"):
        # Ship the result to the xdist controller, which writes the reports.
        item.config.workeroutput.setdefault("kd_results", []).append(result.to_dict())  # type: ignore[attr-defined]


def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect results that a worker shipped."""
    from kubedrill.report.writer import result_from_dict

    for d in getattr(node, "workeroutput", {}).get("kd_results", []):
        node.config.stash[SESSION_RESULTS].append(result_from_dict(d))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.getoption("no_kd_reports") or hasattr(config, "workerinput"):
        return
    from kubedrill.report.writer import write_reports

    write_reports(
        results=config.stash[SESSION_RESULTS],
        outdir=Path(config.getoption("reports_dir")),
        started=config.stash[SESSION_T0],
        exitstatus=int(exitstatus),
        notes=config.stash[SESSION_NOTES],
        argv=list(config.invocation_params.args),
    )
