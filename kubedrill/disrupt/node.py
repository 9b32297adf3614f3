"""Node maintenance operations as disruptions: cordon, drain (real `kubectl drain`), reboot, and a
rolling pass over several nodes (drain -> work on the node -> uncordon, one node at a time).

Uncordon is the heal of every one of them, so a node is never left cordoned, whatever happens.
Drains record what kubectl said (kubedrill.disrupt.drain_log) and do not judge it: a drain that a
PodDisruptionBudget blocks until its timeout is a finding for kubedrill.check.scheduling, not a
crash of the test.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timezone
from typing import Callable, Sequence

from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.record.cluster import Snapshot
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.disrupt.base import Disruption, DisruptionError
from kubedrill.record.drain_log import DrainLog, parse_drain_output
from kubedrill.record import Recorder
from kubedrill.record.maintenance import NodePass


def node_schedulable(cluster: Cluster, node: str) -> bool:
    return not bool(cluster.core().read_node(node).spec.unschedulable)


def node_ready(cluster: Cluster, node: str) -> bool:
    n = cluster.core().read_node(node)
    return any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))


def all_nodes_in_service(cluster: Cluster) -> tuple[bool, str]:
    """Every node Ready and schedulable (no other node is out), with what was seen."""
    bad = []
    for n in cluster.core().list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
        if not ready or n.spec.unschedulable:
            bad.append(f"{n.metadata.name}(Ready={ready}, cordoned={bool(n.spec.unschedulable)})")
    return not bad, ("all nodes Ready and schedulable" if not bad else "nodes out: " + ", ".join(bad))


def uncordon(cluster: Cluster, node: str) -> None:
    cluster.kubectl("uncordon", node, timeout=60)


class CordonNode(Disruption):
    def __init__(self, cluster: Cluster, node: str) -> None:
        super().__init__()
        self.cluster, self.node = cluster, node
        self.name = f"cordon/{node}"

    def healthy(self) -> tuple[bool, str]:
        ok = node_ready(self.cluster, self.node)
        return ok, f"node {self.node} Ready={ok}"

    def inject(self) -> None:
        self.cluster.kubectl("cordon", self.node, timeout=60)
        self.effect["unschedulable"] = not node_schedulable(self.cluster, self.node)
        if not self.effect["unschedulable"]:
            raise DisruptionError(f"cordon of {self.node} did not take effect: node still schedulable")

    def heal(self) -> None:
        uncordon(self.cluster, self.node)


class DrainNode(Disruption):
    """`kubectl drain --ignore-daemonsets --delete-emptydir-data [--force]` with a bounded timeout.

    --force (delete pods that no controller recreates) only when the user allowed it: without it a
    bare pod stops the drain, which is the safe default. A drain blocked by a PodDisruptionBudget
    makes kubectl retry evictions until --timeout; `log.pdb_refused` then names the pods refused,
    and kubedrill.check.scheduling names the budget. raise_on_failure=False records the failure in
    `failed` instead of raising, so a suite can judge it.
    """

    def __init__(self, cluster: Cluster, node: str, timeout_s: int = 120, force: bool = False,
                 raise_on_failure: bool = True) -> None:
        super().__init__()
        self.cluster, self.node, self.timeout_s, self.force = cluster, node, timeout_s, force
        self.raise_on_failure = raise_on_failure
        self.name = f"drain/{node}"
        self.drain_s: float | None = None
        self.output = ""
        self.failed: str | None = None
        self.log: DrainLog | None = None

    def healthy(self) -> tuple[bool, str]:
        ok = node_ready(self.cluster, self.node)
        return ok, f"node {self.node} Ready={ok}"

    def inject(self) -> None:
        argv = ["drain", self.node, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={self.timeout_s}s"]
        if self.force:
            argv.append("--force")
        t0 = time.monotonic()
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
        self.effect["evicted"] = [ln for ln in self.output.splitlines() if " evicted" in ln]
        self.effect["drain_s"] = round(self.drain_s, 2)
        if self.failed and self.raise_on_failure:
            raise DisruptionError(f"drain of {self.node} failed after {self.drain_s:.0f}s: {self.failed}\n{self.output[-1500:]}")

    @property
    def blocked_by_pdb(self) -> bool:
        return "disruption budget" in self.output

    def heal(self) -> None:
        uncordon(self.cluster, self.node)


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


def restart_node(cluster: Cluster, node: str, ready_timeout_s: float = 240) -> dict[str, object]:
    """The OS-upgrade rehearsal's middle step: `docker restart` the kind node container, then wait
    until its kubelet is back (Lease renewed after the restart) and the node is Ready.

    Why the Lease and not only Ready: a kubelet restart is often quicker than the node-monitor
    grace period, so the API may never show NotReady; a Lease renewed after the restart proves the
    new kubelet runs. Returns evidence: container start times, seconds, whether NotReady was seen.
    """
    if cluster.provider != "kind":
        raise DisruptionError(f"restarting node {node} needs node access (kind); this cluster is {cluster.provider}")
    before = _started_at(node)
    t0 = time.monotonic()
    subprocess.run(["docker", "restart", "-t", "30", node], check=True, capture_output=True, timeout=180)
    restarted_wall = time.time()
    after = _started_at(node)
    if after == before:
        raise DisruptionError(f"docker restart {node} did not restart it (StartedAt still {before})")
    seen = {"notready": False}

    def back() -> tuple[bool, str]:
        ready = node_ready(cluster, node)
        seen["notready"] = seen["notready"] or not ready
        renewed = _lease_renewed_after(cluster, node, restarted_wall)
        return ready and renewed, f"Ready={ready}, kubelet lease renewed since restart={renewed}, NotReady seen={seen['notready']}"

    until(f"node {node} to come back Ready after its restart", back, ready_timeout_s, interval=1.0,
          hint=f"look at the node's kubelet log: docker exec {node} journalctl -u kubelet --no-pager -n 50")
    return {"started_before": before, "started_after": after, "reboot_s": round(time.monotonic() - t0, 1),
            "notready_seen": seen["notready"]}


class RebootNode(Disruption):
    """OS-upgrade rehearsal: drain -> restart the node container -> wait Ready -> uncordon."""

    def __init__(self, cluster: Cluster, node: str, drain_timeout_s: int = 120, ready_timeout_s: int = 240,
                 force: bool = False) -> None:
        super().__init__()
        self.cluster, self.node = cluster, node
        self.drain = DrainNode(cluster, node, timeout_s=drain_timeout_s, force=force)
        self.ready_timeout_s = ready_timeout_s
        self.name = f"reboot/{node}"
        self.notready_seen = False

    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "rebooting a node needs node access (kind) or a configured reboot command"
        return None

    def healthy(self) -> tuple[bool, str]:
        return self.drain.healthy()

    def inject(self) -> None:
        self.drain.inject()
        self.effect.update(self.drain.effect)
        evidence = restart_node(self.cluster, self.node, self.ready_timeout_s)
        self.notready_seen = bool(evidence["notready_seen"])
        self.effect.update(evidence)

    def heal(self) -> None:
        uncordon(self.cluster, self.node)


class RollingDrain(Disruption):
    """Node maintenance the way operators do it: for each node in turn, drain it, do the work
    (nothing but `maintenance_s` of waiting, or a reboot of the node container), uncordon it, and
    wait until the workload has settled before touching the next node.

    `settle()` (supplied by the caller, e.g. "the Deployment is available again") runs after each
    drain and each uncordon; `snapshot()` is taken while each node is drained, as evidence of where
    the pods went (and just before each drain: what was on the node). A failed drain (PDB refusal until timeout, bare pod without --force) ends the
    pass: it is recorded in the node's NodePass and in `failed`, not raised. heal() uncordons every
    node the pass touched, whatever happened.
    """

    def __init__(self, cluster: Cluster, nodes: Sequence[str], *, drain_timeout_s: int = 120, force: bool = False,
                 reboot: bool = False, maintenance_s: float = 0.0, ready_timeout_s: float = 240,
                 settle: Callable[[], None] | None = None, snapshot: Callable[[], Snapshot] | None = None,
                 recorder: Recorder | None = None, label: str = "rolling-drain") -> None:
        super().__init__()
        if not nodes:
            raise ValueError("a rolling drain needs at least one node")
        if reboot and cluster.provider != "kind":
            raise ValueError("reboot=True needs node access (kind)")
        self.cluster, self.nodes = cluster, list(nodes)
        self.drain_timeout_s, self.force, self.reboot = drain_timeout_s, force, reboot
        self.maintenance_s, self.ready_timeout_s = maintenance_s, ready_timeout_s
        self.settle, self.snapshot, self.recorder = settle, snapshot, recorder
        self.name = f"{label}/{','.join(self.nodes)}"
        self.passes: list[NodePass] = []
        self.failed: str | None = None
        self._touched: list[str] = []

    def available(self) -> str | None:
        if self.reboot and self.cluster.provider != "kind":
            return "rebooting a node needs node access (kind)"
        return None

    def healthy(self) -> tuple[bool, str]:
        return all_nodes_in_service(self.cluster)

    def _event(self, kind: str, node: str, **data: object) -> None:
        if self.recorder is not None:
            self.recorder.event(kind, node, None, node=node, **data)

    def _settle(self, p: NodePass, phase: str) -> None:
        if self.settle is None:
            return
        try:
            self.settle()
        except (WaitTimeout, CommandFailed, TimeoutError) as exc:
            p.settle_error = p.settle_error or f"after {phase} of {p.node}: {str(exc).splitlines()[0]}"

    def inject(self) -> None:
        for node in self.nodes:
            p = NodePass(node, start=time.monotonic())
            self.passes.append(p)
            self._touched.append(node)
            if self.snapshot is not None:
                p.before = self.snapshot()
            self._event("drain-start", node)
            drain = DrainNode(self.cluster, node, timeout_s=self.drain_timeout_s, force=self.force,
                              raise_on_failure=False)
            drain.inject()
            p.drained_at, p.drain_s, p.log = time.monotonic(), drain.drain_s, drain.log
            p.drain_failed, p.drain_output = drain.failed, drain.output
            self._event("drain-end", node, seconds=round(drain.drain_s or 0, 2), failed=drain.failed or "")
            if drain.failed:
                self.failed = f"drain of {node} failed after {drain.drain_s:.0f}s: {drain.failed}"
                uncordon(self.cluster, node)
                p.uncordoned_at = p.end = time.monotonic()
                self._event("uncordoned", node)
                break
            self._settle(p, "the drain")
            if self.snapshot is not None:
                p.drained = self.snapshot()
            if self.reboot:
                self._event("reboot-start", node)
                p.reboot = restart_node(self.cluster, node, self.ready_timeout_s)
                self._event("reboot-end", node, **{k: str(v) for k, v in p.reboot.items()})
            elif self.maintenance_s > 0:
                time.sleep(self.maintenance_s)
            uncordon(self.cluster, node)
            p.uncordoned_at = time.monotonic()
            self._event("uncordoned", node)
            self._settle(p, "the uncordon")
            p.end = time.monotonic()
        self.effect["nodes"] = ",".join(p.node for p in self.passes)
        self.effect["drain_s"] = ",".join(f"{p.drain_s:.1f}" for p in self.passes if p.drain_s is not None)

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
