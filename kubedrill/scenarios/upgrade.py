"""The kubeadm upgrade rehearsal: a node-by-node upgrade under load, recorded, then judged.

    record = run_upgrade_rehearsal(cluster, target, [sample_app, nginx], settings)
    verdicts = judge(record)

Order of events: refuse an impossible upgrade or load plan (before anything is touched) ->
checksum ConfigMaps in a namespace of their own -> start the version sampler and one load per
workload -> stage the target's images on every node -> for each node: snapshot, upgrade it
(`UpgradeNode`: drain ... uncordon), wait for the expected state, snapshot, judge the node's
window -> stop at the first node whose checks fail (a real operator halts a rollout there) ->
final snapshot, read the ConfigMaps back, stop the loads.

An upgrade is one event for every workload on the cluster, so all the workloads (Deployments,
StatefulSets, DaemonSets) ride through the same rollout, each with its own load on its own
host-mapped NodePort and its own verdicts: availability, failed requests and workload-intact per
node step, availability and failed requests over the whole upgrade, replicas at the end. Their
check names carry the workload's id (`workload_check("availability", "kd-sample")` ->
`availability kd-sample`), so a report says which workload the upgrade hurt.

The rollout judges each node while it runs, because halting is part of the procedure; `judge`
then turns the whole record into the verdicts a suite asserts (plan, each step, skew, nodes out,
availability, end state). The suite, its meta-tests and the benchmark share both, so a broken
upgrade is caught by exactly the checks the suite runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from kubedrill.check import rollout as R
from kubedrill.check.availability import availability
from kubedrill.check.skew import Observed, skew_verdict
from kubedrill.check.verdict import Figure, Verdict, combine
from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.cluster.progress import say
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.disrupt.base import DisruptionError
from kubedrill.disrupt.upgrade import Order, Release, ReleaseMissing, Role, Rollout, Step, kubelet_apiservers
from kubedrill.load import LoadRunner
from kubedrill.load.requestlog import read_request_logs
from kubedrill.observe.cluster import Observer, Sampler
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record import series as S
from kubedrill.record.cluster import Snapshot, WorkloadState
from kubedrill.record.maintenance import Phase
from kubedrill.record.versions import UpgradePlan, Version, plan_problems
from kubedrill.workload import apply
from kubedrill.workload.deploy import Deployed
from kubedrill.workload.sample import sample_workload
from kubedrill.workload.spec import WorkloadSpec
from kubedrill.workload.thirdparty import thirdparty_workload

DATA_PREFIX = "kd-upgrade-data-"


@dataclass(frozen=True)
class Settings:
    source: str
    target: str
    order: Order = "control-plane-first"
    slo: float = 0.999
    max_failed_requests: int = 0
    min_rate: float = 5.0  # req/s each workload's load must reach before a window (availability)
    users: int = 5  # locust users per workload
    # req/s in total, split evenly over the workloads: enough to see a 0.1 s outage, light on 2 shared cores
    rate: float = 25.0
    baseline_s: float = 12.0  # load before the first step (availability wants 10 s before a window)
    after_s: float = 5.0  # judged after each node's window too
    settle_timeout_s: float = 300.0
    configmaps: int = 20
    max_run_s: float = 3600.0


def step_check(node: str) -> str:
    """The check name of one node's combined verdict (what a report lists per node)."""
    return f"node {node}"


def workload_check(check: str, workload: str) -> str:
    """The name of a check judged per workload, e.g. `availability kd-sample` (`workload` is its id)."""
    return f"{check} {workload}"


def _for_workload(v: Verdict, workload: str) -> Verdict:
    return dataclasses.replace(v, check=workload_check(v.check, workload))


def default_workloads(sample_image: str) -> list[WorkloadSpec]:
    """What the rehearsal keeps available when the run names no workload: the graceful sample app
    (3 replicas, PDB) and nginx from a Debian package, configured to shut down gracefully
    (apps/thirdparty nginx-correct). Why two, one not ours: every run then proves that the
    rehearsal loads and judges several workloads at once, and a server that was not written for it."""
    return [sample_workload("graceful", replicas=3, image=sample_image), thirdparty_workload("nginx-correct")]


