"""The quorum drill on a standalone etcd cluster: one fault, a recorded workload and probes, then judge().

    fault = lookup("etcd-kill-leader")(cluster, recorder)
    record = run_quorum_drill(cluster, fault, load=EtcdLoadConfig(...), seed=seed)
    verdicts = judge(record, run_config.slo)

`run_quorum_drill` only records, in three phases:
  before  the workload (if any) runs until `warmup_ops` operations succeeded and `lead_s` more
          (the minimum-rate check reads that stretch); one write through every member;
  during  the fault is applied (a registered etcd disruption: healthy first, verified to take
          effect, a new leader awaited when it cut the leader off) and held `hold_s` under load.
          Then every side of the cluster -- the groups of live members that reach each other -- is
          asked what it can do: a side with quorum must take a write through each member; a side
          without quorum must refuse writes and linearizable reads (within the client timeout,
          never hanging) and still answer serializable reads from local state. A side without
          quorum that holds the old leader is asked only after 1.5 election timeouts, when that
          leader has stepped down (CheckQuorum) and knows it is alone;
  after   the heal (healthy, then equal `endpoint hashkv`, recorded `converged`), one write through
          every member, `tail_s` more load so recovery is in the record; then every acknowledged
          write is read back at its revision and every member's hashkv is taken at one revision.

`judge` turns the record into the verdicts the etcd suites assert, with the limits of the run
config's SLO: election time (max_election_s), the write outage of the workload's clients on the
side that kept quorum (max_unavailability_s, plus max_election_s when the leader changed), lost
writes (max_lost_writes); and the minimum load before the fault, the quorum answers, stale reads
on a minority, linearizability and convergence. Suites, benchmarks and meta-tests share both.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Protocol

from kubedrill.check.etcd_checks import (
    check_answers,
    check_election,
    check_hashes_equal,
    check_lost_writes,
    check_min_rate,
    check_stale_reads,
    check_unavailability,
)
from kubedrill.check.linearizability import check_linearizable
from kubedrill.check.verdict import Verdict, safe_check
from kubedrill.disrupt.etcd_faults import EtcdDisruption, settle
from kubedrill.etcd.cluster import EtcdCluster
from kubedrill.load.etcd_workload import EtcdWorkload, EtcdLoadConfig, endpoints, probe_many, readback
from kubedrill.record import Event, Operation, Recorder, Window

OP_TIMEOUT_S = 2.0
# ok ops/s required before the fault: at 10/s a 1 s outage still hits ~10 operations. The
# suites' nominal rate is 25/s per member; 10 leaves room for a loaded 2-core machine.
MIN_RATE = 10.0
PROBE_KEY = "kd/quorum/probe"
# Probes per member: a write through a member of a side with quorum must succeed within
# WRITES_WITH_QUORUM tries; a side without quorum gets the rest.
WRITES_WITH_QUORUM, WRITES_WITHOUT, LINEARIZABLE_READS, SERIALIZABLE_READS = 2, 3, 2, 3

Probes = dict[str, list[Operation]]  # member name -> its probe operations


class EtcdSLO(Protocol):
    """The limits judge() reads; the run config's SLO (kd_config.slo) is one."""

    @property
    def max_lost_writes(self) -> int: ...

    @property
    def max_election_s(self) -> float: ...

    def etcd_outage_allowed(self, leader_changes: bool) -> float: ...


@dataclass(frozen=True)
class Side:
    """Live members that reach each other while the fault holds."""

    members: tuple[str, ...]
    has_quorum: bool

    @property
    def label(self) -> str:
        return "+".join(self.members)


