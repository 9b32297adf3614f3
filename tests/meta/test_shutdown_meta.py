"""Meta: the shutdown drill tells the sample app's shutdown modes apart, each for its own reason.

Each case deploys the sample app in one mode on this session's cluster through the suite's own
pool (kubedrill.scenarios.shutdown.TargetPool: the one deploy path plus the lagging router), runs
the suite's drill with one cause (pod delete) and judges it with the suite's judge and default
thresholds -- the calls suites/shutdown makes, without a second pytest run. graceful
MUST pass; every broken mode MUST fail, and the failing sub-checks of its verdict MUST be exactly
the ones that mode is built to break: a verdict that fails for an unrelated reason would be a
suite bug hiding behind a red test.

Each drill is judged twice: `record-on` with the sample app's lifecycle record, `record-off`
without it, on only what any pod leaves (events, container status, what clients and requests
sent straight to the pod saw) -- the judgement a third-party app gets. Both must reach the same
verdict for the same reason. Every mode is drilled with pod delete; graceful and one broken mode
also with eviction and rollout restart.

The pod-delete cases of GENERIC_MODES also run on provider generic (ids ending in `/generic`,
`-k generic`): the same cluster seen with the Kubernetes API only, so the traffic comes from locust
pods in the cluster (kubedrill.load.path), and the verdicts MUST be the same, for the same reasons.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Iterable, Iterator

import pytest

from fixtures.cluster import api_only, locust_image
from fixtures.workload import keep_namespaces
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.handle import Cluster
from kubedrill.config import RunConfig, SLOConfig
from kubedrill.report.model import TestResult
from kubedrill.scenarios.shutdown import LoadOptions, ShutdownRecord, Target, TargetPool, judge, run_shutdown_drill

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.slow]

SUBCHECKS = ("sigkill", "exit-code", "grace-period", "prestop", "in-flight", "traffic")
CAUSES: dict[str, tuple[str, ...]] = {mode: ("delete",) for mode in (
    "graceful", "ignores-sigterm", "slow-exit", "abrupt", "exit-nonzero", "no-prestop")}
CAUSES["graceful"] += ("evict", "rollout-restart")
CAUSES["abrupt"] += ("evict", "rollout-restart")

# mode -> (failing sub-checks, a phrase the reason must contain)
EXPECTED: dict[str, tuple[frozenset[str], str]] = {
    "graceful": (frozenset(), "preStop hook ran"),
    "ignores-sigterm": (frozenset({"sigkill"}), "the process ignored SIGTERM"),
    "slow-exit": (frozenset({"sigkill"}), "shutdown was too slow"),
    "abrupt": (frozenset({"in-flight"}), "the server exits without waiting for in-flight requests"),
    "exit-nonzero": (frozenset({"exit-code"}), "exit code 1 on SIGTERM"),
    "no-prestop": (frozenset({"traffic"}), "the server closes its listener before endpoints are removed; add a preStop sleep"),
}


def failing_subchecks(verdict: Verdict) -> set[str]:
    """Sub-checks the combined shutdown verdict reports as failed ("<name>: FAIL: ..." in its reason)."""
    return {m for m in re.findall(r"([\w-]+): FAIL:", verdict.reason) if m in SUBCHECKS}


class Pools:
    """The suite's pool with the suite's defaults (lagging router 1 s late) per provider, made on
    first use; one mode deployed at a time in all of them together."""

    def __init__(self, cluster: Cluster, make: Callable[[Cluster], TargetPool], generic: Callable[[], Cluster]) -> None:
        self.cluster, self.make, self.generic = cluster, make, generic
        self.pools: dict[str, TargetPool] = {}

    def get(self, provider: str) -> tuple[Cluster, TargetPool]:
        if provider == "kind" and (self.cluster.provider != "kind" or not self.cluster.port_map):
            pytest.skip("the kind path sends from this host through NodePorts mapped to 127.0.0.1; this cluster maps "
                        "none (its generic cases run)")
        for other, p in self.pools.items():
            if other != provider:
                p.release()
        if provider not in self.pools:
            self.pools[provider] = self.make(self.cluster if provider == "kind" else self.generic())
        pool = self.pools[provider]
        return pool.cluster, pool

    def release(self) -> None:
        for p in self.pools.values():
            p.release()


@pytest.fixture(scope="module")
def pools(cluster: Cluster, sample_image: str, publish_images: Callable[[Iterable[str]], None],
          kd_config: RunConfig, request: pytest.FixtureRequest) -> Iterator[Pools]:
    load = LoadOptions(workers=kd_config.load.workers, image=kd_config.load.image)
    p = Pools(cluster, lambda c: TargetPool(c, sample_image=lambda: sample_image, load=load,
                                            keep_namespaces=keep_namespaces(request.config)),
              lambda: api_only(cluster, publish_images, [sample_image, locust_image(request.config)]))
    try:
        yield p
    finally:
        p.release()


@pytest.fixture(scope="module")
def drills() -> dict[tuple[str, str, str], ShutdownRecord]:
    """One drill per mode, cause and provider, judged by both its record-on and record-off test."""
    return {}


# Pod delete for every mode first, then the other causes: the cheapest evidence comes first. Then
# every mode's pod delete again on provider generic (in-cluster load).
CASES = [(mode, cause, record, "kind") for first in (True, False) for mode in EXPECTED for cause in CAUSES[mode]
         if (cause == "delete") == first for record in ("record-on", "record-off")]
# On generic, the modes whose verdict rests on the traffic (graceful: nothing dropped; no-prestop:
# requests refused) and one of each other kind (abrupt: in-flight; ignores-sigterm: SIGKILL). slow-exit
# and exit-nonzero are judged from the pod's status and events, which do not depend on the path; they
# passed on generic too (2026-12-02), and leaving them out keeps CI's generic subset near 10 minutes.
GENERIC_MODES = ("graceful", "ignores-sigterm", "abrupt", "no-prestop")
CASES += [(mode, "delete", record, "generic") for mode in GENERIC_MODES for record in ("record-on", "record-off")]


@pytest.mark.parametrize(("mode", "cause", "record", "provider"), CASES,
                         ids=[f"sample-{m}/{c}/{r}" + ("/generic" if p == "generic" else "") for m, c, r, p in CASES])
def test_shutdown_suite_judges_sample_mode(mode: str, cause: str, record: str, provider: str, pools: Pools,
                                           drills: dict[tuple[str, str, str], ShutdownRecord],
                                           kd_report: TestResult) -> None:
    target = Target(f"sample-{mode}", sample_mode=mode)
    slo = SLOConfig()  # the suite's thresholds when the run config overrides nothing
    case = f"{target.id}/{cause}/{record}/{provider}"
    if (mode, cause, provider) not in drills:
        cluster, pool = pools.get(provider)
        t0 = time.monotonic()
        drills[(mode, cause, provider)] = run_shutdown_drill(cluster, pool.get(target), cause)
        kd_report.figure("drill", round(time.monotonic() - t0, 1), "s", f"{mode}/{cause}/{provider}")
    drill = drills[(mode, cause, provider)]
    verdicts = judge(drill, target.thresholds(slo.grace_budget_ratio, slo.max_failed_requests),
                     app_record=record == "record-on")
    assert drill.records, f"{case} terminated no pod: {drill.disruption.effect}"
    shutdown = [v for v in verdicts if v.check == "shutdown"]
    assert len(shutdown) == 1, f"{case}: expected one shutdown verdict, got {[str(v) for v in verdicts]}"
    verdict = shutdown[0]
    kd_report.add(verdict)
    broken, phrase = EXPECTED[mode]
    if not broken:
        assert all(v.passed for v in verdicts) and phrase in verdict.reason, \
            f"{case}: {'; '.join(str(v) for v in verdicts)}"
        return
    assert verdict.status is Status.FAIL, f"{case}: the verdict should FAIL:\n{verdict}"
    assert phrase in verdict.reason, f"{case}: the verdict should say {phrase!r}:\n{verdict}"
    assert failing_subchecks(verdict) == set(broken), (
        f"{case}: expected only {sorted(broken)} to fail, got {sorted(failing_subchecks(verdict))}:\n{verdict}")
