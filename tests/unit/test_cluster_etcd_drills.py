"""The control-plane quorum drills' judges on hand-made records, and the cluster etcd disruptions'
registration and verify() evidence (no cluster: the parts that decide, not the parts that run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubedrill.check.verdict import Status
from kubedrill.cluster.etcd_backup import Backup
from kubedrill.disrupt.base import REGISTRY
from kubedrill.disrupt.control_plane import StopControlPlanes
from kubedrill.disrupt.etcd_restore import RestoreProcedure
from kubedrill.record import Operation, Recorder
from kubedrill.scenarios import control_plane_quorum as q

HEALTHY = q.EtcdHealth(True, "3/3 healthy", 100, {"a": 7, "b": 7, "c": 7})


def probes(rec: Recorder, lo: float, hi: float, outcome: str = "ok", kinds: tuple[str, ...] = ("put", "get")) -> None:
    """Both clients probing every 0.15 s over [lo, hi), each probe taking 0.05 s."""
    t = lo
    while t < hi:
        for client in q.CLIENTS:
            for kind in kinds:
                rec.add(Operation(kind, t, t + 0.05, outcome, client, "cm", None,  # type: ignore[arg-type]
                                  {"rv": 1} if outcome == "ok" else None, "" if outcome == "ok" else "timed out"))
        t += 0.15


def quorum_record(refusal: Operation, writes_while_two_down: str = "fail") -> q.QuorumRecord:
    """A drill on the clock of the test: warm-up 0-3, one down 4-16 (stop took 1 s), two down 17-29,
    healed at 40, probers stopped at 45."""
    rec = Recorder("t")
    probes(rec, 0, 17)
    probes(rec, 18, 29, writes_while_two_down, kinds=("put",))
    probes(rec, 40, 45)
    one = q.StopSeen(("cp2",), began=3.0, stopped=4.0, held_until=16.0, ended=39.0)
    two = q.StopSeen(("cp3",), began=16.0, stopped=17.0, held_until=29.0, ended=35.0, ip_changed={"cp3": ("a", "b")})
    return q.QuorumRecord(rec, HEALTHY, HEALTHY, 3.0, one, two, refusal, 40.0, 45.0)


REFUSED = Operation("put", 17.5, 23.5, "fail", q.REFUSAL_CLIENT, "cm", "no-quorum", None,  # type: ignore[arg-type]
                    "HTTP 500: etcdserver: request timed out")


def test_quorum_drill_that_behaves_passes_every_check() -> None:
    verdicts = q.judge_quorum(quorum_record(REFUSED))
    assert [v for v in verdicts if not v.passed] == []
    names = [v.check for v in verdicts]
    assert "api-writes-two-cp-down-refused" in names and "api-server-refuses-without-quorum" in names
    assert names.count("etcd-members-healthy") == 2  # before and after


def test_a_write_accepted_without_quorum_fails() -> None:
    verdicts = {v.check: v for v in q.judge_quorum(quorum_record(REFUSED, writes_while_two_down="ok"))}
    assert verdicts["api-writes-two-cp-down-refused"].status is Status.FAIL


def test_server_refusal_verdicts() -> None:
    assert q.check_server_refusal(REFUSED).status is Status.PASS
    hung = Operation("put", 0, q.SERVER_GIVES_UP_S, "unknown", q.REFUSAL_CLIENT, detail="timed out")  # type: ignore[arg-type]
    assert q.check_server_refusal(hung).status is Status.FAIL
    accepted = Operation("put", 0, 1, "ok", q.REFUSAL_CLIENT)  # type: ignore[arg-type]
    assert q.check_server_refusal(accepted).status is Status.FAIL
    lb_only = Operation("put", 0, 2, "fail", q.REFUSAL_CLIENT, detail="ConnectionRefused")  # type: ignore[arg-type]
    v = q.check_server_refusal(lb_only)
    assert v.status is Status.UNKNOWN and "no API server answered" in v.reason


def test_quorum_figures() -> None:
    figures = {f.name: f.value for f in q.quorum_figures(quorum_record(REFUSED))}
    assert figures["ip_changed_on_restart"] == 1
    assert figures["last_ok_write_after_second_stop"] is not None and figures["last_ok_write_after_second_stop"] <= 0


def stop_record(stop_leader: bool, elected_at: float | None) -> q.StopRecord:
    rec = Recorder("t")
    probes(rec, 0, 30)
    rec.event("disruption-start", "stop-control-planes/plane3", at=3.0)
    if elected_at is not None:
        rec.event("leader-elected", "cp3 -> cp1", at=elected_at, old="cp3", new="cp1")
    stop = q.StopSeen(("cp3",), began=3.0, stopped=5.0, held_until=17.0, ended=25.0)
    return q.StopRecord(rec, HEALTHY, HEALTHY, 3.0, "cp3", stop_leader, stop, [], 40 if stop_leader else 0,
                        4.5 if stop_leader else None, 30.0)


def test_leader_stop_judges_the_election() -> None:
    verdicts = {v.check: v for v in q.judge_stop(stop_record(True, elected_at=6.0))}
    assert all(v.passed for v in verdicts.values()), [str(v) for v in verdicts.values() if not v.passed]
    assert "api-write-leader-down-keepalive-unavailability" in verdicts
    figures = {f.name: f.value for f in q.stop_figures(stop_record(True, elected_at=6.0))}
    assert figures["leaderless_gap_observed"] == 1.5 and figures["leader_polls"] == 40


def test_leader_stop_without_an_election_fails() -> None:
    verdicts = {v.check: v for v in q.judge_stop(stop_record(True, elected_at=None))}
    assert verdicts["leader-election"].status is Status.FAIL


def test_follower_stop_is_not_judged_on_an_election() -> None:
    r = stop_record(False, elected_at=None)
    verdicts = {v.check: v for v in q.judge_stop(r)}
    assert "leader-election" not in verdicts and "api-write-follower-down-fresh-unavailability" in verdicts
    assert q.write_outage(r, "fresh") == (0.0, 0, len([o for o in r.recorder.history
                                                        if o.client == "fresh" and o.kind == "put"
                                                        and 2.0 <= o.start <= 17.0]))


def test_records_dump_as_json(tmp_path: Path) -> None:
    r = quorum_record(REFUSED)
    r.dump(tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert '"two_down"' in text and '"operations"' in text


# -- the disruptions ------------------------------------------------------------------------------

def test_cluster_etcd_disruptions_are_registered() -> None:
    assert REGISTRY["etcd-restore"] is RestoreProcedure
    assert REGISTRY["stop-control-planes"] is StopControlPlanes


class FakeCluster:
    name, provider, control_planes = "kd-a", "kind", ["kd-a-control-plane"]


def restore(effect: dict[str, Any]) -> RestoreProcedure:
    b = Backup("kd-a", "kd-a-control-plane", "/x.db", Path("/x.db"), "0" * 64, {"revision": 50}, 1.0, 0.0)
    p = RestoreProcedure(FakeCluster(), b)  # type: ignore[arg-type]
    p.effect.update(effect)
    return p


@pytest.mark.parametrize("effect, took, says", [
    ({"etcd_before": {"cluster_id": 1, "revision": 90}, "etcd_after": {"cluster_id": 2, "revision": 1_000_000_051}},
     True, "cluster id 1 -> 2"),
    ({"etcd_before": {"cluster_id": 1, "revision": 90}, "etcd_after": {"cluster_id": 1, "revision": 95},
      "restore_ok": False}, False, "still serves the pre-restore data (the restore step failed)"),
    ({"etcd_before": {"cluster_id": 1, "revision": 90}, "etcd_after": {}}, False, "could not be read"),
])
def test_restore_verify_reads_the_cluster_id(effect: dict[str, Any], took: bool, says: str) -> None:
    p = restore(effect)
    assert p.variant == "runbook" and p.describe() == "etcd-restore (runbook) of kd-a from x.db"
    ok, evidence = p.verify()
    assert ok is took and says in evidence, evidence


def test_restore_variants_are_named_from_their_parts() -> None:
    b = Backup("foreign-1", "n", "/x.db", Path("/x.db"), "0" * 64, {}, 0.0, 0.0)
    p = RestoreProcedure(FakeCluster(), b, stop_apiservers=False, bump_revision=0)  # type: ignore[arg-type]
    assert p.variant == "api-running+no-bump+foreign-snapshot"
