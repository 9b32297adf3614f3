"""Preflight: what a minor upgrade would refuse, and which workloads a drain or a shutdown would hurt. Pure.

The record types the preflight stage fills in live here too (`ObjectRef`, `Manifest`, `DryRunResult`),
so this module needs nothing but kubedrill.check.verdict and the standard library: kubedrill.preflight
reads manifests and asks real API servers, this module only judges what they answered.

Three kinds of findings, each an actionable `Finding` that becomes a Verdict:

- **The API server of the target version refused or warned** (`api-removed`, `api-refused`,
  `api-warning`). Judged from server-side dry-run answers, never from a table of removed APIs: the
  target server is the authority. The same objects sent to the *current* version are the control:
  refused by both means the manifest is already broken (`manifest-error`), refused only by the target
  is what the upgrade breaks (`upgrade-risk`).
- **Drain safety** from the objects, by the eviction API's own arithmetic
  (pkg/registry/core/pod/storage/eviction.go, pkg/controller/disruption): a PDB blocks every eviction
  when `maxUnavailable` scales to 0 or `minAvailable` scales to at least the expected pod count;
  percentages are scaled with rounding *up* (`GetScaledValueFromIntOrPercent(..., roundUp=true)`), so
  `minAvailable: 50%` of one replica is 1. A pod covered by two PDBs cannot be evicted at all (the
  API answers 500 "more than one PodDisruptionBudget"). A pod without a controller stops
  `kubectl drain` unless `--force`, and is then gone for good. One replica and no PDB: the drain
  takes the only pod away until it is rescheduled.
- **Shutdown safety**: a preStop hook runs inside the grace period, so a preStop that sleeps as long
  as `terminationGracePeriodSeconds` leaves the application no time after SIGTERM (the kubelet then
  sends SIGKILL after a 2 s extension). A pod behind a Service without preStop keeps receiving new
  connections after SIGTERM until every proxy removed its endpoint (the endpoint removal race); one
  without a readiness probe receives traffic before it can serve.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from kubedrill.check.verdict import Figure, Status, Verdict

# --- records -----------------------------------------------------------------------------------------

ERROR, WARNING, UNKNOWN = "error", "warning", "unknown"
SEVERITIES = (ERROR, WARNING, UNKNOWN)

# Finding ids (the `check` of a Finding); the labelled set's expected-findings file uses these.
API_REMOVED = "api-removed"  # the target does not serve this apiVersion/kind
API_REFUSED = "api-refused"  # served, but the target refuses the object
API_WARNING = "api-warning"  # accepted with warnings (deprecations, ignored fields)
API_UNCHECKED = "api-unchecked"  # the server could not be asked (timeout, connection)
PDB_BLOCKS = "pdb-blocks-eviction"
PDB_SELECTS_NOTHING = "pdb-selects-nothing"
PDB_OVERLAP = "pdb-overlap"
SINGLE_REPLICA = "single-replica-no-pdb"
BARE_POD = "bare-pod"
PRESTOP_GRACE = "prestop-exceeds-grace"
NO_PRESTOP = "no-prestop-behind-service"
NO_READINESS = "no-readiness-behind-service"
SKEW = "version-skew"
API_CHECKS = (API_REMOVED, API_REFUSED, API_WARNING)
DRAIN_CHECKS = (PDB_BLOCKS, PDB_SELECTS_NOTHING, PDB_OVERLAP, SINGLE_REPLICA, BARE_POD)
SHUTDOWN_CHECKS = (PRESTOP_GRACE, NO_PRESTOP, NO_READINESS)
ALL_CHECKS = (*API_CHECKS, API_UNCHECKED, *DRAIN_CHECKS, *SHUTDOWN_CHECKS, SKEW)

# Categories of an API finding: what the control run says about it.
UPGRADE_RISK = "upgrade-risk"  # the current version accepts it, the target does not
MANIFEST_ERROR = "manifest-error"  # both refuse it: broken already, not by the upgrade
NO_CONTROL = "no-control"  # no current version was asked


@dataclass(frozen=True)
class ObjectRef:
    """One object and where it came from: a file and 1-based line, or `cluster` for a live object."""

    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects (and before the server said which it is)
    name: str
    file: str
    line: int = 0

    @property
    def group(self) -> str:
        return self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.rsplit("/", 1)[-1]

    @property
    def key(self) -> str:
        """`Kind/namespace/name` (namespace empty for cluster-scoped): the id the labelled set uses."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name} ({self.api_version}, {self.where})"


