"""The pure parts of kubedrill.disrupt.upgrade: the offline release layout, the rollout order, and
`UpgradeNode`'s registration and verify() (on a fake API)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.base import lookup
from kubedrill.disrupt.upgrade import Release, ReleaseMissing, Rollout, UpgradeNode

IMAGES = """registry.k8s.io/kube-apiserver:v1.34.4
registry.k8s.io/kube-controller-manager:v1.34.4
registry.k8s.io/kube-scheduler:v1.34.4
registry.k8s.io/kube-proxy:v1.34.4
registry.k8s.io/coredns/coredns:v1.12.1
registry.k8s.io/pause:3.10.1
registry.k8s.io/etcd:3.6.5-0
"""


def fake_cache(root: Path, version: str = "v1.34.4", skip: str = "") -> Path:
    bins = root / "k8s" / version / "bin"
    imgs = root / "images" / version
    bins.mkdir(parents=True)
    imgs.mkdir(parents=True)
    for b in ("kubeadm", "kubelet", "kubectl"):
        (bins / b).write_text("#!/bin/sh\n")
    (imgs / "kubeadm-images.txt").write_text(IMAGES)
    for line in IMAGES.split():
        name = Release.component(line)
        if name != skip:
            (imgs / f"{name}.tar").write_bytes(b"")
    return root


def test_release_from_cache_maps_images_to_tarballs_and_roles(tmp_path: Path) -> None:
    rel = Release.from_cache("v1.34.4", fake_cache(tmp_path))
    assert rel.tarball("registry.k8s.io/coredns/coredns:v1.12.1").name == "coredns.tar"
    assert rel.image_tag("etcd") == "3.6.5-0" and rel.image_tag("coredns") == "v1.12.1"
    assert len(rel.images_for("control-plane")) == 7
    assert [Release.component(i) for i in rel.images_for("worker")] == ["kube-proxy", "coredns", "pause"]
    with pytest.raises(KeyError, match="not among the images"):
        rel.image_tag("kindnet")


def test_missing_release_or_tarball_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ReleaseMissing, match="build-node-image.sh v1.35.0"):
        Release.from_cache("v1.35.0", tmp_path)
    with pytest.raises(ReleaseMissing, match="etcd.tar"):
        Release.from_cache("v1.34.4", fake_cache(tmp_path / "x", skip="etcd"))


def _cluster(cps: int, workers: int) -> Cluster:
    nodes = {"control-plane": [f"cp{i}" for i in range(1, cps + 1)], "worker": [f"w{i}" for i in range(1, workers + 1)]}
    return Cluster(name="t", kubeconfig=Path("/nonexistent"), provider="kind", nodes=nodes)


def test_control_planes_go_first_and_only_the_first_one_runs_apply() -> None:
    seq = Rollout(_cluster(3, 2), None, "control-plane-first").sequence()  # type: ignore[arg-type]
    assert seq == [("cp1", "control-plane", "apply"), ("cp2", "control-plane", "node"), ("cp3", "control-plane", "node"),
                   ("w1", "worker", "node"), ("w2", "worker", "node")]


def test_workers_first_is_the_rehearsed_mistake() -> None:
    seq = Rollout(_cluster(1, 2), None, "workers-first").sequence()  # type: ignore[arg-type]
    assert [n for n, _, _ in seq] == ["w1", "w2", "cp1"]
    assert seq[-1][2] == "apply"


# --- UpgradeNode: registered, and verify() reads back that the node runs the target ------------------

class FakeCore:
    """The two reads verify() makes: the node (kubelet version, Ready) and the node's kube-system pods."""

    def __init__(self, kubelet: str, static_tags: dict[str, str]) -> None:
        self.kubelet, self.static_tags = kubelet, static_tags

    def read_node(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(metadata=SimpleNamespace(name=name), status=SimpleNamespace(
            conditions=[SimpleNamespace(type="Ready", status="True")],
            node_info=SimpleNamespace(kubelet_version=self.kubelet)))

    def list_namespaced_pod(self, namespace: str, field_selector: str = "") -> SimpleNamespace:
        pods = [SimpleNamespace(metadata=SimpleNamespace(labels={"component": comp}),
                                spec=SimpleNamespace(containers=[SimpleNamespace(image=f"registry.k8s.io/{comp}:{tag}")]),
                                status=SimpleNamespace(container_statuses=[SimpleNamespace(ready=True)]))
                for comp, tag in self.static_tags.items()]
        return SimpleNamespace(items=pods)


class FakeCluster(Cluster):
    def __init__(self, core: FakeCore) -> None:
        super().__init__(name="t", kubeconfig=Path("/nonexistent"), provider="kind",
                         nodes={"control-plane": ["cp1"], "worker": ["w1"]})
        self._fake = core

    def core(self) -> FakeCore:  # type: ignore[override]
        return self._fake


AT_TARGET = {"etcd": "3.6.5-0", "kube-apiserver": "v1.34.4", "kube-controller-manager": "v1.34.4",
             "kube-scheduler": "v1.34.4"}


def test_upgrade_node_is_registered_and_names_its_node(tmp_path: Path) -> None:
    assert lookup("upgrade-node") is UpgradeNode
    rel = Release.from_cache("v1.34.4", fake_cache(tmp_path))
    step = UpgradeNode(FakeCluster(FakeCore("v1.34.4", {})), "w1", "worker", rel, "node")
    assert step.name == "upgrade-node/w1"


def test_verify_needs_the_kubelet_and_on_a_control_plane_every_static_pod_at_the_target(tmp_path: Path) -> None:
    rel = Release.from_cache("v1.34.4", fake_cache(tmp_path))
    worker = UpgradeNode(FakeCluster(FakeCore("v1.34.4", {})), "w1", "worker", rel, "node")
    assert worker.verify() == (True, "w1: kubelet reports v1.34.4")
    stale = UpgradeNode(FakeCluster(FakeCore("v1.33.13", {})), "w1", "worker", rel, "node")
    assert stale.verify() == (False, "w1: kubelet reports v1.33.13, expected v1.34.4")
    cp = UpgradeNode(FakeCluster(FakeCore("v1.34.4", AT_TARGET)), "cp1", "control-plane", rel, "apply")
    took, seen = cp.verify()
    assert took and "static pods etcd, kube-apiserver" in seen, seen
    old_etcd = UpgradeNode(FakeCluster(FakeCore("v1.34.4", {**AT_TARGET, "etcd": "3.5.24-0"})), "cp1", "control-plane",
                           rel, "apply")
    assert old_etcd.verify() == (False, "cp1: static pod etcd runs 3.5.24-0, expected 3.6.5-0")
    no_scheduler = {k: v for k, v in AT_TARGET.items() if k != "kube-scheduler"}
    gone = UpgradeNode(FakeCluster(FakeCore("v1.34.4", no_scheduler)), "cp1", "control-plane", rel, "apply")
    assert gone.verify() == (False, "cp1: static pod kube-scheduler runs missing, expected v1.34.4")
