"""Unplanned node loss: a worker disappears without a drain, the way hardware and networks fail.

    node-stop       `docker stop --time 0` of the kind node container: power loss (no shutdown, no
                    goodbye to the API); heal: `docker start`
    node-freeze     `docker pause`: a hung node (every process frozen, sockets open, nothing
                    answers); heal: `docker unpause`
    node-partition  an iptables DROP, inside the node's network namespace, of its traffic to the API
                    server: the kubelet loses the control plane while its pods keep serving; heal:
                    delete the rule

Each proves it took effect (the container exited or paused; the rule is in place and the kubelet's
Lease stops being renewed), and each heal waits until the node is back: Ready, with a Lease
renewed after the heal. Every node taken is registered in LOST until its heal succeeds, so a
safety net (`heal_lost()`, also run at interpreter exit) returns whatever an interrupted run left
behind; the disruption protocol already heals on errors, Ctrl-C and SIGTERM (the plugin turns it
into KeyboardInterrupt).
"""

from __future__ import annotations

import atexit
import time
from datetime import timezone

from kubedrill.cluster.handle import Cluster, run
from kubedrill.cluster.states import node_state
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import REGISTRY, Disruption, DisruptionError, register
from kubedrill.disrupt.control_plane import container_state
from kubedrill.disrupt.node import all_nodes_in_service

LEASE_RENEW_S = 10.0  # the kubelet renews its node Lease every leaseDurationSeconds/4 = 10 s
API_PORT = 6443
RULE_COMMENT = "kubedrill-node-partition"
LOST: dict[str, "NodeLoss"] = {}  # node -> the disruption holding it, until its heal succeeded


def lease_renewed_wall(cluster: Cluster, node: str) -> float | None:
    """The node Lease's renewTime (Unix seconds), None if it has none."""
    from kubernetes import client

    lease = client.CoordinationV1Api(cluster.api_client()).read_namespaced_lease(node, "kube-node-lease",
                                                                                 _request_timeout=10)
    renew = lease.spec.renew_time if lease.spec is not None else None
    if renew is None:
        return None
    return (renew if renew.tzinfo else renew.replace(tzinfo=timezone.utc)).timestamp()


def heal_lost() -> list[str]:
    """Heal every node a node-loss disruption still holds (the safety net behind each heal);
    returns what it did."""
    done = []
    for node, d in list(LOST.items()):
        try:
            d.heal()
            done.append(f"{node}: healed ({d.name})")
        except Exception as exc:  # noqa: BLE001 - try every node, report each
            done.append(f"{node}: heal FAILED ({d.name}): {exc}")
    return done


atexit.register(heal_lost)


class NodeLoss(Disruption):
    """A worker lost without a drain. `data_plane_lost`: its pods stop serving too (not only its
    kubelet losing the API). heal() undoes the fault and waits until the node is back."""

    data_plane_lost = True

    def __init__(self, cluster: Cluster, node: str, *, return_timeout_s: float = 240.0) -> None:
        super().__init__()
        self.cluster, self.node, self.return_timeout_s = cluster, node, return_timeout_s
        self.injected_wall: float | None = None

    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "losing a node needs node access (kind node containers on this host)"
        if self.node not in self.cluster.workers:
            return f"{self.node} is not a worker of {self.cluster.name} (workers: {', '.join(self.cluster.workers)})"
        return None

    def healthy(self) -> tuple[bool, str]:
        return all_nodes_in_service(self.cluster)

    def inject(self) -> None:
        LOST[self.node] = self
        self.injected_wall = time.time()
        self.fault()
        self.effect["node"] = self.node

    def fault(self) -> None:
        """Take the node away."""
        raise NotImplementedError

    def undo(self) -> None:
        """Give the node back (safe to call when the fault is already undone)."""
        raise NotImplementedError

    def heal(self) -> None:
        t0 = time.time()
        self.undo()

        def back() -> tuple[bool, str]:
            ready = node_state(self.cluster.core().read_node(self.node, _request_timeout=10)).ready
            renew = lease_renewed_wall(self.cluster, self.node)
            renewed = renew is not None and renew > t0
            return ready and renewed, f"Ready={ready}, lease renewed since the heal={renewed}"

        until(f"node {self.node} to be back (Ready, kubelet lease renewed) after {self.name}", back,
              self.return_timeout_s, interval=1.0,
              hint=f"docker exec {self.node} journalctl -u kubelet --no-pager -n 50")
        LOST.pop(self.node, None)


@register("node-stop")
class NodeStop(NodeLoss):
    """Power loss: the node container is killed (`docker stop --time 0`); heal starts it again
    (kind node containers on a private network come back at their own address)."""

    def fault(self) -> None:
        run(["docker", "stop", "--time", "0", self.node], timeout=120)

    def verify(self) -> tuple[bool, str]:
        state = container_state(self.node)
        return state == "exited", f"node container {self.node} is {state or 'missing'}"

    def undo(self) -> None:
        if container_state(self.node) != "running":
            run(["docker", "start", self.node], timeout=180)


