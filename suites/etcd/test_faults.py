"""Process faults under a recorded workload: kill or freeze the leader, stop or restart a follower.

Each case is the quorum drill (kubedrill.scenarios.quorum): concurrent clients (put, linearizable
get, serializable get, cas) against every member, a minimum rate before the fault (else the
result is UNKNOWN, which fails), the fault held 2.5 s under load and healed while the load keeps
running, then every acknowledged write read back at its revision. Verdicts: the fault took effect
(the leader changed, measured), every surviving member takes writes, writes through the survivors
recovered, the history is linearizable per key, no acknowledged write was lost, and all members
converged to equal `endpoint hashkv`.

Limits come from the run config's SLO (`kd_config.slo`): max_election_s, max_lost_writes, and
the survivors' write outage, max_unavailability_s plus max_election_s when the leader is replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pytest

from fixtures.etcd import ClusterFactory
from kubedrill.check.etcd_checks import check_hashes_equal
from kubedrill.check.verdict import Verdict
from kubedrill.disrupt.etcd_faults import Kill, Picker, build_fault, followers
from kubedrill.load.etcd_workload import EtcdLoadConfig
from kubedrill.record import Recorder
from kubedrill.report.model import TestResult
from kubedrill.scenarios.quorum import OP_TIMEOUT_S, QuorumDrillRecord, run_quorum_drill

pytestmark = [pytest.mark.needs_docker]

LOAD = EtcdLoadConfig(key_prefix="kd/fault/", keys=8, op_timeout_s=OP_TIMEOUT_S, max_duration_s=60,
                      rate_per_client=25, max_ops=5000)


@dataclass(frozen=True)
class Case:
    size: int
    fault: str  # a registered etcd fault
    targets: Picker | None = None  # for faults that take them

    @property
    def id(self) -> str:
        what = self.fault.removeprefix("etcd-") + (f"-{self.targets.__name__}" if self.targets else "")
        return f"size-{self.size}/{what}"


CASES = [
    Case(3, "etcd-kill-leader"),
    Case(5, "etcd-kill-leader"),
    Case(3, "etcd-freeze-leader"),
    Case(3, "etcd-stop", followers(1)),
    Case(3, "etcd-restart", followers(1)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault_under_load(case: Case, etcd_cluster: ClusterFactory, etcd_recorder: Recorder, etcd_seed: int,
                          judged: Callable[[QuorumDrillRecord], Verdict]) -> None:
    cluster = etcd_cluster(case.size)
    options = {"targets": case.targets} if case.targets else {}
    fault = build_fault(case.fault, cluster, etcd_recorder, **options)
    record = run_quorum_drill(cluster, fault, load=LOAD, seed=etcd_seed, hold_s=2.5)
    verdict = judged(record)
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize("size", [3], ids=["size-3/kill-follower-catch-up"])
def test_recovered_member_catches_up(size: int, etcd_cluster: ClusterFactory, etcd_recorder: Recorder,
                                     kd_report: TestResult) -> None:
    """A member killed while 2000 keys are written comes back and reaches equal hashkv."""
    cluster = etcd_cluster(size)
    fault = Kill(cluster, etcd_recorder, followers(1), converge_after=False)
    with fault.applied():
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
