"""The sample app's lifecycle record (from /events or a pod's termination message), parsed.

The app logs started, prestop-start, prestop-end, sigterm, listener-closed, inflight-drained,
cleanup-start and exit (with its code), each with wall-clock (`time`) and CLOCK_MONOTONIC (`mono`)
seconds. On one machine (kind, or plain docker) `mono` is directly comparable with the test's
`time.monotonic()`: containers share the host kernel's monotonic clock. Against a remote cluster
use `time` and convert with Recorder.wall0/mono0 (then clock skew between hosts adds error).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

EVENT_NAMES = (
    "started", "prestop-start", "prestop-end", "sigterm", "sigint", "listener-closed",
    "inflight-drained", "cleanup-start", "exit",
)


@dataclass(frozen=True)
class LifecycleEvent:
    event: str
    time: float
    mono: float
    detail: str = ""
    code: int | None = None


@dataclass(frozen=True)
class AppLifecycle:
    """What the sample app said about its own life, in order."""

    pod: str
    node: str
    mode: str
    events: tuple[LifecycleEvent, ...]

    def first(self, name: str) -> LifecycleEvent | None:
        return next((e for e in self.events if e.event == name), None)

    def times(self, clock: Literal["mono", "wall"] = "mono", offset: float = 0.0) -> dict[str, float]:
        """First time of each event on the chosen clock, plus `offset` (e.g. mono0 - wall0)."""
        out: dict[str, float] = {}
        for e in self.events:
            out.setdefault(e.event, (e.mono if clock == "mono" else e.time) + offset)
        return out

    @property
    def exit_code(self) -> int | None:
        ev = self.first("exit")
        return ev.code if ev is not None else None


def parse_lifecycle(text: str) -> AppLifecycle:
    """Parse the app's JSON report; raises ValueError saying what was wrong with it."""
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"sample app lifecycle record is not JSON ({exc.msg}); got {text[:200]!r}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise ValueError(f"sample app lifecycle record has no 'events' list; got {text[:200]!r}")
    events = []
    for i, e in enumerate(raw["events"]):
        try:
            events.append(LifecycleEvent(
                event=str(e["event"]), time=float(e["time"]), mono=float(e.get("mono", 0.0)),
                detail=str(e.get("detail", "")), code=None if e.get("code") is None else int(e["code"]),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"sample app lifecycle event {i} is malformed ({exc!r}): {e!r}") from None
    return AppLifecycle(pod=str(raw.get("pod", "")), node=str(raw.get("node", "")), mode=str(raw.get("mode", "")),
                        events=tuple(events))
