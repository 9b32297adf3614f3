"""Upgrade rehearsal: kubeadm, one node at a time, under load (issue 8).

A cluster at the source version (default v1.33.13, three nodes) is upgraded to the target (v1.34.4):
the control plane first (drain, kubeadm, `kubeadm upgrade plan`, `kubeadm upgrade apply`, kubelet,
uncordon), then each worker (drain, kubeadm, `kubeadm upgrade node`, kubelet, uncordon), while
locust sends requests to every workload (the run config's; by default the graceful sample app
and nginx from a Debian package), each through its own NodePort on the control-plane node. The
rehearsal (kubedrill.scenarios.upgrade) runs once per module (`rehearsal` fixture: record first)
and is judged once (`verdicts`); each test below asserts one question about it, so a report shows
which property broke, and the per-workload checks (`availability kd-sample`) which workload it
hurt. The rollout halts at the first node whose checks fail, as an operator would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.check.verdict import Verdict, combine
from kubedrill.report.model import TestResult
from kubedrill.scenarios.upgrade import RehearsalRecord, step_check, workload_check

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]


def _judge(kd_report: TestResult, kd_artifacts: Path, rehearsal: RehearsalRecord, verdicts: dict[str, Verdict],
           *names: str) -> None:
    """Report the named verdicts and assert they all passed (the raw record is kept if not)."""
    chosen = [kd_report.add(verdicts[n]) for n in names]
    rehearsal.dump(kd_artifacts / "upgrade")  # kept only if this test fails
    verdict = combine("upgrade", chosen)
    assert verdict.passed, str(verdict) + ("" if rehearsal.halted in str(verdict) else rehearsal.halt_note)


def test_upgrade_plan_proposes_the_target(rehearsal: RehearsalRecord, verdicts: dict[str, Verdict],
                                          kd_report: TestResult, kd_artifacts: Path) -> None:
    """`kubeadm upgrade plan vX` was run on the first control plane, parsed, and proposes exactly vX for every node."""
    _judge(kd_report, kd_artifacts, rehearsal, verdicts, "upgrade-plan")


def test_every_node_step_took_effect_and_kept_its_checks(rehearsal: RehearsalRecord, verdicts: dict[str, Verdict],
                                                         kd_report: TestResult, kd_artifacts: Path) -> None:
    """After each node: versions moved, expected versions everywhere, all Ready, and for every workload no pod
    lost and the SLO held; skew held; every node of the sequence was stepped and the rollout did not halt."""
    for n in rehearsal.nodes:
        if n.window is not None:
            short = n.node.removeprefix(f"{rehearsal.cluster}-")  # stable across runs: control-plane, worker2
            kd_report.figure(f"step_{short}", round(n.window.duration, 1), "s",
                             ", ".join(f"{p.name} {p.seconds:.0f}s" for p in n.phases))
    _judge(kd_report, kd_artifacts, rehearsal, verdicts, "rollout", *(step_check(n.node) for n in rehearsal.nodes))


def test_version_skew_within_policy_at_every_step(rehearsal: RehearsalRecord, verdicts: dict[str, Verdict],
                                                  kd_report: TestResult, kd_artifacts: Path) -> None:
    """Every snapshot (sampled every 3 s and at each checkpoint) is within the version skew policy."""
    _judge(kd_report, kd_artifacts, rehearsal, verdicts, "version-skew")


def test_never_more_than_one_node_out(rehearsal: RehearsalRecord, verdicts: dict[str, Verdict],
                                      kd_report: TestResult, kd_artifacts: Path) -> None:
    _judge(kd_report, kd_artifacts, rehearsal, verdicts, "nodes-out")


def test_users_never_noticed(rehearsal: RehearsalRecord, verdicts: dict[str, Verdict], kd_report: TestResult,
                             kd_artifacts: Path) -> None:
    """For every workload, the SLO held across the whole upgrade and no request failed; each workload's
    timeline marks each node's window."""
    kd_report.figure("rehearsal_seconds", round(rehearsal.seconds, 1), "s",
                     "preflight to final checks, cluster creation excluded")
    if rehearsal.upgrade_window is not None:
        kd_report.figure("upgrade_seconds", round(rehearsal.upgrade_window.duration, 1), "s",
                         "staging images through the last uncordon")
    kd_report.figure("workloads", len(rehearsal.workloads), "workloads",
                     ", ".join(f"{w.kind} {w.id}" for w in rehearsal.workloads))
    users = [workload_check(c, w.id) for w in rehearsal.workloads for c in ("availability", "failed-requests")]
    # no workload: judge() says `availability` UNKNOWN (nobody's availability was watched)
    _judge(kd_report, kd_artifacts, rehearsal, verdicts, *(users or ["availability"]), "rollout")


def test_end_state_all_nodes_at_target_workload_and_data_intact(rehearsal: RehearsalRecord,
                                                                verdicts: dict[str, Verdict], kd_report: TestResult,
                                                                kd_artifacts: Path) -> None:
    """Every node and component at the target, every workload at desired replicas, ConfigMaps unchanged."""
    _judge(kd_report, kd_artifacts, rehearsal, verdicts, "versions", "data",
           *(workload_check("replicas", w.id) for w in rehearsal.workloads))
