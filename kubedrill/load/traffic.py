"""ServiceTraffic: continuous GETs through a Service, one fresh connection per request, no retries.

Why not locust here: its FastHttpUser keeps connections alive and geventhttpclient quietly retries
a GET whose pooled connection was closed or refused. That is a fine model of a tolerant client,
but it hides exactly what a shutdown test looks for: a pod that closes its listener while the
Service still routes new connections to it (no preStop sleep) fails a fresh connection with
"connection refused", and only a client that opens a new connection per request and never retries
sees every such failure. Each request is routed anew by kube-proxy, so the record shows the real
endpoint-propagation window. Requests are spread over several entry URLs (one per node's
NodePort, like an external load balancer), so the slowest kube-proxy is exercised too.

Records only: Operation(kind="http GET <path>", outcome ok|fail|unknown, result=X-Pod, detail=error).
Bounded by `max_requests`, `max_run_s` and a per-request timeout.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import time
from typing import Sequence
from urllib.parse import urlparse

from kubedrill.record import Operation, Outcome, Recorder, Window


def _loopback(url: str) -> tuple[str, int]:
    u = urlparse(url)
    host = u.hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if u.scheme != "http" or not ok or u.port is None:
        raise ValueError(f"traffic goes only to http://127.0.0.1:PORT on this machine, got {url!r}")
    return host, u.port


class ServiceTraffic:
    """`workers` threads, `rate` requests/s in total, each request on a new connection."""

    def __init__(self, base_urls: Sequence[str], *, recorder: Recorder, path: str = "/", rate: float = 40.0,
                 workers: int = 8, timeout_s: float = 3.0, max_requests: int = 20_000, max_run_s: float = 300) -> None:
        if not base_urls:
            raise ValueError("at least one base URL is needed")
        if rate <= 0 or workers < 1 or max_requests < 1 or max_run_s <= 0:
            raise ValueError("rate, workers, max_requests and max_run_s must be positive: every load is bounded")
        self.targets = [_loopback(u) for u in base_urls]
        self.recorder, self.path, self.rate, self.workers = recorder, path, rate, workers
        self.timeout_s, self.max_requests, self.max_run_s = timeout_s, max_requests, max_run_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._issued = 0
        self._ops: list[Operation] = []
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"kd-traffic-{i}", daemon=True)
                         for i in range(workers)]
        self._first = threading.Event()

    def __enter__(self) -> "ServiceTraffic":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, first_answer_timeout: float = 15) -> None:
        self.recorder.event("traffic-start", f"{self.rate:g} req/s over {self.workers} workers, fresh connections",
                            targets=[f"{h}:{p}" for h, p in self.targets])
        self._t0 = time.monotonic()
        for t in self._threads:
            t.start()
        if not self._first.wait(first_answer_timeout):
            self.stop()
            raise TimeoutError(f"no request to {self.targets[0]}{self.path} succeeded within {first_answer_timeout:g} s "
                               f"of starting the traffic; last errors: {[o.detail for o in self.operations[-3:]]}")

    def _ticket(self) -> bool:
        with self._lock:
            if self._issued >= self.max_requests:
                return False
            self._issued += 1
            return True

    def _run(self, index: int) -> None:
        period = self.workers / self.rate
        deadline = self._t0 + self.max_run_s
        # Stagger workers so requests are evenly spaced, not in bursts of `workers`.
        next_at = self._t0 + period * index / self.workers
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline and self._ticket():
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if self._stop.is_set():
                break
            host, port = self.targets[(index + n) % len(self.targets)]
            n += 1
            op = self._one(host, port, f"t{index}")
            with self._lock:
                self._ops.append(op)
            if op.outcome == "ok":
                self._first.set()
            next_at += period
            if next_at < time.monotonic() - period:  # fell behind (slow answers): do not burst to catch up
                next_at = time.monotonic()

    def _one(self, host: str, port: int, client: str) -> Operation:
        start = time.monotonic()
        outcome: Outcome = "fail"
        detail, status, pod = "", 0, None
        conn = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            resp = conn.getresponse()
            status, pod = resp.status, resp.getheader("X-Pod")
            resp.read()
            if 200 <= status < 400:
                outcome = "ok"
            else:
                detail = f"HTTP {status}"
        except TimeoutError:
            outcome, detail = "unknown", f"no answer within {self.timeout_s:g} s"
        except ConnectionRefusedError:
            detail = "connection refused"
        except ConnectionResetError:
            detail = "connection reset"
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            conn.close()
        return Operation(kind=f"http GET {self.path}", start=start, end=max(time.monotonic(), start), outcome=outcome,
                         client=client, key=f"{host}:{port}", value=status, result=pod, detail=detail)

    def stop(self) -> None:
        """Stop and join the workers (bounded by the request timeout), then hand the record over."""
        if self._stop.is_set():
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 5)
        self.recorder.extend(self.operations)
        self.recorder.event("traffic-stop", f"{len(self._ops)} requests")

    @property
    def operations(self) -> list[Operation]:
        with self._lock:
            return sorted(self._ops, key=lambda o: (o.start, o.end))

    @property
    def window(self) -> Window | None:
        ops = self.operations
        return Window(ops[0].start, max(o.end for o in ops)) if ops else None

    def summary(self) -> str:
        ops = self.operations
        failed = sum(1 for o in ops if o.outcome != "ok")
        span = (ops[-1].start - ops[0].start) if len(ops) > 1 else 0.0
        rate = (len(ops) - 1) / span if span > 0 else 0.0
        return f"{len(ops)} requests ({failed} failed) in {span:.1f} s: {rate:.1f} req/s over {len(self.targets)} entry point(s)"
