"""The typed handle every suite receives: one cluster, however it came to be.

A `Cluster` is either a kind cluster kubedrill created (provider "kind": node commands run with
`docker exec`) or an existing cluster attached by kubeconfig/context (provider "existing": only the
Kubernetes API and kubectl; node commands raise NodeAccessUnavailable with the reason).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

Provider = Literal["kind", "existing"]


class NodeAccessUnavailable(RuntimeError):
    """Raised when a suite needs a shell on a node the provider cannot give (existing clusters)."""


class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], proc: subprocess.CompletedProcess[str]) -> None:
        self.argv = list(argv)
        self.proc = proc
        super().__init__(
            f"command failed (exit {proc.returncode}): {shlex.join(self.argv)}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )


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


@dataclass
class Cluster:
    name: str
    kubeconfig: Path
    provider: Provider
    context: str | None = None
    config_name: str = "existing"
    k8s_version: str = ""
    node_image: str = ""
    # role -> node names; roles are "control-plane" and "worker".
    nodes: dict[str, list[str]] = field(default_factory=dict)
    # NodePort -> {node name: host port on 127.0.0.1}; only kind clusters have these.
    port_map: dict[int, dict[str, int]] = field(default_factory=dict)
    disruptive_allowed: bool = True

    # --- Kubernetes API -------------------------------------------------------------------
    def api_client(self):  # -> kubernetes.client.ApiClient (imported lazily: slow import)
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)

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

    def node_exec(self, node: str, *cmd: str, timeout: float = 120, check: bool = True,
                  input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command on a node (kind: `docker exec` into the node container)."""
        if self.provider != "kind":
            raise NodeAccessUnavailable(
                f"running commands on node {node} needs node access, which an existing cluster attached by "
                "kubeconfig does not give; run this suite on a kind cluster or configure node access"
            )
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