@dataclass
class QuorumDrillRecord:
    """What one quorum drill did and saw; judge() reads nothing else. Operations and events (the
    workload's, the probes', the fault's) are in `recorder`; `probes` indexes the probe operations."""

    size: int = 0
    quorum: int = 0
    fault: str = ""
    targets: list[str] = field(default_factory=list)
    sides: list[Side] = field(default_factory=list)
    old_leader: str | None = None
    new_leader: str | None = None
    workload: bool = False  # a workload ran across the fault
    load_errors: list[str] = field(default_factory=list)
    op_timeout_s: float = OP_TIMEOUT_S
    # "before/put", "during/put", "during/get", "during/sget", "after/put" -> member -> operations
    probes: dict[str, Probes] = field(default_factory=dict)
    window: Window | None = None  # the fault applied: from before inject() to after the heal
    during: Window | None = None  # from the fault's first effective action to the start of the heal
    hash_revision: int = 0
    hashes: dict[str, int] = field(default_factory=dict)  # member -> hashkv at hash_revision
    recorder: Recorder = field(default_factory=lambda: Recorder("quorum"))

    @property
    def history(self) -> list[Operation]:
        return self.recorder.history

    @property
    def events(self) -> list[Event]:
        return self.recorder.events

    @property
    def survivors(self) -> tuple[str, ...]:
        """The members of the side that kept quorum (none when no side did)."""
        return next((s.members for s in self.sides if s.has_quorum), ())

    @property
    def leader_changes(self) -> bool:
        """The fault cut the leader off from the side that kept quorum: that side needs a new one."""
        return bool(self.survivors) and self.old_leader is not None and self.old_leader not in self.survivors

    def probed(self, what: str, members: Iterable[str] | None = None) -> list[Operation]:
        """The probe operations of one phase/kind (e.g. "during/put"), through the given members."""
        by_member = self.probes.get(what, {})
        return [o for m in (by_member if members is None else members) for o in by_member.get(m, [])]

    def dump(self, path: Path) -> None:
        """The record as JSON (kept as an artifact when a test fails)."""
        doc: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("recorder", "probes")}
        doc["sides"] = [asdict(s) for s in self.sides]
        doc["window"], doc["during"] = [asdict(w) if w else None for w in (self.window, self.during)]
        doc["probes"] = {what: {m: [asdict(o) for o in ops] for m, ops in by.items()} for what, by in self.probes.items()}
        doc["record"] = json.loads(self.recorder.to_json())
        path.write_text(json.dumps(doc, default=str, indent=1))


def _member_of(client: str) -> str:
    """Workload clients are named "<member>.<n>"."""
    return client.split(".")[0]


def run_quorum_drill(
    cluster: EtcdCluster, fault: EtcdDisruption, *, load: EtcdLoadConfig | None = None, seed: int = 0,
    hold_s: float = 0.0, op_timeout_s: float = OP_TIMEOUT_S, warmup_ops: int = 40, lead_s: float = 2.0,
    tail_s: float = 1.0,
) -> QuorumDrillRecord:
    """Run the drill once (see the module docstring); the record goes to the fault's recorder.

    load: the workload across the fault, or None for probes only. The fault must be built on
    `cluster`; its inconclusive errors (not available, unhealthy before, no effect) propagate.
    """
    if fault.cluster is not cluster:
        raise ValueError(f"{fault.name} was built on cluster {fault.cluster.name}, the drill runs on {cluster.name}")
    rec = fault.rec
    tls = cluster.client_tls
    r = QuorumDrillRecord(size=cluster.size, quorum=cluster.quorum, fault=fault.name, workload=load is not None,
                          op_timeout_s=op_timeout_s, recorder=rec)
    everyone = endpoints(cluster.members)

    def ask(what: str, members: list[str], kind: str, count: int) -> None:
        if members:
            got = probe_many(endpoints(cluster.member(n) for n in members), tls, rec, kind=kind, count=count,
                             timeout_s=op_timeout_s, key=PROBE_KEY)
            r.probes.setdefault(what, {}).update(got)

    names = [m.name for m in cluster.members]
    workload = EtcdWorkload(everyone, tls, rec, load, seed=seed) if load is not None else None
    with workload.running() if workload is not None else contextlib.nullcontext():
        if workload is not None:
            workload.wait_ops(warmup_ops, timeout=20)
            settle(lead_s)
        ask("before/put", names, "put", 1)
        with fault.applied():
            settle(hold_s)
            r.targets = [m.name for m in fault.targets]
            r.old_leader = fault.old_leader.name if fault.old_leader else None
            r.new_leader = fault.new_leader.name if fault.new_leader else None
            r.sides = [Side(tuple(m.name for m in s), len(s) >= cluster.quorum) for s in fault.sides() if s]
            with_quorum = [m for s in r.sides if s.has_quorum for m in s.members]
            without = [m for s in r.sides if not s.has_quorum for m in s.members]
            if r.old_leader in without:  # let it step down (CheckQuorum): ask a minority, not a stale leader
                settle(cluster.election_ms / 1000 * 1.5)
            ask("during/put", with_quorum, "put", WRITES_WITH_QUORUM)
            ask("during/put", without, "put", WRITES_WITHOUT)
            ask("during/get", without, "get", LINEARIZABLE_READS)
            ask("during/sget", without, "sget", SERIALIZABLE_READS)
            assert fault.injected_at is not None
            r.during = Window(fault.injected_at, rec.now())
        r.window = fault.window
        ask("after/put", names, "put", 1)
        if workload is not None:
            settle(tail_s)
    if workload is not None:
        r.load_errors = list(workload.errors)
    readback(rec.history, everyone[0], tls, rec)
    r.hash_revision, _ = cluster.wait_converged(timeout=30)
    for m in cluster.members:
        with m.client(timeout=3) as c:
            r.hashes[m.name] = c.hashkv(r.hash_revision)[0]
    return r


