"""SlowStream: slow requests started continuously, so that whichever pod is terminated next is
holding some at that moment.

Why a stream and not one batch: a Service spreads requests over pods at random, and a rollout
terminates pods one after another over tens of seconds. A request is only a test of draining if
it is in flight on the terminated pod when its deletion begins and still running at SIGTERM, so
requests must keep starting until the last deletion. Each request is a kubedrill.load.SlowProbe
(one fresh connection, headers at once, complete by HTTP framing); this only schedules them,
bounded in count and in time. The shutdown drill runs one per pod, each through that pod's
port-forward (kubedrill.load.direct, `pod=`), so the holder is known without the app's help, and
with `max_in_flight` no higher than what the pod sustained while idle (kubedrill.load.probe
measure_capacity): a tick that would exceed it starts fewer requests, or none.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from kubedrill.load import SlowProbe
from kubedrill.record import Operation, Recorder


@dataclass
class _Started:
    at: float
    probe: SlowProbe


class SlowStream:
    """Start `per_tick` slow requests of `seconds` every `every_s` until `stop_starting()`, never more
    than `max_in_flight` running at once (None: no cap)."""

    def __init__(self, base_url: str, seconds: float, *, recorder: Recorder, every_s: float = 0.25, per_tick: int = 2,
                 max_requests: int = 600, max_run_s: float = 300, path_template: str = "/slow?seconds={seconds}",
                 margin_s: float = 15, expected_size: int | None = None, pod: str | None = None,
                 max_in_flight: int | None = None) -> None:
        if every_s <= 0 or per_tick < 1 or max_requests < 1 or max_run_s <= 0:
            raise ValueError("every_s, per_tick, max_requests and max_run_s must be positive: the stream is bounded")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 (or None), got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.base_url, self.seconds, self.recorder = base_url, seconds, recorder
        self.every_s, self.per_tick, self.max_requests, self.max_run_s = every_s, per_tick, max_requests, max_run_s
        self.path_template, self.margin_s, self.expected_size = path_template, margin_s, expected_size
        self.pod = pod  # the pod base_url reaches (a port-forward), else known only from X-Pod
        self._started: list[_Started] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kd-slow-stream", daemon=True)
        self.stopped_at: float | None = None

    def __enter__(self) -> "SlowStream":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_starting()
        self.join()

    def start(self) -> None:
        self.recorder.event("slow-stream-start", f"{self.per_tick} x {self.seconds:g} s every {self.every_s:g} s")
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_run_s
        count = 0
        while not self._stop.is_set() and count < self.max_requests and time.monotonic() < deadline:
            room = self.per_tick if self.max_in_flight is None else min(self.per_tick, self.max_in_flight - self.running)
            if room > 0:
                probe = SlowProbe(self.base_url, self.seconds, count=room, path_template=self.path_template,
                                  margin=self.margin_s, recorder=self.recorder,
                                  expected_size=self.expected_size, pod=self.pod)
                at = time.monotonic()
                probe.start()
                with self._lock:
                    self._started.append(_Started(at, probe))
                count += room
            self._stop.wait(self.every_s)

    def stop_starting(self) -> None:
        """No new requests from now on (the ones in flight run to their end)."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.stopped_at = time.monotonic()
            self.recorder.event("slow-stream-stop", f"{self.started} requests started")

    def join(self) -> None:
        """Wait for every started request to end; each is bounded by seconds + margin."""
        with self._lock:
            started = list(self._started)
        for s in started:
            s.probe.join()

    @property
    def started(self) -> int:
        with self._lock:
            return sum(s.probe.count for s in self._started)

    @property
    def running(self) -> int:
        """Requests started and not yet ended."""
        with self._lock:
            started = list(self._started)
        return sum(s.probe.count - len(s.probe.operations) for s in started)

    @property
    def operations(self) -> list[Operation]:
        with self._lock:
            started = list(self._started)
        return [op for s in started for op in s.probe.operations]
