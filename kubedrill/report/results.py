"""results.json: the machine-readable record of a run, and the gate decision derived from it.

The document is the single source for report.html, the terminal summary and any later tooling,
so it carries everything needed to judge and reproduce a run (schema: results.schema.json next
to this file; prose: docs/results-schema.md). The gate is computed here, once: FAIL if any test
failed or errored or pytest itself did not finish cleanly, UNKNOWN if a test could not be judged
(it failed on UNKNOWN verdicts only: kubedrill could not see, which is never a PASS, and not a
finding about the workload either) or if nothing passed (a gate that checked nothing must not
open), PASS otherwise.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

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


def test_gate(outcome: str, verdicts: list[dict[str, Any]]) -> str:
    """One test's gate: its pytest outcome, except that a failure whose verdicts are all UNKNOWN
    (none FAIL) is "unknown": the drill could not see, it did not see a problem."""
    gate_word = OUTCOME_GATE.get(outcome, "unknown")
    statuses = {v.get("status") for v in verdicts}
    if gate_word == "fail" and outcome == "failed" and "unknown" in statuses and "fail" not in statuses:
        return "unknown"
    return gate_word


def _names(tests: list[dict[str, Any]]) -> str:
    return ", ".join(short_name(t["nodeid"]) for t in tests[:3]) + (" …" if len(tests) > 3 else "")


def gate(tests: list[dict[str, Any]], exitstatus: int) -> tuple[str, str]:
    """The run's gate status and a one-line reason."""
    bad = [t for t in tests if t["gate"] == "fail"]
    unseen = [t for t in tests if t["gate"] == "unknown"]
    passed = [t for t in tests if t["gate"] == "pass"]
    if bad:
        return "fail", f"{len(bad)} of {len(tests)} tests failed or errored: {_names(bad)}"
    if unseen:
        return "unknown", f"{len(unseen)} of {len(tests)} tests could not be judged (UNKNOWN): {_names(unseen)}"
    if exitstatus not in (0, 5):
        return "fail", f"pytest exited {exitstatus}: {EXIT_MEANING.get(exitstatus, 'unexpected exit status')}"
    if not tests:
        return "unknown", "no tests ran, so nothing was checked"
    if not passed:
        return "unknown", f"no test passed ({len(tests)} skipped), so nothing was checked"
    skipped = len(tests) - len(passed)
    return "pass", f"{len(passed)} tests passed" + (f", {skipped} skipped" if skipped else "")


def build_doc(results: list[TestResult], run: RunInfo) -> dict[str, Any]:
    """Assemble the results.json document (plain JSON types only, NaN-free)."""
    tests = []
    for r in results:
        d = r.to_dict()
        d["name"] = short_name(r.nodeid)
        d["gate"] = test_gate(r.outcome, d["verdicts"])
        if not d.get("headline") and r.longrepr and d["gate"] != "pass":
            d["headline"] = headline(r.longrepr)
        tests.append(d)
    status, reason = gate(tests, run.exitstatus)
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
            "gate": status,
            "reason": reason,
            "total": len(tests),
            **counts,
            "errors": _error_groups(tests),
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
