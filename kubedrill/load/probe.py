"""SlowProbe: a few long requests held in flight across a termination, recorded.

Why not locust: these are a handful of requests whose exact fate matters (did the server finish a
request it had accepted before SIGTERM?), started at a chosen moment. Plain threads with
http.client are enough and keep gevent out of the test process.

A slow request is any URL that takes a while (a paced download, a stream, a long poll): once its
response headers arrive the server holds it, so `wait_in_flight()` can confirm that before the
disruption starts. It completed only if HTTP's own framing says the whole body arrived
(kubedrill.load.http_body): nothing in the body or headers has to come from the app. The pod
holding it is the one the probe was sent to (`pod`, when sent straight to a pod through a
port-forward), else the X-Pod response header when the app sends one, else unknown. Every
request has a socket timeout (seconds + margin), so the threads always end.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlparse

from kubedrill.load.http_body import read_body
from kubedrill.load.runner import LoadError, _check_target
from kubedrill.record import Operation, Outcome, Recorder


def slow_url(path: str, seconds: float) -> str:
    """`path` with {seconds} filled in, as WorkloadSpec.slow_url_path does; a path without the
    placeholder is any URL that takes a while, used as it is (literal braces and all)."""
    return path.format(seconds=seconds) if "{seconds}" in path else path


@dataclass
class _Slot:
    index: int
    in_flight: threading.Event = field(default_factory=threading.Event)
    pod: str | None = None
    headers: bool = False
    op: Operation | None = None


class SlowProbe:
    """`count` concurrent GETs of the slow path, each recorded as one Operation(kind="slow").

    `seconds`: the duration asked for where the path takes one ({seconds}); with a fixed slow URL,
    the duration the caller expects (it only bounds the wait: seconds + margin).
    `expected_size`: the body's size, for servers that delimit it by closing the connection.
    `pod`: the pod the base URL reaches (a port-forward), recorded as the request's holder.
    """

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
        expected_size: int | None = None,
        pod: str | None = None,
    ) -> None:
        _check_target(base_url, allow_non_loopback)
        if not 1 <= count <= 50:
            raise ValueError(f"count must be 1..50 (a probe, not a load), got {count}")
        url = urlparse(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.path = slow_url(path_template, seconds)
        self.seconds = seconds
        self.expected_size, self.pod = expected_size, pod
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
                    "endpoint that answers its headers at once (a download or stream the server paces)")
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
            slot.pod = self.pod if self.pod is not None else resp.getheader("X-Pod")
            slot.headers = True
            slot.in_flight.set()
            body = read_body(resp, self.expected_size)
            outcome, detail = body.outcome, "" if body.outcome == "ok" else body.detail
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