@dataclass
class WorkloadRun:
    """One workload kept available through the upgrade: where its load went, the requests that
    load recorded, and the workload's state at the end. `id` names its checks."""

    id: str
    kind: str
    namespace: str
    name: str
    host_port: int = 0
    path: str = "/"
    rate: float = 0.0
    operations: list[Operation] = field(default_factory=list)
    final: WorkloadState | None = None

    @property
    def http(self) -> list[Operation]:
        """Its load's requests, in the order recorded."""
        return [o for o in self.operations if o.kind.startswith("http")]


@dataclass
class NodeRecord:
    node: str
    role: Role
    kubeadm_step: Step
    window: Window | None = None
    phases: list[Phase] = field(default_factory=list)
    before: Snapshot | None = None
    after: Snapshot | None = None
    # each workload's state (by id) read before the step and after the cluster settled
    workloads_before: dict[str, WorkloadState] = field(default_factory=dict)
    workloads_after: dict[str, WorkloadState] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    error: str = ""
    kubeadm_output: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.verdicts) and all(v.passed for v in self.verdicts)

    def verdict(self) -> Verdict:
        v = combine(step_check(self.node), self.verdicts)
        if self.error:
            return Verdict.fail(step_check(self.node), f"the step failed: {self.error}", v.figures)
        return v


@dataclass
class RehearsalRecord:
    settings: Settings
    cluster: str
    recorder: Recorder
    # What the rollout should do, read from the cluster before it starts (judge() needs no cluster).
    all_nodes: list[str] = field(default_factory=list)
    control_planes: list[str] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)
    expectation: R.Expectation | None = None
    from_version_seen: str = ""
    plan: UpgradePlan | None = None
    plan_text: str = ""
    staged: dict[str, list[str]] = field(default_factory=dict)
    stage_window: Window | None = None
    nodes: list[NodeRecord] = field(default_factory=list)
    samples: list[Snapshot] = field(default_factory=list)
    checkpoints: list[Snapshot] = field(default_factory=list)
    workloads: list[WorkloadRun] = field(default_factory=list)
    data_namespace: str = ""
    data_before: dict[str, str] = field(default_factory=dict)
    data_after: dict[str, str | None] = field(default_factory=dict)
    final: Snapshot | None = None
    # (when read, node -> node whose API server its kubelet uses), read before and after each step
    kubelet_apiservers: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    halted: str = ""
    started: float = 0.0
    finished: float = 0.0

    def observed(self, snap: Snapshot) -> Observed:
        """The skew checker's view of a snapshot, with the kubelet -> API server map read last before it."""
        maps = [m for at, m in self.kubelet_apiservers if at <= snap.at] or [m for _, m in self.kubelet_apiservers[:1]]
        return R.to_observed(snap, maps[-1] if maps else None)

    @property
    def upgrade_window(self) -> Window | None:
        """From staging the images to the last node's uncordon."""
        windows = [n.window for n in self.nodes if n.window is not None]
        if not windows:
            return None
        start = self.stage_window.start if self.stage_window else windows[0].start
        return Window(start, max(w.end for w in windows))

    @property
    def seconds(self) -> float:
        """Preflight to final checks (cluster creation and the workload's deploy excluded)."""
        return self.finished - self.started

    @property
    def halt_note(self) -> str:
        return f" (rollout {self.halted})" if self.halted else ""

    def dump(self, where: Path) -> None:
        """The raw record in folder `where`: snapshots, phases, the kubeadm plan and outputs (for diagnosis)."""
        where.mkdir(parents=True, exist_ok=True)
        (where / "kubeadm-upgrade-plan.txt").write_text(self.plan_text)
        for n in self.nodes:
            (where / f"kubeadm-{n.node}.log").write_text(n.kubeadm_output or n.error)
        doc = {
            "cluster": self.cluster, "halted": self.halted, "seconds": round(self.seconds, 1),
            "staged": self.staged, "plan": self.plan.to_dict() if self.plan else None,
            "kubelet_apiservers": [{"at": round(at, 1), "map": m} for at, m in self.kubelet_apiservers],
            "nodes": [{"node": n.node, "role": n.role, "kubeadm": n.kubeadm_step, "error": n.error,
                       "window_s": round(n.window.duration, 1) if n.window else None,
                       "phases": [{"name": p.name, "seconds": round(p.seconds, 1)} for p in n.phases],
                       "verdicts": [v.to_dict() for v in n.verdicts]} for n in self.nodes],
            "workloads": [{"id": w.id, "kind": w.kind, "namespace": w.namespace, "name": w.name,
                           "host_port": w.host_port, "path": w.path, "rate": round(w.rate, 2),
                           "requests": len(w.http), "failed": sum(o.outcome != "ok" for o in w.http),
                           "final": asdict(w.final) if w.final else None} for w in self.workloads],
            "data": {"namespace": self.data_namespace, "before": self.data_before, "after": self.data_after},
            "checkpoints": [s.to_dict() for s in self.checkpoints],
            "samples": [s.to_dict() for s in self.samples],
            # The events (phases, staging, disruption start/end) and each workload's failed requests;
            # the ~10k successful ones add megabytes and nothing a diagnosis needs.
            "events": [asdict(e) for e in self.recorder.events],
            "failed_requests": {w.id: [asdict(o) for o in w.http if o.outcome != "ok"] for w in self.workloads},
        }
        (where / "record.json").write_text(json.dumps(doc, indent=1, default=str))


