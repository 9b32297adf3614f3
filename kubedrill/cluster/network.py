"""Private Docker networks for kind clusters whose nodes get stopped and started again.

Why: kind nodes have no static address. On the shared "kind" network, a node container that is
stopped gives its IPv4 address back, and when it starts again Docker hands it the lowest free
one -- often another stopped node's, or one a neighbour's new container took meanwhile. A
control plane whose address changed cannot rejoin etcd (peer URLs and serving certificates name
the old IP), unlike a real host, which keeps its address across a shutdown. On a network with a
subnet we chose, Docker accepts `--ip`, so a node can be reattached at its own address before it
starts (`pin_ip`), and nobody else's containers compete for addresses.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess

from kubedrill.cluster.handle import run

LABEL = "kubedrill.network"


def _used_subnets() -> list[ipaddress.IPv4Network]:
    ids = run(["docker", "network", "ls", "-q"], timeout=30).stdout.split()
    if not ids:
        return []
    nets = json.loads(run(["docker", "network", "inspect", *ids], timeout=60).stdout)
    out = []
    for n in nets:
        for c in (n.get("IPAM") or {}).get("Config") or []:
            try:
                net = ipaddress.ip_network(c.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if isinstance(net, ipaddress.IPv4Network):
                out.append(net)
    return out


def create_private_network(name: str) -> str:
    """Create bridge network `name` on a free 10.213.N.0/24 (labelled for the sweeper); returns the subnet."""
    used = _used_subnets()
    for i in range(1, 255):
        cand = ipaddress.ip_network(f"10.213.{i}.0/24")
        if any(cand.overlaps(u) for u in used):
            continue
        run(["docker", "network", "create", "--driver", "bridge", "--subnet", str(cand),
             "--label", f"{LABEL}={name}", "-o", "com.docker.network.bridge.enable_ip_masquerade=true", name],
            timeout=60)
        return str(cand)
    raise RuntimeError("no free 10.213.N.0/24 subnet for a private kind network: remove unused Docker networks")


def remove_network(name: str) -> None:
    """Remove the network (after its cluster is deleted); a no-op when it is gone."""
    subprocess.run(["docker", "network", "rm", name], capture_output=True, text=True, timeout=60)


def networks_of(container: str) -> dict[str, str]:
    """network name -> IPv4 address of a container (empty address while it is stopped)."""
    p = run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container], timeout=30)
    return {k: (v or {}).get("IPAddress", "") for k, v in json.loads(p.stdout).items()}


def pin_ip(container: str, network: str, ip: str) -> bool:
    """Reattach a STOPPED container to `network` at `ip`, so it starts with that address.
    False (and the container attached again without a fixed address) when Docker refuses, e.g.
    on a network whose subnet it chose itself, like kind's default one."""
    run(["docker", "network", "disconnect", network, container], timeout=60)
    p = subprocess.run(["docker", "network", "connect", "--ip", ip, network, container], capture_output=True, text=True,
                       timeout=60)
    if p.returncode == 0:
        return True
    run(["docker", "network", "connect", network, container], timeout=60)
    return False
