"""Meta-tests of the plugin's report side: a tiny pytest run must leave results.json and report.html.

Each test runs pytest on a small generated test file in a temporary folder (pytester), with the
kubedrill plugin loaded by `-p`, and reads what it wrote under reports/latest/.
"""

from __future__ import annotations

import json
import re
import os
from pathlib import Path
from typing import Any

import pytest

from kubedrill.report import results as R
from kubedrill.report.meta import REPO_ROOT

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "kubedrill.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:randomly")

TESTS = '''
import pytest
from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import series as S
from kubedrill.pytest_plugin import add_run_meta

def test_drain_keeps_slo(kd_report, pytestconfig):
    add_run_meta(pytestconfig, "etcd_version", "v3.6.5")
    add_run_meta(pytestconfig, "cluster_name", "kd-test")
    kd_report.figure("request_rate", 21.5, "req/s")
    v = kd_report.add(Verdict.ok("availability", "0 failed requests during the drain",
                                 [Figure("availability", 1.0, "ratio")],
                                 **S.timeline([0, 1, 2], [20, 21, 22], [0, 0, 0],
                                              windows=[S.window(0.5, 1.5, "drain w1")])))
    assert v.passed, v.reason

def test_shutdown_within_grace(kd_report, kd_artifacts):
    (kd_artifacts / "pod.log").write_text("SIGTERM received\\n")
    v = kd_report.add(Verdict.fail("graceful_shutdown", "pod web-1 took 9.5 s of its 10 s grace period (budget 8 s)",
                                   [Figure("shutdown_time", 9.5, "s")],
                                   **S.shutdown([S.shutdown_point("web-1", 9.5, 10, 0.8)])))
    assert v.passed, v.reason

def test_passing_drops_artifacts(kd_artifacts):
    (kd_artifacts / "noise.txt").write_text("x")
'''


