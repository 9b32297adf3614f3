"""Write reports/latest/{results.json,report.html} and a timestamped copy. (Stub; see issue 6.)"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from kubedrill.check.verdict import Figure, Status, Verdict
from kubedrill.report.model import SCHEMA_VERSION, TestResult


def result_from_dict(d: dict[str, Any]) -> TestResult:
    r = TestResult(nodeid=d["nodeid"], suite=d.get("suite", ""), outcome=d.get("outcome", "unknown"))
    r.duration_s = d.get("duration_s", 0.0)
    r.longrepr = d.get("longrepr", "")
    r.markers = d.get("markers", [])
    r.artifacts = d.get("artifacts", [])
    for v in d.get("verdicts", []):
        r.verdicts.append(
            Verdict(v["check"], Status(v["status"]), v["reason"],
                    [Figure(**f) for f in v.get("figures", [])], v.get("series", {}))
        )
    return r


def write_reports(results: list[TestResult], outdir: Path, started: float, exitstatus: int,
                  notes: list[str], argv: list[str]) -> Path:
    latest = outdir / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run": {"started": started, "finished": time.time(), "exitstatus": exitstatus, "argv": argv, "notes": notes},
        "tests": [r.to_dict() for r in results],
    }
    (latest / "results.json").write_text(json.dumps(doc, indent=2, default=str))
    (latest / "report.html").write_text("<html><body><pre>" + json.dumps(doc, indent=2, default=str) + "</pre></body></html>")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    dated = outdir / stamp
    shutil.copytree(latest, dated, dirs_exist_ok=True)
    return latest
