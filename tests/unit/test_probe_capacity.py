"""The in-flight probe is not the load that breaks the app: what an idle pod sustains, measured on a
server with a fixed number of synchronous workers (like gunicorn's sync workers), the cap on the
slow-request stream, and a probe that cuts its own requests."""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Iterator

import pytest

from kubedrill.load.inflight import SlowStream
from kubedrill.load.probe import SlowProbe, measure_capacity
from kubedrill.record import Recorder


class SyncWorkers:
    """A server with `workers` threads, each serving one connection at a time from one backlog:
    /healthz answers at once, anything else is a 100-byte download paced over 5 s."""

    def __init__(self, workers: int) -> None:
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.url = f"http://127.0.0.1:{self.srv.getsockname()[1]}"
        self.backlog: queue.Queue[socket.socket | None] = queue.Queue()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads += [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.backlog.put(conn)

    def _work(self) -> None:
        while (conn := self.backlog.get()) is not None:
            try:
                path = conn.recv(4096).decode().split(" ")[1]
                if path == "/healthz":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                for _ in range(100):
                    conn.sendall(b"x")
                    time.sleep(0.05)
            except (OSError, IndexError):
                pass  # the client cut the download: this worker is free again
            finally:
                conn.close()

    def close(self) -> None:
        self.srv.close()
        for _ in self.threads:
            self.backlog.put(None)


@pytest.fixture
def sync_workers(request: pytest.FixtureRequest) -> Iterator[SyncWorkers]:
    server = SyncWorkers(request.param)
    yield server
    server.close()


@pytest.mark.parametrize(("sync_workers", "sustained", "stopped_at"), [(1, 0, 1), (2, 1, 2), (8, 4, None)],
                         indirect=["sync_workers"], ids=["workers-1", "workers-2", "workers-8"])
def test_an_idle_pod_sustains_what_leaves_its_health_check_answered(sync_workers: SyncWorkers, sustained: int,
                                                                    stopped_at: int | None) -> None:
    t0 = time.monotonic()
    cap = measure_capacity(sync_workers.url, sync_workers.url, "pod-1", seconds=5, health_path="/healthz",
                           path_template="/blob.bin", max_concurrent=4, health_timeout_s=0.5, hold_s=0.5)
    assert cap.sustained == sustained, cap.summary()
    assert [lv.concurrent for lv in cap.levels] == [1, 2, 4][: (stopped_at or 4).bit_length()]
    if stopped_at is None:
        assert cap.limited is None and all(lv.ok for lv in cap.levels)
    else:
        assert cap.limited is not None and cap.limited.concurrent == stopped_at
        assert "health check got no answer within 0.5 s" in cap.limited.detail
    assert time.monotonic() - t0 < 10  # the downloads were cut, not waited for (5 s each)


@pytest.mark.parametrize("sync_workers", [1], indirect=True, ids=["workers-1"])
def test_abort_cuts_the_requests_and_records_why(sync_workers: SyncWorkers) -> None:
    probe = SlowProbe(sync_workers.url, 5, path_template="/blob.bin", recorder=Recorder())
    probe.start()
    probe.wait_in_flight(timeout=5)
    assert probe.answered == 1
    probe.abort()
    probe.join()
    (op,) = probe.operations
    assert op.outcome == "fail" and op.detail.startswith("aborted by the probe")


@pytest.mark.parametrize("sync_workers", [8], indirect=True, ids=["workers-8"])
def test_the_stream_never_holds_more_than_its_cap(sync_workers: SyncWorkers) -> None:
    stream = SlowStream(sync_workers.url, 5, recorder=Recorder(), every_s=0.05, per_tick=2, max_requests=40,
                        max_run_s=2, path_template="/blob.bin", pod="victim", max_in_flight=3)
    peak = 0
    with stream:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            peak = max(peak, stream.running)
            time.sleep(0.02)
        stream.stop_starting()
        assert stream.started == 3  # every request lasts 5 s: the cap was reached and never exceeded
    assert peak == 3
    with pytest.raises(ValueError, match="max_in_flight"):
        SlowStream(sync_workers.url, 1, recorder=Recorder(), max_in_flight=0)
