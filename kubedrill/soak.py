"""`kubedrill soak --suite NAME --runs N [-- pytest args]`: how often does a suite fail on a healthy app?

A release gate is only trusted if a red run means a real problem, so the flake rate is measured,
not guessed: the suite runs N times in a row, each run a separate pytest session that makes and
deletes its own clusters (a fresh cluster every run, as in CI), and the runs' results.json files are
folded into one table: per test, how many runs passed, failed or ended UNKNOWN, the spread of its
duration, and the reason of every run that did not pass.

The table goes into `soak.json` and `soak.md` under `<reports>/soak/<suite>-<stamp>/` (the runs'
own reports are kept beside it, `run-01/` ...), and into the last run's results.json and
report.html under `reports/latest/`, so a gate reader sees it where every other figure is.
Exit status: 0 when every run of every test passed, 1 otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kubedrill.config import SUITES, suite_dir
from kubedrill.report.meta import REPO_ROOT

RUN_TIMEOUT_S = 3 * 3600  # one run of the slowest suite (upgrade, cold) fits well inside this


@dataclass
class TestSoak:
    """One test's record over every run of the soak."""

    nodeid: str
    passed: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    durations: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # "run 3: FAIL <headline>" for every non-pass

    @property
    def runs(self) -> int:
        return self.passed + self.failed + self.unknown + self.skipped

    def spread(self) -> dict[str, float | None]:
        d = sorted(self.durations)
        if not d:
            return {"min_s": None, "median_s": None, "max_s": None}
        return {"min_s": round(d[0], 1), "median_s": round(statistics.median(d), 1), "max_s": round(d[-1], 1)}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("durations")
        return {**out, "runs": self.runs, **self.spread()}


def _reason(test: dict[str, Any]) -> str:
    """The one line that says why a test did not pass: its first non-passing verdict, else its headline."""
    for v in test.get("verdicts") or []:
        if v.get("status") in ("fail", "unknown"):
            return f"{v['status'].upper()} {v.get('check', '?')}: {str(v.get('reason', ''))[:300]}"
    text = str(test.get("headline") or test.get("longrepr") or test.get("outcome", "?"))
    return (text.splitlines() or ["?"])[0][:300]


