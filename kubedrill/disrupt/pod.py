"""Pod termination causes as disruptions: delete a pod, evict it (Eviction API), rollout restart.

These are the ways Kubernetes stops a workload's pods during maintenance: `kubectl delete pod`
and scale-down delete, `kubectl drain` and the cluster autoscaler evict (and so respect
PodDisruptionBudgets), a rollout replaces every pod one at a time. Each records `requested_at`
(the test's monotonic clock, taken just before the API call), because the grace period counts
from the deletion request and the shutdown checker times everything from there.

Heal is "the workload is whole again": the controller has replaced what was terminated. Nothing
here waits for the old pods to disappear; evidence of their end is kubedrill.probe's job.
"""

from __future__ import annotations

import time
from typing import Literal

from kubedrill.cluster.handle import Cluster, CommandFailed
from kubedrill.cluster.waits import until
from kubedrill.disrupt.base import Disruption, DisruptionError
from kubedrill.workload.deploy import live_pods, workload_ready

WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]
CAUSES: tuple[str, ...] = ("delete", "evict", "rollout-restart")


class _WorkloadPods(Disruption):
    """Shared ground: the pods of one workload in one namespace; healthy = the workload is whole."""

    def __init__(self, cluster: Cluster, namespace: str, kind: str, workload: str, recover_timeout_s: float) -> None:
        super().__init__()
        self.cluster, self.namespace, self.kind, self.workload = cluster, namespace, kind, workload
        self.recover_timeout_s = recover_timeout_s
        self.requested_at: float | None = None
        self.victims: list[str] = []

    def healthy(self) -> tuple[bool, str]:
        return workload_ready(self.cluster, self.namespace, self.kind, self.workload)

    def _wait_whole(self, what: str) -> None:
        def diag() -> str:
            return self.cluster.kubectl("get", "pods", "-n", self.namespace, "-o", "wide", check=False, timeout=30).stdout

        until(f"{self.kind.lower()} {self.namespace}/{self.workload} to be whole again after {what}", self.healthy,
              self.recover_timeout_s, interval=1.0,
              hint="the controller must replace terminated pods; look for Pending pods (no room) or crash loops",
              diagnose=diag)

    def _confirm_deleting(self, pod: str) -> None:
        """The request took effect: the pod has a deletionTimestamp (or is already gone)."""
        from kubernetes.client.exceptions import ApiException

        try:
            p = self.cluster.core().read_namespaced_pod(pod, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                self.effect["gone_immediately"] = True
                return
            raise
        if p.metadata.deletion_timestamp is None:
            raise DisruptionError(f"{self.name}: the API accepted the request but pod {pod} has no deletionTimestamp")
        self.effect["deletion_grace_seconds"] = p.metadata.deletion_grace_period_seconds


class DeletePod(_WorkloadPods):
    """`kubectl delete pod` through the API: what scale-down and manual deletes do."""

    def __init__(self, cluster: Cluster, namespace: str, pod: str, *, kind: str, workload: str,
                 grace_seconds: int | None = None, recover_timeout_s: float = 180) -> None:
        super().__init__(cluster, namespace, kind, workload, recover_timeout_s)
        self.pod, self.grace_seconds = pod, grace_seconds
        self.name = f"delete-pod/{pod}"
        self.victims = [pod]

    def inject(self) -> None:
        core = self.cluster.core()
        self.requested_at = time.monotonic()
        core.delete_namespaced_pod(self.pod, self.namespace, grace_period_seconds=self.grace_seconds)
        self.effect["deleted"] = self.pod
        self._confirm_deleting(self.pod)

    def heal(self) -> None:
        self._wait_whole(f"deleting {self.pod}")


class EvictPod(_WorkloadPods):
    """An Eviction (policy/v1), as `kubectl drain` sends it: refused with 429 while the pod's
    PodDisruptionBudget allows no disruption; retried until `budget_timeout_s`, like drain does."""

    def __init__(self, cluster: Cluster, namespace: str, pod: str, *, kind: str, workload: str,
                 budget_timeout_s: float = 60, recover_timeout_s: float = 180) -> None:
        super().__init__(cluster, namespace, kind, workload, recover_timeout_s)
        self.pod, self.budget_timeout_s = pod, budget_timeout_s
        self.name = f"evict-pod/{pod}"
        self.victims = [pod]

    def inject(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = self.cluster.core()
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=self.pod, namespace=self.namespace))
        deadline = time.monotonic() + self.budget_timeout_s
        attempts, refusal = 0, ""
        while True:
            attempts += 1
            self.requested_at = time.monotonic()
            try:
                core.create_namespaced_pod_eviction(self.pod, self.namespace, body)
                break
            except ApiException as exc:
                if exc.status != 429:
                    raise DisruptionError(f"{self.name}: eviction refused with HTTP {exc.status}: {exc.body or exc.reason}") from exc
                refusal = str(exc.body or exc.reason)[:300]
                if time.monotonic() >= deadline:
                    raise DisruptionError(
                        f"{self.name}: the PodDisruptionBudget refused the eviction {attempts} times over "
                        f"{self.budget_timeout_s:g} s (last answer: {refusal}); a drain would hang here too: allow at "
                        "least one disruption (minAvailable < replicas)") from exc
                time.sleep(1.0)
        self.effect.update(evicted=self.pod, eviction_attempts=attempts)
        if attempts > 1:
            self.effect["refused_first"] = refusal
        self._confirm_deleting(self.pod)

    def heal(self) -> None:
        self._wait_whole(f"evicting {self.pod}")


class RolloutRestart(_WorkloadPods):
    """`kubectl rollout restart`: the controller replaces every pod, deleting the old ones in turn.

    `victims` are the pods alive just before the restart; their deletion times come from the
    watch (kubedrill.probe.PodWatch), since the controller, not this process, deletes them.
    """

    def __init__(self, cluster: Cluster, namespace: str, *, kind: str, workload: str, selector: str,
                 recover_timeout_s: float = 300) -> None:
        super().__init__(cluster, namespace, kind, workload, recover_timeout_s)
        self.selector = selector
        self.name = f"rollout-restart/{kind.lower()}/{workload}"

    def inject(self) -> None:
        self.victims = live_pods(self.cluster, self.namespace, self.selector)
        if not self.victims:
            raise DisruptionError(f"{self.name}: no live pod matches {self.selector}, so a restart terminates nothing")
        self.requested_at = time.monotonic()
        try:
            self.cluster.kubectl("rollout", "restart", f"{self.kind.lower()}/{self.workload}", "-n", self.namespace, timeout=60)
        except CommandFailed as exc:
            raise DisruptionError(f"{self.name}: kubectl rollout restart failed: {exc.proc.stderr.strip()[-500:]}") from exc
        self.effect["restarted"] = f"{self.kind}/{self.workload}"
        self.effect["old_pods"] = list(self.victims)

    def heal(self) -> None:
        try:
            self.cluster.kubectl("rollout", "status", f"{self.kind.lower()}/{self.workload}", "-n", self.namespace,
                                 f"--timeout={int(self.recover_timeout_s)}s", timeout=self.recover_timeout_s + 30)
        except CommandFailed as exc:
            raise DisruptionError(f"{self.name}: the rollout did not complete within {self.recover_timeout_s:g} s: "
                                  f"{exc.proc.stdout.strip()[-300:]} {exc.proc.stderr.strip()[-300:]}") from exc
        self._wait_whole("the rollout restart")
