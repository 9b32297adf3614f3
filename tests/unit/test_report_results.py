"""results.json: validates against its schema, decides the gate, survives odd data."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.report import meta as M
from kubedrill.report import results as R
from kubedrill.report.demo import demo_results
from kubedrill.report.model import SCHEMA_VERSION, TestResult
from kubedrill.report.writer import result_from_dict, snapshot_latest, write_reports


def run(exitstatus: int = 1, **kw: object) -> R.RunInfo:
    return R.RunInfo(started=time.time() - 60, finished=time.time(), exitstatus=exitstatus, argv=["suites/"], **kw)  # type: ignore[arg-type]


def test_demo_document_validates_against_schema() -> None:
    doc = R.build_doc(demo_results(), run(meta={"etcd_version": "v3.6.5", "seed": 7},
                                          config={"cluster": {"k8s_version": "v1.34.1"}}))
    assert R.validate(doc) == []
    assert doc["schema_version"] == SCHEMA_VERSION
    # Recorded beats config beats versions.env.
    assert doc["run"]["versions"]["etcd"] == {"value": "v3.6.5", "source": "recorded"}
    assert doc["run"]["versions"]["kubernetes"] == {"value": "v1.34.1", "source": "config"}
    assert doc["run"]["versions"]["kind"]["source"] == "versions.env"
    assert doc["run"]["meta"] == {"seed": 7}
    host = doc["run"]["host"]
    assert host["hostname"] and host["cpu_count"] >= 1 and host["memory_bytes"] > 0
    assert "pytest" in doc["run"]["reproduce"]["command"]


def test_every_figure_has_a_unit_and_tests_carry_verdicts() -> None:
    doc = R.build_doc(demo_results(), run())
    drain = next(t for t in doc["tests"] if t["suite"] == "drain")
    assert {f["name"]: f["unit"] for f in drain["figures"]}["availability"] == "ratio"
    assert drain["verdicts"][0]["check"] == "availability" and drain["verdicts"][0]["status"] == "fail"
    assert drain["verdicts"][0]["series"]["timeline"]["t"]


def test_schema_rejects_malformed_documents() -> None:
    doc = R.build_doc(demo_results(), run())
    doc["tests"][0]["outcome"] = "sort of"
    doc["tests"][1]["figures"][0].pop("unit")
    doc["summary"]["gate"] = "maybe"
    problems = "\n".join(R.validate(doc))
    assert "outcome" in problems and "'unit' is a required property" in problems and "maybe" in problems


@pytest.mark.parametrize("outcomes, exitstatus, gate", [
    (["passed", "passed"], 0, "pass"),
    (["passed", "skipped"], 0, "pass"),
    (["passed", "failed"], 1, "fail"),
    (["passed", "error"], 1, "fail"),
    (["skipped"], 0, "unknown"),      # nothing was checked
    ([], 5, "unknown"),
    ([], 2, "fail"),                  # collection errors
    (["passed"], 3, "fail"),          # internal error after tests
])
def test_gate(outcomes: list[str], exitstatus: int, gate: str) -> None:
    results = [TestResult(f"suites/x/test_x.py::t{i}", suite="x", outcome=o) for i, o in enumerate(outcomes)]
    doc = R.build_doc(results, run(exitstatus))
    assert doc["summary"]["gate"] == gate, doc["summary"]["reason"]
    assert R.validate(doc) == []


def test_non_finite_figures_become_null() -> None:
    r = TestResult("t.py::t", outcome="passed")
    r.figure("latency_p99", math.nan, "s", "no requests")
    r.add(Verdict.ok("x", "ok", [Figure("ratio", math.inf, "ratio")]))
    doc = R.build_doc([r], run(0))
    assert [f["value"] for f in doc["tests"][0]["figures"]] == [None, None]
    json.dumps(doc, allow_nan=False)
    assert R.validate(doc) == []


def test_errors_are_grouped_by_cause() -> None:
    results = [TestResult(f"s/test_a.py::t{i}", outcome="error", headline="RuntimeError: kind create failed")
               for i in range(7)]
    results.append(TestResult("s/test_a.py::z", outcome="error",
                              longrepr="def f():\n>   raise X\nE   OSError: disk full\n\nfile.py:3: OSError"))
    s = R.build_doc(results, run(1))["summary"]
    assert s["errors"][0] == {"headline": "RuntimeError: kind create failed", "count": 7,
                              "tests": [f"s/test_a.py::t{i}" for i in range(5)]}
    assert s["errors"][1]["headline"] == "OSError: disk full"


def test_versions_env_parsing(tmp_path: Path) -> None:
    f = tmp_path / "versions.env"
    f.write_text("# pinned\nKIND_VERSION=v0.30.0\nexport K8S_VERSION='v1.34.4'\nKINDNETD_IMAGE=x:y\n\n")
    pinned = M.read_versions_env(f)
    assert pinned == {"KIND_VERSION": "v0.30.0", "K8S_VERSION": "v1.34.4", "KINDNETD_IMAGE": "x:y"}
    assert M.versions(pinned, {}, {"k8s_version": "v1.34.5"}) == {
        "kind": {"value": "v0.30.0", "source": "versions.env"},
        "kubernetes": {"value": "v1.34.5", "source": "recorded"}}
    assert M.read_versions_env(tmp_path / "missing") == {}


def test_git_info_tolerates_no_repository(tmp_path: Path) -> None:
    assert M.git_info(tmp_path) == {"commit": None, "dirty": None}


def test_reproduce_prefers_the_cli_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(M.COMMAND_ENV, "kubedrill run --suite drain")
    r = M.reproduce_command(["suites/drain", "-k", "a b"], "/repo")
    assert r["command"] == "kubedrill run --suite drain"
    assert r["pytest"].endswith("-m pytest suites/drain -k 'a b'") and r["pytest"].startswith("cd /repo && ")


def test_writer_writes_latest_and_dated_copy_with_relative_artifacts(tmp_path: Path) -> None:
    art = tmp_path / "latest" / "artifacts" / "t1"
    art.mkdir(parents=True)
    (art / "pod.log").write_text("log")
    r = TestResult("s/test_a.py::t1", suite="s", outcome="failed", headline="AssertionError: boom")
    r.artifact(art, "pod logs")
    started = time.time()
    latest = write_reports([r], tmp_path, started, 1, ["a note"], ["s/"])
    doc = json.loads((latest / "results.json").read_text())
    assert doc["tests"][0]["artifacts"] == [
        {"path": "artifacts/t1/", "label": "pod logs", "files": ["artifacts/t1/pod.log"]}]
    assert (latest / "report.html").read_text().count("artifacts/t1/pod.log") >= 1
    dated = [p for p in tmp_path.iterdir() if p.name != "latest"]
    assert len(dated) == 1 and (dated[0] / "artifacts" / "t1" / "pod.log").exists()
    assert snapshot_latest(tmp_path, started).name.endswith("-2")  # same second: no overwrite


def test_result_from_dict_round_trip() -> None:
    r = demo_results()[1]
    r.figure("free", 1, "count")
    back = result_from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.to_dict() == r.to_dict()


def test_writer_falls_back_when_rendering_breaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubedrill.report import html

    def broken(doc: dict) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(html, "render", broken)
    latest = write_reports([TestResult("t.py::t", outcome="passed")], tmp_path, time.time(), 0, [], [], snapshot=False)
    page = (latest / "report.html").read_text()
    assert "report.html could not be rendered" in page and "renderer bug" in page
    assert json.loads((latest / "results.json").read_text())["summary"]["gate"] == "pass"


# -- the gate's allowances (the run config's `gate:` section) ---------------------------------------

SHUTDOWN = "suites/shutdown/test_shutdown.py::test_pod_shuts_down_gracefully"


def unjudged(case: str, *verdicts: Verdict, failure: str | None = None) -> TestResult:
    """A shutdown test that failed the way the suite fails: on its first non-passing verdict's str()."""
    r = TestResult(f"{SHUTDOWN}[{case}]", suite="shutdown", outcome="failed")
    for v in verdicts:
        r.add(v)
    first = next(v for v in verdicts if not v.passed)
    r.headline = failure if failure is not None else f"AssertionError: {case}: {first}"
    return r


