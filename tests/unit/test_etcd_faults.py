"""The fault scope's contract, on fake clusters: it always heals, records its events, refuses
to run when unavailable, and fails loudly when the fault had no effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kubedrill.disrupt import etcd_faults
from kubedrill.disrupt.etcd_faults import (
    EtcdFault,
    FaultNotEffective,
    FaultUnavailable,
    Partition,
    split,
    watch_new_leader,
)
from kubedrill.etcd.client import EtcdError, MemberStatus
from kubedrill.record import Recorder


@dataclass(eq=False)
class FakeMember:
    name: str
    member_id: int
    leader_id: int = 1
    down: bool = False

    def status(self, timeout: float = 1.0) -> MemberStatus:
        if self.down:
            raise EtcdError("refused", definite=True)
        return MemberStatus(self.member_id, self.leader_id, 2, 10, 10, 5, 1, "3.6.5")


@dataclass
class FakeHealth:
    leader: Any


@dataclass
class FakeCluster:
    members: list[FakeMember] = field(default_factory=lambda: [FakeMember(f"m{i}", i + 1) for i in range(3)])
    name: str = "fake"
    healed: int = 0

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    def wait_healthy(self, timeout: float = 30, members: Any = None) -> FakeHealth:
        return FakeHealth(self.member_by_id(self.members[0].leader_id))

    def wait_converged(self, timeout: float = 30, members: Any = None) -> tuple[int, int]:
        return 5, 42

    def member_by_id(self, i: int) -> FakeMember | None:
        return next((m for m in self.members if m.member_id == i), None)

    def describe(self, members: Any = None) -> str:
        return ", ".join(f"{m.name}->{m.leader_id}" for m in self.members)


class Recording(EtcdFault):
    name = "recording"

    def __init__(self, effective: bool = True, why_not: str | None = None) -> None:
        super().__init__()
        self.effective = effective
        self.why_not = why_not
        self.calls: list[str] = []

    def available(self, cluster: Any) -> str | None:
        return self.why_not

    def inject(self, cluster: Any, rec: Recorder) -> None:
        self.calls.append("inject")

    def verify(self, cluster: Any, rec: Recorder) -> None:
        if not self.effective:
            raise FaultNotEffective("nothing happened")

    def heal(self, cluster: Any, rec: Recorder) -> None:
        self.calls.append("heal")


def test_scope_records_events_and_heals() -> None:
    rec, f = Recorder(), Recording()
    with f.applied(FakeCluster(), rec):  # type: ignore[arg-type]
        pass
    assert f.calls == ["inject", "heal"]
    assert [e.kind for e in rec.events] == ["disruption-start", "disruption-injected", "disruption-heal",
                                           "disruption-end", "converged"]


def test_scope_heals_when_the_body_fails() -> None:
    rec, f = Recorder(), Recording()
    with pytest.raises(ZeroDivisionError), f.applied(FakeCluster(), rec):  # type: ignore[arg-type]
        1 / 0  # noqa: B018
    assert f.calls == ["inject", "heal"] and rec.events_of("disruption-end")


def test_ineffective_fault_fails_and_still_heals() -> None:
    rec, f = Recorder(), Recording(effective=False)
    with pytest.raises(FaultNotEffective), f.applied(FakeCluster(), rec):  # type: ignore[arg-type]
        pytest.fail("the body must not run when the fault had no effect")
    assert f.calls == ["inject", "heal"]


def test_unavailable_fault_does_not_inject() -> None:
    f = Recording(why_not="needs root")
    with pytest.raises(FaultUnavailable, match="needs root"), f.applied(FakeCluster(), Recorder()):  # type: ignore[arg-type]
        pass
    assert f.calls == []


def test_leader_that_never_changes_is_not_an_election() -> None:
    c = FakeCluster()
    old = c.members[0]
    old.down = True
    with pytest.raises(FaultNotEffective, match="leader did not change"):
        watch_new_leader(c, Recorder(), old, c.members[1:], timeout=0.3)  # type: ignore[arg-type]


def test_new_leader_is_recorded() -> None:
    c = FakeCluster()
    old = c.members[0]
    old.down = True
    for m in c.members[1:]:
        m.leader_id = 3
    rec = Recorder()
    new = watch_new_leader(c, rec, old, c.members[1:], timeout=2)  # type: ignore[arg-type]
    assert new is c.members[2]
    assert rec.events_of("leader-elected")[0].data == {"old": "m0", "new": "m2"}


def test_split_puts_the_leader_on_the_asked_side() -> None:
    c = FakeCluster()
    for m in c.members:
        m.leader_id = 2
    groups = split([2, 1], leader_side=1)(c)  # type: ignore[arg-type]
    assert [[m.name for m in g] for g in groups] == [["m0", "m2"], ["m1"]]
    with pytest.raises(ValueError, match="do not add up"):
        split([2, 2])(c)  # type: ignore[arg-type]


def test_partition_says_why_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Partition(split([2, 1]), "partition-2-1")
    monkeypatch.setattr(etcd_faults.os, "geteuid", lambda: 1000)
    assert "root" in (p.available(FakeCluster()) or "")  # type: ignore[arg-type]
    monkeypatch.setattr(etcd_faults.os, "geteuid", lambda: 0)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert "remote" in (p.available(FakeCluster()) or "")  # type: ignore[arg-type]