@dataclass(frozen=True)
class Manifest:
    """A parsed object with its reference; `obj` is the plain dict as read (never modified)."""

    ref: ObjectRef
    obj: Mapping[str, Any]


@dataclass(frozen=True)
class DryRunResult:
    """What one API server answered to a server-side dry-run of one object."""

    ref: ObjectRef
    server_version: str
    outcome: str  # "accepted" | "refused" | "error" (not asked / no answer)
    reason: str = ""  # the server's message (refused), or why it could not be asked (error)
    warnings: tuple[str, ...] = ()
    code: int = 0  # HTTP status; 0 when no request was sent
    not_served: bool = False  # the server serves no such apiVersion/kind
    served_as: tuple[str, ...] = ()  # apiVersions under which this server serves the same kind

    def __post_init__(self) -> None:
        if self.outcome not in ("accepted", "refused", "error"):
            raise ValueError(f"outcome must be accepted, refused or error, got {self.outcome!r}")


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    ref: ObjectRef
    reason: str
    category: str = ""
    related: tuple[str, ...] = ()  # names of the other objects involved (PDBs, Services, workloads)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "object": self.ref.key,
                "api_version": self.ref.api_version, "file": self.ref.file, "line": self.ref.line,
                "reason": self.reason, "category": self.category, "related": list(self.related)}

    def verdict(self, fail_on: str = ERROR) -> Verdict:
        """FAIL for errors (and warnings when fail_on='warning'), UNKNOWN when unchecked, else PASS.

        A passing verdict still says WARNING in its reason: it is reported, it just does not gate.
        """
        status = Status.PASS
        if self.severity == UNKNOWN:
            status = Status.UNKNOWN
        elif self.severity == ERROR or (fail_on == WARNING and self.severity == WARNING):
            status = Status.FAIL
        cat = f" [{self.category}]" if self.category else ""
        return Verdict(f"preflight/{self.check}", status, f"{self.severity.upper()}{cat}: {self.ref}: {self.reason}")


# --- API answers -------------------------------------------------------------------------------------

def _served_hint(r: DryRunResult) -> str:
    if r.served_as:
        return (f"; {r.server_version} serves {r.ref.kind} as {', '.join(r.served_as)}: change apiVersion "
                f"(and migrate the fields that differ)")
    return (f"; {r.server_version} serves no version of kind {r.ref.kind} at all: the kind was removed, "
            "delete the object or replace it with what superseded it")


def dryrun_findings(target: Sequence[DryRunResult], control: Sequence[DryRunResult] | None = None) -> list[Finding]:
    """Findings from the target server's answers; `control` (the current version, same objects) says
    whether a refusal is caused by the upgrade. Results are matched by object (ref)."""
    by_ref = {c.ref: c for c in control or ()}
    out: list[Finding] = []
    for r in target:
        c = by_ref.get(r.ref) if control is not None else None
        if r.outcome == "error":
            out.append(Finding(API_UNCHECKED, UNKNOWN, r.ref, f"{r.server_version} could not be asked: {r.reason}"))
            continue
        if r.outcome == "accepted":
            if r.warnings:
                old = set(c.warnings) if c is not None else set()
                new = [w for w in r.warnings if w not in old]
                tag = (f"new in {r.server_version}" if c is not None and new == list(r.warnings)
                       else f"also on {c.server_version}" if c is not None and not new else "")
                out.append(Finding(API_WARNING, WARNING, r.ref,
                                   f"{r.server_version} accepts it with {len(r.warnings)} warning(s)"
                                   + (f" ({tag})" if tag else "") + ": " + " | ".join(r.warnings)
                                   + ". Fix them before they become refusals in a later release",
                                   category="deprecation"))
            continue
        check = API_REMOVED if r.not_served else API_REFUSED
        why = f"{r.server_version} refuses it: {r.reason}" + (_served_hint(r) if r.not_served else "")
        if c is None:
            out.append(Finding(check, ERROR, r.ref, why, NO_CONTROL))
        elif c.outcome == "accepted":
            out.append(Finding(check, ERROR, r.ref, f"{why}. The current version {c.server_version} accepts it: "
                                                    "the upgrade breaks applying this object", UPGRADE_RISK))
        elif c.outcome == "refused":
            out.append(Finding(check, ERROR, r.ref, f"{why}. The current version {c.server_version} refuses it too "
                                                    f"({c.reason}): the manifest is broken already, not by the "
                                                    "upgrade; fix it", MANIFEST_ERROR))
        else:
            out.append(Finding(check, ERROR, r.ref, f"{why}. The current version {c.server_version} could not be "
                                                    f"asked ({c.reason})", NO_CONTROL))
    return out


