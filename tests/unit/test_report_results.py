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
