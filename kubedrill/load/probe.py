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

The probe must not be the load that breaks the app: `measure_capacity` finds, on an idle pod,
how many slow requests at once it serves while still answering its health check within the
readiness probe's timeout (an app with two synchronous workers serves one: two take every
worker), and the drill never holds more than that on a pod.
"""

from __future__ import annotations

import http.client
import socket
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
    conn: http.client.HTTPConnection | None = None


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
        self.count = count
        self._slots = [_Slot(i) for i in range(count)]
        self._threads: list[threading.Thread] = []
        self._aborted = threading.Event()
        self.started_at: float | None = None  # time.monotonic() when start() sent the requests

    def __enter__(self) -> "SlowProbe":
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.join()

    def start(self) -> None:
        self.started_at = time.monotonic()
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
    def answered(self) -> int:
        """How many of the requests have had their response headers."""
        return sum(1 for s in self._slots if s.headers)

    def abort(self) -> None:
        """Cut every request still running (shut its socket down, which wakes the blocked read); each
        is recorded as failed "aborted by the probe". For measurements that need only the start."""
        self._aborted.set()
        for slot in self._slots:
            sock = slot.conn.sock if slot.conn is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed: that request has ended

    @property
    def operations(self) -> list[Operation]:
        return [s.op for s in self._slots if s.op is not None]

    def _run(self, slot: _Slot) -> None:
        start = time.monotonic()
        status = 0
        detail = ""
        outcome: Outcome = "fail"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        slot.conn = conn
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
            if self._aborted.is_set() and outcome != "ok":
                detail = f"aborted by the probe ({detail})"
            end = time.monotonic()
            slot.op = Operation(kind="slow", start=start, end=max(end, start), outcome=outcome,
                                client=f"slow-probe-{slot.index}", key=self.path, value=status, result=slot.pod,
                                detail=detail)
            self.recorder.add(slot.op)
            slot.in_flight.set()  # release waiters even on failure; they read slot.op


# -- what the pod sustains while idle ------------------------------------------------------------

@dataclass(frozen=True)
class CapacityLevel:
    """One step of the ramp: `concurrent` slow requests held on the pod at once."""

    concurrent: int
    ok: bool
    detail: str


@dataclass(frozen=True)
class Capacity:
    """How many slow requests at once one idle pod served while still answering its health check
    within `health_timeout_s` (the readiness probe's timeout): `sustained`, 0 if not even one."""

    pod: str
    levels: tuple[CapacityLevel, ...]
    health_timeout_s: float

    @property
    def sustained(self) -> int:
        ok = [lv.concurrent for lv in self.levels if lv.ok]
        return max(ok) if ok and self.levels[0].ok else 0

    @property
    def limited(self) -> CapacityLevel | None:
        """The first level the pod did not sustain, if the ramp reached one."""
        return next((lv for lv in self.levels if not lv.ok), None)

    def summary(self) -> str:
        steps = ", ".join(f"{lv.concurrent}: {'ok' if lv.ok else lv.detail}" for lv in self.levels)
        return f"{self.pod} sustained {self.sustained} concurrent slow request(s) while idle ({steps})"


def health_check(base_url: str, path: str, timeout_s: float) -> tuple[bool, str]:
    """One GET of `path` on a fresh connection: (answered 2xx/3xx within `timeout_s`, what was seen)."""
    url = urlparse(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout_s)
    t0 = time.monotonic()
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        took = time.monotonic() - t0
        if 200 <= resp.status < 400:
            return True, f"HTTP {resp.status} in {took:.2f} s"
        return False, f"health check answered HTTP {resp.status}"
    except TimeoutError:
        return False, f"health check got no answer within {timeout_s:g} s (the readiness probe's timeout)"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"health check failed: {type(exc).__name__}: {exc}"[:200]
    finally:
        conn.close()


def measure_capacity(slow_base_url: str, health_base_url: str, pod: str, *, seconds: float, health_path: str,
                     path_template: str, expected_size: int | None = None, max_concurrent: int = 4,
                     health_timeout_s: float = 1.0, hold_s: float = 1.5, headers_timeout_s: float = 5.0,
                     ) -> Capacity:
    """Ramp 1, 2, 4, ... (up to `max_concurrent`) slow requests held at once on one idle pod, and at
    each level ask the pod's health path every 0.25 s for `hold_s`; stop at the first level where a
    slow request gets no response headers within `headers_timeout_s`, fails, or the health check
    is not answered within `health_timeout_s`. The slow requests are cut once a level is judged, so
    the ramp takes seconds, not the download's length.

    Two URLs (separate port-forwards to the same pod): cutting a request can end the whole
    port-forward it went through, which must not take the health check with it."""
    if max_concurrent < 1:
        raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
    counts = []
    n = 1
    while n < max_concurrent:
        counts.append(n)
        n *= 2
    counts.append(max_concurrent)
    levels: list[CapacityLevel] = []
    for n in counts:
        probe = SlowProbe(slow_base_url, seconds, count=n, path_template=path_template, expected_size=expected_size,
                          margin=headers_timeout_s + hold_s + 30, recorder=Recorder("capacity"), pod=pod)
        probe.start()
        try:
            level = _hold(probe, n, health_base_url, health_path, health_timeout_s, hold_s, headers_timeout_s)
        finally:
            probe.abort()
            probe.join()
        levels.append(level)
        if not level.ok:
            break
        time.sleep(0.5)  # the server notices the cut connections and frees what they held
    return Capacity(pod, tuple(levels), health_timeout_s)


def _hold(probe: SlowProbe, n: int, health_base_url: str, health_path: str, health_timeout_s: float, hold_s: float,
          headers_timeout_s: float) -> CapacityLevel:
    try:
        probe.wait_in_flight(timeout=headers_timeout_s)
    except LoadError:
        waiting = n - probe.answered
        return CapacityLevel(n, False, f"{waiting} of {n} slow request(s) got no response headers within "
                                       f"{headers_timeout_s:g} s (queued behind the others)")
    failed = [o for o in probe.operations if o.outcome != "ok"]
    if failed:
        return CapacityLevel(n, False, f"a slow request failed: {failed[0].detail}")
    deadline = time.monotonic() + hold_s
    worst = 0.0
    while True:
        t0 = time.monotonic()
        ok, seen = health_check(health_base_url, health_path, health_timeout_s)
        worst = max(worst, time.monotonic() - t0)
        if not ok:
            return CapacityLevel(n, False, seen)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    failed = [o for o in probe.operations if o.outcome != "ok"]
    if failed:
        return CapacityLevel(n, False, f"a slow request failed: {failed[0].detail}")
    return CapacityLevel(n, True, f"health answered within {worst:.2f} s")
