"""The shutdown drill: terminate a workload's pods under traffic, record how each one ended, then judge.

    pool = TargetPool(cluster, sample_image=lambda: image)
    target = pool.get(Target("sample-graceful", sample_mode="graceful"))
    record = run_shutdown_drill(cluster, target, "delete")
    verdicts = judge(record, ShutdownThresholds())

One drill, in order:
  0. before anything else, how many slow requests at once an idle pod (the victim, if every pod is
     one) serves while still answering its health check within the readiness probe's timeout
     (kubedrill.load.probe.measure_capacity: 1, 2, 4, ... held for a moment, then cut). The drill
     never holds more than that on a pod: the in-flight probe must not be the load that breaks
     the app. If a victim still goes unready, or stops answering, while only its slow requests
     were added before the deletion, its verdict is UNKNOWN saying the probe did it;
  1. a PodWatch on the workload's pods, on kind nodes a RuntimeWatch (containerd's own events of
     the victims' containers: exit status, exit time, the exec preStop hook), and continuous
     traffic through the Service, recording on one Recorder: threads on this runner through kind's
     host ports (ServiceTraffic), or, where no host port reaches it (provider generic, a kind
     cluster without port mappings), locust pods in the cluster to its DNS name
     (kubedrill.load.path decides; a lost load pod is a load gap, never the app's failure). The victims are
     chosen first (one pod, or every pod for a rollout), and slow requests are sent to each of
     them straight through its own port-forward (kubedrill.load.direct), so the drill knows which
     pod holds them without the app's help (no X-Pod needed); a health check sent the same way
     asks each victim whether it still answers after its deletion (ignored SIGTERM vs handled it
     too slowly). One slow request of the same kind runs on another, idle pod to measure how long
     it takes, so the report can say when it is too short to span a termination;
  2. after the traffic has run for `lead_s` (the checker wants traffic right before the deletion),
     a one-pod cause starts `slow_per_pod` slow requests (capped as in 0) on its victim, waits
     until the victim holds them and `probe_hold_s` more; a rollout keeps starting them on every
     old pod (at most `slow_per_pod` + 2 in flight per pod, capped as in 0) until that pod is
     deleting;
  3. the cause -- a pod termination disruption from the registry (kubedrill.disrupt.pod: delete,
     evict, rollout-restart) -- is applied; the drill waits until every victim is removed from the
     API and the workload is whole again, then lets the traffic run `settle_s`;
  4. each victim's evidence becomes a TerminationRecord, with or without the app's own lifecycle
     record (`judge(..., app_record=False)` judges only what any pod leaves).

`run_shutdown_drill` only records; `judge` runs kubedrill.check.shutdown on the record. The suite
and its meta-test share both, so a broken app is caught by exactly the checks the suite asserts;
the latency benchmark deploys through the same pool.

Node ports are cluster-wide and only 30080-30082 reach the host on kind, so the pool keeps one
target deployed at a time (through the one deploy path, kubedrill.workload.deploy.deployed) and
gives it, and the lagging router in front of it, node ports no other Service holds. On the
in-cluster path neither takes a node port: the router is a ClusterIP Service the load pods reach
by name, and half the traffic goes through it there too, so both paths see the same race.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from kubedrill.check.shutdown import (
    ShutdownThresholds,
    check_shutdowns,
    termination_figures,
)
from kubedrill.check.load_gaps import check_load_gaps, gaps_of, hidden_by_gaps, without_gap_failures
from kubedrill.check.verdict import Figure, Verdict, safe_check
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import UnhealthyBefore
from kubedrill.disrupt.pod import PodTermination, termination_cause
from kubedrill.load.direct import DirectHealth, PortForward, container_port
from kubedrill.load.inflight import SlowStream
from kubedrill.load.lagged_lb import LaggedEndpoints
from kubedrill.load.path import InClusterTraffic, TrafficPath, choose
from kubedrill.load.probe import Capacity, SlowProbe, measure_capacity
from kubedrill.load.traffic import ServiceTraffic
from kubedrill.observe.pods import PodWatch
from kubedrill.observe.runtime import RuntimeWatch
from kubedrill.record import Operation, Recorder, Window
from kubedrill.record.termination import (
    PodEvidence,
    TerminationRecord,
    termination_record,
)
from kubedrill.workload import apply
from kubedrill.workload.deploy import (
    Deployed,
    deployed,
    free_node_port,
    live_pods,
    service_address,
    workload_ready,
)
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

    def thresholds(self, max_grace_fraction: float, max_failed_requests: int) -> ShutdownThresholds:
        """The checker's limits for this target: the SLO's. In-flight requests are always required:
        a workload without a slow_path gets UNKNOWN for them, not a silent pass."""
        return ShutdownThresholds(max_grace_fraction=max_grace_fraction, max_failed_requests=max_failed_requests)


@dataclass(frozen=True)
class LoadOptions:
    """The in-cluster load's pods (used on the in-cluster traffic path only)."""

    workers: int = 1  # locust worker pods
    image: str | None = None  # None: kubedrill's locust image