@pytest.fixture
def kd_pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester with a clean kubedrill environment (no inherited config, reports dir or command)."""
    for var in ("KUBEDRILL_CONFIG", "KUBEDRILL_REPORTS", "KUBEDRILL_COMMAND", "KUBEDRILL_CLUSTER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    # xdist workers are subprocesses: they must find the kubedrill package too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    return pytester


def read_results(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "reports" / "latest" / "results.json").read_text())
    return data


def test_run_writes_results_and_report_with_figures(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_demo=TESTS)
    res = kd_pytester.runpytest(*PLUGIN)
    res.assert_outcomes(passed=2, failed=1)
    latest = kd_pytester.path / "reports" / "latest"
    for name in ("results.json", "report.html", "junit.xml"):
        assert (latest / name).is_file(), name
    doc = read_results(kd_pytester.path)
    assert R.validate(doc) == []
    assert doc["summary"]["gate"] == "fail"
    tests = {t["name"]: t for t in doc["tests"]}
    drain = tests["test_drain_keeps_slo"]
    assert {(f["name"], f["value"], f["unit"]) for f in drain["figures"]} == {
        ("request_rate", 21.5, "req/s"), ("availability", 1.0, "ratio")}
    assert drain["verdicts"][0]["series"]["windows"][0]["label"] == "drain w1"
    assert doc["run"]["versions"]["etcd"] == {"value": "v3.6.5", "source": "recorded"}
    assert doc["run"]["meta"]["cluster_name"] == "kd-test"
    shut = tests["test_shutdown_within_grace"]
    assert shut["headline"].startswith("AssertionError: pod web-1 took 9.5 s")
    page = (latest / "report.html").read_text()
    assert "request_rate" in page and "graceful_shutdown" in page and page.count("<svg") == 2
    assert "pod web-1 took 9.5 s of its 10 s grace period" in page
    res.stdout.fnmatch_lines(["*kubedrill gate: FAIL*", "report: *report.html"])


def test_artifacts_kept_and_linked_only_for_failures(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_demo=TESTS)
    kd_pytester.runpytest(*PLUGIN)
    arts = kd_pytester.path / "reports" / "latest" / "artifacts"
    assert sorted(p.name for p in arts.iterdir()) == ["test_demo.py-test_shutdown_within_grace"]
    assert (arts / "test_demo.py-test_shutdown_within_grace" / "pod.log").read_text() == "SIGTERM received\n"
    shut = next(t for t in read_results(kd_pytester.path)["tests"] if t["name"] == "test_shutdown_within_grace")
    assert shut["artifacts"] == [{"path": "artifacts/test_demo.py-test_shutdown_within_grace/", "label": "artifacts",
                                  "files": ["artifacts/test_demo.py-test_shutdown_within_grace/pod.log"]}]
    page = (kd_pytester.path / "reports" / "latest" / "report.html").read_text()
    assert "href='artifacts/test_demo.py-test_shutdown_within_grace/pod.log'" in page
    dated = [p for p in (kd_pytester.path / "reports").iterdir() if p.name != "latest"]
    assert len(dated) == 1 and (dated[0] / "results.json").is_file() and (dated[0] / "junit.xml").is_file()


def test_no_kd_reports_writes_nothing(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_demo=TESTS)
    res = kd_pytester.runpytest(*PLUGIN, "--no-kd-reports")
    res.assert_outcomes(passed=2, failed=1)
    assert not (kd_pytester.path / "reports").exists()


def test_broken_session_fixture_still_reports_why(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_broken='''
import pytest
from kubedrill.pytest_plugin import add_session_note

@pytest.fixture(scope="session")
def cluster(pytestconfig):
    add_session_note(pytestconfig, "cluster three-node creation failed: kind exited 1: no space left on device")
    pytest.fail("cluster three-node creation failed: kind exited 1", pytrace=False)

def test_a(cluster): pass
def test_b(cluster): pass
''')
    kd_pytester.runpytest(*PLUGIN).assert_outcomes(errors=2)
    doc = read_results(kd_pytester.path)
    assert doc["summary"]["gate"] == "fail"
    assert doc["summary"]["errors"] == [{"headline": "Failed: cluster three-node creation failed: kind exited 1", "count": 2,
                                         "tests": ["test_broken.py::test_a", "test_broken.py::test_b"]}]
    page = (kd_pytester.path / "reports" / "latest" / "report.html").read_text()
    assert "Why this run is broken" in page and "no space left on device" in page


def test_collection_error_is_a_note(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_bad="import no_such_module_for_kubedrill\n")
    kd_pytester.runpytest(*PLUGIN)
    doc = read_results(kd_pytester.path)
    assert doc["summary"]["gate"] == "fail" and doc["run"]["exitstatus"] == 2
    assert any("collection error in test_bad.py" in n and "no_such_module_for_kubedrill" in n
               for n in doc["run"]["notes"])


def test_no_tests_collected_is_unknown_not_pass(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_empty="X = 1\n")
    kd_pytester.runpytest(*PLUGIN)
    doc = read_results(kd_pytester.path)
    assert doc["summary"]["gate"] == "unknown" and any("no tests were collected" in n for n in doc["run"]["notes"])


def test_kd_config_fixture_file_and_overrides(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makefile(".yaml", kubedrill="cluster: {kind_config: ha}\nslo: {availability: 0.99}\n")
    kd_pytester.makepyfile(test_cfg='''
def test_cfg(kd_config, pytestconfig):
    assert kd_config.cluster.kind_config == "ha"
    assert kd_config.slo.availability == 0.95
    # unset options follow the file, so fixtures reading options agree with kd_config
    assert pytestconfig.getoption("cluster_config") == "ha"
''')
    res = kd_pytester.runpytest(*PLUGIN, "--kd-config", "kubedrill.yaml", "--kd-set", "slo.availability=0.95")
    res.assert_outcomes(passed=1)
    assert read_results(kd_pytester.path)["run"]["config"]["slo"]["availability"] == 0.95


def test_bad_config_stops_the_run_with_the_field_named(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makepyfile(test_x="def test_x(): pass\n")
    res = kd_pytester.runpytest(*PLUGIN, "--cluster-config", "big")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*config.cluster.kind_config: 'big' is not one of single, three-node, ha "
                              "(from --cluster-config)*"])


def test_pytest_html_page_is_written_too(kd_pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html")
    kd_pytester.makepyfile(test_x="def test_x(): pass\n")
    kd_pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)
    page = kd_pytester.path / "reports" / "latest" / "pytest-html.html"
    assert page.is_file() and "<html" in page.read_text()[:500].lower()


def test_xdist_workers_ship_results_notes_and_meta(kd_pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    kd_pytester.makepyfile(test_demo=TESTS)
    kd_pytester.makeconftest('''
import pytest
from kubedrill.pytest_plugin import add_session_note

@pytest.fixture(scope="session", autouse=True)
def note(pytestconfig):
    add_session_note(pytestconfig, "worker session started")
''')
    res = kd_pytester.runpytest_subprocess(*PLUGIN, "-n", "2")
    res.assert_outcomes(passed=2, failed=1)
    doc = read_results(kd_pytester.path)
    assert R.validate(doc) == []
    assert len(doc["tests"]) == 3 and doc["summary"]["gate"] == "fail"
    assert doc["run"]["versions"]["etcd"]["source"] == "recorded"
    assert doc["run"]["notes"].count("worker session started") == 1  # deduplicated across workers
    shut = next(t for t in doc["tests"] if t["name"] == "test_shutdown_within_grace")
    assert shut["artifacts"] and shut["artifacts"][0]["files"]


def test_pytest_takes_every_config_option_of_the_table(kd_pytester: pytest.Pytester) -> None:
    from kubedrill.options import OPTIONS

    res = kd_pytester.runpytest(*PLUGIN, "--help")
    for o in OPTIONS:
        if o.in_pytest:
            res.stdout.fnmatch_lines([f"*{o.flag}*"])


@pytest.mark.parametrize("cluster_args", [
    ["--cluster-config", "ha", "--k8s-version", "v1.34.4", "--node-image", "img:1", "--keep-cluster"],
    ["--kubeconfig", "KC", "--context", "prod", "--allow-disruptive-on", "prod"],
], ids=["kind", "attached"])
def test_kubedrill_run_and_pytest_resolve_the_same_config(kd_pytester: pytest.Pytester, cluster_args: list[str]) -> None:
    """`kubedrill run` resolves the config, then hands its options to pytest, which resolves it again:
    both must come out the same, or the run's gate and its report would describe different runs."""
    from kubedrill import cli, options

    root = kd_pytester.path
    (root / "kubedrill.yaml").write_text("slo: {availability: 0.99}\nreports_dir: from-file\n")
    argv = ["run", "-c", "kubedrill.yaml", "--suite", "smoke,etcd", "--workload", "w.yaml",
            "--kd-set", "slo.max_election_s=2", *[str(root / a) if a == "KC" else a for a in cluster_args]]
    args = cli.build_parser().parse_args(argv)
    expected = json.loads(json.dumps(cli.resolve_config(args).to_dict()))
    kd_pytester.makepyfile(test_cfg='''
import json
import re
def test_cfg(kd_config):
    open("resolved.json", "w").write(json.dumps(kd_config.to_dict()))
''')
    kd_pytester.runpytest(*PLUGIN, *options.pytest_args(vars(args))).assert_outcomes(passed=1)
    resolved = json.loads((root / "resolved.json").read_text())
    for d in (expected, resolved):  # pytest sees absolute paths, made so for its own working directory
        d["workloads"][0]["spec"] = Path(d["workloads"][0]["spec"]).name
        d["reports_dir"] = Path(d["reports_dir"]).name
        d["source"] = Path(d["source"]).name
    assert resolved == expected


