"""The shutdown suite's wiring: put a workload on the cluster, terminate pods under load, collect
what happened into TerminationRecords. No judging here (kubedrill.check.shutdown does that).

One drill, in order:
  1. a PodWatch on the workload's pods, continuous load through the Service (LoadRunner) and a
     SlowStream of long requests, all recording on one Recorder;
  2. after the load has run for `lead_s` (the checker wants traffic right before the deletion),
     the victim is chosen among the pods holding slow requests, so draining is really tested;
  3. the cause (delete / evict / rollout-restart) is applied; the drill waits until every victim
     is removed from the API and the workload is whole again, then lets the load run `settle_s`;
  4. each victim's evidence becomes a TerminationRecord.

Node ports are cluster-wide and only 30080-30082 reach the host on kind, so the pool keeps one
workload deployed at a time and gives it a node port no other Service in the cluster holds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kubedrill.record.termination import TerminationRecord
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.progress import say
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import Disruption
from kubedrill.disrupt.pod import DeletePod, EvictPod, RolloutRestart, live_pods
from kubedrill.record.termination import PodEvidence, termination_record
from kubedrill.observe.pods import PodWatch
from kubedrill.load.inflight import SlowStream
from kubedrill.load.lagged_lb import LaggedEndpoints
from kubedrill.load.traffic import ServiceTraffic
from kubedrill.record import Recorder
from kubedrill.workload import apply
from kubedrill.workload.manifests import WORKLOAD_KINDS
from kubedrill.workload.sample import sample_workload
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError, render_manifests

RESTARTABLE = ("Deployment", "StatefulSet", "DaemonSet")


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


@dataclass(frozen=True)
class Deployed:
    target_id: str
    spec: WorkloadSpec  # in its own namespace, exposed on `node_port`
    kind: str
    workload: str
    node_port: int
    base_url: str  # through the first node's NodePort
    entry_urls: tuple[str, ...]  # through every node's NodePort
    lb: LaggedEndpoints | None = None  # the lagging router in front of the Service, if any
    lb_url: str | None = None

    @property
    def traffic_urls(self) -> tuple[str, ...]:
        """Half of the traffic through the lagging router (if any), half straight through each node."""
        if self.lb_url is None:
            return self.entry_urls
        return tuple(u for direct in self.entry_urls for u in (self.lb_url, direct))

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.spec.selector.items())


def workload_object(spec: WorkloadSpec) -> tuple[str, str]:
    """(kind, name) of the one Deployment/StatefulSet/DaemonSet whose pods are under test."""
    objs = [d for d in spec.documents if d["kind"] in WORKLOAD_KINDS and d["kind"] in RESTARTABLE]
    matching = [d for d in objs if _selects(d, spec.selector)] or objs
    if len(matching) != 1:
        raise WorkloadSpecError(f"workload {spec.name!r}: expected one Deployment/StatefulSet/DaemonSet selecting "
                                f"{spec.selector}, found {[d['metadata']['name'] for d in matching] or 'none'}")
    return matching[0]["kind"], matching[0]["metadata"]["name"]


def _selects(doc: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = (doc.get("spec", {}).get("template", {}).get("metadata", {}) or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def expose(spec: WorkloadSpec, node_port: int) -> WorkloadSpec:
    """The spec with its Service reachable on `node_port` (type NodePort, first port).

    Why rewrite the user's Service: on kind only a few node ports are mapped to 127.0.0.1, and the
    test's copy of the workload lives in a throwaway namespace, so changing the port there is safe.
    """
    services = [d for d in spec.documents if d["kind"] == "Service"]
    chosen = [d for d in services if d["metadata"]["name"] == spec.service] or services
    if len(chosen) != 1:
        raise WorkloadSpecError(f"workload {spec.name!r}: traffic goes through one Service; found "
                                f"{[d['metadata']['name'] for d in services] or 'none'} (set `service:` in the spec)")
    docs = [copy.deepcopy(d) for d in spec.documents]
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] == chosen[0]["metadata"]["name"]:
            d["spec"]["type"] = "NodePort"
            ports = d["spec"].get("ports") or []
            if not ports:
                raise WorkloadSpecError(f"workload {spec.name!r}: Service {d['metadata']['name']} has no ports")
            ports[0]["nodePort"] = node_port
    return dataclasses.replace(spec, documents=tuple(docs), node_port=node_port, service=chosen[0]["metadata"]["name"])


# -- deploying ----------------------------------------------------------------------------------

def _node_ports_in_use(cluster: Cluster) -> set[int]:
    used: set[int] = set()
    for svc in cluster.core().list_service_for_all_namespaces(_request_timeout=30).items:
        for p in svc.spec.ports or []:
            if p.node_port:
                used.add(int(p.node_port))
    return used


def free_node_port(cluster: Cluster, preferred: int | None, timeout: float = 90) -> int:
    """A host-mapped node port that no Service holds, waiting for one to be released if needed."""
    mapped = sorted(cluster.port_map)
    if not mapped:
        raise RuntimeError(f"cluster {cluster.name} maps no node port to 127.0.0.1; the shutdown suite sends traffic "
                           "through one (kind configs map 30080-30082)")
    order = ([preferred] if preferred in mapped else []) + [p for p in mapped if p != preferred]
    found: list[int] = []

    def probe() -> tuple[bool, str]:
        used = _node_ports_in_use(cluster)
        free = [p for p in order if p not in used]
        found[:] = free[:1]
        return bool(free), f"mapped {mapped}, in use {sorted(used & set(mapped))}"

    until("a free host-mapped node port", probe, timeout, interval=2.0,
          hint="another test's Service holds every mapped node port; run shutdown tests one at a time per cluster")
    return found[0]


def _image_id_local(image: str) -> str | None:
    p = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True,
                       timeout=60)
    return p.stdout.strip() or None if p.returncode == 0 else None


def images_present(cluster: Cluster, image: str) -> bool:
    """Every node already has this exact image (same ID as the local one): `kind load` can be skipped."""
    want = _image_id_local(image)
    if want is None:
        return False
    for node in cluster.all_nodes:
        p = cluster.node_exec(node, "crictl", "inspecti", "-o", "json", image, check=False, timeout=60)
        try:
            got = json.loads(p.stdout)["status"]["id"] if p.returncode == 0 else None
        except (ValueError, KeyError):
            got = None
        if got != want:
            return False
    return True


class TargetPool:
    """Keeps at most one target deployed; asking for another tears the current one down first."""

    def __init__(self, cluster: Cluster, sample_image: Callable[[], str], keep_namespaces: bool = False,
                 lb_lag_s: float = 1.0) -> None:
        self.cluster = cluster
        self.sample_image = sample_image
        self.lb_lag_s = lb_lag_s
        self.keep_namespaces = keep_namespaces
        self.current: Deployed | None = None

    def get(self, target: Target, timeout: float = 240) -> Deployed:
        if self.current is not None and self.current.target_id == target.id:
            return self.current
        self.release()
        port = free_node_port(self.cluster, target.spec.node_port if target.spec is not None else None)
        spec = self.spec_for(target, port)
        ns = apply.unique_namespace(f"shutdown-{target.id}")
        spec = spec.in_namespace(ns)
        kind, name = workload_object(spec)
        self._load_images(spec)
        apply.create_namespace(self.cluster, ns)
        urls = tuple(f"http://127.0.0.1:{hp}" for hp in self.cluster.port_map[port].values())
        deployed = Deployed(target.id, spec, kind, name, port, urls[0], urls)
        self.current = deployed
        apply.apply_docs(self.cluster, render_manifests(spec), ns)
        from kubedrill.disrupt.pod import workload_ready

        until(f"{kind} {ns}/{name} to be ready", lambda: workload_ready(self.cluster, ns, kind, name), timeout,
              interval=1.0, hint="ImagePullBackOff means the image is not in the nodes (kind load docker-image)",
              diagnose=lambda: self.cluster.kubectl("get", "pods,events", "-n", ns, check=False, timeout=30).stdout)
        apply.wait_http(deployed.base_url + spec.health_path, timeout=60)
        if self.lb_lag_s > 0 and spec.service:
            lb_port = free_node_port(self.cluster, None)
            lb = LaggedEndpoints(self.cluster, ns, spec.service, lb_port, Recorder(f"lb/{target.id}"), lag_s=self.lb_lag_s)
            lb.start()
            lb_url = f"http://127.0.0.1:{self.cluster.host_port(lb_port)}"
            deployed = dataclasses.replace(deployed, lb=lb, lb_url=lb_url)
            self.current = deployed
            apply.wait_http(lb_url + spec.health_path, timeout=60)
        return deployed

    def spec_for(self, target: Target, node_port: int) -> WorkloadSpec:
        if target.sample_mode is not None:
            g = target.sample_grace
            # preStop a third of the grace period: longer than the lagging router's delay, and
            # leaving the app time to drain the slow requests (which last 0.6 x grace).
            prestop = target.sample_prestop if target.sample_prestop is not None else max(2, g // 3)
            return sample_workload(target.sample_mode, replicas=3, grace_seconds=g, prestop_seconds=prestop,
                                   image=self.sample_image(), min_available=1, node_port=node_port)
        assert target.spec is not None, f"target {target.id} has neither a spec nor a sample mode"
        return expose(target.spec, node_port)

    def _load_images(self, spec: WorkloadSpec) -> None:
        if self.cluster.provider != "kind":
            return
        from kubedrill.cluster import kind

        for image in spec.images:
            if not images_present(self.cluster, image):
                say(f"loading image {image} into {self.cluster.name}")
                kind.load_image(self.cluster, image)

    def release(self) -> None:
        """Free the node port at once (delete the Service and wait), then the namespace in the background."""
        d, self.current = self.current, None
        if d is None:
            return
        if d.lb is not None:
            d.lb.stop()
        if self.keep_namespaces:
            return
        if d.lb is not None:
            d.lb.delete()
        if d.spec.service:
            self.cluster.kubectl("delete", "service", d.spec.service, "-n", d.spec.namespace, "--ignore-not-found",
                                 "--wait=true", "--timeout=60s", timeout=90, check=False)
        apply.delete_namespace(self.cluster, d.spec.namespace, wait=True)


# -- one drill ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DrillSettings:
    rate: float = 40.0  # req/s in total, each on a fresh connection (kubedrill.probe.traffic)
    workers: int = 8
    lead_s: float = 3.0  # load before the deletion (the checker needs some in the 2 s before it)
    settle_s: float = 3.0  # load after the last pod is gone (the checker judges exit + 2 s)
    slow_fraction: float = 0.6  # slow requests last this fraction of the grace period


@dataclass
class DrillResult:
    cause: str
    disruption: Disruption
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


def make_disruption(cause: str, cluster: Cluster, d: Deployed, victim: str | None) -> DeletePod | EvictPod | RolloutRestart:
    ns, grace = d.spec.namespace, d.spec.grace_seconds
    recover = 120 + 2 * grace
    if cause == "delete":
        assert victim is not None
        return DeletePod(cluster, ns, victim, kind=d.kind, workload=d.workload, recover_timeout_s=recover)
    if cause == "evict":
        assert victim is not None
        return EvictPod(cluster, ns, victim, kind=d.kind, workload=d.workload, recover_timeout_s=recover)
    if cause == "rollout-restart":
        return RolloutRestart(cluster, ns, kind=d.kind, workload=d.workload, selector=d.selector,
                              recover_timeout_s=120 + d.spec.replicas * (grace + 30))
    raise ValueError(f"unknown termination cause {cause!r}; use delete, evict or rollout-restart")


def run_drill(cluster: Cluster, d: Deployed, cause: str, settings: DrillSettings = DrillSettings()) -> DrillResult:
    """One termination cause applied to a deployed workload under traffic (steps in the module docstring).
    Every wait is bounded by the grace period plus a margin per terminated pod."""
    spec, grace = d.spec, d.spec.grace_seconds
    rec = Recorder(f"shutdown/{d.target_id}/{cause}")
    per_pod = grace + 60
    budget = settings.lead_s + per_pod * (spec.replicas if cause == "rollout-restart" else 1) + 120
    notes: list[str] = []
    slow_s = round(max(2.0, settings.slow_fraction * grace), 1)
    with PodWatch(cluster, spec.namespace, d.selector, rec, max_seconds=budget + 60) as watch:
        if d.lb is not None:
            d.lb.recorder = rec  # its endpoint changes go on this drill's record
        load = ServiceTraffic(d.traffic_urls, recorder=rec, path=spec.health_path, rate=settings.rate,
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
                if cause in ("delete", "evict"):
                    if stream is not None:
                        holders = stream.wait_holders(since=max(t_lead, rec.now() - 1.5), timeout=15)
                        victim = holders.most_common(1)[0][0]
                        notes.append(f"victim {victim} held {holders[victim]} slow request(s); holders {dict(holders)}")
                        stream.stop_starting()
                    else:
                        victim = live_pods(cluster, spec.namespace, d.selector)[0]
                disruption = make_disruption(cause, cluster, d, victim)
                with disruption.applied(rec):
                    victims = list(disruption.victims)
                    if stream is not None and cause == "rollout-restart":
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
    requested = disruption.requested_at if cause in ("delete", "evict") else None
    records = [termination_record(e, rec, requested_at=requested, slow=slow_ops, traffic=load.operations,
                                  grace_fallback=grace) for e in evidence]
    ops = load.operations
    return DrillResult(cause, disruption, rec, records, evidence, load.summary(), len(ops),
                       sum(1 for o in ops if o.outcome != "ok"), stream.started if stream else 0, notes)
