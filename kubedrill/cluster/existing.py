"""Attach to an existing cluster by kubeconfig/context, checking it answers before any test runs."""

from __future__ import annotations

from pathlib import Path

from kubedrill.cluster.handle import Cluster


class ClusterUnreachable(RuntimeError):
    pass


def attach(kubeconfig: str, context: str | None = None, allow_disruptive_on: str | None = None,
           timeout: float = 15) -> Cluster:
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
        raise ClusterUnreachable(f"context {ctx!r} is not in {path}; available: {', '.join(names) or 'none'}")
    api = config.new_client_from_config(config_file=str(path), context=ctx)
    try:
        info = client.VersionApi(api).get_code(_request_timeout=timeout)
        nodes = client.CoreV1Api(api).list_node(_request_timeout=timeout).items
    except Exception as exc:  # noqa: BLE001 - any transport error means unreachable
        raise ClusterUnreachable(
            f"the API server of context {ctx!r} ({api.configuration.host}) did not answer within {timeout:.0f}s: "
            f"{type(exc).__name__}: {str(exc)[:300]}. Check that the cluster runs and the kubeconfig is current."
        ) from exc
    roles: dict[str, list[str]] = {"control-plane": [], "worker": []}
    for n in nodes:
        labels = n.metadata.labels or {}
        role = "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker"
        roles[role].append(n.metadata.name)
    kind_name = _local_kind_cluster(ctx, roles)
    if kind_name:
        # A kind cluster on this host (e.g. kept with --keep-cluster, or the outer cluster of a
        # meta-test): node containers are reachable, so node commands and port mappings work.
        return Cluster(
            name=kind_name, kubeconfig=path, provider="kind", context=ctx, config_name="existing-kind",
            k8s_version=info.git_version, nodes=roles, port_map=_kind_port_map(roles),
            disruptive_allowed=(allow_disruptive_on == ctx),
        )
    return Cluster(
        name=ctx, kubeconfig=path, provider="existing", context=ctx, config_name="existing",
        k8s_version=info.git_version, nodes=roles, disruptive_allowed=(allow_disruptive_on == ctx),
    )


def _local_kind_cluster(ctx: str, roles: dict[str, list[str]]) -> str | None:
    """The kind cluster name if `ctx` is kind-<name> and its node containers run on this host."""
    import subprocess

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
    import subprocess

    out: dict[int, dict[str, int]] = {}
    for node in [n for ns in roles.values() for n in ns]:
        p = subprocess.run(["docker", "port", node], capture_output=True, text=True, timeout=30)
        for line in p.stdout.splitlines():  # "30080/tcp -> 127.0.0.1:49253"
            left, _, right = line.partition(" -> ")
            port = left.split("/")[0]
            if port.isdigit() and right.startswith("127.0.0.1:") and int(port) != 6443:
                out.setdefault(int(port), {})[node] = int(right.rsplit(":", 1)[1])
    return out
