"""Kubernetes objects as recorded through the API: inventories (uid, resourceVersion, a checksum of
what the object means), the changes a drill made, resourceVersions seen, Deployment status, and the
steps of an operator procedure. Plain data for kubedrill.check.k8s_state to judge.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

# What "the same data" means for each kind we seed: the user-visible content, not metadata that
# the API server or controllers rewrite (managedFields, status counters, annotations of rollouts).
_CONTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData"),
    "Secret": ("data", "type"),
    "Deployment": ("spec.replicas", "spec.template.spec.containers", "spec.selector"),
    "Namespace": ("metadata.labels", "status.phase"),
}


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def content_checksum(doc: Mapping[str, Any]) -> str:
    """sha256 (16 hex) of the fields that carry an object's meaning for its kind; also covers
    whether it is being deleted (a namespace deleted after the snapshot must come back Active)."""
    kind = str(doc.get("kind", ""))
    fields = _CONTENT_FIELDS.get(kind, ("data", "spec"))
    payload = {f: _get(doc, f) for f in fields}
    payload["deleting"] = bool(_get(doc, "metadata.deletionTimestamp"))
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class ObjState:
    """One object as seen through the API at one moment."""

    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: int
    checksum: str

    @property
    def key(self) -> str:
        return object_key(self.kind, self.namespace, self.name)


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def object_state(doc: Mapping[str, Any]) -> ObjState:
    md = doc.get("metadata", {})
    return ObjState(kind=str(doc.get("kind", "")), namespace=str(md.get("namespace") or ""), name=str(md["name"]),
                    uid=str(md.get("uid", "")), resource_version=int(md.get("resourceVersion") or 0),
                    checksum=content_checksum(doc))


Inventory = dict[str, ObjState]


def inventory(docs: Iterable[Mapping[str, Any]]) -> Inventory:
    """Inventory of API objects (each doc must carry its `kind`: list items do not, add it)."""
    return {s.key: s for s in (object_state(d) for d in docs)}


@dataclass(frozen=True)
class Change:
    """A change the suite made after the snapshot, which the restore must undo."""

    action: Literal["create", "update", "delete"]
    key: str
    resource_version: int = 0  # as the API answered it (0 for deletes that returned none)

@dataclass(frozen=True)
class RvSeen:
    """A resourceVersion observed, and by what (a write's answer, a list, a watch event)."""

    what: str
    rv: int


@dataclass(frozen=True)
class WatchResume:
    """A watcher reconnecting after the restore with the last resourceVersion it had seen."""

    from_rv: int
    status: int  # HTTP status of the watch request (410: too old, relist)
    event_rvs: tuple[int, ...] = ()  # resourceVersions of events it got, if it resumed
    relist_rv: int = 0  # the list resourceVersion when it relisted
    detail: str = ""

@dataclass(frozen=True)
class DeploymentSeen:
    key: str  # namespace/name
    replicas: int  # spec.replicas
    ready: int
    available: int
    pods_running: int  # non-terminating Running pods matching the selector

@dataclass
class StepRecord:
    """One step of an operator procedure, as run (the procedure records, a checker judges)."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
