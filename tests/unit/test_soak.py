"""The soak table: every run of every test counted, every non-pass explained (kubedrill.soak)."""

from __future__ import annotations

from typing import Any

import pytest

from kubedrill.soak import main, render_markdown, tabulate


def _test(nodeid: str, outcome: str = "passed", gate: str | None = None, duration: float = 10.0,
          verdicts: list[dict[str, Any]] | None = None, headline: str = "") -> dict[str, Any]:
    return {"nodeid": nodeid, "outcome": outcome, "gate": gate or ("pass" if outcome == "passed" else "fail"),
            "duration_s": duration, "verdicts": verdicts or [], "headline": headline}


def _run(*tests: dict[str, Any]) -> dict[str, Any]:
    return {"summary": {"reason": "x"}, "tests": list(tests)}


def test_counts_spread_and_reasons_per_test() -> None:
    a, b = "suites/smoke/test_smoke.py::test_a", "suites/smoke/test_smoke.py::test_b"
    runs = [
        _run(_test(a, duration=10), _test(b, duration=5)),
        _run(_test(a, duration=14), _test(b, "failed", duration=6, headline="AssertionError: one node answered")),
        _run(_test(a, "failed", gate="unknown", duration=12,
                   verdicts=[{"status": "unknown", "check": "in-flight", "reason": "no request spanned SIGTERM"}]),
             _test(b, duration=7)),
    ]
    table = tabulate(runs)
    rows = {r["nodeid"]: r for r in table["tests"]}
    assert (rows[a]["passed"], rows[a]["failed"], rows[a]["unknown"]) == (2, 0, 1)
    assert (rows[a]["min_s"], rows[a]["median_s"], rows[a]["max_s"]) == (10.0, 12.0, 14.0)
    assert rows[a]["reasons"] == ["run 3: UNKNOWN in-flight: no request spanned SIGTERM"]
    assert rows[b]["reasons"] == ["run 2: AssertionError: one node answered"]
    assert table["totals"] == {"passed": 4, "failed": 1, "unknown": 1, "skipped": 0}
    assert table["clean"] is False


def test_a_clean_soak_and_one_that_checked_nothing() -> None:
    t = "suites/etcd/test_x.py::test_y"
    assert tabulate([_run(_test(t)), _run(_test(t))])["clean"] is True
    # A run without results, or with no test, is not a clean soak: it saw nothing.
    assert tabulate([_run(_test(t)), None])["clean"] is False
    empty = tabulate([_run(), _run()])
    assert empty["clean"] is False and len(empty["broken_runs"]) == 2


def test_skips_are_counted_and_explained_not_passed() -> None:
    t = "suites/drain/test_drain.py::test_z"
    table = tabulate([_run(_test(t, "skipped", gate="skip", headline="needs two workers"))])
    row = table["tests"][0]
    assert (row["skipped"], row["passed"]) == (1, 0)
    assert row["reasons"] == ["run 1: SKIPPED needs two workers"]
    assert table["clean"] is False


def test_markdown_lists_every_non_pass() -> None:
    t = "suites/smoke/test_smoke.py::test_a"
    md = render_markdown(tabulate([_run(_test(t)), _run(_test(t, "failed", headline="boom"))]), "smoke", "Machine: x")
    assert "| `test_a` | 2 | 1 | 1 | 0 | 0 |" in md
    assert "- `test_a` run 2: boom" in md


def test_bad_usage_is_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--suite", "no-such-suite"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--suite", "smoke", "--runs", "0"])


def test_the_table_goes_into_a_valid_results_json_and_the_report() -> None:
    import time

    from kubedrill.report import results as R
    from kubedrill.report.demo import demo_results
    from kubedrill.report.html import render

    doc = R.build_doc(demo_results(), R.RunInfo(started=time.time() - 60, finished=time.time(), exitstatus=1,
                                                argv=["suites/smoke"]))
    t = doc["tests"][0]["nodeid"]
    doc["soak"] = {**tabulate([_run(_test(t)), _run(_test(t, "failed", headline="boom"))]), "suite": "smoke"}
    assert R.validate(doc) == []
    html = render(doc)
    assert "<section id='soak'><h2>Soak: smoke, 2 runs" in html and "not clean" in html
    assert "run 2: boom" in html