# --- the target release ------------------------------------------------------------------------------

def prepare_release(version: str) -> Release:
    """The version's binaries and image tarballs from the offline cache, built first if missing (~20 min cold).

    Raises ReleaseMissing (or kubedrill.cluster.setup.SetupError) when the build does not produce them.
    """
    try:
        return Release.from_cache(version)
    except ReleaseMissing as exc:
        say(f"{exc}; building it now")
    from kubedrill.cluster import setup

    setup.build_node_image(version)
    return Release.from_cache(version)


# --- data written before the upgrade, read after ------------------------------------------------------

def write_checksummed_configmaps(cluster: Cluster, ns: str, count: int) -> dict[str, str]:
    """`count` ConfigMaps of random data in `ns`; returns name -> sha256 of what was written."""
    docs, sums = [], {}
    for i in range(count):
        payload = os.urandom(3 * 1024).hex()
        name = f"{DATA_PREFIX}{i:03d}"
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"payload": payload}})
        sums[name] = hashlib.sha256(payload.encode()).hexdigest()
    apply.apply_docs(cluster, docs, ns)
    return sums


def read_configmap_checksums(cluster: Cluster, ns: str) -> dict[str, str | None]:
    out = cluster.kubectl("get", "configmaps", "-n", ns, "-o", "json", timeout=60).stdout
    items = json.loads(out)["items"]
    return {i["metadata"]["name"]: hashlib.sha256(i.get("data", {}).get("payload", "").encode()).hexdigest()
            for i in items if i["metadata"]["name"].startswith(DATA_PREFIX)}


# --- judging one node, while the rollout runs ------------------------------------------------------------

def expectation(settings: Settings, target: Release) -> R.Expectation:
    return R.Expectation(settings.source, settings.target, etcd_target=target.image_tag("etcd"),
                         coredns_target=target.image_tag("coredns"))


def failed_requests(http: list[Operation], allowed: int, during: str, workload: str) -> Verdict:
    """FAIL when more than `allowed` of the workload's judged requests failed (the SLO ratio alone
    would forgive a few). Named `failed-requests <workload>`."""
    check = workload_check("failed-requests", workload)
    failed = [o for o in http if o.outcome != "ok"]
    figs = [Figure("failed_requests", len(failed), "requests", workload)]
    if len(failed) > allowed:
        return Verdict.fail(check, f"{len(failed)} request(s) failed {during} (allowed {allowed}); first: "
                                   f"{failed[0].detail or failed[0].outcome}", figs)
    return Verdict.ok(check, f"{len(failed)} of {len(http)} requests failed {during} (allowed {allowed})", figs)


