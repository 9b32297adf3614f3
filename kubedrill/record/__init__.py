"""The record: what happened, on a monotonic clock, with no judgement attached.

Load generators, probes and disruptions append to a Recorder; checkers read its history later.
Times are `time.monotonic()` seconds; `wall_at(t)` converts one to wall-clock time for reports.
An operation's outcome is three-valued: "ok", "fail" (definitely did not happen) or "unknown"
(timed out or the connection broke after sending: it may or may not have taken effect).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

Outcome = Literal["ok", "fail", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "fail", "unknown")


@dataclass(frozen=True)
class Operation:
    """One client request: invoked at `start`, answered (or given up) at `end`."""

    kind: str
    start: float
    end: float
    outcome: Outcome
    client: str = "0"
    key: str | None = None
    value: Any = None
    result: Any = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.end < self.start:
            raise ValueError(f"operation ends ({self.end}) before it starts ({self.start})")

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Event:
    """Something that happened to the system: a disruption began, a pod got SIGTERM, ..."""

    at: float
    kind: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Thread-safe append-only record of operations and events."""

    def __init__(self, name: str = "record") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._ops: list[Operation] = []
        self._events: list[Event] = []
        self.mono0 = time.monotonic()
        self.wall0 = time.time()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def wall_at(self, t: float) -> float:
        return self.wall0 + (t - self.mono0)

    def add(self, op: Operation) -> None:
        with self._lock:
            self._ops.append(op)

    def extend(self, ops: Iterable[Operation]) -> None:
        with self._lock:
            self._ops.extend(ops)

    def event(self, kind: str, detail: str = "", at: float | None = None, **data: Any) -> Event:
        ev = Event(at=self.now() if at is None else at, kind=kind, detail=detail, data=data)
        with self._lock:
            self._events.append(ev)
        return ev

    @property
    def history(self) -> list[Operation]:
        with self._lock:
            return sorted(self._ops, key=lambda o: (o.start, o.end))

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return sorted(self._events, key=lambda e: e.at)

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "mono0": self.mono0,
                "wall0": self.wall0,
                "operations": [asdict(o) for o in self.history],
                "events": [asdict(e) for e in self.events],
            },
            default=str,
        )


@dataclass(frozen=True)
class Window:
    """A closed time interval on the monotonic clock, e.g. while a disruption was applied."""

    start: float
    end: float

    def contains(self, t: float) -> bool:
        return self.start <= t <= self.end

    def overlaps(self, op: Operation) -> bool:
        return op.start <= self.end and op.end >= self.start

    @property
    def duration(self) -> float:
        return self.end - self.start