# --- objects: pod templates, selectors ---------------------------------------------------------------

CONTROLLERS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")
TEMPLATED = (*CONTROLLERS, "DaemonSet", "Job")
DEFAULT_GRACE_S = 30


@dataclass(frozen=True)
class PodTemplate:
    """The pod part of a workload object (or a Pod itself)."""

    manifest: Manifest
    namespace: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    replicas: int | None  # None: not a scalable controller (Pod, DaemonSet, Job, CronJob)

    @property
    def ref(self) -> ObjectRef:
        return self.manifest.ref


def _d(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _ns(m: Manifest) -> str:
    return m.ref.namespace or str(_d(m.obj.get("metadata")).get("namespace") or "default")


def pod_template(m: Manifest) -> PodTemplate | None:
    obj, kind = m.obj, m.ref.kind
    spec = _d(obj.get("spec"))
    if kind == "Pod":
        return PodTemplate(m, _ns(m), dict(_d(_d(obj.get("metadata")).get("labels"))), spec, None)
    if kind == "CronJob":
        spec = _d(_d(spec.get("jobTemplate")).get("spec"))
    elif kind not in TEMPLATED:
        return None
    tpl = _d(spec.get("template"))
    replicas: int | None = None
    if kind in CONTROLLERS:
        raw = spec.get("replicas", 1)
        replicas = raw if isinstance(raw, int) and not isinstance(raw, bool) else 1
    return PodTemplate(m, _ns(m), dict(_d(_d(tpl.get("metadata")).get("labels"))), _d(tpl.get("spec")), replicas)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector against labels. None (no selector) matches nothing; {} matches everything."""
    if selector is None:
        return False
    for k, v in _d(selector.get("matchLabels")).items():
        if labels.get(k) != str(v):
            return False
    for e in selector.get("matchExpressions") or []:
        e = _d(e)
        key, op, values = str(e.get("key", "")), e.get("operator"), [str(v) for v in e.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def service_selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Service's map selector; empty or absent selects nothing (endpoints are managed by hand)."""
    if not selector:
        return False
    return all(labels.get(k) == str(v) for k, v in selector.items())


def scaled(value: Any, expected: int) -> int | None:
    """intstr scaled the way the disruption controller does (percentages round up); None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)%\s*", value)
        if m:
            return math.ceil(int(m.group(1)) * expected / 100)
        if value.strip().isdigit():
            return int(value)
    return None


def _by_kind(manifests: Iterable[Manifest], *kinds: str) -> list[Manifest]:
    return [m for m in manifests if m.ref.kind in kinds]


def _hpa_min(manifests: Sequence[Manifest], tpl: PodTemplate) -> int | None:
    """minReplicas of an HPA scaling this workload (the count a drain at low traffic meets)."""
    for h in _by_kind(manifests, "HorizontalPodAutoscaler"):
        if _ns(h) != tpl.namespace:
            continue
        spec = _d(h.obj.get("spec"))
        tgt = _d(spec.get("scaleTargetRef"))
        if tgt.get("kind") == tpl.ref.kind and tgt.get("name") == tpl.ref.name:
            mn = spec.get("minReplicas", 1)
            return mn if isinstance(mn, int) else 1
    return None


# --- drain safety ------------------------------------------------------------------------------------

def drain_findings(manifests: Sequence[Manifest]) -> list[Finding]:
    """PDBs that block every eviction or select nothing, pods under two PDBs, one-replica workloads
    without a PDB, pods without a controller."""
    out: list[Finding] = []
    templates = [t for t in (pod_template(m) for m in manifests) if t is not None]
    pdbs = _by_kind(manifests, "PodDisruptionBudget")
    covered: dict[ObjectRef, list[Manifest]] = {}
    for pdb in pdbs:
        spec = _d(pdb.obj.get("spec"))
        ns = _ns(pdb)
        sel = spec.get("selector")
        matched = [t for t in templates if t.namespace == ns and t.ref.kind not in ("DaemonSet", "Job", "CronJob")
                   and selector_matches(_d(sel) if sel is not None else None, t.labels)]
        for t in matched:
            covered.setdefault(t.ref, []).append(pdb)
        if not matched:
            out.append(Finding(PDB_SELECTS_NOTHING, WARNING, pdb.ref,
                               f"its selector {dict(_d(sel)) if sel is not None else 'null'} matches no pod template "
                               f"in namespace {ns} among the inputs: it protects nothing (a typo in the labels?). "
                               "Fix the selector, or delete it if the workload is gone"))
            continue
        expected = 0
        parts = []
        for t in matched:
            n = t.replicas if t.replicas is not None else 1
            hpa = _hpa_min(manifests, t)
            if hpa is not None:
                n = hpa
            expected += n
            parts.append(f"{t.ref.kind} {t.ref.name}: {n}" + (" (HPA minReplicas)" if hpa is not None else ""))
        who = ", ".join(parts)
        if "maxUnavailable" in spec:
            mu = scaled(spec["maxUnavailable"], expected)
            if mu is not None and mu <= 0:
                out.append(Finding(PDB_BLOCKS, ERROR, pdb.ref,
                                   f"maxUnavailable {spec['maxUnavailable']!r} allows 0 disruptions, so every "
                                   f"eviction of its {expected} pod(s) ({who}) is refused and `kubectl drain` of "
                                   "their nodes never finishes. Use maxUnavailable: 1 (or more replicas and a "
                                   "minAvailable below the count)", related=tuple(t.ref.name for t in matched)))
        elif "minAvailable" in spec:
            ma = scaled(spec["minAvailable"], expected)
            if ma is not None and expected > 0 and ma >= expected:
                pct = " (percentages round up)" if isinstance(spec["minAvailable"], str) else ""
                out.append(Finding(PDB_BLOCKS, ERROR, pdb.ref,
                                   f"minAvailable {spec['minAvailable']!r} = {ma}{pct} of {expected} expected pod(s) "
                                   f"({who}) allows 0 disruptions: every eviction is refused and `kubectl drain` of "
                                   f"their nodes never finishes. Set minAvailable to at most {expected - 1}, "
                                   f"or run at least {ma + 1} replicas", related=tuple(t.ref.name for t in matched)))
    for t in templates:
        if t.ref.kind in ("DaemonSet", "Job", "CronJob"):
            continue
        own = covered.get(t.ref, [])
        if len(own) > 1:
            names = tuple(p.ref.name for p in own)
            out.append(Finding(PDB_OVERLAP, ERROR, t.ref,
                               f"its pods are selected by {len(own)} PodDisruptionBudgets ({', '.join(names)}): the "
                               "eviction API refuses to evict a pod with more than one PDB, so drains block. "
                               "Keep one PDB per pod", related=names))
        if t.ref.kind == "Pod":
            if not _d(t.manifest.obj.get("metadata")).get("ownerReferences"):
                out.append(Finding(BARE_POD, ERROR, t.ref,
                                   "a Pod with no controller: `kubectl drain` stops on it (\"cannot delete Pods that "
                                   "declare no controller\"), and with --force it is deleted and never recreated. "
                                   "Run it under a Deployment, StatefulSet or Job"))
            continue
        count = t.replicas
        hpa = _hpa_min(manifests, t)
        if hpa is not None:
            count = hpa
        if count == 1 and not own:
            out.append(Finding(SINGLE_REPLICA, WARNING, t.ref,
                               ("HPA minReplicas 1" if hpa is not None else "1 replica") + " and no "
                               "PodDisruptionBudget: a drain of its node evicts the only pod, and the workload is "
                               "down until the replacement is scheduled and ready. Run 2+ replicas spread over "
                               "nodes with a PDB (maxUnavailable: 1), or accept the downtime explicitly"))
    return out


# --- shutdown safety ---------------------------------------------------------------------------------

_SLEEP = re.compile(r"(?:^|[\s;&|(])sleep\s+(\d+(?:\.\d+)?)([smh]?)(?=$|[\s;&|)])")


def prestop_sleep_s(prestop: Mapping[str, Any]) -> float | None:
    """Seconds a preStop hook sleeps: the `sleep` action, or `sleep N` in an exec command (summed).
    None when its duration cannot be read (httpGet, a program of its own)."""
    if "sleep" in prestop:
        s = _d(prestop["sleep"]).get("seconds")
        return float(s) if isinstance(s, (int, float)) else None
    cmd = _d(prestop.get("exec")).get("command")
    if not isinstance(cmd, list):
        return None
    text = " ".join(str(c) for c in cmd)
    total, found = 0.0, False
    for num, unit in _SLEEP.findall(text):
        total += float(num) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]
        found = True
    return total if found else None


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_d(c) for c in spec.get("containers") or []]


def _port_names_numbers(c: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for p in c.get("ports") or []:
        p = _d(p)
        if "containerPort" in p:
            out.add(str(p["containerPort"]))
        if p.get("name"):
            out.add(str(p["name"]))
    return out


def _serving(containers: list[Mapping[str, Any]], services: list[Manifest]) -> list[Mapping[str, Any]]:
    """The containers a Service's targetPort points at; all of them when no port resolves."""
    wanted: set[str] = set()
    for s in services:
        for p in _d(s.obj.get("spec")).get("ports") or []:
            p = _d(p)
            tp = p.get("targetPort", p.get("port"))
            if tp is not None:
                wanted.add(str(tp))
    hit = [c for c in containers if _port_names_numbers(c) & wanted]
    return hit or containers


def shutdown_findings(manifests: Sequence[Manifest]) -> list[Finding]:
    out: list[Finding] = []
    services = [s for s in _by_kind(manifests, "Service") if _d(s.obj.get("spec")).get("type") != "ExternalName"]
    for t in (pod_template(m) for m in manifests):
        if t is None:
            continue
        raw_grace = t.spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
        grace = raw_grace if isinstance(raw_grace, (int, float)) and not isinstance(raw_grace, bool) else DEFAULT_GRACE_S
        containers = _containers(t.spec)
        for c in containers:
            pre = _d(_d(c.get("lifecycle")).get("preStop"))
            if not pre:
                continue
            s = prestop_sleep_s(pre)
            if s is not None and s >= grace:
                out.append(Finding(PRESTOP_GRACE, ERROR, t.ref,
                                   f"container {c.get('name')!r}: preStop sleeps {s:g} s but "
                                   f"terminationGracePeriodSeconds is {grace:g}"
                                   + (" (the default)" if "terminationGracePeriodSeconds" not in t.spec else "")
                                   + ": the grace period runs out before SIGTERM even reaches the application, so "
                                   "it is killed (SIGKILL) mid-request. Make the grace period longer than the "
                                   "preStop sleep plus the application's own drain time"))
        behind = [s for s in services if _ns(s) == t.namespace
                  and service_selects(_d(_d(s.obj.get("spec")).get("selector")), t.labels)]
        if not behind or t.ref.kind in ("Job", "CronJob"):
            continue
        names = tuple(s.ref.name for s in behind)
        serving = _serving(containers, behind)
        if not any(_d(_d(c.get("lifecycle")).get("preStop")) for c in serving):
            out.append(Finding(NO_PRESTOP, WARNING, t.ref,
                               f"behind Service {', '.join(names)} with no preStop hook: on SIGTERM the pod stops "
                               "serving while kube-proxy and load balancers still route new connections to it "
                               "(the endpoint removal race), so requests fail during every drain and rollout. Add a "
                               "preStop sleep of a few seconds (shorter than the grace period)", related=names))
        if not any(c.get("readinessProbe") for c in serving):
            out.append(Finding(NO_READINESS, WARNING, t.ref,
                               f"behind Service {', '.join(names)} with no readiness probe: a new pod gets traffic "
                               "as soon as its process starts, before it can serve, so every rescheduled pod "
                               "after a drain fails its first requests. Add a readinessProbe", related=names))
    return out


# --- verdicts and scoring ----------------------------------------------------------------------------

def verdicts(findings: Sequence[Finding], fail_on: str = ERROR) -> list[Verdict]:
    return [f.verdict(fail_on) for f in findings]


def summary_verdict(check: str, findings: Sequence[Finding], checked: int, what: str,
                    fail_on: str = ERROR) -> Verdict:
    """One verdict over a check family: FAIL with the count and the first few reasons, or PASS."""
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    stem = re.sub(r"[^A-Za-z0-9.]+", "_", check.removeprefix("preflight/")).strip("_")
    figures = [Figure(f"{stem}_checked", checked, "objects", what),
               Figure(f"{stem}_errors", counts[ERROR], "findings"),
               Figure(f"{stem}_warnings", counts[WARNING], "findings")]
    gating = [f for f in findings if f.severity == ERROR or (fail_on == WARNING and f.severity == WARNING)]
    if gating:
        first = "; ".join(f"{f.ref.kind} {f.ref.name} ({f.ref.where}): {f.check}" for f in gating[:5])
        return Verdict.fail(check, f"{len(gating)} of {checked} {what} would break or block: {first}"
                                   + (" ..." if len(gating) > 5 else ""), figures)
    if counts[UNKNOWN]:
        return Verdict.unknown(check, f"{counts[UNKNOWN]} of {checked} {what} could not be checked: "
                                      + "; ".join(f.reason for f in findings if f.severity == UNKNOWN)[:500], figures)
    if checked == 0:
        return Verdict.unknown(check, f"no {what} to check", figures)
    return Verdict.ok(check, f"{checked} {what} checked: no blocking finding"
                             + (f", {counts[WARNING]} warning(s)" if counts[WARNING] else ""), figures)


@dataclass(frozen=True)
class Score:
    """Recall and false positives of one tool against the labelled set (by object and finding id)."""

    expected: int
    found: int
    missed: tuple[str, ...]
    false_positives: tuple[str, ...]  # findings on objects/ids the labels do not expect
    clean_objects: int = 0
    clean_flagged: int = 0  # clean objects with any finding

    @property
    def recall(self) -> float:
        return (self.expected - len(self.missed)) / self.expected if self.expected else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "found": self.expected - len(self.missed), "recall": round(self.recall, 4),
                "missed": list(self.missed), "false_positives": list(self.false_positives),
                "clean_objects": self.clean_objects, "clean_flagged": self.clean_flagged}


