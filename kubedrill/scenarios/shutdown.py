"""The shutdown drill: terminate a workload's pods under traffic, record how each one ended, then judge.

    pool = TargetPool(cluster, sample_image=lambda: image)
    target = pool.get(Target("sample-graceful", sample_mode="graceful"))
    record = run_shutdown_drill(cluster, target, "delete")
    verdicts = judge(record, ShutdownThresholds())

One drill, in order:
  1. a PodWatch on the workload's pods, continuous traffic through the Service (ServiceTraffic)
     and a SlowStream of long requests, all recording on one Recorder;
  2. after the traffic has run for `lead_s` (the checker wants traffic right before the deletion),
     a cause that terminates one pod gets a victim among the pods holding slow requests, so
     draining is really tested;
  3. the cause -- a pod termination disruption from the registry (kubedrill.disrupt.pod: delete,
     evict, rollout-restart) -- is applied; the drill waits until every victim is removed from the
     API and the workload is whole again, then lets the traffic run `settle_s`;
  4. each victim's evidence becomes a TerminationRecord.

`run_shutdown_drill` only records; `judge` runs kubedrill.check.shutdown on the record. The suite
and its meta-test share both, so a broken app is caught by exactly the checks the suite asserts;
the latency benchmark deploys through the same pool.

Node ports are cluster-wide and only 30080-30082 reach the host on kind, so the pool keeps one
target deployed at a time (through the one deploy path, kubedrill.workload.deploy.deployed) and
gives it, and the lagging router in front of it, node ports no other Service holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kubedrill.check.shutdown import (
    ShutdownThresholds,
    check_shutdowns,
    termination_figures,
)
from kubedrill.check.verdict import Figure, Verdict, safe_check
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.waits import until
from kubedrill.disrupt.pod import PodTermination, termination_cause
from kubedrill.load.inflight import SlowStream
from kubedrill.load.lagged_lb import LaggedEndpoints
from kubedrill.load.traffic import ServiceTraffic
from kubedrill.observe.pods import PodWatch
from kubedrill.record import Recorder
from kubedrill.record.termination import (
    PodEvidence,
    TerminationRecord,
    termination_record,
)
from kubedrill.workload import apply
from kubedrill.workload.deploy import Deployed, deployed, free_node_port, live_pods
from kubedrill.workload.sample import sample_workload
from kubedrill.workload.spec import WorkloadSpec


@dataclass(frozen=True)
class Target:
    """A workload under test, named `id` in test IDs: a user's spec, or the sample app in one mode."""

    id: str
    spec: WorkloadSpec | None = None
    sample_mode: str | None = None
    sample_grace: int = 15
    sample_prestop: float | None = None  # default: a third of the grace period
    config_name: str | None = None  # the run config's workload name (its SLO overrides)
    unsupported: str | None = None  # why this workload cannot be drilled (the test skips, saying so)

    @property
    def probes_inflight(self) -> bool:
        """Slow requests can be held open on its pods (the sample app, or a spec with `slow_path`)."""
        return self.sample_mode is not None or (self.spec is not None and self.spec.slow_path is not None)

    def thresholds(self, max_grace_fraction: float, max_failed_requests: int) -> ShutdownThresholds:
        """The checker's limits for this target: the SLO's, and in-flight requests required where probed."""
        return ShutdownThresholds(max_grace_fraction=max_grace_fraction, max_failed_requests=max_failed_requests,
                                  require_inflight=self.probes_inflight)


@dataclass(frozen=True)
class DeployedTarget:
    """A target on the cluster: the deployed workload, and the lagging router in front of it, if any."""

    target_id: str
    workload: Deployed  # in its own namespace, exposed on a host-mapped NodePort
    lb: LaggedEndpoints | None = None
    lb_url: str | None = None

    @property
    def traffic_urls(self) -> tuple[str, ...]:
        """Half of the traffic through the lagging router (if any), half straight through each node."""
        if self.lb_url is None:
            return self.workload.urls
        return tuple(u for direct in self.workload.urls for u in (self.lb_url, direct))


