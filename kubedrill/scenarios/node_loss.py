"""Unplanned node loss under load: a worker is stopped, frozen or cut off without a drain; the
eviction timeline is recorded on the test's clock, then judged against a prediction made from the
cluster's own settings.

    read the cluster's timers (controller manager and API server flags, else the version's defaults)
    -> steady locust load through the control plane's NodePort, a pod watch, a poller of the node,
       its Lease and the Service's EndpointSlices
    -> lose the worker running most of the workload's serving pods (a registered node-loss
       disruption, by name)
    -> wait (bounded by the prediction) until its pods are evicted and replaced; a StatefulSet's
       pod is watched stuck for a while, then the documented recovery is rehearsed: the
       out-of-service taint, the replacement, the data volume's fate
    -> load a little longer -> give the node back (heal) -> judge

`run_node_loss` only records; `judge` runs the pure checkers of kubedrill.check.eviction: the node
declared lost when predicted, each eviction within the bound, the capacity the Service kept
against the SLO (with the toleration or the replica count to change), the traffic outage against
the endpoints update, and for a StatefulSet the stuck pod and its recovery. The node-loss suite,
its meta-tests and the benchmark share both.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.check.eviction import (
    check_capacity_slo,
    check_eviction_bound,
    check_node_declared_lost,
    check_out_of_service_recovery,
    check_statefulset_stuck,
    check_traffic_outage,
)
from kubedrill.check.verdict import Verdict, safe_check
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.disrupt.base import lookup
from kubedrill.disrupt.node_loss import NodeLoss, node_losses
from kubedrill.load import LoadRunner, LoadStats
from kubedrill.observe.cluster import take_snapshot
from kubedrill.observe.eviction import NodeLossObserver, read_eviction_settings, with_pv_nodes
from kubedrill.observe.pods import PodWatch
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record.eviction import NOT_READY, OUT_OF_SERVICE, UNREACHABLE, EvictionSettings, EvictionTimeline
from kubedrill.scenarios.drain import LoadPlan, maintenance_order, maintenance_sample, workload_state
from kubedrill.workload.apply import wait_http
from kubedrill.workload.deploy import Deployed, wait_workload_ready
from kubedrill.workload.spec import WorkloadSpec


@dataclass(frozen=True)
class NodeLossSettings:
    """How the drill runs."""

    load_before_s: float = 6.0  # steady load before the loss
    load_after_s: float = 4.0  # and after the replacements are Ready, before the node is given back
    stuck_hold_s: float = 10.0  # StatefulSet: how long a stuck pod is watched before the recovery
    recover_out_of_service: bool = True  # StatefulSet: rehearse the out-of-service taint
    recovery_timeout_s: float = 90.0  # for the replacement after the out-of-service taint (PodGC runs every 20 s)
    settle_margin_s: float = 60.0  # past the predicted eviction, for the replacements to be Ready


@dataclass(frozen=True)
class NodeLossExpectations:
    """What the judge holds the record to: the workload's capacity SLO and the prediction's margins."""

    min_serving: int  # serving replicas the Service needs
    max_degraded_s: float  # how long it may have fewer
    max_eviction_error_s: float = 5.0
    endpoint_slack_s: float = 5.0  # for kube-proxy to apply an endpoints update
    max_outage_s: float | None = None  # traffic outage limit; None: reported, judged against the prediction
    max_recovery_s: float = 60.0  # out-of-service taint -> the StatefulSet's replacement Ready


@dataclass
class NodeLossRecord:
    """Everything one node loss recorded, on the test's monotonic clock."""

    disruption: str
    namespace: str
    timeline: EvictionTimeline
    settings: NodeLossSettings
    load: LoadPlan
    operations: list[Operation] = field(default_factory=list)
    load_stats: LoadStats | None = None
    load_log: str = ""
    effect: dict[str, Any] = field(default_factory=dict)
    window: Window | None = None
    waited: str = ""  # what the wait for eviction and replacement saw last (or why it gave up)
    observer_errors: list[str] = field(default_factory=list)
    recorder: Recorder = field(default_factory=lambda: Recorder("node-loss"))

    def dump(self, folder: Path) -> None:
        """record.json (settings, the timeline, requests and events) and locust.log."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "record.json").write_text(json.dumps({
            "disruption": self.disruption, "namespace": self.namespace, "timeline": self.timeline.to_dict(),
            "settings": dataclasses.asdict(self.settings), "load": dataclasses.asdict(self.load),
            "load_stats": dataclasses.asdict(self.load_stats) if self.load_stats else None, "effect": self.effect,
            "window": dataclasses.asdict(self.window) if self.window else None, "waited": self.waited,
            "observer_errors": self.observer_errors, "record": json.loads(self.recorder.to_json()),
        }, default=str, indent=1))
        (folder / "locust.log").write_text(self.load_log)


# -- the workload ---------------------------------------------------------------------------------

def with_toleration(spec: WorkloadSpec, seconds: int | None) -> WorkloadSpec:
    """The spec whose pods tolerate the unreachable and not-ready NoExecute taints for `seconds`
    (None: as deployed, i.e. whatever admission adds: the API server's default toleration seconds)."""
    if seconds is None:
        return spec
    docs = [copy.deepcopy(d) for d in spec.documents]
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            pod = d["spec"]["template"]["spec"]
            pod["tolerations"] = [t for t in pod.get("tolerations", []) if t.get("key") not in (UNREACHABLE, NOT_READY)]
            pod["tolerations"] += [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                                   for k in (UNREACHABLE, NOT_READY)]
    return dataclasses.replace(spec, documents=tuple(docs))


def with_data_volume(spec: WorkloadSpec) -> WorkloadSpec:
    """The spec with an emptyDir `data` volume mounted at /data in every container (the state a
    StatefulSet keeps, whose fate on a lost node the drill reports)."""
    docs = [copy.deepcopy(d) for d in spec.documents]
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            pod = d["spec"]["template"]["spec"]
            pod["volumes"] = [*pod.get("volumes", []), {"name": "data", "emptyDir": {}}]
            for c in pod["containers"]:
                c["volumeMounts"] = [*c.get("volumeMounts", []), {"name": "data", "mountPath": "/data"}]
    return dataclasses.replace(spec, documents=tuple(docs))


def node_loss_sample(image: str, *, replicas: int = 4, toleration_s: int | None = 2, kind: str = "Deployment",
                     data_volume: bool = False) -> WorkloadSpec:
    """The bundled sample app as the node-loss suite runs it: `replicas` spread over the workers,
    tolerating a lost node for `toleration_s` (None: the cluster's default), a Deployment or a
    StatefulSet, optionally with an emptyDir data volume. No PodDisruptionBudget: taint-based
    eviction does not consult budgets. A short grace period (6 s, preStop 2 s): pods deleted at the
    end of a drill go quickly, and a lost node's pods never get to use theirs."""
    spec = with_toleration(maintenance_sample(image, replicas=replicas, pdb="none", kind=kind, grace_seconds=6,
                                              prestop_seconds=2), toleration_s)
    return with_data_volume(spec) if data_volume else spec


# -- recording --------------------------------------------------------------------------------------

def _selector(spec: WorkloadSpec) -> str:
    return ",".join(f"{k}={v}" for k, v in spec.selector.items())


def _wait_bound(settings: EvictionSettings, watch: PodWatch, node: str, s: NodeLossSettings) -> float:
    """How long to wait for eviction and replacement: the latest predicted eviction plus the margin."""
    from kubedrill.record.eviction import toleration_for

    tols = [toleration_for(p.tolerations, UNREACHABLE) for p in watch.lives() if p.node == node]
    finite = [sec or 0.0 for tolerated, sec in tols if not (tolerated and sec is None)]
    longest = max(finite, default=0.0)
    return settings.grace_s + settings.monitor_period_s + 10 + longest + s.settle_margin_s


def _replaced(watch: PodWatch, node: str, replicas: int, lost_at: float) -> tuple[bool, str]:
    """Every pod of the workload on the lost node evicted (or tolerating for ever), and `replicas`
    Ready pods not being deleted."""
    from kubedrill.record.eviction import toleration_for

    lives = watch.lives()
    waiting = [p.name for p in lives if p.node == node and p.first_seen_at <= lost_at and p.deletion_at is None
               and toleration_for(p.tolerations, UNREACHABLE) != (True, None)]
    latest: dict[str, Any] = {}
    for p in lives:
        latest[p.name] = p  # the newest of a name (a StatefulSet's replacement) wins
    ready = [p.name for p in latest.values() if p.deletion_at is None and p.ready_at is not None
             and (p.unready_at is None or p.unready_at < p.ready_at) and p.node != node]
    done = not waiting and len(ready) >= replicas
    return done, f"not yet evicted: {waiting or 'none'}; Ready elsewhere: {len(ready)}/{replicas}"


def run_node_loss(cluster: Cluster, deployed: Deployed, disruption: str,
                  settings: NodeLossSettings = NodeLossSettings(), load: LoadPlan = LoadPlan(), *,
                  workdir: Path | None = None) -> NodeLossRecord:
    """Lose a worker with `disruption` (a registered node loss) under steady load and record the
    timeline (see the module docstring). `deployed` must be exposed on a host-mapped NodePort.
    Raises what the disruption raises: Inconclusive (UNKNOWN) when it cannot run here, the cluster
    was not healthy before, or the loss did not take effect."""
    cls = lookup(disruption)
    if not issubclass(cls, NodeLoss):
        raise ValueError(f"{disruption!r} is not a node loss; known: {', '.join(node_losses())}")
    if deployed.node_port is None or deployed.spec.service is None:
        raise ValueError(f"workload {deployed.name} has no host-mapped NodePort Service; deploy it with expose_service=True")
    ns, kind, name = deployed.namespace, deployed.kind, deployed.name
    if kind not in ("Deployment", "StatefulSet"):
        raise ValueError(f"workload {ns}/{name} is a {kind}: the node-loss scenario judges Deployments and StatefulSets")
    wait_workload_ready(cluster, ns, kind, name, timeout=120)
    eviction = read_eviction_settings(cluster)
    before = take_snapshot(cluster, [ns], label="before")
    workload = workload_state(before, ns, name)
    node = maintenance_order(before, workload, cluster.workers)[0]
    url = f"http://127.0.0.1:{cluster.host_port(deployed.node_port, cluster.control_planes[0])}"
    wait_http(url + deployed.spec.health_path, timeout=60)
    rec = Recorder(f"node-loss-{disruption}")
    d: NodeLoss = cls(cluster, node)
    runner = LoadRunner(url, path=deployed.spec.health_path, users=load.users, rate=load.rate,
                        processes=load.processes, run_time=load.max_s, max_requests=int(load.rate * load.max_s * 1.2),
                        recorder=rec, workdir=workdir, keep_alive=load.keep_alive, start_timeout=60)
    lost_at = healed_at = oos_at = oos_removed_at = None
    waited = ""
    with PodWatch(cluster, ns, _selector(deployed.spec), recorder=rec, max_seconds=1800) as watch, \
            NodeLossObserver(cluster, node, ns, deployed.spec.service, rec, max_seconds=1800) as observer, runner:
        time.sleep(settings.load_before_s)
        with d.applied(rec):
            lost_at = next(e.at for e in rec.events_of("disruption-injected"))
            try:
                bound = _wait_bound(eviction, watch, node, settings)
                if kind == "StatefulSet":
                    waited = _statefulset_course(cluster, watch, node, lost_at, bound, settings)
                else:
                    waited = until(f"the pods on {node} to be evicted and replaced", lambda: _replaced(
                        watch, node, workload.replicas, lost_at), max(1.0, lost_at + bound - time.monotonic()),
                        interval=1.0)
            except WaitTimeout as exc:
                waited = " ".join(str(exc).splitlines()[:2])
                rec.event("node-loss-wait-timeout", waited[:500])
            finally:
                oos_at = next((e.at for e in rec.events_of("out-of-service-tainted")), None)
                if oos_at is not None:  # the recovery's taint goes once the pods have moved (as documented)
                    cluster.kubectl("taint", "node", node, f"{OUT_OF_SERVICE}-", check=False, timeout=60)
                    oos_removed_at = rec.now()
            time.sleep(settings.load_after_s)
            healed_at = rec.now()
        end_at = rec.now()
    timeline = EvictionTimeline(
        node=node, disruption=disruption, workload_kind=kind, workload=f"{ns}/{name}", replicas=workload.replicas,
        settings=eviction, lost_at=lost_at if lost_at is not None else end_at, workers=tuple(cluster.workers),
        healed_at=healed_at, data_plane_lost=d.data_plane_lost, heartbeats=tuple(observer.heartbeats),
        node_seen=tuple(observer.node_seen), endpoints=tuple(observer.endpoints),
        pods=tuple(with_pv_nodes(cluster, ns, watch.lives())), endpoints_at_start=dict(observer.endpoints_at_start),
        out_of_service_at=oos_at, out_of_service_removed_at=oos_removed_at, end_at=end_at)
    return NodeLossRecord(
        disruption=disruption, namespace=ns, timeline=timeline, settings=settings, load=load,
        operations=rec.history, load_stats=runner.stats, load_log=runner.log_tail(200), effect=dict(d.effect),
        window=d.window, waited=waited, observer_errors=list(observer.errors), recorder=rec)


def _statefulset_course(cluster: Cluster, watch: PodWatch, node: str, lost_at: float, bound: float,
                        s: NodeLossSettings) -> str:
    """A StatefulSet: wait for the eviction of its pods on the lost node, watch them stuck for
    `stuck_hold_s`, then (if asked) taint the node out-of-service and wait for the replacements."""
    rec = watch.recorder

    def evicted() -> tuple[bool, str]:
        left = [p.name for p in watch.lives() if p.node == node and p.first_seen_at <= lost_at and p.deletion_at is None]
        return not left, f"not yet evicted: {left or 'none'}"

    seen = until(f"the StatefulSet's pods on {node} to be evicted", evicted,
                 max(1.0, lost_at + bound - s.settle_margin_s - time.monotonic()), interval=1.0)
    time.sleep(s.stuck_hold_s)
    if not s.recover_out_of_service:
        return seen + f"; held {s.stuck_hold_s:g} s, no recovery asked"
    cluster.kubectl("taint", "node", node, f"{OUT_OF_SERVICE}=nodeshutdown:NoExecute", "--overwrite", timeout=60)
    rec.event("out-of-service-tainted", node)
    stuck = {p.name for p in watch.lives() if p.node == node and p.first_seen_at <= lost_at}

    def replaced() -> tuple[bool, str]:
        lives = watch.lives()
        ready = {p.name for p in lives if p.name in stuck and p.first_seen_at > lost_at and p.ready_at is not None}
        return ready == stuck, f"replacements Ready: {sorted(ready)} of {sorted(stuck)}"

    return until(f"the StatefulSet's replacements to be Ready after the {OUT_OF_SERVICE} taint", replaced,
                 s.recovery_timeout_s, interval=1.0)


# -- judging ----------------------------------------------------------------------------------------

def judge(r: NodeLossRecord, expect: NodeLossExpectations) -> list[Verdict]:
    """Every check of a node loss, in the order a reader should see them."""
    t = r.timeline
    verdicts = [
        safe_check("node-declared-lost", check_node_declared_lost, t),
        safe_check("eviction-bound", check_eviction_bound, t, max_error_s=expect.max_eviction_error_s),
        safe_check("capacity-slo", check_capacity_slo, t, expect.min_serving, expect.max_degraded_s),
        safe_check("traffic-outage", check_traffic_outage, r.operations, t, slack_s=expect.endpoint_slack_s,
                   max_outage_s=expect.max_outage_s),
    ]
    if t.workload_kind == "StatefulSet":
        verdicts.append(safe_check("statefulset-stuck", check_statefulset_stuck, t))
        if r.settings.recover_out_of_service:
            verdicts.append(safe_check("out-of-service-recovery", check_out_of_service_recovery, t,
                                       max_s=expect.max_recovery_s))
    return verdicts
