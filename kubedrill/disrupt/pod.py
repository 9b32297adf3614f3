"""Pod termination causes as disruptions: delete a pod, evict it (Eviction API), rollout restart.

These are the ways Kubernetes stops a workload's pods during maintenance: `kubectl delete pod`
and scale-down delete, `kubectl drain` and the cluster autoscaler evict (and so respect
PodDisruptionBudgets), a rollout replaces every pod one at a time. Each registers under the name
the shutdown suite uses as its cause (`delete`, `evict`, `rollout-restart`), and all share one
constructor, `Cause(workload, pod)`, so a drill builds any of them from its registry name.

`deletion_requested_at(pod)` is the test's monotonic clock just before the API call that asked
for that pod's deletion, because the grace period counts from the deletion request and the
shutdown checker times everything from there; None where the controller, not this process,
deletes the pod (a rollout), and the pod watch's first sight of the deletion stands in.

Heal is "the workload is whole again": the controller has replaced what was terminated. Nothing
here waits for the old pods to disappear; evidence of their end is kubedrill.observe.PodWatch's job.
"""

from __future__ import annotations

import time
from typing import ClassVar

from kubedrill.cluster.handle import CommandFailed
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import (
    REGISTRY,
    Disruption,
    DisruptionError,
    lookup,
    register,
)
from kubedrill.workload.deploy import Deployed, live_pods, workload_ready


class PodTermination(Disruption):
    """Terminates pods of one deployed workload; healthy = the workload is whole.

    `targets_one_pod`: the caller names the pod to terminate (it can pick one holding requests);
    otherwise the cause terminates every pod and `pod` must be None. `victims` are the pods
    terminated, known after inject().
    """

    targets_one_pod: ClassVar[bool] = True

    def __init__(self, workload: Deployed, pod: str | None = None, *, recover_timeout_s: float | None = None) -> None:
        super().__init__()
        if self.targets_one_pod and pod is None:
            raise ValueError(f"{self.name}: name the pod of {workload.namespace}/{workload.name} to terminate")
        if not self.targets_one_pod and pod is not None:
            raise ValueError(f"{self.name}: terminates every pod of {workload.namespace}/{workload.name}; "
                             f"got a single pod {pod!r}")
        self.cluster, self.namespace = workload.cluster, workload.namespace
        self.kind, self.workload, self.selector = workload.kind, workload.name, workload.selector
        self.pod = pod
        self.recover_timeout_s = (recover_timeout_s if recover_timeout_s is not None
                                  else self.default_recover_s(workload))
        self.requested_at: float | None = None
        self.victims: list[str] = [pod] if pod is not None else []

    @staticmethod
    def default_recover_s(workload: Deployed) -> float:
        """One replacement pod: a start margin plus twice the grace period."""
        return 120 + 2 * workload.spec.grace_seconds

    def deletion_requested_at(self, pod: str) -> float | None:
        return self.requested_at if pod == self.pod else None

    def healthy(self) -> tuple[bool, str]:
        return workload_ready(self.cluster, self.namespace, self.kind, self.workload)

    def _wait_whole(self, what: str) -> None:
        def diag() -> str:
            return self.cluster.kubectl("get", "pods", "-n", self.namespace, "-o", "wide", check=False, timeout=30).stdout

        until(f"{self.kind.lower()} {self.namespace}/{self.workload} to be whole again after {what}", self.healthy,
              self.recover_timeout_s, interval=1.0,
              hint="the controller must replace terminated pods; look for Pending pods (no room) or crash loops",
              diagnose=diag)

    def _deleting(self, pod: str) -> tuple[bool, str]:
        """(the pod has a deletionTimestamp or is already gone, what was seen)."""
        from kubernetes.client.exceptions import ApiException

        try:
            p = self.cluster.core().read_namespaced_pod(pod, self.namespace, _request_timeout=30)
        except ApiException as exc:
            if exc.status == 404:
                return True, f"pod {pod} already gone"
            raise
        if p.metadata.deletion_timestamp is None:
            return False, f"pod {pod} has no deletionTimestamp (phase {p.status.phase})"
        return True, (f"pod {pod} deleting since {p.metadata.deletion_timestamp.isoformat()} "
                      f"(grace {p.metadata.deletion_grace_period_seconds} s)")

    def verify(self) -> tuple[bool, str]:
        """The API accepted the request and the victim is on its way out."""
        assert self.pod is not None
        took, seen = self._deleting(self.pod)
        return took, seen if took else f"the API accepted the request but {seen}"


@register("delete")
class DeletePod(PodTermination):
    """`kubectl delete pod` through the API: what scale-down and manual deletes do."""

    def __init__(self, workload: Deployed, pod: str | None = None, *, recover_timeout_s: float | None = None,
                 grace_seconds: int | None = None) -> None:
        super().__init__(workload, pod, recover_timeout_s=recover_timeout_s)
        self.grace_seconds = grace_seconds

    def inject(self) -> None:
        assert self.pod is not None
        self.requested_at = time.monotonic()
        self.cluster.core().delete_namespaced_pod(self.pod, self.namespace, grace_period_seconds=self.grace_seconds,
                                                  _request_timeout=30)
        self.effect["deleted"] = self.pod

    def heal(self) -> None:
        self._wait_whole(f"deleting {self.pod}")


