"""The cluster at one moment, as plain frozen data: nodes, pods, PodDisruptionBudgets, workloads,
component versions.

Why plain data: checkers (scheduling, rollout, skew, node loss) are pure functions that unit tests
feed by hand, so what they read cannot be kubernetes-client objects. kubedrill.observe.cluster takes
these snapshots from a live cluster; a read that failed is kept with `error` set, because a gap in
the record is itself evidence and a checker decides what it means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

CONTROL_PLANE = "control-plane"
WORKER = "worker"


@dataclass(frozen=True)
class Taint:
    """A node taint; `added_wall` is its timeAdded (Unix seconds) when the API gave one (NoExecute)."""

    key: str
    effect: str
    value: str = ""
    added_wall: float | None = None

    def __str__(self) -> str:
        return f"{self.key}{'=' + self.value if self.value else ''}:{self.effect}"


@dataclass(frozen=True)
class NodeState:
    """One node. `conditions` maps a condition type to its status ("True", "False", "Unknown")."""

    name: str
    ready: bool
    schedulable: bool = True
    role: str = WORKER
    kubelet: str = ""  # status.nodeInfo.kubeletVersion
    taints: tuple[Taint, ...] = ()
    conditions: Mapping[str, str] = field(default_factory=dict)

    @property
    def out(self) -> bool:
        """Out of service for workloads: cordoned or not Ready."""
        return not self.schedulable or not self.ready

    def tainted(self, key: str) -> Taint | None:
        return next((t for t in self.taints if t.key == key), None)


@dataclass(frozen=True)
class PodState:
    """One pod. owner_kind None means a bare pod (no controller recreates it)."""

    namespace: str
    name: str
    node: str | None
    phase: str
    ready: bool
    deleting: bool = False
    owner_kind: str | None = None
    owner_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    restarts: int = 0
    unschedulable: str = ""  # the PodScheduled=False condition's message: why the scheduler placed it nowhere
    empty_dirs: tuple[str, ...] = ()  # names of its emptyDir volumes (a drain deletes their data)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def serving(self) -> bool:
        """Running, ready and not being deleted: it counts as an available replica."""
        return self.phase == "Running" and self.ready and not self.deleting


def selects(selector: Mapping[str, str], namespace: str, pod: PodState) -> bool:
    """A matchLabels selector in `namespace` selects `pod` (an empty selector selects nothing here)."""
    return pod.namespace == namespace and bool(selector) and all(pod.labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class SchedulingFailure:
    """A FailedScheduling event: the scheduler found no node for a pod. Kept apart from snapshots
    because the event outlives the moment: a replacement that was Pending while a drain waited is
    scheduled once the node is uncordoned, and only the event still says why it could not run.
    Times are the test's monotonic clock (converted from the event's wall-clock stamps)."""

    namespace: str
    pod: str
    message: str
    first_at: float | None
    last_at: float | None
    count: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)  # the pod's, when it was seen; else empty

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pod}"

    def during(self, start: float, end: float) -> bool:
        """It was seen between start and end (1 s of slack: event stamps may have 1 s resolution)."""
        first = self.first_at if self.first_at is not None else self.last_at
        last = self.last_at if self.last_at is not None else first
        return first is not None and last is not None and first <= end + 1.0 and last >= start - 1.0


@dataclass(frozen=True)
class PdbState:
    """A PodDisruptionBudget with its live status (only matchLabels selectors are understood)."""

    namespace: str
    name: str
    selector: Mapping[str, str]
    min_available: int | str | None
    max_unavailable: int | str | None
    disruptions_allowed: int
    current_healthy: int
    desired_healthy: int
    expected_pods: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, pod: PodState) -> bool:
        return selects(self.selector, self.namespace, pod)

    def describe(self) -> str:
        spec = (f"minAvailable: {self.min_available}" if self.min_available is not None
                else f"maxUnavailable: {self.max_unavailable}")
        return f"{spec}; {self.current_healthy}/{self.expected_pods} healthy, disruptionsAllowed {self.disruptions_allowed}"


@dataclass(frozen=True)
class WorkloadState:
    """A Deployment, StatefulSet or DaemonSet: how many replicas it wants, has ready and available,
    and (when read with its pods) which pods are its own."""

    kind: str
    namespace: str
    name: str
    replicas: int
    selector: Mapping[str, str] = field(default_factory=dict)
    ready: int = 0
    available: int = 0
    pods: tuple[PodState, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def owns(self, pod: PodState) -> bool:
        return selects(self.selector, self.namespace, pod)


@dataclass(frozen=True)
class Snapshot:
    """The cluster at `at` (the test's monotonic clock). Parts not read are empty; `error` says
    which reads failed."""

    at: float
    nodes: tuple[NodeState, ...] = ()
    pods: tuple[PodState, ...] = ()
    pdbs: tuple[PdbState, ...] = ()
    workloads: tuple[WorkloadState, ...] = ()
    label: str = ""
    api_version: str = ""  # kube-apiserver /version gitVersion; "" when not read or it did not answer
    # component -> {node: image tag}; coredns (a Deployment) is keyed by pod name instead.
    components: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    error: str = ""

    def node(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes if n.name == name), None)

    def pods_on(self, node: str) -> list[PodState]:
        return [p for p in self.pods if p.node == node and not p.deleting]

    def pods_of(self, workload: WorkloadState) -> list[PodState]:
        return [p for p in self.pods if workload.owns(p)]

    def workload(self, namespace: str, name: str) -> WorkloadState | None:
        return next((w for w in self.workloads if w.namespace == namespace and w.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "label": self.label, "api_version": self.api_version, "error": self.error,
                "nodes": [{**n.__dict__, "taints": [str(t) for t in n.taints], "conditions": dict(n.conditions)}
                          for n in self.nodes],
                "components": {k: dict(v) for k, v in self.components.items()}}
