"""Records of node maintenance: one node's drain/reboot round trip, one timed phase of an upgrade step."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubedrill.record.cluster import Snapshot
from kubedrill.record.drain_log import DrainLog


@dataclass
class NodePass:
    """One node's maintenance round trip in a rolling pass, on the monotonic clock.

    start: drain began; drained_at: kubectl drain returned; uncordoned_at: the node took pods
    again; end: the workload was settled again (or the pass stopped). Errors are recorded, not
    raised: the checks judge them.
    """

    node: str
    start: float
    drained_at: float | None = None
    uncordoned_at: float | None = None
    end: float | None = None
    drain_s: float | None = None
    log: DrainLog | None = None
    drain_failed: str | None = None
    drain_output: str = ""
    settle_error: str | None = None
    reboot: dict[str, object] = field(default_factory=dict)
    before: Snapshot | None = None  # taken just before this node's drain (earlier nodes moved pods here)
    drained: Snapshot | None = None  # taken while the node was drained and the workload settled

    @property
    def roundtrip_s(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass
class Phase:
    name: str
    start: float
    end: float
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start
