"""The cluster's own etcd: kubeadm backup, the restore procedure, and stopping control-plane nodes.

Backup (`take_backup`): `etcdctl snapshot save` on a control-plane node with the kubeadm PKI,
`etcdutl snapshot status` recorded, the file copied to the host and checksummed.

Restore (`RestoreProcedure`) is the operator runbook for kubeadm static pods, step by step, on
every control-plane node:
  1. copy the snapshot to the node (checksum verified);
  2. stop the API servers: move kube-apiserver.yaml out of /etc/kubernetes/manifests;
  3. stop etcd the same way;
  4. restore into a NEW data dir (/var/lib/etcd-from-backup-<id>) with etcdutl (etcdctl before 3.5),
     `--bump-revision --mark-compacted` where the tool knows them, all members from the same file;
  5. point etcd.yaml's data hostPath at it and move it back; wait until etcd is healthy;
  6. move the API servers back; wait until the API is ready;
  7. restart scheduler and controller-manager (manifests out, containers gone, back in) and the
     kubelet on every node, so none keeps state from after the snapshot;
  8. wait until nodes and kube-system are Ready.
Wrong procedures are parameters of the same object (`stop_apiservers=False`, `new_data_dir=False`,
`bump_revision=0`, or a `backup` from another cluster), so meta-tests run exactly this code.
Every step is recorded (name, ok, seconds, output) with the evidence that the restore took effect
(etcd cluster id and revision before and after); a failed restore step is recorded and the
procedure goes on to bring the control plane back, as a script without `set -e` would: checkers
judge, the procedure does not. `heal()` puts any manifest still moved away back in place.

`StopNodes` is `docker stop` of control-plane node containers (heal: reattach each at its old
address where the network allows it, `docker start`, then wait until the running nodes are
Ready and their etcd members healthy).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kubedrill.record.objects import StepRecord
from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.handle import Cluster, CommandFailed, run
from kubedrill.cluster.network import networks_of, pin_ip
from kubedrill.cluster.waits import kube_system_summary, node_summary, until
from kubedrill.disrupt.base import Disruption, DisruptionError
from kubedrill.record import Recorder

CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- backup ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backup:
    """A snapshot taken on a control-plane node and kept on the host."""

    cluster: str
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


def take_backup(cluster: Cluster, dest_dir: Path, node: str | None = None, version: str = "v3.6.5",
                label: str = "") -> Backup:
    """`etcdctl snapshot save` with the kubeadm certs on `node` (default: the first control
    plane), `etcdutl snapshot status`, then `docker cp` to dest_dir on the host."""
    node = node or cluster.control_planes[0]
    tools = ke.NodeEtcd(cluster, node, version)
    tools.install()
    name = f"snapshot-{label or uuid.uuid4().hex[:6]}.db"
    node_path = f"{ke.WORK_DIR}/{name}"
    t0 = time.monotonic()
    tools.snapshot_save(node_path)
    seconds = time.monotonic() - t0
    status = tools.snapshot_status(node_path)
    dest_dir.mkdir(parents=True, exist_ok=True)
    host_path = dest_dir / name
    run(["docker", "cp", f"{node}:{node_path}", str(host_path)], timeout=300)
    node_sum = tools.sh(["sha256sum", node_path]).stdout.split()[0]
    host_sum = sha256_file(host_path)
    if node_sum != host_sum:
        raise DisruptionError(f"backup copy corrupted: sha256 on {node} {node_sum}, on the host {host_sum}")
    (dest_dir / f"{name}.status.json").write_text(json.dumps({"node": node, "status": status, "sha256": host_sum}))
    return Backup(cluster.name, node, node_path, host_path, host_sum, status, seconds, time.time())


FOREIGN_ETCD_PORT = 32379
FOREIGN_API_PORT = 36443


def foreign_apiserver_argv(manifest_text: str, etcd_url: str, port: int) -> list[str]:
    """The node's kube-apiserver command, pointed at another etcd and port: a second, separate
    control plane with the same configuration (what a snapshot of "another cluster" holds)."""
    import yaml

    doc = yaml.safe_load(manifest_text)
    cmd = next(c["command"] for c in doc["spec"]["containers"] if c["name"] == "kube-apiserver")
    drop = ("--etcd-servers=", "--etcd-cafile=", "--etcd-certfile=", "--etcd-keyfile=", "--secure-port=",
            "--bind-address=")
    out = [a for a in cmd if not a.startswith(drop)]
    return out + [f"--etcd-servers={etcd_url}", f"--secure-port={port}", "--bind-address=127.0.0.1"]


def foreign_backup(cluster: Cluster, dest_dir: Path, version: str = "v3.6.5", timeout: float = 180.0) -> Backup:
    """A snapshot of ANOTHER Kubernetes control plane, built on this cluster's first control-plane
    node without a second kind cluster: a throwaway etcd (systemd-run) and a kube-apiserver from
    the node's own image (ctr run) bootstrap a fresh cluster state -- its own kube-system with its
    own uid, default RBAC, the kubernetes Service -- which is then snapshotted and torn down.
    The wrong input of the "snapshot from another cluster" restore variant."""
    node = cluster.control_planes[0]
    rid = uuid.uuid4().hex[:6]
    tools = ke.NodeEtcd(cluster, node, version)
    tools.install()
    run(["docker", "cp", str(ke.host_bin(version, "etcd")), f"{node}:{ke.BIN_DIR}/kd-etcd"], timeout=60)
    data = f"{ke.WORK_DIR}/foreign-{rid}"
    url = f"http://127.0.0.1:{FOREIGN_ETCD_PORT}"
    unit, ctr_id = f"kd-foreign-etcd-{rid}", f"kd-foreign-apiserver-{rid}"
    api_manifest = cluster.node_exec(node, "cat", f"{ke.MANIFESTS}/kube-apiserver.yaml", timeout=30).stdout
    import yaml

    image = next(c["image"] for c in yaml.safe_load(api_manifest)["spec"]["containers"] if c["name"] == "kube-apiserver")
    argv = foreign_apiserver_argv(api_manifest, url, FOREIGN_API_PORT)
    try:
        cluster.node_exec(node, "systemd-run", f"--unit={unit}", f"{ke.BIN_DIR}/kd-etcd", "--name=foreign",
                          f"--data-dir={data}", f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
                          f"--listen-peer-urls=http://127.0.0.1:{FOREIGN_ETCD_PORT + 1}",
                          f"--initial-advertise-peer-urls=http://127.0.0.1:{FOREIGN_ETCD_PORT + 1}",
                          f"--initial-cluster=foreign=http://127.0.0.1:{FOREIGN_ETCD_PORT + 1}",
                          f"--listen-metrics-urls=http://127.0.0.1:{FOREIGN_ETCD_PORT + 2}", timeout=60)
        cluster.node_exec(node, "ctr", "-n", "k8s.io", "run", "-d", "--net-host", "--mount",
                          "type=bind,src=/etc/kubernetes/pki,dst=/etc/kubernetes/pki,options=rbind:ro",
                          image, ctr_id, *argv, timeout=120)

        def bootstrapped() -> tuple[bool, str]:
            p = cluster.node_exec(node, f"{ke.BIN_DIR}/etcdctl", f"--endpoints={url}", "get", "--keys-only",
                                  "--prefix", "/registry/namespaces/", check=False, timeout=30)
            r = cluster.node_exec(node, "curl", "-sk", "-m", "3", f"https://127.0.0.1:{FOREIGN_API_PORT}/readyz",
                                  check=False, timeout=30)
            return "kube-system" in p.stdout and r.stdout.strip() == "ok", f"namespaces: {p.stdout.split()}; readyz: {r.stdout[-200:]}"

        until("the throwaway control plane to bootstrap its cluster state", bootstrapped, timeout, interval=2.0,
              hint=f"docker exec {node} ctr -n k8s.io task ls; journalctl -u {unit}")
        path = f"{ke.WORK_DIR}/foreign-{rid}.db"
        cluster.node_exec(node, f"{ke.BIN_DIR}/etcdctl", f"--endpoints={url}", "snapshot", "save", path, timeout=120)
        status = tools.snapshot_status(path)
        dest_dir.mkdir(parents=True, exist_ok=True)
        host = dest_dir / f"foreign-{rid}.db"
        run(["docker", "cp", f"{node}:{path}", str(host)], timeout=120)
        return Backup(f"foreign-{rid}", node, path, host, sha256_file(host), status, 0.0, time.time())
    finally:
        cluster.node_exec(node, "ctr", "-n", "k8s.io", "task", "kill", "-s", "SIGKILL", ctr_id, check=False, timeout=30)
        cluster.node_exec(node, "sh", "-c", f"sleep 1; ctr -n k8s.io task rm -f {ctr_id}; ctr -n k8s.io container rm {ctr_id}",
                          check=False, timeout=60)
        cluster.node_exec(node, "systemctl", "stop", unit, check=False, timeout=60)
        cluster.node_exec(node, "rm", "-rf", data, check=False, timeout=60)


# -- helpers on control-plane nodes ------------------------------------------------------------

def _running(cluster: Cluster, node: str, container: str) -> list[str]:
    p = cluster.node_exec(node, "crictl", "ps", "-q", "--name", f"^{container}$", check=False, timeout=30)
    return p.stdout.split()


def wait_container(cluster: Cluster, node: str, container: str, present: bool, timeout: float) -> None:
    """Until the kubelet has started (present) or removed (not present) a static pod's container."""
    until(f"container {container} on {node} to be {'running' if present else 'gone'}",
          lambda: ((bool(_running(cluster, node, container)) == present),
                   f"running ids: {_running(cluster, node, container)}"),
          timeout, interval=0.5,
          hint=f"the kubelet acts on {ke.MANIFESTS}; see `docker exec {node} journalctl -u kubelet`")