def test_every_test_of_a_disruptive_suite_is_marked(kd_pytester: pytest.Pytester) -> None:
    for suite in ("drain", "cluster_etcd", "etcd", "smoke"):
        folder = kd_pytester.path / "suites" / suite
        folder.mkdir(parents=True)
        (folder / f"test_{suite}.py").write_text("def test_x(): pass\n")
    res = kd_pytester.runpytest(*PLUGIN, "suites", "-m", "not disruptive", "-v")
    res.assert_outcomes(passed=2, deselected=2)
    res.stdout.fnmatch_lines(["*suites/etcd/test_etcd.py::test_x PASSED*", "*suites/smoke/test_smoke.py::test_x PASSED*"])


def test_reports_dir_follows_the_config_file(kd_pytester: pytest.Pytester) -> None:
    kd_pytester.makefile(".yaml", kubedrill="reports_dir: gate-reports\n")
    kd_pytester.makepyfile(test_x="def test_x(): pass\n")
    kd_pytester.runpytest(*PLUGIN, "--kd-config", "kubedrill.yaml").assert_outcomes(passed=1)
    assert (kd_pytester.path / "gate-reports" / "latest" / "results.json").is_file()
    assert not (kd_pytester.path / "reports").exists()


INCONCLUSIVE = """
from kubedrill.check.verdict import Verdict
from kubedrill.disrupt.base import UnhealthyBefore


def test_drill_on_a_broken_system(kd_report):
    raise UnhealthyBefore("drain: system unhealthy before injection: node w2 NotReady")


def test_checker_could_not_decide(kd_report):
    v = kd_report.add(Verdict.unknown("traffic", "no request was sent during the termination"))
    assert v.passed, str(v)


def test_real_failure_next_to_unknown(kd_report):
    kd_report.add(Verdict.unknown("in-flight", "close-delimited body"))
    v = kd_report.add(Verdict.fail("sigkill", "SIGKILLed at the end of the grace period"))
    assert v.passed, str(v)
"""


