"""kind cluster lifecycle: create with unique names, always delete, sweep leftovers of dead runs.

Every cluster kubedrill creates is named `kubedrill-<run id>[-<xdist worker>]` and registered in
$KUBEDRILL_CACHE/clusters/<name>.json with the owning PID. The sweeper deletes only clusters whose
owner is gone, so concurrent runs on one host never delete each other's clusters.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

from kubedrill.cluster import kindconfig, ports
from kubedrill.cluster.handle import Cluster, pid_alive, run
from kubedrill.cluster.paths import cache_dir, kind_binary
from kubedrill.cluster.progress import say

PREFIX = "kubedrill-"
_LIVE: set[str] = set()


class ClusterCreateError(RuntimeError):
    pass


def _registry() -> Path:
    d = cache_dir() / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    return d


def unique_name(worker: str | None = None) -> str:
    name = PREFIX + uuid.uuid4().hex[:6]
    if worker and worker != "master":
        name += "-" + worker
    return name


def _kind() -> str:
    kb = kind_binary()
    if kb is None:
        raise ClusterCreateError("kind CLI not found: run `python -m kubedrill build` (builds it offline) or install kind")
    return str(kb)


def list_clusters() -> list[str]:
    p = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster", "--format", '{{.Label "io.x-k8s.kind.cluster"}}'],
        capture_output=True, text=True, timeout=60,
    )
    return sorted(set(p.stdout.split()))


def delete(name: str) -> None:
    """Delete a kind cluster and anything left with its label. Safe to call twice."""
    kb = kind_binary()
    if kb is not None:
        subprocess.run([str(kb), "delete", "cluster", "--name", name], capture_output=True, timeout=300)
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}"],
                          capture_output=True, text=True, timeout=60).stdout.split()
    if left:
        subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True, timeout=300)
    (_registry() / f"{name}.json").unlink(missing_ok=True)
    ports.release(name)
    _LIVE.discard(name)


def sweep(dry_run: bool = False) -> list[str]:
    """Delete kubedrill clusters whose owning process is gone (crashed or killed runs)."""
    gone = []
    for name in list_clusters():
        if not name.startswith(PREFIX):
            continue
        reg = _registry() / f"{name}.json"
        owner = None
        kept = False
        if reg.exists():
            try:
                entry = json.loads(reg.read_text())
                kept = bool(entry.get("kept"))
                owner = int(entry["pid"])
            except (ValueError, KeyError, json.JSONDecodeError):
                owner = None
        if kept or (owner is not None and pid_alive(owner)):
            continue
        gone.append(name)
        if not dry_run:
            say(f"sweeping leftover cluster {name} (owner process gone)")
            delete(name)
    return gone


def keep(name: str) -> None:
    """--keep-cluster: hand the cluster to the user. Neither this process's exit cleanup nor a later
    session's sweep() deletes it (sweep would, since its owner is gone); `kind delete cluster` does."""
    _LIVE.discard(name)
    reg = _registry() / f"{name}.json"
    try:
        entry = json.loads(reg.read_text()) if reg.exists() else {}
    except json.JSONDecodeError:
        entry = {}
    reg.write_text(json.dumps({**entry, "kept": True}))


def _atexit_cleanup() -> None:
    for name in list(_LIVE):
        try:
            delete(name)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


atexit.register(_atexit_cleanup)