def passed(nodeid: str = "suites/smoke/test_smoke.py::test_nodes_ready", suite: str = "smoke") -> TestResult:
    return TestResult(nodeid, suite=suite, outcome="passed")


IN_FLIGHT = Verdict.unknown("in-flight", "close-delimited body: completion cannot be told")
SIGKILL_UNSEEN = Verdict.unknown("sigkill", "no exit code recorded")


def decide(results: list[TestResult], exitstatus: int, gate: dict | None = None,
           requested: list[str] | None = None) -> dict:
    doc = R.build_doc(results, run(exitstatus, config={"gate": gate} if gate is not None else None,
                                   requested_suites=requested or []))
    assert R.validate(doc) == [], R.validate(doc)
    return doc


def test_unknown_closes_the_gate_without_an_allowance() -> None:
    doc = decide([passed(), unjudged("nginx/delete", Verdict.ok("exit-code", "0"), IN_FLIGHT)], 1)
    s = doc["summary"]
    assert (s["gate"], s["exit_code"], s["allowed"]) == ("unknown", 1, [])
    assert "1 of 2 tests could not be judged (UNKNOWN): test_pod_shuts_down_gracefully[nginx/delete]" in s["reason"]


def test_an_allowed_unknown_opens_the_gate_and_is_listed() -> None:
    rule = {"check": "in-flight", "test": "*", "reason": "nginx streams close-delimited downloads"}
    doc = decide([passed(), unjudged("nginx/delete", Verdict.ok("exit-code", "0"), IN_FLIGHT)], 1,
                 {"allow_unknown": [rule], "allow_empty_suites": []})
    s = doc["summary"]
    assert (s["gate"], s["exit_code"]) == ("pass", 0)
    assert s["reason"] == "1 tests passed; allowed by gate.allow_unknown: in-flight (1 test)"
    assert s["allowed"] == [{"by": "gate.allow_unknown[0]", "rule": "in-flight",
                             "why": "nginx streams close-delimited downloads", "test": f"{SHUTDOWN}[nginx/delete]",
                             "check": "in-flight", "reason": IN_FLIGHT.reason}]
    test = next(t for t in doc["tests"] if t["suite"] == "shutdown")
    assert test["gate"] == "unknown" and test["allowed"] is True  # the test stays UNKNOWN; the run lets it through


