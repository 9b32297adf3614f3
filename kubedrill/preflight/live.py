"""Preflight against a live cluster (read-only): its objects, its version skew against the target, and
`kubectl drain --dry-run=server` as the server's word on what a drain would meet.

- Objects: workloads, bare pods, PDBs, Services, HPAs and CRDs listed through the API, as Manifests
  with `file = cluster:<context>`; they go through the same checkers as files (and the CRDs are
  installed on the preflight API servers, so the cluster's custom objects can be checked).
- Skew: what the cluster runs (kubedrill.observe) with the control plane replaced by the target,
  judged by the skew policy the upgrade suite checks (kubedrill.check.skew), plus kubeadm's
  upgrade-path rule (one minor at a time) and kubectl's (within one minor of the API server).
- Drain agreement: for every node that holds a pod the object view says a drain blocks on, run
  `kubectl drain NODE --dry-run=server` and compare the pods the server refuses to evict with the
  pods the object view predicted. Dry-run evictions go through the PDB check, so the server answers
  exactly what a real drain would meet at this moment, without cordoning or evicting anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from kubedrill.check import preflight as P
from kubedrill.check.rollout import to_observed
from kubedrill.check.skew import Observed, skew_violations
from kubedrill.check.verdict import Figure, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.record.versions import Version, VersionError, upgrade_path_problems

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")
LIST_KINDS = ("deployments.apps", "statefulsets.apps", "daemonsets.apps", "pods", "poddisruptionbudgets.policy",
              "services", "horizontalpodautoscalers.autoscaling")


def _as_manifests(items: Iterable[dict[str, Any]], where: str) -> list[P.Manifest]:
    out = []
    for o in items:
        meta = o.get("metadata") or {}
        ref = P.ObjectRef(o.get("apiVersion", ""), o.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""),
                          where)
        out.append(P.Manifest(ref, o))
    return out


def list_objects(cluster: Cluster, namespaces: Sequence[str] = (), with_crds: bool = True,
                 timeout: float = 120) -> list[P.Manifest]:
    """The cluster's objects preflight judges (pods that a controller owns are left out: their
    controller stands for them). `namespaces` empty: every namespace except the system ones."""
    where = f"cluster:{cluster.context or cluster.name}"
    p = cluster.kubectl("get", ",".join(LIST_KINDS), "-A", "-o", "json", timeout=timeout)
    items = json.loads(p.stdout).get("items", [])
    keep = []
    for o in items:
        meta = o.get("metadata") or {}
        ns = meta.get("namespace", "")
        if (namespaces and ns not in namespaces) or (not namespaces and ns in SYSTEM_NAMESPACES):
            continue
        if o.get("kind") == "Pod" and meta.get("ownerReferences"):
            continue
        keep.append(o)
    out = _as_manifests(keep, where)
    if with_crds:
        p = cluster.kubectl("get", "customresourcedefinitions", "-o", "json", timeout=timeout)
        out += _as_manifests(json.loads(p.stdout).get("items", []), where)
    return out


# --- skew -------------------------------------------------------------------------------------------

def skew_findings(obs: Observed, target: Version, kubectl: Version | None = None) -> list[P.Finding]:
    """What the cluster as it runs would violate once its control plane is at `target`."""
    out: list[P.Finding] = []
    cluster_ref = P.ObjectRef("v1", "Cluster", "", "control-plane", "cluster")
    if obs.apiservers:
        current = min(obs.apiservers.values())
        for problem in upgrade_path_problems(current, target):
            out.append(P.Finding(P.SKEW, P.ERROR, cluster_ref, f"kubeadm would refuse the upgrade: {problem}"))
    after = Observed(at=obs.at, apiservers={n: target for n in obs.apiservers or {"(target)": target}},
                     kubelets=obs.kubelets,
                     controller_managers={n: target for n in obs.controller_managers},
                     schedulers={n: target for n in obs.schedulers},
                     kube_proxies=obs.kube_proxies, label=f"after the control plane is at {target}")
    for v in skew_violations(after):
        ref = P.ObjectRef("v1", "Node", "", v.node, "cluster")
        out.append(P.Finding(P.SKEW, P.ERROR, ref, f"after the control-plane upgrade to {target}: {v}. Upgrade "
                                                   f"{v.component} on {v.node} first (one minor at a time)"))
    if kubectl is not None and abs(target.minors_above(kubectl)) > 1:
        out.append(P.Finding(P.SKEW, P.WARNING, P.ObjectRef("v1", "Client", "", "kubectl", "local"),
                             f"kubectl {kubectl} is more than one minor from {target}: kubectl is supported "
                             "within one minor of the API server; install a matching kubectl"))
    return out


def observe_versions(cluster: Cluster) -> Observed:
    from kubedrill.observe.cluster import Observer

    return to_observed(Observer(cluster).snapshot(label="preflight", strict=True))


def kubectl_version(cluster: Cluster) -> Version | None:
    p = cluster.kubectl("version", "--client", "-o", "json", check=False, timeout=30)
    try:
        return Version.parse(json.loads(p.stdout)["clientVersion"]["gitVersion"])
    except (ValueError, KeyError, VersionError):
        return None


# --- drain agreement --------------------------------------------------------------------------------

_BLOCKED = re.compile(r'error when evicting pods/"([^"]+)" -n "([^"]+)".*disruption budget')
_EVICTED = re.compile(r'evicting pod ([^/\s]+)/(\S+)')
_NO_CONTROLLER = re.compile(r"cannot delete Pods that declare no controller[^:]*: (.+)")


@dataclass
class DrainAnswer:
    node: str
    blocked: set[str] = field(default_factory=set)  # ns/pod refused by a PDB
    evictable: set[str] = field(default_factory=set)
    no_controller: set[str] = field(default_factory=set)
    output: str = ""


def parse_drain(node: str, output: str) -> DrainAnswer:
    """The pods `kubectl drain --dry-run=server` reported blocked, evictable, or without a controller."""
    a = DrainAnswer(node, output=output)
    for line in output.splitlines():
        if m := _BLOCKED.search(line):
            a.blocked.add(f"{m.group(2)}/{m.group(1)}")
        elif m := _EVICTED.search(line):
            a.evictable.add(f"{m.group(1)}/{m.group(2)}")
        elif m := _NO_CONTROLLER.search(line):
            a.no_controller.update(p.strip() for p in m.group(1).split(",") if p.strip())
    a.evictable -= a.blocked
    return a


def drain_dry_run(cluster: Cluster, node: str, timeout_s: int = 20) -> DrainAnswer:
    p = cluster.kubectl("drain", node, "--dry-run=server", "--ignore-daemonsets", "--delete-emptydir-data",
                        f"--timeout={timeout_s}s", check=False, timeout=timeout_s + 60)
    return parse_drain(node, p.stdout + "\n" + p.stderr)


def predicted_blocked(findings: Sequence[P.Finding], manifests: Sequence[P.Manifest],
                      pods: Sequence[dict[str, Any]]) -> dict[str, str]:
    """ns/pod -> the PDB the object view says blocks its eviction (pods from a live listing)."""
    pdbs = {(f.ref.namespace, f.ref.name) for f in findings if f.check == P.PDB_BLOCKS}
    out = {}
    for m in manifests:
        if m.ref.kind != "PodDisruptionBudget" or (m.ref.namespace, m.ref.name) not in pdbs:
            continue
        sel = (m.obj.get("spec") or {}).get("selector")
        for pod in pods:
            meta = pod.get("metadata") or {}
            if meta.get("namespace") == m.ref.namespace and P.selector_matches(sel, meta.get("labels") or {}):
                out[f"{meta['namespace']}/{meta['name']}"] = m.ref.name
    return out


def drain_agreement(predicted: dict[str, str], answers: Sequence[DrainAnswer]) -> Verdict:
    """PASS when the server blocked exactly the pods the object view predicted, on the nodes drained."""
    blocked = set().union(*(a.blocked for a in answers)) if answers else set()
    seen = set().union(*(a.blocked | a.evictable for a in answers)) if answers else set()
    want = {p for p in predicted if p in seen}
    missed = sorted(want - blocked)
    extra = sorted(blocked - set(predicted))
    figs = [Figure("drain_nodes", len(answers), "nodes"), Figure("drain_blocked_pods", len(blocked), "pods"),
            Figure("drain_predicted_pods", len(want), "pods")]
    pdbs = sorted({predicted[p] for p in want})
    if not answers:
        return Verdict.unknown("preflight/drain-agreement", "no node was drained (dry-run): nothing to compare", figs)
    if not want and not blocked:
        return Verdict.ok("preflight/drain-agreement", f"neither the object view nor `kubectl drain --dry-run=server` "
                                                       f"of {', '.join(a.node for a in answers)} found a blocked pod",
                          figs)
    if missed or extra:
        return Verdict.fail("preflight/drain-agreement",
                            "the object view and `kubectl drain --dry-run=server` disagree: "
                            + (f"predicted blocked by {', '.join(sorted({predicted[p] for p in missed}))} but the "
                               f"server evicts {', '.join(missed)}; " if missed else "")
                            + (f"the server blocks {', '.join(extra)} that no blocking PDB in the object view "
                               "covers" if extra else ""), figs)
    return Verdict.ok("preflight/drain-agreement",
                      f"`kubectl drain --dry-run=server` of {', '.join(a.node for a in answers)} is refused for "
                      f"exactly the {len(want)} pod(s) the object view predicted, by PodDisruptionBudget "
                      f"{', '.join(pdbs)}", figs)