def _answers(r: QuorumDrillRecord) -> list[Verdict]:
    """What each side answered while the fault held, against what its quorum allows."""
    t = r.op_timeout_s
    out = [safe_check("writes-before", check_answers, r.probed("before/put"), expect_ok=True, timeout_s=t,
                      what="writes-before")]
    for side in r.sides:
        if side.has_quorum:
            out += [safe_check(f"writes-via-{m}", check_answers, r.probed("during/put", [m]), expect_ok=True,
                               timeout_s=t, what=f"writes-via-{m}") for m in side.members]
            continue
        out += [
            safe_check(f"writes-via-{side.label}", check_answers, r.probed("during/put", side.members),
                       expect_ok=False, timeout_s=t, what=f"writes-via-{side.label}"),
            safe_check(f"linearizable-reads-via-{side.label}", check_answers, r.probed("during/get", side.members),
                       expect_ok=False, timeout_s=t, what=f"linearizable-reads-via-{side.label}"),
        ]
        out += [safe_check(f"serializable-reads-via-{m}", check_answers, r.probed("during/sget", [m]),
                           expect_ok=True, timeout_s=t, what=f"serializable-reads-via-{m}") for m in side.members]
    minority = [m for s in r.sides if not s.has_quorum for m in s.members]
    if r.survivors and minority and r.during is not None:
        during = r.during
        majority_writes = r.probed("during/put", r.survivors) + [
            o for o in r.history if o.kind in ("put", "cas") and _member_of(o.client) in r.survivors
            and during.contains(o.start)]
        out.append(safe_check("minority-stale-reads", check_stale_reads, r.probed("during/sget", minority),
                              majority_writes))
    out.append(safe_check("writes-after-heal", check_answers, r.probed("after/put"), expect_ok=True, timeout_s=t,
                          what="writes-after-heal"))
    return out


def judge(r: QuorumDrillRecord, slo: EtcdSLO, min_rate: float = MIN_RATE) -> list[Verdict]:
    """Every check of a quorum drill, in the order a reader should see them."""
    verdicts: list[Verdict] = []
    if r.workload:
        started = [e.at for e in r.recorder.events_of("disruption-start")]
        verdicts.append(Verdict.unknown("load-before-fault", "no disruption-start in the record: the fault never ran")
                        if not started else
                        safe_check("load-before-fault", check_min_rate, r.history, before=started[0],
                                   min_rate=min_rate, lookback_s=2.0))
        if r.load_errors:
            verdicts.append(Verdict.fail("workload-clients", f"{len(r.load_errors)} workload clients crashed: "
                                                             f"{'; '.join(r.load_errors[:3])}"))
    if r.leader_changes:
        verdicts.append(safe_check("leader-election", check_election, r.events, max_s=slo.max_election_s))
    verdicts += _answers(r)
    if r.workload and r.survivors:
        survivors_ops = [o for o in r.history if _member_of(o.client) in r.survivors]
        verdicts.append(safe_check("survivor-write-unavailability", check_unavailability, survivors_ops,
                                   max_window_s=slo.etcd_outage_allowed(r.leader_changes), label="survivor-write"))
    verdicts += [
        safe_check("linearizable", check_linearizable, r.history, time_budget_s=15),
        safe_check("lost-writes", check_lost_writes, r.history, max_lost=slo.max_lost_writes),
        safe_check("members-converged", check_hashes_equal, r.hashes, r.hash_revision),
    ]
    return verdicts
