"""Load a named kind config and fill in what kubedrill needs. Pure: no Docker, no kind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubedrill.cluster.paths import KIND_CONFIGS

NAMED_CONFIGS = ("single", "three-node", "ha", "node-loss")
DEFAULT_CONFIG = "three-node"
# NodePorts mapped to 127.0.0.1 on every node: the sample app uses 30080; 30081-30082 are for
# user workloads.
DEFAULT_NODE_PORTS = (30080, 30081, 30082)
VALID_ROLES = ("control-plane", "worker")
CONTAINERD_PATCH = (
    '[plugins."io.containerd.grpc.v1.cri"]\n'
    "  restrict_oom_score_adj = true\n"
)


class ClusterConfigError(ValueError):
    """A cluster config is unknown or malformed; the message names the file and the field."""


@dataclass
class RenderedConfig:
    text: str
    roles: list[str]
    # NodePort -> list of host ports, in node order (kind names nodes by role and index).
    port_plan: dict[int, list[int]]


def resolve(name_or_path: str) -> Path:
    if name_or_path in NAMED_CONFIGS:
        return KIND_CONFIGS / f"{name_or_path}.yaml"
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    raise ClusterConfigError(
        f"unknown cluster config {name_or_path!r}: use one of {', '.join(NAMED_CONFIGS)} "
        "or the path of a kind config YAML file"
    )


def load(name_or_path: str) -> dict[str, Any]:
    path = resolve(name_or_path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ClusterConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    validate(doc, str(path))
    return doc


def validate(doc: Any, where: str) -> None:
    if not isinstance(doc, dict):
        raise ClusterConfigError(f"{where}: a kind config must be a mapping, got {type(doc).__name__}")
    if doc.get("kind") != "Cluster":
        raise ClusterConfigError(f"{where}: field 'kind' must be 'Cluster', got {doc.get('kind')!r}")
    if not str(doc.get("apiVersion", "")).startswith("kind.x-k8s.io/"):
        raise ClusterConfigError(f"{where}: field 'apiVersion' must be kind.x-k8s.io/v1alpha4, got {doc.get('apiVersion')!r}")
    nodes = doc.get("nodes")
    if nodes is None:
        doc["nodes"] = nodes = [{"role": "control-plane"}]
    if not isinstance(nodes, list) or not nodes:
        raise ClusterConfigError(f"{where}: field 'nodes' must be a non-empty list")
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            raise ClusterConfigError(f"{where}: nodes[{i}] must be a mapping")
        role = n.get("role", "control-plane")
        if role not in VALID_ROLES:
            raise ClusterConfigError(f"{where}: nodes[{i}].role: {role!r} is not one of {', '.join(VALID_ROLES)}")
    if not any(n.get("role", "control-plane") == "control-plane" for n in nodes):
        raise ClusterConfigError(f"{where}: at least one node must have role control-plane")


def host_ports_needed(name_or_path: str, node_ports: tuple[int, ...] = DEFAULT_NODE_PORTS) -> int:
    """How many host ports `render` takes: the API server's, and each node port on each node."""
    return 1 + len(load(name_or_path)["nodes"]) * len(node_ports)


def render(name_or_path: str, node_image: str, ports: list[int],
           node_ports: tuple[int, ...] = DEFAULT_NODE_PORTS) -> RenderedConfig:
    """The config kind gets: the named nodes, each with `node_image` and 127.0.0.1 port mappings, on
    the given host `ports` (kubedrill.cluster.ports reserves them; the first is the API server's,
    so kind does not pick one itself, racing every other process for the ephemeral range)."""
    doc = load(name_or_path)
    roles = [n.get("role", "control-plane") for n in doc["nodes"]]
    need = 1 + len(roles) * len(node_ports)
    if len(ports) < need:
        raise ValueError(f"{name_or_path}: {len(roles)} nodes x {len(node_ports)} node ports + the API server need "
                         f"{need} host ports, got {len(ports)}")
    pool = list(ports)
    api_port = pool.pop(0)
    plan: dict[int, list[int]] = {p: [] for p in node_ports}
    for n in doc["nodes"]:
        n["role"] = n.get("role", "control-plane")
        n["image"] = node_image
        maps = list(n.get("extraPortMappings", []))
        for np in node_ports:
            hp = pool.pop(0)
            plan[np].append(hp)
            maps.append({"containerPort": np, "hostPort": hp, "listenAddress": "127.0.0.1", "protocol": "TCP"})
        n["extraPortMappings"] = maps
    patches = list(doc.get("containerdConfigPatches", []))
    if not any("restrict_oom_score_adj" in p for p in patches):
        patches.append(CONTAINERD_PATCH)
    doc["containerdConfigPatches"] = patches
    net = doc.setdefault("networking", {})
    net.setdefault("apiServerAddress", "127.0.0.1")
    net["apiServerPort"] = api_port
    return RenderedConfig(yaml.safe_dump(doc, sort_keys=False), roles, plan)


def node_names(cluster: str, roles: list[str]) -> dict[str, list[str]]:
    """kind's node container names: <cluster>-control-plane, -control-plane2, -worker, -worker2 ..."""
    out: dict[str, list[str]] = {"control-plane": [], "worker": []}
    for role in roles:
        idx = len(out[role]) + 1
        out[role].append(f"{cluster}-{role}" + ("" if idx == 1 else str(idx)))
    return out
