"""The timeline of an unplanned node loss, as plain data: what the cluster's settings were, when
the node was lost, when the API said so (Ready Unknown/False, the NoExecute taint), when each pod
was evicted, when its replacement was scheduled and Ready, and when the Service's endpoints changed.

Why its own record: taint-based eviction is a chain of timers (the kubelet's lease renewals, the
node-monitor grace period, each pod's tolerationSeconds), and a checker can only compare the chain
to its prediction if every link is on one clock. All `*_at` times are the test's monotonic clock
(`Recorder.now()`); wall-clock stamps from the API (lease renewTime, taint timeAdded) are converted
by the observer. kubedrill.observe.eviction and kubedrill.observe.pods fill it;
kubedrill.check.eviction judges it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

UNREACHABLE = "node.kubernetes.io/unreachable"  # Ready Unknown: the node stopped reporting
NOT_READY = "node.kubernetes.io/not-ready"  # Ready False: the kubelet says it is not ready
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"  # set by an operator: the node is gone for good


@dataclass(frozen=True)
class EvictionSettings:
    """The cluster's timers as read from it (never assumed): the controller manager's
    --node-monitor-grace-period and --node-monitor-period, the API server's default toleration
    seconds (what admission adds to pods that do not say). `source` says where each came from."""

    grace_s: float
    monitor_period_s: float
    not_ready_toleration_s: float
    unreachable_toleration_s: float
    k8s_version: str = ""
    source: str = ""


@dataclass(frozen=True)
class Toleration:
    """One pod toleration; `seconds` None means tolerated for ever (for a NoExecute taint)."""

    key: str = ""
    operator: str = "Equal"
    effect: str = ""
    value: str = ""
    seconds: float | None = None

    def matches(self, key: str, effect: str = "NoExecute") -> bool:
        """Tolerates a taint with this key and effect (value-less taints, as the node controller sets)."""
        key_ok = self.key == key or (self.key == "" and self.operator == "Exists")
        return key_ok and self.effect in ("", effect)


def toleration_for(tolerations: tuple[Toleration, ...], key: str) -> tuple[bool, float | None]:
    """(tolerated at all, for how long) of a NoExecute taint `key`: (False, None) evicts at once,
    (True, None) never, (True, s) after s seconds (the shortest matching toleration wins, as in the
    taint-eviction controller)."""
    matching = [t for t in tolerations if t.matches(key)]
    if not matching:
        return False, None
    if all(t.seconds is None for t in matching):
        return True, None
    return True, min(max(0.0, t.seconds) for t in matching if t.seconds is not None)


@dataclass(frozen=True)
class Volume:
    """A pod volume that may hold data: its kind (emptyDir, persistentVolumeClaim, hostPath) and,
    for a claim, the PersistentVolume's node affinity (the nodes it can be used from)."""

    name: str
    kind: str
    claim: str = ""
    pv: str = ""
    pv_nodes: tuple[str, ...] = ()  # empty: no node affinity (attachable anywhere)


@dataclass(frozen=True)
class PodLife:
    """One pod from the watch: where it ran and when things happened to it (None: not seen)."""

    name: str
    uid: str
    node: str | None
    owner_kind: str | None
    first_seen_at: float
    scheduled_at: float | None = None  # first seen bound to a node (for a pod created during the watch)
    ready_at: float | None = None  # first seen Ready
    unready_at: float | None = None  # first seen not Ready after having been Ready
    deletion_at: float | None = None  # deletionTimestamp first seen (an eviction is a deletion)
    gone_at: float | None = None  # removed from the API
    created_during_watch: bool = False
    tolerations: tuple[Toleration, ...] = ()
    volumes: tuple[Volume, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeSeen:
    """The lost node as the API showed it, one entry per change: the Ready condition's status and
    its NoExecute/NoSchedule taints (key:effect)."""

    at: float
    ready: str  # "True" | "False" | "Unknown" | "" (not read)
    taints: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointSeen:
    """One endpoint of the Service (by pod) changing: ready True/False, or None when removed."""

    at: float
    pod: str
    node: str | None
    ready: bool | None


@dataclass
class EvictionTimeline:
    """Everything one node loss recorded, for the checkers. `lost_at`: the disruption injected;
    `healed_at`: the node given back (heal started); `data_plane_lost`: the node's pods stopped
    serving too (stop, freeze) rather than only its kubelet losing the API (partition)."""

    node: str
    disruption: str
    workload_kind: str
    workload: str
    replicas: int
    settings: EvictionSettings
    lost_at: float
    workers: tuple[str, ...] = ()
    healed_at: float | None = None
    data_plane_lost: bool = True
    heartbeats: tuple[float, ...] = ()  # lease renewTimes and Ready heartbeat times seen (monotonic), oldest first
    node_seen: tuple[NodeSeen, ...] = ()
    endpoints: tuple[EndpointSeen, ...] = ()
    pods: tuple[PodLife, ...] = ()
    endpoints_at_start: Mapping[str, tuple[str | None, bool]] = field(default_factory=dict)  # pod -> (node, ready)
    out_of_service_at: float | None = None  # the out-of-service taint applied (StatefulSet recovery)
    out_of_service_removed_at: float | None = None
    end_at: float | None = None  # the recording stopped

    def first(self, ready: tuple[str, ...] = ("Unknown", "False")) -> float | None:
        """When the node was first seen with Ready in `ready` after it was lost."""
        return next((s.at for s in self.node_seen if s.at >= self.lost_at and s.ready in ready), None)

    def tainted_at(self, key: str, effect: str = "NoExecute") -> float | None:
        return next((s.at for s in self.node_seen if s.at >= self.lost_at and f"{key}:{effect}" in s.taints), None)

    def last_heartbeat(self) -> float | None:
        """The node's last lease renewal before it was lost (1 s of slack for the moment the fault
        takes). Later renewTimes are not heartbeats the controller saw in time: renewTime is the
        kubelet's own clock when it built the request, and a renewal built during a partition
        reaches the API only after the heal."""
        before = [h for h in self.heartbeats if h <= self.lost_at + 1.0]
        return max(before) if before else None

    def pods_on_node(self) -> list[PodLife]:
        """The workload's pods that ran on the lost node when it was lost."""
        return [p for p in self.pods if p.node == self.node and p.first_seen_at <= self.lost_at
                and (p.deletion_at is None or p.deletion_at >= self.lost_at)]

    def replacements(self) -> list[PodLife]:
        """Pods created after the loss (not on the lost node), first seen first."""
        return sorted((p for p in self.pods if p.created_during_watch and p.first_seen_at >= self.lost_at),
                      key=lambda p: p.first_seen_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
