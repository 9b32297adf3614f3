"""Write reports/latest/{results.json,report.html} and keep a timestamped copy of the folder.

The writer must leave a report behind whatever happened, because a gate that finds no report
cannot tell "broken" from "not run": if rendering the HTML fails, a plain fallback page with the
error and the JSON is written instead, and results.json is always written first.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from html import escape
from pathlib import Path
from typing import Any

from kubedrill.check.verdict import Figure, Status, Verdict
from kubedrill.report import html as H
from kubedrill.report.model import TestResult
from kubedrill.report.results import RunInfo, build_doc

MAX_ARTIFACT_FILES = 200


def result_from_dict(d: dict[str, Any]) -> TestResult:
    """Rebuild a TestResult from its to_dict() form (xdist workers ship results as dicts)."""
    r = TestResult(nodeid=d["nodeid"], suite=d.get("suite", ""), outcome=d.get("outcome", "unknown"))
    r.duration_s = d.get("duration_s", 0.0)
    r.longrepr = d.get("longrepr", "")
    r.headline = d.get("headline", "")
    r.markers = d.get("markers", [])
    r.artifacts = d.get("artifacts", [])
    verdict_figs: set[tuple[str, Any, str, str]] = set()
    for v in d.get("verdicts", []):
        figs = [Figure(**f) for f in v.get("figures", [])]
        verdict_figs.update((f.name, f.value, f.unit, f.detail) for f in figs)
        r.verdicts.append(Verdict(v["check"], Status(v["status"]), v["reason"], figs, v.get("series", {})))
    # to_dict() lists free figures then verdict figures; keep only the free ones to avoid doubling.
    for f in d.get("figures", []):
        fig = Figure(**f)
        if (fig.name, fig.value, fig.unit, fig.detail) not in verdict_figs:
            r.figures.append(fig)
    return r


def _artifacts_relative(results: list[TestResult], latest: Path) -> None:
    """Make artifact paths relative to the report folder (so links work in the dated copy too) and
    list the files inside artifact directories so the report can link each one."""
    root = latest.resolve()
    for r in results:
        fixed = []
        for a in r.artifacts:
            a = dict(a)
            p = Path(a["path"])
            full = p if p.is_absolute() else (Path.cwd() / p)
            try:
                rel = full.resolve().relative_to(root)
                a["path"] = rel.as_posix() + ("/" if full.is_dir() else "")
            except ValueError:
                a["path"] = full.resolve().as_uri() if full.exists() else str(p)
            if full.is_dir() and "files" not in a:
                files = sorted(f for f in full.rglob("*") if f.is_file())[:MAX_ARTIFACT_FILES]
                try:
                    a["files"] = [f.resolve().relative_to(root).as_posix() for f in files]
                except ValueError:
                    a["files"] = [f.resolve().as_uri() for f in files]
            fixed.append(a)
        r.artifacts = fixed


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_file(doc: dict[str, Any], path: Path) -> None:
    """Write report.html for `doc`; on a rendering bug write a fallback page that says so."""
    try:
        page = H.render(doc)
    except Exception:  # noqa: BLE001 - the gate needs a page even if the renderer has a bug
        page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>kubedrill: report rendering failed"
                "</title></head><body><h1>report.html could not be rendered</h1><p>Gate: "
                f"<strong>{escape(str(doc.get('summary', {}).get('gate')))}</strong> — "
                f"{escape(str(doc.get('summary', {}).get('reason')))}</p><pre>{escape(traceback.format_exc())}</pre>"
                f"<h2>results.json</h2><pre>{escape(json.dumps(doc, indent=2))}</pre></body></html>")
    _write_atomic(path, page)


def write_reports(results: list[TestResult], outdir: Path, started: float, exitstatus: int,
                  notes: list[str], argv: list[str], meta: dict[str, Any] | None = None,
                  config: dict[str, Any] | None = None, snapshot: bool = True,
                  requested_suites: list[str] | None = None) -> Path:
    """Write results.json and report.html into `outdir`/latest; return that folder.

    With `snapshot` (the default) the folder is also copied to `outdir`/<UTC stamp>; the pytest
    plugin passes False and calls snapshot_latest() at unconfigure, after junit.xml and
    pytest-html's page are written.
    """
    latest = Path(outdir) / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    _artifacts_relative(results, latest)
    run = RunInfo(started=started, finished=time.time(), exitstatus=exitstatus, argv=list(argv),
                  notes=list(notes), meta=dict(meta or {}), config=config,
                  requested_suites=list(requested_suites or []))
    doc = build_doc(results, run)
    _write_atomic(latest / "results.json", json.dumps(doc, indent=2))
    render_file(doc, latest / "report.html")
    if snapshot:
        snapshot_latest(Path(outdir), started)
    return latest


def snapshot_latest(outdir: Path, started: float) -> Path:
    """Copy `outdir`/latest to `outdir`/<YYYYmmddTHHMMSSZ> (suffixed if that exists)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    dated = outdir / stamp
    n = 2
    while dated.exists():
        dated = outdir / f"{stamp}-{n}"
        n += 1
    shutil.copytree(outdir / "latest", dated)
    return dated
