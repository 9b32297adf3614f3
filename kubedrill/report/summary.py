"""The gate summary printed to the terminal at the end of `kubedrill run` (and `kubedrill report`).

CI logs are often all anyone looks at, so the terminal gets the same verdict as report.html:
the gate, one row per test, and the reason for every test that did not pass.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

from kubedrill.report.html import duration
from kubedrill.report.results import short_name

MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "unknown": "UNKN"}


def _reasons(t: dict[str, Any]) -> list[str]:
    out = [f"{v['check']}: {v['reason']}" for v in t.get("verdicts", []) if v.get("status") != "pass"]
    if not out and t.get("headline"):
        out.append(t["headline"])
    return out


def allowed_lines(summary: dict[str, Any]) -> list[str]:
    """One line per UNKNOWN verdict or empty suite the run config let through the gate, so an allowance
    is as visible as a failure: 'allowed by gate.allow_unknown[0] (in-flight): in-flight in test_x: reason'."""
    out = []
    for a in summary.get("allowed", []):
        what = f"{a['check']} in {short_name(a['test'])}" if "test" in a else f"suite {a['suite']}"
        why = f" [{a['why']}]" if a.get("why") else ""
        out.append(f"allowed by {a['by']} ({a['rule']}){why}: {what}: {a['reason']}")
    return out


def format_summary(doc: dict[str, Any], width: int | None = None) -> str:
    """A plain-text gate table; lines fit `width` (default: the terminal)."""
    width = width or min(shutil.get_terminal_size((120, 20)).columns, 160)
    s, run, tests = doc["summary"], doc["run"], doc["tests"]
    lines = textwrap.wrap(f"== kubedrill gate: {s['gate'].upper()} — {s['reason']}", width, subsequent_indent="   ")
    lines += [f"   {s['total']} tests: {s['passed']} passed, {s['failed']} failed, {s['error']} errors, "
             f"{s['skipped']} skipped in {duration(run.get('duration_s'))}"]
    for line in allowed_lines(s):
        lines += textwrap.wrap(line, width, initial_indent="   ", subsequent_indent="      ")
    for note in run.get("notes", []):
        lines += textwrap.wrap(f"note: {note}", width, initial_indent="   ", subsequent_indent="         ")
    for g in s.get("errors", []):
        lines += textwrap.wrap(f"{g['count']} error(s): {g['headline']}", width, initial_indent="   ",
                               subsequent_indent="      ")
    if tests:
        suite_w = max(5, min(14, max(len(t.get("suite", "")) for t in tests)))
        lines.append("")
        lines.append(f"   {'GATE':4}  {'SUITE':{suite_w}}  {'TIME':>8}  TEST")
        order = {"fail": 0, "unknown": 1, "skip": 2, "pass": 3}
        for t in sorted(tests, key=lambda t: (order.get(t["gate"], 1), t.get("suite", ""), t["nodeid"])):
            lines.append(f"   {MARK.get(t['gate'], '?'):4}  {t.get('suite', '')[:suite_w]:{suite_w}}  "
                         f"{duration(t.get('duration_s')):>8}  {t.get('name') or t['nodeid']}"
                         + ("  (allowed)" if t.get("allowed") else ""))
            if t["gate"] in ("fail", "unknown"):
                for r in _reasons(t)[:4]:
                    lines += textwrap.wrap(r, width, initial_indent=" " * (21 + suite_w) + "↳ ",
                                           subsequent_indent=" " * (23 + suite_w))
    return "\n".join(lines)
