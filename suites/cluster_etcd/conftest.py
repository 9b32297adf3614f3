"""Clusters for the cluster-etcd suite: one dedicated kind cluster per module, never shared.

Why not the session's `kind_cluster_factory`: a restore rewinds the whole cluster and the quorum
tests stop control-plane nodes, so these modules must not share a cluster with other suites
(in a `kubedrill run` session the factory's three-node cluster is also the default `cluster`);
and the factory keeps every cluster until the session ends, which would hold a three-node and an
HA cluster (8 node containers) at once on a 2-core host. A module-scoped cluster is created by
the same engine (`kubedrill.cluster.kind`: unique name, owner registry for the sweeper, logs
exported on failure), deleted when its module ends (kept with --keep-cluster), so at most one
cluster of this suite is alive at a time.

The HA cluster gets a private Docker network (kubedrill.cluster.network), so control-plane node
containers that are stopped come back at their own addresses, as real hosts do.

With --kubeconfig/--context of a kind cluster on this host, that cluster is used instead (handy
when iterating; it is left restored/healed). Tests that need three control planes skip on it
unless it has them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from kubedrill.cluster import kind, network
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.progress import say
from kubedrill.pytest_plugin import add_run_meta, add_session_note


def _dedicated(request: pytest.FixtureRequest, config: str, min_control_planes: int,
               private_network: bool = False) -> Iterator[Cluster]:
    pc = request.config
    if pc.getoption("kubeconfig"):
        c: Cluster = request.getfixturevalue("existing_cluster")
        if c.provider != "kind":
            pytest.skip(f"the cluster-etcd suite runs commands on control-plane nodes; context {c.context!r} is not a "
                        "kind cluster on this host (node access is needed)")
        if len(c.control_planes) < min_control_planes:
            pytest.skip(f"needs {min_control_planes} control-plane nodes (the {config} config); {c.context} has "
                        f"{len(c.control_planes)}")
        yield c
        return
    image = request.getfixturevalue("node_image")
    wi = getattr(pc, "workerinput", None)
    name = kind.unique_name(wi["workerid"] if wi else None)
    logs = Path(pc.getoption("reports_dir")) / "latest" / "artifacts" / f"cluster-create-{config}-{name}"
    kind.install_sigterm_handler()
    kind.sweep()
    created: Cluster | None = None
    net = f"{name}-net" if private_network else None
    try:
        if net:
            network.create_private_network(net)
        created = kind.create(config, image, name=name, logs_dir=logs, network=net,
                              kubeconfig_dir=request.getfixturevalue("tmp_path_factory").mktemp("kubeconfig"))
        from kubedrill.cluster.waits import wait_cluster_ready

        wait_cluster_ready(created, timeout=float(os.environ.get("KUBEDRILL_READY_TIMEOUT", "400")))
    except Exception as exc:  # noqa: BLE001 - becomes a clear test failure, the cluster is removed
        kind.export_logs(name, logs)
        if not pc.getoption("keep_cluster"):
            kind.delete(name)
            if net:
                network.remove_network(net)
        add_session_note(pc, f"cluster-etcd: {config} cluster creation failed: {str(exc)[:1500]}")
        pytest.fail(f"dedicated {config} cluster creation failed: {exc}", pytrace=False)
    assert created is not None
    add_run_meta(pc, f"cluster_etcd_{config.replace('-', '_')}_cluster", name)
    try:
        yield created
    finally:
        if pc.getoption("keep_cluster"):
            say(f"--keep-cluster: leaving {name}; kubeconfig {created.kubeconfig}")
        else:
            say(f"deleting dedicated cluster {name}")
            kind.delete(name)
            if net:
                network.remove_network(net)


@pytest.fixture(scope="module")
def restore_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A three-node kind cluster of its own (it gets rewound to a snapshot)."""
    yield from _dedicated(request, "three-node", 1)


@pytest.fixture(scope="module")
def ha_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """An HA kind cluster of its own: 3 control planes (stacked etcd) behind kind's haproxy LB."""
    yield from _dedicated(request, "ha", 3, private_network=True)
