"""The locustfile LoadRunner runs in a locust SUBPROCESS. Never import this module from pytest.

Why a subprocess: locust monkey-patches the standard library with gevent at import time, which
breaks pytest, the kubernetes client's threads and the test's own clock code if done in-process.

Why our own per-request log: locust's stats are 1 s buckets aggregated per endpoint; a shutdown
check needs every request's time, outcome, error text and the pod that answered. The request
listener writes one JSON line per request to $KD_LOAD_OUT/requests-<pid>.jsonl:

    {"s": start wall time, "e": end CLOCK_MONOTONIC, "l": latency s, "o": "ok"|"fail",
     "c": HTTP status (0 = no response), "p": pod (X-Pod header) or "", "x": error text, "n": name}

CLOCK_MONOTONIC is system-wide on Linux, so "e" is directly comparable with the parent's
time.monotonic() (tests/unit/test_load_clock.py checks this); "s" allows a wall-clock fallback.

Configuration comes from the environment (set by kubedrill.load.runner.LoadRunner, or by
kubedrill.load.incluster.InClusterLoad, which ships this file to its pods in a ConfigMap):
KD_LOAD_OUT (required), KD_LOAD_FILE (the exact file to append to, instead of requests-<pid>.jsonl
in KD_LOAD_OUT: a worker pod's one locust process keeps one file across container restarts),
KD_LOAD_PATH (/), KD_LOAD_RATE_PER_USER (0 = no pacing),
KD_LOAD_MAX_PER_USER (0 = unlimited), KD_LOAD_TIMEOUT (5 s), KD_LOAD_KEEPALIVE (1; 0 = a new
connection per request, which is what exposes stale Service routing to a terminating pod).
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any

import gevent
from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.env import Environment
from locust.exception import StopUser

PATH = os.environ.get("KD_LOAD_PATH", "/")
RATE_PER_USER = float(os.environ.get("KD_LOAD_RATE_PER_USER", "0") or 0)
MAX_PER_USER = int(os.environ.get("KD_LOAD_MAX_PER_USER", "0") or 0)
TIMEOUT = float(os.environ.get("KD_LOAD_TIMEOUT", "5") or 5)
# "Connection: close" makes every request open a new connection, routed afresh by the Service.
HEADERS = {} if os.environ.get("KD_LOAD_KEEPALIVE", "1") != "0" else {"Connection": "close"}
OUT_DIR = os.environ.get("KD_LOAD_OUT", "")
OUT_FILE = os.environ.get("KD_LOAD_FILE", "")

_out: IO[str] | None = None
_flushed_at = 0.0


def _sink() -> IO[str]:
    """Opened lazily, per process: with --processes the master forks workers and never requests."""
    global _out
    if _out is None:
        if not OUT_DIR:
            raise RuntimeError("KD_LOAD_OUT is not set: this locustfile is meant to be run by kubedrill's LoadRunner")
        path = OUT_FILE or os.path.join(OUT_DIR, f"requests-{os.getpid()}.jsonl")
        _out = open(path, "a", buffering=1 << 16, encoding="utf-8")
    return _out


def _error_text(exc: BaseException | None, status: int) -> str:
    if exc is None:
        return ""
    text = str(exc) or type(exc).__name__
    if status == 0 and type(exc).__name__ not in text:
        text = f"{type(exc).__name__}: {text}"
    return text[:200]


@events.request.add_listener  # type: ignore[untyped-decorator]
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    response: Any = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    global _flushed_at
    end = time.monotonic()
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None)
    pod = ""
    if headers is not None:
        try:
            pod = headers.get("X-Pod") or ""
        except Exception:  # noqa: BLE001 - a header oddity must never break the load
            pod = ""
    line = {
        "s": start_time if start_time is not None else time.time() - response_time / 1000,
        "e": end,
        "l": response_time / 1000,
        "o": "ok" if exception is None else "fail",
        "c": status,
        "p": pod,
        "x": _error_text(exception, status),
        "n": f"{request_type} {name}",
    }
    out = _sink()
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
    # Flush at most every 0.2 s: the parent waits for the first lines to appear, and a
    # crash loses at most 0.2 s of records, while the load itself avoids a syscall per request.
    if end - _flushed_at > 0.2:
        out.flush()
        _flushed_at = end


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _close(**_: Any) -> None:
    if _out is not None:
        _out.flush()
        _out.close()


def _quit_if_idle(environment: Environment) -> None:
    """Once every user of this process has used up its request budget, end the process (a worker
    then tells the master, which ends the run when its last worker quits)."""
    runner = environment.runner
    if runner is not None and runner.user_count == 0:
        runner.quit()


class ServiceUser(FastHttpUser):
    """Requests PATH at RATE_PER_USER req/s (constant_throughput), at most MAX_PER_USER times."""

    wait_time = constant_throughput(RATE_PER_USER) if RATE_PER_USER > 0 else constant(0)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    # A failed request is data here, not a reason to retry.
    max_retries = 0

    def on_start(self) -> None:
        self.done = 0

    @task
    def hit(self) -> None:
        if MAX_PER_USER and self.done >= MAX_PER_USER:
            gevent.spawn_later(0.2, _quit_if_idle, self.environment)
            raise StopUser()
        self.done += 1
        self.client.get(PATH, name=PATH, headers=HEADERS)