def test_what_could_not_be_judged_is_unknown_never_pass(kd_pytester: pytest.Pytester) -> None:
    """An Inconclusive disruption and a test failing on UNKNOWN verdicts only are gate "unknown" (the
    run's gate is not PASS); a FAIL verdict beside an UNKNOWN one is a failure."""
    kd_pytester.makepyfile(test_unknown=INCONCLUSIVE)
    res = kd_pytester.runpytest(*PLUGIN)
    res.assert_outcomes(failed=3)
    doc = read_results(kd_pytester.path)
    assert R.validate(doc) == []
    tests = {t["name"]: t for t in doc["tests"]}
    broken = tests["test_drill_on_a_broken_system"]
    assert broken["gate"] == "unknown"
    assert broken["verdicts"][0]["status"] == "unknown" and "node w2 NotReady" in broken["verdicts"][0]["reason"]
    assert tests["test_checker_could_not_decide"]["gate"] == "unknown"
    assert tests["test_real_failure_next_to_unknown"]["gate"] == "fail"
    assert doc["summary"]["gate"] == "fail"
    only_unknown = R.gate([t for t in doc["tests"] if t["gate"] == "unknown"], 1)
    assert only_unknown[0] == "unknown" and "could not be judged" in only_unknown[1]


SIGNALLED = """
import os, signal, time
from pathlib import Path

from kubedrill.disrupt.base import Disruption

LOG = Path(os.environ["KD_TEST_LOG"])


class MarkNode(Disruption):
    name = "mark-node"
    node = "w1"

    def inject(self):
        LOG.write_text(LOG.read_text() + "inject\\n")

    def heal(self):
        LOG.write_text(LOG.read_text() + "heal\\n")


def test_interrupted_mid_drill():
    with MarkNode().applied():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
"""


