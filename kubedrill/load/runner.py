"""LoadRunner: bounded, headless locust load in a subprocess, recorded per request.

    with LoadRunner("http://127.0.0.1:30080", users=10, rate=100, run_time=120) as load:
        ...                                  # disrupt while requests flow
    load.operations                          # list[Operation], on the test's monotonic clock
    load.stats                               # requests, failures, achieved rate
    availability(load.recorder.history, window)

Lifecycle: __enter__ starts locust and returns only once requests are being recorded (bounded by
start_timeout, with an error saying what was seen); __exit__ always stops it, even when the body
raised: SIGTERM (locust stops gracefully and flushes), SIGKILL for the whole session after
stop_timeout, then a check that no process of the session is left. Then the request log is parsed
into the recorder. The load records; it never judges.

Bounded by design: `run_time` caps the duration (locust -t) and `max_requests` the count (each user
stops after its share). Targets must be loopback unless allow_non_loopback=True (for the project's
own containers, e.g. a kind node's IP): this suite never sends load anywhere else.

Distributed mode: processes=N (N > 1) runs `locust --processes N`: a master and N forked workers on
this machine, users split between them, each worker writing its own request log. Use it when one
process cannot reach the rate (one locust process is bound to one core); on 2 cores it does not
help (benchmarks/load_rate.py). Multi-host --master/--worker is deliberately not offered: load
goes only to this machine. `extra_args` passes any other locust flag as is.
Clocks: the subprocess stamps each request with CLOCK_MONOTONIC, which on Linux is system-wide,
so its times are used as they are (clock="mono"); clock="wall" converts wall times via the
recorder instead (needed only if the load ran on another host).
"""

from __future__ import annotations

import ipaddress
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Sequence
from urllib.parse import urlparse

from kubedrill.load.requestlog import Clock, read_request_logs
from kubedrill.record import Operation, Recorder, Window

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


class LoadError(RuntimeError):
    """The load could not start or stop as expected; the message says what was seen and what to try."""


