"""The upgrade rehearsal: record a node-by-node kubeadm upgrade under load, judging after each node.

Wiring only (the suite's own module): operations come from kubedrill.disrupt.upgrade, observation
from kubedrill.cluster.observe, judgement from kubedrill.check.{availability,rollout,skew}.

    record = rehearse(cluster, release, workload, settings, load_port, data_namespace)

Order of events: refuse an impossible upgrade (before anything is touched) -> checksum ConfigMaps ->
start the version sampler and the load -> stage the target's images on every node -> for each node:
snapshot, upgrade it (drain ... uncordon), wait for the expected state, snapshot, judge the node's
window -> stop at the first node whose checks fail (a real operator halts a rollout there) ->
final snapshot, read the ConfigMaps back, stop the load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from kubedrill.check import rollout as R
from kubedrill.check.availability import availability
from kubedrill.check.skew import Observed, skew_verdict
from kubedrill.record.versions import UpgradePlan
from kubedrill.check.verdict import Figure, Verdict, combine
from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.observe.cluster import Observer, Sampler
from kubedrill.record.cluster import Snapshot, WorkloadState
from kubedrill.cluster.progress import say
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.disrupt.base import DisruptionError
from kubedrill.disrupt.upgrade import Order, Release, Rollout, kubelet_apiservers
from kubedrill.record.maintenance import Phase
from kubedrill.load import LoadRunner
from kubedrill.load.requestlog import read_request_logs
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record import series as S
from kubedrill.workload.spec import WorkloadSpec


@contextlib.contextmanager
def live_progress(config: pytest.Config) -> Iterator[None]:
    """Let progress lines (kubedrill.cluster.progress.say) reach the terminal while a long step runs.

    Why: pytest's default fd-level capture also swallows writes to the original stderr, so a
    20-minute image build or a 10-minute rehearsal would look hung until it ends.
    """
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


@dataclass(frozen=True)
class Settings:
    source: str
    target: str
    order: Order = "control-plane-first"
    slo: float = 0.999
    max_failed_requests: int = 0
    min_rate: float = 5.0
    users: int = 5
    rate: float = 25.0  # req/s in total: enough to see a 0.1 s outage, light on 2 shared cores
    baseline_s: float = 12.0  # load before the first step (availability wants 10 s before a window)
    after_s: float = 5.0  # judged after each node's window too
    settle_timeout_s: float = 300.0
    configmaps: int = 20
    max_run_s: float = 3600.0


@dataclass
class NodeRecord:
    node: str
    role: str
    kubeadm_step: str
    window: Window | None = None
    phases: list[Phase] = field(default_factory=list)
    before: Snapshot | None = None
    after: Snapshot | None = None
    workload_before: WorkloadState | None = None
    workload_after: WorkloadState | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    error: str = ""
    kubeadm_output: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.verdicts) and all(v.passed for v in self.verdicts)

    def verdict(self) -> Verdict:
        v = combine(f"node {self.node}", self.verdicts)
        if self.error:
            return Verdict.fail(f"node {self.node}", f"the step failed: {self.error}", v.figures)
        return v


@dataclass
class RehearsalRecord:
    settings: Settings
    cluster: str
    recorder: Recorder
    from_version_seen: str = ""
    plan: UpgradePlan | None = None
    plan_text: str = ""
    staged: dict[str, list[str]] = field(default_factory=dict)
    stage_window: Window | None = None
    nodes: list[NodeRecord] = field(default_factory=list)
    samples: list[Snapshot] = field(default_factory=list)
    checkpoints: list[Snapshot] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    data_before: dict[str, str] = field(default_factory=dict)
    data_after: dict[str, str | None] = field(default_factory=dict)
    final: Snapshot | None = None
    final_workload: WorkloadState | None = None
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


# --- data written before the upgrade, read after ------------------------------------------------------

def _cm_doc(name: str, ns: str, payload: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"payload": payload}}


def write_checksummed_configmaps(cluster: Cluster, ns: str, count: int) -> dict[str, str]:
    """`count` ConfigMaps of random data; returns name -> sha256 of what was written."""
    import yaml

    docs, sums = [], {}
    for i in range(count):
        payload = os.urandom(3 * 1024).hex()
        name = f"kd-upgrade-data-{i:03d}"
        docs.append(_cm_doc(name, ns, payload))
        sums[name] = hashlib.sha256(payload.encode()).hexdigest()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), timeout=120)
    return sums


def read_configmap_checksums(cluster: Cluster, ns: str) -> dict[str, str | None]:
    out = cluster.kubectl("get", "configmaps", "-n", ns, "-o", "json", timeout=60).stdout
    items = json.loads(out)["items"]
    return {i["metadata"]["name"]: hashlib.sha256(i.get("data", {}).get("payload", "").encode()).hexdigest()
            for i in items if i["metadata"]["name"].startswith("kd-upgrade-data-")}


# --- judging one node -----------------------------------------------------------------------------

def expectation(settings: Settings, target: Release) -> R.Expectation:
    return R.Expectation(settings.source, settings.target, etcd_target=target.image_tag("etcd"),
                         coredns_target=target.image_tag("coredns"))


def judge_node(rec: RehearsalRecord, nr: NodeRecord, exp: R.Expectation, upgraded: list[str],
               cp_upgraded: list[str]) -> list[Verdict]:
    """Every check of one node's step, from the record (pure apart from reading the record)."""
    s = rec.settings
    assert nr.before is not None and nr.after is not None and nr.window is not None
    verdicts = [
        R.step_took_effect(nr.node, nr.before, nr.after, s.target, control_plane=nr.role == "control-plane"),
        R.versions_verdict(nr.after, upgraded, exp, cp_upgraded),
    ]
    if nr.workload_before is not None and nr.workload_after is not None:
        verdicts.append(R.workload_intact(nr.workload_before, nr.workload_after))
    http = [o for o in rec.operations if o.kind.startswith("http")]
    av = availability(http, nr.window, slo=s.slo, min_rate_before=s.min_rate, after_seconds=s.after_s,
                      label=f"upgrade {nr.node}")
    verdicts.append(av)
    judged = [o for o in http if nr.window.start <= o.start <= nr.window.end + s.after_s]
    failed = [o for o in judged if o.outcome != "ok"]
    if len(failed) > s.max_failed_requests:
        verdicts.append(Verdict.fail("failed-requests", f"{len(failed)} request(s) failed during the upgrade of "
                                                        f"{nr.node} (allowed {s.max_failed_requests}); first: "
                                                        f"{failed[0].detail or failed[0].outcome}",
                                     [Figure("failed_requests", len(failed), "requests")]))
    else:
        verdicts.append(Verdict.ok("failed-requests", f"{len(failed)} of {len(judged)} requests failed (allowed "
                                                      f"{s.max_failed_requests})",
                                   [Figure("failed_requests", len(failed), "requests")]))
    snaps = [x for x in rec.samples + rec.checkpoints if x.at <= nr.after.at]
    verdicts.append(skew_verdict([rec.observed(x) for x in snaps], required_labels=[nr.before.label, nr.after.label]))
    in_window = [x for x in rec.samples if nr.window.start <= x.at <= nr.window.end]
    verdicts.append(R.one_node_out_at_a_time([nr.before, *in_window, nr.after]))
    return verdicts


