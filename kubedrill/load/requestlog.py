"""Turn the locust subprocess's per-request JSON lines into Operations on the test's clock.

Pure apart from reading files, so it is unit-tested with hand-written lines. See
kubedrill/load/locustfile.py for the line format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from kubedrill.record import Operation, Outcome, Recorder

Clock = Literal["mono", "wall"]


@dataclass(frozen=True)
class ParsedLog:
    operations: list[Operation]
    skipped_lines: int  # partial or malformed lines (e.g. the last line of a killed process)


def parse_request_lines(
    lines: Iterable[str], *, client: str = "locust", clock: Clock = "mono", recorder: Recorder | None = None,
    offset: float = 0.0,
) -> ParsedLog:
    """Parse request lines. clock="mono": use the CLOCK_MONOTONIC end time as is (same host);
    clock="wall": place each request by its wall start time via recorder.wall0/mono0, after taking
    off `offset` (s), the writer's clock minus this host's (a pod's clock, measured by
    kubedrill.load.podclock)."""
    if clock == "wall" and recorder is None:
        raise ValueError("clock='wall' needs the recorder whose wall0/mono0 map wall time to the test clock")
    ops: list[Operation] = []
    skipped = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
            latency = max(0.0, float(d["l"]))
            if clock == "mono":
                end = float(d["e"])
                start = end - latency
            else:
                assert recorder is not None
                start = recorder.mono0 + (float(d["s"]) - offset - recorder.wall0)
                end = start + latency
            status = int(d.get("c", 0))
            outcome: Outcome = "ok" if d["o"] == "ok" else "fail"
            detail = str(d.get("x", "")) or ("" if outcome == "ok" else f"HTTP {status}")
            name = str(d.get("n", "GET /"))
            ops.append(Operation(kind=f"http {name}", start=start, end=end, outcome=outcome, client=client,
                                 key=name.split(" ", 1)[-1], value=status, result=d.get("p") or None, detail=detail))
        except (ValueError, KeyError, TypeError):
            skipped += 1
    return ParsedLog(ops, skipped)


def read_request_logs(directory: Path, *, clock: Clock = "mono", recorder: Recorder | None = None) -> ParsedLog:
    """All requests-<pid>.jsonl files of one run (one per locust process), merged in start order."""
    ops: list[Operation] = []
    skipped = 0
    for path in sorted(directory.glob("requests-*.jsonl")):
        pid = path.stem.split("-", 1)[1]
        with path.open(encoding="utf-8", errors="replace") as f:
            parsed = parse_request_lines(f, client=f"locust-{pid}", clock=clock, recorder=recorder)
        ops.extend(parsed.operations)
        skipped += parsed.skipped_lines
    ops.sort(key=lambda o: (o.start, o.end))
    return ParsedLog(ops, skipped)


def count_request_lines(directory: Path) -> int:
    """Cheap progress probe while locust runs: newline count across the request logs so far."""
    n = 0
    for path in directory.glob("requests-*.jsonl"):
        try:
            n += path.read_bytes().count(b"\n")
        except OSError:
            pass
    return n