@register("evict")
class EvictPod(PodTermination):
    """An Eviction (policy/v1), as `kubectl drain` sends it: refused with 429 while the pod's
    PodDisruptionBudget allows no disruption; retried until `budget_timeout_s`, like drain does."""

    def __init__(self, workload: Deployed, pod: str | None = None, *, recover_timeout_s: float | None = None,
                 budget_timeout_s: float = 60) -> None:
        super().__init__(workload, pod, recover_timeout_s=recover_timeout_s)
        self.budget_timeout_s = budget_timeout_s

    def inject(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        assert self.pod is not None
        core = self.cluster.core()
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=self.pod, namespace=self.namespace))
        deadline = time.monotonic() + self.budget_timeout_s
        attempts, refusal = 0, ""
        while True:
            attempts += 1
            self.requested_at = time.monotonic()
            try:
                core.create_namespaced_pod_eviction(self.pod, self.namespace, body, _request_timeout=30)
                break
            except ApiException as exc:
                if exc.status != 429:
                    raise DisruptionError(f"{self.name} {self.pod}: eviction refused with HTTP {exc.status}: "
                                          f"{exc.body or exc.reason}") from exc
                refusal = str(exc.body or exc.reason)[:300]
                if time.monotonic() >= deadline:
                    raise DisruptionError(
                        f"{self.name} {self.pod}: the PodDisruptionBudget refused the eviction {attempts} times over "
                        f"{self.budget_timeout_s:g} s (last answer: {refusal}); a drain would hang here too: allow at "
                        "least one disruption (minAvailable < replicas)") from exc
                time.sleep(1.0)
        self.effect.update(evicted=self.pod, eviction_attempts=attempts)
        if attempts > 1:
            self.effect["refused_first"] = refusal

    def heal(self) -> None:
        self._wait_whole(f"evicting {self.pod}")


@register("rollout-restart")
class RolloutRestart(PodTermination):
    """`kubectl rollout restart`: the controller replaces every pod, deleting the old ones in turn.

    `victims` are the pods alive just before the restart; their deletion times come from the
    watch (kubedrill.observe.PodWatch), since the controller, not this process, deletes them.
    """

    targets_one_pod = False
    verify_timeout_s: ClassVar[float] = 120.0

    @staticmethod
    def default_recover_s(workload: Deployed) -> float:
        """Every pod replaced in turn: a margin plus, per replica, its grace period and a start."""
        return 120 + workload.spec.replicas * (workload.spec.grace_seconds + 30)

    def inject(self) -> None:
        self.victims = live_pods(self.cluster, self.namespace, self.selector)
        if not self.victims:
            raise DisruptionError(f"{self.name}: no live pod matches {self.selector} in {self.namespace}, so a restart "
                                  "terminates nothing")
        self.requested_at = time.monotonic()
        try:
            self.cluster.kubectl("rollout", "restart", f"{self.kind.lower()}/{self.workload}", "-n", self.namespace,
                                 timeout=60)
        except CommandFailed as exc:
            raise DisruptionError(f"{self.name}: kubectl rollout restart failed: {exc.proc.stderr.strip()[-500:]}") from exc
        self.effect["restarted"] = f"{self.kind}/{self.workload}"
        self.effect["old_pods"] = list(self.victims)

    def verify(self) -> tuple[bool, str]:
        """The controller began replacing: an old pod is terminating (bounded; a new pod may have to
        become ready first, as a Deployment's maxSurge asks)."""
        deadline = time.monotonic() + min(self.verify_timeout_s, self.recover_timeout_s)
        while True:
            seen = [self._deleting(v) for v in self.victims]
            started = [s for took, s in seen if took]
            if started:
                return True, f"{len(started)} of {len(self.victims)} old pods terminating: {'; '.join(started)}"
            if time.monotonic() >= deadline:
                return False, (f"no old pod of {self.kind.lower()}/{self.workload} began terminating within "
                               f"{min(self.verify_timeout_s, self.recover_timeout_s):g} s of the restart: "
                               f"{'; '.join(s for _, s in seen)}")
            time.sleep(0.5)

    def heal(self) -> None:
        try:
            self.cluster.kubectl("rollout", "status", f"{self.kind.lower()}/{self.workload}", "-n", self.namespace,
                                 f"--timeout={int(self.recover_timeout_s)}s", timeout=self.recover_timeout_s + 30)
        except CommandFailed as exc:
            raise DisruptionError(f"{self.name}: the rollout did not complete within {self.recover_timeout_s:g} s: "
                                  f"{exc.proc.stdout.strip()[-300:]} {exc.proc.stderr.strip()[-300:]}") from exc
        self._wait_whole("the rollout restart")


def termination_causes() -> list[str]:
    """Registry names of the pod termination disruptions, in the order they are defined here."""
    return [name for name, cls in REGISTRY.items() if issubclass(cls, PodTermination)]


def termination_cause(name: str) -> type[PodTermination]:
    """The pod termination disruption registered as `name`; another kind of disruption is refused."""
    cls = lookup(name)
    if not issubclass(cls, PodTermination):
        raise KeyError(f"disruption {name!r} does not terminate a workload's pods; termination causes: "
                       f"{', '.join(termination_causes())}")
    return cls