# --- the rehearsal ---------------------------------------------------------------------------------

def rehearse(cluster: Cluster, target: Release, workload: WorkloadSpec, settings: Settings,
             load_port: int, data_namespace: str) -> RehearsalRecord:
    """Run the whole upgrade once and return its record (see the module docstring for the order)."""
    rec = RehearsalRecord(settings, cluster.name, Recorder("upgrade"), started=time.monotonic())
    rollout = Rollout(cluster, target, settings.order)
    rec.from_version_seen = rollout.preflight()  # raises UpgradeRefused before anything is touched
    if rec.from_version_seen != settings.source:
        raise DisruptionError(f"the cluster runs {rec.from_version_seen}, the rehearsal was asked to start from "
                              f"{settings.source}: use a fresh cluster at {settings.source}")
    exp = expectation(settings, target)
    rec.data_before = write_checksummed_configmaps(cluster, data_namespace, settings.configmaps)
    observer = Observer(cluster)
    sampler = Sampler(observer, interval=3.0, max_seconds=settings.max_run_s).start()
    upgraded: list[str] = []
    cp_upgraded: list[str] = []
    load = LoadRunner(f"http://127.0.0.1:{load_port}", path=workload.health_path, users=settings.users,
                      rate=settings.rate, run_time=settings.max_run_s, max_requests=int(settings.rate * settings.max_run_s),
                      recorder=rec.recorder, start_timeout=60)
    try:
        rec.kubelet_apiservers.append((time.monotonic(), kubelet_apiservers(cluster)))
        rec.checkpoints.append(observer.snapshot("before"))
        with load:
            time.sleep(settings.baseline_s)
            t0 = time.monotonic()
            say(f"staging {target.version} images on every node")
            rec.staged = rollout.stage_all(rec.recorder)
            rec.stage_window = Window(t0, time.monotonic())
            for node, role, step in rollout.sequence():
                nr = _upgrade_one(rec, rollout, observer, sampler, load, node, role, step, workload, exp, upgraded,
                                  cp_upgraded)
                if not nr.passed:
                    failed = [str(v) for v in nr.verdicts if not v.passed]
                    rec.halted = f"halted after {node}: " + (nr.error or "; ".join(failed))[:1500]
                    say(f"rollout {rec.halted}")
                    break
            time.sleep(settings.after_s + 1)
    finally:
        sampler.stop()
        rec.samples = sampler.taken()
        rec.operations = list(load.operations) if load.stats is not None else []
    rec.final = observer.snapshot("final")
    rec.checkpoints.append(rec.final)
    rec.final_workload = observer.workload(workload.namespace, workload.name)
    rec.data_after = read_configmap_checksums(cluster, data_namespace)
    rec.finished = time.monotonic()
    return rec