def api_ready(cluster: Cluster) -> tuple[bool, str]:
    p = cluster.kubectl("get", "--raw", "/readyz", timeout=15, check=False)
    return p.returncode == 0 and p.stdout.strip() == "ok", (p.stdout + p.stderr).strip()[-200:]


def move_manifest(cluster: Cluster, node: str, component: str, out: bool) -> None:
    src, dst = (ke.MANIFESTS, ke.MANIFESTS_OFF) if out else (ke.MANIFESTS_OFF, ke.MANIFESTS)
    cluster.node_exec(node, "mkdir", "-p", ke.MANIFESTS_OFF, timeout=30)
    cluster.node_exec(node, "mv", f"{src}/{component}.yaml", f"{dst}/{component}.yaml", timeout=30)


def etcd_identity(tools: ke.NodeEtcd) -> dict[str, int]:
    """cluster id and revision as the local member reports them (empty when it does not answer)."""
    st = tools.endpoint_status(cluster_wide=False)
    if not st:
        return {}
    h = st[0]["Status"]["header"]
    return {"cluster_id": int(h["cluster_id"]), "revision": int(h["revision"])}


# -- restore ------------------------------------------------------------------------------------

@dataclass
class RestoreProcedure(Disruption):
    """The kubeadm restore runbook (module docstring); parameters select wrong variants.

    stop_apiservers: False = restore while the API servers keep running (wrong).
    new_data_dir: False = restore into the live /var/lib/etcd (wrong: etcdutl refuses, the old
        data stays, the procedure carries on).
    bump_revision: None = 1e9 when the tool supports it; 0 = no bump (resourceVersions go back).
    restart_components / restart_kubelets: the runbook's final restarts.
    """

    cluster: Cluster
    backup: Backup
    stop_apiservers: bool = True
    new_data_dir: bool = True
    bump_revision: int | None = None
    restart_components: bool = True
    restart_kubelets: bool = True
    version: str = "v3.6.5"
    api_timeout_s: float = 240.0
    ready_timeout_s: float = 300.0
    recorder: Recorder | None = None
    steps: list[StepRecord] = field(default_factory=list)
    restore_id: str = field(default_factory=lambda: time.strftime("%H%M%S") + uuid.uuid4().hex[:4])

    def __post_init__(self) -> None:
        Disruption.__init__(self)
        parts = []
        if not self.stop_apiservers:
            parts.append("api-running")
        if not self.new_data_dir:
            parts.append("old-data-dir")
        if self.bump_revision == 0:
            parts.append("no-bump")
        if self.backup.cluster != self.cluster.name:
            parts.append("foreign-snapshot")
        self.variant = "+".join(parts) or "runbook"
        self.name = f"etcd-restore/{self.variant}"
        self.api_down_at: float | None = None
        self.api_up_at: float | None = None

    # the Disruption protocol ---------------------------------------------------------------------
    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "the restore runs commands on control-plane nodes, which needs a kind cluster (node exec)"
        if not self.cluster.control_planes:
            return "no control-plane nodes known"
        return None

    def healthy(self) -> tuple[bool, str]:
        ok, seen = api_ready(self.cluster)
        return ok, f"API /readyz: {seen}"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/etcd-from-backup-{self.restore_id}" if self.new_data_dir else ke.DATA_DIR

    def _step(self, name: str, fn: Callable[[], Any], must: bool = True) -> Any:
        """Run one step, record it; `must` steps raise (after recording) when they fail."""
        t0 = time.monotonic()
        rec = self.recorder
        if rec is not None:
            rec.event("step-start", name)
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - recorded, then re-raised or carried on
            detail = str(exc).strip()
            self.steps.append(StepRecord(name, False, time.monotonic() - t0, detail))
            if rec is not None:
                rec.event("step-end", name, ok=False, error=detail[:500])
            if must:
                raise DisruptionError(f"{self.name}: step {name!r} failed: {detail[:1500]}") from exc
            return None
        detail = out if isinstance(out, str) else ""
        self.steps.append(StepRecord(name, True, time.monotonic() - t0, detail[-500:]))
        if rec is not None:
            rec.event("step-end", name, ok=True)
        return out

    def inject(self) -> None:
        cps = self.cluster.control_planes
        tools = {n: ke.NodeEtcd(self.cluster, n, self.version) for n in cps}
        for t in tools.values():
            t.install()
        members = [tools[n].member() for n in cps]
        first = tools[cps[0]]
        bump = self.bump_revision
        if bump is None:
            bump = ke.DEFAULT_BUMP if first.can_bump() else 0
        self.effect["bump_revision"] = bump
        self.effect["data_dir"] = self.data_dir
        before = etcd_identity(first)
        self.effect["etcd_before"] = before
        snap = f"{ke.WORK_DIR}/restore-{self.restore_id}.db"

        def copy() -> str:
            for n in cps:
                self.cluster.node_exec(n, "mkdir", "-p", ke.WORK_DIR, timeout=30)
                run(["docker", "cp", str(self.backup.host_path), f"{n}:{snap}"], timeout=300)
                got = self.cluster.node_exec(n, "sha256sum", snap, timeout=60).stdout.split()[0]
                if got != self.backup.sha256:
                    raise DisruptionError(f"snapshot on {n} has sha256 {got}, the backup {self.backup.sha256}")
            return f"{self.backup.host_path.name} ({self.backup.sha256[:12]}) on {len(cps)} node(s)"

        self._step("copy-snapshot", copy)
        if self.stop_apiservers:
            self._step("stop-apiservers", lambda: self._stop_component(cps, "kube-apiserver"))
            self.api_down_at = time.monotonic()
        self._step("stop-etcd", lambda: self._stop_component(cps, "etcd"))
        if self.api_down_at is None:
            self.api_down_at = time.monotonic()
        token = f"kd-restore-{self.restore_id}"

        def restore() -> str:
            out = []
            for m in members:
                argv = ke.restore_argv(self.version, snap, m, members, self.data_dir, token, bump)
                p = self.cluster.node_exec(m.node, *argv, timeout=600, check=False)
                if p.returncode != 0:
                    raise DisruptionError(f"on {m.node}: {' '.join(argv)} exited {p.returncode}: "
                                          f"{(p.stderr or p.stdout).strip()[-600:]}")
                out.append(f"{m.node}: restored into {self.data_dir}")
            return "; ".join(out)

        # A failed restore is recorded and the control plane is brought back anyway (see module doc).
        restored = self._step("restore", restore, must=False) is not None
        self.effect["restore_ok"] = restored

        def start_etcd() -> str:
            for n in cps:
                if self.new_data_dir and restored:
                    text = self.cluster.node_exec(n, "cat", f"{ke.MANIFESTS_OFF}/etcd.yaml", timeout=30).stdout
                    new = ke.point_data_dir(text, self.data_dir)
                    self.cluster.node_exec(n, "tee", f"{ke.MANIFESTS_OFF}/etcd.yaml", input=new, timeout=30)
                move_manifest(self.cluster, n, "etcd", out=False)
            until("etcd to answer on every control-plane node with all members healthy",
                  lambda: first.endpoint_health(), self.api_timeout_s, interval=1.0,
                  hint="etcd refuses a data dir restored for another member name or peer URL; "
                       f"see `docker exec {cps[0]} crictl logs $(crictl ps -a -q --name etcd | head -1)`")
            return first.endpoint_health()[1]

        self._step("start-etcd", start_etcd)
        # Evidence for the runbook's first rule: no API server may live through the data swap
        # (its watch cache and in-flight state predate the restore).
        self.effect["apiservers_running_at_etcd_start"] = {
            n: _running(self.cluster, n, "kube-apiserver") for n in cps if _running(self.cluster, n, "kube-apiserver")}
        after = etcd_identity(first)
        self.effect["etcd_after"] = after
        self.effect["etcd_cluster_id_changed"] = bool(before and after and before["cluster_id"] != after["cluster_id"])
        if self.stop_apiservers:
            self._step("start-apiservers", lambda: self._start_component(cps, "kube-apiserver"))
        self._step("api-ready", lambda: until("the API server to be ready (/readyz)", lambda: api_ready(self.cluster),
                                               self.api_timeout_s, interval=0.5))
        self.api_up_at = time.monotonic()
        if self.restart_components:
            self._step("restart-scheduler-controller-manager", lambda: self._restart_components(cps))
        if self.restart_kubelets:
            self._step("restart-kubelets", self._restart_kubelets)
        self._step("nodes-ready", lambda: until("all nodes Ready", lambda: node_summary(self.cluster),
                                                self.ready_timeout_s, interval=2.0))
        self._step("kube-system-ready", lambda: until("kube-system pods Running and Ready",
                                                      lambda: kube_system_summary(self.cluster),
                                                      self.ready_timeout_s, interval=2.0))

    def heal(self) -> None:
        """Whatever happened, no control-plane manifest stays moved away."""
        for n in self.cluster.control_planes:
            p = self.cluster.node_exec(n, "sh", "-c", f"ls {ke.MANIFESTS_OFF} 2>/dev/null", check=False, timeout=30)
            for f in p.stdout.split():
                if f.endswith(".yaml"):
                    self.cluster.node_exec(n, "mv", f"{ke.MANIFESTS_OFF}/{f}", f"{ke.MANIFESTS}/{f}", timeout=30,
                                           check=False)

    # steps -----------------------------------------------------------------------------------------
    def _stop_component(self, nodes: list[str], component: str) -> str:
        for n in nodes:
            move_manifest(self.cluster, n, component, out=True)
        for n in nodes:
            wait_container(self.cluster, n, component, present=False, timeout=120)
        return f"{component} stopped on {', '.join(nodes)}"

    def _start_component(self, nodes: list[str], component: str) -> str:
        for n in nodes:
            move_manifest(self.cluster, n, component, out=False)
        for n in nodes:
            wait_container(self.cluster, n, component, present=True, timeout=180)
        return f"{component} running on {', '.join(nodes)}"

    def _restart_components(self, nodes: list[str]) -> str:
        for comp in ("kube-scheduler", "kube-controller-manager"):
            self._stop_component(nodes, comp)
        for comp in ("kube-scheduler", "kube-controller-manager"):
            self._start_component(nodes, comp)
        return "kube-scheduler and kube-controller-manager restarted"

    def _restart_kubelets(self) -> str:
        for n in self.cluster.all_nodes:
            self.cluster.node_exec(n, "systemctl", "restart", "kubelet", timeout=120)
        return f"kubelet restarted on {len(self.cluster.all_nodes)} nodes"


