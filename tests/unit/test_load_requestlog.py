"""Parsing the locust subprocess's per-request lines into Operations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubedrill.load.requestlog import parse_request_lines, read_request_logs
from kubedrill.record import Recorder


def line(**kw: object) -> str:
    d: dict[str, object] = {"s": 1000.0, "e": 50.25, "l": 0.25, "o": "ok", "c": 200, "p": "pod-a", "x": "", "n": "GET /"}
    d.update(kw)
    return json.dumps(d)


def test_monotonic_end_and_latency_give_start() -> None:
    parsed = parse_request_lines([line()], client="locust-1")
    (op,) = parsed.operations
    assert (op.start, op.end, op.outcome, op.result, op.value, op.key, op.kind) == (50.0, 50.25, "ok", "pod-a", 200, "/", "http GET /")
    assert op.client == "locust-1"


def test_failures_keep_their_error_text_or_status() -> None:
    ops = parse_request_lines([line(o="fail", c=0, p="", x="ConnectionRefusedError: [Errno 111]"),
                               line(o="fail", c=503, x="")]).operations
    assert ops[0].detail == "ConnectionRefusedError: [Errno 111]" and ops[0].result is None
    assert ops[1].detail == "HTTP 503"


def test_wall_clock_mode_converts_with_the_recorder() -> None:
    rec = Recorder()
    (op,) = parse_request_lines([line(s=rec.wall0 + 2.0)], clock="wall", recorder=rec).operations
    assert op.start == pytest.approx(rec.mono0 + 2.0)
    assert op.end == pytest.approx(op.start + 0.25)
    with pytest.raises(ValueError, match="needs the recorder"):
        parse_request_lines([line()], clock="wall")


def test_partial_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "requests-11.jsonl").write_text(line(e=2.0) + "\n" + line(e=1.0) + "\n" + '{"s": 1, "e"')
    (tmp_path / "requests-12.jsonl").write_text(line(e=1.5) + "\n")
    parsed = read_request_logs(tmp_path)
    assert [o.end for o in parsed.operations] == [1.0, 1.5, 2.0]
    assert {o.client for o in parsed.operations} == {"locust-11", "locust-12"}
    assert parsed.skipped_lines == 1