def _upgrade_one(rec: RehearsalRecord, rollout: Rollout, observer: Observer, sampler: Sampler, load: LoadRunner,
                 node: str, role: str, step: str, workload: WorkloadSpec, exp: R.Expectation, upgraded: list[str],
                 cp_upgraded: list[str]) -> NodeRecord:
    s = rec.settings
    nr = NodeRecord(node, role, step)
    rec.nodes.append(nr)
    say(f"upgrading {role} {node} (kubeadm upgrade {step}) to {s.target}")
    nr.before = observer.snapshot(f"before {node}")
    rec.checkpoints.append(nr.before)
    nr.workload_before = observer.workload(workload.namespace, workload.name)
    sampler.label = f"during {node}"
    un = rollout.step(node, role, step, rec.recorder)  # type: ignore[arg-type]
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
        wl = observer.workload(workload.namespace, workload.name)
        if wl.ready < wl.replicas:
            problems.append(f"workload {wl.ready}/{wl.replicas} ready")
        return not problems, "; ".join(problems) or "as expected"

    try:
        until(f"the cluster to settle after upgrading {node}", settled, s.settle_timeout_s, interval=3.0,
              hint="a kube-proxy or CoreDNS rollout, or a static pod, did not reach the target version")
    except WaitTimeout as exc:
        say(f"  {node}: did not settle: {str(exc).splitlines()[1][:300]}")
    rec.kubelet_apiservers.append((time.monotonic(), kubelet_apiservers(rollout.cluster)))
    nr.after = observer.snapshot(f"after {node}")
    rec.checkpoints.append(nr.after)
    nr.workload_after = observer.workload(workload.namespace, workload.name)
    if nr.window is None:
        nr.error = nr.error or "the step recorded no window"
        return nr
    # Let the load record the judged tail of the window, then read what it recorded so far.
    time.sleep(max(0.0, nr.window.end + s.after_s + 1.0 - time.monotonic()))
    assert load.workdir is not None
    rec.operations = read_request_logs(load.workdir, clock="mono").operations
    rec.samples = sampler.taken()
    nr.verdicts = judge_node(rec, nr, exp, upgraded, cp_upgraded)
    if nr.error:
        nr.verdicts.insert(0, Verdict.fail("step", nr.error))
    say(f"  {node}: {'PASS' if nr.passed else 'FAIL'} in {nr.window.duration:.0f}s "
        + "; ".join(str(v) for v in nr.verdicts if not v.passed)[:600])
    return nr


def whole_upgrade_availability(rec: RehearsalRecord) -> Verdict:
    """The availability verdict of the whole upgrade, its timeline marked with each node's window."""
    window = rec.upgrade_window
    http = [o for o in rec.operations if o.kind.startswith("http")]
    v = availability(http, window, slo=rec.settings.slo, min_rate_before=rec.settings.min_rate,
                     after_seconds=rec.settings.after_s, label="whole upgrade")
    if not http:
        return v
    t0 = min(o.start for o in http)
    wins = []
    if rec.stage_window is not None:
        wins.append(S.window(rec.stage_window.start - t0, rec.stage_window.end - t0, "stage images"))
    wins += [S.window(n.window.start - t0, n.window.end - t0, f"upgrade {n.node}") for n in rec.nodes if n.window]
    v.series[S.WINDOWS] = wins
    return v
