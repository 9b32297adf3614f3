"""Local images into kind nodes: kind nodes cannot pull, so each image they lack is loaded.

Used by the deploy path (the workload's images) and by the in-cluster load generator (the locust
image); both sit above the cluster stage, so this lives here.
"""

from __future__ import annotations

import json
import subprocess
from typing import Iterable

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.progress import say


def _image_id_local(image: str) -> str | None:
    p = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True,
                       timeout=60)
    return (p.stdout.strip() or None) if p.returncode == 0 else None


def images_present(cluster: Cluster, image: str) -> bool:
    """Every node already has this exact image (same ID as the local one): `kind load` can be skipped."""
    want = _image_id_local(image)
    if want is None:
        return False
    for node in cluster.all_nodes:
        p = cluster.node_exec(node, "crictl", "inspecti", "-o", "json", image, check=False, timeout=60)
        try:
            got = json.loads(p.stdout)["status"]["id"] if p.returncode == 0 else None
        except (ValueError, KeyError):
            got = None
        if got != want:
            return False
    return True


def load_images(cluster: Cluster, images: Iterable[str]) -> None:
    """kind nodes cannot pull: load each local image they do not have yet. Other clusters pull."""
    if cluster.provider != "kind":
        return
    from kubedrill.cluster import kind

    for image in images:
        if not images_present(cluster, image):
            say(f"loading image {image} into {cluster.name}")
            kind.load_image(cluster, image)
