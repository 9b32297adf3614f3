"""Node maintenance operations as disruptions: cordon, drain (real `kubectl drain`), reboot, and a
rolling drain over several nodes (drain -> work on the node -> uncordon, one node at a time).

They register as "cordon", "drain", "reboot" and "rolling-drain" (`node_operations()` lists them
in that order), and all are built the same way, `cls.planned(cluster, workers, plan)`, so a
scenario runs any of them by its registry name.

Uncordon is the heal of every one of them, so a node is never left cordoned, whatever happens.
Drains record what kubectl said (kubedrill.record.drain_log) in one NodePass per node and do not
judge it: a drain that a PodDisruptionBudget blocks until its timeout is a finding for
kubedrill.check.scheduling, not a crash of the test (`raise_on_failure=False`).
"""

from __future__ import annotations

import abc
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.cluster.progress import say
from kubedrill.cluster.states import node_state, pod_state
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.disrupt.base import REGISTRY, Disruption, DisruptionError, register
from kubedrill.disrupt.control_plane import container_state
from kubedrill.record import Recorder
from kubedrill.record.cluster import NodeState, PodState, Snapshot
from kubedrill.record.drain_log import DrainLog, parse_drain_output
from kubedrill.record.maintenance import NodePass

# Owners whose pods `kubectl drain --ignore-daemonsets` leaves in place: DaemonSet pods, and the
# mirror pods of static pods (owned by their Node).
STAYING_OWNERS = ("DaemonSet", "Node")


def _read_node(cluster: Cluster, node: str) -> NodeState:
    return node_state(cluster.core().read_node(node, _request_timeout=30))


def node_schedulable(cluster: Cluster, node: str) -> bool:
    return _read_node(cluster, node).schedulable


def all_nodes_in_service(cluster: Cluster) -> tuple[bool, str]:
    """Every node Ready and schedulable (no other node is out), with what was seen."""
    nodes = [node_state(n) for n in cluster.core().list_node(_request_timeout=30).items]
    out = [f"{n.name}(Ready={n.ready}, cordoned={not n.schedulable})" for n in nodes if n.out]
    return not out, ("all nodes Ready and schedulable" if not out else "nodes out: " + ", ".join(out))


def evictable(pod: PodState) -> bool:
    """A pod `kubectl drain --ignore-daemonsets` must remove from its node (finished pods included:
    drain deletes them too)."""
    return pod.owner_kind not in STAYING_OWNERS


def pods_left(cluster: Cluster, node: str) -> list[PodState]:
    """The pods on `node` that a completed drain should have removed."""
    listed = cluster.core().list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}", _request_timeout=30)
    return [p for p in (pod_state(item) for item in listed.items) if evictable(p)]


def uncordon(cluster: Cluster, node: str) -> None:
    cluster.kubectl("uncordon", node, timeout=60)


@dataclass(frozen=True)
class MaintenancePlan:
    """How a node operation runs; each operation uses the parts that apply to it.

    settle: called after each drain and each uncordon (e.g. "the workload is ready again"); a
    failure is recorded in the node's pass, not raised. snapshot: the cluster's state, taken just
    before each drain, while each node is drained, and while a cordon holds (the evidence the
    scheduling checks read). recorder: receives drain-start/drain-end/reboot/uncordoned events.
    """

    drain_timeout_s: int = 120
    force: bool = False  # kubectl drain --force: delete pods that no controller recreates
    hold_s: float = 0.0  # cordon: how long it holds before its snapshot
    maintenance_s: float = 0.0  # rolling drain: time "working" on each drained node before its uncordon
    ready_timeout_s: float = 240.0  # reboot: for the node to come back Ready
    settle: Callable[[], None] | None = None
    snapshot: Callable[[], Snapshot] | None = None
    recorder: Recorder | None = None


