"""The sample app's lifecycle record (from /events or a pod's termination message), parsed.

The app logs started, prestop-start, prestop-end, sigterm, listener-closed, inflight-drained,
cleanup-start and exit (with its code), each with wall-clock (`time`) and CLOCK_MONOTONIC (`mono`)
seconds. On one machine (kind, or plain docker) `mono` is directly comparable with the test's
`time.monotonic()`: containers share the host kernel's monotonic clock. Against a remote cluster
use `time` and convert with Recorder.wall0/mono0 (then clock skew between hosts adds error).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

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


def rfc3339_to_unix(ts: Any) -> float | None:
    """finishedAt as Unix seconds: a datetime (kubernetes client) or an RFC 3339 string (raw JSON)."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()
    text = str(ts).replace("Z", "+00:00")
    base, dot, rest = text.partition(".")
    if dot:  # fractional seconds of any length (Docker gives nanoseconds)
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        tz = rest[len(digits):]
        return datetime.fromisoformat(base + tz).timestamp() + float("0." + digits)
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class TerminatedState:
    """A container's terminated state on the test's clock; `note` says why `events` may be empty."""

    events: dict[str, float]
    exit_at: float | None
    exit_code: int | None
    reason: str | None
    note: str = ""

    def as_kwargs(self) -> dict[str, Any]:
        """For `TerminationRecord.from_events(pod, grace, **state.as_kwargs(), deletion_at=..., ...)`."""
        return {"events": self.events, "exit_at": self.exit_at, "exit_code": self.exit_code, "reason": self.reason}


def terminated_state(
    terminated: Mapping[str, Any], *, wall0: float, mono0: float, clock: Literal["mono", "wall"] = "mono",
) -> TerminatedState:
    """A container's terminated state, ready for `TerminationRecord.from_events`.

    `terminated` is `status.containerStatuses[i].state.terminated` (or `lastState.terminated`) as raw
    JSON (camelCase) or as the kubernetes client's `.to_dict()` (snake_case). Its `message` is the
    app's termination log. clock="mono" uses the app's CLOCK_MONOTONIC stamps as they are (kind:
    nodes share this host's kernel); clock="wall" maps wall times with the test Recorder's
    wall0/mono0 (a remote cluster; then host clock skew adds error). finishedAt only has whole
    seconds in Kubernetes, so the app's own "exit" event is preferred; when the app was SIGKILLed
    there is none, and finishedAt + 0.5 s (the middle of its second) is used.
    """
    def get(*keys: str) -> Any:
        return next((terminated[k] for k in keys if terminated.get(k) is not None), None)

    message = get("message") or ""
    events: dict[str, float] = {}
    note = "" if message.strip() else "empty termination message (the app wrote no lifecycle record)"
    if message.strip():
        try:
            lc = parse_lifecycle(message)
            events = lc.times("mono") if clock == "mono" else lc.times("wall", offset=mono0 - wall0)
        except ValueError as exc:
            note = str(exc)
    finished = rfc3339_to_unix(get("finishedAt", "finished_at"))
    exit_at = events.get("exit")
    if exit_at is None and finished is not None:
        exit_at = mono0 + (finished + 0.5 - wall0)
    code = get("exitCode", "exit_code")
    return TerminatedState(events=events, exit_at=exit_at, exit_code=None if code is None else int(code),
                           reason=get("reason"), note=note)