class TargetPool:
    """Keeps at most one target deployed; asking for another tears the current one down first."""

    def __init__(self, cluster: Cluster, sample_image: Callable[[], str], keep_namespaces: bool = False,
                 lb_lag_s: float = 1.0) -> None:
        self.cluster = cluster
        self.sample_image = sample_image
        self.lb_lag_s = lb_lag_s
        self.keep_namespaces = keep_namespaces
        self.current: DeployedTarget | None = None
        self._teardown = contextlib.ExitStack()

    def get(self, target: Target, timeout: float = 240) -> DeployedTarget:
        if self.current is not None and self.current.target_id == target.id:
            return self.current
        self.release()
        with contextlib.ExitStack() as stack:
            d = stack.enter_context(deployed(self.cluster, self.spec_for(target), purpose=f"shutdown-{target.id}",
                                             expose_service=True, keep=self.keep_namespaces, timeout=timeout))
            placed = DeployedTarget(target.id, d)
            if self.lb_lag_s > 0 and d.spec.service:
                lb_port = free_node_port(self.cluster)
                # Stopped before the namespace goes; its Service and EndpointSlice go with the namespace.
                lb = stack.enter_context(LaggedEndpoints(self.cluster, d.namespace, d.spec.service, lb_port,
                                                         Recorder(f"lb/{target.id}"), lag_s=self.lb_lag_s))
                lb_url = f"http://127.0.0.1:{self.cluster.host_port(lb_port)}"
                apply.wait_http(lb_url + d.spec.health_path, timeout=60)
                placed = dataclasses.replace(placed, lb=lb, lb_url=lb_url)
            self._teardown = stack.pop_all()
        self.current = placed
        return placed

    def spec_for(self, target: Target) -> WorkloadSpec:
        """The target's spec; the deploy path exposes its Service on a free host-mapped node port."""
        if target.sample_mode is not None:
            g = target.sample_grace
            # preStop a third of the grace period: longer than the lagging router's delay, and
            # leaving the app time to drain the slow requests (which last 0.6 x grace).
            prestop = target.sample_prestop if target.sample_prestop is not None else max(2, g // 3)
            return sample_workload(target.sample_mode, replicas=3, grace_seconds=g, prestop_seconds=prestop,
                                   image=self.sample_image(), min_available=1, node_port=None)
        if target.spec is None:
            raise ValueError(f"target {target.id} has neither a workload spec nor a sample mode")
        return target.spec

    def release(self) -> None:
        """Tear the current target down (its node ports are free when this returns)."""
        self.current = None
        stack, self._teardown = self._teardown, contextlib.ExitStack()
        stack.close()


# -- one drill ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DrillSettings:
    """How hard and how long the drill loads the target around the termination."""

    rate: float = 40.0  # req/s in total, each on a fresh connection (kubedrill.load.traffic)
    workers: int = 8
    lead_s: float = 3.0  # traffic before the deletion (the checker needs some in the 2 s before it)
    settle_s: float = 3.0  # traffic after the last pod is gone (the checker judges exit + 2 s)
    slow_fraction: float = 0.6  # slow requests last this fraction of the grace period


@dataclass
class ShutdownRecord:
    """What one drill saw: the cause and its effect, each terminated pod's end, the traffic."""

    cause: str
    disruption: PodTermination
    recorder: Recorder
    records: list[TerminationRecord]
    evidence: list[PodEvidence]
    traffic: str  # summary line
    traffic_requests: int
    traffic_failed: int
    slow_started: int
    notes: list[str] = field(default_factory=list)

    def dump(self, directory: Path) -> None:
        """Evidence for a failed test: pod statuses, events, the app's records, the raw history."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pods.json").write_text(json.dumps([e.to_dict() for e in self.evidence], indent=2, default=str))
        (directory / "records.json").write_text(json.dumps(
            [{k: v for k, v in dataclasses.asdict(r).items() if k not in ("traffic", "inflight")} |
             {"inflight": [dataclasses.asdict(o) for o in r.inflight], "traffic_ops": len(r.traffic)}
             for r in self.records], indent=2, default=str))
        (directory / "history.json").write_text(self.recorder.to_json())


def run_shutdown_drill(cluster: Cluster, target: DeployedTarget, cause: str,
                       settings: DrillSettings = DrillSettings()) -> ShutdownRecord:
    """One termination cause (a registry name) applied to a deployed target under traffic (steps in
    the module docstring). Every wait is bounded by the grace period plus a margin per terminated pod."""
    make = termination_cause(cause)
    d = target.workload
    spec, grace = d.spec, d.spec.grace_seconds
    rec = Recorder(f"shutdown/{target.target_id}/{cause}")
    per_pod = grace + 60
    budget = settings.lead_s + per_pod * (1 if make.targets_one_pod else spec.replicas) + 120
    notes: list[str] = []
    slow_s = round(max(2.0, settings.slow_fraction * grace), 1)
    with PodWatch(cluster, d.namespace, d.selector, rec, max_seconds=budget + 60) as watch:
        if target.lb is not None:
            target.lb.recorder = rec  # its endpoint changes go on this drill's record
        load = ServiceTraffic(target.traffic_urls, recorder=rec, path=spec.health_path, rate=settings.rate,
                              workers=settings.workers, max_requests=int(settings.rate * budget) + 1000, max_run_s=budget)
        stream = (SlowStream(d.base_url, slow_s, recorder=rec, every_s=0.125, per_tick=1, max_run_s=budget,
                             max_requests=int(budget * 8), path_template=spec.slow_path)
                  if spec.slow_path else None)
        if stream is None:
            notes.append("in-flight requests not probed: the workload spec has no slow_path")
        with load:
            if stream is not None:
                stream.start()
            try:
                t_lead = rec.now()
                time.sleep(settings.lead_s)
                victim: str | None = None
                if make.targets_one_pod:
                    if stream is not None:
                        holders = stream.wait_holders(since=max(t_lead, rec.now() - 1.5), timeout=15)
                        victim = holders.most_common(1)[0][0]
                        notes.append(f"victim {victim} held {holders[victim]} slow request(s); holders {dict(holders)}")
                        stream.stop_starting()
                    else:
                        victim = live_pods(cluster, d.namespace, d.selector)[0]
                disruption = make(d, victim)
                with disruption.applied(rec):
                    victims = list(disruption.victims)
                    if stream is not None and not make.targets_one_pod:
                        until("every old pod to be deleting", lambda: (
                            all(watch.deleting_since(v) is not None for v in victims), watch.summary()),
                            timeout=per_pod * len(victims), interval=0.2)
                        stream.stop_starting()
                    watch.wait_gone(victims, timeout=per_pod * len(victims))
                last_gone = max(watch.evidence(v, with_events=False).gone_at or rec.now() for v in victims)
                time.sleep(max(0.0, last_gone + settings.settle_s - rec.now()))
            finally:
                if stream is not None:
                    stream.stop_starting()
        if stream is not None:
            stream.join()
        evidence = [watch.evidence(v) for v in victims]
    slow_ops = stream.operations if stream is not None else []
    records = [termination_record(e, rec, requested_at=disruption.deletion_requested_at(e.pod), slow=slow_ops,
                                  traffic=load.operations, grace_fallback=grace) for e in evidence]
    ops = load.operations
    return ShutdownRecord(cause, disruption, rec, records, evidence, load.summary(), len(ops),
                          sum(1 for o in ops if o.outcome != "ok"), stream.started if stream else 0, notes)


def judge(record: ShutdownRecord, thresholds: ShutdownThresholds = ShutdownThresholds()) -> list[Verdict]:
    """The shutdown verdict over every terminated pod, carrying the drill's figures: per pod what the
    checker does not already report (termination_figures), and the traffic of the whole drill."""
    verdict = safe_check("shutdown", check_shutdowns, record.records, thresholds)
    for rec, ev in zip(record.records, record.evidence):
        verdict.figures += termination_figures(rec, ev, thresholds.settle_seconds)
    verdict.figures += [
        Figure("requests", record.traffic_requests, "requests", record.traffic),
        Figure("requests_failed", record.traffic_failed, "requests", "whole drill, all pods"),
        Figure("slow_requests_started", record.slow_started, "requests", "; ".join(record.notes)),
    ]
    return [verdict]
