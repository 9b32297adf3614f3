"""The typed handle every suite receives: one cluster, however it came to be.

The provider says what kubedrill may do with the cluster:
  kind     a kind cluster on this host: node commands run with `docker exec`, and the NodePorts its
           config maps reach 127.0.0.1 (kubedrill's own clusters, or one attached by kubeconfig)
  generic  any conformant cluster, attached by kubeconfig/context: the Kubernetes API and kubectl
           only. Node commands raise NodeAccessUnavailable naming what is missing, no host ports.
A kind cluster can be handed out as `generic` (`as_generic()`): that is how a staging cluster,
which gives no node access, is rehearsed on a runner.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

Provider = Literal["kind", "generic"]
PROVIDERS: tuple[Provider, ...] = ("kind", "generic")


class NodeAccessUnavailable(RuntimeError):
    """Raised when a suite needs a shell on a node the provider cannot give (provider generic)."""


def missing_node_access(provider: str) -> str | None:
    """What a provider without a shell on nodes lacks, and the fix; None for kind."""
    if provider == "kind":
        return None
    return (f"provider {provider} gives Kubernetes API only (no shell on nodes); attach a kind cluster on this host "
            "with --provider kind to run it")


class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], proc: subprocess.CompletedProcess[str]) -> None:
        self.argv = list(argv)
        self.proc = proc
        super().__init__(
            f"command failed (exit {proc.returncode}): {shlex.join(self.argv)}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )


def pid_alive(pid: int) -> bool:
    """A process with this PID exists on this host (owners of clusters, ports and namespaces)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(argv: Sequence[str], timeout: float = 120, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with a bounded time; on failure raise CommandFailed showing both streams."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input, env=env)
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"command did not finish within {timeout:.0f}s: {shlex.join(list(argv))}") from exc
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc)
    return proc


# A call to the API server that passes no `_request_timeout` gets this (connect, read) bound, so a
# hung API server becomes an error that names the request instead of a stalled run. Watches and
# long reads pass their own.
API_TIMEOUT_S = (10.0, 60.0)


def bounded_api_client(kubeconfig: Path | str, context: str | None = None):  # -> kubernetes.client.ApiClient
    from kubernetes import client, config

    class BoundedApiClient(client.ApiClient):  # type: ignore[misc]
        def call_api(self, method, url, header_params=None, body=None, post_params=None,  # type: ignore[no-untyped-def]
                     _request_timeout=None):
            bound = API_TIMEOUT_S if _request_timeout is None else _request_timeout
            try:
                return super().call_api(method, url, header_params, body, post_params, bound)
            except Exception as exc:
                if type(exc).__name__ in ("ReadTimeoutError", "ConnectTimeoutError", "MaxRetryError"):
                    path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
                    raise TimeoutError(f"the API server did not answer {method} {path} within {bound} s "
                                       f"(connect, read): {exc}") from exc
                raise

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=cfg)
    return BoundedApiClient(configuration=cfg)


@dataclass
class Cluster:
    name: str
    kubeconfig: Path
    provider: Provider
    context: str | None = None
    config_name: str = "attached"
    k8s_version: str = ""
    node_image: str = ""
    # role -> node names; roles are "control-plane" and "worker".
    nodes: dict[str, list[str]] = field(default_factory=dict)
    # NodePort -> {node name: host port on 127.0.0.1}; only kind clusters have these.
    port_map: dict[int, dict[str, int]] = field(default_factory=dict)
    disruptive_allowed: bool = True

    # --- Kubernetes API -------------------------------------------------------------------
    def api_client(self):  # -> kubernetes.client.ApiClient (imported lazily: slow import)
        """A client whose every request is bounded (API_TIMEOUT_S unless the call passes its own)."""
        return bounded_api_client(self.kubeconfig, self.context)

    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.api_client())

    def policy(self):
        from kubernetes import client

        return client.PolicyV1Api(self.api_client())

    def kubectl_argv(self, *args: str) -> list[str]:
        from kubedrill.cluster.paths import kubectl_binary

        argv = [kubectl_binary(), "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            argv += ["--context", self.context]
        return argv + list(args)

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(self.kubectl_argv(*args), timeout=timeout, check=check, input=input)

    # --- nodes ----------------------------------------------------------------------------
    @property
    def control_planes(self) -> list[str]:
        return list(self.nodes.get("control-plane", []))

    @property
    def workers(self) -> list[str]:
        return list(self.nodes.get("worker", []))

    @property
    def all_nodes(self) -> list[str]:
        return self.control_planes + self.workers

    @property
    def node_access(self) -> str | None:
        """None when commands can run on nodes; else what is missing, for a skip or an error."""
        return missing_node_access(self.provider)

    def as_generic(self) -> "Cluster":
        """The same cluster as a user without node access sees it: API only, no host ports."""
        return dataclasses.replace(self, provider="generic", port_map={})

    def node_exec(self, node: str, *cmd: str, timeout: float = 120, check: bool = True,
                  input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command on a node (kind: `docker exec` into the node container)."""
        missing = self.node_access
        if missing is not None:
            raise NodeAccessUnavailable(f"running a command on node {node} needs a shell on nodes: {missing}")
        return run(["docker", "exec", *(["-i"] if input is not None else []), node, *cmd],
                   timeout=timeout, check=check, input=input)

    def host_port(self, node_port: int, node: str | None = None) -> int:
        """The 127.0.0.1 port that reaches `node_port` (via `node`, default the first control plane)."""
        ports = self.port_map.get(node_port)
        if not ports:
            raise KeyError(f"NodePort {node_port} is not mapped to the host; mapped: {sorted(self.port_map)}")
        if node is None:
            node = next(iter(ports))
        return ports[node]
