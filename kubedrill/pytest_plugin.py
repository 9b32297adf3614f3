"""The kubedrill pytest plugin: options, markers, the per-test result collector and the reports.

Every run writes reports/latest/{junit.xml,results.json,report.html} (and a timestamped copy),
whatever the outcome, so a release gate always has something to read.

For fixtures and suites: `kd_report` (the test's result), `kd_config` (the validated RunConfig),
`kd_artifacts` (a folder kept and linked from the report only if the test fails),
`add_session_note(config, note)` (a line in the report header, e.g. why the cluster is missing) and
`add_run_meta(config, key, value)` (run metadata; keys ending in `_version` are component versions).
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Generator

import pytest

from kubedrill.cluster.progress import keep_terminal
from kubedrill.config import DISRUPTIVE_SUITES, ConfigError, RunConfig, suite_dir
from kubedrill.options import OPTIONS, add_to_pytest, run_config
from kubedrill.check.verdict import Verdict
from kubedrill.disrupt.base import Inconclusive
from kubedrill.report.model import TestResult

RESULT_KEY = pytest.StashKey[TestResult]()
OUTCOME_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
SESSION_RESULTS = pytest.StashKey[list[TestResult]]()
SESSION_T0 = pytest.StashKey[float]()
SESSION_NOTES = pytest.StashKey[list[str]]()
SESSION_META = pytest.StashKey[dict[str, Any]]()
SESSION_FAILED = pytest.StashKey[set[str]]()  # node ids pytest saw fail, to find any without a result
KD_CONFIG = pytest.StashKey[RunConfig]()
OLD_SIGTERM = pytest.StashKey[Any]()

MARKERS = {
    "disruptive": "changes the Kubernetes cluster it runs on; on an attached cluster only with --allow-disruptive-on "
                  "(every test of a suite in kubedrill.config.DISRUPTIVE_SUITES carries it)",
    "conformance": "read-only or self-contained check; safe anywhere",
    "cluster(config)": "the kind cluster config a test needs: single, three-node or ha",
    "needs_docker": "needs a Docker engine",
    "slow": "takes minutes",
    "meta": "runs a suite against a deliberately broken case (the project's own tests)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill")
    add_to_pytest(g)  # the options that set config fields, shared with `kubedrill run`
    g.addoption("--sample-mode", default="graceful",
                help="the bundled sample app's SHUTDOWN_MODE when no --workload is given: graceful, ignores-sigterm, "
                     "slow-exit, abrupt, exit-nonzero, no-prestop (the shutdown suite also takes a comma list or 'all')")
    g.addoption("--no-kd-reports", action="store_true", help="do not write reports/ (used by the project's meta-tests)")
    g.addoption("--kd-progress", action="store_true",
                help="print a timestamped line when each test starts and ends (kubedrill run sets it)")


def _load_run_config(config: pytest.Config) -> RunConfig:
    """The config file merged with command-line options; a bad config stops the run before any cluster."""
    try:
        return run_config(vars(config.option))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc


def _fill_options_from_config(config: pytest.Config, rc: RunConfig) -> None:
    """Options left unset take the config's values, so fixtures that read options (cluster,
    workload, reports dir) follow the file; an option given on the command line always wins.

    Only fields the file (or an environment variable) set are filled: an unset option keeps
    meaning "the fixture's default". The reports dir is always filled, since every reader needs one.
    """
    for o in OPTIONS:
        if not o.in_pytest or o.key is None or config.getoption(o.dest) not in (None, False):
            continue
        if o.key == "workloads":
            if "workloads" in rc.explicit and len(rc.workloads) == 1 and rc.workloads[0].spec:
                setattr(config.option, o.dest, rc.workloads[0].spec)
        elif o.key in rc.explicit or o.key == "reports_dir":
            section, _, name = o.key.rpartition(".")
            setattr(config.option, o.dest, getattr(getattr(rc, section) if section else rc, name))


def _enable_pytest_html(config: pytest.Config, latest: Path) -> None:
    """pytest-html's own page next to ours (secondary: report.html is the gate's report)."""
    if config.pluginmanager.hasplugin("html") and hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(latest / "pytest-html.html")
        config.option.self_contained_html = True


@pytest.hookimpl(tryfirst=True)  # before pytest-html reads its htmlpath option
def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    keep_terminal()  # pytest's capture is suspended now: progress lines keep the real stderr
    config.stash[SESSION_RESULTS] = []
    config.stash[SESSION_T0] = time.time()
    config.stash[SESSION_NOTES] = []
    config.stash[SESSION_META] = {}
    config.stash[SESSION_FAILED] = set()
    rc = _load_run_config(config)
    config.stash[KD_CONFIG] = rc
    _fill_options_from_config(config, rc)
    _CONFIG.append(config)
    # SIGTERM (CI cancelling a job, `kill`) unwinds like Ctrl-C: fixtures tear down and every
    # disruption heals, instead of the process dying with a node cordoned or an etcd member paused.
    if threading.current_thread() is threading.main_thread():
        config.stash[OLD_SIGTERM] = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    if not config.getoption("no_kd_reports") and not hasattr(config, "workerinput"):
        latest = Path(config.getoption("reports_dir")) / "latest"
        if latest.exists():
            shutil.rmtree(latest, ignore_errors=True)
        latest.mkdir(parents=True, exist_ok=True)
        if not config.option.xmlpath:
            config.option.xmlpath = str(latest / "junit.xml")
        _enable_pytest_html(config, latest)


_DISRUPTIVE_DIRS = frozenset(suite_dir(s) for s in DISRUPTIVE_SUITES)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of a disruptive suite `disruptive`, so the guard on an attached cluster (which
    reads the marker) and the config's choice of suites follow the one list in kubedrill.config."""
    for item in items:
        if _suite_of(item) in _DISRUPTIVE_DIRS:
            item.add_marker("disruptive")


