"""Meta: bad input on a real cluster ends in one clear error naming the fix, and leaves nothing behind.

  no-namespace-rights  a kubeconfig of a ServiceAccount bound to a view-only ClusterRole (get, list,
                       watch on everything): attaching works, deploying is refused before anything
                       is created (SelfSubjectAccessReview), naming what is missing
  image-not-pullable   the cluster seen as provider generic (no image loading) and a sample app image
                       its nodes do not have: the deploy wait ends on the pull error, saying to load
                       the image or name a pullable one, and the namespace is gone after

The contexts that do not exist and the API servers that do not answer are unit tests
(tests/unit/test_traffic_path.py): they need no cluster.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from kubedrill.cluster.access import AccessDenied
from kubedrill.cluster.existing import attach
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.namespaces import PART_OF
from kubedrill.cluster.waits import WaitTimeout
from kubedrill.workload.deploy import deployed
from kubedrill.workload.sample import sample_workload

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker]


def kubedrill_namespaces(cluster: Cluster) -> set[str]:
    return {n.metadata.name for n in cluster.core().list_namespace(label_selector=f"{PART_OF}=kubedrill").items}


@pytest.fixture
def viewer_kubeconfig(cluster: Cluster, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig for a ServiceAccount that may get, list and watch everything and change nothing."""
    name = f"kd-viewer-{uuid.uuid4().hex[:6]}"
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": name}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": name}]},
    ]
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        token = cluster.kubectl("create", "token", name, "-n", name, "--duration=10m").stdout.strip()
        admin = yaml.safe_load(cluster.kubeconfig.read_text())
        ctx = next(c for c in admin["contexts"] if c["name"] == (cluster.context or admin["current-context"]))
        server = next(c for c in admin["clusters"] if c["name"] == ctx["context"]["cluster"])
        path = tmp_path / "viewer.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "viewer",
            "clusters": [{"name": "c", "cluster": server["cluster"]}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "viewer", "context": {"cluster": "c", "user": name}}]}))
        assert base64.b64decode(server["cluster"]["certificate-authority-data"])  # a real CA, not a skip-verify
        yield path
    finally:
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def test_credentials_without_namespace_rights_are_refused_before_anything_is_created(
        cluster: Cluster, viewer_kubeconfig: Path, sample_image: str) -> None:
    viewer = attach(str(viewer_kubeconfig), provider="generic")
    assert viewer.all_nodes, "the view-only credentials should still list nodes"
    before = kubedrill_namespaces(cluster)
    with pytest.raises(AccessDenied) as exc:
        with deployed(viewer, sample_workload("graceful", replicas=1, min_available=0, image=sample_image),
                      purpose="bad-input-rbac"):
            pass
    msg = str(exc.value)
    print(msg)
    assert "context 'viewer' may not create namespaces, delete namespaces" in msg
    assert "use a kubeconfig whose user may create and delete namespaces" in msg and "Nothing was created" in msg
    assert kubedrill_namespaces(cluster) == before


def test_an_image_the_nodes_cannot_get_is_named_with_the_fix_and_leaves_nothing(cluster: Cluster) -> None:
    generic = cluster.as_generic()  # no image loading: like a cluster without kubedrill's images
    image = f"kubedrill/sample-app:not-built-{uuid.uuid4().hex[:6]}"
    before = kubedrill_namespaces(cluster)
    with pytest.raises(WaitTimeout) as exc:
        with deployed(generic, sample_workload("graceful", replicas=1, min_available=0, image=image), purpose="bad-input-image",
                      timeout=180):
            pass
    msg = str(exc.value)
    print(msg)
    assert f"cannot get image {image}" in msg and ("ErrImagePull" in msg or "ImagePullBackOff" in msg)
    assert "load the image into the nodes" in msg and "or name an image they can pull" in msg
    assert kubedrill_namespaces(cluster) == before
