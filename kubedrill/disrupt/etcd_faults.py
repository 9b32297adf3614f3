"""Faults for standalone etcd members in containers, as disruptions (kubedrill.disrupt.base).

    fault = build_fault("etcd-kill", cluster, recorder, targets=followers(1))
    with fault.applied():
        ...  # the workload keeps running

Every fault is built as `cls(cluster, recorder, **options)` (build_fault() does it from the
registry name), with the cluster and the recorder bound at construction; targets are chosen when
the fault is injected (the leader at that moment, N followers, ...). Registered names:

    etcd-kill, etcd-kill-leader       SIGKILL members (no graceful shutdown); heal starts them
    etcd-stop                         graceful stop (SIGTERM, SIGKILL after the grace period)
    etcd-freeze, etcd-freeze-leader   docker pause (cgroup freezer): alive but silent
    etcd-restart                      graceful stop and start at once, as a rolling restart does
    etcd-partition                    iptables DROP between groups of members

The protocol steps, etcd's way:
  healthy()   before: one leader, every member answers a linearizable read (within 30 s). After the
              heal: the same within heal_timeout_s, then equal `endpoint hashkv` on every member,
              recorded as `converged` -- a fault is over only when the members caught up;
  verify()    the fault's own evidence (containers exited, paused, new pid, DROP rules in place);
              and when the fault cut the leader off from a side that keeps quorum, that side must
              elect a new leader, recorded as `leader-elected` (polled every ~50 ms);
  heal()      records `disruption-heal`, then puts the members back (start, unpause, rules removed).
`disruption-injected` is stamped with `injected_at`, the monotonic time just before the first
effective action (signal, pause, iptables rule): picking the targets (status calls) is not fault
time, and the election time the checkers measure starts there.

Partitions are real network partitions: iptables DROP rules inside each member's network
namespace (entered with `nsenter -t <pid> -n` from the Docker host) for the peers on the other
side, in both directions. The host's own address is not dropped, so clients on the host can still
ask each side what it thinks -- exactly what the quorum drill needs.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import subprocess
import time
from typing import Any, Callable, ClassVar, Iterator, Sequence

import docker.errors

from kubedrill.cluster.waits import wait_for
from kubedrill.disrupt.base import REGISTRY, Disruption, lookup, register
from kubedrill.etcd.client import MemberStatus
from kubedrill.etcd.cluster import EtcdCluster, Member
from kubedrill.record import Event, Recorder

Picker = Callable[[EtcdCluster], list[Member]]

HEALTHY_BEFORE_TIMEOUT_S = 30.0


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


# -- what every etcd fault shares ------------------------------------------------------------------

class _StampedRecorder:
    """Hands base.applied() the fault's recorder, stamping `disruption-injected` with the fault's
    own `injected_at` and its targets (a list, as the etcd records always had them).

    Only until kubedrill.disrupt.base records the injection time a disruption reports itself
    (proposed: `Disruption.injected_at`, used as the event's `at` when set); then this goes.
    """

    def __init__(self, rec: Recorder, fault: "EtcdDisruption") -> None:
        self._rec, self._fault = rec, fault

    def now(self) -> float:
        return self._rec.now()

    def event(self, kind: str, detail: str = "", at: float | None = None, **data: Any) -> Event:
        if kind == "disruption-injected":
            return self._rec.event(kind, detail, at=self._fault.injected_at,
                                   targets=[m.name for m in self._fault.targets])
        return self._rec.event(kind, detail, at, **data)


class EtcdDisruption(Disruption):
    """A fault of an etcd cluster; see the module docstring for what each protocol step means here.

    heal_timeout_s bounds both waits after the heal (healthy, then converged); converge_after=False
    skips the convergence wait for drills that measure catching up themselves.
    """

    # The fault is meant to take the leader away (etcd-kill-leader): not effective unless it did.
    cuts_leader: ClassVar[bool] = False

    def __init__(self, cluster: EtcdCluster, recorder: Recorder, *, heal_timeout_s: float = 45.0,
                 converge_after: bool = True) -> None:
        super().__init__()
        self.cluster = cluster
        self.rec = recorder
        self.heal_timeout_s = heal_timeout_s
        self.converge_after = converge_after
        self.targets: list[Member] = []
        # Monotonic time just before the first effective action (see the module docstring).
        self.injected_at: float | None = None
        self.old_leader: Member | None = None
        self.new_leader: Member | None = None
        self.healed = False

    def describe(self) -> str:
        hit = ", ".join(m.name for m in self.targets) or "members not picked yet"
        return f"{self.name} of {hit} in etcd cluster {self.cluster.name}"

    def _mark(self) -> None:
        if self.injected_at is None:
            self.injected_at = time.monotonic()
        self.effect["targets"] = [m.name for m in self.targets]

    @contextlib.contextmanager
    def applied(self, recorder: Recorder | None = None, check_health: bool = True) -> Iterator[Disruption]:
        """base.applied() on the recorder bound at construction (events of verify() and healthy()
        go there too, so a different one would split the record)."""
        if recorder is not None and recorder is not self.rec:
            raise ValueError(f"{self.name}: records into the recorder it was built with ({self.rec.name!r}), "
                             f"not {recorder.name!r}; build the fault with the drill's recorder")
        stamped: Any = _StampedRecorder(self.rec, self)
        with super().applied(stamped, check_health) as d:
            yield d

    # -- sides: who can still serve while the fault holds -------------------------------------------

    def sides(self) -> list[list[Member]]:
        """The groups of live members that reach each other while the fault holds. Default: one
        group, the members the fault did not hit."""
        return [[m for m in self.cluster.members if m not in self.targets]]

    def quorum_side(self) -> list[Member] | None:
        """The side that keeps quorum (there is at most one), or None."""
        return next((s for s in self.sides() if len(s) >= self.cluster.quorum), None)

    # -- the protocol ---------------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        """Before the fault: healthy. After the heal: healthy, then converged (see the module docstring)."""
        try:
            if not self.healed:
                h = self.cluster.wait_healthy(timeout=HEALTHY_BEFORE_TIMEOUT_S)
                return True, f"leader {h.leader.name}, {len(h.statuses)} members answer linearizable reads"
            h = self.cluster.wait_healthy(timeout=self.heal_timeout_s)
            if not self.converge_after:
                return True, f"leader {h.leader.name} (convergence not awaited)"
            rev, hsh = self.cluster.wait_converged(timeout=self.heal_timeout_s)
        except TimeoutError as exc:
            return False, str(exc)
        self.rec.event("converged", f"hashkv {hsh} at revision {rev}", revision=rev, hash=hsh)
        return True, f"leader {h.leader.name}, every member has hashkv {hsh} at revision {rev}"

    @abc.abstractmethod
    def took_effect(self) -> tuple[bool, str]:
        """The fault's own evidence that it acted: (took effect, what was seen)."""

    def verify(self) -> tuple[bool, str]:
        took, seen = self.took_effect()
        if not took:
            return False, seen
        if self.old_leader is None:
            return False, (f"{seen}; but no leader was agreed by a majority just before the fault, so whether "
                           "it cut the leader off cannot be told")
        side = self.quorum_side()
        cut_off = side is None or self.old_leader not in side
        if self.cuts_leader and not cut_off:
            return False, f"expected to cut off the leader, but the leader was {self.old_leader.name} and stayed in reach"
        if not cut_off or side is None:
            return True, seen
        try:
            self.new_leader = watch_new_leader(self.cluster, self.rec, self.old_leader, side)
        except TimeoutError as exc:
            return False, f"{seen}; but the leader did not change: {exc}"
        return True, f"{seen}; new leader {self.new_leader.name}"

    def heal(self) -> None:
        self.rec.event("disruption-heal", self.name)
        self.restore()
        self.healed = True

    @abc.abstractmethod
    def restore(self) -> None:
        """Put the members back (start, unpause, remove rules); the heal step's action."""


def build_fault(name: str, cluster: EtcdCluster, recorder: Recorder, **options: Any) -> EtcdDisruption:
    """The etcd fault registered as `name`, built on `cluster`: build_fault("etcd-stop", c, rec,
    targets=followers(1))."""
    cls = lookup(name)
    if not issubclass(cls, EtcdDisruption):
        known = sorted(n for n, c in REGISTRY.items() if issubclass(c, EtcdDisruption))
        raise ValueError(f"{name!r} is a {cls.__qualname__}, not an etcd fault; etcd faults: {', '.join(known)}")
    return cls(cluster, recorder, **options)  # type: ignore[call-arg]


def watch_new_leader(cluster: EtcdCluster, rec: Recorder, old: Member, survivors: Sequence[Member],
                     timeout: float = 20.0) -> Member:
    """Poll the survivors every ~50 ms until a quorum of the cluster names a leader other than
    `old`; record `leader-elected` at the first such observation. Raises TimeoutError (a
    kubedrill WaitTimeout saying what each survivor reported) if none does within `timeout`."""
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

    new = wait_for(f"a new leader (not {old.name}) agreed by {cluster.quorum} members of {cluster.name}",
                   probe, timeout, interval=0.05, seen=lambda: cluster.describe(survivors))
    rec.event("leader-elected", f"{old.name} -> {new.name}", old=old.name, new=new.name)
    return new


def _wait_state(m: Member, want: set[str], timeout: float = 15.0) -> str:
    return wait_for(f"member {m.name} container in state {sorted(want)}",
                    lambda: (s if (s := m.state()) in want else None), timeout,
                    seen=lambda: m.state(), hint=f"docker inspect {m.container_name}")


# -- process faults ---------------------------------------------------------------------------------

class MemberFault(EtcdDisruption):
    """A fault acting on each target member's container; `targets` picks them at injection."""

    def __init__(self, cluster: EtcdCluster, recorder: Recorder, targets: Picker, **kw: Any) -> None:
        super().__init__(cluster, recorder, **kw)
        self.pick = targets

    def inject(self) -> None:
        self.old_leader = self.cluster.leader()
        self.targets = self.pick(self.cluster)
        self._mark()
        for m in self.targets:
            self.act(m)

    @abc.abstractmethod
    def act(self, m: Member) -> None:
        """The fault's action on one member."""

    def restore(self) -> None:
        for m in self.targets:
            if m.state() in ("exited", "created"):
                m.start()


@register("etcd-kill")
class Kill(MemberFault):
    """SIGKILL the members' etcd processes (no graceful shutdown); heal restarts them."""

    def act(self, m: Member) -> None:
        m.kill("SIGKILL")

    def took_effect(self) -> tuple[bool, str]:
        for m in self.targets:
            try:
                _wait_state(m, {"exited"}, timeout=10)
            except TimeoutError:
                return False, f"member {m.name} still {m.state()} 10 s after SIGKILL"
        return True, f"{', '.join(m.name for m in self.targets)} exited"


class OnTheLeader:
    """Mixin for a member fault aimed at the leader at injection time: effective only once the
    leader was hit and the others agreed on a new one (`cuts_leader`)."""

    cuts_leader: ClassVar[bool] = True

    def __init__(self, cluster: EtcdCluster, recorder: Recorder, **kw: Any) -> None:
        super().__init__(cluster, recorder, leader(), **kw)  # type: ignore[call-arg]


@register("etcd-kill-leader")
class KillLeader(OnTheLeader, Kill):
    """SIGKILL the current leader."""


@register("etcd-stop")
class Stop(MemberFault):
    """Graceful stop (SIGTERM, then SIGKILL after the grace period); heal starts them again."""

    def __init__(self, cluster: EtcdCluster, recorder: Recorder, targets: Picker, grace_s: int = 10,
                 **kw: Any) -> None:
        super().__init__(cluster, recorder, targets, **kw)
        self.grace_s = grace_s

    def act(self, m: Member) -> None:
        m.stop(timeout=self.grace_s)

    def took_effect(self) -> tuple[bool, str]:
        for m in self.targets:
            info = m.container().attrs["State"]
            if info["Status"] != "exited":
                return False, f"member {m.name} is {info['Status']} after a graceful stop"
            self.rec.event("stopped", m.name, exit_code=info.get("ExitCode"))
        return True, f"{', '.join(m.name for m in self.targets)} stopped"


@register("etcd-freeze")
class Freeze(MemberFault):
    """Freeze the members' processes (docker pause: cgroup freezer). Nothing exits, sockets stay
    open, the members just stop answering -- the nastiest failure for timeouts to handle."""

    def act(self, m: Member, attempts: int = 10) -> None:
        """docker pause, retried: runc on cgroup v1 gives up ("unable to freeze") when a task sits
        in uninterruptible sleep (an fsync) while it polls the freezer; runc thaws it again, so
        trying once more is safe. Bounded; the last error is raised with the count."""
        last: Exception | None = None
        for i in range(attempts):
            try:
                m.pause()
                if i:
                    self.rec.event("freeze-retried", m.name, attempts=i + 1)
                return
            except docker.errors.APIError as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"could not freeze {m.name} after {attempts} attempts; last error: {last}. "
                           "The cgroup freezer could not stop the process (busy in the kernel?).")

    def took_effect(self) -> tuple[bool, str]:
        for m in self.targets:
            if m.state() != "paused":
                return False, f"member {m.name} is {m.state()}, not paused"
            try:
                m.status(timeout=0.5)
            except Exception:  # noqa: BLE001 - not answering is the expected effect
                continue
            return False, f"member {m.name} is paused but still answers status requests"
        return True, f"{', '.join(m.name for m in self.targets)} paused and silent"

    def restore(self) -> None:
        for m in self.targets:
            if m.state() == "paused":
                m.unpause()