def judge_node(rec: RehearsalRecord, nr: NodeRecord, upgraded: list[str], cp_upgraded: list[str]) -> list[Verdict]:
    """Every check of one node's step, from the record as it stands after that step: the step's
    effect and versions, then per workload (`workload <id>`, `availability <id>`,
    `failed-requests <id>`), then skew and nodes out."""
    s = rec.settings
    assert nr.before is not None and nr.after is not None and nr.window is not None and rec.expectation is not None
    verdicts = [
        R.step_took_effect(nr.node, nr.before, nr.after, s.target, control_plane=nr.role == "control-plane"),
        R.versions_verdict(nr.after, upgraded, rec.expectation, cp_upgraded),
    ]
    for w in rec.workloads:
        before, after = nr.workloads_before.get(w.id), nr.workloads_after.get(w.id)
        if before is None or after is None:
            verdicts.append(Verdict.unknown(workload_check("workload", w.id), f"{w.kind} {w.namespace}/{w.name} was "
                                            f"not read both before and after the upgrade of {nr.node}"))
        else:
            verdicts.append(_for_workload(R.workload_intact(before, after), w.id))
        http = w.http
        verdicts.append(_for_workload(availability(http, nr.window, slo=s.slo, min_rate_before=s.min_rate,
                                                   after_seconds=s.after_s, label=f"upgrade {nr.node}"), w.id))
        judged = [o for o in http if nr.window.start <= o.start <= nr.window.end + s.after_s]
        verdicts.append(failed_requests(judged, s.max_failed_requests, f"during the upgrade of {nr.node}", w.id))
    snaps = [x for x in rec.samples + rec.checkpoints if x.at <= nr.after.at]
    verdicts.append(skew_verdict([rec.observed(x) for x in snaps], required_labels=[nr.before.label, nr.after.label]))
    in_window = [x for x in rec.samples if nr.window.start <= x.at <= nr.window.end]
    verdicts.append(R.one_node_out_at_a_time([nr.before, *in_window, nr.after]))
    return verdicts


# --- the rehearsal ------------------------------------------------------------------------------------------

def load_port(cluster: Cluster, workload: Deployed) -> int:
    """The host port that reaches the workload's NodePort through the first control plane (the node
    kubeadm upgrades first: traffic through it also sees its kube-proxy being replaced)."""
    node_port = workload.node_port or workload.spec.node_port
    if node_port is None:
        raise ValueError(f"workload {workload.spec.name!r} has no NodePort Service: the rehearsal's load reaches it "
                         "through a node port mapped to 127.0.0.1 (kubedrill's kind configs map 30080-30082)")
    return cluster.host_port(node_port, cluster.control_planes[0])


def plan_loads(cluster: Cluster, workloads: Sequence[Deployed], settings: Settings) -> list[WorkloadRun]:
    """One load per workload, each on its own host-mapped NodePort at its share of `settings.rate`.

    Raises ValueError, before anything is touched, for what cannot be judged: no workload, two with
    the same id (their spec's name: the id names their checks), more workloads than node ports
    mapped to the host, a workload without a NodePort or sharing one, or a share of the rate below
    the rate the availability check needs before each window."""
    if not workloads:
        raise ValueError("the rehearsal needs at least one workload to keep available: it judges the upgrade by "
                         "whether their users noticed")
    ids = [w.spec.name for w in workloads]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"workloads {', '.join(twice)} are given more than once: each workload's id (its spec's name) "
                         "names its checks, so give each spec a name of its own")
    mapped = sorted(cluster.port_map)
    if len(workloads) > len(mapped):
        raise ValueError(f"{len(workloads)} workloads ({', '.join(ids)}), but cluster {cluster.name} maps "
                         f"{len(mapped)} node port(s) to 127.0.0.1 ({', '.join(map(str, mapped)) or 'none'}): each "
                         f"workload's load goes through a NodePort of its own, so rehearse at most {len(mapped)} "
                         "workloads at once (kubedrill's kind configs map 30080-30082)")
    ports = [w.node_port or w.spec.node_port for w in workloads]
    shared = sorted({p for p in ports if p is not None and ports.count(p) > 1})
    if shared:
        raise ValueError(f"workloads {', '.join(ids)} have NodePorts {ports}: {shared} is shared, so one load would "
                         "reach two workloads; deploy them with expose_service=True (a free mapped port each)")
    rate = settings.rate / len(workloads)
    if rate < settings.min_rate:
        raise ValueError(f"{settings.rate:g} req/s split over {len(workloads)} workloads is {rate:.1f} req/s each, "
                         f"below the {settings.min_rate:g} req/s the availability check needs before each node's "
                         "window: raise Settings.rate or rehearse fewer workloads at once")
    return [WorkloadRun(w.spec.name, w.kind, w.namespace, w.name, load_port(cluster, w), w.spec.health_path, rate)
            for w in workloads]