def tabulate(runs: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Fold the runs' results.json documents (None: the run wrote none) into the soak table. Pure."""
    tests: dict[str, TestSoak] = {}
    broken: list[str] = []
    for i, doc in enumerate(runs, start=1):
        if doc is None:
            broken.append(f"run {i}: wrote no results.json")
            continue
        if not doc.get("tests"):
            broken.append(f"run {i}: no test ran ({doc.get('summary', {}).get('reason', 'no reason recorded')})")
        for t in doc.get("tests") or []:
            row = tests.setdefault(t["nodeid"], TestSoak(t["nodeid"]))
            gate = t.get("gate") or ("pass" if t.get("outcome") == "passed" else "fail")
            if t.get("outcome") == "skipped":
                row.skipped += 1
                row.reasons.append(f"run {i}: SKIPPED {_reason(t)}")
                continue
            if gate == "pass":
                row.passed += 1
            elif gate == "unknown":
                row.unknown += 1
                row.reasons.append(f"run {i}: {_reason(t)}")
            else:
                row.failed += 1
                row.reasons.append(f"run {i}: {_reason(t)}")
            if t.get("duration_s") is not None:
                row.durations.append(float(t["duration_s"]))
    rows = [tests[k].to_dict() for k in sorted(tests)]
    totals = {k: sum(r[k] for r in rows) for k in ("passed", "failed", "unknown", "skipped")}
    return {"runs": len(runs), "tests": rows, "totals": totals, "broken_runs": broken,
            "clean": not broken and totals["failed"] == 0 and totals["unknown"] == 0 and totals["passed"] > 0}


def render_markdown(table: dict[str, Any], suite: str, machine: str) -> str:
    """The committed form of the table (benchmarks/results/soak-*.md)."""
    lines = [f"# Soak: `{suite}`, {table['runs']} runs", "", machine, "",
             "| test | runs | pass | fail | unknown | skipped | min s | median s | max s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table["tests"]:
        lines.append(f"| `{r['nodeid'].split('::', 1)[-1]}` | {r['runs']} | {r['passed']} | {r['failed']} | "
                     f"{r['unknown']} | {r['skipped']} | {r['min_s']} | {r['median_s']} | {r['max_s']} |")
    t = table["totals"]
    lines += ["", f"Totals: {t['passed']} passed, {t['failed']} failed, {t['unknown']} unknown, "
                  f"{t['skipped']} skipped."]
    reasons = [(r["nodeid"], x) for r in table["tests"] for x in r["reasons"]] + [("", b) for b in table["broken_runs"]]
    if reasons:
        lines += ["", "Every run that did not pass:", ""] + [f"- `{n.split('::', 1)[-1]}` {x}" if n else f"- {x}"
                                                             for n, x in reasons]
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    """What the durations were measured on: they mean nothing without it."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    mem_kib = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                    if ln.startswith("MemTotal")), 0)
    return f"Machine: {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB, load average {load}."


def _run_once(suite: str, index: int, outdir: Path, extra: Sequence[str]) -> dict[str, Any] | None:
    """One pytest session of the suite with its reports in `outdir/run-NN`; its results.json or None."""
    reports = outdir / f"run-{index:02d}"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(REPO_ROOT),
           str(REPO_ROOT / "suites" / suite_dir(suite)), "--reports-dir", str(reports), *extra]
    print(f"[kubedrill soak] {suite} run {index}: {' '.join(cmd[3:])}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        code = subprocess.run(cmd, cwd=REPO_ROOT, timeout=RUN_TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        code = -1
    print(f"[kubedrill soak] {suite} run {index}: pytest exited {code} after {time.monotonic() - t0:.0f}s",
          file=sys.stderr, flush=True)
    try:
        doc: dict[str, Any] = json.loads((reports / "latest" / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return doc


def attach_to_latest(table: dict[str, Any], last_run: Path, reports_dir: Path) -> None:
    """Put the table into the last run's results.json and re-render its report into reports/latest."""
    from kubedrill.report.writer import render_file

    src = last_run / "latest" / "results.json"
    doc = json.loads(src.read_text())
    doc["soak"] = table
    latest = reports_dir / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    for name in ("junit.xml",):
        if (last_run / "latest" / name).exists():
            (latest / name).write_bytes((last_run / "latest" / name).read_bytes())
    (latest / "results.json").write_text(json.dumps(doc, indent=1))
    render_file(doc, latest / "report.html")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kubedrill soak", description=__doc__.split("\n\n")[1] if __doc__ else None)
    ap.add_argument("--suite", required=True, choices=SUITES, help="the suite to repeat")
    ap.add_argument("--runs", type=int, default=5, help="how many runs (each on fresh clusters); default 5")
    ap.add_argument("--reports-dir", default="reports", help="where soak/<suite>-<stamp>/ and latest/ go")
    ap.add_argument("--markdown", type=Path, help="also write the table here (e.g. benchmarks/results/soak-smoke.md)")
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: passed to every pytest run")
    args = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not 1 <= args.runs <= 100:
        ap.error(f"--runs must be between 1 and 100, got {args.runs}")
    extra = [a for a in args.pytest_args if a != "--"] if args.pytest_args[:1] == ["--"] else list(args.pytest_args)
    reports_dir = Path(args.reports_dir).resolve()
    outdir = reports_dir / "soak" / f"{args.suite}-{time.strftime('%Y%m%d-%H%M%S')}"
    outdir.mkdir(parents=True, exist_ok=True)
    machine_before = machine_line()
    started, t0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    docs = []
    for i in range(1, args.runs + 1):
        docs.append(_run_once(args.suite, i, outdir, extra))
    table = tabulate(docs)
    table.update({"suite": args.suite, "machine_before": machine_before, "machine_after": machine_line()})
    (outdir / "soak.json").write_text(json.dumps(table, indent=1))
    after = table["machine_after"].rsplit("load average ", 1)[-1]
    md = render_markdown(table, args.suite, f"Started {started}, {(time.monotonic() - t0) / 60:.0f} min in all. "
                                            f"{machine_before} At the end: load average {after}")
    (outdir / "soak.md").write_text(md)
    if args.markdown:
        args.markdown.write_text(md)
    last = next((outdir / f"run-{i:02d}" for i in range(args.runs, 0, -1) if docs[i - 1] is not None), None)
    if last is not None:
        attach_to_latest(table, last, reports_dir)
    print(md)
    print(f"[kubedrill soak] table: {outdir / 'soak.md'}", file=sys.stderr)
    return 0 if table["clean"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
