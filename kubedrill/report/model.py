"""What one test contributes to the reports: outcome, verdicts, free figures, artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.check.verdict import Figure, Verdict

# results.json schema version (kubedrill/report/results.schema.json, docs/results-schema.md).
# Bump the minor for added fields, the major for anything a reader could trip over.
SCHEMA_VERSION = "1.1"


@dataclass
class TestResult:
    """Filled by the pytest plugin while a test runs; rendered by kubedrill.report.writer."""

    __test__ = False  # not a pytest test class

    nodeid: str
    suite: str = ""
    outcome: str = "unknown"  # passed / failed / skipped / error
    duration_s: float = 0.0
    longrepr: str = ""
    # One line saying why a failed/errored/skipped test did not pass (pytest's crash message), shown
    # in the gate table so a broken run explains itself without opening the traceback.
    headline: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # path, label[, files]
    markers: list[str] = field(default_factory=list)

    def add(self, verdict: Verdict) -> Verdict:
        self.verdicts.append(verdict)
        return verdict

    def figure(self, name: str, value: float | int | None, unit: str, detail: str = "") -> None:
        self.figures.append(Figure(name, value, unit, detail))

    def artifact(self, path: Path | str, label: str) -> None:
        self.artifacts.append({"path": str(path), "label": label})

    def all_figures(self) -> list[Figure]:
        return [*self.figures, *(f for v in self.verdicts for f in v.figures)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "suite": self.suite,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 3),
            "longrepr": self.longrepr[-4000:],
            "headline": self.headline,
            "markers": self.markers,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "figures": [f.to_dict() for f in self.all_figures()],
            "artifacts": self.artifacts,
        }