class NodeOperation(Disruption):
    """A maintenance operation on nodes. `passes`: one NodePass per node drained, in order; `held`:
    the cluster while a cordon held. Healthy before and after: every node Ready and schedulable
    (maintenance starts only when no node is out)."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.passes: list[NodePass] = []
        self.held: Snapshot | None = None

    @classmethod
    @abc.abstractmethod
    def planned(cls, cluster: Cluster, workers: Sequence[str], plan: MaintenancePlan) -> "NodeOperation":
        """The operation over `workers` in the order given; a one-node operation takes the first."""

    @property
    @abc.abstractmethod
    def nodes(self) -> list[str]:
        """The nodes this operation covers, in order."""

    def healthy(self) -> tuple[bool, str]:
        return all_nodes_in_service(self.cluster)


def node_operations() -> tuple[str, ...]:
    """The registry names of the node maintenance operations, in the order they are defined here."""
    return tuple(name for name, cls in REGISTRY.items() if issubclass(cls, NodeOperation))


@register("cordon")
class CordonNode(NodeOperation):
    """`kubectl cordon`: the node takes no new pods and keeps its running ones. With `snapshot`, the
    cluster is recorded after `hold_s` of being cordoned (`held`), as evidence that nothing moved."""

    def __init__(self, cluster: Cluster, node: str, *, hold_s: float = 0.0,
                 snapshot: Callable[[], Snapshot] | None = None) -> None:
        super().__init__(cluster)
        self.node, self.hold_s, self.snapshot = node, hold_s, snapshot

    @classmethod
    def planned(cls, cluster: Cluster, workers: Sequence[str], plan: MaintenancePlan) -> "CordonNode":
        return cls(cluster, workers[0], hold_s=plan.hold_s, snapshot=plan.snapshot)

    @property
    def nodes(self) -> list[str]:
        return [self.node]

    def inject(self) -> None:
        self.cluster.kubectl("cordon", self.node, timeout=60)
        self.effect["nodes"] = self.node
        if self.hold_s > 0:
            time.sleep(self.hold_s)
        if self.snapshot is not None:
            self.held = self.snapshot()

    def verify(self) -> tuple[bool, str]:
        schedulable = node_schedulable(self.cluster, self.node)
        return not schedulable, f"node {self.node} {'still schedulable' if schedulable else 'unschedulable'} after kubectl cordon"

    def heal(self) -> None:
        uncordon(self.cluster, self.node)


@register("drain")
class DrainNode(NodeOperation):
    """`kubectl drain --ignore-daemonsets --delete-emptydir-data [--force]` with a bounded timeout;
    heal uncordons.

    --force (delete pods that no controller recreates) only when the user allowed it: without it a
    bare pod stops the drain, which is the safe default. A drain blocked by a PodDisruptionBudget
    makes kubectl retry evictions until --timeout; `log.pdb_refused` then names the pods refused,
    and kubedrill.check.scheduling names the budget. raise_on_failure=False records the failure in
    `failed` (and the pass) instead of raising, so a scenario can judge it.

    The node's round trip is `passes[0]`: with `snapshot`, the cluster just before the drain and
    while drained; with `settle`, a wait after the drain and after the uncordon.
    """

    def __init__(self, cluster: Cluster, node: str, timeout_s: int = 120, force: bool = False,
                 raise_on_failure: bool = True, *, settle: Callable[[], None] | None = None,
                 snapshot: Callable[[], Snapshot] | None = None, recorder: Recorder | None = None) -> None:
        super().__init__(cluster)
        self.node, self.timeout_s, self.force = node, timeout_s, force
        self.raise_on_failure = raise_on_failure
        self.settle, self.snapshot, self.recorder = settle, snapshot, recorder
        self.drain_s: float | None = None
        self.output = ""
        self.failed: str | None = None
        self.log: DrainLog | None = None

    @classmethod
    def planned(cls, cluster: Cluster, workers: Sequence[str], plan: MaintenancePlan) -> "DrainNode":
        return cls(cluster, workers[0], plan.drain_timeout_s, plan.force, raise_on_failure=False, settle=plan.settle,
                   snapshot=plan.snapshot, recorder=plan.recorder)

    @property
    def nodes(self) -> list[str]:
        return [self.node]

    def _event(self, kind: str, **data: object) -> None:
        if self.recorder is not None:
            self.recorder.event(kind, self.node, None, node=self.node, **data)

    def _settle(self, p: NodePass, phase: str) -> None:
        if self.settle is None:
            return
        try:
            self.settle()
        except (WaitTimeout, CommandFailed, TimeoutError) as exc:
            p.settle_error = p.settle_error or f"after {phase} of {p.node}: {str(exc).splitlines()[0]}"

    def _kubectl_drain(self) -> None:
        argv = ["drain", self.node, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={self.timeout_s}s"]
        if self.force:
            argv.append("--force")
        t0 = time.monotonic()
        say(f"drain: kubectl drain {self.node} ...")
        try:
            p = self.cluster.kubectl(*argv, timeout=self.timeout_s + 60)
            self.output = p.stdout + p.stderr
        except CommandFailed as exc:
            self.output = exc.proc.stdout + exc.proc.stderr
            self.failed = self.output.strip().splitlines()[-1] if self.output.strip() else str(exc)
        self.drain_s = time.monotonic() - t0
        self.log = parse_drain_output(self.output)
        if self.failed and self.log.error:
            self.failed = self.log.error
        self.effect["nodes"] = self.node
        self.effect["evicted"] = [ln for ln in self.output.splitlines() if " evicted" in ln]
        self.effect["drain_s"] = round(self.drain_s, 2)

    def work(self, p: NodePass) -> None:
        """What happens to the drained node before its uncordon; a plain drain does nothing."""

    def inject(self) -> None:
        p = NodePass(self.node, start=time.monotonic())
        self.passes = [p]
        if self.snapshot is not None:
            p.before = self.snapshot()
        self._event("drain-start")
        self._kubectl_drain()
        p.drained_at, p.drain_s, p.log = time.monotonic(), self.drain_s, self.log
        p.drain_failed, p.drain_output = self.failed, self.output
        self._event("drain-end", seconds=round(self.drain_s or 0, 2), failed=self.failed or "")
        if self.failed:
            if self.raise_on_failure:
                raise DisruptionError(f"drain of {self.node} failed after {self.drain_s:.0f}s: {self.failed}\n"
                                      f"{self.output[-1500:]}")
            return
        self._settle(p, "the drain")
        if self.snapshot is not None:
            p.drained = self.snapshot()
        self.work(p)

    @property
    def blocked_by_pdb(self) -> bool:
        return "disruption budget" in self.output

    def verify(self) -> tuple[bool, str]:
        """The node is cordoned and runs no pod the drain should have removed. A drain that kubectl
        could not finish (a budget, a bare pod) took effect too: the refusal is what the checks judge."""
        if node_schedulable(self.cluster, self.node):
            return False, f"node {self.node} is schedulable after kubectl drain: it was never cordoned"
        if self.failed:
            return True, f"{self.node} cordoned; kubectl drain did not finish ({self.failed}), which the checks judge"
        left = pods_left(self.cluster, self.node)
        if left:
            return False, (f"{self.node} is cordoned but still runs {', '.join(p.key for p in left)}, which kubectl "
                           "drain reported done with")
        return True, f"{self.node} cordoned and runs no evictable pod ({len(self.effect.get('evicted', []))} evicted)"

    def heal(self) -> None:
        uncordon(self.cluster, self.node)
        if not self.passes:
            return
        p = self.passes[-1]
        p.uncordoned_at = time.monotonic()
        self._event("uncordoned")
        if not p.drain_failed:
            self._settle(p, "the uncordon")
        p.end = time.monotonic()


def _started_at(node: str) -> str:
    p = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", node], capture_output=True, text=True,
                       timeout=30, check=True)
    return p.stdout.strip()


def _lease_renewed_after(cluster: Cluster, node: str, wall: float) -> bool:
    """The node's kubelet renewed its Lease after `wall` (Unix seconds): it is running again."""
    from kubernetes import client

    lease = client.CoordinationV1Api(cluster.api_client()).read_namespaced_lease(node, "kube-node-lease",
                                                                                 _request_timeout=10)
    renew = lease.spec.renew_time if lease.spec is not None else None
    if renew is None:
        return False
    if renew.tzinfo is None:
        renew = renew.replace(tzinfo=timezone.utc)
    return renew > datetime.fromtimestamp(wall, tz=timezone.utc)


