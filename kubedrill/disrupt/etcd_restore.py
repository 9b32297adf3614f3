"""The kubeadm etcd restore runbook as a disruption, step by step, on every control-plane node.

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
`bump_revision=0`, or a `backup` of another cluster), so meta-tests run exactly this code.
Every step is recorded (name, ok, seconds, output) with the evidence that the restore took effect
(etcd cluster id and revision before and after); a failed restore step is recorded and the
procedure goes on to bring the control plane back, as a script without `set -e` would: checkers
judge, the procedure does not. `verify()` says whether etcd now is the restored cluster; `heal()`
puts any manifest still moved away back in place.

The backup it restores comes from kubedrill.cluster.etcd_backup.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.etcd_backup import Backup
from kubedrill.cluster.handle import Cluster, run
from kubedrill.cluster.progress import say
from kubedrill.cluster.waits import kube_system_summary, node_summary, until
from kubedrill.disrupt.base import Disruption, DisruptionError, register
from kubedrill.disrupt.control_plane import api_ready
from kubedrill.record import Recorder
from kubedrill.record.objects import StepRecord


# -- static pods on a control-plane node ------------------------------------------------------------

def running_containers(cluster: Cluster, node: str, container: str) -> list[str]:
    """Ids of the running containers named `container` on the node (crictl: the kubelet's view)."""
    p = cluster.node_exec(node, "crictl", "ps", "-q", "--name", f"^{container}$", check=False, timeout=30)
    return p.stdout.split()


def wait_container(cluster: Cluster, node: str, container: str, present: bool, timeout: float) -> None:
    """Until the kubelet has started (present) or removed (not present) a static pod's container."""
    until(f"container {container} on {node} to be {'running' if present else 'gone'}",
          lambda: ((bool(running_containers(cluster, node, container)) == present),
                   f"running ids: {running_containers(cluster, node, container)}"),
          timeout, interval=0.5,
          hint=f"the kubelet acts on {ke.MANIFESTS}; see `docker exec {node} journalctl -u kubelet`")


def move_manifest(cluster: Cluster, node: str, component: str, out: bool) -> None:
    """Move a static pod's manifest out of the kubelet's folder (it stops the pod) or back (it starts)."""
    src, dst = (ke.MANIFESTS, ke.MANIFESTS_OFF) if out else (ke.MANIFESTS_OFF, ke.MANIFESTS)
    cluster.node_exec(node, "mkdir", "-p", ke.MANIFESTS_OFF, timeout=30)
    cluster.node_exec(node, "mv", f"{src}/{component}.yaml", f"{dst}/{component}.yaml", timeout=30)


# -- the runbook ----------------------------------------------------------------------------------

@register("etcd-restore")
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
        self.api_down_at: float | None = None
        self.api_up_at: float | None = None

    # the Disruption protocol ---------------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.name} ({self.variant}) of {self.cluster.name} from {self.backup.host_path.name}"

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
        say(f"{self.describe()}: {name} ...")
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
                raise DisruptionError(f"{self.describe()}: step {name!r} failed: {detail[:1500]}") from exc
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
        before = first.identity()
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
            n: ids for n in cps if (ids := running_containers(self.cluster, n, "kube-apiserver"))}
        after = first.identity()
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

    def verify(self) -> tuple[bool, str]:
        """etcd is a new logical cluster (a restore gets a new cluster id), so it no longer serves
        the pre-restore data. Whether it serves the right data is the checkers' question
        (kubedrill.check.k8s_state), on the same evidence in `effect`."""
        before, after = self.effect.get("etcd_before") or {}, self.effect.get("etcd_after") or {}
        if not before or not after:
            return False, (f"etcd's cluster id could not be read (before {before or 'no answer'}, after "
                           f"{after or 'no answer'}): nothing shows which data it serves")
        if before["cluster_id"] == after["cluster_id"]:
            why = "" if self.effect.get("restore_ok", True) else " (the restore step failed)"
            return False, (f"etcd kept cluster id {before['cluster_id']:x} at revision {after['revision']}: it still "
                           f"serves the pre-restore data{why}")
        return True, (f"etcd cluster id {before['cluster_id']:x} -> {after['cluster_id']:x}, revision "
                      f"{before['revision']} -> {after['revision']}")

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
