"""results.json: the machine-readable record of a run, and the gate decision derived from it.

The document is the single source for report.html, the terminal summary and any later tooling,
so it carries everything needed to judge and reproduce a run (schema: results.schema.json next
to this file; prose: docs/results-schema.md). The gate is computed here, once: FAIL if any test
failed or errored or pytest itself did not finish cleanly, UNKNOWN if a test could not be judged
(it failed on UNKNOWN verdicts only: kubedrill could not see, which is never a PASS, and not a
finding about the workload either), if a suite named on the command line ran no test, or if
nothing passed (a gate that checked nothing must not open), PASS otherwise. UNKNOWN closes the gate
like FAIL. The run config's `gate:` section is the only way to let an UNKNOWN or an empty suite
through, and everything it let through is listed in the document, so an allowance is never silent.
The exit code of the run follows the gate (`exit_code`): the pytest plugin sets it.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import kubedrill
from kubedrill.report import meta as M
from kubedrill.report.model import SCHEMA_VERSION, TestResult

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")

# pytest exit codes (pytest.ExitCode) and what they mean for a gate reader.
EXIT_MEANING = {
    0: "all tests passed",
    1: "some tests failed",
    2: "interrupted (Ctrl-C, or errors during collection)",
    3: "internal pytest error",
    4: "pytest usage error",
    5: "no tests were collected",
}
OUTCOME_GATE = {"passed": "pass", "failed": "fail", "error": "fail", "skipped": "skip"}
EXIT_FAILED = 1  # a test failed, errored or could not be judged (pytest's TESTS_FAILED)
EXIT_NOTHING_CHECKED = 5  # no test collected, none passed, or a requested suite ran no test


@dataclass
class RunInfo:
    """What the plugin knows about the session beyond the per-test results."""

    started: float
    finished: float
    exitstatus: int
    argv: list[str]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # add_run_meta() values
    config: dict[str, Any] | None = None  # RunConfig.to_dict() when a config was loaded
    cwd: str = field(default_factory=os.getcwd)
    # Suites named on the command line (folders under suites/, as in TestResult.suite): each must
    # run a test, or the gate stays closed unless gate.allow_empty_suites names it.
    requested_suites: list[str] = field(default_factory=list)


def _finite(x: Any) -> Any:
    """JSON has no NaN/Infinity; a non-finite measurement becomes null (and stays explicable via detail)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def short_name(nodeid: str) -> str:
    """'suites/drain/test_drain.py::test_keeps_slo[ha]' -> 'test_keeps_slo[ha]'."""
    return nodeid.split("::", 1)[1] if "::" in nodeid else nodeid


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _error_groups(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors grouped by their one-line cause: 30 tests erroring on one broken cluster fixture is one finding."""
    groups: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for t in tests:
        if t["outcome"] != "error":
            continue
        head = t.get("headline") or "error (no message)"
        g = groups.setdefault(head, {"headline": head, "count": 0, "tests": []})
        g["count"] += 1
        if len(g["tests"]) < 5:
            g["tests"].append(t["nodeid"])
    return list(groups.values())


def failed_on_unknown(verdicts: list[dict[str, Any]], failure: str) -> bool:
    """True when a failed test's failure is an UNKNOWN verdict: it has no FAIL verdict, and the
    failure message names one of its UNKNOWN verdicts as `str(Verdict)` does ("in-flight: UNKNOWN").

    Suites fail on a verdict with `assert verdict.passed, str(verdict)`, and the plugin turns an
    Inconclusive drill into a "drill: UNKNOWN" headline, so both say so. A test that recorded an
    UNKNOWN verdict and then failed on something else failed: that failure was seen.
    """
    if any(v.get("status") == "fail" for v in verdicts):
        return False
    return any(v.get("status") == "unknown" and f"{v.get('check')}: UNKNOWN" in failure for v in verdicts)


def test_gate(outcome: str, verdicts: list[dict[str, Any]], failure: str = "") -> str:
    """One test's gate: its pytest outcome, except that a failure on UNKNOWN verdicts only
    (failed_on_unknown) is "unknown": the drill could not see, it did not see a problem."""
    gate_word = OUTCOME_GATE.get(outcome, "unknown")
    if outcome == "failed" and failed_on_unknown(verdicts, failure):
        return "unknown"
    return gate_word


def _names(tests: list[dict[str, Any]]) -> str:
    return ", ".join(short_name(t["nodeid"]) for t in tests[:3]) + (" …" if len(tests) > 3 else "")


def glob_match(pattern: str, text: str) -> bool:
    """`*` (any run) and `?` (one character) match; everything else is literal, brackets included,
    since parametrized node ids are full of them (test_x[sample-graceful/delete])."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, flags=re.DOTALL) is not None


class Gate(NamedTuple):
    """The run's gate: status, a one-line reason, what the run config let through, and the exit code."""

    status: str
    reason: str
    allowed: list[dict[str, Any]]
    exit_code: int
    empty_suites: list[dict[str, Any]]


def _rule_text(rule: Mapping[str, Any]) -> str:
    check, test = rule.get("check", "*"), rule.get("test", "*")
    return check if test == "*" else f"{check} in {test}"


def allowed_unknowns(test: Mapping[str, Any], rules: list[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The allowance of each UNKNOWN verdict of a test whose gate is "unknown", or None when any of
    them is not allowed (one unallowed UNKNOWN keeps the test closing the gate)."""
    out: list[dict[str, Any]] = []
    for v in test.get("verdicts", []):
        if v.get("status") != "unknown":
            continue
        i, rule = next(((i, r) for i, r in enumerate(rules)
                        if glob_match(r.get("check", "*"), v["check"]) and glob_match(r.get("test", "*"), test["nodeid"])),
                       (None, None))
        if rule is None:
            return None
        out.append({"by": f"gate.allow_unknown[{i}]", "rule": _rule_text(rule), "why": rule.get("reason", ""),
                    "test": test["nodeid"], "check": v["check"], "reason": v.get("reason", "")})
    return out or None


def _suite_key(name: str) -> str:
    """Config names use '-', suite folders '_' (kubedrill.config.suite_dir; report may not import config)."""
    return name.replace("-", "_")


def empty_suites(tests: list[dict[str, Any]], requested: list[str]) -> list[dict[str, Any]]:
    """Requested suites that ran no test: none collected, or every one skipped."""
    out = []
    for suite in requested:
        mine = [t for t in tests if _suite_key(t.get("suite", "")) == _suite_key(suite)]
        if any(t["gate"] != "skip" for t in mine):
            continue
        if not mine:
            detail = "no test collected"
        else:
            why = next((t.get("headline") or t.get("longrepr", "") for t in mine if t.get("headline") or t.get("longrepr")), "")
            detail = f"all {len(mine)} tests skipped" + (f": {why[:200]}" if why else "")
        out.append({"suite": suite, "detail": detail})
    return out


def _allowed_text(allowed: list[dict[str, Any]]) -> str:
    """'allowed by gate.allow_unknown: in-flight (2 tests); allowed by gate.allow_empty_suites: upgrade'."""
    unknown: dict[str, set[str]] = {}
    for a in allowed:
        if "check" in a:
            unknown.setdefault(a["check"], set()).add(a["test"])
    parts = []
    if unknown:
        parts.append("allowed by gate.allow_unknown: " + ", ".join(
            f"{c} ({len(ts)} test{'s' if len(ts) > 1 else ''})" for c, ts in unknown.items()))
    suites = [a["suite"] for a in allowed if "suite" in a]
    if suites:
        parts.append("allowed by gate.allow_empty_suites: " + ", ".join(suites))
    return "; ".join(parts)


def gate(tests: list[dict[str, Any]], exitstatus: int, policy: Mapping[str, Any] | None = None,
         requested_suites: list[str] | None = None) -> Gate:
    """The run's gate. `policy` is the run config's `gate` section (RunConfig.to_dict()["gate"]);
    without one nothing UNKNOWN and no empty requested suite is let through."""
    policy = policy or {}
    rules = list(policy.get("allow_unknown") or [])
    may_be_empty = {_suite_key(s) for s in policy.get("allow_empty_suites") or []}
    bad = [t for t in tests if t["gate"] == "fail"]
    allowed: list[dict[str, Any]] = []
    unseen = []
    for t in tests:
        if t["gate"] == "unknown":
            granted = allowed_unknowns(t, rules)
            if granted is None:
                unseen.append(t)
            else:
                allowed += granted
    empty = empty_suites(tests, list(requested_suites or []))
    for e in empty:
        e["allowed"] = _suite_key(e["suite"]) in may_be_empty
        if e["allowed"]:
            allowed.append({"by": "gate.allow_empty_suites", "rule": e["suite"], "why": "", "suite": e["suite"],
                            "reason": e["detail"]})
    closed = [e for e in empty if not e["allowed"]]
    passed = [t for t in tests if t["gate"] == "pass"]
    also = _allowed_text(allowed)

    def out(status: str, reason: str, code: int) -> Gate:
        return Gate(status, reason + (f"; {also}" if also else ""), allowed, 0 if status == "pass" else code, empty)

    if bad:
        return out("fail", f"{len(bad)} of {len(tests)} tests failed or errored: {_names(bad)}",
                   exitstatus if exitstatus not in (0, EXIT_NOTHING_CHECKED) else EXIT_FAILED)
    if unseen:
        return out("unknown", f"{len(unseen)} of {len(tests)} tests could not be judged (UNKNOWN): {_names(unseen)}",
                   exitstatus if exitstatus not in (0, EXIT_NOTHING_CHECKED) else EXIT_FAILED)
    if exitstatus not in (0, EXIT_FAILED, EXIT_NOTHING_CHECKED):
        return out("fail", f"pytest exited {exitstatus}: {EXIT_MEANING.get(exitstatus, 'unexpected exit status')}",
                   exitstatus)
    if exitstatus == EXIT_FAILED and not any("test" in a for a in allowed):
        # pytest counted a failure this document has no test for (e.g. a crashed xdist worker's).
        return out("fail", "pytest exited 1 (some tests failed) but no failed test was recorded", EXIT_FAILED)
    if closed:
        names = ", ".join(f"{e['suite']} ({e['detail']})" for e in closed)
        return out("unknown", f"requested suite{'s' if len(closed) > 1 else ''} ran no test, so nothing was checked "
                   f"there: {names}", EXIT_NOTHING_CHECKED)
    if not tests:
        return out("unknown", "no tests ran, so nothing was checked", EXIT_NOTHING_CHECKED)
    if not passed:
        return out("unknown", f"no test passed ({len(tests)} skipped or allowed UNKNOWN), so nothing was checked",
                   EXIT_NOTHING_CHECKED)
    rest = len(tests) - len(passed)
    skipped = rest - len({a["test"] for a in allowed if "test" in a})
    return out("pass", f"{len(passed)} tests passed" + (f", {skipped} skipped" if skipped else ""), 0)


def test_docs(results: list[TestResult]) -> list[dict[str, Any]]:
    """The `tests` entries of results.json, each with its name, headline and gate."""
    tests = []
    for r in results:
        d = r.to_dict()
        d["name"] = short_name(r.nodeid)
        if not d.get("headline") and r.longrepr and r.outcome != "passed":
            d["headline"] = headline(r.longrepr)
        d["gate"] = test_gate(r.outcome, d["verdicts"], f"{d.get('headline', '')}\n{r.longrepr}")
        tests.append(d)
    return tests


def build_doc(results: list[TestResult], run: RunInfo) -> dict[str, Any]:
    """Assemble the results.json document (plain JSON types only, NaN-free)."""
    tests = test_docs(results)
    decision = gate(tests, run.exitstatus, (run.config or {}).get("gate"), run.requested_suites)
    let_through = {a["test"] for a in decision.allowed if "test" in a}
    for t in tests:
        if t["nodeid"] in let_through:
            t["allowed"] = True
    counts = {k: sum(1 for t in tests if t["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    pinned = M.read_versions_env()
    configured = {"k8s_version": (run.config or {}).get("cluster", {}).get("k8s_version")}
    recorded = {k: v for k, v in run.meta.items() if M.version_name(k)}
    other_meta = {k: v for k, v in run.meta.items() if not M.version_name(k)}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "kubedrill_version": kubedrill.__version__,
            "started": _iso(run.started),
            "finished": _iso(run.finished),
            "started_epoch": round(run.started, 3),
            "duration_s": round(run.finished - run.started, 3),
            "exitstatus": run.exitstatus,
            "exit_meaning": EXIT_MEANING.get(run.exitstatus, "unexpected exit status"),
            "argv": list(run.argv),
            "reproduce": M.reproduce_command(list(run.argv), run.cwd),
            "cwd": run.cwd,
            "versions": M.versions(pinned, configured, recorded),
            "pinned": pinned,
            "host": M.host_info(),
            "git": M.git_info(),
            "meta": other_meta,
            "config": run.config,
            "notes": list(run.notes),
        },
        "summary": {
            "gate": decision.status,
            "reason": decision.reason,
            "exit_code": decision.exit_code,
            "total": len(tests),
            **counts,
            "errors": _error_groups(tests),
            "allowed": decision.allowed,
            "requested_suites": list(run.requested_suites),
            "empty_suites": decision.empty_suites,
        },
        "tests": tests,
    }
    return _finite(doc)


def headline(longrepr: str) -> str:
    """The most telling line of a pytest longrepr: the first `E   ` line, else the last line."""
    lines = [ln.rstrip() for ln in longrepr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("E "):
            return ln[1:].strip()[:300]
    return (lines[-1].strip() if lines else "")[:300]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


def validate(doc: Mapping[str, Any]) -> list[str]:
    """Schema problems in `doc`, one line each ('' path means the top level); [] when valid.

    jsonschema is optional at run time (reports must still be written without it); when it is
    missing this returns a single note saying validation was skipped.
    """
    try:
        import jsonschema
    except ImportError:
        return ["jsonschema is not installed; results.json was not validated"]
    validator = jsonschema.Draft202012Validator(schema())
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<top>'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
