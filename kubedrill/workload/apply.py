"""Put a workload on a cluster and take it off again, with real kubectl and bounded waits.

Each test's workload lives in its own namespace (kubedrill.cluster.namespaces: `kd-<purpose>-<6 hex>`,
labelled with the run and the owning process), so `sweep_namespaces` can remove what a killed run
left in a cluster that outlived it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.namespaces import (OWNER, PART_OF, RUN_ID, create_namespace, delete_namespace,  # noqa: F401
                                          owner_label, sweep_namespaces, unique_namespace)
from kubedrill.cluster.waits import until


def kubectl_input(docs: Iterable[dict[str, Any]]) -> str:
    """Objects as kubectl's stdin: one JSON document each, `---` between them.

    Why not YAML: PyYAML and kubectl disagree on which bare scalars are numbers. PyYAML writes
    "12e45" (a six-hex tag, a run id) or "1e3" (a user's label value) unquoted, since to it they
    are strings; kubectl's YAML reader takes them as floats and refuses the object ("cannot
    unmarshal number into ... labels of type string"). JSON quotes every string, and is YAML."""
    return "\n---\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n"  # UTF-8, not \\u escapes


def apply_docs(cluster: Cluster, docs: Iterable[dict[str, Any]], namespace: str | None = None) -> None:
    docs = list(docs)
    if namespace:
        for d in docs:
            if d.get("kind") not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"):
                d.setdefault("metadata", {})["namespace"] = namespace
    cluster.kubectl("apply", "-f", "-", input=kubectl_input(docs), timeout=120)


def pods_by_node(cluster: Cluster, namespace: str, selector: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in cluster.core().list_namespaced_pod(namespace, label_selector=selector).items:
        if p.metadata.deletion_timestamp is None and p.status.phase == "Running":
            out.setdefault(p.spec.node_name, []).append(p.metadata.name)
    return out


def wait_http(url: str, timeout: float = 60, expect: int = 200) -> str:
    import urllib.request

    def probe() -> tuple[bool, str]:
        with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - loopback only
            body = r.read(200).decode(errors="replace")
            return r.status == expect, f"HTTP {r.status}: {body[:100]}"

    return until(f"{url} to answer {expect}", probe, timeout, interval=1.0,
                 hint="check the Service's NodePort and the node's 127.0.0.1 port mapping")


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))
