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

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from kubedrill.check.verdict import Figure, Verdict

CHECK = "version-skew"
MAX_UPGRADE_MINORS = 1  # kubeadm: MaximumAllowedMinorVersionUpgradeSkew
MAX_KUBELET_MINORS_OLDER = 3  # skew policy since 1.28 (and kubeadm's MaximumAllowedMinorVersionKubeletSkew)
MAX_APISERVER_SPREAD = 1  # HA: newest and oldest kube-apiserver within one minor
MAX_CONTROLLER_MINORS_OLDER = 1  # kube-controller-manager / kube-scheduler vs kube-apiserver

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


class VersionError(ValueError):
    """A string is not a Kubernetes version (vMAJOR.MINOR.PATCH[-pre][+build])."""


class UpgradeRefused(ValueError):
    """The requested upgrade is one kubeadm would refuse; the message says why and what to do."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("upgrade refused: " + "; ".join(problems))


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> "Version":
        m = _VERSION.match(text.strip())
        if not m:
            raise VersionError(f"{text!r} is not a Kubernetes version (expected vMAJOR.MINOR.PATCH, e.g. v1.34.4)")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or "")

    @property
    def minor_line(self) -> tuple[int, int]:
        return self.major, self.minor

    def minors_above(self, other: "Version") -> int:
        """How many minors self is newer than other (negative if older); majors must agree."""
        if self.major != other.major:
            raise VersionError(f"cannot compare minors across majors: {self} vs {other}")
        return self.minor - other.minor

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


def version_of_image(image: str) -> Version | None:
    """The version in an image tag: registry.k8s.io/kube-apiserver:v1.34.4 -> v1.34.4 (None if untagged/odd)."""
    ref = image.split("@", 1)[0]
    if ":" not in ref.rsplit("/", 1)[-1]:
        return None
    try:
        return Version.parse(ref.rsplit(":", 1)[1])
    except VersionError:
        return None


# --- upgrade path (what kubeadm upgrade apply would refuse) -------------------------------------

def upgrade_path_problems(current: Version, target: Version, kubeadm: Version | None = None,
                          allow_unstable: bool = False) -> list[str]:
    """The mandatory reasons kubeadm would refuse `kubeadm upgrade apply target` on a cluster at `current`."""
    problems: list[str] = []
    if target.major != current.major:
        return [f"upgrade from {current} to {target} changes the major version; kubeadm only upgrades within a major"]
    jump = target.minors_above(current)
    if jump > MAX_UPGRADE_MINORS:
        skipped = ", ".join(f"v{current.major}.{m}" for m in range(current.minor + 1, target.minor))
        problems.append(
            f"Specified version to upgrade to {str(target)!r} is too high; kubeadm can upgrade only "
            f"{MAX_UPGRADE_MINORS} minor version at a time ({current} -> {target} skips {skipped}); "
            f"upgrade to v{current.major}.{current.minor + 1}.x first")
    if jump < -MAX_UPGRADE_MINORS:
        problems.append(f"Specified version to downgrade to {str(target)!r} is too low; kubeadm can downgrade only "
                        f"{MAX_UPGRADE_MINORS} minor version at a time (cluster is at {current})")
    elif target < current:
        problems.append(f"{target} is older than the cluster version {current}: that is a downgrade, not an upgrade")
    elif target == current:
        problems.append(f"the cluster is already at {current}: nothing to upgrade")
    if kubeadm is not None and kubeadm < target and target.minor > kubeadm.minor:
        problems.append(f"Specified version to upgrade to {str(target)!r} is at least one minor release higher than the "
                        f"kubeadm minor release ({target.minor} > {kubeadm.minor}); place kubeadm {target} first")
    if target.pre and not allow_unstable:
        problems.append(f"{target} is an unstable (pre-release) version; kubeadm needs --allow-experimental-upgrades")
    return problems


def check_upgrade_path(current: Version | str, target: Version | str, kubeadm: Version | str | None = None) -> None:
    """Raise UpgradeRefused unless kubeadm would accept this upgrade (one minor at most, no downgrade)."""
    cur = current if isinstance(current, Version) else Version.parse(current)
    tgt = target if isinstance(target, Version) else Version.parse(target)
    kad = kubeadm if isinstance(kubeadm, Version) or kubeadm is None else Version.parse(kubeadm)
    problems = upgrade_path_problems(cur, tgt, kad)
    if problems:
        raise UpgradeRefused(problems)


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

class PlanParseError(ValueError):
    """`kubeadm upgrade plan` output lacks a part the rehearsal relies on; the message names it."""


@dataclass(frozen=True)
class PlanRow:
    component: str
    node: str  # "" where kubeadm prints none (addons, etcd in older formats)
    current: str
    target: str


@dataclass(frozen=True)
class UpgradePlan:
    """What `kubeadm upgrade plan [vX]` proposed, as printed (text output)."""

    cluster_version: Version | None
    kubeadm_version: Version | None
    target_version: Version | None  # from "kubeadm upgrade apply vX"
    description: str  # e.g. "version in the v1.34 series"
    manual: tuple[PlanRow, ...]  # "must be upgraded manually" (kubelets)
    automatic: tuple[PlanRow, ...]  # what `kubeadm upgrade apply` changes
    apply_command: str
    notes: tuple[str, ...] = ()  # "Note: Before you can perform this upgrade, you have to update kubeadm to ..."

    def to_dict(self) -> dict[str, object]:
        def rows(rs: tuple[PlanRow, ...]) -> list[dict[str, str]]:
            return [{"component": r.component, "node": r.node, "current": r.current, "target": r.target} for r in rs]

        return {"cluster_version": str(self.cluster_version or ""), "kubeadm_version": str(self.kubeadm_version or ""),
                "target_version": str(self.target_version or ""), "description": self.description,
                "apply_command": self.apply_command, "manual": rows(self.manual), "automatic": rows(self.automatic),
                "notes": list(self.notes)}


def _table(lines: list[str], start: int) -> tuple[list[PlanRow], int]:
    """Rows of a COMPONENT/NODE/CURRENT/TARGET table whose header is at lines[start]."""
    header = lines[start]
    cols = [header.index(h) for h in ("COMPONENT", "NODE", "CURRENT", "TARGET")]
    rows: list[PlanRow] = []
    i = start + 1
    while i < len(lines) and lines[i].strip():
        raw = lines[i]
        cells = [raw[cols[k]:(cols[k + 1] if k + 1 < len(cols) else None)].strip() for k in range(len(cols))]
        if len(raw.split()) >= 3 and not all(cells[1:]):
            cells = raw.split()  # tabwriter columns shifted by a long cell: fall back to whitespace split
        if len(cells) == 3:  # a row with no NODE column value
            cells = [cells[0], "", cells[1], cells[2]]
        if len(cells) != 4:
            raise PlanParseError(f"plan table row {i + 1} has {len(cells)} cells, expected 4: {raw!r}")
        rows.append(PlanRow(*cells))
        i += 1
    return rows, i


def parse_upgrade_plan(text: str) -> UpgradePlan:
    """Parse the text of `kubeadm upgrade plan` (kubeadm v1.28+ layout; checked on v1.34 output)."""
    lines = text.splitlines()

    def version_after(prefix: str) -> Version | None:
        for ln in lines:
            if prefix in ln:
                try:
                    return Version.parse(ln.split(prefix, 1)[1].strip().split()[0])
                except (VersionError, IndexError):
                    return None
        return None

    cluster = version_after("[upgrade/versions] Cluster version:")
    kubeadm = version_after("[upgrade/versions] kubeadm version:")
    manual: list[PlanRow] = []
    automatic: list[PlanRow] = []
    description = ""
    apply_cmd = ""
    notes: list[str] = []
    i = 0
    section = ""
    while i < len(lines):
        ln = lines[i]
        s = ln.strip()
        if s.startswith("Components that must be upgraded manually"):
            section = "manual"
        elif s.startswith("Upgrade to the latest") and s.endswith(":"):
            section, description = "automatic", s[len("Upgrade to the latest "):-1]
        elif s.startswith("COMPONENT") and "TARGET" in s and "NODE" in s:
            rows, i = _table(lines, i)
            (manual if section == "manual" else automatic).extend(rows)
            continue
        elif s.startswith("kubeadm upgrade apply "):
            apply_cmd = s
        elif s.startswith("Note:"):
            notes.append(s)
        i += 1
    if not apply_cmd:
        raise PlanParseError("no 'kubeadm upgrade apply vX' line in the plan output: kubeadm found no upgrade to "
                             "propose (already at the target?) or failed; output tail:\n" + "\n".join(lines[-15:]))
    if not automatic:
        raise PlanParseError("no control-plane component table (COMPONENT NODE CURRENT TARGET after "
                             "'Upgrade to the latest ...') in the plan output")
    try:
        target: Version | None = Version.parse(apply_cmd.split()[3])
    except (VersionError, IndexError):
        target = None
    return UpgradePlan(cluster, kubeadm, target, description, tuple(manual), tuple(automatic), apply_cmd, tuple(notes))


def plan_problems(plan: UpgradePlan, current: Version, target: Version, nodes: Iterable[str]) -> list[str]:
    """How the plan differs from what the rehearsal intends (empty when it proposes exactly that)."""
    problems: list[str] = []
    if plan.target_version != target:
        problems.append(f"kubeadm proposes '{plan.apply_command}', the rehearsal wants {target}")
    if plan.cluster_version is not None and plan.cluster_version != current:
        problems.append(f"kubeadm sees the cluster at {plan.cluster_version}, expected {current}")
    if plan.notes:
        problems.extend(plan.notes)
    for r in plan.automatic:
        if r.component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy") \
                and r.target != str(target):
            problems.append(f"plan would take {r.component} to {r.target}, not {target}")
    planned_kubelets = {r.node for r in plan.manual if r.component == "kubelet"}
    missing = [n for n in nodes if n not in planned_kubelets]
    if missing:
        problems.append(f"plan lists no kubelet upgrade for {', '.join(missing)}")
    return problems
