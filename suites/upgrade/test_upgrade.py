"""Upgrade rehearsal: kubeadm, one node at a time, under load (issue 8).

A cluster at the source version (default v1.33.13, three nodes) is upgraded to the target (v1.34.4):
the control plane first (drain, kubeadm, `kubeadm upgrade plan`, `kubeadm upgrade apply`, kubelet,
uncordon), then each worker (drain, kubeadm, `kubeadm upgrade node`, kubelet, uncordon), while
locust sends requests to the sample app through the control-plane node's NodePort. The rehearsal
runs once per module (`rehearsal` fixture: record first); each test below judges one question
about that record, so a report shows which property broke. The rollout halts at the first node
whose checks fail, as an operator would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from kubedrill.check import rollout as R
from kubedrill.record.versions import Version, plan_problems
from kubedrill.check.skew import skew_verdict
from kubedrill.check.verdict import Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.upgrade import Release
from kubedrill.workload import apply
from kubedrill.workload.spec import WorkloadSpec
from suites.upgrade.rehearsal import (
    RehearsalRecord,
    Settings,
    expectation,
    live_progress,
    rehearse,
    whole_upgrade_availability,
)

if TYPE_CHECKING:
    from suites.upgrade.conftest import UpgradeSetup

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]


def _deployment(spec: WorkloadSpec) -> str:
    return next(d["metadata"]["name"] for d in spec.documents if d.get("kind") == "Deployment")


@pytest.fixture(scope="module")
def rehearsal(request: pytest.FixtureRequest, upgrade_cluster: Cluster, upgrade_setup: UpgradeSetup,
              target_release: Release, upgrade_workload: WorkloadSpec, kd_config) -> Iterator[RehearsalRecord]:  # type: ignore[no-untyped-def]
    """The whole upgrade, run once and recorded; tests below only judge the record."""
    import dataclasses

    slo = kd_config.slo
    settings = Settings(upgrade_setup.source, upgrade_setup.target, upgrade_setup.order,  # type: ignore[arg-type]
                        slo=slo.availability, max_failed_requests=slo.max_failed_requests, min_rate=slo.min_load_rps)
    data_ns = apply.unique_namespace("upgrade-data")
    apply.create_namespace(upgrade_cluster, data_ns)
    port = upgrade_cluster.host_port(upgrade_workload.node_port or 30080, upgrade_cluster.control_planes[0])
    workload = dataclasses.replace(upgrade_workload, name=_deployment(upgrade_workload))
    with live_progress(request.config):
        record = rehearse(upgrade_cluster, target_release, workload, settings, port, data_ns)
    if not request.config.getoption("no_kd_reports"):
        _dump(record, Path(request.config.getoption("reports_dir")) / "latest" / "upgrade")
    yield record
    if not request.config.getoption("keep_cluster"):
        apply.delete_namespace(upgrade_cluster, data_ns, wait=False)


def _dump(rec: RehearsalRecord, where: Path) -> None:
    """The raw record next to the reports: snapshots, phases, kubeadm plan and outputs (for diagnosis)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "kubeadm-upgrade-plan.txt").write_text(rec.plan_text)
    for n in rec.nodes:
        (where / f"kubeadm-{n.node}.log").write_text(n.kubeadm_output or n.error)
    doc = {
        "cluster": rec.cluster, "halted": rec.halted, "seconds": round(rec.finished - rec.started, 1),
        "staged": rec.staged, "plan": rec.plan.to_dict() if rec.plan else None,
        "kubelet_apiservers": [{"at": round(at, 1), "map": m} for at, m in rec.kubelet_apiservers],
        "nodes": [{"node": n.node, "role": n.role, "kubeadm": n.kubeadm_step, "error": n.error,
                   "window_s": round(n.window.duration, 1) if n.window else None,
                   "phases": [{"name": p.name, "seconds": round(p.seconds, 1)} for p in n.phases],
                   "verdicts": [v.to_dict() for v in n.verdicts]} for n in rec.nodes],
        "checkpoints": [s.to_dict() for s in rec.checkpoints],
        "samples": [s.to_dict() for s in rec.samples],
    }
    (where / "record.json").write_text(json.dumps(doc, indent=1, default=str))


def _halt_note(rec: RehearsalRecord) -> str:
    return f" (rollout {rec.halted})" if rec.halted else ""


def test_upgrade_plan_proposes_the_target(rehearsal: RehearsalRecord, upgrade_cluster: Cluster, kd_report) -> None:  # type: ignore[no-untyped-def]
    """`kubeadm upgrade plan vX` was run on the first control plane, parsed, and proposes exactly vX for every node."""
    plan = rehearsal.plan
    assert plan is not None, f"no `kubeadm upgrade plan` output was recorded{_halt_note(rehearsal)}"
    s = rehearsal.settings
    problems = plan_problems(plan, Version.parse(s.source), Version.parse(s.target), upgrade_cluster.all_nodes)
    v = (Verdict.fail("upgrade-plan", "; ".join(problems)) if problems else
         Verdict.ok("upgrade-plan", f"{plan.apply_command}: {len(plan.automatic)} control-plane components and "
                                    f"{len(plan.manual)} kubelets from {plan.cluster_version}"))
    v.series["upgrade_plan"] = plan.to_dict()
    kd_report.add(v)
    assert v.passed, v.reason


