"""Network partitions between members (iptables DROP inside each member's network namespace).

size-3/partition-2-1: the old leader is cut off alone. The two-member majority elects a new
leader and keeps accepting writes; the minority refuses writes and linearizable reads within the
client timeout, yet still answers serializable reads -- from a stale revision.
size-4/partition-2-2: neither half has 3 of 4 members, so no side accepts a single write: an even
cluster split down the middle is down, which is why etcd sizes are odd.

Both are the quorum drill (kubedrill.scenarios.quorum): a recorded workload runs throughout;
afterwards every acknowledged write is read back at its revision, the history must be
linearizable and the members converge. Limits come from the run config's SLO (`kd_config.slo`):
the majority's new leader within max_election_s, its write outage within max_unavailability_s
plus max_election_s, and at most max_lost_writes lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from fixtures.etcd import ClusterFactory
from kubedrill.check.verdict import Verdict
from kubedrill.disrupt.etcd_faults import build_fault
from kubedrill.load.etcd_workload import EtcdLoadConfig
from kubedrill.record import Recorder
from kubedrill.scenarios.quorum import OP_TIMEOUT_S, QuorumDrillRecord, run_quorum_drill

pytestmark = [pytest.mark.needs_docker]

LOAD = EtcdLoadConfig(key_prefix="kd/part/", keys=6, op_timeout_s=OP_TIMEOUT_S, max_duration_s=60,
                      rate_per_client=25)


@dataclass(frozen=True)
class Split:
    sizes: tuple[int, ...]
    leader_side: int  # the group the leader is put in

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @property
    def has_majority(self) -> bool:
        return max(self.sizes) >= self.size // 2 + 1

    @property
    def id(self) -> str:
        return f"size-{self.size}/partition-{'-'.join(map(str, self.sizes))}"


SPLITS = [Split((2, 1), leader_side=1), Split((2, 2), leader_side=0)]


@pytest.mark.parametrize("split", SPLITS, ids=[s.id for s in SPLITS])
def test_partition(split: Split, etcd_cluster: ClusterFactory, etcd_recorder: Recorder, etcd_seed: int,
                   judged: Callable[[QuorumDrillRecord], Verdict]) -> None:
    cluster = etcd_cluster(split.size)
    fault = build_fault("etcd-partition", cluster, etcd_recorder, sizes=split.sizes, leader_side=split.leader_side)
    record = run_quorum_drill(cluster, fault, load=LOAD, seed=etcd_seed)
    verdict = judged(record)
    assert bool(record.survivors) == split.has_majority, f"sides {record.sides} for a {split.sizes} split"
    # With a majority, the leader was cut off alone into the minority: the majority had to elect.
    assert record.leader_changes == split.has_majority, f"leader {record.old_leader}, sides {record.sides}"
    assert verdict.passed, str(verdict)