def run_upgrade_rehearsal(cluster: Cluster, target: Release, workloads: Sequence[Deployed], settings: Settings,
                          keep_data: bool = False) -> RehearsalRecord:
    """Run the whole upgrade once, with every workload under its own load, and return its record
    (see the module docstring for the order).

    Raises before touching anything when the loads cannot be planned (ValueError, see plan_loads),
    when kubeadm would refuse the upgrade (UpgradeRefused) or the cluster is not at
    `settings.source` (DisruptionError). keep_data leaves the ConfigMaps' namespace.
    """
    runs = plan_loads(cluster, workloads, settings)
    rec = RehearsalRecord(settings, cluster.name, Recorder("upgrade"), started=time.monotonic(),
                          all_nodes=list(cluster.all_nodes), control_planes=list(cluster.control_planes),
                          workloads=runs)
    rollout = Rollout(cluster, target, settings.order)
    rec.sequence = [n for n, _, _ in rollout.sequence()]
    rec.from_version_seen = rollout.preflight()  # raises UpgradeRefused before anything is touched
    if rec.from_version_seen != settings.source:
        raise DisruptionError(f"the cluster runs {rec.from_version_seen}, the rehearsal was asked to start from "
                              f"{settings.source}: use a fresh cluster at {settings.source}")
    rec.expectation = expectation(settings, target)
    rec.data_namespace = apply.unique_namespace("upgrade-data")
    apply.create_namespace(cluster, rec.data_namespace)
    try:
        rec.data_before = write_checksummed_configmaps(cluster, rec.data_namespace, settings.configmaps)
        _roll(rec, rollout)
        rec.data_after = read_configmap_checksums(cluster, rec.data_namespace)
    finally:
        if not keep_data:
            apply.delete_namespace(cluster, rec.data_namespace, wait=False)
    rec.finished = time.monotonic()
    return rec


def _states(rec: RehearsalRecord, observer: Observer) -> dict[str, WorkloadState]:
    """Every workload's state with its pods, by id."""
    return {w.id: observer.workload(w.namespace, w.name, w.kind) for w in rec.workloads}


def _roll(rec: RehearsalRecord, rollout: Rollout) -> None:
    """The loads, the sampler and the node-by-node rollout; ends with the final snapshot."""
    s = rec.settings
    observer = Observer(rollout.cluster)
    sampler = Sampler(observer, interval=3.0, max_seconds=s.max_run_s).start()
    upgraded: list[str] = []
    cp_upgraded: list[str] = []
    loads = [LoadRunner(f"http://127.0.0.1:{w.host_port}", path=w.path, users=s.users, rate=w.rate,
                        run_time=s.max_run_s, max_requests=int(w.rate * s.max_run_s), recorder=rec.recorder,
                        start_timeout=60) for w in rec.workloads]
    try:
        rec.kubelet_apiservers.append((time.monotonic(), kubelet_apiservers(rollout.cluster)))
        rec.checkpoints.append(observer.snapshot("before"))
        with contextlib.ExitStack() as running:  # every load started is stopped, also when a later one fails
            for load in loads:
                running.enter_context(load)
            time.sleep(s.baseline_s)
            t0 = time.monotonic()
            say(f"staging {s.target} images on every node")
            rec.staged = rollout.stage_all(rec.recorder)
            rec.stage_window = Window(t0, time.monotonic())
            for node, role, step in rollout.sequence():
                nr = _upgrade_one(rec, rollout, observer, sampler, loads, node, role, step, upgraded, cp_upgraded)
                if not nr.passed:
                    failed = [str(v) for v in nr.verdicts if not v.passed]
                    rec.halted = f"halted after {node}: " + (nr.error or "; ".join(failed))[:1500]
                    say(f"rollout {rec.halted}")
                    break
            time.sleep(s.after_s + 1)
    finally:
        sampler.stop()
        rec.samples = sampler.taken()
        for w, load in zip(rec.workloads, loads):
            w.operations = list(load.operations) if load.stats is not None else w.operations
    rec.final = observer.snapshot("final")
    rec.checkpoints.append(rec.final)
    for w in rec.workloads:
        w.final = observer.workload(w.namespace, w.name, w.kind)