def test_every_node_step_took_effect_and_kept_its_checks(rehearsal: RehearsalRecord, upgrade_cluster: Cluster,
                                                         kd_report) -> None:  # type: ignore[no-untyped-def]
    """After each node: versions moved, expected versions everywhere, all Ready, no pod lost, SLO and skew held."""
    for n in rehearsal.nodes:
        kd_report.add(n.verdict())
        if n.window is not None:
            short = n.node.removeprefix(f"{upgrade_cluster.name}-")  # stable across runs: control-plane, worker2
            kd_report.figure(f"step_{short}", round(n.window.duration, 1), "s",
                             ", ".join(f"{p.name} {p.seconds:.0f}s" for p in n.phases))
    done = [n.node for n in rehearsal.nodes]
    assert not rehearsal.halted, rehearsal.halted
    assert done == _sequence(upgrade_cluster, rehearsal), f"nodes upgraded: {done}"
    bad = [str(n.verdict()) for n in rehearsal.nodes if not n.passed]
    assert not bad, "; ".join(bad)


def _sequence(cluster: Cluster, rec: RehearsalRecord) -> list[str]:
    from kubedrill.disrupt.upgrade import Rollout

    return [n for n, _, _ in Rollout(cluster, None, rec.settings.order).sequence()]  # type: ignore[arg-type]


def test_version_skew_within_policy_at_every_step(rehearsal: RehearsalRecord, kd_report) -> None:  # type: ignore[no-untyped-def]
    """Every snapshot (sampled every 3 s and at each checkpoint) is within the version skew policy."""
    snaps = sorted(rehearsal.samples + rehearsal.checkpoints, key=lambda s: s.at)
    required = [c.label for c in rehearsal.checkpoints]
    v = kd_report.add(skew_verdict([rehearsal.observed(s) for s in snaps], required_labels=required))
    v.series["kubelet_apiservers"] = rehearsal.kubelet_apiservers[-1][1] if rehearsal.kubelet_apiservers else {}
    assert v.passed, v.reason


def test_never_more_than_one_node_out(rehearsal: RehearsalRecord, kd_report) -> None:  # type: ignore[no-untyped-def]
    v = kd_report.add(R.one_node_out_at_a_time(sorted(rehearsal.samples + rehearsal.checkpoints, key=lambda s: s.at)))
    assert v.passed, v.reason


def test_users_never_noticed(rehearsal: RehearsalRecord, kd_report) -> None:  # type: ignore[no-untyped-def]
    """The SLO held across the whole upgrade and no request failed; the timeline marks each node's window."""
    v = kd_report.add(whole_upgrade_availability(rehearsal))
    http = [o for o in rehearsal.operations if o.kind.startswith("http")]
    failed = [o for o in http if o.outcome != "ok"]
    kd_report.figure("requests_total", len(http), "requests")
    kd_report.figure("requests_failed_total", len(failed), "requests")
    kd_report.figure("rehearsal_seconds", round(rehearsal.finished - rehearsal.started, 1), "s",
                     "preflight to final checks, cluster creation excluded")
    if rehearsal.upgrade_window is not None:
        kd_report.figure("upgrade_seconds", round(rehearsal.upgrade_window.duration, 1), "s",
                         "staging images through the last uncordon")
    assert v.passed, v.reason
    assert len(failed) <= rehearsal.settings.max_failed_requests, (
        f"{len(failed)} of {len(http)} requests failed across the upgrade (allowed "
        f"{rehearsal.settings.max_failed_requests}); first: {failed[0].detail if failed else ''}")
    assert not rehearsal.halted, rehearsal.halted


def test_end_state_all_nodes_at_target_workload_and_data_intact(rehearsal: RehearsalRecord, target_release: Release,
                                                                upgrade_cluster: Cluster, kd_report) -> None:  # type: ignore[no-untyped-def]
    """Every node and component at the target, the workload at desired replicas, ConfigMaps unchanged."""
    final = rehearsal.final
    assert final is not None
    exp = expectation(rehearsal.settings, target_release)
    versions = R.versions_verdict(final, upgrade_cluster.all_nodes, exp, upgrade_cluster.control_planes)
    kd_report.add(versions)
    data = kd_report.add(R.data_intact(rehearsal.data_before, rehearsal.data_after))
    wl = rehearsal.final_workload
    assert wl is not None
    replicas = Verdict.ok("replicas", f"{wl.ready}/{wl.replicas} ready") if wl.ready >= wl.replicas else \
        Verdict.fail("replicas", f"{wl.namespace}/{wl.name}: {wl.ready}/{wl.replicas} ready at the end")
    kd_report.add(replicas)
    assert versions.passed and data.passed and replicas.passed, "; ".join(
        str(v) for v in (versions, data, replicas) if not v.passed) + _halt_note(rehearsal)