def _suite_of(item: pytest.Item) -> str:
    return _suite_of_path(Path(str(item.path)))


def _suite_of_path(path: Path) -> str:
    parts = path.parts
    if "suites" in parts:
        i = parts.index("suites")
        if i + 1 < len(parts) - 1:
            return parts[i + 1]
    return path.stem


def _requested_suites(config: pytest.Config) -> list[str]:
    """Suites named on the command line (`pytest suites/drain`, what `kubedrill run` passes for
    each suite of the config), spelled like TestResult.suite: each must run a test for the gate."""
    out: list[str] = []
    for arg in config.args:
        path = Path(config.invocation_params.dir, str(arg).split("::", 1)[0])
        parts = path.parts
        if "suites" not in parts:
            continue
        i = parts.index("suites")
        if i + 1 < len(parts) and (i + 1 < len(parts) - 1 or path.is_dir()) and parts[i + 1] not in out:
            out.append(parts[i + 1])
    return out


@pytest.fixture
def kd_report(request: pytest.FixtureRequest) -> TestResult:
    """The current test's result collector: `kd_report.add(verdict)`, `kd_report.figure(...)`."""
    return request.node.stash[RESULT_KEY]


def add_session_note(config: pytest.Config, note: str) -> None:
    """A line for the report's header, e.g. why cluster creation failed."""
    config.stash[SESSION_NOTES].append(note)


def add_run_meta(config: pytest.Config, key: str, value: Any) -> None:
    """Record run metadata for results.json, e.g. add_run_meta(config, "etcd_version", "v3.6.5").

    Keys ending in `_version` (etcd_version, k8s_version, kind_version, ...) become component
    versions and override the pinned ones from clusters/versions.env, since they were read from
    what actually ran; other keys (seed, node_image, cluster_name, ...) are listed as recorded meta.
    The value must be JSON-serialisable (it is stringified otherwise).
    """
    config.stash[SESSION_META][key] = value


@pytest.fixture(scope="session")
def kd_config(pytestconfig: pytest.Config) -> RunConfig:
    """The validated run configuration: --kd-config file, overridden by command-line options."""
    return pytestconfig.stash[KD_CONFIG]


