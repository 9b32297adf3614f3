"""SlowProbe: a request held in flight is ok only if the server finishes it."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator

import pytest

from kubedrill.load.probe import SlowProbe
from kubedrill.load.runner import LoadError
from kubedrill.load.target import LocalTarget


def test_completed_slow_requests_are_ok() -> None:
    with LocalTarget(pod="pod-s") as t:
        with SlowProbe(t.url, seconds=0.5, count=2) as probe:
            assert probe.wait_in_flight(timeout=5) == ["pod-s", "pod-s"]
    ops = probe.operations
    assert [o.outcome for o in ops] == ["ok", "ok"]
    assert all(o.latency >= 0.5 and o.result == "pod-s" and o.kind == "slow" for o in ops)


@pytest.fixture
def dropping_server() -> Iterator[str]:
    """Answers headers and a first chunk, then closes: a server dying with the request in flight."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pod: pod-d\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nstarted pod=pod-d\r\n")
        time.sleep(0.3)
        conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    th.join(timeout=5)
    srv.close()


def test_dropped_in_flight_request_fails_with_the_error(dropping_server: str) -> None:
    with SlowProbe(dropping_server, seconds=5) as probe:
        assert probe.wait_in_flight(timeout=5) == ["pod-d"]
    (op,) = probe.operations
    assert op.outcome == "fail"
    assert "ended without its terminating chunk" in op.detail  # HTTP framing, no marker in the body


def test_wait_in_flight_reports_a_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with SlowProbe(f"http://127.0.0.1:{port}", seconds=1) as probe:
            with pytest.raises(LoadError, match="was not in flight.*ConnectionRefusedError"):
                probe.wait_in_flight(timeout=5)
    assert probe.operations[0].outcome == "fail"
