"""Faults for etcd members in containers, each with inject, verify, heal and a recorded scope.

A fault is used as `with fault.applied(cluster, recorder): ...`. The scope
  1. refuses to start if the fault is not available here (says why),
  2. waits for a healthy cluster first (a fault on a sick cluster proves nothing),
  3. records disruption-start / disruption-injected / disruption-heal / disruption-end events,
  4. verifies the fault took effect and raises FaultNotEffective otherwise (a leader kill with
     no new leader, a partition whose rules are not in place, ...),
  5. always heals, and after a clean exit waits until the cluster is healthy again.
Targets are chosen when the fault is injected (the leader at that moment, N followers, ...).

Partitions are real network partitions: iptables DROP rules inside each member's network
namespace (entered with `nsenter -t <pid> -n` from the Docker host) for the peers on the other
side, in both directions. The host's own address is not dropped, so clients on the host can still
ask each side what it thinks -- exactly what the quorum suite needs.
"""

from __future__ import annotations

import abc
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import docker.errors

from kubedrill.etcd.client import MemberStatus
from kubedrill.cluster.waits import wait_for
from kubedrill.etcd.cluster import EtcdCluster, Member
from kubedrill.record import Recorder

Picker = Callable[[EtcdCluster], list[Member]]


class FaultNotEffective(AssertionError):
    """The fault was injected but the system shows no sign of it: the test would prove nothing."""


class FaultUnavailable(RuntimeError):
    """The fault cannot run in this environment (the message says what is missing)."""


# -- target pickers ----------------------------------------------------------------------------

def leader() -> Picker:
    def pick(c: EtcdCluster) -> list[Member]:
        h = c.wait_healthy(timeout=20)
        return [h.leader]
    pick.__name__ = "leader"
    return pick


def followers(n: int = 1) -> Picker:
    def pick(c: EtcdCluster) -> list[Member]:
        h = c.wait_healthy(timeout=20)
        fs = [m for m in c.members if m is not h.leader]
        if len(fs) < n:
            raise ValueError(f"asked for {n} followers, cluster {c.name} has {len(fs)}")
        return fs[:n]
    pick.__name__ = f"followers-{n}"
    return pick


def members(*names: str) -> Picker:
    def pick(c: EtcdCluster) -> list[Member]:
        return [c.member(n) for n in names]
    pick.__name__ = "+".join(names)
    return pick


def leader_and_followers(n_followers: int) -> Picker:
    """The leader plus n followers: losing k members always includes losing the leader."""
    def pick(c: EtcdCluster) -> list[Member]:
        h = c.wait_healthy(timeout=20)
        fs = [m for m in c.members if m is not h.leader]
        return [h.leader, *fs[:n_followers]]
    pick.__name__ = f"leader+{n_followers}"
    return pick


# -- the fault protocol ---------------------------------------------------------------------------

class EtcdFault(abc.ABC):
    """name says where and what (kill-leader, partition-2-1); see the module docstring."""

    name: str = "fault"

    def __init__(self) -> None:
        self.targets: list[Member] = []
        # Monotonic time just before the first effective action (signal, pause, iptables rule).
        # Targets are picked before it, so the picking (status calls) is not counted as fault time.
        self.injected_at: float | None = None

    def _mark(self) -> None:
        if self.injected_at is None:
            self.injected_at = time.monotonic()

    def available(self, cluster: EtcdCluster) -> str | None:  # noqa: ARG002 - most faults run anywhere
        """None if the fault can run here, else the reason it cannot."""
        return None

    @abc.abstractmethod
    def inject(self, cluster: EtcdCluster, rec: Recorder) -> None: ...

    @abc.abstractmethod
    def heal(self, cluster: EtcdCluster, rec: Recorder) -> None: ...

    def verify(self, cluster: EtcdCluster, rec: Recorder) -> None:  # noqa: ARG002
        """Raise FaultNotEffective if the fault shows no effect."""

    @contextmanager
    def applied(
        self, cluster: EtcdCluster, rec: Recorder, *, healthy_before: bool = True, heal_timeout: float = 45.0,
        converge_after: bool = True,
    ) -> Iterator["EtcdFault"]:
        why = self.available(cluster)
        if why:
            raise FaultUnavailable(f"{self.name} cannot run here: {why}")
        if healthy_before:
            cluster.wait_healthy(timeout=30)
        rec.event("disruption-start", self.name)
        ok = False
        try:
            self.inject(cluster, rec)
            rec.event("disruption-injected", self.name, at=self.injected_at, targets=[m.name for m in self.targets])
            self.verify(cluster, rec)
            yield self
            ok = True
        finally:
            rec.event("disruption-heal", self.name)
            try:
                self.heal(cluster, rec)
            finally:
                rec.event("disruption-end", self.name)
            if ok:
                cluster.wait_healthy(timeout=heal_timeout)
                if converge_after:
                    rev, h = cluster.wait_converged(timeout=heal_timeout)
                    rec.event("converged", f"hashkv {h} at revision {rev}", revision=rev, hash=h)