def _upgrade_one(rec: RehearsalRecord, rollout: Rollout, observer: Observer, sampler: Sampler,
                 loads: list[LoadRunner], node: str, role: Role, step: Step, upgraded: list[str],
                 cp_upgraded: list[str]) -> NodeRecord:
    s = rec.settings
    assert rec.expectation is not None
    exp = rec.expectation
    nr = NodeRecord(node, role, step)
    rec.nodes.append(nr)
    say(f"upgrading {role} {node} (kubeadm upgrade {step}) to {s.target}")
    nr.before = observer.snapshot(f"before {node}")
    rec.checkpoints.append(nr.before)
    nr.workloads_before = _states(rec, observer)
    sampler.label = f"during {node}"
    un = rollout.step(node, role, step, rec.recorder)
    try:
        with un.applied(rec.recorder):
            pass
    except (DisruptionError, WaitTimeout, CommandFailed, TimeoutError) as exc:
        nr.error = str(exc)[:3000]
    nr.window = un.window
    nr.phases = un.phases
    nr.kubeadm_output = un.kubeadm_output
    if un.plan is not None:
        rec.plan, rec.plan_text = un.plan, un.plan_text
    sampler.label = f"settling after {node}"
    if not nr.error:
        upgraded.append(node)
        if role == "control-plane":
            cp_upgraded.append(node)

    def settled() -> tuple[bool, str]:
        snap = observer.snapshot(f"after {node}")
        problems = R.versions_as_expected(snap, upgraded, exp, cp_upgraded)
        for wid, wl in _states(rec, observer).items():
            if wl.ready < wl.replicas:
                problems.append(f"workload {wid} {wl.ready}/{wl.replicas} ready")
        return not problems, "; ".join(problems) or "as expected"

    try:
        until(f"the cluster to settle after upgrading {node}", settled, s.settle_timeout_s, interval=3.0,
              hint="a kube-proxy or CoreDNS rollout, or a static pod, did not reach the target version")
    except WaitTimeout as exc:
        say(f"  {node}: did not settle: {str(exc).splitlines()[1][:300]}")
    rec.kubelet_apiservers.append((time.monotonic(), kubelet_apiservers(rollout.cluster)))
    nr.after = observer.snapshot(f"after {node}")
    rec.checkpoints.append(nr.after)
    nr.workloads_after = _states(rec, observer)
    if nr.window is None:
        nr.error = nr.error or "the step recorded no window"
        return nr
    # Let the loads record the judged tail of the window, then read what each recorded so far.
    time.sleep(max(0.0, nr.window.end + s.after_s + 1.0 - time.monotonic()))
    for w, load in zip(rec.workloads, loads):
        assert load.workdir is not None
        w.operations = read_request_logs(load.workdir, clock="mono").operations
    rec.samples = sampler.taken()
    nr.verdicts = judge_node(rec, nr, upgraded, cp_upgraded)
    if nr.error:
        nr.verdicts.insert(0, Verdict.fail("step", nr.error))
    say(f"  {node}: {'PASS' if nr.passed else 'FAIL'} in {nr.window.duration:.0f}s "
        + "; ".join(str(v) for v in nr.verdicts if not v.passed)[:600])
    return nr


# --- judging the whole record ----------------------------------------------------------------------------

def plan_verdict(rec: RehearsalRecord) -> Verdict:
    """`kubeadm upgrade plan vX` ran on the first control plane and proposes exactly vX for every node."""
    plan = rec.plan
    if plan is None:
        return Verdict.fail("upgrade-plan", f"no `kubeadm upgrade plan` output was recorded{rec.halt_note}")
    s = rec.settings
    problems = plan_problems(plan, Version.parse(s.source), Version.parse(s.target), rec.all_nodes)
    v = (Verdict.fail("upgrade-plan", "; ".join(problems)) if problems else
         Verdict.ok("upgrade-plan", f"{plan.apply_command}: {len(plan.automatic)} control-plane components and "
                                    f"{len(plan.manual)} kubelets from {plan.cluster_version}"))
    v.series["upgrade_plan"] = plan.to_dict()
    return v


def rollout_verdict(rec: RehearsalRecord) -> Verdict:
    """Every node of the sequence was stepped, in order, and the rollout did not halt."""
    done = [n.node for n in rec.nodes]
    if rec.halted:
        return Verdict.fail("rollout", rec.halted)
    if done != rec.sequence:
        return Verdict.fail("rollout", f"nodes upgraded: {done}; the rollout's sequence is {rec.sequence}")
    return Verdict.ok("rollout", f"{len(done)} nodes upgraded in order: {', '.join(done)}")