def _sanitize(nodeid: str) -> str:
    """A nodeid as one safe folder name: 'suites/drain/test_x.py::test_y[a/b]' -> 'suites-drain-test_x.py-test_y-a-b'."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-.")[:150] or "test"


@pytest.fixture
def kd_artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Generator[Path, None, None]:
    """A folder for this test's evidence (logs, dumps, histories), kept only if the test fails.

    It lives at reports/latest/artifacts/<sanitized nodeid>/ so report.html can link it; on a
    passing test it is deleted at teardown (passing runs stay small). With --no-kd-reports it is a
    tmp_path subfolder. Write freely; nothing needs registering.
    """
    item = request.node
    config = request.config
    if config.getoption("no_kd_reports"):
        path = tmp_path / "kd-artifacts"
    else:
        path = Path(config.getoption("reports_dir")).resolve() / "latest" / "artifacts" / _sanitize(item.nodeid)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    yield path
    if test_failed(item):
        result = item.stash.get(RESULT_KEY, None)
        if result is not None and not any(a["path"] == str(path) for a in result.artifacts):
            result.artifact(path, "artifacts")
    else:
        shutil.rmtree(path, ignore_errors=True)


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
    if call.excinfo is not None and isinstance(call.excinfo.value, Inconclusive) and RESULT_KEY in item.stash:
        # The drill could not judge (system unhealthy before, disruption without effect, not
        # available here): an UNKNOWN verdict, never a PASS, and not a FAIL of the workload either.
        # The headline names it ("drill: UNKNOWN: ..."), as a suite's `assert v.passed, str(v)` does.
        verdict = item.stash[RESULT_KEY].add(Verdict.unknown("drill", str(call.excinfo.value)[:2000]))
        item.stash[RESULT_KEY].headline = str(verdict).splitlines()[0][:300]
    return rep


def test_failed(node: pytest.Item) -> bool:
    """True if setup or call of this test failed (used by fixtures that keep artifacts on failure)."""
    reps = node.stash.get(OUTCOME_KEY, {})
    return any(r.failed for r in reps.values())


def _progress(msg: str) -> None:
    from kubedrill.cluster.progress import say

    say(msg)


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:  # noqa: ARG001
    pass


def _headline(rep: pytest.TestReport) -> str:
    """One line on why a phase did not pass: pytest's crash message, or the skip reason."""
    lr = rep.longrepr
    if isinstance(lr, tuple):  # skipped: (path, lineno, "Skipped: reason")
        return str(lr[-1]).removeprefix("Skipped: ")[:300]
    crash = getattr(lr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message).splitlines()[0][:300]
    text = str(lr).strip().splitlines()
    errs = [ln[1:].strip() for ln in text if ln.startswith("E ")]
    return (errs[0] if errs else (text[-1] if text else ""))[:300]


class _CollectionErrors:
    """A suite that cannot even be imported must say so in the report, not just vanish from it.
    (A plugin object because pytest_collectreport is not given the config.)"""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if not report.failed:
            return
        crash = getattr(report.longrepr, "reprcrash", None)
        lines = str(report.longrepr).strip().splitlines()
        why = getattr(crash, "message", None) or next(
            (ln[1:].strip() for ln in lines if ln.startswith("E ")), lines[-1] if lines else "")
        add_session_note(self.config, f"collection error in {report.nodeid or 'session'}: {str(why)[:500]}")


class _FailedTests:
    """Every node id pytest saw fail (on the xdist controller too), so a failure whose result never
    arrived, such as a crashed worker's, is reported as an error instead of missing from the gate.
    (A plugin object because pytest_runtest_logreport is not given the config.)"""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.config.stash[SESSION_FAILED].add(report.nodeid)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.pluginmanager.register(_CollectionErrors(session.config), "kubedrill-collection-errors")
    session.config.pluginmanager.register(_FailedTests(session.config), "kubedrill-failed-tests")
    if session.config.getoption("kd_progress") and not hasattr(session.config, "workerinput"):
        rc = session.config.stash[KD_CONFIG]
        where = (f"existing cluster {rc.cluster.context or rc.cluster.kubeconfig}" if rc.cluster.existing
                 else f"kind {rc.cluster.kind_config}")
        _progress(f"pytest session started ({where})")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    if item.config.getoption("kd_progress"):
        _progress(f"{_suite_of(item)}: {item.name} ...")
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
    bad = [reps[w] for w in ("setup", "call", "teardown") if w in reps and (reps[w].failed or reps[w].skipped)]
    if bad and not result.headline:
        result.headline = _headline(next((r for r in bad if r.failed), bad[0]))
    if item.config.getoption("kd_progress"):
        _progress(f"{result.suite}: {item.name} {outcome} ({duration:.1f}s)"
                  + (f": {result.headline}" if result.headline and outcome != "passed" else ""))
    item.config.stash[SESSION_RESULTS].append(result)
    if hasattr(item.config, "workerinput"):
        # Ship the result to the xdist controller, which writes the reports.
        item.config.workeroutput.setdefault("kd_results", []).append(result.to_dict())  # type: ignore[attr-defined]


def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect results, notes and run metadata that a worker shipped."""
    from kubedrill.report.writer import result_from_dict

    out = getattr(node, "workeroutput", {})
    for d in out.get("kd_results", []):
        node.config.stash[SESSION_RESULTS].append(result_from_dict(d))
    notes = node.config.stash[SESSION_NOTES]
    notes.extend(n for n in out.get("kd_notes", []) if n not in notes)
    for k, v in out.get("kd_meta", {}).items():
        node.config.stash[SESSION_META].setdefault(k, v)
    if error:
        notes.append(f"xdist worker {getattr(node, 'gateway', None) and node.gateway.id} crashed: {error}")


def _sigterm_to_interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Say in the report that the run was interrupted, by what, and what each disruption it cut
    short did: every disruption heals on the way out (kubedrill.disrupt.base.Disruption.applied)."""
    from kubedrill.disrupt.base import INTERRUPTED

    config = _CONFIG[-1] if _CONFIG else None
    if config is None:
        return
    add_session_note(config, f"run interrupted ({str(excinfo.value) or 'Ctrl-C, SIGINT'})"
                             + (": " + "; ".join(INTERRUPTED) if INTERRUPTED else ": no disruption was active"))