def _wait_state(m: Member, want: set[str], timeout: float = 15.0) -> str:
    return wait_for(f"member {m.name} container in state {sorted(want)}",
                    lambda: (s if (s := m.state()) in want else None), timeout,
                    seen=lambda: m.state(), hint=f"docker inspect {m.container_name}")


def watch_new_leader(cluster: EtcdCluster, rec: Recorder, old: Member, survivors: Sequence[Member],
                     timeout: float = 20.0) -> Member:
    """Poll the survivors every ~50 ms until a quorum of the cluster names a leader other than
    `old`; record `leader-elected` at the first such observation."""
    def probe() -> Member | None:
        votes: dict[int, int] = {}
        for m in survivors:
            try:
                st: MemberStatus = m.status(timeout=0.5)
            except Exception:  # noqa: BLE001 - a survivor that cannot answer simply has no vote
                continue
            if st.leader and st.leader != old.member_id:
                votes[st.leader] = votes.get(st.leader, 0) + 1
        for lid, n in votes.items():
            if n >= cluster.quorum:
                return cluster.member_by_id(lid)
        return None

    try:
        new = wait_for(f"a new leader (not {old.name}) agreed by {cluster.quorum} members of {cluster.name}",
                       probe, timeout, interval=0.05, seen=lambda: cluster.describe(survivors))
    except TimeoutError as exc:
        raise FaultNotEffective(f"leader did not change: {exc}") from exc
    rec.event("leader-elected", f"{old.name} -> {new.name}", old=old.name, new=new.name)
    return new


# -- process faults ---------------------------------------------------------------------------------

