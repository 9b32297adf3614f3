"""Drain: node maintenance under locust load keeps the workload available.

For each workload and operation, steady locust load goes to the workload's Service through the
control-plane node's NodePort (workers get drained and rebooted), then one maintenance operation
runs with real kubectl against a real kind cluster:

  cordon          cordon the busiest worker, hold, uncordon
  drain-worker    drain it (--ignore-daemonsets --delete-emptydir-data), uncordon
  reboot-worker   OS-upgrade rehearsal: drain, `docker restart` the node, wait Ready, uncordon
  rolling-drain   every worker in turn: drain, work on it, uncordon, wait for the workload

Then, from the record: availability (SLO; zero failed requests for the bundled app; longest outage;
p99 during vs before), scheduling (cordon leaves pods alone, evicted pods run elsewhere, DaemonSets
stay, every node schedulable at the end), PodDisruptionBudgets (a budget allowing no disruption is
named when it blocks the drain), single replica without a PDB (maintenance risk), pods without a
controller (block the drain unless --allow-force), shutdown ordering (SIGTERM after traffic left the
pod) and durations (each drain, each node's round trip, the whole pass).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kubedrill.check.availability import availability
from kubedrill.check.maintenance import check_durations, check_sigterm_margin, node_windows, with_windows
from kubedrill.check.scheduling import (
    check_bare_pods,
    check_cordon,
    check_daemonsets_stay,
    check_pdbs,
    check_rescheduled,
    check_schedulable,
    check_single_replica,
)
from kubedrill.check.verdict import Verdict, combine, safe_check
from kubedrill.cluster.handle import Cluster
from kubedrill.observe.pods import PodWatch
from kubedrill.record.cluster import Snapshot, WorkloadState
from kubedrill.observe.cluster import take_snapshot
from kubedrill.config import RunConfig
from kubedrill.disrupt.base import Disruption
from kubedrill.disrupt.node import CordonNode, RollingDrain
from kubedrill.load import LoadRunner
from kubedrill.record import Recorder
from kubedrill.report.model import TestResult
from kubedrill.workload.apply import wait_deployment_available, wait_http

if TYPE_CHECKING:
    from suites.drain.conftest import DeployedApp, DrainOptions

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive]

LOAD_BEFORE_S = 8.0  # steady load before the operation: the availability check needs a rate to compare
LOAD_AFTER_S = 6.0  # and after it: endpoint changes lag the operation
CORDON_HOLD_S = 5.0
LOAD_MAX_S = 900.0  # hard bound of every locust run


def _workload(snapshot: Snapshot, app: DeployedApp) -> WorkloadState:
    state = next((w for w in snapshot.workloads if w.namespace == app.spec.namespace and w.kind == "Deployment"), None)
    if state is None:
        pytest.fail(f"no Deployment of {app.spec.name} found in {app.spec.namespace}", pytrace=False)
    return state


def _busiest_worker(snapshot: Snapshot, wl: WorkloadState, workers: list[str]) -> str:
    """The worker running the most serving pods of the workload: draining it proves the most."""
    counts = {w: sum(1 for p in snapshot.pods_of(wl) if p.node == w and p.serving) for w in workers}
    return max(workers, key=lambda w: (counts[w], -workers.index(w)))


def _operation(operation: str, cluster: Cluster, target: str, app: DeployedApp, opts: DrainOptions,
               rec: Recorder) -> Disruption:
    if operation == "cordon":
        return CordonNode(cluster, target)
    ns, name = app.spec.namespace, app.spec.name
    nodes = [target] + ([w for w in cluster.workers if w != target] if operation == "rolling-drain" else [])
    return RollingDrain(
        cluster, nodes, drain_timeout_s=opts.drain_timeout, force=opts.allow_force,
        reboot=(operation == "reboot-worker"),
        maintenance_s=opts.maintenance_seconds if operation == "rolling-drain" else 0.0,
        settle=lambda: wait_deployment_available(cluster, ns, name, timeout=max(60.0, opts.drain_timeout)),
        snapshot=lambda: take_snapshot(cluster, [ns]), recorder=rec, label=operation)


@pytest.mark.disruptive
def test_node_maintenance(cluster: Cluster, app: DeployedApp, operation: str, drain_opts: DrainOptions,
                          kd_report: TestResult, kd_config: RunConfig, kd_artifacts: Path, load_dir: Path) -> None:
    ns = app.spec.namespace
    wait_deployment_available(cluster, ns, app.spec.name, timeout=120)
    before = take_snapshot(cluster, [ns])
    wl = _workload(before, app)
    target = _busiest_worker(before, wl, cluster.workers)
    url = f"http://127.0.0.1:{cluster.host_port(app.spec.node_port or 30080, cluster.control_planes[0])}"
    wait_http(url + app.spec.health_path, timeout=60)
    rec = Recorder(f"drain-{operation}")
    op = _operation(operation, cluster, target, app, drain_opts, rec)
    o = drain_opts
    during: Snapshot | None = None
    load = LoadRunner(url, path=app.spec.health_path, users=o.load_users, rate=o.load_rate, processes=o.load_processes,
                      run_time=LOAD_MAX_S, max_requests=int(o.load_rate * LOAD_MAX_S * 1.2), recorder=rec,
                      workdir=load_dir, keep_alive=o.load_keepalive, start_timeout=60)
    with PodWatch(cluster, ns, recorder=rec, max_seconds=1800) as watch, load:
        time.sleep(LOAD_BEFORE_S)
        with op.applied(rec):
            if isinstance(op, CordonNode):
                time.sleep(CORDON_HOLD_S)
                during = take_snapshot(cluster, [ns])
        time.sleep(LOAD_AFTER_S)
    final = take_snapshot(cluster, [ns])
    (kd_artifacts / "record.json").write_text(rec.to_json())
    (kd_artifacts / "locust.log").write_text(load.log_tail(200))

    assert op.window is not None, f"{op.name} recorded no window: the operation did not run"
    ops = rec.history
    t0 = min((x.start for x in ops), default=op.window.start)
    slo = 1.0 if app.bundled else kd_config.slo_for(app.spec.name).availability
    avail = safe_check("availability", availability, ops, op.window, slo=slo, kind="http",
                       min_rate_before=kd_config.slo.min_load_rps, max_p99_ratio=o.max_p99_ratio, label=operation)
    in_window = [x for x in ops if op.window.contains(x.start)]
    kd_report.figure("load_rate_target", o.load_rate, "req/s", f"{o.load_users} users, {o.load_processes} process(es)")
    kd_report.figure("load_rate_during", round(len(in_window) / max(op.window.duration, 1e-9), 1), "req/s",
                     f"achieved while {operation} ran")
    verdicts: list[Verdict] = []
    if isinstance(op, RollingDrain):
        for p in op.passes:
            (kd_artifacts / f"drain-{p.node}.txt").write_text(p.drain_output)
        verdicts.append(with_windows(avail, node_windows(op.passes, t0)))
        verdicts.append(check_single_replica(before, ns))
        verdicts.append(check_pdbs(before, op.passes, o.drain_timeout))
        verdicts.append(check_bare_pods(op.passes, o.allow_force))
        for p in op.passes:
            if not p.drain_failed:
                verdicts.append(check_rescheduled(p.before or before, p.drained, p.node, wl))
                verdicts.append(check_daemonsets_stay(p.before or before, p.drained, p.node))
        windows = [(p.start, (p.end or p.start) + LOAD_AFTER_S) for p in op.passes]
        verdicts.append(check_sigterm_margin(watch.all_evidence(), ops, min_margin_s=o.min_sigterm_margin,
                                             around=windows))
        verdicts.append(check_durations(op.passes, max_drain_s=o.max_drain_seconds, expected_nodes=len(op.nodes), t0=t0))
    else:
        assert during is not None
        verdicts += [avail, check_cordon(before, during, target), check_single_replica(before, ns)]
    verdicts.append(check_schedulable(final, cluster.workers))
    for v in verdicts:
        kd_report.add(v)
    verdict = combine(f"drain/{operation}", verdicts)
    assert verdict.passed, str(verdict)