def restart_node(cluster: Cluster, node: str, ready_timeout_s: float = 240, down_s: float = 5.0) -> dict[str, Any]:
    """The OS-upgrade rehearsal's middle step: stop the kind node container (its systemd shuts down
    as on a reboot), keep it down for `down_s` as a machine being upgraded is, start it, then wait
    until its kubelet is back (Lease renewed after the start) and the node is Ready.

    Why the Lease and not only Ready: a short reboot is often quicker than the node-monitor grace
    period, so the API may never show NotReady; a Lease renewed after the start proves the new
    kubelet runs. Returns evidence: container start times, seconds, whether NotReady was seen
    (RebootNode.verify judges it: an unchanged start time means nothing restarted).
    """
    if cluster.provider != "kind":
        raise DisruptionError(f"restarting node {node} needs node access (kind); this cluster is {cluster.provider}")
    before = _started_at(node)
    t0 = time.monotonic()
    say(f"reboot: stopping node {node} (docker stop)")
    subprocess.run(["docker", "stop", "-t", "30", node], check=True, capture_output=True, timeout=180)
    say(f"reboot: node {node} is down; starting it in {down_s:.0f} s")
    time.sleep(down_s)
    subprocess.run(["docker", "start", node], check=True, capture_output=True, timeout=180)
    restarted_wall = time.time()
    after = _started_at(node)
    seen = {"notready": False}

    def back() -> tuple[bool, str]:
        ready = _read_node(cluster, node).ready
        seen["notready"] = seen["notready"] or not ready
        renewed = _lease_renewed_after(cluster, node, restarted_wall)
        return ready and renewed, f"Ready={ready}, kubelet lease renewed since restart={renewed}, NotReady seen={seen['notready']}"

    until(f"node {node} to come back Ready after its restart", back, ready_timeout_s, interval=1.0,
          hint=f"look at the node's kubelet log: docker exec {node} journalctl -u kubelet --no-pager -n 50")
    return {"started_before": before, "started_after": after, "reboot_s": round(time.monotonic() - t0, 1),
            "notready_seen": seen["notready"]}


