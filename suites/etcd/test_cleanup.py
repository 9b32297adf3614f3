"""Nothing is left behind: clusters remove their containers and network, even when startup
fails halfway, and the label sweeper removes leftovers of dead runs but never a live run's."""

from __future__ import annotations

import subprocess

import docker
import pytest

from fixtures.etcd import EtcdRun
from kubedrill.etcd.cluster import LABEL_COMPONENT, LABEL_OWNER, LABEL_RUN, COMPONENT, EtcdCluster, sweep

pytestmark = [pytest.mark.needs_docker, pytest.mark.conformance]


def _ours(dc: docker.DockerClient, run_id: str) -> list[str]:
    f = {"label": f"{LABEL_RUN}={run_id}"}
    return [c.name for c in dc.containers.list(all=True, filters=f)] + [n.name for n in dc.networks.list(filters=f)]


def test_failed_start_leaves_nothing_and_explains(etcd_run: EtcdRun) -> None:
    run_id = f"{etcd_run.run_id}x"
    c = EtcdCluster(size=3, image=etcd_run.image, ca=etcd_run.ca, client_tls=etcd_run.tls, workdir=etcd_run.workdir,
                    run_id=run_id, name="broken", log_level="no-such-level")
    with pytest.raises(TimeoutError) as err:
        with c:
            pass
    msg = str(err.value)
    assert "expected etcd cluster broken" in msg and "log:" in msg and "Try:" in msg, msg
    assert "no-such-level" in msg, "the member's own error should be in the message"
    dc = docker.from_env()
    try:
        assert _ours(dc, run_id) == [], "a cluster that failed to start left resources behind"
    finally:
        sweep(run_id=run_id)
        dc.close()


def test_sweeper_removes_dead_runs_only() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    dc = docker.from_env()
    made = []
    try:
        for owner, run in ((str(dead.pid), "kdsweep-dead"), ("1", "kdsweep-live")):
            labels = {LABEL_COMPONENT: COMPONENT, LABEL_RUN: run, LABEL_OWNER: owner}
            made.append(dc.networks.create(f"kubedrill-etcd-{run}", labels=labels))
        removed = sweep(dead_owners_only=True)
        assert "network kubedrill-etcd-kdsweep-dead" in removed
        assert "network kubedrill-etcd-kdsweep-live" not in removed  # pid 1 is alive
        assert _ours(dc, "kdsweep-dead") == [] and _ours(dc, "kdsweep-live") != []
    finally:
        for run in ("kdsweep-dead", "kdsweep-live"):
            sweep(run_id=run)
        dc.close()
