"""LoadRunner against an in-process target on 127.0.0.1: real locust subprocesses, short and bounded.

Each test checks that no locust process outlives the runner, whatever happened in the body.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from kubedrill.load.runner import LoadError, LoadRunner, _session_pids
from kubedrill.load.target import LocalTarget
from kubedrill.record import Recorder


@pytest.fixture
def target() -> Iterator[LocalTarget]:
    with LocalTarget(pod="pod-local") as t:
        yield t


def assert_no_process_left(pid: int) -> None:
    assert _session_pids(pid) == [], f"locust processes of session {pid} are still running"


def test_records_every_request_and_the_failures(target: LocalTarget, tmp_path: Path) -> None:
    rec = Recorder("test")
    t0 = time.monotonic()
    with LoadRunner(target.url, users=2, rate=40, run_time=30, recorder=rec, workdir=tmp_path) as load:
        started = time.monotonic()
        assert started - t0 < 15, "the runner should return as soon as requests are recorded"
        pid = load._proc.pid if load._proc else 0
        time.sleep(1.0)
        target.fail()
        time.sleep(0.5)
        target.fail(False)
        time.sleep(1.0)
    t1 = time.monotonic()
    assert_no_process_left(pid)
    ops = load.operations
    assert load.stats is not None and load.stats.requests == len(ops) > 50
    assert 10 < load.stats.achieved_rate < 55, load.stats  # paced at 40/s; wide: CI machines are busy
    # Records sit on this process's clock, inside the run.
    assert t0 <= ops[0].start and ops[-1].end <= t1
    failed = [o for o in ops if o.outcome == "fail"]
    assert failed, "requests during target.fail() must be recorded as failures"
    assert all(o.detail for o in failed)
    assert all(o.result == "pod-local" for o in ops if o.outcome == "ok")
    assert [e.kind for e in rec.events] == ["load-start", "load-stop"]
    assert rec.history == ops


def test_request_limit_bounds_the_run(target: LocalTarget) -> None:
    with LoadRunner(target.url, users=2, rate=200, max_requests=40, run_time=30) as load:
        deadline = time.monotonic() + 15
        while load._proc is not None and load._proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load._proc is not None and load._proc.poll() is not None, "locust should exit once its budget is used"
    assert load.stats is not None and load.stats.requests == 40


def test_stops_and_cleans_up_when_the_body_raises(target: LocalTarget) -> None:
    runner = LoadRunner(target.url, users=1, rate=20, run_time=60)
    with pytest.raises(RuntimeError, match="boom"):
        with runner:
            pid = runner._proc.pid if runner._proc else 0
            raise RuntimeError("boom")
    assert_no_process_left(pid)
    assert runner.stats is not None and runner.stats.requests >= 1


def test_start_timeout_says_what_was_seen() -> None:
    # A listener that never accepts: requests hang, nothing gets recorded.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        runner = LoadRunner(url, users=1, rate=5, run_time=30, start_timeout=2, request_timeout=20)
        with pytest.raises(LoadError, match="recorded no request within 2 s") as err:
            runner.start()
    assert "curl it" in str(err.value)
    assert runner._proc is None  # stopped on the way out


def test_refuses_non_loopback_targets() -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        LoadRunner("http://192.0.2.10:80")
    with pytest.raises(ValueError, match="bounded"):
        LoadRunner("http://127.0.0.1:1", max_requests=0)


def test_distributed_mode_uses_several_processes(target: LocalTarget) -> None:
    with LoadRunner(target.url, users=2, rate=40, run_time=30, processes=2, start_timeout=30) as load:
        pid = load._proc.pid if load._proc else 0
        time.sleep(1.5)
    assert_no_process_left(pid)
    assert len({o.client for o in load.operations}) == 2, "each worker writes its own request log"