_CONFIG: list[pytest.Config] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        # Ship what the controller cannot see: notes from session fixtures and recorded metadata.
        out: dict[str, Any] = config.workeroutput  # type: ignore[attr-defined]
        notes: list[str] = config.stash[SESSION_NOTES]
        out["kd_notes"] = list(notes)
        out["kd_meta"] = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                          for k, v in config.stash[SESSION_META].items()}
        return
    results: list[TestResult] = config.stash[SESSION_RESULTS]
    recorded = {r.nodeid for r in results}
    for nodeid in sorted(config.stash[SESSION_FAILED] - recorded):
        results.append(TestResult(nodeid=nodeid, suite=_suite_of_path(Path(nodeid.split("::", 1)[0])), outcome="error",
                                  headline="pytest reported this test failed, but its result never reached kubedrill "
                                           "(a crashed xdist worker?); see pytest's output"))
    requested = _requested_suites(config)
    rc = config.stash.get(KD_CONFIG, None)
    if not config.getoption("no_kd_reports"):
        _write(config, int(exitstatus), results, requested, rc)
    _exit_by_gate(session, int(exitstatus), results, requested, rc)


def _exit_by_gate(session: pytest.Session, exitstatus: int, results: list[TestResult], requested: list[str],
                  rc: RunConfig | None) -> None:
    """Make pytest's exit status the gate's, so `tox -e NAME` and `kubedrill run` exit as the report
    says: 0 when only UNKNOWNs the run config allows failed, 5 when a requested suite or the whole
    run checked nothing (kubedrill.report.results.gate). A session that ran no test at all
    (--collect-only, --fixtures) keeps pytest's status."""
    if not results or session.config.option.collectonly:
        return
    from kubedrill.report import results as R

    decision = R.gate(R.test_docs(results), exitstatus, rc.to_dict()["gate"] if rc else None, requested)
    if decision.exit_code != exitstatus:
        session.exitstatus = decision.exit_code
        session.config.stash[GATE_EXIT] = (exitstatus, decision.exit_code)


GATE_EXIT = pytest.StashKey[tuple[int, int]]()


def _write(config: pytest.Config, exitstatus: int, results: list[TestResult], requested: list[str],
           rc: RunConfig | None) -> None:
    from kubedrill.report.writer import write_reports

    if exitstatus == int(pytest.ExitCode.NO_TESTS_COLLECTED):
        add_session_note(config, f"no tests were collected from {' '.join(config.invocation_params.args) or '.'}: "
                                 "nothing was checked")
    latest = write_reports(
        results=results,
        outdir=Path(config.getoption("reports_dir")),
        started=config.stash[SESSION_T0],
        exitstatus=exitstatus,
        notes=config.stash[SESSION_NOTES],
        argv=list(config.invocation_params.args),
        meta=config.stash[SESSION_META],
        config=rc.to_dict() if rc else None,
        snapshot=False,
        requested_suites=requested,
    )
    config.stash[REPORT_DIR] = latest


REPORT_DIR = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:  # noqa: ARG001
    latest = config.stash.get(REPORT_DIR, None)
    if latest is None:
        return
    import json

    from kubedrill.report.summary import allowed_lines

    try:
        summary = json.loads((latest / "results.json").read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return
    terminalreporter.write_sep("-", f"kubedrill gate: {summary['gate'].upper()} - {summary['reason']}")
    for line in allowed_lines(summary):
        terminalreporter.write_line(line)
    if GATE_EXIT in config.stash:
        was, now = config.stash[GATE_EXIT]
        terminalreporter.write_line(f"exit status {now}, set by the kubedrill gate (pytest's own: {was})")
    terminalreporter.write_line(f"report: {latest / 'report.html'}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Copy reports/latest to its timestamped folder last, once junit.xml and pytest-html are written."""
    if config in _CONFIG:
        _CONFIG.remove(config)
    if OLD_SIGTERM in config.stash and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, config.stash[OLD_SIGTERM])
    if REPORT_DIR not in config.stash:
        return
    from kubedrill.report.writer import snapshot_latest

    try:
        snapshot_latest(Path(config.getoption("reports_dir")), config.stash[SESSION_T0])
    except OSError as exc:
        import sys

        print(f"kubedrill: could not copy reports/latest to a timestamped folder: {exc}", file=sys.stderr)