# -- control-plane node stop/start ---------------------------------------------------------------

def container_state(node: str) -> str:
    p = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", node], capture_output=True, text=True, timeout=30)
    return p.stdout.strip() or f"unknown ({p.stderr.strip()[:100]})"


def container_ip(node: str) -> str:
    p = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", node],
                       capture_output=True, text=True, timeout=30)
    return p.stdout.strip()


def etcd_leader_node(cluster: Cluster, asker: str | None = None, version: str = "v3.6.5") -> str:
    """The control-plane node whose etcd member leads, asked of `asker`'s member."""
    t = ke.NodeEtcd(cluster, asker or cluster.control_planes[0], version)
    statuses = t.endpoint_status()
    lid = ke.leader_id(statuses)
    if lid is None:
        raise DisruptionError(f"etcd members do not agree on a leader: {statuses}")
    names = {int(m["ID"]): m["name"] for m in t.member_list()}
    name = names.get(lid)
    if name not in cluster.control_planes:
        raise DisruptionError(f"leader {lid:x} is member {name!r}, not a known control-plane node {cluster.control_planes}")
    return name


def etcd_healthy_members(cluster: Cluster, asker: str, expected: int | None = None,
                         version: str = "v3.6.5") -> tuple[bool, str]:
    """(`expected` members -- default all control planes -- answer healthy, what etcdctl said)."""
    want = len(cluster.control_planes) if expected is None else expected
    t = ke.NodeEtcd(cluster, asker, version)
    _, text = t.endpoint_health()
    n = text.count("is healthy")
    return n >= want, f"{n}/{want} healthy: {text[-300:]}"