def score(expected: Mapping[str, Iterable[str]], found: Iterable[tuple[str, str]],
          only_checks: Iterable[str] | None = None) -> Score:
    """`expected`: object key -> finding ids (empty for a clean object); `found`: (object key, id) pairs.

    `only_checks` restricts both sides to the ids a tool can report at all (table-based tools only know
    removed APIs), so a tool is scored on its own ground and, separately, on everything.
    """
    keep = set(only_checks) if only_checks is not None else None
    exp = {(k, c) for k, cs in expected.items() for c in cs if keep is None or c in keep}
    got = {(k, c) for k, c in found if keep is None or c in keep}
    missed = tuple(sorted(f"{k}: {c}" for k, c in exp - got))
    fps = tuple(sorted(f"{k}: {c}" for k, c in got - exp))
    clean = [k for k, cs in expected.items() if not list(cs)]
    flagged = {k for k, _ in got}
    return Score(len(exp), len(got & exp), missed, fps, len(clean), sum(1 for k in clean if k in flagged))


def expected_for(doc: Mapping[str, Any], target: str) -> dict[str, list[str]]:
    """The labelled set's expected findings for one target: object key -> finding ids.

    `doc` is the parsed expected-findings file ({"objects": {key: [id | {check, targets}]}}); an entry
    with `targets` holds only for those versions.
    """
    out: dict[str, list[str]] = {}
    for key, items in (doc.get("objects") or {}).items():
        ids: list[str] = []
        for it in items or []:
            if isinstance(it, str):
                ids.append(it)
            elif isinstance(it, Mapping) and (not it.get("targets") or target in it["targets"]):
                ids.append(str(it["check"]))
        unknown = [i for i in ids if i not in ALL_CHECKS]
        if unknown:
            raise ValueError(f"{key}: unknown finding id(s) {unknown}; known: {', '.join(ALL_CHECKS)}")
        out[str(key)] = ids
    return out