@pytest.mark.parametrize("rules, gate", [
    ([{"check": "in-flight"}], "unknown"),                        # sigkill is UNKNOWN too and not allowed
    ([{"check": "in-flight"}, {"check": "sig*"}], "pass"),        # globs
    ([{"test": "*[nginx/delete]"}], "pass"),                      # every UNKNOWN of one test; brackets literal
    ([{"test": "*[nginx/evict]"}], "unknown"),                    # another test
    ([{"check": "in-flight", "test": "*apache*"}], "unknown"),    # both must match
], ids=["one-of-two", "both-by-glob", "by-test", "other-test", "check-and-test"])
def test_every_unknown_verdict_of_a_test_must_be_allowed(rules: list[dict], gate: str) -> None:
    t = unjudged("nginx/delete", IN_FLIGHT, SIGKILL_UNSEEN)
    s = decide([passed(), t], 1, {"allow_unknown": rules})["summary"]
    assert (s["gate"], s["exit_code"]) == (gate, 0 if gate == "pass" else 1), s["reason"]


def test_an_allowance_never_hides_a_failure() -> None:
    """A FAIL beside an allowed UNKNOWN fails; so does a test that failed on something else than its
    UNKNOWN verdict (its failure was seen), and pytest's exit 1 without a failed test recorded."""
    rules = {"allow_unknown": [{"check": "in-flight"}]}
    fail_beside = unjudged("nginx/delete", IN_FLIGHT, Verdict.fail("sigkill", "SIGKILLed after 30 s"))
    assert decide([passed(), fail_beside], 1, rules)["summary"]["gate"] == "fail"
    other = unjudged("nginx/delete", IN_FLIGHT, failure="AssertionError: evict terminated no pod of nginx")
    doc = decide([passed(), other], 1, rules)
    assert doc["tests"][1]["gate"] == "fail" and doc["summary"]["gate"] == "fail"
    s = decide([passed()], 1, rules)["summary"]
    assert (s["gate"], s["exit_code"]) == ("fail", 1) and "no failed test was recorded" in s["reason"]


