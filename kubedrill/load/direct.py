"""Requests sent straight to one chosen pod, through `kubectl port-forward pod/NAME`.

Why: a Service picks the pod, so which pod holds a request is known only if the app names itself
(an X-Pod header), and no third-party server does. A port-forward reaches exactly the pod named,
on any cluster the API reaches (no node access, no routable pod IPs), and keeps working while
the pod terminates, until its container stops. So the drill knows the victim holds its slow
requests, and can ask the victim itself whether it still answers after the deletion.

One PortForward per purpose: kubectl may end a whole port-forward when one forwarded connection
fails (the pod refused it), which must not cut an in-flight download sharing it.
"""

from __future__ import annotations

import http.client
import re
import selectors
import subprocess
import threading
import time
from typing import Any

from kubedrill.cluster.handle import Cluster
from kubedrill.load.runner import LoadError
from kubedrill.record import Operation, Outcome, Recorder

_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


def container_port(pod: Any) -> int:
    """The first port the pod's first container declares (a V1Pod); what a port-forward connects to."""
    for c in pod.spec.containers:
        for p in c.ports or []:
            return int(p.container_port)
    raise LoadError(f"pod {pod.metadata.name} declares no containerPort, so kubedrill cannot send requests to it "
                    "directly; declare the serving port in the container's ports")


class PortForward:
    """`kubectl port-forward pod/<pod> :<port>` on 127.0.0.1; `url` once it listens."""

    def __init__(self, cluster: Cluster, namespace: str, pod: str, port: int, *, start_timeout: float = 20) -> None:
        self.cluster, self.namespace, self.pod, self.port = cluster, namespace, pod, port
        self.start_timeout = start_timeout
        self.local_port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []  # kubectl's last lines other than per-connection notices

    @property
    def url(self) -> str:
        if self.local_port is None:
            raise LoadError(f"port-forward to {self.namespace}/{self.pod} is not running")
        return f"http://127.0.0.1:{self.local_port}"

    def __enter__(self) -> "PortForward":
        argv = self.cluster.kubectl_argv("port-forward", "-n", self.namespace, "--address", "127.0.0.1",
                                         f"pod/{self.pod}", f":{self.port}")
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sel = selectors.DefaultSelector()
        assert self._proc.stdout is not None
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.start_timeout
        seen = ""
        try:
            while time.monotonic() < deadline and self._proc.poll() is None:
                if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self._proc.stdout.readline()
                    seen += line
                    if m := _FORWARDING.search(line):
                        self.local_port = int(m.group(1))
                        # kubectl writes a line per connection: keep its pipes drained, or it blocks.
                        for pipe in (self._proc.stdout, self._proc.stderr):
                            threading.Thread(target=self._drain, args=(pipe,), name=f"kd-pf-{self.pod}",
                                             daemon=True).start()
                        return self
        finally:
            sel.close()
        self.__exit__()
        err = self._proc.stderr.read()[-400:] if self._proc.stderr is not None else ""
        raise LoadError(f"kubectl port-forward to pod {self.namespace}/{self.pod} port {self.port} did not start "
                        f"within {self.start_timeout:g} s (output: {(seen + err).strip() or 'none'}); check the pod "
                        "is Running and that the port is the one its container listens on")

    def _drain(self, pipe: Any) -> None:
        for line in pipe:
            if "Handling connection" not in line:
                self.output.append(line.rstrip()[:300])
                del self.output[:-20]

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class DirectHealth:
    """GET `path` on one pod every `every_s` (fresh connection, short timeout) until stop(): whether
    the pod itself still answers, recorded as Operation(kind="direct GET <path>", result=<pod>)."""

    def __init__(self, url: str, path: str, pod: str, *, recorder: Recorder, every_s: float = 0.25,
                 timeout_s: float = 1.0, max_run_s: float = 300) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port, self.path, self.pod = host, int(port), path, pod
        self.recorder, self.every_s, self.timeout_s, self.max_run_s = recorder, every_s, timeout_s, max_run_s
        self._ops: list[Operation] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kd-direct-{pod}", daemon=True)

    def __enter__(self) -> "DirectHealth":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=self.timeout_s + 5)
            self.recorder.extend(self.operations)

    @property
    def operations(self) -> list[Operation]:
        return list(self._ops)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_run_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._ops.append(self._one())
            self._stop.wait(self.every_s)

    def _one(self) -> Operation:
        start = time.monotonic()
        outcome: Outcome = "fail"
        status, detail = 0, ""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            resp = conn.getresponse()
            status = resp.status
            resp.read()
            outcome, detail = ("ok", "") if 200 <= status < 400 else ("fail", f"HTTP {status}")
        except TimeoutError:
            outcome, detail = "unknown", f"no answer within {self.timeout_s:g} s"
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            conn.close()
        return Operation(kind=f"direct GET {self.path}", start=start, end=max(time.monotonic(), start),
                         outcome=outcome, client="direct", key=self.pod, value=status, result=self.pod, detail=detail)
