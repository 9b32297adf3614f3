"""SlowProbe: a few long requests held in flight across a termination, recorded.

Why not locust: these are a handful of requests whose exact fate matters (did the server finish a
request it had accepted before SIGTERM?), started at a chosen moment. Plain threads with
http.client are enough and keep gevent out of the test process.

The sample app's /slow sends its headers and a first line at once, so `wait_in_flight()` can
confirm the server holds each request (and which pod) before the disruption starts; the request
is ok only if the body then ends with its "done" line. Every request has a socket timeout
(seconds + margin), so the threads always end.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlparse

from kubedrill.load.runner import LoadError, _check_target
from kubedrill.record import Operation, Outcome, Recorder


@dataclass
class _Slot:
    index: int
    in_flight: threading.Event = field(default_factory=threading.Event)
    pod: str | None = None
    headers: bool = False
    op: Operation | None = None


class SlowProbe:
    """`count` concurrent GETs of `/slow?seconds=<seconds>`, each recorded as one Operation(kind="slow")."""

    def __init__(
        self,
        base_url: str,
        seconds: float,
        *,
        count: int = 1,
        path_template: str = "/slow?seconds={seconds}",
        margin: float = 30.0,
        recorder: Recorder | None = None,
        allow_non_loopback: bool = False,
    ) -> None:
        _check_target(base_url, allow_non_loopback)
        if not 1 <= count <= 50:
            raise ValueError(f"count must be 1..50 (a probe, not a load), got {count}")
        url = urlparse(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.path = path_template.format(seconds=seconds)
        self.seconds = seconds
        self.timeout = seconds + margin
        self.recorder = recorder if recorder is not None else Recorder("slow-probe")
        self._slots = [_Slot(i) for i in range(count)]
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "SlowProbe":
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.join()

    def start(self) -> None:
        for slot in self._slots:
            th = threading.Thread(target=self._run, args=(slot,), name=f"kd-slow-probe-{slot.index}", daemon=True)
            th.start()
            self._threads.append(th)

    def wait_in_flight(self, timeout: float = 10.0) -> list[str | None]:
        """Block until the server has answered the headers of every probe; returns the pods holding them."""
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            if not slot.in_flight.wait(max(0.0, deadline - time.monotonic())) or not slot.headers:
                seen = slot.op.detail if slot.op is not None else "no response headers yet"
                raise LoadError(
                    f"slow request {slot.index} to http://{self.host}:{self.port}{self.path} was not in flight within "
                    f"{timeout:g} s (expected response headers at once; saw: {seen}). Check that the workload has a slow "
                    "endpoint that flushes headers early, like the sample app's /slow")
        return [s.pod for s in self._slots]

    def join(self) -> None:
        """Wait for every probe to finish; bounded by the socket timeout the requests carry."""
        for th in self._threads:
            th.join(timeout=self.timeout + 5)

    @property
    def operations(self) -> list[Operation]:
        return [s.op for s in self._slots if s.op is not None]

    def _run(self, slot: _Slot) -> None:
        start = time.monotonic()
        status = 0
        detail = ""
        outcome: Outcome = "fail"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path)
            resp = conn.getresponse()
            status = resp.status
            slot.pod = resp.getheader("X-Pod")
            slot.headers = True
            slot.in_flight.set()
            body = resp.read()
            if status == 200 and b"done" in body:
                outcome = "ok"
            elif status != 200:
                detail = f"HTTP {status}"
            else:
                detail = "response ended without its 'done' line: the server dropped the request"
        except TimeoutError:
            outcome, detail = "unknown", f"no complete answer within {self.timeout:g} s"
        except (OSError, http.client.HTTPException) as exc:
            text = str(exc)
            detail = (text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}")[:200]
        finally:
            conn.close()
            end = time.monotonic()
            slot.op = Operation(kind="slow", start=start, end=max(end, start), outcome=outcome,
                                client=f"slow-probe-{slot.index}", key=self.path, value=status, result=slot.pod,
                                detail=detail)
            self.recorder.add(slot.op)
            slot.in_flight.set()  # release waiters even on failure; they read slot.op
