"""Version skew between control plane and kubelets, upgrade-path refusal, `kubeadm upgrade plan` parsing. Pure.

Why these rules and not "everything equal": an upgrade rehearsal passes through mixed states on
purpose (new API server, old kubelets), so the checker must accept exactly what Kubernetes supports
and reject the rest. The rules are those of the Kubernetes version skew policy
(kubernetes.io/releases/version-skew-policy) and kubeadm's own upgrade policy
(cmd/kubeadm/app/phases/upgrade/policy.go, `EnforceVersionPolicies`):

- kube-apiserver: in HA, the newest and oldest instance are at most 1 minor apart.
- kubelet, kube-proxy: never newer than the kube-apiserver they talk to; at most 3 minors older
  than the newest one. kube-proxy at most 3 minors away from the kubelet on its node. A kubelet
  behind a load balancer may reach any API server, so the oldest counts; kubeadm's
  ControlPlaneKubeletLocalMode (beta, on by default since v1.33) points a control-plane node's
  kubelet at its own API server, which is what lets the documented procedure upgrade the first
  control plane's kubelet before the other control planes (`Observed.kubelet_apiservers`, read
  from each node's kubelet.conf, says which one each kubelet uses; unknown means the oldest).
- kube-controller-manager, kube-scheduler: never newer than the kube-apiserver they talk to and at
  most 1 minor older. kubeadm points them at the API server on their own node, so that one is
  compared when known (else the oldest, which is what a load-balanced setup would demand).
- kubeadm upgrades one minor at a time (`MaximumAllowedMinorVersionUpgradeSkew = 1`), never to a
  minor above its own, and refuses downgrades of more than one minor.

Versions are compared as (major, minor, patch); pre-release tags are kept for display and for
kubeadm's "unstable versions need a flag" rule, not for ordering (a run never mixes pre-releases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record.versions import Version

CHECK = "version-skew"
MAX_KUBELET_MINORS_OLDER = 3  # skew policy since 1.28 (and kubeadm's MaximumAllowedMinorVersionKubeletSkew)
MAX_APISERVER_SPREAD = 1  # HA: newest and oldest kube-apiserver within one minor
MAX_CONTROLLER_MINORS_OLDER = 1  # kube-controller-manager / kube-scheduler vs kube-apiserver

# --- skew between running components -------------------------------------------------------------

@dataclass(frozen=True)
class Observed:
    """Component versions seen at one moment (node name -> version), from the API and the nodes.

    Built by kubedrill.cluster.observe from what the cluster reported: kube-apiserver /version and
    the images of the control-plane static pods, kubelet versions from Node status, kube-proxy from
    its DaemonSet pods. `label` says when (e.g. "after control-plane kd-x-control-plane").
    """

    at: float
    apiservers: Mapping[str, Version]
    kubelets: Mapping[str, Version]
    controller_managers: Mapping[str, Version] = field(default_factory=dict)
    schedulers: Mapping[str, Version] = field(default_factory=dict)
    kube_proxies: Mapping[str, Version] = field(default_factory=dict)
    label: str = ""
    # node -> node whose kube-apiserver that node's kubelet talks to (from its kubelet.conf);
    # a node absent here talks through the load balancer, i.e. possibly to the oldest one.
    kubelet_apiservers: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Enough was seen to judge kubelet skew: at least one API server and one kubelet."""
        return bool(self.apiservers) and bool(self.kubelets)


@dataclass(frozen=True)
class Violation:
    component: str
    node: str
    version: Version
    rule: str

    def __str__(self) -> str:
        return f"{self.component} on {self.node} at {self.version}: {self.rule}"


