"""The backup/restore drill on a kubeadm cluster: record everything, then judge it.

    seed known objects -> start the API prober -> backup -> change objects after the snapshot
    -> restore (a RestoreProcedure, possibly a wrong variant) -> reconnect a watch, write once
    -> wait (bounded) for controllers and kubelets -> read the inventory again

`run_restore_drill` only records (a procedure that raises is recorded too, and the drill goes on
reading what it can); `judge` runs the pure checkers on the record. Suites, meta-tests and the
benchmark share both, so a wrong procedure is caught by exactly the checks the suite asserts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kubedrill.check import k8s_state as ks
from kubedrill.record import objects as ko
from kubedrill.check.etcd_checks import unavailability_windows
from kubedrill.check.verdict import Figure, Verdict, safe_check
from kubedrill.cluster.etcd_backup import Backup, take_backup
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.states import node_ready
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.disrupt.base import NotEffective
from kubedrill.disrupt.control_plane import api_ready
from kubedrill.disrupt.etcd_restore import RestoreProcedure
from kubedrill.load.api_prober import ApiConn, ApiProber, ApiTarget, configmap_path, list_rv, watch_from
from kubedrill.record import Recorder, Window
from kubedrill.workload.known_objects import KnownObjects

ProcedureFactory = Callable[[Cluster, Backup, Recorder], RestoreProcedure]


def runbook(cluster: Cluster, backup: Backup, rec: Recorder) -> RestoreProcedure:
    """The correct procedure."""
    return RestoreProcedure(cluster, backup, recorder=rec)


@dataclass
class RestoreDrillRecord:
    variant: str = ""
    backup: Backup | None = None
    restored_from: Backup | None = None
    at_snapshot: ko.Inventory = field(default_factory=dict)
    before_restore: ko.Inventory = field(default_factory=dict)
    restored: ko.Inventory = field(default_factory=dict)
    changes: list[ko.Change] = field(default_factory=list)
    uid_before: str = ""
    uid_after: str | None = None
    uid_after_how: str = ""
    restored_error: str = ""
    rv_before: list[ko.RvSeen] = field(default_factory=list)
    rv_after: list[ko.RvSeen] = field(default_factory=list)
    resume: ko.WatchResume | None = None
    expected_replicas: dict[str, int] = field(default_factory=dict)
    deployments: list[ko.DeploymentSeen] = field(default_factory=list)
    orphans: dict[str, list[str]] = field(default_factory=dict)
    expected_nodes: list[str] = field(default_factory=list)
    nodes_ready: dict[str, bool] = field(default_factory=dict)
    steps: list[ko.StepRecord] = field(default_factory=list)
    effect: dict[str, object] = field(default_factory=dict)
    window: Window | None = None
    procedure_error: str = ""
    converge_s: float | None = None
    objects: KnownObjects | None = None
    recorder: Recorder = field(default_factory=lambda: Recorder("etcd-restore"))

    def dump(self, path: Path) -> None:
        """The record as JSON (kept as an artifact when a test fails)."""
        path.write_text(json.dumps({
            "variant": self.variant, "backup": str(self.backup.host_path) if self.backup else None,
            "restored_from": str(self.restored_from.host_path) if self.restored_from else None,
            "snapshot_status": self.restored_from.status if self.restored_from else None,
            "steps": [s.__dict__ for s in self.steps], "effect": self.effect, "procedure_error": self.procedure_error,
            "changes": [c.__dict__ for c in self.changes], "uid_before": self.uid_before, "uid_after": self.uid_after,
            "rv_before": [r.__dict__ for r in self.rv_before], "rv_after": [r.__dict__ for r in self.rv_after],
            "resume": self.resume.__dict__ if self.resume else None, "deployments": [d.__dict__ for d in self.deployments],
            "orphans": self.orphans, "nodes_ready": self.nodes_ready,
            "at_snapshot": {k: v.__dict__ for k, v in self.at_snapshot.items()},
            "restored": {k: v.__dict__ for k, v in self.restored.items()},
            "record": json.loads(self.recorder.to_json()),
        }, default=str, indent=1))


def _kube_system_uid(cluster: Cluster) -> tuple[str | None, str]:
    """(kube-system's uid or None, how it was read). When the user's admin kubeconfig is
    Forbidden -- RBAC bindings live in etcd, so a restore can take them away -- ask with the
    control plane's super-admin.conf (system:masters) on the node, as an operator would."""
    argv = ("get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}")
    p = cluster.kubectl(*argv, check=False, timeout=30)
    if p.returncode == 0:
        return (p.stdout.strip() or None), "admin kubeconfig"
    err = (p.stderr or p.stdout).strip()[-300:]
    if "forbidden" in err.lower() and cluster.control_planes:
        q = cluster.node_exec(cluster.control_planes[0], "kubectl", "--kubeconfig", "/etc/kubernetes/super-admin.conf",
                              *argv, check=False, timeout=30)
        if q.returncode == 0:
            return (q.stdout.strip() or None), f"super-admin.conf (the admin kubeconfig is forbidden: {err[-160:]})"
        err += f"; super-admin.conf: {(q.stderr or q.stdout).strip()[-200:]}"
    return None, f"not readable: {err}"


def _nodes_ready(cluster: Cluster) -> dict[str, bool]:
    return {n.metadata.name: node_ready(n) for n in cluster.core().list_node(_request_timeout=20).items}


def _put_rvs(rec: Recorder, what: str, lo: float = float("-inf"), hi: float = float("inf")) -> list[ko.RvSeen]:
    """resourceVersions the prober's successful writes got, invoked after lo and answered before hi."""
    return [ko.RvSeen(what, int(o.result["rv"])) for o in rec.history
            if o.kind == "put" and o.outcome == "ok" and isinstance(o.result, dict) and o.start >= lo and o.end <= hi]


def run_restore_drill(cluster: Cluster, dest_dir: Path, make_procedure: ProcedureFactory = runbook,
                      objects: KnownObjects | None = None, converge_timeout_s: float = 180.0,
                      prober_interval_s: float = 0.25, prober_timeout_s: float = 1.0) -> RestoreDrillRecord:
    """Run the whole drill once on `cluster` and return what happened (see module docstring).

    Cut short (Ctrl-C, SIGTERM), the procedure puts the control plane's manifests back on its way
    out (RestoreProcedure.heal); the objects the drill seeded are then removed here once the API
    answers again (bounded), since the caller never gets the record that would let it remove them.
    A run killed outright leaves them to the next run's namespace sweeper (they carry its owner)."""
    objs = objects or KnownObjects(cluster)
    try:
        return _drill(cluster, dest_dir, make_procedure, objs, converge_timeout_s, prober_interval_s,
                      prober_timeout_s)
    except KeyboardInterrupt:
        try:
            until("the API to answer, to remove the drill's objects after the interruption",
                  lambda: api_ready(cluster), 120, interval=2.0)
        except WaitTimeout:
            pass
        objs.delete()
        raise


def _drill(cluster: Cluster, dest_dir: Path, make_procedure: ProcedureFactory, objs: KnownObjects,
           converge_timeout_s: float, prober_interval_s: float, prober_timeout_s: float) -> RestoreDrillRecord:
    r = RestoreDrillRecord()
    rec = r.recorder
    r.objects = objs
    objs.seed()
    target = ApiTarget.from_kubeconfig(cluster.kubeconfig, cluster.context)
    cm_path = configmap_path(objs.ns)
    r.uid_before = _kube_system_uid(cluster)[0] or ""
    r.expected_nodes = sorted(cluster.all_nodes) or sorted(_nodes_ready(cluster))
    r.expected_replicas = objs.expected_replicas()
    with ApiProber(target, objs.ns, rec, interval_s=prober_interval_s, timeout_s=prober_timeout_s,
                   max_duration_s=1500) as prober:
        r.at_snapshot = objs.inventory()
        rec.event("backup-start")
        r.backup = take_backup(cluster, dest_dir, label=objs.tag)
        rec.event("backup-end", r.backup.host_path.name, revision=r.backup.revision)
        objs.change_after_snapshot()
        r.changes = list(objs.changes)
        r.before_restore = objs.inventory()
        r.rv_before = [ko.RvSeen(f"post-snapshot {c.action} of {c.key}", c.resource_version)
                       for c in r.changes if c.resource_version]
        last_rv = list_rv(target, cm_path)
        r.rv_before.append(ko.RvSeen("configmap list before the restore", last_rv))
        proc = make_procedure(cluster, r.backup, rec)
        r.variant, r.restored_from = proc.variant, proc.backup
        try:
            with proc.applied(rec):
                pass
        except NotEffective as exc:
            # etcd kept its old data: restore-took-effect judges that same evidence, with the
            # procedure's steps; it is a finding about the procedure, not a crash of it.
            rec.event("procedure-not-effective", str(exc)[:500])
        except Exception as exc:  # noqa: BLE001 - recorded; the checkers judge what follows
            r.procedure_error = f"{type(exc).__name__}: {exc}"[:3000]
            rec.event("procedure-error", r.procedure_error[:500])
        r.steps, r.effect, r.window = list(proc.steps), dict(proc.effect), proc.window
        # The prober is a client that lived through the restore: its writes' resourceVersions
        # from before the procedure and from after the data swap must keep increasing.
        swap = next((e.at for e in rec.events_of("step-end") if e.detail == "restore"), None)
        if r.window is not None:
            r.rv_before += _put_rvs(rec, hi=r.window.start, what="prober write before the restore")
        if swap is not None:
            r.rv_after += _put_rvs(rec, lo=swap, what="prober write after the restore")
        t_after = time.monotonic()
        try:
            until("the API to answer after the restore", lambda: api_ready(cluster), 120, interval=1.0)
            status, rvs, detail = watch_from(target, cm_path, last_rv)
            relist = list_rv(target, cm_path)
            r.resume = ko.WatchResume(last_rv, status, tuple(rvs), relist, detail)
            r.rv_after.append(ko.RvSeen("configmap list after the restore", relist))
            conn = ApiConn(target, 10)
            try:
                made = conn.request("POST", cm_path, {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": f"rv-after-{int(time.time())}"}}, write=True)
            finally:
                conn.close()
            r.rv_after.append(ko.RvSeen("a write after the restore", int(made["metadata"]["resourceVersion"])))
        except Exception as exc:  # noqa: BLE001 - an API that never came back shows in the verdicts
            rec.event("after-restore-error", f"{type(exc).__name__}: {exc}"[:500])

        def converged() -> tuple[bool, str]:
            # Each piece on its own: a missing Deployment or an API hiccup must not hide the rest.
            seen = [objs.deployment_seen(k.split("/", 1)[1]) for k in r.expected_replicas]
            r.deployments = [d for d in seen if d is not None]
            r.orphans = objs.post_snapshot_containers()
            r.nodes_ready = _nodes_ready(cluster)
            ok = (ks.check_converged(r.expected_replicas, r.deployments).passed
                  and ks.check_no_orphans(r.orphans).passed
                  and ks.check_nodes_ready(r.expected_nodes, r.nodes_ready).passed)
            return ok, f"deployments {r.deployments}; orphans {r.orphans}; nodes {r.nodes_ready}"

        try:
            until("controllers and kubelets to converge on the restored state", converged, converge_timeout_s,
                  interval=2.0)
            r.converge_s = time.monotonic() - t_after
        except WaitTimeout as exc:
            rec.event("converge-timeout", str(exc)[:500])
        r.uid_after, r.uid_after_how = _kube_system_uid(cluster)
        try:
            r.restored = objs.inventory()
        except Exception as exc:  # noqa: BLE001 - judged as "could not read", never as "missing"
            r.restored_error = f"{type(exc).__name__}: {exc}"[:600]
            rec.event("inventory-error", r.restored_error)
        rec.event("prober-ops", str(prober.ops))
    return r


def restore_rto(r: RestoreDrillRecord) -> float | None:
    """API write unavailability during the procedure: first failed probe to the next success."""
    if r.window is None:
        return None
    outs = [o for o in unavailability_windows(r.recorder.history, kinds=("put",))
            if o.window.end >= r.window.start and o.window.start <= r.window.end]
    return max((o.window.duration for o in outs), default=0.0)


def check_rto(r: RestoreDrillRecord, max_s: float | None = None) -> Verdict:
    name = "restore-rto"
    ops = [o for o in r.recorder.history if o.kind == "put"]
    if r.window is None or not ops:
        return Verdict.unknown(name, "no procedure window or no API probes recorded")
    before = [o for o in ops if o.end < r.window.start and o.outcome == "ok"]
    if len(before) < 5:
        return Verdict.unknown(name, f"only {len(before)} successful API writes before the restore: the prober "
                                     "was not running, the RTO would mean nothing")
    rto = restore_rto(r) or 0.0
    outs = [o for o in unavailability_windows(r.recorder.history, kinds=("put",))
            if o.window.end >= r.window.start and o.window.start <= r.window.end]
    figures = [Figure("restore_rto", round(rto, 2), "s", "API writes unavailable during the restore"),
               Figure("restore_procedure_seconds", round(r.window.duration, 1), "s")]
    if any(not o.recovered for o in outs):
        return Verdict.fail(name, "API writes never recovered after the restore", figures)
    if rto == 0.0 and r.variant == "runbook":
        return Verdict.fail(name, "the API never became unavailable: the API servers were not stopped", figures)
    if max_s is not None and rto > max_s:
        return Verdict.fail(name, f"API unavailable for {rto:.1f}s, more than the allowed {max_s:.0f}s", figures)
    return Verdict.ok(name, f"API writes unavailable for {rto:.1f}s during a {r.window.duration:.0f}s procedure", figures)


def judge(r: RestoreDrillRecord, max_rto_s: float | None = None) -> list[Verdict]:
    """Every check of a restore drill, in the order a reader should see them."""
    snap_rev = r.restored_from.revision if r.restored_from else 0
    verdicts = [
        safe_check("procedure", ks.check_procedure, r.steps),
        safe_check("restore-took-effect", ks.check_restore_took_effect, r.effect, snap_rev),
        safe_check("apiservers-stopped-during-restore", ks.check_apiservers_stopped, r.effect),
        safe_check("post-snapshot-changes-made", ks.check_changes_visible, r.at_snapshot, r.changes, r.before_restore),
        safe_check("same-cluster", ks.check_cluster_identity, r.uid_before, r.uid_after, r.uid_after_how),
        (Verdict.unknown("restored-objects", f"the inventory could not be read after the restore: {r.restored_error}")
         if r.restored_error else
         safe_check("restored-objects", ks.check_restored_inventory, r.at_snapshot, r.changes, r.restored)),
        safe_check("resource-version-monotonic", ks.check_resource_versions, r.rv_before, r.rv_after, r.resume),
        safe_check("controllers-converged", ks.check_converged, r.expected_replicas, r.deployments),
        safe_check("no-orphan-containers", ks.check_no_orphans, r.orphans),
        safe_check("nodes-ready", ks.check_nodes_ready, r.expected_nodes, r.nodes_ready),
        safe_check("restore-rto", check_rto, r, max_rto_s),
    ]
    if r.procedure_error:
        verdicts.insert(0, Verdict.fail("procedure-completed", f"the procedure raised: {r.procedure_error[:800]}"))
    return verdicts
