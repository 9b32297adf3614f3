"""A kubeadm upgrade as operations on node containers, one node at a time.

The steps are the ones the kubeadm documentation gives for a package-managed host, done the way a
package manager would do them on a kind node:

    control plane (first):  drain -> new kubeadm -> `kubeadm upgrade plan vX` -> `kubeadm upgrade apply vX`
                            -> new kubelet + kubectl -> restart kubelet -> uncordon
    control plane (others): drain -> new kubeadm -> `kubeadm upgrade node` -> new kubelet ... -> uncordon
    worker:                 drain -> new kubeadm -> `kubeadm upgrade node` -> new kubelet ... -> uncordon

Binaries come from the offline cache (~/.cache/kubedrill/k8s/<v>/bin) and replace /usr/bin/<name>
by copy-then-rename, as dpkg does, so a running kubelet keeps its old inode until restarted.
There is no registry, so the target's images are imported into every node's containerd before
the first step (`stage_images`), the role deciding which ones a node needs.

`UpgradeNode` is a Disruption (registered as "upgrade-node"): uncordon is its heal, so a node is
never left cordoned, and `verify()` reads back that the node really runs the target (its kubelet's
reported version; on a control plane, its static pods' images).
`Rollout` refuses an upgrade kubeadm would refuse (more than one minor, downgrade) before it
touches anything, and gives the node order (control planes first, unless told otherwise to
rehearse the mistake).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, TypeVar

from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.cluster.paths import cache_dir
from kubedrill.cluster.progress import say
from kubedrill.cluster.states import node_ready
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import Disruption, DisruptionError, register
from kubedrill.disrupt.node import DrainNode, all_nodes_in_service
from kubedrill.record import Recorder
from kubedrill.record.maintenance import Phase
from kubedrill.record.versions import UpgradePlan, Version, check_upgrade_path, parse_upgrade_plan, plan_problems

T = TypeVar("T")
Role = Literal["control-plane", "worker"]
Order = Literal["control-plane-first", "workers-first"]
Step = Literal["apply", "node"]  # `kubeadm upgrade apply` (the first control plane) or `kubeadm upgrade node`
ORDERS: tuple[str, ...] = ("control-plane-first", "workers-first")
# Images a worker needs from the target release: kube-proxy (DaemonSet), CoreDNS (may be scheduled
# there), pause (sandboxes; kubeadm's CreateJob health check). Control planes need them all.
WORKER_IMAGES = ("kube-proxy", "coredns", "pause")
# Static pods of a control-plane node, checked Ready at the target after its kubelet restarts.
STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# No kubeadm preflight error is ignored. kind skips preflight at `kubeadm init`, but the upgrade
# checks pass on these nodes (tried on v1.33.13 -> v1.34.4: SystemVerification only warns that
# cgroup v1 is in maintenance mode), so there is nothing to justify an --ignore-preflight-errors.


class ReleaseMissing(RuntimeError):
    """A version's binaries or image tarballs are not in the offline cache; the message says how to build them."""


@dataclass(frozen=True)
class Release:
    """One Kubernetes version as the offline cache holds it (built by clusters/images/build-node-image.sh)."""

    version: str
    bin_dir: Path
    images_dir: Path
    images: tuple[str, ...]  # `kubeadm config images list` for this version

    @classmethod
    def from_cache(cls, version: str, root: Path | None = None) -> "Release":
        base = root or cache_dir()
        bins, imgs = base / "k8s" / version / "bin", base / "images" / version
        listing = imgs / "kubeadm-images.txt"
        missing = [str(p) for p in (bins / "kubeadm", bins / "kubelet", bins / "kubectl", listing) if not p.exists()]
        if missing:
            raise ReleaseMissing(f"Kubernetes {version} is not in the offline cache (missing {', '.join(missing)}); "
                                 f"build it with: bash clusters/images/build-node-image.sh {version}")
        rel = cls(version, bins, imgs, tuple(ln.strip() for ln in listing.read_text().splitlines() if ln.strip()))
        absent = [str(rel.tarball(i)) for i in rel.images if not rel.tarball(i).exists()]
        if absent:
            raise ReleaseMissing(f"image tarballs for {version} are missing: {', '.join(absent)}; rebuild with "
                                 f"bash clusters/images/build-node-image.sh {version}")
        return rel

    @staticmethod
    def component(image: str) -> str:
        """registry.k8s.io/coredns/coredns:v1.12.1 -> coredns."""
        return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]

    def tarball(self, image: str) -> Path:
        """build-images.sh saves each image as <component>.tar."""
        return self.images_dir / f"{self.component(image)}.tar"

    def image_tag(self, component: str) -> str:
        """The tag kubeadm uses for a component at this version, e.g. etcd -> 3.6.5-0."""
        for i in self.images:
            if self.component(i) == component:
                return i.rsplit(":", 1)[1]
        raise KeyError(f"{component} is not among the images of {self.version}: {', '.join(self.images)}")

    def images_for(self, role: Role) -> list[str]:
        return list(self.images) if role == "control-plane" else [i for i in self.images
                                                                  if self.component(i) in WORKER_IMAGES]