def test_sigterm_mid_drill_heals_and_the_report_says_where(kd_pytester: pytest.Pytester, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGTERM to the runner while a disruption is applied: the heal runs, and results.json
    says the run was interrupted, by what, in which disruption and phase."""
    log = tmp_path / "log"
    log.write_text("")
    monkeypatch.setenv("KD_TEST_LOG", str(log))
    kd_pytester.makepyfile(test_signalled=SIGNALLED)
    res = kd_pytester.runpytest_subprocess(*PLUGIN, timeout=120)
    assert res.ret == pytest.ExitCode.INTERRUPTED, res.stdout.str()[-2000:]
    assert log.read_text().split() == ["inject", "heal"]
    doc = read_results(kd_pytester.path)
    notes = " ".join(doc["run"]["notes"])
    assert "run interrupted (signal 15)" in notes and "mark-node of w1: interrupted during applied" in notes, notes
    assert "healed" in notes and doc["summary"]["gate"] != "pass"


SHUTDOWN_SUITE = '''
from kubedrill.check.verdict import Verdict


def test_traffic_served(kd_report):
    kd_report.add(Verdict.ok("traffic", "0 failed requests"))


def test_download_unjudged(kd_report):
    v = kd_report.add(Verdict.unknown("in-flight", "close-delimited body: completion cannot be told"))
    assert v.passed, str(v)
'''


def test_exit_status_is_the_gate_and_an_allowed_unknown_opens_it(kd_pytester: pytest.Pytester) -> None:
    """Failing on UNKNOWN exits 1 and JUnit shows the UNKNOWN; allowed by the run config, the same run
    exits 0, and results.json, the terminal and report.html say what was allowed (JUnit still shows it)."""
    suite = kd_pytester.path / "suites" / "shutdown"
    suite.mkdir(parents=True)
    (suite / "test_shutdown.py").write_text(SHUTDOWN_SUITE)
    latest = kd_pytester.path / "reports" / "latest"

    res = kd_pytester.runpytest(*PLUGIN, "suites/shutdown")
    res.assert_outcomes(passed=1, failed=1)
    assert res.ret == 1
    doc = read_results(kd_pytester.path)
    assert (doc["summary"]["gate"], doc["summary"]["exit_code"]) == ("unknown", 1)
    junit = (latest / "junit.xml").read_text()
    assert re.search(r'<failure message="[^"]*in-flight: UNKNOWN: close-delimited body', junit), junit

    res = kd_pytester.runpytest(*PLUGIN, "suites/shutdown", "--allow-unknown", "in-flight")
    res.assert_outcomes(passed=1, failed=1)  # pytest's own count is unchanged ...
    assert res.ret == 0  # ... the exit status is the gate's
    doc = read_results(kd_pytester.path)
    assert R.validate(doc) == []
    assert (doc["summary"]["gate"], doc["summary"]["exit_code"], doc["run"]["exitstatus"]) == ("pass", 0, 1)
    assert [(a["by"], a["check"]) for a in doc["summary"]["allowed"]] == [("gate.allow_unknown[0]", "in-flight")]
    res.stdout.fnmatch_lines([
        "*kubedrill gate: PASS - 1 tests passed; allowed by gate.allow_unknown: in-flight (1 test)*",
        "allowed by gate.allow_unknown[[]0] (in-flight): in-flight in test_download_unjudged: close-delimited body*",
        "exit status 0, set by the kubedrill gate (pytest's own: 1)"])
    assert 'in-flight: UNKNOWN: close-delimited body' in (latest / "junit.xml").read_text()
    page = (latest / "report.html").read_text()
    assert "Allowed by the run config (1)" in page and "allowed by gate.allow_unknown[0]" in page


def test_a_requested_suite_that_ran_no_test_exits_5_unless_allowed(kd_pytester: pytest.Pytester) -> None:
    for suite, body in (("smoke", "def test_x(): pass\n"),
                        ("upgrade", "import pytest\n\ndef test_x():\n    pytest.skip('no v1.33 node image')\n")):
        (kd_pytester.path / "suites" / suite).mkdir(parents=True)
        (kd_pytester.path / "suites" / suite / f"test_{suite}.py").write_text(body)
    res = kd_pytester.runpytest(*PLUGIN, "suites/smoke", "suites/upgrade")
    res.assert_outcomes(passed=1, skipped=1)
    assert res.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    res.stdout.fnmatch_lines(["*kubedrill gate: UNKNOWN - requested suite ran no test, so nothing was checked there: "
                              "upgrade (all 1 tests skipped: no v1.33 node image)*",
                              "exit status 5, set by the kubedrill gate (pytest's own: 0)"])
    assert read_results(kd_pytester.path)["summary"]["requested_suites"] == ["smoke", "upgrade"]
    page = (kd_pytester.path / "reports" / "latest" / "report.html").read_text()
    assert "Requested suites that checked nothing" in page

    kd_pytester.makefile(".yaml", kubedrill="gate: {allow_empty_suites: [upgrade]}\n")
    res = kd_pytester.runpytest(*PLUGIN, "suites/smoke", "suites/upgrade", "--kd-config", "kubedrill.yaml")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*kubedrill gate: PASS*allowed by gate.allow_empty_suites: upgrade*",
                              "allowed by gate.allow_empty_suites (upgrade): suite upgrade: all 1 tests skipped*"])
    # Only suites named on the command line must run a test: the whole folder names none.
    assert kd_pytester.runpytest(*PLUGIN, "suites").ret == 0


def test_xdist_controller_exits_by_the_gate(kd_pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    suite = kd_pytester.path / "suites" / "shutdown"
    suite.mkdir(parents=True)
    (suite / "test_shutdown.py").write_text(SHUTDOWN_SUITE)
    assert kd_pytester.runpytest_subprocess(*PLUGIN, "-n", "2", "suites/shutdown").ret == 1
    res = kd_pytester.runpytest_subprocess(*PLUGIN, "-n", "2", "suites/shutdown", "--kd-set",
                                           "gate.allow_unknown=[{check: in-flight, reason: no framing}]")
    assert res.ret == 0, res.stdout.str()
    assert read_results(kd_pytester.path)["summary"]["allowed"][0]["why"] == "no framing"
