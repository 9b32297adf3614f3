"""A known set of Kubernetes objects to restore: seeded before a snapshot, changed after it.

Why these objects: each kind exercises a different restore property. ConfigMaps carry a payload
and its sha256 (content must come back byte for byte); Secrets the same through encryption-at-rest
paths; Namespaces have a lifecycle (one deleted after the snapshot must come back Active); and
Deployments need controllers to converge (one scaled up after the snapshot must shed the extra
pod, one deleted must get its pods back, one created after must vanish with its containers). The
pods run the pause image that every kind node already has (imagePullPolicy Never: no registry).

Every object carries the label `kubedrill.io/cluster-etcd=<tag>`, so one `kubectl get -A -l`
reads the whole inventory. `changes` lists what was changed after the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubedrill.record.objects import Change, DeploymentSeen, Inventory, inventory, object_key
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.namespaces import OWNER, owner_label
from kubedrill.cluster.waits import until
from kubedrill.workload.apply import kubectl_input

LABEL = "kubedrill.io/cluster-etcd"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"


def _payload(name: str, size: int = 512) -> dict[str, str]:
    body = (name + ":" + os.urandom(size).hex())[: size * 2]
    return {"payload": body, "sha256": hashlib.sha256(body.encode()).hexdigest()}


@dataclass
class KnownObjects:
    """The object set of one restore drill (names derive from `tag`)."""

    cluster: Cluster
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    configmaps: int = 12
    secrets: int = 4
    changes: list[Change] = field(default_factory=list)

    @property
    def ns(self) -> str:
        return f"kd-cetcd-{self.tag}"

    @property
    def ns_keep(self) -> str:
        return f"{self.ns}-keep"

    @property
    def ns_gone(self) -> str:
        return f"{self.ns}-gone"

    @property
    def ns_late(self) -> str:
        return f"{self.ns}-late"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.tag, "app.kubernetes.io/part-of": "kubedrill"}

    # --- documents ---------------------------------------------------------------------------
    def _meta(self, name: str, ns: str | None = None) -> dict[str, Any]:
        md: dict[str, Any] = {"name": name, "labels": dict(self.labels)}
        if ns:
            md["namespace"] = ns
        return md

    def namespace(self, name: str) -> dict[str, Any]:
        # The owner label lets the next run's sweeper remove the namespace if this run is killed.
        md = self._meta(name)
        md["labels"][OWNER] = owner_label()
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": md}

    def configmap(self, name: str, ns: str | None = None) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self._meta(name, ns or self.ns), "data": _payload(name)}

    def secret(self, name: str, ns: str | None = None) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": self._meta(name, ns or self.ns), "type": "Opaque",
                "stringData": _payload(name, 128)}

    def deployment(self, name: str, replicas: int, ns: str | None = None) -> dict[str, Any]:
        sel = {"app": name, LABEL: self.tag}
        return {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": self._meta(name, ns or self.ns),
            "spec": {
                "replicas": replicas, "selector": {"matchLabels": sel},
                "template": {"metadata": {"labels": sel}, "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never",
                                    "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}},
            },
        }

    # --- actions -----------------------------------------------------------------------------
    def _apply(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        p = self.cluster.kubectl("apply", "-o", "json", "-f", "-", input=kubectl_input(docs), timeout=120)
        out = json.loads(p.stdout)
        return list(out.get("items", [out]))

    def seed(self, timeout: float = 240) -> None:
        """Create the pre-snapshot set and wait until its Deployments are available."""
        self._apply([self.namespace(n) for n in (self.ns, self.ns_keep, self.ns_gone)])
        docs: list[dict[str, Any]] = [self.configmap(f"cm-{i}") for i in range(self.configmaps)]
        docs += [self.secret(f"sec-{i}") for i in range(self.secrets)]
        docs += [self.configmap("cm-keep", self.ns_keep), self.configmap("cm-in-gone", self.ns_gone)]
        docs += [self.deployment("dep-stable", 2), self.deployment("dep-scaled", 1), self.deployment("dep-deleted", 1)]
        self._apply(docs)
        for d in ("dep-stable", "dep-scaled", "dep-deleted"):
            self.wait_available(d, timeout)

    def change_after_snapshot(self, timeout: float = 240) -> None:
        """Create, update and delete objects; record each as a Change the restore must undo."""
        ch = self.changes
        created = self._apply([self.namespace(self.ns_late)])
        created += self._apply([self.configmap(f"cm-late-{i}") for i in range(3)]
                               + [self.secret("sec-late"), self.configmap("cm-in-late", self.ns_late),
                                  self.deployment("dep-late", 2)])
        for d in created:
            ch.append(Change("create", _key(d), int(d["metadata"]["resourceVersion"])))
        updated = self._apply([self.configmap(f"cm-{i}") for i in range(3)] + [self.secret("sec-0")])
        for d in updated:
            ch.append(Change("update", _key(d), int(d["metadata"]["resourceVersion"])))
        p = self.cluster.kubectl("scale", "deployment/dep-scaled", "-n", self.ns, "--replicas=3", "-o", "json", timeout=60)
        ch.append(Change("update", object_key("Deployment", self.ns, "dep-scaled"),
                         int(json.loads(p.stdout)["metadata"]["resourceVersion"])))
        for kind, name in (("configmap", "cm-3"), ("configmap", "cm-4"), ("secret", "sec-1"), ("deployment", "dep-deleted")):
            self.cluster.kubectl("delete", kind, name, "-n", self.ns, "--wait=false", timeout=60)
            ch.append(Change("delete", object_key({"configmap": "ConfigMap", "secret": "Secret",
                                                   "deployment": "Deployment"}[kind], self.ns, name)))
        self.cluster.kubectl("delete", "namespace", self.ns_gone, "--wait=false", timeout=60)
        ch.append(Change("delete", object_key("Namespace", "", self.ns_gone)))
        self.wait_available("dep-late", timeout)
        self.wait_available("dep-scaled", timeout, replicas=3)

    def wait_available(self, name: str, timeout: float, replicas: int | None = None) -> None:
        def probe() -> tuple[bool, str]:
            d = self.deployment_seen(name)
            if d is None:
                return False, "not found"
            want = replicas if replicas is not None else d.replicas
            return d.ready == want and d.pods_running == want, str(d)

        until(f"deployment {self.ns}/{name} to have its pods ready", probe, timeout, interval=1.0,
              hint=f"the pods run {PAUSE_IMAGE} with imagePullPolicy Never: it must be in every node's containerd")

    # --- reading -----------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        """Every labelled object, as the API lists it (a LIST: what clients see, cache included)."""
        p = self.cluster.kubectl("get", "namespaces,configmaps,secrets,deployments", "-A", "-l", f"{LABEL}={self.tag}",
                                 "-o", "json", timeout=60)
        return inventory(json.loads(p.stdout)["items"])

    def deployment_seen(self, name: str) -> DeploymentSeen | None:
        """The Deployment's status and its Running+ready pods; None when it does not exist."""
        p = self.cluster.kubectl("get", "deployment", name, "-n", self.ns, "-o", "json", "--ignore-not-found",
                                 timeout=30)
        if not p.stdout.strip():
            return None
        d = json.loads(p.stdout)
        pods = json.loads(self.cluster.kubectl("get", "pods", "-n", self.ns, "-l", f"app={name}", "-o", "json",
                                               timeout=30).stdout)["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
                   and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        st = d.get("status", {})
        return DeploymentSeen(f"{self.ns}/{name}", int(d["spec"].get("replicas", 0)), int(st.get("readyReplicas", 0)),
                              int(st.get("availableReplicas", 0)), len(running))

    def expected_replicas(self) -> dict[str, int]:
        """The Deployments as the snapshot had them (dep-late did not exist)."""
        return {f"{self.ns}/dep-stable": 2, f"{self.ns}/dep-scaled": 1, f"{self.ns}/dep-deleted": 1}

    def post_snapshot_containers(self) -> dict[str, list[str]]:
        """node -> running containers of dep-late pods (which only the discarded state had)."""
        out: dict[str, list[str]] = {}
        for node in self.cluster.all_nodes:
            p = self.cluster.node_exec(node, "crictl", "ps", "-o", "json", "--label",
                                       f"io.kubernetes.pod.namespace={self.ns}", check=False, timeout=30)
            try:
                cs = json.loads(p.stdout or "{}").get("containers", [])
            except json.JSONDecodeError:
                cs = []
            out[node] = [c["labels"].get("io.kubernetes.pod.name", "?") for c in cs
                         if c["labels"].get("io.kubernetes.pod.name", "").startswith("dep-late-")]
        return out

    def delete(self) -> None:
        for n in (self.ns, self.ns_keep, self.ns_gone, self.ns_late):
            self.cluster.kubectl("delete", "namespace", n, "--ignore-not-found", "--wait=false", timeout=60, check=False)


def _key(doc: dict[str, Any]) -> str:
    md = doc["metadata"]
    return object_key(doc["kind"], md.get("namespace") or "", md["name"])
