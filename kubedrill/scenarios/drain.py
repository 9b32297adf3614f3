"""Node maintenance under load: cordon, drain, reboot or a rolling drain of the workers, recorded,
then judged.

    steady locust load: through the control plane's host-mapped NodePort (workers get drained and
    rebooted), or, where no host port reaches the Service (provider generic, a kind cluster without
    port mappings), from locust pods in the cluster to its DNS name, kept off the nodes the
    operation covers where possible (kubedrill.load.path decides which)
    -> snapshot before -> the operation, by its registry name, with a pod watch running
    -> load a little longer -> snapshot at the end

The operation acts on the worker running most of the workload's serving pods (draining it proves
the most); a rolling drain starts there and then takes every other worker in turn.

`run_maintenance` only records (FailedScheduling events included: they say why a replacement
could run nowhere, after the pod itself was scheduled on the uncordoned node); `judge` runs the
pure checkers on the record: availability (SLO, longest outage, p99 during vs before) and failed
requests (slo.max_failed_requests), scheduling (cordon leaves pods alone, evicted pods run
elsewhere, DaemonSets stay, every worker schedulable and Ready at the end), PodDisruptionBudgets
with the cause of a blocked drain (a budget allowing no disruption, or a replacement the scheduler
could not place), one replica without a budget, pods without a controller, local data in
emptyDir, SIGTERM after traffic left the pod, and durations. The workload is a Deployment or a
StatefulSet (the deployed one's kind). A load pod lost to the maintenance is a load gap: its failed
requests are dropped, and a gap that left the operation without requests makes availability
UNKNOWN, never FAIL (kubedrill.check.load_gaps). The drain suite, its meta-test and the benchmark
share both.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kubedrill.check.availability import availability
from kubedrill.check.load_gaps import check_load_gaps, gaps_of, hidden_by_gaps, without_gap_failures
from kubedrill.check.maintenance import (
    check_durations,
    check_failed_requests,
    check_sigterm_margin,
    node_windows,
    with_windows,
)
from kubedrill.check.scheduling import (
    check_bare_pods,
    check_cordon,
    check_daemonsets_stay,
    check_local_data,
    check_pdbs,
    check_rescheduled,
    check_schedulable,
    check_single_replica,
)
from kubedrill.check.verdict import Figure, Verdict, safe_check
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.base import lookup
from kubedrill.disrupt.node import MaintenancePlan, NodeOperation, node_operations
from kubedrill.load import LoadRunner, LoadStats
from kubedrill.load.path import InClusterTraffic, choose
from kubedrill.observe.cluster import scheduling_failures, take_snapshot
from kubedrill.observe.pods import PodWatch
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record.cluster import SchedulingFailure, Snapshot, WorkloadState
from kubedrill.record.maintenance import NodePass
from kubedrill.record.termination import PodEvidence
from kubedrill.workload.apply import wait_http
from kubedrill.workload.deploy import Deployed, wait_workload_ready
from kubedrill.workload.sample import sample_workload
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError


@dataclass(frozen=True)
class MaintenanceSettings:
    """How the maintenance runs (the same for every operation; each uses what applies to it)."""

    drain_timeout_s: int = 120  # kubectl drain --timeout
    allow_force: bool = False  # kubectl drain --force: pods without a controller are deleted for good
    maintenance_s: float = 3.0  # rolling drain: time "working" on each drained node before its uncordon
    cordon_hold_s: float = 5.0  # cordon: how long it holds before the snapshot that judges it
    load_before_s: float = 8.0  # steady load before the operation: availability needs a rate to compare
    load_after_s: float = 6.0  # and after it: endpoint changes lag the operation


@dataclass(frozen=True)
class LoadPlan:
    """The locust load aimed at the workload's Service."""

    users: int = 10
    rate: float = 50.0  # total target requests/s
    processes: int = 1  # locust processes on the runner (distributed mode when > 1; host-port path)
    keep_alive: bool = False  # a new connection per request exposes stale routing; kept-alive ones hide it
    max_s: float = 900.0  # hard bound of the locust run (and rate x 1.2 x max_s requests)
    workers: int = 1  # locust worker pods (in-cluster path)
    image: str | None = None  # their image; None: kubedrill's


@dataclass(frozen=True)
class MaintenanceExpectations:
    """What the judge holds the record to."""

    slo: float  # success ratio during the operation and after (the bundled app: 1.0)
    max_failed_requests: int = 0  # requests that may fail during the operation (the run config's slo)
    min_load_rps: float = 5.0  # below this before the operation, availability is UNKNOWN
    max_p99_ratio: float | None = None  # p99 during / p99 before; None = report only
    max_drain_s: float = 120.0
    min_sigterm_margin_s: float = 1.0  # a pod must stop receiving traffic this long before SIGTERM


