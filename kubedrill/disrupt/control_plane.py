"""Stopping control-plane nodes of a kind cluster, as a power loss or a host shutdown would.

`StopControlPlanes` is `docker stop` of control-plane node containers. It took effect once every
container has exited and its etcd member no longer answers the surviving members. Heal starts
each again -- reattached at its old address where the network allows it, because a real host keeps
its address across a shutdown and etcd's peer URLs are addresses -- then waits until the etcd
members of the running control planes are healthy and the running nodes are Ready. Stops nest
(one down, then a second one down) and heal inside out.

`api_ready` is the control plane's health as a client sees it (/readyz), shared with the restore.
"""

from __future__ import annotations

import subprocess
import time

from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.handle import Cluster, CommandFailed, run
from kubedrill.cluster.network import networks_of, pin_ip
from kubedrill.cluster.states import node_ready
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import Disruption, register


def api_ready(cluster: Cluster) -> tuple[bool, str]:
    """(the API server answers /readyz with ok, what it said)."""
    p = cluster.kubectl("get", "--raw", "/readyz", timeout=15, check=False)
    return p.returncode == 0 and p.stdout.strip() == "ok", (p.stdout + p.stderr).strip()[-200:]


def container_state(node: str) -> str:
    """Docker's state of a (kind) node container: running, paused, exited, ...; "" if it does not exist.
    The one such reader for every node disruption (stop, reboot, freeze) and its heal."""
    p = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", node], capture_output=True, text=True,
                       timeout=30)
    return p.stdout.strip() if p.returncode == 0 else ""


def container_ip(node: str) -> str:
    p = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", node],
                       capture_output=True, text=True, timeout=30)
    return p.stdout.strip()


def running_nodes_ready(cluster: Cluster) -> tuple[bool, str]:
    """Every node whose container runs is Ready (stopped ones are expected NotReady)."""
    running = [n for n in cluster.all_nodes if container_state(n) == "running"]
    seen = {n.metadata.name: node_ready(n) for n in cluster.core().list_node(_request_timeout=15).items}
    bad = [n for n in running if not seen.get(n)]
    return not bad, f"running {len(running)}, not Ready: {bad}"


@register("stop-control-planes")
class StopControlPlanes(Disruption):
    """`docker stop` control-plane node containers; heal starts them and waits for a healed
    control plane (running nodes Ready, the etcd members of running control planes healthy)."""

    def __init__(self, cluster: Cluster, nodes: list[str], grace_s: int = 10, ready_timeout_s: float = 300.0,
                 version: str = "v3.6.5") -> None:
        super().__init__()
        self.cluster, self.nodes, self.grace_s = cluster, list(nodes), grace_s
        self.ready_timeout_s, self.version = ready_timeout_s, version
        self.stopped_at: float | None = None
        self.ips: dict[str, str] = {}
        self.networks: dict[str, dict[str, str]] = {}

    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "stopping node containers needs a kind cluster"
        unknown = [n for n in self.nodes if n not in self.cluster.control_planes]
        return f"not control-plane nodes: {unknown}" if unknown else None

    def healthy(self) -> tuple[bool, str]:
        try:
            ok, seen = api_ready(self.cluster)
        except CommandFailed as exc:
            return False, str(exc)
        return ok, f"API /readyz: {seen}"

    def survivors(self) -> list[str]:
        return [n for n in self.cluster.control_planes if container_state(n) == "running" and n not in self.nodes]

    def inject(self) -> None:
        self.ips = {n: container_ip(n) for n in self.nodes}
        self.networks = {n: networks_of(n) for n in self.nodes}
        for n in self.nodes:
            run(["docker", "stop", "-t", str(self.grace_s), n], timeout=self.grace_s + 120)
        self.stopped_at = time.monotonic()

    def verify(self) -> tuple[bool, str]:
        """Every container exited, and no surviving member still hears a stopped one."""
        states = {n: container_state(n) or "missing" for n in self.nodes}
        self.effect["states"] = states
        if any(s != "exited" for s in states.values()):
            return False, f"containers not stopped after docker stop: {states}"
        surv = self.survivors()
        if not surv:
            return True, f"{', '.join(self.nodes)} exited; no control plane left running to ask etcd"
        answering = sorted({s["Endpoint"] for s in ke.NodeEtcd(self.cluster, surv[0], self.version).endpoint_status()})
        self.effect["etcd_answering"] = answering
        dead = [n for n in self.nodes if any(self.ips[n] and self.ips[n] in ep for ep in answering)]
        if dead:
            return False, f"etcd on {dead} still answers {surv[0]} after docker stop: {answering}"
        return True, f"{', '.join(self.nodes)} exited; etcd answers {surv[0]} at {answering or 'no endpoint'}"

    def heal(self) -> None:
        for n in self.nodes:
            if container_state(n) != "running":
                # A real host keeps its address across a shutdown; Docker does not (see
                # kubedrill.cluster.network). Reattach at the old address where Docker allows it.
                pinned = [pin_ip(n, net, ip) for net, ip in self.networks.get(n, {}).items() if ip]
                self.effect.setdefault("ip_pinned", {})[n] = all(pinned) if pinned else False
                run(["docker", "start", n], timeout=180)
        moved = {n: (self.ips.get(n), container_ip(n)) for n in self.nodes if self.ips.get(n) != container_ip(n)}
        if moved:
            self.effect["ip_changed"] = moved
        # Nested stops heal inside out: wait for the members and nodes that run now, not all.
        up = [n for n in self.cluster.control_planes if container_state(n) == "running"]
        until(f"the etcd members of {len(up)} running control planes healthy after starting {', '.join(self.nodes)}",
              lambda: ke.healthy_members(self.cluster, self.nodes[0], len(up), self.version),
              self.ready_timeout_s, interval=2.0,
              hint=("a node container that came back with another IP cannot rejoin etcd (peer URLs are IPs): "
                    f"{moved}" if moved else "see the etcd container logs on the restarted node"))
        until("running nodes Ready after the control-plane nodes came back", lambda: running_nodes_ready(self.cluster),
              self.ready_timeout_s, interval=2.0)