def skew_violations(obs: Observed) -> list[Violation]:
    """Every component in `obs` outside the supported skew; [] when all are within policy."""
    if not obs.apiservers:
        return []
    out: list[Violation] = []
    oldest_api = min(obs.apiservers.values())
    newest_api = max(obs.apiservers.values())
    if newest_api.minors_above(oldest_api) > MAX_APISERVER_SPREAD:
        for node, v in obs.apiservers.items():
            if v == oldest_api:
                out.append(Violation("kube-apiserver", node, v, f"more than {MAX_APISERVER_SPREAD} minor behind the "
                                                                f"newest kube-apiserver ({newest_api})"))

    def node_agent(component: str, node: str, v: Version, via: str = "") -> None:
        api, where = oldest_api, ""
        if via and via in obs.apiservers:
            api, where = obs.apiservers[via], f" on {via}, the one it talks to"
        if v.minor_line > api.minor_line:
            out.append(Violation(component, node, v, f"newer than kube-apiserver {api}{where} (a {component} must "
                                                     "never be newer than the API server: upgrade the control plane "
                                                     "first)"))
        elif newest_api.minors_above(v) > MAX_KUBELET_MINORS_OLDER:
            out.append(Violation(component, node, v, f"more than {MAX_KUBELET_MINORS_OLDER} minors older than "
                                                     f"kube-apiserver {newest_api}"))

    for node, v in obs.kubelets.items():
        node_agent("kubelet", node, v, obs.kubelet_apiservers.get(node, ""))
    for node, v in obs.kube_proxies.items():
        node_agent("kube-proxy", node, v)
        kubelet = obs.kubelets.get(node)
        if kubelet is not None and abs(v.minors_above(kubelet)) > MAX_KUBELET_MINORS_OLDER:
            out.append(Violation("kube-proxy", node, v, f"more than {MAX_KUBELET_MINORS_OLDER} minors from the kubelet "
                                                        f"on its node ({kubelet})"))
    for component, seen in (("kube-controller-manager", obs.controller_managers), ("kube-scheduler", obs.schedulers)):
        for node, v in seen.items():
            api = obs.apiservers.get(node, oldest_api)
            where = f"the kube-apiserver on {node}" if node in obs.apiservers else "the oldest kube-apiserver"
            if v.minor_line > api.minor_line:
                out.append(Violation(component, node, v, f"newer than {where} ({api})"))
            elif api.minors_above(v) > MAX_CONTROLLER_MINORS_OLDER:
                out.append(Violation(component, node, v, f"more than {MAX_CONTROLLER_MINORS_OLDER} minor older than "
                                                         f"{where} ({api})"))
    return out


def kubelet_skew_minors(obs: Observed) -> int:
    """The largest (newest kube-apiserver minor - kubelet minor) in `obs`; negative means a kubelet is ahead."""
    if not obs.complete:
        return 0
    newest = max(obs.apiservers.values())
    return max(newest.minors_above(v) for v in obs.kubelets.values())


def skew_verdict(observations: Sequence[Observed], required_labels: Iterable[str] = ()) -> Verdict:
    """FAIL on any violation in any observation; UNKNOWN if a required moment was not (fully) observed.

    Judged over every snapshot, so a violation that existed only between two checkpoints is caught
    as long as the sampler saw it. Incomplete snapshots (an API server restarting) are counted and
    skipped, never treated as a pass on their own.
    """
    complete = [o for o in observations if o.complete]
    figures = [
        Figure("skew_snapshots", len(complete), "count", f"{len(observations) - len(complete)} incomplete skipped"),
        Figure("max_kubelet_skew", max((kubelet_skew_minors(o) for o in complete), default=0), "minors",
               "newest kube-apiserver minor minus the oldest kubelet minor"),
    ]
    labels = {o.label for o in complete}
    missing = [lab for lab in required_labels if lab not in labels]
    bad = [(o, v) for o in complete for v in skew_violations(o)]
    if bad:
        first_obs, first = bad[0]
        kinds = sorted({str(v) for _, v in bad})
        return Verdict.fail(CHECK, f"{len(bad)} skew violation(s) in {len({id(o) for o, _ in bad})} snapshot(s); first at "
                                   f"{first_obs.label or f't={first_obs.at:.1f}'}: {first}. All: {'; '.join(kinds[:5])}",
                            figures)
    if not complete:
        return Verdict.unknown(CHECK, "no complete version snapshot was recorded (no API server or kubelet version "
                                      "seen), so the skew policy was not checked", figures)
    if missing:
        return Verdict.unknown(CHECK, f"no complete version snapshot at {', '.join(missing)}: skew there is unchecked",
                               figures)
    return Verdict.ok(CHECK, f"{len(complete)} snapshots within the skew policy (kubelets never newer than the API "
                             f"server, at most {MAX_KUBELET_MINORS_OLDER} minors older)", figures)


# --- kubeadm upgrade plan ------------------------------------------------------------------------