@dataclass(frozen=True)
class DeployedTarget:
    """A target on the cluster: the deployed workload, and the lagging router in front of it, if any."""

    target_id: str
    workload: Deployed  # in its own namespace; exposed on a host-mapped NodePort on the host-port path
    lb: LaggedEndpoints | None = None
    lb_url: str | None = None
    path: TrafficPath = TrafficPath("host-port", "")  # how the traffic reaches it (kubedrill.load.path)
    load: LoadOptions = LoadOptions()

    @property
    def traffic_urls(self) -> tuple[str, ...]:
        """Half of the traffic through the lagging router (if any), half straight to the workload:
        through each node's host port, or in the cluster to the Service's DNS name."""
        direct = self.workload.service_url if self.path.in_cluster else None
        targets = (direct,) if direct is not None else self.workload.urls
        if self.lb_url is None:
            return targets
        return tuple(u for t in targets for u in (self.lb_url, t))


class TargetPool:
    """Keeps at most one target deployed; asking for another tears the current one down first."""

    def __init__(self, cluster: Cluster, sample_image: Callable[[], str], keep_namespaces: bool = False,
                 lb_lag_s: float = 1.0, load: LoadOptions = LoadOptions()) -> None:
        self.cluster = cluster
        self.sample_image = sample_image
        self.lb_lag_s = lb_lag_s
        self.load = load
        self.keep_namespaces = keep_namespaces
        self.current: DeployedTarget | None = None
        self._teardown = contextlib.ExitStack()

    def get(self, target: Target, timeout: float = 240) -> DeployedTarget:
        if self.current is not None and self.current.target_id == target.id:
            return self.current
        self.release()
        path = choose(self.cluster)
        in_cluster = path.in_cluster
        with contextlib.ExitStack() as stack:
            d = stack.enter_context(deployed(self.cluster, self.spec_for(target), purpose=f"shutdown-{target.id}",
                                             expose_service=not in_cluster, keep=self.keep_namespaces, timeout=timeout))
            placed = DeployedTarget(target.id, d, path=path, load=self.load)
            service = d.spec.service or (service_address(d.spec)[0] if in_cluster else None)
            if self.lb_lag_s > 0 and service:
                # In the cluster the router is a ClusterIP Service its load pods reach by name.
                lb_port = None if in_cluster else free_node_port(self.cluster)
                # Stopped before the namespace goes; its Service and EndpointSlice go with the namespace.
                lb = stack.enter_context(LaggedEndpoints(self.cluster, d.namespace, service, lb_port,
                                                         Recorder(f"lb/{target.id}"), lag_s=self.lb_lag_s))
                if in_cluster:
                    lb_url = f"http://{lb.name}.{d.namespace}.svc.cluster.local:80"
                else:
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
    slow_fraction: float = 0.6  # slow requests ask for this fraction of the grace period ({seconds})
    # Slow requests held on a victim at its deletion: a few, and never more than one idle pod
    # sustained (kubedrill.load.probe.measure_capacity), so the probe is not the load that breaks
    # the app (two synchronous workers serve one: two leave nothing for the readiness probe).
    slow_per_pod: int = 2
    # False sends slow_per_pod without measuring what a pod sustains: the meta-test's too-heavy probe.
    measure_capacity: bool = True
    # The victim holds its slow requests this long before the deletion, so a pod the probe itself
    # makes unresponsive shows it in the health checks sent straight to it before anything else happens.
    probe_hold_s: float = 1.5