@register("reboot")
class RebootNode(DrainNode):
    """OS-upgrade rehearsal: drain -> restart the node container -> wait Ready -> (heal) uncordon.
    A drain that kubectl could not finish skips the restart, as an operator would."""

    def __init__(self, cluster: Cluster, node: str, timeout_s: int = 120, force: bool = False,
                 raise_on_failure: bool = True, *, ready_timeout_s: float = 240,
                 settle: Callable[[], None] | None = None, snapshot: Callable[[], Snapshot] | None = None,
                 recorder: Recorder | None = None) -> None:
        super().__init__(cluster, node, timeout_s, force, raise_on_failure, settle=settle, snapshot=snapshot,
                         recorder=recorder)
        self.ready_timeout_s = ready_timeout_s

    @classmethod
    def planned(cls, cluster: Cluster, workers: Sequence[str], plan: MaintenancePlan) -> "RebootNode":
        return cls(cluster, workers[0], plan.drain_timeout_s, plan.force, raise_on_failure=False,
                   ready_timeout_s=plan.ready_timeout_s, settle=plan.settle, snapshot=plan.snapshot,
                   recorder=plan.recorder)

    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "rebooting a node needs node access (kind) or a configured reboot command"
        return None

    def heal(self) -> None:
        """Start the node again if the reboot was cut short, then uncordon (DrainNode.heal).

        Ctrl-C or SIGTERM while the node is down (between `docker stop` and `docker start`) would
        leave a node stopped on a cluster that outlives the run (--keep-cluster, an attached
        cluster). `docker start` of a running container does nothing, so it is called until the
        container runs and the node is Ready."""
        if self.cluster.provider == "kind" and self.passes:
            def back() -> tuple[bool, str]:
                if container_state(self.node) != "running":
                    subprocess.run(["docker", "start", self.node], capture_output=True, timeout=120, check=False)
                    return False, f"node container {self.node} was not running; started it"
                ready = _read_node(self.cluster, self.node).ready
                return ready, f"container running, Ready={ready}"

            until(f"node {self.node} to run and be Ready before its uncordon", back, self.ready_timeout_s,
                  interval=2.0, hint=f"docker start {self.node}; docker exec {self.node} journalctl -u kubelet -n 50")
        super().heal()

    def work(self, p: NodePass) -> None:
        self._event("reboot-start")
        p.reboot = restart_node(self.cluster, self.node, self.ready_timeout_s)
        self._event("reboot-end", **{k: str(v) for k, v in p.reboot.items()})
        self.effect.update(p.reboot)

    def verify(self) -> tuple[bool, str]:
        """Drained (see DrainNode.verify), and the node restarted -- its container's start time
        changed (on kind the boot id is the host's and does not) -- and is Ready again."""
        took, seen = super().verify()
        if not took or self.failed:
            return took, seen
        r = self.passes[0].reboot
        restarted = bool(r) and r.get("started_after") != r.get("started_before")
        ready = _read_node(self.cluster, self.node).ready
        how = (f"container started {r.get('started_before')} -> {r.get('started_after')}, "
               f"NotReady seen {r.get('notready_seen')}, Ready now {ready}")
        if not restarted:
            return False, f"{seen}; but node {self.node} did not restart: {how}"
        if not ready:
            return False, f"{seen}; restarted but not Ready: {how}"
        return True, f"{seen}; restarted: {how}"