@dataclass(frozen=True)
class LoadStats:
    requests: int
    ok: int
    failed: int
    duration_s: float  # first request start to last request start
    achieved_rate: float  # requests / duration_s
    target_rate: float | None
    processes: int
    skipped_lines: int

    def __str__(self) -> str:
        target = f" (target {self.target_rate:g})" if self.target_rate else ""
        return (f"{self.requests} requests ({self.failed} failed) in {self.duration_s:.1f} s: "
                f"{self.achieved_rate:.1f} req/s{target}, {self.processes} locust process(es)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_pids(sid: int) -> list[int]:
    """PIDs whose session id is `sid` (the locust process started its own session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the ")" that ends the command name: state ppid pgrp session ...
        fields = stat.rsplit(")", 1)[1].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _check_target(base_url: str, allow_non_loopback: bool) -> None:
    url = urlparse(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"base_url must look like http://127.0.0.1:PORT, got {base_url!r}")
    if allow_non_loopback:
        return
    host = url.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"load target {host} is not a loopback address; kubedrill sends load only to this machine. "
                         "For the project's own containers pass allow_non_loopback=True")


class LoadRunner:
    """Headless locust in a subprocess; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        *,
        path: str = "/",
        users: int = 10,
        rate: float | None = 100.0,
        run_time: float = 300.0,
        max_requests: int | None = 100_000,
        processes: int = 1,
        request_timeout: float = 5.0,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        recorder: Recorder | None = None,
        workdir: Path | None = None,
        clock: Clock = "mono",
        allow_non_loopback: bool = False,
        extra_args: Sequence[str] = (),
        keep_alive: bool = True,
    ) -> None:
        """rate: total target req/s over all users (constant_throughput); None = as fast as possible.
        run_time (s) and max_requests bound the run; locust stops itself at whichever comes first.
        keep_alive=False opens a new connection per request: a kept-alive connection stays pinned to
        one pod, so it never meets a Service route to a pod that is already gone (drain suite)."""
        _check_target(base_url, allow_non_loopback)
        if users < 1 or processes < 1:
            raise ValueError(f"users and processes must be >= 1, got users={users} processes={processes}")
        if processes > 1 and users < processes:
            raise ValueError(f"{users} user(s) cannot be spread over {processes} locust processes; use users >= processes")
        if run_time <= 0 or (max_requests is not None and max_requests < 1):
            raise ValueError("run_time must be > 0 and max_requests >= 1 (or None): every load run is bounded")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 req/s or None, got {rate}")
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.users = users
        self.rate = rate
        self.run_time = run_time
        self.max_requests = max_requests
        self.processes = processes
        self.request_timeout = request_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.recorder = recorder if recorder is not None else Recorder("load")
        self.clock: Clock = clock
        self.extra_args = list(extra_args)
        self.keep_alive = keep_alive
        self.workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None
        self._ops: list[Operation] | None = None
        self._skipped = 0
        self.stats: LoadStats | None = None

    # -- command line -------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The locust command line (also handy to reproduce a run by hand)."""
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", self.base_url, "-u", str(self.users), "-r", str(self.users),
            "-t", f"{math.ceil(self.run_time)}s", "--stop-timeout", "2", "--only-summary",
            "--exit-code-on-error", "0", "--loglevel", "INFO",
        ]
        if self.processes > 1:
            port = str(_free_port())  # not locust's default 5557: parallel runs must not meet
            cmd += ["--processes", str(self.processes), "--master-bind-host", "127.0.0.1",
                    "--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port]
        return cmd + self.extra_args

    def environment(self, outdir: Path) -> dict[str, str]:
        env = dict(os.environ)
        per_user = "0" if self.max_requests is None else str(math.ceil(self.max_requests / self.users))
        env.update({
            "KD_LOAD_OUT": str(outdir),
            "KD_LOAD_PATH": self.path,
            "KD_LOAD_RATE_PER_USER": "0" if self.rate is None else repr(self.rate / self.users),
            "KD_LOAD_MAX_PER_USER": per_user,
            "KD_LOAD_TIMEOUT": repr(self.request_timeout),
            "KD_LOAD_KEEPALIVE": "1" if self.keep_alive else "0",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "LoadRunner":
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        outdir = self.workdir or Path(tempfile.mkdtemp(prefix="kd-load-"))
        outdir.mkdir(parents=True, exist_ok=True)
        self.workdir = outdir
        self._log = (outdir / "locust.log").open("wb")
        self.recorder.event("load-start", f"{self.users} users, rate {self.rate}, {self.processes} process(es)",
                            url=self.base_url + self.path)
        self._proc = subprocess.Popen(self.command(), cwd=outdir, env=self.environment(outdir), stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_first_requests(outdir)
        except BaseException:
            self.stop()
            raise

    def _wait_first_requests(self, outdir: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if any(p.stat().st_size > 0 for p in outdir.glob("requests-*.jsonl")):
                return
            if self._proc.poll() is not None:
                raise LoadError(
                    f"locust exited (code {self._proc.returncode}) before recording any request to "
                    f"{self.base_url}{self.path}; its log ({outdir / 'locust.log'}) ends with:\n{self.log_tail()}")
            time.sleep(0.05)
        raise LoadError(
            f"locust recorded no request within {self.start_timeout:g} s (expected lines in {outdir}/requests-*.jsonl); "
            f"the process is still running. Check that {self.base_url}{self.path} answers (curl it), or raise "
            f"start_timeout on a busy machine. Log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop locust (gracefully, then by force), leave no process behind, parse the record. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self.recorder.event("load-killed", f"locust ignored SIGTERM for {self.stop_timeout:g} s")
            self._kill_session(proc.pid)
            proc.wait(timeout=10)
        finally:
            self._log.close()
            self.recorder.event("load-stop", f"exit code {proc.returncode}")
            self._collect()

    def _kill_session(self, sid: int) -> None:
        # Forked --processes workers share the session; kill each by pid, never by name.
        for _ in range(3):
            left = _session_pids(sid)
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        left = _session_pids(sid)
        if left:
            raise LoadError(f"locust processes {left} survived SIGKILL (session {sid}); kill them by pid and report this")

    def _collect(self) -> None:
        assert self.workdir is not None
        parsed = read_request_logs(self.workdir, clock=self.clock, recorder=self.recorder)
        self._ops = parsed.operations
        self._skipped = parsed.skipped_lines
        self.recorder.extend(parsed.operations)
        ops = parsed.operations
        span = (ops[-1].start - ops[0].start) if len(ops) > 1 else 0.0
        ok = sum(1 for o in ops if o.outcome == "ok")
        self.stats = LoadStats(requests=len(ops), ok=ok, failed=len(ops) - ok, duration_s=span,
                               achieved_rate=(len(ops) - 1) / span if span > 0 else 0.0, target_rate=self.rate,
                               processes=self.processes, skipped_lines=parsed.skipped_lines)

    # -- results ------------------------------------------------------------------------------
    @property
    def operations(self) -> list[Operation]:
        if self._ops is None:
            raise LoadError("the load is still running (or never ran): read operations after the `with` block")
        return self._ops

    @property
    def window(self) -> Window | None:
        """From the first request's start to the last request's end; None without requests."""
        ops = self.operations
        return Window(ops[0].start, max(o.end for o in ops)) if ops else None

    def log_tail(self, lines: int = 15) -> str:
        if self.workdir is None:
            return ""
        try:
            text = (self.workdir / "locust.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])