# --- operations on one node container -------------------------------------------------------------

def node_images(cluster: Cluster, node: str) -> set[str]:
    out = cluster.node_exec(node, "ctr", "-n", "k8s.io", "images", "ls", "-q", timeout=60).stdout
    return set(out.split())


def import_image(node: str, tarball: Path, timeout: float = 600) -> None:
    """Stream a `docker save` tarball into the node's containerd (pinned, like the node image build)."""
    argv = ["docker", "exec", "-i", node, "ctr", "-n", "k8s.io", "images", "import",
            "--label=io.cri-containerd.pinned=pinned", "--all-platforms", "--no-unpack", "--digests", "-"]
    with tarball.open("rb") as f:
        p = subprocess.run(argv, stdin=f, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise DisruptionError(f"importing {tarball.name} into {node} failed (exit {p.returncode}): "
                              f"{p.stderr.decode(errors='replace')[-800:]}")


def stage_images(cluster: Cluster, node: str, role: Role, release: Release) -> list[str]:
    """Import the release images `node` lacks; prove they are all there afterwards. Returns those imported."""
    want = release.images_for(role)
    have = node_images(cluster, node)
    todo = [i for i in want if i not in have]
    for image in todo:
        import_image(node, release.tarball(image))
    left = [i for i in want if i not in node_images(cluster, node)]
    if left:
        raise DisruptionError(f"after importing, {node} still lacks {', '.join(left)}: the tarball names do not match "
                              f"the images kubeadm lists for {release.version} ({release.images_dir})")
    return todo


def binary_version(cluster: Cluster, node: str, name: str) -> str:
    """The version a binary on the node reports (kubeadm, kubelet or kubectl)."""
    argv = {"kubeadm": ["kubeadm", "version", "-o", "short"], "kubelet": ["kubelet", "--version"],
            "kubectl": ["kubectl", "version", "--client"]}[name]
    out = cluster.node_exec(node, *argv, timeout=60).stdout
    return next((w for w in out.split() if w.startswith("v") and w[1:2].isdigit()), out.strip())


def place_binary(cluster: Cluster, node: str, release: Release, name: str) -> str:
    """Install /usr/bin/<name> of `release` the way a package upgrade does (copy beside, then rename over)."""
    tmp = f"/usr/bin/.{name}.kubedrill-new"
    subprocess.run(["docker", "cp", str(release.bin_dir / name), f"{node}:{tmp}"], check=True, capture_output=True,
                   timeout=300)
    cluster.node_exec(node, "sh", "-c", f"chmod 0755 {tmp} && mv -f {tmp} /usr/bin/{name}", timeout=60)
    got = binary_version(cluster, node, name)
    if got != release.version:
        raise DisruptionError(f"/usr/bin/{name} on {node} reports {got} after replacing it with {release.version}")
    return got


def restart_kubelet(cluster: Cluster, node: str) -> None:
    cluster.node_exec(node, "systemctl", "daemon-reload", timeout=60)
    cluster.node_exec(node, "systemctl", "restart", "kubelet", timeout=120)
    state = cluster.node_exec(node, "systemctl", "is-active", "kubelet", timeout=30, check=False).stdout.strip()
    if state != "active":
        log = cluster.node_exec(node, "journalctl", "-u", "kubelet", "--no-pager", "-n", "20", timeout=30,
                                check=False).stdout
        raise DisruptionError(f"kubelet on {node} is {state!r} after restart; log tail:\n{log}")


def kubeadm(cluster: Cluster, node: str, *args: str, timeout: float = 900) -> str:
    """Run kubeadm on a node; return stdout+stderr (kubeadm logs its phases to both)."""
    try:
        p = cluster.node_exec(node, "kubeadm", *args, timeout=timeout)
    except CommandFailed as exc:
        raise DisruptionError(f"`kubeadm {shlex.join(args)}` on {node} failed (exit {exc.proc.returncode}):\n"
                              f"{(exc.proc.stdout + exc.proc.stderr)[-3000:]}") from exc
    return p.stdout + p.stderr


def static_pods(cluster: Cluster, node: str) -> dict[str, tuple[str, bool]]:
    """component -> (image tag, all containers Ready) of the control-plane static pods on `node`."""
    seen: dict[str, tuple[str, bool]] = {}
    for p in cluster.core().list_namespaced_pod("kube-system", field_selector=f"spec.nodeName={node}").items:
        comp = (p.metadata.labels or {}).get("component", "")
        if comp in STATIC_PODS:
            cs = p.status.container_statuses or []
            seen[comp] = (p.spec.containers[0].image.rsplit(":", 1)[-1], bool(cs) and all(c.ready for c in cs))
    return seen


def static_pods_ready(cluster: Cluster, node: str, release: Release) -> tuple[bool, str]:
    """(all static pods of `node` Ready at the release's tags and /readyz ok, what was seen)."""
    ready = cluster.kubectl("get", "--raw", "/readyz", timeout=20, check=False)
    if ready.returncode != 0 or ready.stdout.strip() != "ok":
        return False, f"/readyz: {(ready.stdout + ready.stderr).strip()[:200]}"
    seen = static_pods(cluster, node)
    bad = [f"{c}={seen.get(c, ('missing', False))}" for c in STATIC_PODS if seen.get(c) != (release.image_tag(c), True)]
    return not bad, ("all static pods Ready at target" if not bad else "not yet: " + ", ".join(bad))


def uncordon_until(cluster: Cluster, node: str, timeout: float = 180) -> None:
    """Uncordon, retrying while the API server restarts or its authorizer warms up (it answers 403 at first)."""

    def attempt() -> tuple[bool, str]:
        p = cluster.kubectl("uncordon", node, timeout=30, check=False)
        return p.returncode == 0, (p.stdout + p.stderr).strip()[:200]

    until(f"kubectl uncordon {node} to succeed", attempt, timeout, interval=3.0,
          hint="the API server may still be restarting; a node left cordoned must be uncordoned by hand")


def kubelet_apiservers(cluster: Cluster) -> dict[str, str]:
    """node -> the control-plane node whose kube-apiserver its kubelet talks to (from kubelet.conf).

    Nodes whose kubelet goes through a load balancer (HA's control-plane endpoint) are left out.
    Read from the node, not assumed: kubeadm's ControlPlaneKubeletLocalMode decides it for control
    planes, the control-plane endpoint for workers, and the skew policy depends on it.
    """
    import yaml
    from urllib.parse import urlparse

    names: dict[str, str] = {}
    for n in cluster.core().list_node().items:
        if n.metadata.name in cluster.control_planes:
            names[n.metadata.name] = n.metadata.name
            for a in n.status.addresses or []:
                names[a.address] = n.metadata.name
    out: dict[str, str] = {}
    for node in cluster.all_nodes:
        conf = yaml.safe_load(cluster.node_exec(node, "cat", "/etc/kubernetes/kubelet.conf", timeout=30).stdout)
        host = urlparse(conf["clusters"][0]["cluster"]["server"]).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") and node in cluster.control_planes:
            out[node] = node
        elif host in names:
            out[node] = names[host]
    return out


def kubelet_version_of(cluster: Cluster, node: str) -> tuple[bool, str]:
    """(node Ready, the kubelet version the node reports to the API)."""
    n = cluster.core().read_node(node)
    return node_ready(n), str(n.status.node_info.kubelet_version)


# --- one node's step ---------------------------------------------------------------------------------

@register("upgrade-node")
class UpgradeNode(Disruption):
    """Drain one node, upgrade kubeadm, run its kubeadm step, upgrade kubelet/kubectl, restart; uncordon on heal.

    `kubeadm_step`: "apply" (the first control plane: plan, then apply), "node" (every other node).
    `effect` holds the kubelet version before/after as the API reports them; `phases` the timings;
    `plan` / `plan_text` the parsed and raw `kubeadm upgrade plan` (first control plane only).
    """

    def __init__(self, cluster: Cluster, node: str, role: Role, target: Release, kubeadm_step: Step,
                 recorder: Recorder | None = None, drain_timeout_s: int = 240, kubeadm_timeout_s: float = 900,
                 ready_timeout_s: float = 300, current_version: str = "") -> None:
        super().__init__()
        self.cluster, self.node, self.role, self.target = cluster, node, role, target
        self.kubeadm_step = kubeadm_step
        self.recorder = recorder
        self.drain = DrainNode(cluster, node, timeout_s=drain_timeout_s)
        self.kubeadm_timeout_s, self.ready_timeout_s = kubeadm_timeout_s, ready_timeout_s
        self.current_version = current_version
        self.name = f"{type(self).name}/{node}"
        self.phases: list[Phase] = []
        self.plan: UpgradePlan | None = None
        self.plan_text = ""
        self.kubeadm_output = ""

    def available(self) -> str | None:
        if self.cluster.provider != "kind":
            return "upgrading a node replaces its binaries, which needs node access (kind)"
        return None

    def healthy(self) -> tuple[bool, str]:
        """Every node Ready and schedulable: a step may only start when no other node is out."""
        return all_nodes_in_service(self.cluster)

    def _phase(self, name: str, fn: Callable[[], T]) -> T:
        """Run one step of the node's upgrade, timed and recorded (phases show where the time went)."""
        t0 = time.monotonic()
        say(f"  {self.node}: {name} ...")
        if self.recorder is not None:
            self.recorder.event("upgrade-phase-start", f"{self.node} {name}", node=self.node, phase=name)
        result = fn()
        self.phases.append(Phase(name, t0, time.monotonic()))
        if self.recorder is not None:
            self.recorder.event("upgrade-phase-end", f"{self.node} {name}", node=self.node, phase=name)
        say(f"  {self.node}: {name} done in {time.monotonic() - t0:.1f}s")
        return result

    def _plan(self) -> None:
        self.plan_text = kubeadm(self.cluster, self.node, "upgrade", "plan", self.target.version, timeout=300)
        self.plan = parse_upgrade_plan(self.plan_text)
        if self.current_version:
            problems = plan_problems(self.plan, Version.parse(self.current_version), Version.parse(self.target.version),
                                     self.cluster.all_nodes)
            if problems:
                raise DisruptionError(f"kubeadm's plan on {self.node} is not the intended upgrade: {'; '.join(problems)}")

    def inject(self) -> None:
        v0 = kubelet_version_of(self.cluster, self.node)[1]
        self.effect["kubelet_before"] = v0
        self._phase("drain", self.drain.inject)
        self.effect["evicted"] = len(self.drain.effect.get("evicted", []))
        self._phase("kubeadm-binary", lambda: place_binary(self.cluster, self.node, self.target, "kubeadm"))
        if self.kubeadm_step == "apply":
            self._phase("kubeadm-plan", self._plan)
            self.kubeadm_output = self._phase("kubeadm-apply", lambda: kubeadm(
                self.cluster, self.node, "upgrade", "apply", self.target.version, "--yes",
                timeout=self.kubeadm_timeout_s))
        else:
            self.kubeadm_output = self._phase("kubeadm-node", lambda: kubeadm(
                self.cluster, self.node, "upgrade", "node", timeout=self.kubeadm_timeout_s))
        self._phase("kubelet-binary", lambda: place_binary(self.cluster, self.node, self.target, "kubelet"))
        self._phase("kubectl-binary", lambda: place_binary(self.cluster, self.node, self.target, "kubectl"))
        self._phase("kubelet-restart", lambda: restart_kubelet(self.cluster, self.node))

        def reports_target() -> tuple[bool, str]:
            ready, v = kubelet_version_of(self.cluster, self.node)
            return ready and v == self.target.version, f"Ready={ready}, kubeletVersion={v}"

        self._phase("kubelet-ready", lambda: until(
            f"node {self.node} Ready with kubelet {self.target.version}", reports_target, self.ready_timeout_s,
            interval=2.0, hint=f"docker exec {self.node} journalctl -u kubelet shows why the new kubelet is not Ready"))
        if self.role == "control-plane":
            # The new kubelet recreates some static pods (seen: etcd and kube-apiserver restart once more
            # after the kubelet upgrade), so the API is down again briefly: wait until it is back and
            # every static pod of this node runs the target, before anything (uncordon) relies on it.
            self._phase("control-plane-ready", lambda: until(
                f"the static pods on {self.node} Ready at {self.target.version} and the API server ready",
                lambda: static_pods_ready(self.cluster, self.node, self.target), self.ready_timeout_s, interval=2.0,
                hint=f"docker exec {self.node} crictl ps -a shows which static pod does not start"))
        self.effect["kubelet_after"] = kubelet_version_of(self.cluster, self.node)[1]

    def verify(self) -> tuple[bool, str]:
        """The node runs the target: its kubelet reports it and, on a control plane, every static pod
        runs the target's image (read back from the API, not taken from kubeadm's word)."""
        want = self.target.version
        try:
            kubelet = kubelet_version_of(self.cluster, self.node)[1]
            pods = static_pods(self.cluster, self.node) if self.role == "control-plane" else {}
        except Exception as exc:  # noqa: BLE001 - an unanswered read is no evidence of the upgrade
            return False, f"could not read {self.node}'s versions from the API: {type(exc).__name__}: {str(exc)[:300]}"
        problems = [] if kubelet == want else [f"kubelet reports {kubelet}, expected {want}"]
        if self.role == "control-plane":
            for comp in STATIC_PODS:
                tag, expected = pods.get(comp, ("missing", False))[0], self.target.image_tag(comp)
                if tag != expected:
                    problems.append(f"static pod {comp} runs {tag}, expected {expected}")
        if problems:
            return False, f"{self.node}: " + "; ".join(problems)
        return True, (f"{self.node}: kubelet reports {kubelet}"
                      + (f"; static pods {', '.join(STATIC_PODS)} at the target's images" if pods else ""))

    def heal(self) -> None:
        uncordon_until(self.cluster, self.node)


# --- the whole rollout -------------------------------------------------------------------------------

@dataclass
class Rollout:
    """Which nodes, in which order, with which kubeadm step; refuses what kubeadm would refuse."""

    cluster: Cluster
    target: Release
    order: Order = "control-plane-first"
    current_version: str = ""

    def preflight(self) -> str:
        """Read the cluster version from the API server and refuse a skip of more than one minor (as kubeadm would)."""
        from kubernetes import client

        self.current_version = str(client.VersionApi(self.cluster.api_client()).get_code().git_version)
        check_upgrade_path(self.current_version, self.target.version, self.target.version)
        return self.current_version

    def sequence(self) -> list[tuple[str, Role, Step]]:
        """(node, role, kubeadm step) in rollout order. workers-first exists only to rehearse the mistake."""
        cps = [(n, "control-plane") for n in self.cluster.control_planes]
        ws = [(n, "worker") for n in self.cluster.workers]
        nodes = cps + ws if self.order == "control-plane-first" else ws + cps
        first_cp = self.cluster.control_planes[0] if self.cluster.control_planes else ""
        return [(n, role, "apply" if n == first_cp else "node") for n, role in nodes]  # type: ignore[misc]

    def stage_all(self, recorder: Recorder | None = None) -> dict[str, list[str]]:
        """Import the target's images into every node before any node is touched (nodes in parallel:
        each import is one `docker exec` stream, mostly waiting on disk)."""
        from concurrent.futures import ThreadPoolExecutor

        def one(node: str, role: Role) -> list[str]:
            t0 = time.monotonic()
            done = stage_images(self.cluster, node, role, self.target)
            say(f"  staged {len(done)} image(s) into {node} in {time.monotonic() - t0:.1f}s")
            if recorder is not None:
                recorder.event("images-staged", node, node=node, images=done)
            return done

        seq = self.sequence()
        with ThreadPoolExecutor(max_workers=len(seq) or 1) as pool:
            futures = {node: pool.submit(one, node, role) for node, role, _ in seq}
            return {node: f.result() for node, f in futures.items()}

    def step(self, node: str, role: Role, kubeadm_step: Step,
             recorder: Recorder | None = None) -> UpgradeNode:
        return UpgradeNode(self.cluster, node, role, self.target, kubeadm_step, recorder=recorder,
                           current_version=self.current_version)
