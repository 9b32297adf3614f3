"""Backups of a kubeadm cluster's etcd, kept on the host: this cluster's own, and another cluster's.

`take_backup` is the operator's backup: `etcdctl snapshot save` on a control-plane node with the
kubeadm PKI, `etcdutl snapshot status` recorded, the file copied to the host and its checksum
compared with the node's. It changes nothing in the cluster, so it is not a disruption; the restore
(kubedrill.disrupt.etcd_restore) consumes what it returns.

`foreign_backup` is a snapshot of ANOTHER Kubernetes cluster, the wrong input of the "snapshot from
another cluster" restore: built on this cluster's first control-plane node, without a second kind
cluster, by a throwaway etcd and kube-apiserver that bootstrap a fresh cluster state.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.handle import Cluster, run
from kubedrill.cluster.waits import until

# Ports of the throwaway control plane on the node, away from kubeadm's (2379-2381, 6443).
FOREIGN_ETCD_PORT = 32379
FOREIGN_API_PORT = 36443


class BackupError(RuntimeError):
    """A backup could not be taken or did not reach the host intact."""


@dataclass(frozen=True)
class Backup:
    """A snapshot taken on a control-plane node and kept on the host."""

    cluster: str  # the cluster whose state it holds (a foreign backup names its throwaway cluster)
    node: str
    node_path: str
    host_path: Path
    sha256: str
    status: dict[str, Any]  # etcdutl snapshot status: hash, revision, totalKey, totalSize, version
    seconds: float
    taken_wall: float

    @property
    def revision(self) -> int:
        return int(self.status.get("revision", 0))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(tools: ke.NodeEtcd, node_path: str, dest_dir: Path) -> tuple[Path, str]:
    """`docker cp` a snapshot from the node to dest_dir; (host path, sha256) once both copies agree."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    host_path = dest_dir / Path(node_path).name
    run(["docker", "cp", f"{tools.node}:{node_path}", str(host_path)], timeout=300)
    node_sum = tools.sh(["sha256sum", node_path]).stdout.split()[0]
    host_sum = sha256_file(host_path)
    if node_sum != host_sum:
        raise BackupError(f"backup copy corrupted: sha256 on {tools.node} {node_sum}, on the host {host_sum}; "
                          f"copy {node_path} again (is {dest_dir} on a full or flaky disk?)")
    return host_path, host_sum


def take_backup(cluster: Cluster, dest_dir: Path, node: str | None = None, version: str = "v3.6.5",
                label: str = "") -> Backup:
    """`etcdctl snapshot save` with the kubeadm certs on `node` (default: the first control
    plane), `etcdutl snapshot status`, then the file to dest_dir on the host (checksum verified),
    with its status next to it (<name>.status.json)."""
    node = node or cluster.control_planes[0]
    tools = ke.NodeEtcd(cluster, node, version)
    tools.install()
    node_path = f"{ke.WORK_DIR}/snapshot-{label or uuid.uuid4().hex[:6]}.db"
    t0 = time.monotonic()
    tools.snapshot_save(node_path)
    seconds = time.monotonic() - t0
    status = tools.snapshot_status(node_path)
    host_path, sha = _fetch(tools, node_path, dest_dir)
    host_path.with_name(f"{host_path.name}.status.json").write_text(
        json.dumps({"node": node, "status": status, "sha256": sha}))
    return Backup(cluster.name, node, node_path, host_path, sha, status, seconds, time.time())


def foreign_apiserver_argv(manifest_text: str, etcd_url: str, port: int) -> list[str]:
    """The node's kube-apiserver command, pointed at another etcd and port: a second, separate
    control plane with the same configuration (what a snapshot of "another cluster" holds)."""
    doc = yaml.safe_load(manifest_text)
    cmd = next(c["command"] for c in doc["spec"]["containers"] if c["name"] == "kube-apiserver")
    drop = ("--etcd-servers=", "--etcd-cafile=", "--etcd-certfile=", "--etcd-keyfile=", "--secure-port=",
            "--bind-address=")
    out = [a for a in cmd if not a.startswith(drop)]
    return out + [f"--etcd-servers={etcd_url}", f"--secure-port={port}", "--bind-address=127.0.0.1"]


