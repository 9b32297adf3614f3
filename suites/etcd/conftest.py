"""The etcd suites' one judging fixture: a quorum drill's record -> verdicts in the report -> one verdict to assert."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from kubedrill.check.verdict import Verdict, combine
from kubedrill.config import RunConfig
from kubedrill.report.model import TestResult
from kubedrill.scenarios.quorum import QuorumDrillRecord, judge


@pytest.fixture
def judged(kd_report: TestResult, kd_config: RunConfig, kd_artifacts: Path) -> Callable[[QuorumDrillRecord], Verdict]:
    """`judged(record)`: keeps the record (kd_artifacts: only if the test fails), judges it with the
    run config's SLO, adds every verdict and the checkers' cost to the report, and returns the
    combined verdict the test asserts."""
    def run(record: QuorumDrillRecord) -> Verdict:
        record.dump(kd_artifacts / "quorum-record.json")
        t0 = time.monotonic()
        verdicts = judge(record, kd_config.slo)
        kd_report.figure("checkers_time", round(time.monotonic() - t0, 3), "s")
        kd_report.figure("operations_recorded", len(record.history), "ops")
        for v in verdicts:
            kd_report.add(v)
        return combine(record.fault, verdicts)

    return run