def _sigterm(signum: int, frame: object) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt so pytest tears fixtures down (deleting clusters)."""
    try:
        signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread
        pass


# kind/docker errors that a second attempt with other host ports or a clean slate can get past.
TRANSIENT = ("port is already allocated", "address already in use", "Conflict. The container name",
             "failed to create network", "TLS handshake timeout", "context deadline exceeded")


def transient_reason(output: str) -> str | None:
    """The line of a failed `kind create` that marks it as worth one retry, else None."""
    for line in output.splitlines():
        if any(t in line for t in TRANSIENT):
            return line.strip()[:300]
    return None


def create(config: str, node_image: str, k8s_version: str = "", name: str | None = None,
           kubeconfig_dir: Path | None = None, timeout: float = 900, logs_dir: Path | None = None,
           network: str | None = None) -> Cluster:
    """Create a kind cluster from a named config; on failure collect logs, delete, and raise.
    A failure for a transient reason (a host port taken meanwhile, ...) is retried once, saying why.

    network: a Docker network (created beforehand) for the nodes instead of the shared "kind" one
    (kind's KIND_EXPERIMENTAL_DOCKER_NETWORK, set for this kind process only), e.g. so that node
    containers can be stopped and started again with their own addresses.
    """
    name = name or unique_name()
    try:
        return _create_once(config, node_image, k8s_version, name, kubeconfig_dir, timeout, logs_dir, network)
    except ClusterCreateError as exc:
        why = transient_reason(str(exc))
        if why is None:
            raise
        say(f"kind create cluster {name} failed for a transient reason ({why}); retrying once")
        try:
            return _create_once(config, node_image, k8s_version, name, kubeconfig_dir, timeout, logs_dir, network)
        except ClusterCreateError as again:
            raise ClusterCreateError(f"{again}\n(second attempt; the first failed with: {why})") from exc


def _create_once(config: str, node_image: str, k8s_version: str, name: str, kubeconfig_dir: Path | None,
                 timeout: float, logs_dir: Path | None, network: str | None) -> Cluster:
    held = ports.reserve(name, kindconfig.host_ports_needed(config))
    rendered = kindconfig.render(config, node_image, held)
    kdir = kubeconfig_dir or Path(tempfile.mkdtemp(prefix="kubedrill-kubeconfig-"))
    kubeconfig = kdir / f"{name}.kubeconfig"
    (_registry() / f"{name}.json").write_text(json.dumps({"pid": os.getpid(), "created": time.time(), "config": config}))
    _LIVE.add(name)
    say(f"creating kind cluster {name} ({config}, {len(rendered.roles)} nodes, image {node_image})")
    t0 = time.monotonic()
    argv = [_kind(), "create", "cluster", "--name", name, "--config", "-", "--kubeconfig", str(kubeconfig),
            "--retain", "--wait", "0s"]
    env = dict(os.environ, KIND_EXPERIMENTAL_DOCKER_NETWORK=network) if network else None
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(rendered.text)
    proc.stdin.close()
    out: list[str] = []
    try:
        for line in proc.stdout:
            line = line.rstrip()
            out.append(line)
            if line.strip():
                say(f"  kind: {line.strip()}")
        proc.wait(timeout=timeout)
    except BaseException:
        proc.kill()
        if logs_dir is not None:
            export_logs(name, logs_dir)
        delete(name)
        raise
    if proc.returncode != 0:
        if logs_dir is not None:
            export_logs(name, logs_dir)
        delete(name)
        raise ClusterCreateError(
            f"kind create cluster {name} failed (exit {proc.returncode}) after {time.monotonic() - t0:.0f}s.\n"
            + "\n".join(out[-30:])
            + ("\nkind logs were exported to " + str(logs_dir) if logs_dir else "")
        )
    nodes = kindconfig.node_names(name, rendered.roles)
    order = nodes["control-plane"] + nodes["worker"]
    # kind orders nodes in the config order; map each NodePort's host ports onto node names.
    cfg_order = []
    counters = {"control-plane": 0, "worker": 0}
    for role in rendered.roles:
        cfg_order.append(nodes[role][counters[role]])
        counters[role] += 1
    port_map = {np: dict(zip(cfg_order, hps)) for np, hps in rendered.port_plan.items()}
    say(f"cluster {name} created in {time.monotonic() - t0:.0f}s: nodes {', '.join(order)}")
    return Cluster(name=name, kubeconfig=kubeconfig, provider="kind", context=f"kind-{name}", config_name=config,
                   k8s_version=k8s_version, node_image=node_image, nodes=nodes, port_map=port_map)


def export_logs(name: str, dest: Path) -> None:
    kb = kind_binary()
    if kb is None:
        return
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(kb), "export", "logs", str(dest), "--name", name], capture_output=True, timeout=300)


def load_image(cluster: Cluster, image: str, nodes: list[str] | None = None) -> None:
    """`kind load docker-image` (the way users' local images reach the nodes)."""
    argv = [_kind(), "load", "docker-image", image, "--name", cluster.name]
    if nodes:
        argv += ["--nodes", ",".join(nodes)]
    run(argv, timeout=600)


@contextlib.contextmanager
def created(config: str, node_image: str, *, k8s_version: str = "", name: str | None = None,
            kubeconfig_dir: Path | None = None, logs_dir: Path | None = None, private_network: bool = False,
            ready_timeout: float = 300, keep_after: bool = False) -> Iterator[Cluster]:
    """The one kind cluster lifecycle every fixture and benchmark uses: create (on a private Docker
    network if asked, so stopped node containers come back at their own addresses), wait until all
    nodes are Ready and kube-system runs, yield, and always delete -- on failure with kind's logs
    exported to `logs_dir` first. keep_after: hand the cluster to the user instead (--keep-cluster).
    """
    from kubedrill.cluster import network as docker_network
    from kubedrill.cluster.waits import wait_cluster_ready

    name = name or unique_name()
    net = f"{name}-net" if private_network else None
    install_sigterm_handler()
    cluster: Cluster | None = None
    try:
        if net:
            docker_network.create_private_network(net)
        cluster = create(config, node_image, k8s_version=k8s_version, name=name, kubeconfig_dir=kubeconfig_dir,
                         logs_dir=logs_dir, network=net)
        try:
            wait_cluster_ready(cluster, timeout=ready_timeout)
        except BaseException:
            if logs_dir is not None:
                export_logs(name, logs_dir)
            raise
        yield cluster
    finally:
        if keep_after and cluster is not None:
            keep(name)
            say(f"--keep-cluster: leaving {name}; kubeconfig {cluster.kubeconfig}; delete with: "
                f"kind delete cluster --name {name}")
        else:
            if cluster is not None:
                say(f"deleting cluster {name}")
            delete(name)
            if net:
                docker_network.remove_network(net)
