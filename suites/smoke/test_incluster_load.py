"""Smoke: kubedrill's load generator runs inside the cluster (kubedrill.load.incluster).

Two locust worker pods send to the sample app's Service by its cluster DNS name; their records come
back on the runner's clock (each pod's measured clock offset is a figure); a worker deleted
mid-run is a load gap that its replacement closes, never a failed request; an image the nodes lack
is named, with the fix, and nothing is left behind.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from kubedrill.check.verdict import Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.waits import WaitTimeout, until
from kubedrill.load.incluster import InClusterLoad
from kubedrill.workload.deploy import Deployed
from kubedrill.workload.sample import sample_workload

pytestmark = [pytest.mark.needs_docker]


@pytest.fixture(scope="module")
def app(cluster: Cluster, sample_image: str, request: pytest.FixtureRequest) -> Iterator[Deployed]:
    """The sample app, 3 replicas, for this module (deleted at module end)."""
    from fixtures.workload import keep_namespaces
    from kubedrill.workload.deploy import deployed

    spec = sample_workload("graceful", replicas=3, grace_seconds=15, prestop_seconds=2, image=sample_image,
                           min_available=1)
    with deployed(cluster, spec, purpose="smoke-incluster", keep=keep_namespaces(request.config)) as d:
        yield d


@pytest.mark.conformance
def test_incluster_load_sends_by_dns_and_a_deleted_worker_is_a_gap(cluster: Cluster, app: Deployed,
                                                                    kd_report) -> None:
    url = app.service_url  # the Service's cluster DNS name: the path other pods take
    before = time.monotonic()
    with InClusterLoad(cluster, url, users=4, rate=40.0, run_time=90, workers=2, purpose="smoke-load") as load:
        first = sorted(load.clock_offsets())
        assert len(first) == 2, f"expected two worker pods with a measured clock, got {first}"
        time.sleep(6)
        victim = first[0]
        deleted_at = time.monotonic()
        cluster.kubectl("delete", "pod", victim, "-n", load.namespace or "", "--wait=false", timeout=30)

        def replaced() -> tuple[bool, str]:
            senders = {o.client for o in load.operations() if o.start > deleted_at}
            return bool(senders - set(first)), f"pods sending since the delete: {sorted(senders)}"

        until("a replacement worker pod to send", replaced, timeout=90, interval=2,
              hint=f"kubectl get pods -n {load.namespace} -o wide")
        time.sleep(4)
    after = time.monotonic()

    ops = load.operations()
    offsets = load.clock_offsets()
    uncertainty = load.clock_uncertainty()
    stats = load.stats()
    gaps = load.gaps()
    for pod, off in sorted(offsets.items()):
        kd_report.figure("clock_offset", off * 1000, "ms", detail=pod)
        kd_report.figure("clock_offset_uncertainty", uncertainty[pod] * 1000, "ms", detail=pod)
    kd_report.figure("requests", stats.requests, "count")
    kd_report.figure("achieved_rate", stats.achieved_rate, "req/s", detail="target 40")
    senders = sorted({o.client for o in ops})
    answered_by = sorted({str(o.result) for o in ops if o.result})
    failed = [o for o in ops if o.outcome != "ok"]

    assert set(first) <= set(senders) and len(senders) >= 3, (
        f"both first workers {first} and a replacement should have sent; senders {senders}")
    assert len(answered_by) >= 2, f"the Service should spread the pods' requests over app pods; answered by {answered_by}"
    # On the runner's clock: inside the test's own window, give or take the measured uncertainty.
    slack = max(uncertainty.values()) + 0.05
    outside = [o for o in ops if o.start < before - slack or o.end > after + slack]
    assert not outside, f"{len(outside)} request(s) outside the runner's window [{before:.3f}, {after:.3f}]: {outside[:3]}"
    if cluster.provider == "kind":
        # One kernel clock for every pod on kind: the measured offset must be (close to) zero.
        assert all(abs(o) <= uncertainty[p] + 0.005 for p, o in offsets.items()), (
            f"kind pods share the runner's clock, yet offsets {offsets} exceed their uncertainty {uncertainty}")
    victim_gaps = [g for g in gaps if g.pod == victim]
    assert len(victim_gaps) == 1, f"the deleted worker {victim} should be one load gap; gaps: {gaps}"
    gap = victim_gaps[0]
    kd_report.figure("load_gap", ((gap.end or after) - gap.start), "s", detail=gap.reason)
    assert gap.start <= deleted_at + 3 and gap.end is not None and gap.end > gap.start, f"gap {gap}, deleted at {deleted_at}"
    assert not failed, (f"deleting a load worker must not show as failed requests, but {len(failed)} failed: "
                        f"{[(o.client, o.detail) for o in failed[:5]]}")
    kd_report.add(Verdict.ok("incluster-load", f"{stats}; worker {victim} deleted: gap of "
                             f"{gap.end - gap.start:.1f} s, closed by its replacement"))


@pytest.mark.conformance
def test_incluster_load_names_an_image_the_nodes_lack_and_leaves_nothing(cluster: Cluster) -> None:
    """Bad input: an image no node has. The error names the reason and the fix; the namespace goes."""
    load = InClusterLoad(cluster, "http://kd-nothing.default.svc.cluster.local:8080", image="kubedrill/locust:not-built",
                         purpose="smoke-noimage")
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as err:
        load.start(first_answer_timeout=60)
    message = str(err.value)
    assert "ErrImageNeverPull" in message and "build-locust.sh" in message, message
    assert time.monotonic() - t0 < 50, f"a missing image should end the wait at once, not at its timeout: {message}"
    left = [ns.metadata.name for ns in cluster.core().list_namespace().items if ns.metadata.name == load.namespace]
    assert not left, f"the load's namespace {load.namespace} should be deleted after a failed start"
