"""Process faults under a recorded workload: kill or freeze the leader, stop or restart a follower.

Each test runs concurrent clients (put, linearizable get, serializable get, cas) against every
member, requires a minimum rate before the fault (else the result is UNKNOWN, which fails), applies
the fault, keeps the load running through healing, then reads every acknowledged write back at
its revision. Verdicts: the fault took effect (the leader changed, measured), writes through
the surviving members recovered, the history is linearizable per key, no acknowledged write
was lost, and all members converged to equal `endpoint hashkv`.

Limits come from the run config's SLO (`kd_config.slo`): max_election_s, max_lost_writes, and
the survivors' write outage, max_unavailability_s plus max_election_s when the leader is replaced.
"""

from __future__ import annotations

import time
from typing import Callable

import pytest

from fixtures.etcd import ClusterFactory, EtcdRun, endpoints
from kubedrill.check.etcd_checks import (
    check_election,
    check_hashes_equal,
    check_lost_writes,
    check_min_rate,
    check_unavailability,
)
from kubedrill.check.linearizability import check_linearizable
from kubedrill.check.verdict import Verdict, combine
from kubedrill.config import RunConfig
from kubedrill.disrupt.etcd_faults import EtcdFault, Freeze, Kill, KillLeader, Restart, Stop, followers, leader, settle
from kubedrill.etcd.cluster import EtcdCluster
from kubedrill.load.etcd_workload import EtcdWorkload, WorkloadConfig, readback
from kubedrill.record import Recorder
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.needs_docker]

OP_TIMEOUT = 2.0
# ok ops/s required before the fault: at 10/s a 1 s outage still hits ~10 operations. The
# nominal rate is 25/s per member; 10 leaves room for a loaded 2-core machine.
MIN_RATE = 10.0
# (size, fault factory, leader must change)
CASES: list[tuple[int, Callable[[], EtcdFault], bool]] = [
    (3, KillLeader, True),
    (5, KillLeader, True),
    (3, lambda: Freeze(leader(), expect_new_leader=True), True),
    (3, lambda: Stop(followers(1)), False),
    (3, lambda: Restart(followers(1)), False),
]


def _id(size: int, make: Callable[[], EtcdFault]) -> str:
    return f"size-{size}/{make().name}"


@pytest.mark.parametrize(("size", "make_fault", "leader_changes"), CASES, ids=[_id(c[0], c[1]) for c in CASES])
def test_fault_under_load(size: int, make_fault: Callable[[], EtcdFault], leader_changes: bool,
                          etcd_cluster: ClusterFactory, etcd_run: EtcdRun, etcd_recorder: Recorder, etcd_seed: int,
                          kd_report: TestResult, kd_config: RunConfig) -> None:
    slo = kd_config.slo
    cluster = etcd_cluster(size)
    rec = etcd_recorder
    cfg = WorkloadConfig(key_prefix="kd/fault/", keys=8, op_timeout_s=OP_TIMEOUT, max_duration_s=60,
                         rate_per_client=25, max_ops=5000)
    load = EtcdWorkload(endpoints(cluster.members), etcd_run.tls, rec, cfg, seed=etcd_seed)
    fault = make_fault()
    with load.running():
        load.wait_ops(40, timeout=20)
        settle(2.0)
        with fault.applied(cluster, rec, heal_timeout=45):
            settle(2.5)  # the fault stays applied under load
        settle(1.0)  # load keeps running after healing, so recovery is in the record
    assert not load.errors, load.errors

    hit = {m.name for m in fault.targets}
    survivors_ops = [o for o in rec.history if o.client.split(".")[0] not in hit]
    readback(rec.history, endpoints(cluster.members)[0], etcd_run.tls, rec)
    t_check = time.monotonic()
    verdicts: list[Verdict] = [
        check_min_rate(rec.history, before=rec.events_of("disruption-start")[0].at, min_rate=MIN_RATE, lookback_s=2.0),
        check_unavailability(survivors_ops, max_window_s=slo.etcd_outage_allowed(leader_changes),
                             label="survivor-write"),
        check_linearizable(rec.history, time_budget_s=15),
        check_lost_writes(rec.history, max_lost=slo.max_lost_writes),
        _converged(cluster, rec),
    ]
    if leader_changes:
        verdicts.append(check_election(rec.events, max_s=slo.max_election_s))
    kd_report.figure("checkers_time", round(time.monotonic() - t_check, 3), "s")
    kd_report.figure("operations_recorded", len(rec.history), "ops")
    for v in verdicts:
        kd_report.add(v)
    verdict = combine(fault.name, verdicts)
    assert verdict.passed, str(verdict)


def _converged(cluster: EtcdCluster, rec: Recorder) -> Verdict:
    """Ask every member for hashkv at one revision now that the fault is healed."""
    rev, _ = cluster.wait_converged(timeout=30)
    hashes = {}
    for m in cluster.members:
        with m.client(timeout=3) as c:
            hashes[m.name] = c.hashkv(rev)[0]
    return check_hashes_equal(hashes, rev)


@pytest.mark.parametrize("size", [3], ids=["size-3/kill-follower-catch-up"])
def test_recovered_member_catches_up(size: int, etcd_cluster: ClusterFactory, etcd_run: EtcdRun,
                                     etcd_recorder: Recorder, kd_report: TestResult) -> None:
    """A member killed while 2000 keys are written comes back and reaches equal hashkv."""
    cluster = etcd_cluster(size)
    rec = etcd_recorder
    fault = Kill(followers(1))
    with fault.applied(cluster, rec, converge_after=False):
        victim = fault.targets[0]
        writer = next(m for m in cluster.members if m is not victim)
        with writer.client(timeout=10) as c:
            for b in range(20):
                c.put_many([(f"kd/catchup/{b:03d}/{i:03d}".encode(), b"x" * 200) for i in range(100)])
            final_rev = c.status().revision
    t0 = time.monotonic()
    rev, _ = cluster.wait_converged(timeout=60)
    catch_up = time.monotonic() - t0
    kd_report.figure("catch_up_time", round(catch_up, 3), "s", f"{victim.name} after 2000 missed keys")
    hashes = {}
    for m in cluster.members:
        with m.client(timeout=3) as c:
            hashes[m.name] = c.hashkv(rev)[0]
    v = kd_report.add(check_hashes_equal(hashes, rev))
    assert v.passed, str(v)
    assert rev >= final_rev, f"converged at revision {rev}, before the last write at {final_rev}"
    with victim.client(timeout=3) as c:
        kv, _ = c.get("kd/catchup/019/099", serializable=True)
    assert kv is not None and kv.value == b"x" * 200, f"{victim.name} does not serve the last key locally: {kv}"
