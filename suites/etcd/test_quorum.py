"""Quorum: an N-member etcd cluster accepts writes exactly while floor(N/2)+1 members are alive.

For sizes 3, 4 and 5, lose 1..N-1 members (always including the leader, the harder case) and ask
every survivor to write and read. With quorum: a new leader is elected (measured) and every
survivor writes. Without: every write is refused or times out within the client timeout (never
hangs, never succeeds), linearizable reads are refused too, and serializable reads still answer
from local state. After healing, the lost members catch up (equal `endpoint hashkv`).
A 4-member cluster tolerates one loss, like a 3-member one: even sizes buy nothing.
The election limit is the run config's slo.max_election_s.
"""

from __future__ import annotations

import pytest

from fixtures.etcd import ClusterFactory, EtcdRun, endpoints
from kubedrill.check.etcd_checks import check_answers, check_election
from kubedrill.check.linearizability import check_linearizable
from kubedrill.check.verdict import Verdict, combine
from kubedrill.config import RunConfig
from kubedrill.disrupt.etcd_faults import Kill, leader_and_followers
from kubedrill.load.etcd_workload import probe, probe_many
from kubedrill.record import Recorder
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.needs_docker]

OP_TIMEOUT = 2.0
CASES = [(n, k) for n in (3, 4, 5) for k in range(1, n)]


def _report(kd_report: TestResult, *verdicts: Verdict) -> Verdict:
    for v in verdicts:
        kd_report.add(v)
    return combine("quorum", list(verdicts))


@pytest.mark.parametrize(("size", "lose"), CASES, ids=[f"size-{n}/lose-{k}" for n, k in CASES])
def test_writes_need_quorum(size: int, lose: int, etcd_cluster: ClusterFactory, etcd_run: EtcdRun,
                            etcd_recorder: Recorder, kd_report: TestResult, kd_config: RunConfig) -> None:
    cluster = etcd_cluster(size)
    rec = etcd_recorder
    writable = size - lose >= cluster.quorum
    key = "kd/quorum"
    tls = etcd_run.tls
    probe(endpoints(cluster.members)[0], tls, rec, kind="put", count=1, timeout_s=OP_TIMEOUT, key=key)

    fault = Kill(leader_and_followers(lose - 1), expect_new_leader=writable)
    verdicts: list[Verdict] = []
    with fault.applied(cluster, rec):
        alive = endpoints(m for m in cluster.members if m not in fault.targets)
        assert len(alive) == size - lose
        if writable:
            verdicts.append(check_election(rec.events, max_s=kd_config.slo.max_election_s))
            puts = probe_many(alive, tls, rec, kind="put", count=2, timeout_s=OP_TIMEOUT, key=key)
            for name, ops in puts.items():
                verdicts.append(check_answers(ops, expect_ok=True, timeout_s=OP_TIMEOUT, what=f"writes-via-{name}"))
        else:
            puts = probe_many(alive, tls, rec, kind="put", count=3, timeout_s=OP_TIMEOUT, key=key)
            gets = probe_many(alive, tls, rec, kind="get", count=2, timeout_s=OP_TIMEOUT, key=key)
            sgets = probe_many(alive, tls, rec, kind="sget", count=2, timeout_s=OP_TIMEOUT, key=key)
            verdicts.append(check_answers([o for ops in puts.values() for o in ops], expect_ok=False,
                                          timeout_s=OP_TIMEOUT, what="writes"))
            verdicts.append(check_answers([o for ops in gets.values() for o in ops], expect_ok=False,
                                          timeout_s=OP_TIMEOUT, what="linearizable-reads"))
            for name, ops in sgets.items():
                verdicts.append(check_answers(ops, expect_ok=True, timeout_s=OP_TIMEOUT,
                                              what=f"serializable-reads-via-{name}"))

    # Healed and converged (the scope waited for equal hashkv): every member writes again.
    after = probe_many(endpoints(cluster.members), tls, rec, kind="put", count=1, timeout_s=OP_TIMEOUT, key=key)
    verdicts.append(check_answers([o for ops in after.values() for o in ops], expect_ok=True,
                                  timeout_s=OP_TIMEOUT, what="writes-after-heal"))
    verdicts.append(check_linearizable(rec.history, time_budget_s=10))
    verdict = _report(kd_report, *verdicts)
    assert verdict.passed, str(verdict)
    assert rec.events_of("converged"), "the cluster did not report equal hashkv after healing"
