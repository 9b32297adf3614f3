"""Restored Kubernetes state: judge a restore by the objects, not by etcd's word for it.

Pure functions over what the suite recorded (object inventories taken through the API, the
post-snapshot changes it made, resourceVersions it saw, deployment and node status). No cluster
access here: the suite records, these judge.

The questions, each its own checker so a failure names the one that broke:
  * every object that existed at the snapshot is back, with the same uid (restored, not
    recreated) and the same content; every change made after the snapshot is gone;
  * the cluster is the same cluster (kube-system's uid, the de-facto cluster id, is unchanged:
    a snapshot of another cluster restores another cluster's objects);
  * resourceVersions keep increasing: a watcher that reconnects with the last version it saw must
    be told to relist (410 Gone) and then see higher versions, never lower ones (a restore
    without `--bump-revision` sends them back, and informers silently ignore "old" changes);
  * controllers converge (Deployments at their restored replicas) and nodes are Ready.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record.objects import Change, DeploymentSeen, Inventory, RvSeen, StepRecord, WatchResume

def _sample(keys: Sequence[str], n: int = 3) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_changes_visible(at_snapshot: Inventory, changes: Sequence[Change], live: Inventory) -> Verdict:
    """Before the restore, every post-snapshot change shows in the live inventory; otherwise a
    restore that did nothing would pass the restore check (prove the setup before judging)."""
    name = "post-snapshot-changes-made"
    if not changes:
        return Verdict.unknown(name, "no changes were made after the snapshot: a restore that did nothing would pass")
    invisible = []
    for ch in changes:
        now, then = live.get(ch.key), at_snapshot.get(ch.key)
        if ch.action == "create" and now is None:
            invisible.append(f"created {ch.key} is absent")
        elif ch.action == "delete" and now is not None and now.checksum == (then.checksum if then else None):
            invisible.append(f"deleted {ch.key} is still there unchanged")
        elif ch.action == "update" and (now is None or then is None or now.checksum == then.checksum):
            invisible.append(f"updated {ch.key} shows no change")
    figures = [Figure("post_snapshot_changes", len(changes), "changes")]
    if invisible:
        return Verdict.unknown(name, f"{len(invisible)} post-snapshot changes are not visible before the restore: "
                                     f"{_sample(invisible)}; the test would prove nothing about them", figures)
    return Verdict.ok(name, f"{len(changes)} changes made after the snapshot are visible before the restore", figures)


def check_restored_inventory(at_snapshot: Inventory, changes: Sequence[Change], restored: Inventory) -> Verdict:
    """Every snapshot-time object is back with the same uid and content; every post-snapshot
    creation is gone (updates and deletions are covered by the first rule)."""
    name = "restored-objects"
    missing = [k for k in at_snapshot if k not in restored]
    recreated = [k for k, s in at_snapshot.items() if k in restored and restored[k].uid != s.uid]
    differ = [k for k, s in at_snapshot.items()
              if k in restored and restored[k].uid == s.uid and restored[k].checksum != s.checksum]
    created_after = {c.key for c in changes if c.action == "create" and c.key not in at_snapshot}
    leaked = sorted(k for k in created_after if k in restored)
    unexpected = sorted(k for k in restored if k not in at_snapshot and k not in created_after)
    changed_after = {c.key: c.action for c in changes}
    figures = [Figure("objects_at_snapshot", len(at_snapshot), "objects"),
               Figure("objects_restored_equal", len(at_snapshot) - len(missing) - len(recreated) - len(differ), "objects"),
               Figure("post_snapshot_changes_undone",
                      sum(1 for c in changes if (c.key in leaked) is False and c.key not in differ and c.key not in missing),
                      "changes")]
    problems: list[str] = []
    if missing:
        deleted = [k for k in missing if changed_after.get(k) == "delete"]
        problems.append(f"{len(missing)} objects that existed at the snapshot are missing ({_sample(missing)})"
                        + (f", {len(deleted)} of them deleted after the snapshot and not brought back" if deleted else ""))
    if recreated:
        problems.append(f"{len(recreated)} objects exist under a different uid, i.e. were recreated rather than "
                        f"restored ({_sample(recreated)})")
    if differ:
        kept = [k for k in differ if changed_after.get(k) in ("update", "delete")]
        problems.append(f"{len(differ)} objects differ from the snapshot ({_sample(differ)})"
                        + (f"; {len(kept)} of them carry a change made after the snapshot" if kept else ""))
    if leaked:
        problems.append(f"{len(leaked)} objects created after the snapshot are still present ({_sample(leaked)})")
    if unexpected:
        problems.append(f"{len(unexpected)} objects that neither the snapshot nor the test created ({_sample(unexpected)})")
    if problems:
        hint = ""
        if leaked and not missing:
            hint = ("; post-snapshot state survived: the restore did not take effect, or an API server kept "
                    "serving its pre-restore cache")
        elif missing and len(missing) == len(at_snapshot):
            hint = "; none of the snapshot's objects exist: the data restored is not this cluster's snapshot"
        return Verdict.fail(name, "; ".join(problems) + hint, figures)
    if not at_snapshot:
        return Verdict.unknown(name, "the snapshot inventory is empty: nothing was verified", figures)
    return Verdict.ok(name, f"all {len(at_snapshot)} snapshot-time objects are back with the same uid and content; "
                            f"{len(changes)} post-snapshot changes are gone", figures)


def check_cluster_identity(uid_before: str, uid_after: str | None, how: str = "") -> Verdict:
    """kube-system's uid before and after the restore (the cluster id Kubernetes tooling uses).
    `how` says how the uid after was read (e.g. through super-admin.conf because the admin's
    kubeconfig was forbidden: RBAC is data, and another cluster's data does not grant it)."""
    name = "same-cluster"
    note = f" (read with {how})" if how and how != "admin kubeconfig" else ""
    if not uid_before:
        return Verdict.unknown(name, "kube-system's uid before the restore was not recorded")
    if uid_after is None:
        return Verdict.fail(name, f"kube-system could not be read after the restore{note}: the restored data is not "
                                  "this Kubernetes cluster's, or the API server did not come back")
    if uid_after != uid_before:
        return Verdict.fail(name, f"kube-system's uid changed from {uid_before} to {uid_after}: the snapshot comes "
                                  f"from another cluster{note}")
    return Verdict.ok(name, f"kube-system keeps uid {uid_before}")


def check_resource_versions(before: Sequence[RvSeen], after: Sequence[RvSeen],
                            resume: WatchResume | None = None) -> Verdict:
    """resourceVersions after the restore exceed every one seen before it, and a reconnecting
    watcher is told to relist (410) and then sees a higher version."""
    name = "resource-version-monotonic"
    if not before or not after:
        return Verdict.unknown(name, f"need resourceVersions from before and after the restore (got {len(before)} "
                                     f"and {len(after)})")
    top = max(before, key=lambda s: s.rv)
    low = min(after, key=lambda s: s.rv)
    figures = [Figure("max_rv_before_restore", top.rv, "rv"), Figure("min_rv_after_restore", low.rv, "rv")]
    problems: list[str] = []
    if low.rv <= top.rv:
        back = [s for s in after if s.rv <= top.rv]
        problems.append(f"resourceVersion went back: {low.what} got {low.rv} after the restore, not above {top.rv} "
                        f"({top.what}) seen before it ({len(back)} of {len(after)} observations); informers that "
                        "resume treat newer changes as old -- restore with --bump-revision and --mark-compacted")
    if resume is not None:
        if resume.status == 410:
            if resume.relist_rv and resume.relist_rv <= resume.from_rv:
                problems.append(f"a watcher told to relist (410) listed at {resume.relist_rv}, not above the "
                                f"{resume.from_rv} it had")
        elif resume.status == 200:
            stale = [rv for rv in resume.event_rvs if rv <= resume.from_rv]
            if stale:
                problems.append(f"a watcher resuming from {resume.from_rv} got events at older versions {stale[:3]}")
            if resume.relist_rv and resume.relist_rv <= resume.from_rv:
                problems.append(f"a relist after the restore is at {resume.relist_rv}, below the {resume.from_rv} "
                                "a watcher had: its cache is ahead of the cluster")
        else:
            problems.append(f"a watcher resuming from {resume.from_rv} got HTTP {resume.status} instead of events or "
                            f"410 Gone ({resume.detail[:200]}): it cannot resume nor learn it must relist")
    if problems:
        return Verdict.fail(name, "; ".join(problems), figures)
    how = (f"; a watcher resuming from {resume.from_rv} got "
           + ("410 Gone and relisted at " + str(resume.relist_rv) if resume.status == 410 else f"HTTP {resume.status}")
           if resume else "")
    return Verdict.ok(name, f"every resourceVersion after the restore (>= {low.rv}) exceeds {top.rv} seen before{how}",
                      figures)


def check_converged(expected_replicas: Mapping[str, int], seen: Sequence[DeploymentSeen]) -> Verdict:
    """Each Deployment is at its restored desired replicas with that many pods Running and ready
    (a restored smaller scale must shed the pods a post-snapshot scale-up created)."""
    name = "controllers-converged"
    by_key = {d.key: d for d in seen}
    problems = []
    for key, want in expected_replicas.items():
        d = by_key.get(key)
        if d is None:
            problems.append(f"{key}: not found")
            continue
        if d.replicas != want:
            problems.append(f"{key}: spec.replicas {d.replicas}, the snapshot had {want}")
        if d.ready != want or d.available != want or d.pods_running != want:
            problems.append(f"{key}: {d.ready} ready / {d.available} available / {d.pods_running} pods running, want {want}")
    figures = [Figure("deployments_checked", len(expected_replicas), "deployments")]
    if problems:
        return Verdict.fail(name, "controllers did not converge: " + "; ".join(problems[:5]), figures)
    if not expected_replicas:
        return Verdict.unknown(name, "no deployments to check", figures)
    return Verdict.ok(name, f"{len(expected_replicas)} deployments at their restored replicas, all pods ready", figures)


def check_no_orphans(leftover: Mapping[str, Sequence[str]]) -> Verdict:
    """Containers of pods that exist only in the discarded post-snapshot state must be gone from
    the nodes (kubelets that were restarted resync and kill what the API no longer has)."""
    name = "no-orphan-containers"
    left = {n: list(c) for n, c in leftover.items() if c}
    if left:
        desc = "; ".join(f"{n}: {', '.join(c[:3])}" for n, c in left.items())
        return Verdict.fail(name, f"containers of pods created after the snapshot still run: {desc}")
    return Verdict.ok(name, "no container of a post-snapshot pod runs on any node")


def check_nodes_ready(expected: Sequence[str], ready: Mapping[str, bool]) -> Verdict:
    name = "nodes-ready"
    bad = [n for n in expected if not ready.get(n)]
    extra = sorted(set(ready) - set(expected))
    if bad or extra:
        parts = [f"not Ready: {', '.join(bad)}"] if bad else []
        parts += [f"unknown nodes: {', '.join(extra)}"] if extra else []
        return Verdict.fail(name, "; ".join(parts))
    return Verdict.ok(name, f"all {len(expected)} nodes Ready")


def check_procedure(steps: Sequence[StepRecord]) -> Verdict:
    """Every step of the procedure succeeded; a failed step is named with its output."""
    name = "procedure"
    if not steps:
        return Verdict.unknown(name, "no procedure steps were recorded")
    failed = [s for s in steps if not s.ok]
    figures = [Figure("procedure_steps", len(steps), "steps"),
               Figure("procedure_seconds", round(sum(s.seconds for s in steps), 1), "s")]
    if failed:
        return Verdict.fail(name, "; ".join(f"step {s.name!r} failed: {s.detail[:300]}" for s in failed[:3]), figures)
    return Verdict.ok(name, f"{len(steps)} steps ran: " + ", ".join(s.name for s in steps), figures)


def check_restore_took_effect(effect: Mapping[str, Any], snapshot_revision: int) -> Verdict:
    """The procedure's own evidence that etcd now serves the restored data: a restore starts a new
    logical etcd cluster (new cluster id) whose revision is the snapshot's plus the bump."""
    name = "restore-took-effect"
    before, after = effect.get("etcd_before") or {}, effect.get("etcd_after") or {}
    bump = int(effect.get("bump_revision") or 0)
    if not before or not after:
        return Verdict.unknown(name, f"etcd identity not recorded (before {before}, after {after})")
    figures = [Figure("etcd_revision_after_restore", after["revision"], "rev")]
    if before["cluster_id"] == after["cluster_id"]:
        why = "" if effect.get("restore_ok", True) else " (the restore step failed: see the procedure verdict)"
        return Verdict.fail(name, f"etcd kept cluster id {before['cluster_id']:x} at revision {after['revision']}: it "
                                  f"still runs the pre-restore data, the restore did not take effect{why}", figures)
    if after["revision"] < snapshot_revision + bump:
        return Verdict.fail(name, f"etcd revision {after['revision']} is below the snapshot's {snapshot_revision} + bump "
                                  f"{bump}: this is not the restored snapshot", figures)
    return Verdict.ok(name, f"etcd is a new cluster ({after['cluster_id']:x}) at revision {after['revision']} "
                            f"= snapshot {snapshot_revision} + bump {bump} + new writes", figures)


def check_apiservers_stopped(effect: Mapping[str, Any]) -> Verdict:
    """No kube-apiserver ran while etcd switched to the restored data. One that did kept a watch
    cache and in-flight requests from before the restore, and (without a revision bump) goes on
    serving objects the restore removed; the runbook stops them all first."""
    name = "apiservers-stopped-during-restore"
    if "apiservers_running_at_etcd_start" not in effect:
        return Verdict.unknown(name, "the procedure did not record which API servers ran when etcd came back")
    running = effect["apiservers_running_at_etcd_start"] or {}
    if running:
        nodes = ", ".join(f"{n} (container {ids[0][:12]})" for n, ids in running.items())
        return Verdict.fail(name, f"kube-apiserver was running on {nodes} when etcd started on the restored data: "
                                  "it lived through the restore with its pre-restore cache; stop every API server "
                                  "(move kube-apiserver.yaml out of the manifests folder) before restoring")
    return Verdict.ok(name, "no kube-apiserver ran while etcd switched to the restored data")
