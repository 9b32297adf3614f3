"""Network partitions between members (iptables DROP inside each member's network namespace).

size-3/partition-2-1: the old leader is cut off alone. The two-member majority elects a new
leader and keeps accepting writes; the minority refuses writes and linearizable reads within the
client timeout, yet still answers serializable reads -- from a stale revision. A recorded
workload runs throughout; afterwards every acknowledged write is read back at its revision and
the history must be linearizable.

size-4/partition-2-2: neither half has 3 of 4 members, so no side accepts a single write: an even
cluster split down the middle is down, which is why etcd sizes are odd.

Limits come from the run config's SLO (`kd_config.slo`): the majority's new leader within
max_election_s, its write outage within max_unavailability_s plus max_election_s, and at most
max_lost_writes lost.
"""

from __future__ import annotations

import pytest

from fixtures.etcd import ClusterFactory, EtcdRun, endpoints
from kubedrill.check.etcd_checks import (
    check_answers,
    check_election,
    check_lost_writes,
    check_min_rate,
    check_stale_reads,
    check_unavailability,
)
from kubedrill.check.linearizability import check_linearizable
from kubedrill.check.verdict import Verdict, combine
from kubedrill.config import RunConfig
from kubedrill.disrupt.etcd_faults import Partition, settle, split, wait_side_leader
from kubedrill.load.etcd_workload import EtcdWorkload, WorkloadConfig, probe_many, readback
from kubedrill.record import Recorder, Window
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.needs_docker]

OP_TIMEOUT = 2.0


def _judge(kd_report: TestResult, verdicts: list[Verdict]) -> None:
    for v in verdicts:
        kd_report.add(v)
    verdict = combine("partition", verdicts)
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize("size", [3], ids=["size-3/partition-2-1"])
def test_majority_writes_minority_serves_stale_reads(size: int, etcd_cluster: ClusterFactory, etcd_run: EtcdRun,
                                                     etcd_recorder: Recorder, etcd_seed: int,
                                                     kd_report: TestResult, kd_config: RunConfig) -> None:
    slo = kd_config.slo
    cluster = etcd_cluster(size)
    rec = etcd_recorder
    tls = etcd_run.tls
    cfg = WorkloadConfig(key_prefix="kd/part/", keys=6, op_timeout_s=OP_TIMEOUT, max_duration_s=60,
                         rate_per_client=25)
    load = EtcdWorkload(endpoints(cluster.members), tls, rec, cfg, seed=etcd_seed)
    fault = Partition(split([2, 1], leader_side=1), "partition-2-1")
    verdicts: list[Verdict] = []
    with load.running():
        load.wait_ops(40, timeout=20)
        settle(2.0)
        with fault.applied(cluster, rec):
            majority, minority = fault.groups
            old = fault.old_leader
            assert old is not None and old in minority, f"the leader {old} should be alone in the minority"
            new_leader = wait_side_leader(cluster, majority, timeout=20)
            rec.event("leader-elected", f"{old.name} -> {new_leader.name}", old=old.name, new=new_leader.name)
            # Past the election timeout the old leader has stepped down (CheckQuorum) and knows it is alone.
            settle(cluster.election_ms / 1000 * 1.5)
            key = "kd/part/probe"
            maj = probe_many(endpoints(majority), tls, rec, kind="put", count=3, timeout_s=OP_TIMEOUT, key=key)
            mnr = endpoints(minority)
            mput = probe_many(mnr, tls, rec, kind="put", count=2, timeout_s=OP_TIMEOUT, key=key)
            mget = probe_many(mnr, tls, rec, kind="get", count=2, timeout_s=OP_TIMEOUT, key=key)
            msget = probe_many(mnr, tls, rec, kind="sget", count=3, timeout_s=OP_TIMEOUT, key=key)
        settle(1.0)  # a little load after healing, so recovery shows in the record
    assert not load.errors, load.errors

    during = Window(rec.events_of("disruption-injected")[0].at, rec.events_of("disruption-heal")[0].at)
    maj_names = {m.name for m in majority}
    maj_writes = [o for ops in maj.values() for o in ops]
    maj_writes += [o for o in rec.history if o.kind in ("put", "cas") and o.client.split(".")[0] in maj_names
                   and during.contains(o.start)]
    readback(rec.history, endpoints([new_leader])[0], tls, rec)
    election = rec.events_of("leader-elected")[0].at - during.start
    kd_report.figure("partition_election_time", round(election, 3), "s")
    verdicts += [
        check_min_rate(rec.history, before=rec.events_of("disruption-start")[0].at, min_rate=10, lookback_s=2.0),
        check_answers(maj_writes, expect_ok=True, timeout_s=OP_TIMEOUT, what="majority-writes"),
        check_answers([o for ops in mput.values() for o in ops], expect_ok=False, timeout_s=OP_TIMEOUT,
                      what="minority-writes"),
        check_answers([o for ops in mget.values() for o in ops], expect_ok=False, timeout_s=OP_TIMEOUT,
                      what="minority-linearizable-reads"),
        check_answers([o for ops in msget.values() for o in ops], expect_ok=True, timeout_s=OP_TIMEOUT,
                      what="minority-serializable-reads"),
        check_stale_reads([o for ops in msget.values() for o in ops], maj_writes),
        check_election(rec.events, max_s=slo.max_election_s),
        check_unavailability([o for o in rec.history if o.client.split(".")[0] in maj_names],
                             max_window_s=slo.etcd_outage_allowed(leader_changes=True)),
        check_linearizable(rec.history, time_budget_s=15),
        check_lost_writes(rec.history, max_lost=slo.max_lost_writes),
    ]
    _judge(kd_report, verdicts)


@pytest.mark.parametrize("size", [4], ids=["size-4/partition-2-2"])
def test_even_split_leaves_no_side_writable(size: int, etcd_cluster: ClusterFactory, etcd_run: EtcdRun,
                                            etcd_recorder: Recorder, kd_report: TestResult) -> None:
    cluster = etcd_cluster(size)
    rec = etcd_recorder
    tls = etcd_run.tls
    key = "kd/split/probe"
    before = probe_many(endpoints(cluster.members), tls, rec, kind="put", count=1, timeout_s=OP_TIMEOUT, key=key)
    fault = Partition(split([2, 2], leader_side=0), "partition-2-2")
    with fault.applied(cluster, rec):
        t0 = rec.now()
        puts = probe_many(endpoints(cluster.members), tls, rec, kind="put", count=3, timeout_s=OP_TIMEOUT, key=key)
        gets = probe_many(endpoints(cluster.members), tls, rec, kind="get", count=2, timeout_s=OP_TIMEOUT, key=key)
        probed_for = rec.now() - t0
    after = probe_many(endpoints(cluster.members), tls, rec, kind="put", count=1, timeout_s=OP_TIMEOUT, key=key)
    kd_report.figure("split_probed_for", round(probed_for, 2), "s")
    verdicts = [
        check_answers([o for ops in before.values() for o in ops], expect_ok=True, timeout_s=OP_TIMEOUT,
                      what="writes-before"),
        check_answers([o for ops in puts.values() for o in ops], expect_ok=False, timeout_s=OP_TIMEOUT,
                      what="writes-during-2-2"),
        check_answers([o for ops in gets.values() for o in ops], expect_ok=False, timeout_s=OP_TIMEOUT,
                      what="linearizable-reads-during-2-2"),
        check_answers([o for ops in after.values() for o in ops], expect_ok=True, timeout_s=OP_TIMEOUT,
                      what="writes-after-heal"),
        check_linearizable(rec.history),
    ]
    _judge(kd_report, verdicts)
