"""The etcd faults on the one disruption protocol, on fake clusters: they always heal, record the
events the checkers read (injection time, new leader, convergence), refuse to run when
unavailable or unhealthy, and are inconclusive when the fault had no effect."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubedrill.cluster.waits import WaitTimeout
from kubedrill.disrupt import etcd_faults
from kubedrill.disrupt.base import DisruptionError, NotAvailable, NotEffective, UnhealthyBefore, lookup
from kubedrill.disrupt.etcd_faults import (
    EtcdDisruption,
    KillLeader,
    MemberFault,
    Partition,
    build_fault,
    members,
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

    def __repr__(self) -> str:
        return self.name


@dataclass
class FakeHealth:
    leader: Any
    statuses: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeCluster:
    members: list[FakeMember] = field(default_factory=lambda: [FakeMember(f"m{i}", i + 1) for i in range(3)])
    name: str = "fake"
    healthy: bool = True
    converges: bool = True

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    def member(self, name: str) -> FakeMember:
        return next(m for m in self.members if m.name == name)

    def leader(self) -> FakeMember | None:
        return self.member_by_id(self.members[0].leader_id)

    def wait_healthy(self, timeout: float = 30, members: Any = None) -> FakeHealth:
        if not self.healthy:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for etcd cluster fake")
        return FakeHealth(self.leader())

    def wait_converged(self, timeout: float = 30, members: Any = None) -> tuple[int, int]:
        if not self.converges:
            raise WaitTimeout("timed out waiting for equal hashkv")
        return 5, 42

    def member_by_id(self, i: int) -> FakeMember | None:
        return next((m for m in self.members if m.member_id == i), None)

    def describe(self, members: Any = None) -> str:
        return ", ".join(f"{m.name}->{m.leader_id}" for m in self.members)


class Recording(MemberFault):
    """Acts on picked members by marking them down (or not at all, when ineffective)."""

    name = "recording"

    def __init__(self, cluster: Any, rec: Recorder, targets: Any = members("m1"), *, effective: bool = True,
                 why_not: str | None = None, elect: int | None = None, **kw: Any) -> None:
        super().__init__(cluster, rec, targets, **kw)
        self.effective, self.why_not, self.elect = effective, why_not, elect
        self.calls: list[str] = []

    def available(self) -> str | None:
        return self.why_not

    def act(self, m: Any) -> None:
        time.sleep(0.01)  # so "after inject()" and "the first action" differ measurably
        self.calls.append(f"act {m.name}")
        if self.effective:
            m.down = True
            if self.elect is not None:  # the survivors agree on a new leader
                for s in self.cluster.members:
                    s.leader_id = self.elect

    def took_effect(self) -> tuple[bool, str]:
        down = [m.name for m in self.targets if m.down]
        return bool(down), f"down: {down}" if down else "nothing went down"

    def restore(self) -> None:
        self.calls.append("restore")
        for m in self.targets:
            m.down = False


def test_scope_records_the_events_the_checkers_read_and_heals() -> None:
    rec, c = Recorder(), FakeCluster()
    f = Recording(c, rec)
    with f.applied():
        assert c.member("m1").down
    assert f.calls == ["act m1", "restore"] and not c.member("m1").down
    assert [e.kind for e in rec.events] == ["disruption-start", "disruption-injected", "disruption-heal",
                                           "disruption-end", "converged"]
    injected = rec.events_of("disruption-injected")[0]
    assert injected.at == f.injected_at, "the injection is stamped at the first action, not after inject()"
    assert injected.data == {"targets": ["m1"]}
    assert rec.events_of("converged")[0].data == {"revision": 5, "hash": 42}
    assert f.window is not None and f.window.start < f.injected_at < f.window.end


def test_scope_heals_when_the_body_fails() -> None:
    rec = Recorder()
    f = Recording(FakeCluster(), rec)
    with pytest.raises(ZeroDivisionError), f.applied():
        1 / 0  # noqa: B018
    assert f.calls == ["act m1", "restore"] and rec.events_of("disruption-end")
    assert not rec.events_of("converged"), "convergence is awaited only after a clean exit"


def test_ineffective_fault_is_inconclusive_and_still_heals() -> None:
    f = Recording(FakeCluster(), Recorder(), effective=False)
    with pytest.raises(NotEffective, match="nothing went down"), f.applied():
        pytest.fail("the body must not run when the fault had no effect")
    assert f.calls == ["act m1", "restore"]


def test_unavailable_fault_does_not_inject() -> None:
    f = Recording(FakeCluster(), Recorder(), why_not="needs root")
    with pytest.raises(NotAvailable, match="needs root"), f.applied():
        pass
    assert f.calls == []


def test_unhealthy_cluster_before_is_inconclusive() -> None:
    f = Recording(FakeCluster(healthy=False), Recorder())
    with pytest.raises(UnhealthyBefore, match="timed out"), f.applied():
        pass
    assert f.calls == []


def test_members_that_do_not_converge_after_the_heal_are_an_error() -> None:
    f = Recording(FakeCluster(converges=False), Recorder())
    with pytest.raises(DisruptionError, match="unhealthy after heal: .*hashkv") as err, f.applied():
        pass
    assert not isinstance(err.value, NotEffective)
    f2 = Recording(FakeCluster(converges=False), Recorder(), converge_after=False)
    with f2.applied():
        pass


def test_fault_records_into_its_own_recorder_only() -> None:
    f = Recording(FakeCluster(), Recorder("mine"))
    with pytest.raises(ValueError, match="recorder it was built with"), f.applied(Recorder("other")):
        pass


def test_cutting_the_leader_off_waits_for_a_new_one() -> None:
    c = FakeCluster()
    rec = Recorder()
    f = Recording(c, rec, targets=members("m0"), elect=3)
    with f.applied():
        assert f.new_leader is c.member("m2")
    assert rec.events_of("leader-elected")[0].data == {"old": "m0", "new": "m2"}
    assert f.effect["verified"].endswith("new leader m2")


def test_leader_that_never_changes_makes_the_fault_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    f = Recording(FakeCluster(), Recorder(), targets=members("m0"))
    watch = etcd_faults.watch_new_leader
    monkeypatch.setattr(etcd_faults, "watch_new_leader", lambda *a, **kw: watch(*a, **{**kw, "timeout": 0.3}))
    with pytest.raises(NotEffective, match="leader did not change"), f.applied():
        pass
    assert f.calls[-1] == "restore"


def test_losing_quorum_expects_no_new_leader() -> None:
    c = FakeCluster()
    rec = Recorder()
    f = Recording(c, rec, targets=members("m0", "m1"))
    with f.applied():
        assert f.quorum_side() is None and f.new_leader is None
    assert not rec.events_of("leader-elected")


def test_kill_leader_is_inconclusive_when_the_leader_was_not_hit() -> None:
    c = FakeCluster()
    f = KillLeader(c, Recorder())  # type: ignore[arg-type]
    f.pick = members("m1")  # the leader moved between the look and the kill
    f.act = lambda m: setattr(m, "down", True)  # type: ignore[method-assign]
    f.took_effect = lambda: (True, "m1 exited")  # type: ignore[method-assign]
    f.restore = lambda: None  # type: ignore[method-assign]
    with pytest.raises(NotEffective, match="expected to cut off the leader, but the leader was m0"), f.applied():
        pass


def test_watch_new_leader_times_out_without_a_new_leader() -> None:
    c = FakeCluster()
    old = c.members[0]
    old.down = True
    with pytest.raises(TimeoutError, match="a new leader"):
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
    p = Partition(FakeCluster(), Recorder(), sizes=(2, 1))  # type: ignore[arg-type]
    monkeypatch.setattr(etcd_faults.os, "geteuid", lambda: 1000)
    assert "root" in (p.available() or "")
    monkeypatch.setattr(etcd_faults.os, "geteuid", lambda: 0)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert "remote" in (p.available() or "")


def test_partition_sides_are_its_groups() -> None:
    c = FakeCluster()
    p = Partition(c, Recorder(), sizes=(2, 1), leader_side=1)  # type: ignore[arg-type]
    p.groups = split([2, 1], leader_side=1)(c)  # type: ignore[arg-type]
    p.old_leader = c.member("m0")
    assert [[m.name for m in s] for s in p.sides()] == [["m1", "m2"], ["m0"]]
    assert [m.name for m in p.quorum_side() or []] == ["m1", "m2"]


def test_every_etcd_fault_is_registered_and_built_by_name() -> None:
    names = ["etcd-kill", "etcd-kill-leader", "etcd-stop", "etcd-freeze", "etcd-freeze-leader", "etcd-restart",
             "etcd-partition"]
    for n in names:
        cls = lookup(n)
        assert issubclass(cls, EtcdDisruption) and cls.name == n
    c, rec = FakeCluster(), Recorder()
    f = build_fault("etcd-stop", c, rec, targets=members("m1"), grace_s=3)  # type: ignore[arg-type]
    assert f.cluster is c and f.rec is rec and f.grace_s == 3  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not an etcd fault; etcd faults: etcd-freeze"):
        build_fault("drain", c, rec)  # type: ignore[arg-type]
