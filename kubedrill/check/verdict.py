"""Verdicts: pass / fail / unknown, a reason a developer can act on, and the figures measured.

A checker that cannot decide (too little data, time budget exhausted, an assumption broken)
returns UNKNOWN, never PASS. Suites assert `verdict.passed`; an UNKNOWN verdict fails the test
with its reason, because a gate that cannot see must not open.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Figure:
    """A measured number with its unit, e.g. Figure("drain_time", 41.2, "s")."""

    name: str
    value: float | int | None
    unit: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "detail": self.detail}


@dataclass
class Verdict:
    check: str
    status: Status
    reason: str
    figures: list[Figure] = field(default_factory=list)
    # Named series for plots: {"timeline": {"x": [...], "ok": [...], "fail": [...]}} etc.
    series: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def __str__(self) -> str:
        return f"{self.check}: {self.status.value.upper()}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status.value,
            "reason": self.reason,
            "figures": [f.to_dict() for f in self.figures],
            "series": self.series,
        }

    @classmethod
    def ok(cls, check: str, reason: str, figures: list[Figure] | None = None, **series: Any) -> "Verdict":
        return cls(check, Status.PASS, reason, figures or [], dict(series))

    @classmethod
    def fail(cls, check: str, reason: str, figures: list[Figure] | None = None, **series: Any) -> "Verdict":
        return cls(check, Status.FAIL, reason, figures or [], dict(series))

    @classmethod
    def unknown(cls, check: str, reason: str, figures: list[Figure] | None = None, **series: Any) -> "Verdict":
        return cls(check, Status.UNKNOWN, reason, figures or [], dict(series))


def safe_check(name: str, fn: Callable[..., Verdict], *args: Any, **kwargs: Any) -> Verdict:
    """Run a checker; a crash becomes UNKNOWN with the traceback tail (Jepsen's check-safe)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any checker crash must become "unknown"
        tail = traceback.format_exc().strip().splitlines()[-3:]
        return Verdict.unknown(name, f"checker crashed: {exc!r} ({' | '.join(tail)})")


def combine(check: str, verdicts: list[Verdict]) -> Verdict:
    """FAIL if any failed, else UNKNOWN if any unknown, else PASS; figures are concatenated."""
    figures = [f for v in verdicts for f in v.figures]
    series: dict[str, Any] = {}
    for v in verdicts:
        series.update(v.series)
    failed = [v for v in verdicts if v.status is Status.FAIL]
    unknown = [v for v in verdicts if v.status is Status.UNKNOWN]
    if failed:
        return Verdict(check, Status.FAIL, "; ".join(str(v) for v in failed), figures, series)
    if unknown:
        return Verdict(check, Status.UNKNOWN, "; ".join(str(v) for v in unknown), figures, series)
    if not verdicts:
        return Verdict(check, Status.UNKNOWN, "no checks ran", figures, series)
    return Verdict(check, Status.PASS, "; ".join(v.reason for v in verdicts), figures, series)
