"""LaggedEndpoints: a Service that learns about endpoint changes `lag_s` late, like a real load balancer.

Why: a pod without a preStop sleep closes its listener at SIGTERM, and whoever still routes new
connections to it gets "connection refused". In production the routers that lag are ingress
controllers, cloud load balancers and other nodes' proxies, typically by a second or more. Inside
one kind cluster kube-proxy alone reacts in about 0.1 s, so the race is real but too narrow to be
seen reliably. This stand-in makes the lag explicit and measurable instead of luck: a selectorless
NodePort Service whose EndpointSlice (managed here, not by the controller) copies the workload
Service's endpoints, including their ready/serving/terminating conditions, `lag_s` seconds after
they changed. Traffic through it is routed by the real kube-proxy to the real pods, only later.

Every change applied is recorded as a Recorder event "lb-endpoints" (ready pods), so the report
can show when the router stopped sending to a terminating pod. Bounded by `max_run_s`. Its Service
and EndpointSlice live in the workload's namespace: they go when the namespace goes (the deploy
path deletes Services first, so the node port is free at once).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from kubedrill.cluster.handle import Cluster
from kubedrill.record import Recorder

MANAGED_BY = "lagged-endpoints.kubedrill.io"
# One endpoint: (ip, ready, serving, terminating, node, pod)
Endpoint = tuple[str, bool, bool, bool, str, str]


class LagQueue:
    """States observed over time, released `lag_s` after they were first seen (pure, for testing).

    `observe(now, state)` notes a state; `due(now)` is the latest state first seen at least `lag_s`
    ago (the one a router `lag_s` behind would be using), or None before anything is that old.
    """

    def __init__(self, lag_s: float) -> None:
        self.lag_s = lag_s
        self._seen: deque[tuple[float, tuple[Endpoint, ...]]] = deque()

    def observe(self, now: float, state: tuple[Endpoint, ...]) -> None:
        if not self._seen or self._seen[-1][1] != state:
            self._seen.append((now, state))

    def due(self, now: float) -> tuple[Endpoint, ...] | None:
        state = None
        while self._seen and self._seen[0][0] <= now - self.lag_s:
            state = self._seen.popleft()[1]
        if state is not None:
            self._seen.appendleft((now - self.lag_s, state))  # the state in force stays the reference
        return state


class LaggedEndpoints:
    def __init__(self, cluster: Cluster, namespace: str, service: str, node_port: int | None, recorder: Recorder, *,
                 lag_s: float = 1.0, poll_s: float = 0.1, max_run_s: float = 1800) -> None:
        if lag_s < 0 or poll_s <= 0 or max_run_s <= 0:
            raise ValueError("lag_s must be >= 0, poll_s and max_run_s > 0")
        self.cluster, self.namespace, self.service, self.node_port = cluster, namespace, service, node_port
        self.recorder, self.lag_s, self.poll_s, self.max_run_s = recorder, lag_s, poll_s, max_run_s
        self.name = f"kd-lagged-{service}"[:63].rstrip("-")
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kd-lagged-lb-{service}", daemon=True)
        self._port: dict[str, Any] = {}
        self.applied: tuple[Endpoint, ...] | None = None

    def __enter__(self) -> "LaggedEndpoints":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading the real endpoints -----------------------------------------------------------
    def _read(self) -> tuple[tuple[Endpoint, ...], dict[str, Any]]:
        from kubernetes import client

        disc = client.DiscoveryV1Api(self._api)
        slices = disc.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.service}", _request_timeout=10).items
        eps: list[Endpoint] = []
        port: dict[str, Any] = {}
        for s in slices:
            if s.ports and not port:
                p = s.ports[0]
                port = {"name": p.name, "port": p.port, "protocol": p.protocol or "TCP"}
            for e in s.endpoints or []:
                c = e.conditions
                pod = (e.target_ref.name if e.target_ref is not None else None) or ""
                for ip in e.addresses or []:
                    eps.append((ip, bool(c and c.ready), bool(c and c.serving), bool(c and c.terminating),
                                e.node_name or "", pod))
        return tuple(sorted(eps)), port

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Create the Service and a first copy of the endpoints (no lag for the initial state)."""
        from kubernetes import client

        self._api = self.cluster.api_client()
        deadline = time.monotonic() + timeout
        eps, port = self._read()
        while not (eps and port) and time.monotonic() < deadline:
            time.sleep(0.5)
            eps, port = self._read()
        if not (eps and port):
            raise TimeoutError(f"Service {self.namespace}/{self.service} has no endpoints with a port after {timeout:g} s; "
                               "is its selector matching Ready pods?")
        self._port = port
        core = client.CoreV1Api(self._api)
        # Plain dicts: the client serialises them as they are (the typed stubs ask for model objects).
        core.create_namespaced_service(self.namespace, {  # type: ignore[arg-type]
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
            # node_port None: a ClusterIP Service, reached by pods in the cluster by its DNS name.
            "spec": {"type": "NodePort", "ports": [{"name": port["name"], "port": 80, "protocol": port["protocol"],
                                                     "nodePort": self.node_port}]} if self.node_port is not None else
                    {"type": "ClusterIP", "ports": [{"name": port["name"], "port": 80, "protocol": port["protocol"]}]},
        })
        self._write(eps, create=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _slice(self, eps: tuple[Endpoint, ...]) -> dict[str, Any]:
        endpoints = []
        for ip, ready, serving, terminating, node, pod in eps:
            ep: dict[str, Any] = {"addresses": [ip], "conditions": {"ready": ready, "serving": serving,
                                                                    "terminating": terminating}}
            if node:
                ep["nodeName"] = node
            if pod:
                ep["targetRef"] = {"kind": "Pod", "name": pod, "namespace": self.namespace}
            endpoints.append(ep)
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": self.name, "namespace": self.namespace,
                         "labels": {"kubernetes.io/service-name": self.name,
                                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
            "endpoints": endpoints, "ports": [self._port],
        }

    def _write(self, eps: tuple[Endpoint, ...], create: bool = False) -> None:
        from kubernetes import client

        disc = client.DiscoveryV1Api(self._api)
        body = self._slice(eps)
        if create:
            disc.create_namespaced_endpoint_slice(self.namespace, body)  # type: ignore[arg-type]
        else:
            disc.replace_namespaced_endpoint_slice(self.name, self.namespace, body)  # type: ignore[arg-type]
        self.applied = eps
        self.recorder.event("lb-endpoints", self.name, ready=sorted(e[5] or e[0] for e in eps if e[1]),
                            terminating=sorted(e[5] or e[0] for e in eps if e[3]))

    def _run(self) -> None:
        queue = LagQueue(self.lag_s)
        deadline = time.monotonic() + self.max_run_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                eps, _ = self._read()
                now = time.monotonic()
                queue.observe(now, eps)
                due = queue.due(now)
                if due is not None and due != self.applied:
                    self._write(due)
            except Exception as exc:  # noqa: BLE001 - keep mirroring; the error is evidence
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            self._stop.wait(self.poll_s)