def whole_upgrade_availability(rec: RehearsalRecord, w: WorkloadRun) -> Verdict:
    """`availability <id>` over the whole upgrade, its timeline (the workload's own requests) marked
    with the staging and each node's window."""
    http = w.http
    v = _for_workload(availability(http, rec.upgrade_window, slo=rec.settings.slo,
                                   min_rate_before=rec.settings.min_rate, after_seconds=rec.settings.after_s,
                                   label="whole upgrade"), w.id)
    if not http:
        return v
    t0 = min(o.start for o in http)
    wins = []
    if rec.stage_window is not None:
        wins.append(S.window(rec.stage_window.start - t0, rec.stage_window.end - t0, "stage images"))
    wins += [S.window(n.window.start - t0, n.window.end - t0, f"upgrade {n.node}") for n in rec.nodes if n.window]
    v.series[S.WINDOWS] = wins
    return v


def whole_upgrade_requests(rec: RehearsalRecord, w: WorkloadRun) -> Verdict:
    """`failed-requests <id>` across the upgrade, with the workload's request totals."""
    http = w.http
    v = failed_requests(http, rec.settings.max_failed_requests, "across the upgrade", w.id)
    v.figures += [Figure("requests_total", len(http), "requests", w.id),
                  Figure("requests_failed_total", sum(o.outcome != "ok" for o in http), "requests", w.id)]
    return v


def replicas_verdict(rec: RehearsalRecord, w: WorkloadRun) -> Verdict:
    """`replicas <id>`: the workload back at its desired replicas, all ready, at the end."""
    check = workload_check("replicas", w.id)
    st = w.final
    if st is None:
        return Verdict.unknown(check, f"{w.kind} {w.namespace}/{w.name} was not read at the end{rec.halt_note}")
    if st.ready >= st.replicas:
        return Verdict.ok(check, f"{st.kind} {st.namespace}/{st.name}: {st.ready}/{st.replicas} ready")
    return Verdict.fail(check, f"{st.kind} {st.namespace}/{st.name}: {st.ready}/{st.replicas} ready at the end")


def end_state_verdicts(rec: RehearsalRecord) -> list[Verdict]:
    """Every node and component at the target, the ConfigMaps unchanged, each workload at desired replicas."""
    if rec.final is None or rec.expectation is None:
        versions = Verdict.unknown("versions", f"no final snapshot was recorded{rec.halt_note}")
    else:
        versions = R.versions_verdict(rec.final, rec.all_nodes, rec.expectation, rec.control_planes)
    return [versions, R.data_intact(rec.data_before, rec.data_after), *(replicas_verdict(rec, w) for w in rec.workloads)]


def users_verdicts(rec: RehearsalRecord) -> list[Verdict]:
    """Per workload, availability and failed requests across the whole upgrade; UNKNOWN when the
    record holds no workload (nobody's availability was watched, so nothing says users were fine)."""
    if not rec.workloads:
        return [Verdict.unknown("availability", "no workload was kept under load through the upgrade: whether users "
                                                "noticed it was not observed")]
    return [v for w in rec.workloads for v in (whole_upgrade_availability(rec, w), whole_upgrade_requests(rec, w))]


def judge(rec: RehearsalRecord) -> list[Verdict]:
    """Every check of the rehearsal, in the order a reader should see them. Check names:
    upgrade-plan; `step_check(node)` per node stepped; rollout; version-skew; nodes-out; per
    workload `availability <id>` and `failed-requests <id>` (whole upgrade); versions, data, and
    per workload `replicas <id>` (end state). `workload_check(check, id)` builds the per-workload names."""
    snaps = sorted(rec.samples + rec.checkpoints, key=lambda x: x.at)
    skew = skew_verdict([rec.observed(x) for x in snaps], required_labels=[c.label for c in rec.checkpoints])
    skew.series["kubelet_apiservers"] = rec.kubelet_apiservers[-1][1] if rec.kubelet_apiservers else {}
    return [
        plan_verdict(rec),
        *(n.verdict() for n in rec.nodes),
        rollout_verdict(rec),
        skew,
        R.one_node_out_at_a_time(snaps),
        *users_verdicts(rec),
        *end_state_verdicts(rec),
    ]