@dataclass
class MaintenanceRecord:
    """Everything one maintenance run recorded, on the test's monotonic clock."""

    operation: str  # its registry name
    namespace: str
    workload: WorkloadState  # as it was before the operation
    workers: list[str]
    nodes: list[str]  # the nodes the operation covers, in order
    settings: MaintenanceSettings
    load: LoadPlan
    before: Snapshot
    final: Snapshot | None = None
    held: Snapshot | None = None  # while a cordon held
    passes: list[NodePass] = field(default_factory=list)  # one per node drained
    pods: list[PodEvidence] = field(default_factory=list)  # every pod of the namespace the watch saw
    unschedulable: list[SchedulingFailure] = field(default_factory=list)  # FailedScheduling events of the namespace
    operations: list[Operation] = field(default_factory=list)  # the load's requests
    load_stats: LoadStats | None = None
    load_log: str = ""
    traffic_path: str = "host-port"  # kubedrill.load.path: host-port or in-cluster, and why
    effect: dict[str, Any] = field(default_factory=dict)
    window: Window | None = None
    recorder: Recorder = field(default_factory=lambda: Recorder("maintenance"))

    @property
    def t0(self) -> float:
        """The first request's start (plots count seconds from it)."""
        default = self.window.start if self.window is not None else 0.0
        return min((o.start for o in self.operations), default=default)

    @property
    def rate_during(self) -> float | None:
        """Requests per second that started while the operation ran."""
        if self.window is None:
            return None
        started = sum(1 for o in self.operations if self.window.contains(o.start))
        return started / max(self.window.duration, 1e-9)

    def dump(self, folder: Path) -> None:
        """record.json (settings, snapshots, passes, pod evidence, requests and events), locust.log
        and one drain-<node>.txt with kubectl's output per node (kept as artifacts when a test fails)."""
        folder.mkdir(parents=True, exist_ok=True)
        passes = [{k: v for k, v in dataclasses.asdict(p).items() if k != "drain_output"} for p in self.passes]
        (folder / "record.json").write_text(json.dumps({
            "operation": self.operation, "namespace": self.namespace, "nodes": self.nodes, "workers": self.workers,
            "workload": dataclasses.asdict(self.workload), "settings": dataclasses.asdict(self.settings),
            "load": dataclasses.asdict(self.load), "traffic_path": self.traffic_path,
            "load_stats": dataclasses.asdict(self.load_stats) if self.load_stats else None,
            "effect": self.effect, "window": dataclasses.asdict(self.window) if self.window else None,
            "before": dataclasses.asdict(self.before), "held": dataclasses.asdict(self.held) if self.held else None,
            "final": dataclasses.asdict(self.final) if self.final else None,
            "passes": passes, "pods": [p.to_dict() for p in self.pods],
            "unschedulable": [dataclasses.asdict(f) for f in self.unschedulable],
            "record": json.loads(self.recorder.to_json()),
        }, default=str, indent=1))
        (folder / "locust.log").write_text(self.load_log)
        for p in self.passes:
            (folder / f"drain-{p.node}.txt").write_text(p.drain_output)


# -- the workload ---------------------------------------------------------------------------------

def with_pdb(spec: WorkloadSpec, pdb: str) -> WorkloadSpec:
    """The spec with its PodDisruptionBudget replaced: "none", "min-available=N", "max-unavailable=N"."""
    kind, _, value = pdb.partition("=")
    docs = [copy.deepcopy(d) for d in spec.documents if d["kind"] != "PodDisruptionBudget"]
    if kind == "none":
        return dataclasses.replace(spec, documents=tuple(docs))
    if kind not in ("min-available", "max-unavailable") or not value.isdigit():
        raise WorkloadSpecError(f"PodDisruptionBudget {pdb!r}: expected none, min-available=N or max-unavailable=N")
    key = "minAvailable" if kind == "min-available" else "maxUnavailable"
    docs.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                 "metadata": {"name": spec.name, "namespace": spec.namespace,
                              "labels": {"app.kubernetes.io/part-of": "kubedrill"}},
                 "spec": {key: int(value), "selector": {"matchLabels": dict(spec.selector)}}})
    return dataclasses.replace(spec, documents=tuple(docs))