def test_failed_on_unknown_reads_the_failure_message() -> None:
    v = [IN_FLIGHT.to_dict(), Verdict.ok("exit-code", "0").to_dict()]
    assert R.failed_on_unknown(v, "AssertionError: nginx/delete: UNKNOWN: in-flight: UNKNOWN: close-delimited")
    assert not R.failed_on_unknown(v, "AssertionError: evict terminated no pod")
    assert not R.failed_on_unknown([*v, Verdict.fail("sigkill", "x").to_dict()], "in-flight: UNKNOWN: x")


@pytest.mark.parametrize("pattern, text, match", [
    ("in-flight", "in-flight", True),
    ("in-*", "in-flight", True),
    ("in-flight", "in-flights", False),
    ("*[nginx/delete]", f"{SHUTDOWN}[nginx/delete]", True),
    ("*[nginx/delete]", f"{SHUTDOWN}[n]", False),                 # not a character class
    ("drain/?vict", "drain/evict", True),
])
def test_glob_match(pattern: str, text: str, match: bool) -> None:
    assert R.glob_match(pattern, text) is match


def skipped(suite: str, why: str = "needs the v1.33 node image") -> TestResult:
    return TestResult(f"suites/{suite}/test_{suite}.py::test_x", suite=suite, outcome="skipped", headline=why)


def test_a_requested_suite_that_ran_no_test_closes_the_gate() -> None:
    results = [passed(), skipped("upgrade")]
    s = decide(results, 0, None, ["smoke", "upgrade", "drain"])["summary"]
    assert (s["gate"], s["exit_code"]) == ("unknown", 5)
    assert s["reason"] == ("requested suites ran no test, so nothing was checked there: upgrade (all 1 tests skipped: "
                           "needs the v1.33 node image), drain (no test collected)")
    assert s["requested_suites"] == ["smoke", "upgrade", "drain"]
    assert [e["suite"] for e in s["empty_suites"]] == ["upgrade", "drain"]
    # Not named on the command line: the run gate alone (something passed) decides.
    assert decide(results, 0, None, [])["summary"]["gate"] == "pass"


def test_an_allowed_empty_suite_is_listed_and_spelled_either_way() -> None:
    results = [passed(), skipped("cluster_etcd")]
    s = decide(results, 0, {"allow_unknown": [], "allow_empty_suites": ["cluster-etcd"]},
               ["smoke", "cluster_etcd"])["summary"]
    assert (s["gate"], s["exit_code"]) == ("pass", 0)
    assert s["reason"] == "1 tests passed, 1 skipped; allowed by gate.allow_empty_suites: cluster_etcd"
    assert s["allowed"] == [{"by": "gate.allow_empty_suites", "rule": "cluster_etcd", "why": "",
                             "suite": "cluster_etcd", "reason": "all 1 tests skipped: needs the v1.33 node image"}]
    assert s["empty_suites"] == [{"suite": "cluster_etcd", "detail": "all 1 tests skipped: needs the v1.33 node image",
                                  "allowed": True}]


def test_allowances_alone_do_not_make_a_run_that_checked_nothing_pass() -> None:
    s = decide([unjudged("nginx/delete", IN_FLIGHT)], 1, {"allow_unknown": [{"check": "in-flight"}]})["summary"]
    assert (s["gate"], s["exit_code"]) == ("unknown", 5) and "no test passed" in s["reason"]


def test_drill_inconclusive_is_judged_by_its_headline() -> None:
    r = TestResult("suites/drain/test_drain.py::test_node_maintenance[drain]", suite="drain", outcome="failed",
                   headline="drill: UNKNOWN: drain: system unhealthy before injection")
    r.add(Verdict.unknown("drill", "drain: system unhealthy before injection"))
    s = decide([passed(), r], 1, {"allow_unknown": [{"check": "drill", "test": "*drain*"}]})["summary"]
    assert s["gate"] == "pass" and s["allowed"][0]["rule"] == "drill in *drain*"