@register("rolling-drain")
class RollingDrain(NodeOperation):
    """Node maintenance the way operators do it: for each node in turn, drain it, do the work
    (`maintenance_s` of waiting), uncordon it, and wait until the workload has settled before
    touching the next node -- each node a DrainNode, injected and healed in turn.

    `settle()` (supplied by the caller, e.g. "the Deployment is available again") runs after each
    drain and each uncordon; `snapshot()` is taken just before each drain (what was on the node)
    and while each node is drained (where the pods went). A failed drain (PDB refusal until
    timeout, bare pod without --force) ends the pass: it is recorded in the node's NodePass and in
    `failed`, not raised. heal() uncordons every node the pass touched, whatever happened.
    """

    def __init__(self, cluster: Cluster, nodes: Sequence[str], *, drain_timeout_s: int = 120, force: bool = False,
                 maintenance_s: float = 0.0, settle: Callable[[], None] | None = None,
                 snapshot: Callable[[], Snapshot] | None = None, recorder: Recorder | None = None) -> None:
        super().__init__(cluster)
        if not nodes:
            raise ValueError("a rolling drain needs at least one node")
        self._nodes = list(nodes)
        self.drain_timeout_s, self.force, self.maintenance_s = drain_timeout_s, force, maintenance_s
        self.settle, self.snapshot, self.recorder = settle, snapshot, recorder
        self.failed: str | None = None
        self._touched: list[str] = []
        self._verified: list[tuple[bool, str]] = []

    @classmethod
    def planned(cls, cluster: Cluster, workers: Sequence[str], plan: MaintenancePlan) -> "RollingDrain":
        return cls(cluster, workers, drain_timeout_s=plan.drain_timeout_s, force=plan.force,
                   maintenance_s=plan.maintenance_s, settle=plan.settle, snapshot=plan.snapshot,
                   recorder=plan.recorder)

    @property
    def nodes(self) -> list[str]:
        return list(self._nodes)

    def inject(self) -> None:
        for node in self._nodes:
            step = DrainNode(self.cluster, node, self.drain_timeout_s, self.force, raise_on_failure=False,
                             settle=self.settle, snapshot=self.snapshot, recorder=self.recorder)
            self._touched.append(node)
            try:
                step.inject()
            finally:
                self.passes += step.passes
            if not step.failed:
                self._verified.append(step.verify())
                if self.maintenance_s > 0:
                    time.sleep(self.maintenance_s)
            step.heal()
            if step.failed:
                self.failed = f"drain of {node} failed after {step.drain_s or 0:.0f}s: {step.failed}"
                break
        self.effect["nodes"] = ",".join(p.node for p in self.passes)
        self.effect["drain_s"] = ",".join(f"{p.drain_s:.1f}" for p in self.passes if p.drain_s is not None)

    def verify(self) -> tuple[bool, str]:
        """Every node whose drain finished was cordoned and emptied (checked while it was drained);
        a drain kubectl could not finish ends the pass, and the checks judge why."""
        if not self.passes:
            return False, "no node was drained"
        missed = [seen for took, seen in self._verified if not took]
        if missed:
            return False, "; ".join(missed)
        seen = "; ".join(s for _, s in self._verified) or "no drain finished"
        return True, seen + (f"; {self.failed}, which the checks judge" if self.failed else "")

    def heal(self) -> None:
        errors = []
        for node in self._touched:
            try:
                if not node_schedulable(self.cluster, node):
                    uncordon(self.cluster, node)
            except Exception as exc:  # noqa: BLE001 - try every node, report all
                errors.append(f"{node}: {exc}")
        if errors:
            raise DisruptionError("uncordon after the rolling drain failed: " + "; ".join(errors))
