"""report.html: gate first, failed checks named with their reasons, self-contained, escaped."""

from __future__ import annotations

import re
import time

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.report import html as H
from kubedrill.report import results as R
from kubedrill.report.demo import demo_results
from kubedrill.report.model import TestResult
from kubedrill.report.summary import format_summary


def doc_for(results: list[TestResult], exitstatus: int = 1, notes: list[str] | None = None) -> dict:
    return R.build_doc(results, R.RunInfo(started=time.time() - 5, finished=time.time(), exitstatus=exitstatus,
                                          argv=["suites/"], notes=notes or []))


def gate_table(page: str) -> str:
    m = re.search(r"<table class='gates' id='gate-table'>.*?</table>", page, re.S)
    assert m, "no gate table"
    return m.group(0)


def test_failed_gate_names_the_check_and_reason_at_the_top() -> None:
    bad = TestResult("suites/drain/test_drain.py::test_drain_keeps_slo", suite="drain", outcome="failed")
    bad.add(Verdict.fail("availability", "7 requests failed while draining kd-worker2 (allowed 0)",
                         [Figure("failed_requests", 7, "requests")]))
    good = TestResult("suites/smoke/test_smoke.py::test_serves", suite="smoke", outcome="passed")
    good.add(Verdict.ok("serves", "200 OK"))
    page = H.render(doc_for([good, bad]))
    banner_end = page.index("</header>")
    assert "Release gate: FAIL" in page[:banner_end]
    assert "test_drain_keeps_slo" in page[:banner_end]  # the banner reason names the failed test
    table = gate_table(page)
    # The failed row comes first and carries the check and its reason.
    assert table.index("test_drain_keeps_slo") < table.index("test_serves")
    assert "availability: 7 requests failed while draining kd-worker2 (allowed 0)" in table
    assert page.index("gate-table") < page.index("id='run'") < page.index("suite-drain")


def test_passing_run_is_green() -> None:
    page = H.render(doc_for([TestResult("t.py::t", suite="s", outcome="passed")], 0))
    assert "class='banner g-pass'" in page and "Release gate: PASS" in page and "Why this run is broken" not in page


def test_broken_run_says_why() -> None:
    results = [TestResult(f"suites/drain/test_d.py::t{i}", suite="drain", outcome="error",
                          headline="Failed: cluster three-node creation failed: kind exited 1") for i in range(3)]
    page = H.render(doc_for(results, 1, notes=["cluster three-node creation failed: kind exited 1: no space"]))
    why = page[page.index("id='why'"):page.index("id='gates'")]
    assert "Why this run is broken" in why
    assert "no space" in why and "3 test(s) errored" in why and "Failed: cluster three-node creation failed" in why
    assert "Failed: cluster three-node creation failed" in gate_table(page)


def test_collection_failure_without_tests_still_reports() -> None:
    page = H.render(doc_for([], 2, notes=["collection error in suites/drain/test_d.py: ImportError: no module x"]))
    assert "Release gate: FAIL" in page and "ImportError: no module x" in page and "No tests ran" in page


def test_self_contained_no_scripts_or_external_assets() -> None:
    page = H.render(doc_for(demo_results()))
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page), "external reference"
    assert "url(" not in page and "@import" not in page
    assert page.count("<svg") >= 4  # timeline, unavailability, elections, shutdown


def test_user_text_is_escaped() -> None:
    r = TestResult("t.py::t[<b>]", suite="<script>", outcome="failed")
    r.add(Verdict.fail("x<y", "reason with <script>alert(1)</script> & more"))
    page = H.render(doc_for([r]))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page


def test_artifacts_linked_for_failed_tests() -> None:
    r = TestResult("t.py::t", suite="s", outcome="failed")
    r.artifacts.append({"path": "artifacts/t/", "label": "artifacts", "files": ["artifacts/t/pod.log"]})
    table = gate_table(H.render(doc_for([r])))
    assert "href='artifacts/t/'" in table and "href='artifacts/t/pod.log'" in table


def test_terminal_summary_lists_failures_with_reasons() -> None:
    text = format_summary(doc_for(demo_results()), width=100)
    assert text.splitlines()[0].startswith("== kubedrill gate: FAIL")
    assert "FAIL  drain" in text and "↳ availability:" in text and "PASS  smoke" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_formatting_helpers() -> None:
    assert H.duration(0.5) == "0.50 s" and H.duration(75) == "1m 15s" and H.duration(3725) == "1h 02m"
    assert H.value(None) == "—" and H.value(0.99912) == "0.9991" and H.value(12000) == "12,000"
    assert H.anchor("a/b.py::c[d]") == "t-a-b-py-c-d"


def test_what_the_run_config_allowed_is_listed_at_the_top_and_on_the_test() -> None:
    ok = TestResult("suites/smoke/test_smoke.py::test_nodes_ready", suite="smoke", outcome="passed")
    unseen = TestResult("suites/shutdown/test_shutdown.py::test_pod[nginx/delete]", suite="shutdown", outcome="failed",
                        headline="AssertionError: in-flight: UNKNOWN: <close-delimited> body")
    unseen.add(Verdict.unknown("in-flight", "<close-delimited> body"))
    skipped = TestResult("suites/upgrade/test_upgrade.py::test_x", suite="upgrade", outcome="skipped", headline="no image")
    gate = {"allow_unknown": [{"check": "in-flight", "test": "*", "reason": "nginx & downloads"}],
            "allow_empty_suites": []}
    doc = R.build_doc([ok, unseen, skipped], R.RunInfo(
        started=time.time() - 5, finished=time.time(), exitstatus=1, argv=["suites/"], config={"gate": gate},
        requested_suites=["smoke", "shutdown", "upgrade"]))
    assert doc["summary"]["gate"] == "unknown"  # upgrade ran no test and is not allowed
    page = H.render(doc)
    assert page.index("id='empty-suites'") < page.index("id='allowed'") < page.index("id='gate-table'")
    assert "requested suite <code>upgrade</code> ran no test: all 1 tests skipped: no image" in page
    assert ("<strong>allowed by gate.allow_unknown[0]</strong> (<code>in-flight</code>) <span class='muted'>— "
            "nginx &amp; downloads</span>: <code>in-flight</code> UNKNOWN in <a href='#t-suites-shutdown-test_shutdown-py-"
            "test_pod-nginx-delete'>test_pod[nginx/delete]</a>: &lt;close-delimited&gt; body") in page
    assert "<span class='chip s-unknown'>allowed</span>" in gate_table(page)
    text = format_summary(doc, width=200)
    assert ("   allowed by gate.allow_unknown[0] (in-flight) [nginx & downloads]: in-flight in test_pod[nginx/delete]: "
            "<close-delimited> body") in text.splitlines()
    assert "test_pod[nginx/delete]  (allowed)" in text
    assert "<br><strong>allowed by gate.allow_unknown[0]</strong> (<code>in-flight</code>) <span class='muted'>— " \
        "nginx &amp; downloads</span></td>" in gate_table(page)


def test_a_suite_with_an_unjudged_test_is_not_shown_as_passed() -> None:
    ok = TestResult("suites/shutdown/test_shutdown.py::test_a", suite="shutdown", outcome="passed")
    unseen = TestResult("suites/shutdown/test_shutdown.py::test_b", suite="shutdown", outcome="failed",
                        headline="AssertionError: in-flight: UNKNOWN: no framing")
    unseen.add(Verdict.unknown("in-flight", "no framing"))
    page = H.render(doc_for([ok, unseen]))
    assert re.search(r"<h2>shutdown <span class='chip s-unknown'>UNKNOWN</span>.*?2 tests, 1 not passed", page)