class Kill(EtcdFault):
    """SIGKILL the members' etcd processes (no graceful shutdown); heal restarts them."""

    def __init__(self, pick: Picker, expect_new_leader: bool = False) -> None:
        super().__init__()
        self.pick = pick
        self.expect_new_leader = expect_new_leader
        self.name = f"kill-{pick.__name__}"
        self.old_leader: Member | None = None
        self.new_leader: Member | None = None

    def inject(self, cluster: EtcdCluster, rec: Recorder) -> None:
        self.old_leader = cluster.leader()
        self.targets = self.pick(cluster)
        self._mark()
        for m in self.targets:
            m.kill("SIGKILL")

    def verify(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            s = _wait_state(m, {"exited"}, timeout=10)
            if s != "exited":
                raise FaultNotEffective(f"member {m.name} still {s} after SIGKILL")
        if self.expect_new_leader:
            if self.old_leader is None or self.old_leader not in self.targets:
                raise FaultNotEffective(f"expected to kill the leader, but the leader was {self.old_leader}")
            survivors = [m for m in cluster.members if m not in self.targets]
            self.new_leader = watch_new_leader(cluster, rec, self.old_leader, survivors)

    def heal(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            if m.state() in ("exited", "created"):
                m.start()


class KillLeader(Kill):
    """SIGKILL the current leader; the fault is effective only once a new leader is agreed."""

    def __init__(self) -> None:
        super().__init__(leader(), expect_new_leader=True)
        self.name = "kill-leader"


class Stop(EtcdFault):
    """Graceful stop (SIGTERM, then SIGKILL after the grace period); heal starts them again."""

    def __init__(self, pick: Picker, grace_s: int = 10) -> None:
        super().__init__()
        self.pick = pick
        self.grace_s = grace_s
        self.name = f"stop-{pick.__name__}"

    def inject(self, cluster: EtcdCluster, rec: Recorder) -> None:
        self.targets = self.pick(cluster)
        self._mark()
        for m in self.targets:
            m.stop(timeout=self.grace_s)

    def verify(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            info = m.container().attrs["State"]
            if info["Status"] != "exited":
                raise FaultNotEffective(f"member {m.name} is {info['Status']} after a graceful stop")
            rec.event("stopped", m.name, exit_code=info.get("ExitCode"))

    def heal(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            if m.state() in ("exited", "created"):
                m.start()


class Freeze(EtcdFault):
    """Freeze the members' processes (docker pause: cgroup freezer). Nothing exits, sockets stay
    open, the members just stop answering -- the nastiest failure for timeouts to handle."""

    def __init__(self, pick: Picker, expect_new_leader: bool = False) -> None:
        super().__init__()
        self.pick = pick
        self.expect_new_leader = expect_new_leader
        self.name = f"freeze-{pick.__name__}"
        self.old_leader: Member | None = None

    def inject(self, cluster: EtcdCluster, rec: Recorder) -> None:
        self.old_leader = cluster.leader()
        self.targets = self.pick(cluster)
        self._mark()
        for m in self.targets:
            self._pause(m, rec)

    @staticmethod
    def _pause(m: Member, rec: Recorder, attempts: int = 10) -> None:
        """docker pause, retried: runc on cgroup v1 gives up ("unable to freeze") when a task sits
        in uninterruptible sleep (an fsync) while it polls the freezer; runc thaws it again, so
        trying once more is safe. Bounded; the last error is raised with the count."""
        last: Exception | None = None
        for i in range(attempts):
            try:
                m.pause()
                if i:
                    rec.event("freeze-retried", m.name, attempts=i + 1)
                return
            except docker.errors.APIError as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"could not freeze {m.name} after {attempts} attempts; last error: {last}. "
                           "The cgroup freezer could not stop the process (busy in the kernel?).")

    def verify(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            if m.state() != "paused":
                raise FaultNotEffective(f"member {m.name} is {m.state()}, not paused")
            try:
                m.status(timeout=0.5)
            except Exception:  # noqa: BLE001 - not answering is the expected effect
                continue
            raise FaultNotEffective(f"member {m.name} is paused but still answers status requests")
        if self.expect_new_leader and self.old_leader is not None:
            survivors = [m for m in cluster.members if m not in self.targets]
            watch_new_leader(cluster, rec, self.old_leader, survivors)

    def heal(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            if m.state() == "paused":
                m.unpause()


class Restart(EtcdFault):
    """Graceful restart (stop, then start at once), as a rolling maintenance step does it.
    Effective when the member comes back with a new process."""

    def __init__(self, pick: Picker) -> None:
        super().__init__()
        self.pick = pick
        self.name = f"restart-{pick.__name__}"
        self._pids: dict[str, int] = {}

    def inject(self, cluster: EtcdCluster, rec: Recorder) -> None:
        self.targets = self.pick(cluster)
        self._mark()
        for m in self.targets:
            self._pids[m.name] = m.pid()
            m.stop(timeout=10)
            m.start()

    def verify(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            _wait_state(m, {"running"})
            if m.pid() == self._pids[m.name]:
                raise FaultNotEffective(f"member {m.name} kept pid {m.pid()}: it was not restarted")

    def heal(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for m in self.targets:
            if m.state() in ("exited", "created"):
                m.start()


# -- network partition --------------------------------------------------------------------------------

CHAIN_IN, CHAIN_OUT = "KD-PART-IN", "KD-PART-OUT"


def _ns_iptables(pid: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "iptables", "-w", "5", *args],
                          capture_output=True, text=True, timeout=20)


def split(sizes: Sequence[int], leader_side: int | None = None) -> Callable[[EtcdCluster], list[list[Member]]]:
    """Groups of the given sizes; with leader_side=i the current leader is put in group i."""
    def groups(c: EtcdCluster) -> list[list[Member]]:
        if sum(sizes) != c.size:
            raise ValueError(f"partition sizes {list(sizes)} do not add up to cluster size {c.size}")
        ordered = list(c.members)
        if leader_side is not None:
            ld = c.wait_healthy(timeout=20).leader
            ordered.remove(ld)
            before = sum(sizes[:leader_side])
            ordered.insert(before, ld)
        out, i = [], 0
        for s in sizes:
            out.append(ordered[i:i + s])
            i += s
        return out
    return groups


class Partition(EtcdFault):
    """Cut the cluster into groups that cannot reach each other (peer and client ports alike)."""

    def __init__(self, groups: Callable[[EtcdCluster], list[list[Member]]], name: str) -> None:
        super().__init__()
        self.groups_of = groups
        self.name = name
        self.groups: list[list[Member]] = []
        self.old_leader: Member | None = None

    def available(self, cluster: EtcdCluster) -> str | None:
        if os.geteuid() != 0:
            return "entering a container's network namespace needs root"
        for tool in ("nsenter", "iptables"):
            if shutil.which(tool) is None:
                return f"`{tool}` is not on PATH (apt-get install util-linux iptables)"
        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return f"DOCKER_HOST={host} is remote: container network namespaces are not reachable from here"
        return None

    def inject(self, cluster: EtcdCluster, rec: Recorder) -> None:
        self.old_leader = cluster.leader()
        self.groups = self.groups_of(cluster)
        self.targets = [m for g in self.groups for m in g]
        self._mark()
        for gi, group in enumerate(self.groups):
            others = [m for gj, g in enumerate(self.groups) if gj != gi for m in g]
            for m in group:
                pid = m.pid()
                for chain, hook in ((CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")):
                    self._must(m, _ns_iptables(pid, "-N", chain))
                    self._must(m, _ns_iptables(pid, "-I", hook, "1", "-j", chain))
                for o in others:
                    self._must(m, _ns_iptables(pid, "-A", CHAIN_IN, "-s", o.ip, "-j", "DROP"))
                    self._must(m, _ns_iptables(pid, "-A", CHAIN_OUT, "-d", o.ip, "-j", "DROP"))
        rec.event("partition", " | ".join(",".join(m.name for m in g) for g in self.groups),
                  groups=[[m.name for m in g] for g in self.groups])

    @staticmethod
    def _must(m: Member, r: subprocess.CompletedProcess[str]) -> None:
        if r.returncode != 0:
            raise RuntimeError(f"iptables in {m.name}'s network namespace failed: {' '.join(r.args)}: {r.stderr.strip()}")

    def verify(self, cluster: EtcdCluster, rec: Recorder) -> None:
        for gi, group in enumerate(self.groups):
            others = [m for gj, g in enumerate(self.groups) if gj != gi for m in g]
            for m in group:
                for o in others:
                    r = _ns_iptables(m.pid(), "-C", CHAIN_OUT, "-d", o.ip, "-j", "DROP")
                    if r.returncode != 0:
                        raise FaultNotEffective(f"no DROP rule from {m.name} to {o.name}: {r.stderr.strip()}")

    def heal(self, cluster: EtcdCluster, rec: Recorder) -> None:
        errors = []
        for m in self.targets:
            if m.state() != "running":
                continue
            pid = m.pid()
            for chain, hook in ((CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")):
                _ns_iptables(pid, "-D", hook, "-j", chain)
                _ns_iptables(pid, "-F", chain)
                r = _ns_iptables(pid, "-X", chain)
                if r.returncode != 0 and "No chain" not in r.stderr and "does not exist" not in r.stderr:
                    errors.append(f"{m.name}: {r.stderr.strip()}")
        if errors:
            raise RuntimeError(f"could not remove partition rules: {errors}")


def wait_side_leader(cluster: EtcdCluster, side: Sequence[Member], timeout: float = 20.0) -> Member:
    """Block until every member of `side` names the same leader, which is itself on `side`."""
    def probe() -> Member | None:
        ids = set()
        for m in side:
            st = m.status(timeout=0.5)
            ids.add(st.leader)
        if len(ids) == 1:
            ld = cluster.member_by_id(ids.pop())
            if ld is not None and ld in side:
                return ld
        return None

    return wait_for(f"members {[m.name for m in side]} to agree on a leader among themselves", probe, timeout,
                    interval=0.1, seen=lambda: cluster.describe(side))


def settle(seconds: float) -> None:
    """Let timers (election timeout, leader lease) run out; a named pause reads better than sleep."""
    time.sleep(seconds)
