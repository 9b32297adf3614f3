"""Pure checks of a node-by-node rollout (an upgrade) from recorded snapshots. No cluster access.

Each checker answers one question about the record and returns a Verdict:
- `step_took_effect`: did this node's step really change what it should (kubelet, control plane)?
  Suites check it first: a step that changed nothing makes every later PASS meaningless.
- `versions_as_expected`: after the steps done so far, does every component report the version
  it should (upgraded nodes at the target, the others still at the source)?
- `one_node_out_at_a_time`: at no sampled moment were two nodes cordoned or NotReady.
- `workload_intact`: desired replicas ready, no pod lost (failed, or restarted by a crash).
- `data_intact`: checksums of objects written before the rollout are unchanged after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from kubedrill.check.skew import Observed
from kubedrill.record.versions import Version, VersionError
from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record.cluster import Snapshot, WorkloadState

CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _v(text: str) -> Version | None:
    try:
        return Version.parse(text)
    except VersionError:
        return None


def to_observed(snap: Snapshot, kubelet_apiservers: Mapping[str, str] | None = None) -> Observed:
    """The skew checker's view of a snapshot (versions it cannot parse are left out, never guessed).

    `kubelet_apiservers`: node -> node whose API server its kubelet uses (see skew.Observed).
    """

    def comp(name: str) -> dict[str, Version]:
        return {node: v for node, tag in snap.components.get(name, {}).items() if (v := _v(tag)) is not None}

    apiservers = comp("kube-apiserver")
    if not apiservers and (api := _v(snap.api_version)) is not None:
        apiservers = {"(api /version)": api}
    kubelets = {n.name: v for n in snap.nodes if (v := _v(n.kubelet)) is not None}
    return Observed(at=snap.at, apiservers=apiservers, kubelets=kubelets,
                    controller_managers=comp("kube-controller-manager"), schedulers=comp("kube-scheduler"),
                    kube_proxies=comp("kube-proxy"), label=snap.label,
                    kubelet_apiservers=dict(kubelet_apiservers or {}))


@dataclass(frozen=True)
class Expectation:
    """What a finished rollout step should leave behind: target versions of everything it touches."""

    source: str  # e.g. v1.33.13
    target: str  # e.g. v1.34.4
    etcd_target: str = ""  # image tag kubeadm uses for etcd at the target, e.g. 3.6.5-0
    coredns_target: str = ""  # e.g. v1.12.1


def versions_as_expected(snap: Snapshot, upgraded: Iterable[str], exp: Expectation,
                         control_plane_upgraded: Iterable[str] = ()) -> list[str]:
    """Problems with the versions in `snap` given which nodes are done; [] when all is as expected.

    `upgraded`: nodes whose kubelet should be at the target. `control_plane_upgraded`: control-plane
    nodes whose static pods should be at the target. The API server's /version, etcd and the addons
    (kube-proxy, CoreDNS) are only required at the target once every control plane is done: kubeadm
    upgrades the addons with the last control plane, and in HA /version may come from any instance.
    """
    problems: list[str] = []
    done = set(upgraded)
    cp_done = set(control_plane_upgraded)
    for n in snap.nodes:
        want = exp.target if n.name in done else exp.source
        if n.kubelet != want:
            problems.append(f"kubelet on {n.name} reports {n.kubelet or '?'}, expected {want}")
        if not n.ready:
            problems.append(f"node {n.name} is NotReady")
    for comp in CONTROL_PLANE_COMPONENTS:
        seen = snap.components.get(comp, {})
        for n in snap.nodes:
            if n.role != "control-plane":
                continue
            want = exp.target if n.name in cp_done else exp.source
            got = seen.get(n.name)
            if got != want:
                problems.append(f"{comp} on {n.name} runs {got or 'nothing'}, expected {want}")
    cps = [n.name for n in snap.nodes if n.role == "control-plane"]
    if exp.etcd_target and cps and set(cps) <= cp_done:
        for node, tag in snap.components.get("etcd", {}).items():
            if tag != exp.etcd_target:
                problems.append(f"etcd on {node} runs {tag}, expected {exp.etcd_target}")
    if cps and set(cps) <= cp_done:
        if snap.api_version != exp.target:
            problems.append(f"the API server reports {snap.api_version or 'nothing'}, expected {exp.target}")
        for node, tag in snap.components.get("kube-proxy", {}).items():
            if tag != exp.target:
                problems.append(f"kube-proxy on {node} runs {tag}, expected {exp.target}")
        if exp.coredns_target:
            for pod, tag in snap.components.get("coredns", {}).items():
                if tag != exp.coredns_target:
                    problems.append(f"coredns pod {pod} runs {tag}, expected {exp.coredns_target}")
    elif not cp_done and snap.api_version and snap.api_version != exp.source:
        problems.append(f"the API server reports {snap.api_version}, expected {exp.source} before any control plane "
                        "is upgraded")
    if snap.error:
        problems.append(f"snapshot incomplete: {snap.error}")
    return problems


def versions_verdict(snap: Snapshot, upgraded: Iterable[str], exp: Expectation,
                     control_plane_upgraded: Iterable[str] = ()) -> Verdict:
    problems = versions_as_expected(snap, upgraded, exp, control_plane_upgraded)
    label = snap.label or "checkpoint"
    if problems:
        return Verdict.fail("versions", f"{label}: " + "; ".join(problems))
    return Verdict.ok("versions", f"{label}: API server {snap.api_version}; kubelets "
                                  + ", ".join(f"{n.name}={n.kubelet}" for n in snap.nodes))


def step_took_effect(node: str, before: Snapshot, after: Snapshot, target: str, control_plane: bool) -> Verdict:
    """PASS only if the node's kubelet (and, for a control plane, its API server) moved to `target`."""
    b, a = before.node(node), after.node(node)
    if b is None or a is None:
        return Verdict.unknown("step-effect", f"{node} missing from the {'before' if b is None else 'after'} snapshot")
    changes = [f"kubelet {b.kubelet} -> {a.kubelet}"]
    problems = []
    if a.kubelet != target:
        problems.append(f"kubelet on {node} still reports {a.kubelet} (expected {target})")
    elif b.kubelet == target:
        problems.append(f"kubelet on {node} was already at {target} before its step: the step proved nothing")
    if control_plane:
        was = before.components.get("kube-apiserver", {}).get(node, "")
        now = after.components.get("kube-apiserver", {}).get(node, "")
        changes.append(f"kube-apiserver {was or '?'} -> {now or '?'}")
        if now != target:
            problems.append(f"kube-apiserver on {node} runs {now or 'nothing'} (expected {target})")
    if problems:
        return Verdict.fail("step-effect", "; ".join(problems))
    return Verdict.ok("step-effect", f"{node}: " + ", ".join(changes))