def running_nodes_ready(cluster: Cluster) -> tuple[bool, str]:
    """Every node whose container runs is Ready (stopped ones are expected NotReady)."""
    running = [n for n in cluster.all_nodes if container_state(n) == "running"]
    seen = {n.metadata.name: any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
            for n in cluster.core().list_node(_request_timeout=15).items}
    bad = [n for n in running if not seen.get(n)]
    return not bad, f"running {len(running)}, not Ready: {bad}"


class StopNodes(Disruption):
    """`docker stop` control-plane node containers; heal starts them and waits for a healed
    control plane (nodes Ready, every etcd member healthy). Effective once every container is
    exited and its etcd member no longer answers the survivors."""

    def __init__(self, cluster: Cluster, nodes: list[str], grace_s: int = 10, ready_timeout_s: float = 300.0,
                 version: str = "v3.6.5") -> None:
        super().__init__()
        self.cluster, self.nodes, self.grace_s = cluster, list(nodes), grace_s
        self.ready_timeout_s, self.version = ready_timeout_s, version
        self.name = "stop-cp/" + "+".join(n.rsplit("-", 1)[-1] for n in nodes)
        self.stopped_at: float | None = None
        self.ips: dict[str, str] = {}
        self.networks: dict[str, dict[str, str]] = {}

    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "stopping node containers needs a kind cluster"
        unknown = [n for n in self.nodes if n not in self.cluster.control_planes]
        return f"not control-plane nodes: {unknown}" if unknown else None

    def survivors(self) -> list[str]:
        return [n for n in self.cluster.control_planes if container_state(n) == "running" and n not in self.nodes]

    def inject(self) -> None:
        self.ips = {n: container_ip(n) for n in self.nodes}
        self.networks = {n: networks_of(n) for n in self.nodes}
        for n in self.nodes:
            run(["docker", "stop", "-t", str(self.grace_s), n], timeout=self.grace_s + 120)
        self.stopped_at = time.monotonic()
        states = {n: container_state(n) for n in self.nodes}
        self.effect["states"] = states
        if any(s != "exited" for s in states.values()):
            raise DisruptionError(f"{self.name}: containers not stopped: {states}")
        surv = self.survivors()
        if surv:
            t = ke.NodeEtcd(self.cluster, surv[0], self.version)
            answering = {s["Endpoint"] for s in t.endpoint_status()}
            self.effect["etcd_answering"] = sorted(answering)
            dead = [n for n in self.nodes if any(self.ips[n] and self.ips[n] in ep for ep in answering)]
            if dead:
                raise DisruptionError(f"{self.name}: etcd on {dead} still answers after docker stop")

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
              lambda: etcd_healthy_members(self.cluster, self.nodes[0], len(up), self.version),
              self.ready_timeout_s, interval=2.0,
              hint=("a node container that came back with another IP cannot rejoin etcd (peer URLs are IPs): "
                    f"{moved}" if moved else "see the etcd container logs on the restarted node"))
        until("running nodes Ready after the control-plane nodes came back", lambda: running_nodes_ready(self.cluster),
              self.ready_timeout_s, interval=2.0)

    def healthy(self) -> tuple[bool, str]:
        try:
            ok, seen = api_ready(self.cluster)
        except CommandFailed as exc:
            return False, str(exc)
        return ok, f"API /readyz: {seen}"