@dataclass
class ShutdownRecord:
    """What one drill saw: the cause and its effect, each terminated pod's end, the traffic."""

    cause: str
    disruption: PodTermination
    recorder: Recorder
    records: list[TerminationRecord]  # judged with the app's lifecycle record, where it wrote one
    evidence: list[PodEvidence]
    traffic: str  # summary line
    traffic_requests: int
    traffic_failed: int
    slow_started: int
    notes: list[str] = field(default_factory=list)
    grace: float = 0.0
    slow_ops: list[Operation] = field(default_factory=list)
    traffic_ops: list[Operation] = field(default_factory=list)
    direct_ops: list[Operation] = field(default_factory=list)  # health checks sent straight to victims
    idle_slow: Operation | None = None  # the slow request measured on a pod that was not terminated
    capacity: Capacity | None = None  # slow requests at once one idle pod sustained, measured before the drill
    slow_per_pod: int = 0  # slow requests held on each victim (the cap applied)
    inflight_skipped: str | None = None  # why no slow request was held on the victims, if none was
    runtime_lines: list[str] = field(default_factory=list)  # containerd's events about the victims (kind)
    runtime_inspect: dict[str, Any] = field(default_factory=dict)  # pod -> `crictl inspect` at its exit (kind)

    def records_without_app_record(self) -> list[TerminationRecord]:
        """The same terminations judged only on what any pod leaves (the app's record dropped)."""
        return [termination_record(e, self.recorder, requested_at=self.disruption.deletion_requested_at(e.pod),
                                   slow=self.slow_ops, traffic=self.traffic_ops, direct=self.direct_ops,
                                   grace_fallback=self.grace, use_app_record=False,
                                   inflight_skipped=self.inflight_skipped) for e in self.evidence]

    def dump(self, directory: Path) -> None:
        """Evidence for a failed test: pod statuses, events, the app's records, the raw history."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pods.json").write_text(json.dumps([e.to_dict() for e in self.evidence], indent=2, default=str))
        (directory / "records.json").write_text(json.dumps(
            [{k: v for k, v in dataclasses.asdict(r).items() if k not in ("traffic", "inflight", "direct")} |
             {"inflight": [dataclasses.asdict(o) for o in r.inflight], "traffic_ops": len(r.traffic),
              "direct": [dataclasses.asdict(o) for o in r.direct]}
             for r in self.records], indent=2, default=str))
        (directory / "history.json").write_text(self.recorder.to_json())
        (directory / "runtime.json").write_text(json.dumps({"events": self.runtime_lines,
                                                            "inspect": self.runtime_inspect}, indent=2))


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
    pods = live_pods(cluster, d.namespace, d.selector)
    if not pods:
        raise RuntimeError(f"{target.target_id}: no live pod matches {d.selector} in {d.namespace} to terminate")
    victims_chosen = pods[:1] if make.targets_one_pod else pods
    idle_pod = next((p for p in pods if p not in victims_chosen), None)
    first = cluster.core().read_namespaced_pod(pods[0], d.namespace, _request_timeout=30)
    port = container_port(first)
    readiness = first.spec.containers[0].readiness_probe
    health_timeout = float(readiness.timeout_seconds or 1) if readiness is not None else 1.0
    capacity: Capacity | None = None
    skipped: str | None = None
    per_pod_cap, stream_cap = settings.slow_per_pod, settings.slow_per_pod + 2
    if spec.slow_path is not None and settings.measure_capacity:
        capacity = idle_capacity(cluster, d, idle_pod or victims_chosen[0], port, slow_s, health_timeout,
                                 max_concurrent=stream_cap)
        notes.append(capacity.summary())
        per_pod_cap, stream_cap = min(per_pod_cap, capacity.sustained), min(stream_cap, capacity.sustained)
        if capacity.sustained == 0:
            limit = capacity.limited
            skipped = (f"even one slow request left {capacity.pod}'s health check unanswered while idle "
                       f"({limit.detail if limit else 'no level sustained'}), so holding one on a pod would test the "
                       "probe's load, not the shutdown")

    def slow_probe(url: str, pod: str, count: int, recorder: Recorder) -> SlowProbe:
        assert spec.slow_path is not None
        return SlowProbe(url, slow_s, count=count, path_template=spec.slow_path, expected_size=spec.slow_size,
                         margin=max(30.0, 2.0 * grace), recorder=recorder, pod=pod)

    with contextlib.ExitStack() as stack:
        watch = stack.enter_context(PodWatch(cluster, d.namespace, d.selector, rec, max_seconds=budget + 60))
        if target.lb is not None:
            target.lb.recorder = rec  # its endpoint changes go on this drill's record
        forward = {v: stack.enter_context(PortForward(cluster, d.namespace, v, port)) for v in victims_chosen}
        health = [stack.enter_context(DirectHealth(forward[v].url, spec.health_path, v, recorder=rec, max_run_s=budget))
                  for v in victims_chosen]
        runtime = stack.enter_context(RuntimeWatch(cluster, d.namespace, victims_chosen, rec, max_run_s=budget + 60))
        idle: SlowProbe | None = None
        slow_forward: dict[str, PortForward] = {}
        if spec.slow_path is None:
            notes.append("in-flight requests not probed: the workload spec has no slow_path")
        elif skipped is not None:
            notes.append(f"in-flight requests not probed: {skipped}")
        else:
            # A port-forward of their own: kubectl may end one whose other connection failed.
            slow_forward = {v: stack.enter_context(PortForward(cluster, d.namespace, v, port)) for v in victims_chosen}
            if idle_pod is not None:
                idle_forward = stack.enter_context(PortForward(cluster, d.namespace, idle_pod, port))
                idle = slow_probe(idle_forward.url, idle_pod, 1, Recorder("slow-idle"))
                idle.start()
            else:
                notes.append("slow request not measured on an idle pod: every pod is terminated")
        load = traffic(cluster, target, rec, settings, budget)
        probes: list[SlowProbe] = []
        streams: dict[str, SlowStream] = {}
        with load:
            try:
                time.sleep(settings.lead_s)
                victim: str | None = None
                if make.targets_one_pod:
                    victim = victims_chosen[0]
                    if victim in slow_forward:
                        probe = slow_probe(slow_forward[victim].url, victim, per_pod_cap, rec)
                        probes.append(probe)
                        probe.start()
                        probe.wait_in_flight(timeout=15)
                        time.sleep(settings.probe_hold_s)
                        notes.append(f"victim {victim} held {per_pod_cap} slow request(s), sent to it directly")
                elif slow_forward:
                    # Whichever old pod the controller deletes next holds a request started at most a
                    # third of its duration ago.
                    streams = {v: SlowStream(f.url, slow_s, recorder=rec, every_s=max(0.5, slow_s / 3),
                                             per_tick=1, max_run_s=budget, max_requests=int(budget),
                                             path_template=spec.slow_path or "", expected_size=spec.slow_size,
                                             margin_s=max(30.0, 2.0 * grace), pod=v, max_in_flight=stream_cap)
                               for v, f in slow_forward.items()}
                    for st in streams.values():
                        st.start()
                    time.sleep(1.0)
                disruption = make(d, victim)
                with probe_blamed(probes, health), disruption.applied(rec):
                    victims = list(disruption.victims)
                    if streams:
                        def deleting() -> tuple[bool, str]:
                            for v, st in streams.items():
                                if watch.deleting_since(v) is not None:
                                    st.stop_starting()
                            return all(watch.deleting_since(v) is not None for v in victims), watch.summary()
                        until("every old pod to be deleting", deleting, timeout=per_pod * len(victims), interval=0.2)
                    watch.wait_gone(victims, timeout=per_pod * len(victims))
                last_gone = max(watch.evidence(v, with_events=False).gone_at or rec.now() for v in victims)
                time.sleep(max(0.0, last_gone + settings.settle_s - rec.now()))
            finally:
                for st in streams.values():
                    st.stop_starting()
        for h in health:
            h.stop()
        for st in streams.values():
            st.join()
        for p in probes + ([idle] if idle is not None else []):
            p.join()
        runtime.stop()
        evidence = [dataclasses.replace(watch.evidence(v), runtime=runtime.evidence(v)) for v in victims]
    slow_ops = [o for p in probes for o in p.operations] + [o for st in streams.values() for o in st.operations]
    direct_ops = [o for h in health for o in h.operations]
    # A load worker lost during the drill is the load's failure: its failed requests are not the app's.
    ops = without_gap_failures(load.operations, gaps_of(rec.events))
    records = [termination_record(e, rec, requested_at=disruption.deletion_requested_at(e.pod), slow=slow_ops,
                                  traffic=ops, direct=direct_ops, grace_fallback=grace,
                                  inflight_skipped=skipped) for e in evidence]
    idle_op = idle.operations[0] if idle is not None and idle.operations else None
    return ShutdownRecord(cause, disruption, rec, records, evidence, load.summary(), len(ops),
                          sum(1 for o in ops if o.outcome != "ok"), len(slow_ops), notes, grace=grace,
                          slow_ops=slow_ops, traffic_ops=ops, direct_ops=direct_ops, idle_slow=idle_op,
                          capacity=capacity, slow_per_pod=0 if skipped else per_pod_cap, inflight_skipped=skipped,
                          runtime_lines=list(runtime.lines), runtime_inspect=dict(runtime.inspected))


def traffic(cluster: Cluster, target: DeployedTarget, rec: Recorder, settings: DrillSettings,
            budget: float) -> ServiceTraffic | InClusterTraffic:
    """The drill's continuous traffic on the target's path (kubedrill.load.path): threads on this
    runner through host ports, or locust pods in the cluster; either way one fresh connection per
    request, no retries, the same rate and clients, recorded on `rec`."""
    spec = target.workload.spec
    if target.path.in_cluster:
        return InClusterTraffic(cluster, target.traffic_urls, recorder=rec, path=spec.health_path, rate=settings.rate,
                                users=settings.workers, run_time=budget, workers=target.load.workers,
                                image=target.load.image, purpose=f"load-{target.target_id}", keep_alive=False,
                                request_timeout=3.0)
    return ServiceTraffic(target.traffic_urls, recorder=rec, path=spec.health_path, rate=settings.rate,
                          workers=settings.workers, max_requests=int(settings.rate * budget) + 1000, max_run_s=budget)


def idle_capacity(cluster: Cluster, d: Deployed, pod: str, port: int, slow_s: float, health_timeout: float,
                  max_concurrent: int) -> Capacity:
    """How many slow requests at once `pod` sustains before the drill (kubedrill.load.probe
    measure_capacity, through two port-forwards of its own), then wait until the workload is whole
    again: a level it did not sustain may have made the pod unready for a moment."""
    spec = d.spec
    assert spec.slow_path is not None
    with PortForward(cluster, d.namespace, pod, port) as slow, PortForward(cluster, d.namespace, pod, port) as health:
        capacity = measure_capacity(slow.url, health.url, pod, seconds=slow_s, health_path=spec.health_path,
                                    path_template=spec.slow_path, expected_size=spec.slow_size,
                                    max_concurrent=max(1, max_concurrent), health_timeout_s=health_timeout)
    until(f"{d.kind} {d.namespace}/{d.name} to be whole again after measuring what {pod} sustains",
          lambda: workload_ready(cluster, d.namespace, d.kind, d.name), timeout=90, interval=1.0,
          hint=f"the ramp stopped at {capacity.limited or 'no limit'}; a pod that stays unready after its slow "
               "requests were cut does not recover from load")
    return capacity


@contextlib.contextmanager
def probe_blamed(probes: list[SlowProbe], health: list[DirectHealth]) -> Iterator[None]:
    """Say so when the system is unhealthy before the injection and the victim stopped answering its
    health checks only after its slow requests were sent: the probe, not the app's shutdown, is then
    the likely cause, and the drill is inconclusive for that reason."""
    try:
        yield
    except UnhealthyBefore as exc:
        since = min((p.started_at for p in probes if p.started_at is not None), default=None)
        ops = sorted((o for h in health for o in h.operations), key=lambda o: o.start)
        before = [o for o in ops if since is not None and o.end <= since]
        after = [o for o in ops if since is not None and o.start >= since and o.outcome != "ok"]
        if not probes or not before or before[-1].outcome != "ok" or not after:
            raise
        load = sum(p.count for p in probes)
        raise UnhealthyBefore(f"the in-flight probe itself made the pod unready at {load} concurrent request(s): "
                              f"{exc}; its health check answered before the probe began and got "
                              f"{after[0].detail or after[0].outcome} after") from exc


def slow_span_figure(record: ShutdownRecord, rec: TerminationRecord) -> Figure:
    """How long the slow request took on an idle pod, and whether that spans this pod's termination:
    it must outlast the moment the pod stopped serving (or exited), else draining was not tested by it."""
    idle = record.idle_slow
    if idle is None:
        return Figure("slow_request_idle_s", None, "s", f"{rec.pod}: not measured; " + "; ".join(record.notes))
    took = round(idle.end - idle.start, 2)
    if idle.outcome != "ok":
        return Figure("slow_request_idle_s", took, "s", f"{rec.pod}: the slow request did not complete even on an "
                                                        f"idle pod ({idle.outcome}: {idle.detail})")
    t0 = rec.start
    after = [o for o in rec.direct if t0 is not None and o.start >= t0]
    answered = [o for o in after if o.outcome == "ok"]
    stopped = next((o.start for o in after if o.outcome != "ok" and (not answered or o.start > answered[-1].start)),
                   rec.exit_at)
    if t0 is None or stopped is None:
        return Figure("slow_request_idle_s", took, "s", f"{rec.pod}: the termination's span is unknown")
    need = stopped - t0
    verdict = ("spans it" if took > need else
               "TOO SHORT to span the termination: a request started at the deletion ends before the pod stopped "
               "serving, so it does not test draining; use a slower slow_path")
    return Figure("slow_request_idle_s", took, "s", f"{rec.pod}: stopped serving or exited {need:.1f} s after deletion; "
                                                    f"{verdict}")


def judge(record: ShutdownRecord, thresholds: ShutdownThresholds = ShutdownThresholds(),
          app_record: bool = True) -> list[Verdict]:
    """The shutdown verdict over every terminated pod, carrying the drill's figures: per pod what the
    checker does not already report (termination_figures), and the traffic of the whole drill.
    app_record=False drops the app's lifecycle record: the judgement any third-party app gets."""
    records = record.records if app_record else record.records_without_app_record()
    verdict = safe_check("shutdown", check_shutdowns, records, thresholds)
    for rec, ev in zip(records, record.evidence):
        verdict.figures += termination_figures(rec, ev, thresholds.settle_seconds)
        verdict.figures.append(slow_span_figure(record, rec))
    verdict.figures += [
        Figure("requests", record.traffic_requests, "requests", record.traffic),
        Figure("requests_failed", record.traffic_failed, "requests", "whole drill, all pods"),
        Figure("slow_requests_started", record.slow_started, "requests", "; ".join(record.notes)),
        Figure("slow_requests_per_pod", record.slow_per_pod, "requests",
               record.inflight_skipped or ("capped at what " + record.capacity.summary()) if record.capacity
               else "not measured on an idle pod first"),
        Figure("app_record", int(app_record), "bool", "judged with the app's lifecycle record" if app_record
               else "judged only on what any pod leaves (the app's lifecycle record dropped)"),
    ]
    gaps = gaps_of(record.recorder.events)
    if not gaps:
        return [verdict]
    # A load worker lost while pods terminated may hide dropped requests: the load's failure, not the app's.
    gap = safe_check("load-gap", check_load_gaps, gaps, record.traffic_ops, termination_window(records))
    return [hidden_by_gaps(verdict, gap), gap]


def termination_window(records: list[TerminationRecord], settle_s: float = 2.0) -> Window | None:
    """From the first deletion to the last exit (+ settle_s): where dropped requests are judged."""
    starts = [r.start for r in records if r.start is not None]
    ends = [(r.exit_at if r.exit_at is not None else r.start + r.grace_seconds) + settle_s
            for r in records if r.start is not None]
    return Window(min(starts), max(ends)) if starts else None
