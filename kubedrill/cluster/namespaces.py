"""kubedrill's namespaces on a cluster: unique names, owner labels, and the sweep of leftovers.

Each namespace kubedrill creates is `kd-<purpose>-<6 hex>`, labelled `app.kubernetes.io/part-of=kubedrill`,
`kubedrill.io/run=<run id>` and `kubedrill.io/owner=<host>.<pid>`, so `sweep_namespaces` can remove
what a killed run left in a cluster that outlived it. They live in the cluster stage because every
stage above it makes namespaces: the deploy path (workload) and the in-cluster load generator (load).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid

from kubedrill.cluster.handle import Cluster, pid_alive

RUN_ID = os.environ.get("KUBEDRILL_RUN_ID") or uuid.uuid4().hex[:8]


PART_OF = "app.kubernetes.io/part-of"
OWNER = "kubedrill.io/owner"


def owner_label(pid: int | None = None) -> str:
    """<8 hex of this host's name>.<pid>: a valid label value naming the process that owns a namespace."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}.{os.getpid() if pid is None else pid}"


def unique_namespace(purpose: str) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in purpose.lower()).strip("-")[:30] or "ns"
    return f"kd-{safe}-{uuid.uuid4().hex[:6]}"


def create_namespace(cluster: Cluster, name: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {PART_OF: "kubedrill", "kubedrill.io/run": RUN_ID, OWNER: owner_label()}}}
    # JSON, not YAML: a run id like "656586e1" is a string to PyYAML but a number to kubectl's YAML parser.
    cluster.kubectl("apply", "-f", "-", input=json.dumps(doc), timeout=60)


def sweep_namespaces(cluster: Cluster) -> list[str]:
    """Delete kubedrill namespaces whose owner was a process on this host that is gone (a run killed
    with SIGKILL cannot clean up). Namespaces of live runs, and of other hosts, are left alone."""
    host = owner_label().split(".", 1)[0]
    gone: list[str] = []
    for ns in cluster.core().list_namespace(label_selector=f"{PART_OF}=kubedrill", _request_timeout=30).items:
        owner = (ns.metadata.labels or {}).get(OWNER, "")
        h, _, pid = owner.partition(".")
        if h != host or not pid.isdigit() or pid_alive(int(pid)) or ns.status.phase == "Terminating":
            continue
        gone.append(ns.metadata.name)
        delete_namespace(cluster, ns.metadata.name, wait=False)
    return gone


def delete_namespace(cluster: Cluster, name: str, wait: bool = True, timeout: float = 180) -> None:
    """Delete the namespace; uncordons nothing (node state is the disruption's job).

    Services go first and synchronously: NodePorts are cluster-wide, and the next workload on the
    same cluster must not find its nodePort still held by a namespace that is terminating.
    """
    cluster.kubectl("delete", "service", "--all", "-n", name, "--ignore-not-found", "--wait=true",
                    "--timeout=60s", timeout=90, check=False)
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", f"--wait={'true' if wait else 'false'}",
                    f"--timeout={int(timeout)}s", timeout=timeout + 30, check=False)
