"""Kubernetes versions, kubeadm's upgrade plan, and kubeadm's upgrade-path rules, as plain data.

Why these sit with the records: the upgrade step must refuse what kubeadm would refuse before it
touches a node, and the skew checker must read the same versions; both need these facts and
neither may import the other. The rules are kubeadm's own (cmd/kubeadm/app/phases/upgrade/policy.go,
`EnforceVersionPolicies`): one minor at a time, never above kubeadm's own minor, no downgrade of
more than one minor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

MAX_UPGRADE_MINORS = 1  # kubeadm: MaximumAllowedMinorVersionUpgradeSkew

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
