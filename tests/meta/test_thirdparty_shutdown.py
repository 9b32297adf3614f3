"""Meta: the shutdown drill judges servers nobody here wrote as their measured ground truth says.

Each case of apps/thirdparty (nginx, Apache httpd, gunicorn, Node.js from Debian packages, in a
correct and a broken shutdown configuration) is loaded from its workload spec -- the documented
format and nothing else -- deployed through the suite's pool, terminated by pod delete under the
suite's drill, and judged by the suite's judge and default thresholds. The verdict and reasons
MUST match apps/thirdparty/workloads/expected.yaml, measured in plain Docker
(benchmarks/results/thirdparty-ground-truth.md): these apps write no lifecycle record, so every
verdict rests on what any pod leaves.

    pass          every sub-check passes
    fail          every expected reason fails; nothing else fails, except `traffic` for a case
                  without a preStop hook (requests routed to a pod that stopped serving before
                  its endpoint was removed: a real fault of those configurations, measured by
                  kubedrill and outside the Docker ground truth, which has no Service)
    sigkill_cause the SIGKILL reason says which: ignored SIGTERM, or handled it too slowly

Every drill also shows the two probes that do not rest on the app: on kind, the container runtime's
own view of each victim's end (containerd's exit status, the same as the API's); and the in-flight
probe's load capped at what an idle pod sustained (`SUSTAINS`: two synchronous gunicorn workers
serve one slow request while still answering their health check). The same app given a probe too
heavy for it (two slow requests, not measured first) is UNKNOWN, "the in-flight probe itself made
the pod unready at 2 concurrent request(s)", never a FAIL of the app or a PASS.

One case also runs on provider generic (`nginx-broken/delete/generic`, `-k generic`): the same
cluster with the Kubernetes API only, traffic from locust pods in the cluster; same verdict.

Needs the image: `bash clusters/images/build-thirdparty.sh` (the manifests name its tag).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest
import yaml

from fixtures.cluster import api_only, locust_image
from fixtures.workload import keep_namespaces
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.config import RunConfig, SLOConfig
from kubedrill.report.model import TestResult
from kubedrill.disrupt.base import UnhealthyBefore
from kubedrill.scenarios.shutdown import (
    DrillSettings,
    LoadOptions,
    ShutdownRecord,
    Target,
    TargetPool,
    judge,
    run_shutdown_drill,
)
from kubedrill.workload.spec import load_workload

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.slow]

WORKLOADS = Path(__file__).resolve().parents[2] / "apps" / "thirdparty" / "workloads"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((WORKLOADS / "expected.yaml").read_text())["cases"]
SUBCHECKS = ("sigkill", "exit-code", "grace-period", "prestop", "in-flight", "traffic")
CAUSE = "delete"
# Slow requests at once an idle pod serves while still answering its health check within the
# readiness probe's timeout, where the app limits it (measured by the drill before the deletion).
SUSTAINS = {"gunicorn-correct-sync": 1}
OVERLOAD_PHRASE = "the in-flight probe itself made the pod unready at 2 concurrent request(s)"
KILL_PHRASE = {"ignored-sigterm": "the process ignored SIGTERM", "slow-shutdown": "shutdown was too slow"}


def failing_subchecks(verdict: Verdict) -> set[str]:
    return {m for m in re.findall(r"([\w-]+): FAIL:", verdict.reason) if m in SUBCHECKS}


GENERIC_CASE = "nginx-broken"  # the one case also drilled on provider generic
CASES = [(c, "kind") for c in sorted(EXPECTED)] + [(GENERIC_CASE, "generic")]


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[str, TargetPool]]:
    """One pool per provider, made on first use (pool_for): this cluster as it is, and as provider generic."""
    made: dict[str, TargetPool] = {}
    try:
        yield made
    finally:
        for p in made.values():
            p.release()


def pool_for(provider: str, cluster: Cluster, pools: dict[str, TargetPool], config: pytest.Config,
             publish: Callable[[Iterable[str]], None], images: Iterable[str], load: LoadOptions) -> TargetPool:
    if provider == "kind" and (cluster.provider != "kind" or not cluster.port_map):
        pytest.skip("the kind path sends from this host through NodePorts mapped to 127.0.0.1; this cluster maps none "
                    "(its generic case runs)")
    for other, p in pools.items():
        if other != provider:
            p.release()
    if provider not in pools:
        c = cluster if provider == "kind" else api_only(cluster, publish, [locust_image(config)])
        pools[provider] = TargetPool(c, sample_image=lambda: "", keep_namespaces=keep_namespaces(config), load=load)
    if provider == "generic":
        publish(images)  # what a registry does for a staging cluster
    return pools[provider]


@pytest.mark.parametrize(("case", "provider"), CASES,
                         ids=[f"{c}/{CAUSE}" + ("/generic" if p == "generic" else "") for c, p in CASES])
def test_shutdown_drill_matches_thirdparty_ground_truth(case: str, provider: str, cluster: Cluster,
                                                        pools: dict[str, TargetPool], kd_config: RunConfig,
                                                        publish_images: Callable[[Iterable[str]], None],
                                                        request: pytest.FixtureRequest, kd_report: TestResult) -> None:
    spec = load_workload(WORKLOADS / f"{case}.yaml")
    pool = pool_for(provider, cluster, pools, request.config, publish_images, spec.images,
                    LoadOptions(workers=kd_config.load.workers, image=kd_config.load.image))
    cluster = pool.cluster
    target = Target(case, spec=spec)
    slo = SLOConfig()
    t0 = time.monotonic()
    record = run_shutdown_drill(cluster, pool.get(target), CAUSE)
    verdicts = judge(record, target.thresholds(slo.grace_budget_ratio, slo.max_failed_requests))
    kd_report.figure("drill", round(time.monotonic() - t0, 1), "s", case)
    assert record.records, f"{case}/{CAUSE} terminated no pod: {record.disruption.effect}"
    assert_probes_of_any_pod(case, cluster, record)
    (verdict,) = [v for v in verdicts if v.check == "shutdown"]
    kd_report.add(verdict)
    want = EXPECTED[case]
    print(f"{case}/{CAUSE}: expected {want['verdict']} {want['reasons']}; got {verdict}")
    if want["verdict"] == "pass":
        assert verdict.status is Status.PASS, f"{case}: a correct configuration must pass:\n{verdict}"
        return
    assert verdict.status is Status.FAIL, f"{case}: the verdict should FAIL for {want['reasons']}:\n{verdict}"
    failing = failing_subchecks(verdict)
    allowed = set(want["reasons"]) | (set() if spec.prestop else {"traffic"})
    assert set(want["reasons"]) <= failing <= allowed, (
        f"{case}: expected {sorted(want['reasons'])} to fail (and at most {sorted(allowed)}), got {sorted(failing)}:\n"
        f"{verdict}")
    if "sigkill_cause" in want:
        phrase = KILL_PHRASE[want["sigkill_cause"]]
        assert phrase in verdict.reason, f"{case}: the SIGKILL reason should say {phrase!r}:\n{verdict}"


def assert_probes_of_any_pod(case: str, cluster: Cluster, record: ShutdownRecord) -> None:
    """The runtime's view was captured on kind (and said unavailable elsewhere), and the in-flight
    probe held no more slow requests on a pod than an idle one sustained."""
    for ev in record.evidence:
        rt = ev.runtime
        assert rt is not None, f"{case}: {ev.pod} has no runtime evidence entry"
        print(f"{case}: runtime view of {ev.pod}: {rt}")
        if cluster.provider == "kind":
            assert rt.available and rt.exit_code is not None and rt.exited_wall is not None, (
                f"{case}: containerd's exit of {ev.pod} was expected on a kind node: {rt.note}")
            assert rt.exit_code == ev.exit_code, f"{case}: runtime exit {rt.exit_code} != API exit {ev.exit_code}"
        else:
            assert not rt.available and "kind nodes only" in rt.note, f"{case}: {rt}"
    assert record.capacity is not None, f"{case}: what an idle pod sustains was not measured"
    want = SUSTAINS.get(case)
    if want is not None:
        assert record.capacity.sustained == want and record.slow_per_pod == want, (
            f"{case}: expected an idle pod to sustain {want} slow request(s) and the probe to hold {want}: "
            f"{record.capacity.summary()}; held {record.slow_per_pod}")
    else:
        assert 1 <= record.slow_per_pod <= record.capacity.sustained, record.capacity.summary()


@pytest.mark.parametrize("case", ["gunicorn-correct-sync"], ids=[f"gunicorn-correct-sync/{CAUSE}/probe-too-heavy"])
def test_a_probe_too_heavy_for_the_app_is_unknown_not_the_apps_fault(
        case: str, cluster: Cluster, pools: dict[str, TargetPool], kd_config: RunConfig,
        publish_images: Callable[[Iterable[str]], None], request: pytest.FixtureRequest, kd_report: TestResult) -> None:
    """Two slow requests held on a pod with two synchronous workers, without measuring first: the pod
    stops answering its health check before the deletion; the drill must say the probe did it."""
    spec = load_workload(WORKLOADS / f"{case}.yaml")
    pool = pool_for("kind", cluster, pools, request.config, publish_images, spec.images,
                    LoadOptions(workers=kd_config.load.workers, image=kd_config.load.image))
    target = Target(case, spec=spec)
    slo = SLOConfig()
    heavy = DrillSettings(slow_per_pod=2, measure_capacity=False)
    try:
        record = run_shutdown_drill(pool.cluster, pool.get(target), CAUSE, heavy)
    except UnhealthyBefore as exc:  # the readiness drop reached the workload before the deletion
        assert OVERLOAD_PHRASE in str(exc), str(exc)
        return
    (verdict,) = [v for v in judge(record, target.thresholds(slo.grace_budget_ratio, slo.max_failed_requests))
                  if v.check == "shutdown"]
    kd_report.add(verdict)
    print(f"{case}/{CAUSE}/probe-too-heavy: {verdict}")
    assert verdict.status is Status.UNKNOWN, f"{case}: a probe too heavy for the app must be UNKNOWN:\n{verdict}"
    assert OVERLOAD_PHRASE in verdict.reason, str(verdict)
