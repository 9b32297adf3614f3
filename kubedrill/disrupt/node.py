"""Node maintenance operations as disruptions: cordon, drain (real `kubectl drain`), reboot.

Uncordon is the heal of every one of them, so a node is never left cordoned, whatever happens.
"""

from __future__ import annotations

import time

from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import Disruption, DisruptionError


def node_schedulable(cluster: Cluster, node: str) -> bool:
    return not bool(cluster.core().read_node(node).spec.unschedulable)


def node_ready(cluster: Cluster, node: str) -> bool:
    n = cluster.core().read_node(node)
    return any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))


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

    A drain blocked by a PodDisruptionBudget makes kubectl retry evictions until --timeout; the
    failure message then names the PDB (kubectl prints "Cannot evict pod as it would violate the
    pod's disruption budget"), which `blocked_by` extracts for the verdict.
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
        self.effect["evicted"] = [ln for ln in self.output.splitlines() if " evicted" in ln]
        self.effect["drain_s"] = round(self.drain_s, 2)
        if self.failed and self.raise_on_failure:
            raise DisruptionError(f"drain of {self.node} failed after {self.drain_s:.0f}s: {self.failed}\n{self.output[-1500:]}")

    @property
    def blocked_by_pdb(self) -> bool:
        return "disruption budget" in self.output

    def heal(self) -> None:
        uncordon(self.cluster, self.node)


class RebootNode(Disruption):
    """OS-upgrade rehearsal: drain -> restart the node container -> wait Ready -> uncordon."""

    def __init__(self, cluster: Cluster, node: str, drain_timeout_s: int = 120, ready_timeout_s: int = 240) -> None:
        super().__init__()
        self.cluster, self.node = cluster, node
        self.drain = DrainNode(cluster, node, timeout_s=drain_timeout_s)
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
        t0 = time.monotonic()
        import subprocess

        subprocess.run(["docker", "restart", "-t", "30", self.node], check=True, capture_output=True, timeout=180)

        def seen_notready() -> tuple[bool, str]:
            ok = node_ready(self.cluster, self.node)
            if not ok:
                self.notready_seen = True
            return ok and self.notready_seen or (ok and time.monotonic() - t0 > 60), f"Ready={ok}, NotReady seen={self.notready_seen}"

        until(f"node {self.node} to come back Ready after reboot", seen_notready, self.ready_timeout_s, interval=1.0,
              hint="look at the node's kubelet log: docker exec NODE journalctl -u kubelet")
        self.effect["reboot_s"] = round(time.monotonic() - t0, 1)
        self.effect["notready_seen"] = self.notready_seen

    def heal(self) -> None:
        uncordon(self.cluster, self.node)