def foreign_backup(cluster: Cluster, dest_dir: Path, version: str = "v3.6.5", timeout: float = 180.0) -> Backup:
    """A snapshot of another Kubernetes control plane, built on this cluster's first control-plane
    node: a throwaway etcd (systemd-run) and a kube-apiserver from the node's own image (ctr run)
    bootstrap a fresh cluster state -- its own kube-system with its own uid, default RBAC, the
    kubernetes Service -- which is then snapshotted and torn down, whatever happens."""
    node = cluster.control_planes[0]
    rid = uuid.uuid4().hex[:6]
    tools = ke.NodeEtcd(cluster, node, version)
    tools.install()
    run(["docker", "cp", str(ke.host_bin(version, "etcd")), f"{node}:{ke.BIN_DIR}/kd-etcd"], timeout=60)
    data = f"{ke.WORK_DIR}/foreign-{rid}"
    url = f"http://127.0.0.1:{FOREIGN_ETCD_PORT}"
    peer = f"http://127.0.0.1:{FOREIGN_ETCD_PORT + 1}"
    unit, ctr_id = f"kd-foreign-etcd-{rid}", f"kd-foreign-apiserver-{rid}"
    api_manifest = cluster.node_exec(node, "cat", f"{ke.MANIFESTS}/kube-apiserver.yaml", timeout=30).stdout
    image = next(c["image"] for c in yaml.safe_load(api_manifest)["spec"]["containers"]
                 if c["name"] == "kube-apiserver")
    argv = foreign_apiserver_argv(api_manifest, url, FOREIGN_API_PORT)
    try:
        cluster.node_exec(node, "systemd-run", f"--unit={unit}", f"{ke.BIN_DIR}/kd-etcd", "--name=foreign",
                          f"--data-dir={data}", f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
                          f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                          f"--initial-cluster=foreign={peer}",
                          f"--listen-metrics-urls=http://127.0.0.1:{FOREIGN_ETCD_PORT + 2}", timeout=60)
        cluster.node_exec(node, "ctr", "-n", "k8s.io", "run", "-d", "--net-host", "--mount",
                          "type=bind,src=/etc/kubernetes/pki,dst=/etc/kubernetes/pki,options=rbind:ro",
                          image, ctr_id, *argv, timeout=120)

        def bootstrapped() -> tuple[bool, str]:
            p = cluster.node_exec(node, f"{ke.BIN_DIR}/etcdctl", f"--endpoints={url}", "get", "--keys-only",
                                  "--prefix", "/registry/namespaces/", check=False, timeout=30)
            r = cluster.node_exec(node, "curl", "-sk", "-m", "3", f"https://127.0.0.1:{FOREIGN_API_PORT}/readyz",
                                  check=False, timeout=30)
            return ("kube-system" in p.stdout and r.stdout.strip() == "ok",
                    f"namespaces: {p.stdout.split()}; readyz: {r.stdout[-200:]}")

        until("the throwaway control plane to bootstrap its cluster state", bootstrapped, timeout, interval=2.0,
              hint=f"docker exec {node} ctr -n k8s.io task ls; journalctl -u {unit}")
        node_path = f"{ke.WORK_DIR}/foreign-{rid}.db"
        cluster.node_exec(node, f"{ke.BIN_DIR}/etcdctl", f"--endpoints={url}", "snapshot", "save", node_path,
                          timeout=120)
        status = tools.snapshot_status(node_path)
        host_path, sha = _fetch(tools, node_path, dest_dir)
        return Backup(f"foreign-{rid}", node, node_path, host_path, sha, status, 0.0, time.time())
    finally:
        cluster.node_exec(node, "ctr", "-n", "k8s.io", "task", "kill", "-s", "SIGKILL", ctr_id, check=False,
                          timeout=30)
        cluster.node_exec(node, "sh", "-c",
                          f"sleep 1; ctr -n k8s.io task rm -f {ctr_id}; ctr -n k8s.io container rm {ctr_id}",
                          check=False, timeout=60)
        cluster.node_exec(node, "systemctl", "stop", unit, check=False, timeout=60)
        cluster.node_exec(node, "rm", "-rf", data, check=False, timeout=60)
