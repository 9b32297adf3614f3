"""etcdctl / etcdutl on a kubeadm control-plane node, with the kubeadm PKI, as an operator runs them.

Why on the node and not from the host: the stacked etcd listens on https://127.0.0.1:2379 inside
the node only, and its image (FROM scratch) has no shell, so the operator procedure is to put the
etcd client binaries on the control-plane node and run them there with the certificates kubeadm
wrote to /etc/kubernetes/pki/etcd. kubedrill copies the pinned host binaries
(~/.cache/kubedrill/etcd/<version>/bin) into the node once.

Pure helpers (manifest parsing and rewriting, restore command lines) are separate from the ones
that run commands, so the unit tests can cover the parts that decide what an operator types.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubedrill.cluster.handle import Cluster, CommandFailed, run
from kubedrill.cluster.paths import cache_dir

PKI = "/etc/kubernetes/pki/etcd"
MANIFESTS = "/etc/kubernetes/manifests"
# Static-pod manifests moved here are stopped by the kubelet; it lives outside the watched folder.
MANIFESTS_OFF = "/etc/kubernetes/kd-manifests-off"
ETCD_MANIFEST = f"{MANIFESTS}/etcd.yaml"
DATA_DIR = "/var/lib/etcd"
WORK_DIR = "/var/lib/kubedrill"  # snapshots and scratch on the node
LOCAL_ENDPOINT = "https://127.0.0.1:2379"
BIN_DIR = "/usr/local/bin"
# Bump far beyond anything a cluster writes between a backup and a restore (etcd's and the
# Kubernetes docs' value): resourceVersions keep increasing and old ones read as compacted.
DEFAULT_BUMP = 1_000_000_000


class EtcdToolError(RuntimeError):
    """An etcd client command failed on a node, or its answer lacks what was asked (no leader, an
    unknown member); the message carries the command and what it said."""


# -- pure: versions, manifests, command lines ---------------------------------------------------

def parse_version(v: str) -> tuple[int, int, int]:
    """'v3.6.5' / '3.6.5-0' / 'etcdutl version: 3.6.5' -> (3, 6, 5)."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        raise ValueError(f"not an etcd version: {v!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def restore_tool(version: str) -> str:
    """etcd >= 3.5 restores with etcdutl (etcdctl's restore was deprecated in 3.5, removed in 3.6)."""
    return "etcdutl" if parse_version(version) >= (3, 5, 0) else "etcdctl"


@dataclass(frozen=True)
class EtcdMember:
    """What one member's static-pod manifest says about it."""

    node: str
    name: str
    peer_url: str
    client_url: str
    data_dir: str  # --data-dir inside the container
    data_host_path: str  # hostPath of the etcd-data volume (where the data really is)
    image: str


def _flags(command: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in command:
        if arg.startswith("--") and "=" in arg:
            k, v = arg[2:].split("=", 1)
            out[k] = v
    return out


def _etcd_container(doc: dict[str, Any]) -> dict[str, Any]:
    for c in doc.get("spec", {}).get("containers", []):
        if c.get("name") == "etcd":
            return c
    raise ValueError("the manifest has no container named etcd: is this kubeadm's etcd.yaml?")


def _data_volume(doc: dict[str, Any], mount_path: str) -> dict[str, Any]:
    c = _etcd_container(doc)
    names = [m["name"] for m in c.get("volumeMounts", []) if m.get("mountPath") == mount_path]
    if not names:
        raise ValueError(f"no volume is mounted at the data dir {mount_path} in the etcd manifest")
    for v in doc.get("spec", {}).get("volumes", []):
        if v.get("name") == names[0] and "hostPath" in v:
            return v
    raise ValueError(f"volume {names[0]!r} (the data dir) is not a hostPath volume")


def parse_member(node: str, manifest_text: str) -> EtcdMember:
    """The member described by kubeadm's etcd.yaml on `node`."""
    doc = yaml.safe_load(manifest_text)
    c = _etcd_container(doc)
    f = _flags(c.get("command", []))
    missing = [k for k in ("name", "initial-advertise-peer-urls", "data-dir") if k not in f]
    if missing:
        raise ValueError(f"etcd manifest on {node} lacks --{', --'.join(missing)}")
    vol = _data_volume(doc, f["data-dir"])
    return EtcdMember(node=node, name=f["name"], peer_url=f["initial-advertise-peer-urls"].split(",")[0],
                      client_url=f.get("advertise-client-urls", LOCAL_ENDPOINT).split(",")[0],
                      data_dir=f["data-dir"], data_host_path=vol["hostPath"]["path"], image=c.get("image", ""))


def point_data_dir(manifest_text: str, host_path: str) -> str:
    """The manifest with the etcd-data hostPath moved to `host_path` (the container path and
    --data-dir stay, so nothing else in the pod changes): the kubeadm docs' edit."""
    doc = yaml.safe_load(manifest_text)
    f = _flags(_etcd_container(doc).get("command", []))
    _data_volume(doc, f["data-dir"])["hostPath"]["path"] = host_path
    return yaml.safe_dump(doc, sort_keys=False)


def initial_cluster(members: list[EtcdMember]) -> str:
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def restore_argv(version: str, snapshot: str, member: EtcdMember, members: list[EtcdMember], data_dir: str,
                 token: str, bump_revision: int = 0) -> list[str]:
    """The restore command an operator types for `member` (all members restore the same file).

    bump_revision > 0 adds `--bump-revision N --mark-compacted` (etcdutl 3.6 and late 3.5 releases;
    `NodeEtcd.can_bump` asks the binary itself), so
    revisions -- Kubernetes resourceVersions -- keep increasing and watchers from before the
    restore get "compacted" (410 Gone) and relist instead of resuming on stale data.
    """
    tool = restore_tool(version)
    argv = [f"{BIN_DIR}/{tool}", "snapshot", "restore", snapshot, f"--data-dir={data_dir}",
            f"--name={member.name}", f"--initial-cluster={initial_cluster(members)}",
            f"--initial-advertise-peer-urls={member.peer_url}", f"--initial-cluster-token={token}"]
    if bump_revision:
        if tool != "etcdutl":
            raise ValueError(f"etcd {version}: etcdctl snapshot restore cannot bump revisions; "
                             "restore without bump_revision and expect resourceVersions to go back")
        argv += [f"--bump-revision={bump_revision}", "--mark-compacted"]
    if tool == "etcdctl":
        argv = ["env", "ETCDCTL_API=3", *argv]
    return argv


# -- running the tools on a node ----------------------------------------------------------------

def host_bin(version: str, tool: str) -> Path:
    return cache_dir() / "etcd" / f"v{'.'.join(map(str, parse_version(version)))}" / "bin" / tool


# (cluster, node, version) whose node already has the tools: a node container keeps them until
# it is deleted (a docker stop/start keeps its filesystem).
_INSTALLED: set[tuple[str, str, str]] = set()


@dataclass
class NodeEtcd:
    """etcd client tools on one control-plane node, talking to that node's member over TLS.

    `cert` picks the client pair: kubeadm's healthcheck-client by default (a client cert the etcd
    CA signed for exactly this kind of use); "server" is what many runbooks use.
    """

    cluster: Cluster
    node: str
    version: str = "v3.6.5"
    cert: str = "healthcheck-client"
    endpoint: str = LOCAL_ENDPOINT

    def install(self) -> None:
        """Copy etcdctl and etcdutl from the host cache into the node (skipped when present)."""
        key = (self.cluster.name, self.node, self.version)
        if key in _INSTALLED:
            return
        have = self.cluster.node_exec(self.node, f"{BIN_DIR}/etcdutl", "version", check=False, timeout=30)
        if have.returncode == 0 and parse_version(have.stdout) == parse_version(self.version):
            self.cluster.node_exec(self.node, "mkdir", "-p", WORK_DIR, MANIFESTS_OFF, timeout=30)
            _INSTALLED.add(key)
            return
        for tool in ("etcdctl", "etcdutl"):
            src = host_bin(self.version, tool)
            if not src.exists():
                raise EtcdToolError(f"{src} is missing: the etcd {self.version} client binaries are built into the "
                                    "kubedrill cache by the etcd suite's setup (kubedrill.etcd.image)")
            run(["docker", "cp", str(src), f"{self.node}:{BIN_DIR}/{tool}"], timeout=60)
        self.cluster.node_exec(self.node, "mkdir", "-p", WORK_DIR, MANIFESTS_OFF, timeout=30)
        _INSTALLED.add(key)

    def sh(self, argv: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            return self.cluster.node_exec(self.node, *argv, timeout=timeout, check=check)
        except CommandFailed as exc:
            raise EtcdToolError(f"on {self.node}: {shlex.join(argv)} exited {exc.proc.returncode}: "
                                f"{(exc.proc.stderr or exc.proc.stdout).strip()[-800:]}") from exc

    def tls(self) -> list[str]:
        return [f"--cacert={PKI}/ca.crt", f"--cert={PKI}/{self.cert}.crt", f"--key={PKI}/{self.cert}.key"]

    def etcdctl(self, *args: str, endpoints: str | None = None, timeout: float = 60, check: bool = True,
                command_timeout_s: int = 10) -> subprocess.CompletedProcess[str]:
        self.install()
        argv = [f"{BIN_DIR}/etcdctl", f"--endpoints={endpoints or self.endpoint}", "--dial-timeout=3s",
                f"--command-timeout={command_timeout_s}s", *self.tls(), *args]
        return self.sh(argv, timeout=timeout, check=check)

    def snapshot_save(self, path: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.etcdctl("snapshot", "save", path, timeout=timeout, command_timeout_s=int(timeout))

    def snapshot_status(self, path: str) -> dict[str, Any]:
        """{hash, revision, totalKey, totalSize, version} of a snapshot file on the node."""
        self.install()
        p = self.sh([f"{BIN_DIR}/etcdutl", "snapshot", "status", "-w", "json", path], timeout=60)
        return dict(json.loads(p.stdout))

    def endpoint_status(self, cluster_wide: bool = True, endpoints: list[str] | None = None,
                        command_timeout_s: int = 5) -> list[dict[str, Any]]:
        """etcdctl endpoint status -w json [--cluster | --endpoints=...]: one dict per answering
        endpoint (naming live endpoints avoids waiting out the dial timeout of a dead one)."""
        args = ["endpoint", "status", "-w", "json"] + (["--cluster"] if cluster_wide and not endpoints else [])
        p = self.etcdctl(*args, endpoints=",".join(endpoints) if endpoints else None, check=False, timeout=40,
                         command_timeout_s=command_timeout_s)
        try:
            return list(json.loads(p.stdout or "[]"))
        except json.JSONDecodeError as exc:
            raise EtcdToolError(f"endpoint status on {self.node}: not JSON: {p.stdout[:300]!r} {p.stderr[-300:]!r}") from exc

    def member_list(self) -> list[dict[str, Any]]:
        p = self.etcdctl("member", "list", "-w", "json", timeout=30)
        return list(json.loads(p.stdout).get("members", []))

    def endpoint_health(self) -> tuple[bool, str]:
        """(all members healthy, etcdctl's lines) for every member of the cluster."""
        p = self.etcdctl("endpoint", "health", "--cluster", check=False, timeout=40, command_timeout_s=5)
        text = (p.stdout + p.stderr).strip()
        return p.returncode == 0, text

    def hashkv(self, revision: int) -> dict[str, int]:
        """endpoint -> hash of the keyspace up to `revision`, for every member."""
        p = self.etcdctl("endpoint", "hashkv", "--cluster", f"--rev={revision}", "-w", "json", timeout=40)
        return {d["Endpoint"]: int(d["HashKV"]["hash"]) for d in json.loads(p.stdout)}

    def restore_help(self) -> str:
        self.install()
        p = self.sh([f"{BIN_DIR}/{restore_tool(self.version)}", "snapshot", "restore", "--help"], check=False)
        return p.stdout + p.stderr

    def can_bump(self) -> bool:
        """Does this etcdutl know --bump-revision (3.6, late 3.5)? Asked of the binary itself."""
        return restore_tool(self.version) == "etcdutl" and "--bump-revision" in self.restore_help()

    def member(self) -> EtcdMember:
        return parse_member(self.node, self.sh(["cat", ETCD_MANIFEST], timeout=30).stdout)

    def identity(self) -> dict[str, int]:
        """{cluster_id, revision} as this node's member reports them (empty when it does not answer):
        a restore starts a new logical cluster, so a changed cluster id is the evidence it happened."""
        st = self.endpoint_status(cluster_wide=False)
        if not st:
            return {}
        h = st[0]["Status"]["header"]
        return {"cluster_id": int(h["cluster_id"]), "revision": int(h["revision"])}


def status_by_member(statuses: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """endpoint status JSON keyed by member id (leader, raft term, revision per member)."""
    return {int(s["Status"]["header"]["member_id"]): s for s in statuses}


def leader_id(statuses: list[dict[str, Any]]) -> int | None:
    ids = {int(s["Status"]["leader"]) for s in statuses if int(s["Status"].get("leader", 0))}
    return ids.pop() if len(ids) == 1 else None


def leader_node(cluster: Cluster, asker: str | None = None, version: str = "v3.6.5") -> str:
    """The control-plane node whose etcd member leads, asked of `asker`'s member (default: the
    first control plane)."""
    t = NodeEtcd(cluster, asker or cluster.control_planes[0], version)
    statuses = t.endpoint_status()
    lid = leader_id(statuses)
    if lid is None:
        raise EtcdToolError(f"on {t.node}: etcd members do not agree on a leader: {statuses}; "
                            "an election may be under way, ask again in a few seconds")
    names = {int(m["ID"]): m["name"] for m in t.member_list()}
    name = names.get(lid)
    if name not in cluster.control_planes:
        raise EtcdToolError(f"leader {lid:x} is member {name!r}, not a known control-plane node "
                            f"{cluster.control_planes}: kubeadm names members after their nodes")
    return name


def healthy_members(cluster: Cluster, asker: str, expected: int | None = None,
                    version: str = "v3.6.5") -> tuple[bool, str]:
    """(at least `expected` members -- default: one per control plane -- answer healthy, what
    etcdctl said), asked of `asker`'s member."""
    want = len(cluster.control_planes) if expected is None else expected
    _, text = NodeEtcd(cluster, asker, version).endpoint_health()
    n = text.count("is healthy")
    return n >= want, f"{n}/{want} healthy: {text[-300:]}"