@register("etcd-freeze-leader")
class FreezeLeader(OnTheLeader, Freeze):
    """Freeze the current leader."""


@register("etcd-restart")
class Restart(MemberFault):
    """Graceful restart (stop, then start at once), as a rolling maintenance step does it.
    Effective when the member comes back with a new process. The restarted members are not a
    side that serves while the fault holds: they are catching up."""

    def __init__(self, cluster: EtcdCluster, recorder: Recorder, targets: Picker, **kw: Any) -> None:
        super().__init__(cluster, recorder, targets, **kw)
        self._pids: dict[str, int] = {}

    def act(self, m: Member) -> None:
        self._pids[m.name] = m.pid()
        m.stop(timeout=10)
        m.start()

    def took_effect(self) -> tuple[bool, str]:
        for m in self.targets:
            try:
                _wait_state(m, {"running"})
            except TimeoutError as exc:
                return False, f"member {m.name} did not come back: {exc}"
            if m.pid() == self._pids[m.name]:
                return False, f"member {m.name} kept pid {m.pid()}: it was not restarted"
        return True, ", ".join(f"{m.name} pid {self._pids[m.name]} -> {m.pid()}" for m in self.targets)


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


@register("etcd-partition")
class Partition(EtcdDisruption):
    """Cut the cluster into groups of `sizes` members that cannot reach each other (peer and
    client ports alike); with leader_side=i the leader at injection time is in group i."""

    def __init__(self, cluster: EtcdCluster, recorder: Recorder, sizes: Sequence[int],
                 leader_side: int | None = None, **kw: Any) -> None:
        super().__init__(cluster, recorder, **kw)
        self.sizes = tuple(sizes)
        self.leader_side = leader_side
        self.groups_of = split(sizes, leader_side)
        self.groups: list[list[Member]] = []

    def available(self) -> str | None:
        if os.geteuid() != 0:
            return "entering a container's network namespace needs root"
        for tool in ("nsenter", "iptables"):
            if shutil.which(tool) is None:
                return f"`{tool}` is not on PATH (apt-get install util-linux iptables)"
        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return f"DOCKER_HOST={host} is remote: container network namespaces are not reachable from here"
        return None

    def sides(self) -> list[list[Member]]:
        return [list(g) for g in self.groups]

    def inject(self) -> None:
        self.old_leader = self.cluster.leader()
        self.groups = self.groups_of(self.cluster)
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
        self.rec.event("partition", " | ".join(",".join(m.name for m in g) for g in self.groups),
                       groups=[[m.name for m in g] for g in self.groups])

    @staticmethod
    def _must(m: Member, r: subprocess.CompletedProcess[str]) -> None:
        if r.returncode != 0:
            raise RuntimeError(f"iptables in {m.name}'s network namespace failed: {' '.join(r.args)}: {r.stderr.strip()}")

    def took_effect(self) -> tuple[bool, str]:
        if self.leader_side is not None and self.old_leader not in self.groups[self.leader_side]:
            return False, (f"the leader was to be in group {self.leader_side} "
                           f"({[m.name for m in self.groups[self.leader_side]]}), but it was {self.old_leader}")
        for gi, group in enumerate(self.groups):
            others = [m for gj, g in enumerate(self.groups) if gj != gi for m in g]
            for m in group:
                for o in others:
                    r = _ns_iptables(m.pid(), "-C", CHAIN_OUT, "-d", o.ip, "-j", "DROP")
                    if r.returncode != 0:
                        return False, f"no DROP rule from {m.name} to {o.name}: {r.stderr.strip()}"
        return True, "DROP rules in place between " + " | ".join(",".join(m.name for m in g) for g in self.groups)

    def restore(self) -> None:
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


def settle(seconds: float) -> None:
    """Let timers (election timeout, leader lease) run out; a named pause reads better than sleep."""
    time.sleep(seconds)