def as_statefulset(spec: WorkloadSpec) -> WorkloadSpec:
    """The spec with its Deployment turned into a StatefulSet of the same name, pods and Service
    (pods get stable names, and a replacement starts only after its predecessor is gone)."""
    docs = [copy.deepcopy(d) for d in spec.documents]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if len(deployments) != 1:
        raise WorkloadSpecError(f"as a StatefulSet: expected one Deployment in {spec.name}, found {len(deployments)}")
    d = deployments[0]
    d["kind"] = "StatefulSet"
    d["spec"].pop("strategy", None)
    d["spec"].update({"serviceName": spec.service or spec.name, "podManagementPolicy": "Parallel"})
    return dataclasses.replace(spec, documents=tuple(docs))


def pinned(spec: WorkloadSpec, node: str) -> WorkloadSpec:
    """The spec with every pod of its controllers pinned to `node` by a nodeSelector: evicted pods
    can be replaced nowhere else while the node is cordoned."""
    docs = [copy.deepcopy(d) for d in spec.documents]
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            d["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return dataclasses.replace(spec, documents=tuple(docs))


def maintenance_sample(image: str, mode: str = "graceful", *, replicas: int = 3, pdb: str = "min-available=2",
                       grace_seconds: int = 15, prestop_seconds: float = 5.0, kind: str = "Deployment",
                       node: str | None = None) -> WorkloadSpec:
    """The bundled sample app as the drain suite runs it, with the PodDisruptionBudget `pdb` (see
    with_pdb), as a Deployment or a StatefulSet (`kind`), optionally pinned to `node`.

    prestop 5 s: on a busy host kube-proxy took up to 2.7 s to drop an evicted pod's endpoint."""
    spec = sample_workload(mode, replicas=replicas, grace_seconds=grace_seconds, prestop_seconds=prestop_seconds,
                           image=image, min_available=min(1, replicas))
    if kind == "StatefulSet":
        spec = as_statefulset(spec)
    elif kind != "Deployment":
        raise WorkloadSpecError(f"sample app for the drain suite: kind {kind!r} is not Deployment or StatefulSet")
    if node is not None:
        spec = pinned(spec, node)
    return with_pdb(spec, pdb)


def bare_pod(node: str, image: str) -> dict[str, Any]:
    """A pod without a controller pinned to `node` (no namespace: the deploy path sets it). kubectl
    drain refuses it without --force, and nothing recreates it once deleted."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"kd-bare-{node.rsplit('-', 1)[-1]}",
                         "labels": {"app.kubernetes.io/part-of": "kubedrill", "kubedrill.io/bare": "true"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "app", "image": image, "imagePullPolicy": "IfNotPresent"}]}}


# -- recording --------------------------------------------------------------------------------------

def workload_state(snapshot: Snapshot, namespace: str, name: str) -> WorkloadState:
    """The workload under test as the snapshot saw it."""
    state = snapshot.workload(namespace, name)
    if state is None:
        seen = ", ".join(w.key for w in snapshot.workloads if w.namespace == namespace) or "none"
        raise LookupError(f"no Deployment or StatefulSet {namespace}/{name} in the snapshot (seen in {namespace}: "
                          f"{seen}); the drain scenario judges a Deployment or StatefulSet")
    return state


def maintenance_order(snapshot: Snapshot, workload: WorkloadState, workers: Sequence[str]) -> list[str]:
    """The workers in the order maintenance takes them: first the one running the most serving pods
    of the workload (draining it proves the most; ties go to the earlier worker), then the others."""
    if not workers:
        raise ValueError("node maintenance needs at least one worker")
    counts = {w: sum(1 for p in snapshot.pods_of(workload) if p.node == w and p.serving) for w in workers}
    ranked = list(workers)
    first = max(ranked, key=lambda w: (counts[w], -ranked.index(w)))
    return [first] + [w for w in ranked if w != first]


def unavailable(cluster: Cluster, operation: str) -> str | None:
    """Why the node operation `operation` cannot run on this cluster (its own available()), asked
    before anything is deployed; None when it can."""
    op_class = lookup(operation)
    if not issubclass(op_class, NodeOperation):
        raise ValueError(f"{operation!r} is not a node maintenance operation; known: {', '.join(node_operations())}")
    return op_class.planned(cluster, cluster.workers or ["(no worker)"], MaintenancePlan()).available()


def takes_every_worker(cluster: Cluster, operation: str) -> bool:
    covered = set(lookup(operation).planned(cluster, cluster.workers, MaintenancePlan()).nodes)  # type: ignore[attr-defined]
    return not [w for w in cluster.workers if w not in covered]


def no_room_for_load(cluster: Cluster, operation: str) -> str | None:
    """Why in-cluster load pods have nowhere to run during `operation`, if they have not: they keep
    off every node it covers (the master is a bare pod, which would block `kubectl drain`, and a
    lost worker is a load gap). When it takes every worker they go to a control-plane node, tolerating
    its taint; a cluster that shows no control-plane node (a managed one) leaves them nowhere."""
    if not choose(cluster).in_cluster or not takes_every_worker(cluster, operation) or cluster.control_planes:
        return None
    return (f"{operation} takes every worker ({', '.join(sorted(cluster.workers))}) and the cluster shows no "
            "control-plane node, so the in-cluster load pods have no node the drill leaves alone: add a worker, "
            "or use the host-port path (a kind cluster on this host with port mappings, --provider kind)")


def run_maintenance(cluster: Cluster, deployed: Deployed, operation: str,
                    settings: MaintenanceSettings = MaintenanceSettings(), load: LoadPlan = LoadPlan(), *,
                    workdir: Path | None = None) -> MaintenanceRecord:
    """Run `operation` (a registered node operation) on the workers under steady load and record it.

    The load takes the path kubedrill.load.path chooses. Host port: `deployed` must be exposed on
    a host-mapped NodePort (`deployed(..., expose_service=True)`), and the load goes through the
    control plane's mapping (workers are drained and rebooted); workdir: where locust writes its
    per-request logs. In the cluster: locust pods send to the Service's DNS name, kept off the nodes
    the operation covers where they can be. Raises what the operation raises: Inconclusive
    (UNKNOWN) when it cannot run here, was not healthy before or showed no effect.
    """
    op_class = lookup(operation)
    if not issubclass(op_class, NodeOperation):
        raise ValueError(f"{operation!r} is not a node maintenance operation; known: {', '.join(node_operations())}")
    route = choose(cluster)
    if not route.in_cluster and deployed.node_port is None:
        raise ValueError(f"workload {deployed.name} has no host-mapped NodePort; deploy it with expose_service=True")
    ns, kind, name = deployed.namespace, deployed.kind, deployed.name
    if kind not in ("Deployment", "StatefulSet"):
        raise ValueError(f"workload {ns}/{name} is a {kind}: kubectl drain leaves DaemonSet pods in place "
                         "(--ignore-daemonsets), so the drain scenario judges Deployments and StatefulSets")
    wait_workload_ready(cluster, ns, kind, name, timeout=120)
    before = take_snapshot(cluster, [ns], label="before")
    workload = workload_state(before, ns, name)
    order = maintenance_order(before, workload, cluster.workers)
    rec = Recorder(f"drain-{operation}")
    plan = MaintenancePlan(
        drain_timeout_s=settings.drain_timeout_s, force=settings.allow_force, hold_s=settings.cordon_hold_s,
        maintenance_s=settings.maintenance_s,
        settle=lambda: wait_workload_ready(cluster, ns, kind, name, timeout=max(60.0, settings.drain_timeout_s)),
        snapshot=lambda: take_snapshot(cluster, [ns]), recorder=rec)
    op = op_class.planned(cluster, order, plan)
    runner: LoadRunner | InClusterTraffic
    if route.in_cluster:
        runner = InClusterTraffic(cluster, [deployed.service_url], recorder=rec, path=deployed.spec.health_path,
                                  rate=load.rate, users=load.users, run_time=load.max_s, workers=load.workers,
                                  avoid_nodes=op.nodes, image=load.image, purpose=f"load-drain-{operation}",
                                  keep_alive=load.keep_alive,
                                  control_plane_ok=takes_every_worker(cluster, operation))
    else:
        assert deployed.node_port is not None
        url = f"http://127.0.0.1:{cluster.host_port(deployed.node_port, cluster.control_planes[0])}"
        wait_http(url + deployed.spec.health_path, timeout=60)
        runner = LoadRunner(url, path=deployed.spec.health_path, users=load.users, rate=load.rate,
                            processes=load.processes, run_time=load.max_s,
                            max_requests=int(load.rate * load.max_s * 1.2), recorder=rec, workdir=workdir,
                            keep_alive=load.keep_alive, start_timeout=60)
    with PodWatch(cluster, ns, recorder=rec, max_seconds=1800) as watch, runner:
        time.sleep(settings.load_before_s)
        with op.applied(rec):
            pass
        time.sleep(settings.load_after_s)
    final = take_snapshot(cluster, [ns], label="final")
    pods = watch.all_evidence()
    unschedulable = scheduling_failures(cluster, ns, labels={p.pod: p.labels for p in pods})
    return MaintenanceRecord(
        operation=operation, namespace=ns, workload=workload, workers=list(cluster.workers), nodes=op.nodes,
        settings=settings, load=load, before=before, final=final, held=op.held, passes=list(op.passes),
        pods=pods, unschedulable=unschedulable, operations=without_gap_failures(rec.history, gaps_of(rec.events)),
        load_stats=runner.stats, load_log=runner.log_tail(200), traffic_path=f"{route.name}: {route.why}",
        effect=dict(op.effect), window=op.window, recorder=rec)


# -- judging ----------------------------------------------------------------------------------------

def judge(r: MaintenanceRecord, expect: MaintenanceExpectations) -> list[Verdict]:
    """Every check of a maintenance run, in the order a reader should see them: drains are judged
    on their node passes, a cordon on the snapshot taken while it held."""
    avail = safe_check("availability", availability, r.operations, r.window, slo=expect.slo, kind="http",
                       min_rate_before=expect.min_load_rps, max_p99_ratio=expect.max_p99_ratio, label=r.operation)
    gaps = gaps_of(r.recorder.events)
    # A load pod lost to the maintenance: its own failures were dropped; a silence it left hides availability.
    gap = safe_check("load-gap", check_load_gaps, gaps, r.operations, r.window, t0=r.t0) if gaps else None
    if gap is not None:
        avail = hidden_by_gaps(avail, gap)
    failed = safe_check("failed-requests", check_failed_requests, r.operations, r.window,
                        allowed=expect.max_failed_requests, after_s=r.settings.load_after_s)
    verdicts: list[Verdict] = []
    if r.passes:
        verdicts += [with_windows(avail, node_windows(r.passes, r.t0)), failed]
        verdicts.append(safe_check("maintenance-risk", check_single_replica, r.before, r.namespace))
        verdicts.append(safe_check("pdb", check_pdbs, r.before, r.passes, r.settings.drain_timeout_s, r.unschedulable))
        verdicts.append(safe_check("bare-pods", check_bare_pods, r.passes, r.settings.allow_force))
        verdicts.append(safe_check("local-data", check_local_data, r.passes, r.before, r.namespace))
        for p in r.passes:
            if not p.drain_failed:
                verdicts.append(safe_check(f"rescheduled[{p.node}]", check_rescheduled, p.before or r.before,
                                           p.drained, p.node, r.workload))
                verdicts.append(safe_check(f"daemonsets[{p.node}]", check_daemonsets_stay, p.before or r.before,
                                           p.drained, p.node))
        around = [(p.start, (p.end or p.start) + r.settings.load_after_s) for p in r.passes]
        verdicts.append(safe_check("sigterm-margin", check_sigterm_margin, r.pods, r.operations,
                                   min_margin_s=expect.min_sigterm_margin_s, around=around))
        verdicts.append(safe_check("durations", check_durations, r.passes, max_drain_s=expect.max_drain_s,
                                   expected_nodes=len(r.nodes), t0=r.t0))
    elif r.held is not None:
        verdicts += [avail, failed, safe_check("cordon", check_cordon, r.before, r.held, r.nodes[0]),
                     safe_check("maintenance-risk", check_single_replica, r.before, r.namespace)]
    else:
        verdicts += [avail, failed, Verdict.unknown("operation", f"{r.operation} recorded neither a drained node nor a "
                                                         "snapshot while it held: there is nothing to judge")]
    if r.final is None:
        verdicts.append(Verdict.unknown("schedulable-at-end", "no snapshot was taken after the maintenance"))
    else:
        verdicts.append(safe_check("schedulable-at-end", check_schedulable, r.final, r.workers))
    if gap is not None:
        verdicts.append(gap)
    return verdicts


def load_figures(r: MaintenanceRecord) -> list[Figure]:
    """The load's target and the rate it achieved while the operation ran (is the load credible?)."""
    during = r.rate_during
    in_cluster = r.traffic_path.startswith("in-cluster")
    where = (f"{r.load.users} users, {r.load.workers} locust worker pod(s) in the cluster" if in_cluster
             else f"{r.load.users} users, {r.load.processes} process(es) on the runner")
    figures = [Figure("load_rate_target", r.load.rate, "req/s", where),
               Figure("load_rate_during", None if during is None else round(during, 1), "req/s",
                      f"achieved while {r.operation} ran ({r.traffic_path})")]
    offsets = {k: float(v) for e in r.recorder.events_of("load-clocks") for k, v in e.data.items()}
    if offsets:
        pod, offset = max(offsets.items(), key=lambda kv: abs(kv[1]))
        figures.append(Figure("load_clock_offset", round(offset * 1000, 2), "ms",
                              f"largest of {len(offsets)} load pod(s) vs the runner: {pod}"))
    return figures
