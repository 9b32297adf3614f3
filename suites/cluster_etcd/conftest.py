"""Clusters for the cluster-etcd suite: one dedicated kind cluster per module, never shared.

Why not the session's `kind_cluster_factory`: a restore rewinds the whole cluster and the quorum
tests stop control-plane nodes, so these modules must not share a cluster with other suites
(in a `kubedrill run` session the factory's three-node cluster is also the default `cluster`);
and the factory keeps every cluster until the session ends, which would hold a three-node and an
HA cluster (8 node containers) at once on a 2-core host. A module-scoped cluster is created by
the one kind lifecycle (`kubedrill.cluster.kind.created` through the session's `kind_clusters`:
unique name, owner registry for the sweeper, logs exported on failure), deleted when its module ends (kept with --keep-cluster), so at most one
cluster of this suite is alive at a time.

The HA cluster gets a private Docker network (kubedrill.cluster.network), so control-plane node
containers that are stopped come back at their own addresses, as real hosts do.

With --kubeconfig/--context of a kind cluster on this host, that cluster is used instead (handy
when iterating; it is left restored/healed). Tests that need three control planes skip on it
unless it has them.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from fixtures.cluster import KindClusters, skip_without_node_access
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.paths import default_k8s_version
from kubedrill.pytest_plugin import add_run_meta


def _dedicated(request: pytest.FixtureRequest, config: str, min_control_planes: int,
               private_network: bool = False) -> Iterator[Cluster]:
    pc = request.config
    if pc.getoption("kubeconfig"):
        c: Cluster = request.getfixturevalue("existing_cluster")
        skip_without_node_access(pc, "the cluster-etcd suite (etcd backup, restore and quorum on control-plane nodes)", c)
        if len(c.control_planes) < min_control_planes:
            pytest.skip(f"needs {min_control_planes} control-plane nodes (the {config} config); {c.context} has "
                        f"{len(c.control_planes)}")
        yield c
        return
    skip_without_node_access(pc, "the cluster-etcd suite (etcd backup, restore and quorum on control-plane nodes)")
    clusters: KindClusters = request.getfixturevalue("kind_clusters")
    version = pc.getoption("k8s_version") or default_k8s_version()
    created = clusters.get(("dedicated", config, request.node.nodeid), config, request.getfixturevalue("node_image"),
                           version, f"{config}-cluster-etcd", private_network=private_network, ready_timeout=400)
    add_run_meta(pc, f"cluster_etcd_{config.replace('-', '_')}_cluster", created.name)
    try:
        yield created
    finally:
        clusters.discard(created)


@pytest.fixture(scope="module")
def restore_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A three-node kind cluster of its own (it gets rewound to a snapshot)."""
    yield from _dedicated(request, "three-node", 1)


@pytest.fixture(scope="module")
def ha_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """An HA kind cluster of its own: 3 control planes (stacked etcd) behind kind's haproxy LB."""
    yield from _dedicated(request, "ha", 3, private_network=True)
