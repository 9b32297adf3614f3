"""judge() of the quorum drill on hand-made records: which verdicts a record gets (they follow the
record's shape: workload or not, a side with quorum or not, a leader change or not) and that each
broken expectation fails with a reason. Pure: no etcd, no Docker."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from kubedrill.check.verdict import Status, Verdict, combine
from kubedrill.config import SLOConfig
from kubedrill.record import Operation, Recorder, Window
from kubedrill.scenarios.quorum import QuorumDrillRecord, Side, judge

SLO = SLOConfig()  # max_election_s 5, max_unavailability_s 3, max_lost_writes 0
T_START, T_INJECT, T_HEAL, T_END = 10.0, 10.1, 13.0, 14.0


def _probe(r: QuorumDrillRecord, what: str, member: str, at: float, outcomes: list[str], *, rev: int = 0,
           took: float = 0.02) -> None:
    """Probe operations through `member`, recorded as run_quorum_drill records them."""
    kind = what.split("/")[1]
    ops = []
    for i, outcome in enumerate(outcomes):
        start = at + i * 0.1
        result: dict[str, object] | None = None
        if outcome == "ok":
            result = {"revision": rev + i} if kind == "put" else {"value": None, "revision": rev + i}
        value = f"probe-{member}-{start}" if kind == "put" else None
        ops.append(Operation(kind, start, start + took, outcome, f"probe-{member}", "kd/quorum/probe",  # type: ignore[arg-type]
                             value, result))
    r.recorder.extend(ops)
    r.probes.setdefault(what, {})[member] = ops


def record(*, sides: list[Side], old_leader: str = "m0", targets: tuple[str, ...] = ("m0",), workload: bool = True,
           election_s: float | None = 1.2, outage: tuple[float, float] | None = (T_INJECT, 11.4),
           load_from: float = 5.0, load_every: float = 0.05) -> QuorumDrillRecord:
    """A drill of a 3-member cluster whose every expectation holds, unless a parameter breaks one."""
    rec = Recorder("unit")
    survivors = next((s.members for s in sides if s.has_quorum), ())
    r = QuorumDrillRecord(size=3, quorum=2, fault="etcd-test", targets=list(targets), sides=sides,
                          old_leader=old_leader, workload=workload, recorder=rec,
                          window=Window(T_START, T_END), during=Window(T_INJECT, T_HEAL))
    revs = itertools.count(2)
    if workload:
        clients = [f"{m}.0" for m in ("m0", "m1", "m2")]
        for i, t in enumerate(x * load_every + load_from for x in range(int((16 - load_from) / load_every))):
            for c in clients:
                member = c.split(".")[0]
                down = (member not in survivors and T_INJECT <= t < T_HEAL) or (
                    outage is not None and outage[0] <= t < outage[1])
                if down:
                    rec.add(Operation("put", t, t + 0.03, "fail", c, f"kd/k{i % 3}", f"{c}-{i}", None, "no leader"))
                else:
                    rec.add(Operation("put", t, t + 0.03, "ok", c, f"kd/k{i % 3}", f"{c}-{i}", {"revision": next(revs)}))
    rec.event("disruption-start", "etcd-test", at=T_START)
    rec.event("disruption-injected", "etcd-test", at=T_INJECT, targets=list(targets))
    if election_s is not None:
        new = survivors[0]
        r.new_leader = new
        rec.event("leader-elected", f"{old_leader} -> {new}", at=T_INJECT + election_s, old=old_leader, new=new)
    for m in ("m0", "m1", "m2"):
        _probe(r, "before/put", m, T_START - 0.1, ["ok"], rev=next(revs))
    minority = [m for s in sides if not s.has_quorum for m in s.members]
    for m in survivors:
        _probe(r, "during/put", m, 11.5, ["ok", "ok"], rev=next(revs))
        next(revs)
    for m in minority:
        _probe(r, "during/put", m, 11.6, ["fail", "fail", "unknown"], took=0.5)
        _probe(r, "during/get", m, 12.0, ["fail", "fail"], took=0.5)
        _probe(r, "during/sget", m, 12.5, ["ok", "ok", "ok"], rev=3)  # stale: below the majority's writes
    rec.event("disruption-heal", "etcd-test", at=T_HEAL)
    rec.event("disruption-end", "etcd-test", at=T_END)
    rec.event("converged", "hashkv 7", at=T_END, revision=99, hash=7)
    for m in ("m0", "m1", "m2"):
        _probe(r, "after/put", m, T_END + 0.1, ["ok"], rev=next(revs))
    for op in rec.history:  # the readback of every acknowledged write
        if op.kind == "put" and op.outcome == "ok":
            rec.add(Operation("readback", 20.0, 20.01, "ok", "readback", op.key, {"revision": op.result["revision"]},
                              {"value": op.value, "mod_revision": op.result["revision"]}))
    r.hash_revision, r.hashes = 99, {"m0": 7, "m1": 7, "m2": 7}
    return r


def kill_leader(**kw: object) -> QuorumDrillRecord:
    return record(sides=[Side(("m1", "m2"), True)], **kw)  # type: ignore[arg-type]


def partition_2_1(**kw: object) -> QuorumDrillRecord:
    return record(sides=[Side(("m0", "m2"), True), Side(("m1",), False)], old_leader="m1",
                  targets=("m0", "m2", "m1"), **kw)  # type: ignore[arg-type]


def by_name(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.check: v for v in verdicts}


def test_kill_leader_under_load_passes_with_every_check() -> None:
    verdicts = judge(kill_leader(), SLO)
    assert [v.check for v in verdicts] == [
        "load-before-fault", "leader-election", "writes-before-available", "writes-via-m1-available",
        "writes-via-m2-available", "writes-after-heal-available", "survivor-write-unavailability",
        "linearizability", "lost-writes", "members-converged"]
    assert combine("drill", verdicts).passed, combine("drill", verdicts)


def test_slow_election_fails() -> None:
    v = by_name(judge(kill_leader(election_s=6.0), SLO))["leader-election"]
    assert v.status is Status.FAIL and "more than the allowed 5.00s" in v.reason


def test_leader_change_earns_the_election_time_on_top_of_the_outage_limit() -> None:
    long_outage = (T_INJECT, T_INJECT + 4.4)  # within 3 s + 5 s, beyond 3 s
    v = by_name(judge(kill_leader(outage=long_outage), SLO))["survivor-write-unavailability"]
    assert v.passed, v
    follower = record(sides=[Side(("m1", "m2"), True)], old_leader="m1", election_s=None, outage=long_outage)
    verdicts = by_name(judge(follower, SLO))
    assert "leader-election" not in verdicts, "a follower fault elects no one"
    v = verdicts["survivor-write-unavailability"]
    assert v.status is Status.FAIL and "exceeds the allowed 3.00s" in v.reason


def test_thin_load_before_the_fault_is_unknown() -> None:
    v = by_name(judge(kill_leader(load_from=9.0, load_every=0.5), SLO))["load-before-fault"]
    assert v.status is Status.UNKNOWN and "need >= 10.0" in v.reason


def test_missing_leader_election_fails() -> None:
    v = by_name(judge(kill_leader(election_s=None), SLO))["leader-election"]
    assert v.status is Status.FAIL and "no new leader observed" in v.reason


def test_lost_write_fails() -> None:
    r = kill_leader()
    ops = r.recorder._ops  # noqa: SLF001 - tamper with one readback, as a store that dropped the write would
    i = next(i for i, o in enumerate(ops) if o.kind == "readback")
    ops[i] = replace(ops[i], result={"value": "someone-else", "mod_revision": ops[i].result["mod_revision"]})
    v = by_name(judge(r, SLO))["lost-writes"]
    assert v.status is Status.FAIL and "1 of" in v.reason


def test_members_that_differ_fail() -> None:
    r = kill_leader()
    r.hashes["m2"] = 8
    v = by_name(judge(r, SLO))["members-converged"]
    assert v.status is Status.FAIL and "differs" in v.reason


def test_crashed_workload_clients_fail() -> None:
    r = kill_leader()
    r.load_errors = ["client m1.0: RuntimeError('boom')"]
    v = by_name(judge(r, SLO))["workload-clients"]
    assert v.status is Status.FAIL and "boom" in v.reason


def test_partition_minority_refuses_writes_and_serves_stale_reads() -> None:
    verdicts = by_name(judge(partition_2_1(), SLO))
    for name in ("leader-election", "writes-via-m0-available", "writes-via-m2-available", "writes-via-m1-refused",
                 "linearizable-reads-via-m1-refused", "serializable-reads-via-m1-available", "minority-stale-reads",
                 "survivor-write-unavailability"):
        assert verdicts[name].passed, verdicts[name]
    assert combine("drill", list(verdicts.values())).passed


@pytest.mark.parametrize(("what", "outcomes", "took", "check", "reason"), [
    ("during/put", ["fail", "ok", "fail"], 0.02, "writes-via-m1-refused", "expected writes-via-m1 to be refused, 1 succeeded"),
    ("during/put", ["fail", "unknown", "fail"], 4.0, "writes-via-m1-refused", "it hung"),
    ("during/get", ["ok", "fail"], 0.02, "linearizable-reads-via-m1-refused", "1 succeeded"),
    ("during/sget", ["fail", "fail", "fail"], 0.02, "serializable-reads-via-m1-available", "none did"),
], ids=["minority-write-succeeds", "minority-write-hangs", "minority-linearizable-read", "minority-silent"])
def test_partition_minority_misbehaving_fails(what: str, outcomes: list[str], took: float, check: str,
                                              reason: str) -> None:
    r = partition_2_1()
    _probe(r, what, "m1", 12.2, outcomes, rev=3, took=took)
    v = by_name(judge(r, SLO))[check]
    assert v.status is Status.FAIL and reason in v.reason, v


def test_minority_read_at_the_majority_revision_is_not_stale() -> None:
    r = partition_2_1()
    _probe(r, "during/sget", "m1", 12.5, ["ok"], rev=10_000)
    v = by_name(judge(r, SLO))["minority-stale-reads"]
    assert v.status is Status.FAIL and "not cut off" in v.reason


def test_no_side_with_quorum_elects_no_one_and_has_no_survivors() -> None:
    split = record(sides=[Side(("m0", "m1"), False), Side(("m2",), False)], election_s=None, outage=None,
                   targets=("m0", "m1", "m2"))
    verdicts = by_name(judge(split, SLO))
    assert not {"leader-election", "survivor-write-unavailability", "minority-stale-reads"} & set(verdicts)
    assert {"writes-via-m0+m1-refused", "writes-via-m2-refused", "serializable-reads-via-m0-available"} <= set(verdicts)
    assert combine("drill", list(verdicts.values())).passed


def test_probes_only_have_no_load_checks() -> None:
    lose_1 = kill_leader(workload=False)
    verdicts = by_name(judge(lose_1, SLO))
    assert "load-before-fault" not in verdicts and "survivor-write-unavailability" not in verdicts
    assert {"leader-election", "writes-via-m1-available", "lost-writes"} <= set(verdicts)
    assert combine("drill", list(verdicts.values())).passed


def test_an_empty_record_cannot_pass() -> None:
    verdicts = judge(QuorumDrillRecord(workload=True), SLO)
    assert not combine("drill", verdicts).passed
    assert by_name(verdicts)["load-before-fault"].status is Status.UNKNOWN


def test_dump_keeps_sides_probes_and_the_record(tmp_path: Path) -> None:
    r = partition_2_1()
    r.dump(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["sides"] == [{"members": ["m0", "m2"], "has_quorum": True}, {"members": ["m1"], "has_quorum": False}]
    assert doc["probes"]["during/put"]["m1"][0]["outcome"] == "fail"
    assert {e["kind"] for e in doc["record"]["events"]} >= {"disruption-injected", "leader-elected", "converged"}