@register("node-freeze")
class NodeFreeze(NodeLoss):
    """A hung node: every process in the node container frozen (`docker pause`, the cgroup freezer);
    heal unpauses it."""

    def fault(self) -> None:
        run(["docker", "pause", self.node], timeout=60)

    def verify(self) -> tuple[bool, str]:
        state = container_state(self.node)
        return state == "paused", f"node container {self.node} is {state or 'missing'}"

    def undo(self) -> None:
        if container_state(self.node) == "paused":
            run(["docker", "unpause", self.node], timeout=60)


@register("node-partition")
class NodePartition(NodeLoss):
    """The node cut off from the API server: an iptables rule in the node's own network namespace
    drops everything it sends to the API server's address and port (the kubelet, kube-proxy and
    kindnet lose the control plane; pod traffic, forwarded rather than sent, still flows). verify()
    waits until the kubelet's Lease has gone unrenewed past its renewal interval."""

    data_plane_lost = False

    def __init__(self, cluster: Cluster, node: str, *, return_timeout_s: float = 240.0) -> None:
        super().__init__(cluster, node, return_timeout_s=return_timeout_s)
        self.api_ip = ""

    def _rule(self) -> list[str]:
        return ["OUTPUT", "-d", self.api_ip, "-p", "tcp", "--dport", str(API_PORT), "-m", "comment", "--comment",
                RULE_COMMENT, "-j", "DROP"]

    def available(self) -> str | None:
        why = super().available()
        if why is None and len(self.cluster.control_planes) != 1:
            return (f"the partition cuts one API server address; {self.cluster.name} has "
                    f"{len(self.cluster.control_planes)} control planes behind a load balancer")
        return why

    def fault(self) -> None:
        cp = self.cluster.control_planes[0]
        self.api_ip = self.cluster.node_exec(self.node, "getent", "ahostsv4", cp, timeout=30).stdout.split()[0]
        self.cluster.node_exec(self.node, "iptables", "-w", "5", "-I", *self._rule(), timeout=30)
        self.effect["dropped"] = f"{self.api_ip}:{API_PORT}"

    def verify(self) -> tuple[bool, str]:
        rules = self.cluster.node_exec(self.node, "iptables", "-w", "5", "-S", "OUTPUT", timeout=30).stdout
        if RULE_COMMENT not in rules:
            return False, f"no {RULE_COMMENT} rule in {self.node}'s OUTPUT chain: {rules.strip()[-300:]}"
        assert self.injected_wall is not None
        deadline = time.time() + LEASE_RENEW_S + 5
        while time.time() < deadline:
            renew = lease_renewed_wall(self.cluster, self.node)
            if renew is not None and renew > self.injected_wall + 1.0:
                return False, (f"the kubelet on {self.node} renewed its lease {renew - self.injected_wall:.1f} s after "
                               f"the partition: its heartbeats still reach the API server")
            time.sleep(1.0)
        return True, (f"{self.node} drops its traffic to {self.api_ip}:{API_PORT}; no lease renewal in the "
                      f"{LEASE_RENEW_S + 5:g} s since (renewed every {LEASE_RENEW_S:g} s)")

    def undo(self) -> None:
        if not self.api_ip or container_state(self.node) != "running":
            return
        for _ in range(10):  # delete every copy of the rule, then stop
            p = self.cluster.node_exec(self.node, "iptables", "-w", "5", "-D", *self._rule(), timeout=30, check=False)
            if p.returncode != 0:
                break


def node_losses() -> tuple[str, ...]:
    """The registry names of the node-loss disruptions, in the order they are defined here."""
    return tuple(name for name, cls in REGISTRY.items() if issubclass(cls, NodeLoss))


def lost_left(cluster: Cluster) -> list[str]:
    """Workers of `cluster` not running normally (stopped, paused) or still carrying a partition
    rule: what a safety net must find empty after a test."""
    left = []
    for node in cluster.workers:
        state = container_state(node)
        if state != "running":
            left.append(f"{node}: container {state or 'missing'}")
            continue
        rules = cluster.node_exec(node, "iptables", "-w", "5", "-S", "OUTPUT", timeout=30, check=False).stdout
        if RULE_COMMENT in rules:
            left.append(f"{node}: partition rule still in place")
    return left


def restore(cluster: Cluster, node: str) -> None:
    """Bring a worker back whatever was done to it (the safety net when no disruption object is
    left to heal it): unpause, start, drop every partition rule."""
    state = container_state(node)
    if state == "paused":
        run(["docker", "unpause", node], timeout=60)
    elif state not in ("running", ""):
        run(["docker", "start", node], timeout=180)
    for _ in range(10):
        rules = cluster.node_exec(node, "iptables", "-w", "5", "-S", "OUTPUT", timeout=30, check=False).stdout
        line = next((ln for ln in rules.splitlines() if RULE_COMMENT in ln), None)
        if line is None:
            return
        spec = line.split()[1:]  # "-A OUTPUT ..." -> "OUTPUT ..."
        cluster.node_exec(node, "iptables", "-w", "5", "-D", *_unquote(spec), timeout=30, check=False)
    raise DisruptionError(f"could not remove the {RULE_COMMENT} rule from {node}")


def _unquote(args: list[str]) -> list[str]:
    return [a.strip('"') for a in args]
