"""Quorum: an N-member etcd cluster accepts writes exactly while floor(N/2)+1 members are alive.

For sizes 3, 4 and 5, lose 1..N-1 members (always including the leader, the harder case) and ask
every survivor to write and read -- the quorum drill (kubedrill.scenarios.quorum) with probes
only. With quorum: a new leader is elected (measured) and every survivor writes. Without: every
write is refused or times out within the client timeout (never hangs, never succeeds),
linearizable reads are refused too, and serializable reads still answer from local state. After
healing, the lost members catch up (equal `endpoint hashkv`), every member writes again and no
acknowledged write is lost. A 4-member cluster tolerates one loss, like a 3-member one: even sizes
buy nothing. The election limit is the run config's slo.max_election_s.
"""

from __future__ import annotations

from typing import Callable

import pytest

from fixtures.etcd import ClusterFactory
from kubedrill.check.verdict import Verdict
from kubedrill.disrupt.etcd_faults import build_fault, leader_and_followers
from kubedrill.record import Recorder
from kubedrill.scenarios.quorum import QuorumDrillRecord, run_quorum_drill

pytestmark = [pytest.mark.needs_docker]

CASES = [(n, k) for n in (3, 4, 5) for k in range(1, n)]


@pytest.mark.parametrize(("size", "lose"), CASES, ids=[f"size-{n}/lose-{k}" for n, k in CASES])
def test_writes_need_quorum(size: int, lose: int, etcd_cluster: ClusterFactory, etcd_recorder: Recorder,
                            judged: Callable[[QuorumDrillRecord], Verdict]) -> None:
    cluster = etcd_cluster(size)
    fault = build_fault("etcd-kill", cluster, etcd_recorder, targets=leader_and_followers(lose - 1))
    record = run_quorum_drill(cluster, fault)
    verdict = judged(record)
    writable = size - lose >= cluster.quorum
    assert len(record.targets) == lose and record.old_leader in record.targets, record.targets
    assert bool(record.survivors) == writable and record.leader_changes == writable, f"sides {record.sides}"
    assert verdict.passed, str(verdict)
