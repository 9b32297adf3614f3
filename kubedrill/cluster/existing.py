"""Attach to a cluster that already runs, by kubeconfig/context, checking it answers before any test runs.

The provider says what kubedrill may do there (kubedrill.cluster.handle): a kind cluster running on
this host is attached as `kind` by default (node commands and its host-mapped NodePorts work);
`provider="generic"` attaches it with the Kubernetes API only, the way a staging cluster is seen;
any other cluster is `generic`. Asking for `kind` on a cluster that is not a kind cluster on this
host is an error that says so, not a handle whose node commands fail later.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubedrill.cluster.handle import PROVIDERS, Cluster, Provider


class AttachError(RuntimeError):
    """The cluster named by kubeconfig/context cannot be used; the message names the fix."""


class ClusterUnreachable(AttachError):
    """The kubeconfig, its context or the API server behind it is not there."""


def attach(kubeconfig: str, context: str | None = None, allow_disruptive_on: str | None = None,
           provider: Provider | None = None, timeout: float = 15) -> Cluster:
    """A handle on the cluster of `context` (default: the kubeconfig's current one). provider None:
    kind for a kind cluster on this host, else generic. Raises AttachError saying what to change."""
    if provider is not None and provider not in PROVIDERS:
        raise AttachError(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    path = Path(kubeconfig).expanduser()
    if not path.exists():
        raise ClusterUnreachable(f"kubeconfig {path} does not exist; pass --kubeconfig with a readable file")
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = config.list_kube_config_contexts(config_file=str(path))
    except (ConfigException, Exception) as exc:  # noqa: BLE001 - malformed file
        raise ClusterUnreachable(f"kubeconfig {path} cannot be read: {exc}") from exc
    names = [c["name"] for c in contexts]
    ctx = context or (active or {}).get("name")
    if ctx not in names:
        raise ClusterUnreachable(f"context {ctx!r} is not in {path}; available: {', '.join(names) or 'none'}. "
                                 f"Pass --context with one of them (kubectl config get-contexts --kubeconfig {path})")
    api = config.new_client_from_config(config_file=str(path), context=ctx)
    try:
        info = client.VersionApi(api).get_code(_request_timeout=timeout)
        nodes = client.CoreV1Api(api).list_node(_request_timeout=timeout).items
    except Exception as exc:  # noqa: BLE001 - any transport error means unreachable
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise AttachError(
                f"the API server of context {ctx!r} ({api.configuration.host}) refused to list nodes (HTTP {status}: "
                f"{getattr(exc, 'reason', '')}); kubedrill reads nodes to plan drills: use credentials that may "
                "list nodes and create namespaces") from exc
        raise ClusterUnreachable(
            f"the API server of context {ctx!r} ({api.configuration.host}) did not answer within {timeout:.0f}s: "
            f"{type(exc).__name__}: {str(exc)[:300]}. Check that the cluster runs and the kubeconfig is current."
        ) from exc
    roles: dict[str, list[str]] = {"control-plane": [], "worker": []}
    for n in nodes:
        labels = n.metadata.labels or {}
        role = "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker"
        roles[role].append(n.metadata.name)
    allowed = allow_disruptive_on == ctx
    kind_name = _local_kind_cluster(ctx, roles) if provider != "generic" else None
    if provider == "kind" and kind_name is None:
        raise AttachError(f"--provider kind needs a kind cluster whose node containers run on this host; context "
                          f"{ctx!r} is not one. Attach it with --provider generic (Kubernetes API only)")
    if kind_name:
        # A kind cluster on this host (e.g. kept with --keep-cluster, or made by `kind create
        # cluster`): node containers are reachable, so node commands and port mappings work.
        return Cluster(name=kind_name, kubeconfig=path, provider="kind", context=ctx, config_name="attached-kind",
                       k8s_version=info.git_version, nodes=roles, port_map=_kind_port_map(roles),
                       disruptive_allowed=allowed)
    return Cluster(name=ctx, kubeconfig=path, provider="generic", context=ctx, config_name="attached",
                   k8s_version=info.git_version, nodes=roles, disruptive_allowed=allowed)


def _local_kind_cluster(ctx: str, roles: dict[str, list[str]]) -> str | None:
    """The kind cluster name if `ctx` is kind-<name> and its node containers run on this host."""
    if not ctx.startswith("kind-"):
        return None
    name = ctx[len("kind-"):]
    try:
        p = subprocess.run(["docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--format", "{{.Names}}"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    running = set(p.stdout.split())
    nodes = [n for ns in roles.values() for n in ns]
    return name if nodes and all(n in running for n in nodes) else None


def _kind_port_map(roles: dict[str, list[str]]) -> dict[int, dict[str, int]]:
    """NodePort -> {node: 127.0.0.1 port} from `docker port`; empty for a plain `kind create cluster`."""
    out: dict[int, dict[str, int]] = {}
    for node in [n for ns in roles.values() for n in ns]:
        p = subprocess.run(["docker", "port", node], capture_output=True, text=True, timeout=30)
        for line in p.stdout.splitlines():  # "30080/tcp -> 127.0.0.1:49253"
            left, _, right = line.partition(" -> ")
            port = left.split("/")[0]
            if port.isdigit() and right.startswith("127.0.0.1:") and int(port) != 6443:
                out.setdefault(int(port), {})[node] = int(right.rsplit(":", 1)[1])
    return out