def one_node_out_at_a_time(snaps: Sequence[Snapshot], limit: int = 1) -> Verdict:
    """FAIL if any snapshot shows more than `limit` nodes cordoned or NotReady at once."""
    seen = [s for s in snaps if s.nodes]
    if not seen:
        return Verdict.unknown("nodes-out", "no snapshot listed the nodes: whether nodes were taken out one at a time "
                                            "is unknown")
    worst = max(seen, key=lambda s: sum(n.out for n in s.nodes))
    most = sum(n.out for n in worst.nodes)
    figs = [Figure("max_nodes_out", most, "nodes", f"over {len(seen)} snapshots"),
            Figure("node_snapshots", len(seen), "count")]
    if most > limit:
        outs = ", ".join(f"{n.name}({'' if n.schedulable else 'cordoned'}{'' if n.ready else ' NotReady'})"
                         for n in worst.nodes if n.out)
        return Verdict.fail("nodes-out", f"{most} nodes out of service at once at {worst.label or f't={worst.at:.1f}'}: "
                                         f"{outs} (limit {limit})", figs)
    return Verdict.ok("nodes-out", f"at most {most} node out of service at any of {len(seen)} snapshots", figs)


def workload_intact(before: WorkloadState, after: WorkloadState) -> Verdict:
    """Desired replicas ready and available; no pod Failed; no container restarted (a crash, not an eviction)."""
    problems = []
    if after.ready < after.replicas or after.available < after.replicas:
        problems.append(f"{after.ready}/{after.replicas} ready, {after.available} available")
    failed = [p.name for p in after.pods if p.phase in ("Failed", "Unknown")]
    if failed:
        problems.append(f"pods in Failed/Unknown phase: {', '.join(failed)}")
    restarts_before = {p.name: p.restarts for p in before.pods}
    restarted = [f"{p.name} ({restarts_before.get(p.name, 0)} -> {p.restarts})" for p in after.pods
                 if p.restarts > restarts_before.get(p.name, 0)]
    if restarted:
        problems.append(f"containers restarted: {', '.join(restarted)}")
    figs = [Figure("ready_replicas", after.ready, "pods", f"desired {after.replicas}")]
    name = f"{after.namespace}/{after.name}"
    if problems:
        return Verdict.fail("workload", f"{name}: " + "; ".join(problems), figs)
    return Verdict.ok("workload", f"{name}: {after.ready}/{after.replicas} ready, no pod failed or restarted", figs)


def data_intact(before: Mapping[str, str], after: Mapping[str, str | None]) -> Verdict:
    """Every object checksummed before must read back with the same checksum after."""
    if not before:
        return Verdict.unknown("data", "no objects were checksummed before the rollout: data integrity is unchecked")
    missing = sorted(k for k in before if after.get(k) is None)
    changed = sorted(k for k in before if after.get(k) is not None and after[k] != before[k])
    figs = [Figure("objects_checked", len(before), "objects"), Figure("objects_lost", len(missing), "objects"),
            Figure("objects_changed", len(changed), "objects")]
    if missing or changed:
        return Verdict.fail("data", f"{len(missing)} object(s) missing ({', '.join(missing[:5])}), {len(changed)} "
                                    f"changed ({', '.join(changed[:5])}) out of {len(before)}", figs)
    return Verdict.ok("data", f"all {len(before)} checksummed objects read back unchanged", figs)
