"""The pure parts of kubedrill.disrupt.upgrade: the offline release layout and the rollout order."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.upgrade import Release, ReleaseMissing, Rollout

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
