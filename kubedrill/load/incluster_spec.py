"""What kubedrill.load.incluster puts in its namespace: pure rendering, unit-tested without a cluster.

    ConfigMap  kd-locust-files   locustfile.py (kubedrill/load/locustfile.py, as is) and worker.sh
    Service    kd-locust-master  the master's port, so workers find it by DNS name
    Pod        kd-locust-master  locust --master --headless --expect-workers N -u USERS -r USERS -t RUN_TIME
    Deployment kd-locust-worker  N pods: worker.sh -> locust --worker, each appending one JSON line per
                                 request to /kd/out/requests.jsonl (an emptyDir: kept across restarts)

Why the locustfile travels in a ConfigMap: the image holds only python and locust, so changing the
request record needs no image rebuild and no new tag in every node. Only locustfile.py goes: the
pods write lines, and the runner parses them (kubedrill/load/requestlog.py stays on the runner,
where kubedrill.record is).

Why workers are a Deployment and the master a bare Pod: a worker evicted anyway (it avoids the
nodes under maintenance, but a drill may still reach it) is replaced, the new pod joins the master,
which gives it its share of the users (--enable-rebalancing; without it a late worker gets none),
and the load goes on, while the lost one is reported as a load gap. A master that went away would
end the run either way; a new one would start a new run, so it is not replaced.

Placement: `avoid_nodes` become required node anti-affinity (kubernetes.io/hostname NotIn), and
the pods tolerate nothing beyond the defaults, so they never land on a tainted (drained) node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
FILES = "kd-locust-files"
MASTER = "kd-locust-master"
WORKER = "kd-locust-worker"
MASTER_PORT = 5557
APP_LABEL = "app.kubernetes.io/name"
ROLE_LABEL = "kubedrill.io/locust-role"
RECORD_FILE = "/kd/out/requests.jsonl"
EXITED_FILE = "/kd/out/exited"
KUBEDRILL_IMAGE_REPO = "kubedrill/locust"

# The worker's entry point. It keeps the container (and its record file) alive after locust ends,
# so the runner can still read the last records; on SIGTERM (eviction) it passes the signal to
# locust, which flushes, and lingers a few seconds so the runner can read what was flushed.
WORKER_SH = f"""#!/bin/sh
# kubedrill in-cluster locust worker (rendered by kubedrill/load/incluster_spec.py).
rm -f {EXITED_FILE}
locust "$@" &
child=$!
term=""
trap 'term=1; kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"; code=$?
if [ -n "$term" ]; then wait "$child"; code=$?; fi
date +%s.%N > {EXITED_FILE}
echo "kd-locust-worker: locust exited with code $code" >&2
if [ -n "$term" ]; then sleep 8; exit 0; fi
trap 'exit 0' TERM INT
while :; do sleep 1; done
"""


@dataclass(frozen=True)
class LoadShape:
    """What the pods do: `users` locust users over `workers` pods, `rate` req/s in total."""

    url: str
    path: str = "/"
    users: int = 10
    rate: float = 20.0
    run_time: float = 120.0
    workers: int = 1
    request_timeout: float = 5.0
    keep_alive: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1 or self.users < self.workers:
            raise ValueError(f"users ({self.users}) must be >= workers ({self.workers}) >= 1: locust gives each worker "
                             "whole users")
        if self.rate <= 0 or self.run_time <= 0:
            raise ValueError(f"rate ({self.rate}) and run_time ({self.run_time}) must be > 0: every load is paced and bounded")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s)://HOST[:PORT] reachable from pods, got {self.url!r}")


def pull_policy(image: str) -> str:
    """kubedrill's own image is in no registry: never pull it (a missing one is ErrImageNeverPull,
    which names the cause), where pulling would ask Docker Hub for a name that is not ours."""
    return "Never" if image.startswith(KUBEDRILL_IMAGE_REPO + ":") else "IfNotPresent"


def _affinity(avoid_nodes: Sequence[str]) -> dict[str, Any]:
    if not avoid_nodes:
        return {}
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": sorted(avoid_nodes)}]}
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}}


def _env(shape: LoadShape) -> list[dict[str, str]]:
    values = {
        "KD_LOAD_OUT": "/kd/out",
        "KD_LOAD_FILE": RECORD_FILE,
        "KD_LOAD_PATH": shape.path,
        "KD_LOAD_RATE_PER_USER": repr(shape.rate / shape.users),
        "KD_LOAD_MAX_PER_USER": "0",
        "KD_LOAD_TIMEOUT": repr(shape.request_timeout),
        "KD_LOAD_KEEPALIVE": "1" if shape.keep_alive else "0",
        "PYTHONUNBUFFERED": "1",
    }
    return [{"name": k, "value": v} for k, v in values.items()]


# A drill that takes every worker in turn (rolling-drain) leaves the load pods only the control plane.
CONTROL_PLANE_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}


def _pod_spec(container: dict[str, Any], avoid_nodes: Sequence[str], grace: int, restart: str,
              control_plane_ok: bool = False) -> dict[str, Any]:
    return {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": grace,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        **_affinity(avoid_nodes),
        **({"tolerations": [CONTROL_PLANE_TOLERATION]} if control_plane_ok else {}),
        "containers": [container],
        "volumes": [{"name": "files", "configMap": {"name": FILES}}, {"name": "out", "emptyDir": {}}],
    }


def _container(name: str, image: str, command: list[str], shape: LoadShape) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy(image),
        "command": command,
        "env": _env(shape),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "files", "mountPath": "/kd/files"}, {"name": "out", "mountPath": "/kd/out"}],
    }


def master_command(shape: LoadShape, expect_wait: float) -> list[str]:
    return ["locust", "-f", "/kd/files/locustfile.py", "--master", "--master-bind-port", str(MASTER_PORT),
            "--headless", "--enable-rebalancing", "--expect-workers", str(shape.workers), "--expect-workers-max-wait", str(math.ceil(expect_wait)),
            "-u", str(shape.users), "-r", str(shape.users), "-t", f"{math.ceil(shape.run_time)}s",
            "--host", shape.url.rstrip("/"), "--stop-timeout", "2", "--only-summary", "--exit-code-on-error", "0",
            "--loglevel", "INFO"]


def worker_command() -> list[str]:
    return ["sh", "/kd/files/worker.sh", "-f", "/kd/files/locustfile.py", "--worker", "--master-host", MASTER,
            "--master-port", str(MASTER_PORT), "--loglevel", "INFO"]


def render(shape: LoadShape, image: str, run_label: str, avoid_nodes: Sequence[str] = (),
           expect_wait: float = 60.0, locustfile: str | None = None,
           control_plane_ok: bool = False) -> list[dict[str, Any]]:
    """Every object of one in-cluster load, for one namespace (kubectl apply -n NS).
    control_plane_ok: the pods tolerate the control-plane taint (for drills that take every worker)."""
    labels = {APP_LABEL: "kd-locust", "kubedrill.io/load": run_label}
    master_labels = {**labels, ROLE_LABEL: "master"}
    worker_labels = {**labels, ROLE_LABEL: "worker"}
    files = {"locustfile.py": LOCUSTFILE.read_text() if locustfile is None else locustfile, "worker.sh": WORKER_SH}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": FILES, "labels": labels}, "data": files},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": MASTER, "labels": labels},
         "spec": {"selector": master_labels, "ports": [{"name": "locust", "port": MASTER_PORT, "targetPort": MASTER_PORT}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": MASTER, "labels": master_labels},
         "spec": _pod_spec(_container("master", image, master_command(shape, expect_wait), shape), avoid_nodes,
                           grace=10, restart="Never", control_plane_ok=control_plane_ok)},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": WORKER, "labels": labels},
         "spec": {"replicas": shape.workers, "selector": {"matchLabels": worker_labels},
                  "template": {"metadata": {"labels": worker_labels},
                               "spec": _pod_spec(_container("worker", image, worker_command(), shape), avoid_nodes,
                                                 grace=15, restart="Always",
                                                 control_plane_ok=control_plane_ok)}}},
    ]
