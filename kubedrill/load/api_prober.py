"""A recorded write/read prober of the Kubernetes API, and a reconnecting watcher's first step.

Why not the official client: it retries inside urllib3 and pools connections in ways that hide
exactly what we measure (how long a client with a short timeout sees the API unavailable). This
speaks HTTPS to the kubeconfig's server (kind's 127.0.0.1 port, or the HA load balancer) with the
kubeconfig's client certificate, one keep-alive connection per prober, a fresh one after any error
-- what a client-go client with a timeout does -- or a new connection per request
(`fresh_connections`), as short-lived clients make.

It only records. Each probe is an Operation on the monotonic clock:
  put  (update of one ConfigMap, value = sequence number)   result {"rv": int}
  get  (read of the same ConfigMap)                          result {"rv": int, "value": str}
outcome ok; fail when the request certainly did not happen (connect refused / timed out, 4xx,
429); unknown when it was sent and no answer came in time or a 5xx said the storage timed out (a
write may still commit). Bounded by max_ops and max_duration_s.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import yaml

from kubedrill.record import Operation, Outcome, Recorder


@dataclass(frozen=True)
class ApiTarget:
    """Where and how to reach an API server, read from a kubeconfig context."""

    host: str
    port: int
    ssl_context: ssl.SSLContext

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, context: str | None = None) -> "ApiTarget":
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = context or doc.get("current-context")
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cl = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        url = urlparse(cl["server"])
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the API prober only talks to loopback API servers (kind); {cl['server']} is not one")
        sslctx = ssl.create_default_context(cadata=base64.b64decode(cl["certificate-authority-data"]).decode())
        # ssl wants files for the client pair: write them once to a private temp dir.
        d = Path(tempfile.mkdtemp(prefix="kd-api-"))
        os.chmod(d, 0o700)
        (d / "c.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
        (d / "c.key").write_bytes(base64.b64decode(user["client-key-data"]))
        sslctx.load_cert_chain(str(d / "c.crt"), str(d / "c.key"))
        return cls(url.hostname or "127.0.0.1", url.port or 443, sslctx)


class ApiError(Exception):
    def __init__(self, message: str, outcome: Outcome, status: int = 0) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status


class ApiConn:
    """One keep-alive HTTPS connection; any error closes it so the next call reconnects."""

    def __init__(self, target: ApiTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._conn: http.client.HTTPSConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, write: bool = False) -> dict[str, Any]:
        if self._conn is None:
            conn = http.client.HTTPSConnection(self.target.host, self.target.port, timeout=self.timeout,
                                               context=self.target.ssl_context)
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as exc:  # nothing sent: definitely not applied
                conn.close()
                raise ApiError(f"connect: {type(exc).__name__}: {exc}"[:200], "fail") from exc
            self._conn = conn
        conn = self._conn
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json", "Accept": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        except (socket.timeout, TimeoutError) as exc:
            self.close()
            raise ApiError(f"no answer within {self.timeout:g}s", "unknown") from exc
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            self.close()
            raise ApiError(f"connection lost: {type(exc).__name__}: {exc}"[:200], "unknown" if write else "fail") from exc
        try:
            data: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            data = {"raw": raw[:200].decode(errors="replace")}
        if resp.status >= 300:
            msg = str(data.get("message") or data.get("raw") or "")[:160]
            # 5xx from the API server on a write: storage timed out or was unreachable mid-request;
            # the write may or may not have been committed.
            outcome: Outcome = "unknown" if (write and resp.status >= 500) else "fail"
            raise ApiError(f"HTTP {resp.status}: {msg}", outcome, resp.status)
        return data


def configmap_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


class ApiProber:
    """Update and read one ConfigMap every `interval_s`, recording every request.

    Use as a context manager (`with ApiProber(...) as p:`); the ConfigMap is created on start.
    """

    def __init__(self, target: ApiTarget, namespace: str, recorder: Recorder, *, name: str = "kd-probe",
                 interval_s: float = 0.15, timeout_s: float = 1.0, max_ops: int = 20_000,
                 max_duration_s: float = 600.0, reads: bool = True, client: str = "api-prober",
                 fresh_connections: bool = False) -> None:
        if interval_s < 0.05:
            raise ValueError("interval_s below 50 ms would turn a prober into a load test")
        self.target, self.ns, self.rec, self.name = target, namespace, recorder, name
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.max_ops, self.max_duration_s, self.reads, self.client = max_ops, max_duration_s, reads, client
        # True: a new TCP+TLS connection for every request, as short-lived clients (kubectl) make:
        # each one is routed by the load balancer again, so a dead backend it still picks shows.
        self.fresh_connections = fresh_connections
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ops = 0

    def __enter__(self) -> "ApiProber":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        conn = ApiConn(self.target, timeout=10)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": self.name}, "data": {"seq": "0"}}
        try:
            conn.request("POST", configmap_path(self.ns), body, write=True)
        except ApiError as exc:
            if exc.status != 409:  # already exists is fine
                raise
        finally:
            conn.close()
        self._thread = threading.Thread(target=self._loop, name=f"kd-{self.client}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s * 2 + 5)

    def _one(self, conn: ApiConn, kind: str, seq: int) -> None:
        t0 = time.monotonic()
        path = configmap_path(self.ns, self.name)
        try:
            if kind == "put":
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": self.name, "namespace": self.ns},
                        "data": {"seq": str(seq)}}
                d = conn.request("PUT", path, body, write=True)
            else:
                d = conn.request("GET", path)
            md = d.get("metadata", {})
            result = {"rv": int(md.get("resourceVersion") or 0), "value": (d.get("data") or {}).get("seq")}
            op = Operation(kind, t0, time.monotonic(), "ok", self.client, self.name, str(seq) if kind == "put" else None,
                           result)
        except ApiError as exc:
            op = Operation(kind, t0, time.monotonic(), exc.outcome, self.client, self.name,
                           str(seq) if kind == "put" else None, None, str(exc))
        if self.fresh_connections:
            conn.close()
        self.rec.add(op)

    def _loop(self) -> None:
        conn = ApiConn(self.target, timeout=self.timeout_s)
        t_end = time.monotonic() + self.max_duration_s
        seq = 0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set() and self.ops < self.max_ops and time.monotonic() < t_end:
                seq += 1
                self._one(conn, "put", seq)
                self.ops += 1
                if self.reads:
                    self._one(conn, "get", seq)
                    self.ops += 1
                next_at += self.interval_s
                delay = next_at - time.monotonic()
                if delay < 0:  # fell behind (timeouts): do not burst to catch up
                    next_at = time.monotonic()
                    delay = 0.0
                self._stop.wait(delay)
        finally:
            conn.close()


def list_rv(target: ApiTarget, path: str, timeout: float = 10) -> int:
    """The resourceVersion of a LIST (the point a relisting informer starts from)."""
    conn = ApiConn(target, timeout)
    try:
        return int(conn.request("GET", path)["metadata"]["resourceVersion"])
    finally:
        conn.close()


def watch_from(target: ApiTarget, path: str, rv: int, seconds: int = 3) -> tuple[int, list[int], str]:
    """Reconnect a watch at `rv` as an informer does after a disconnect.

    Returns (status, event resourceVersions, detail): status is 410 when the server says the
    version is too old (an ERROR event with code 410, or HTTP 410), else the HTTP status.
    """
    conn = http.client.HTTPSConnection(target.host, target.port, timeout=seconds + 10, context=target.ssl_context)
    rvs: list[int] = []
    try:
        conn.request("GET", f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds={seconds}&allowWatchBookmarks=false",
                     headers={"Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            return resp.status, rvs, resp.read(300).decode(errors="replace")
        for line in resp:
            if not line.strip():
                continue
            ev = json.loads(line)
            obj = ev.get("object", {})
            if ev.get("type") == "ERROR":
                return int(obj.get("code") or 500), rvs, str(obj.get("message", ""))[:200]
            rvs.append(int(obj.get("metadata", {}).get("resourceVersion") or 0))
        return 200, rvs, f"{len(rvs)} events"
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
        return 0, rvs, f"{type(exc).__name__}: {exc}"[:200]
    finally:
        conn.close()


class LeaderWatcher:
    """Poll etcd's leader (endpoint status --cluster, asked on a surviving control plane) and
    record `leader-elected` the first time a leader other than `old` is reported by a quorum.

    The observation is taken every `interval_s` plus one `docker exec` (~0.1-0.3 s), so the
    election time it yields is an upper bound. `last_old_seen` is the last poll at which a member
    still named the old leader: a graceful stop keeps the leader leading until its etcd exits, so
    the leaderless gap is (election observed - last_old_seen). Bounded by max_duration_s.
    """

    def __init__(self, ask: Callable[[], list[dict[str, Any]]], rec: Recorder, old_leader: int, quorum: int,
                 names: dict[int, str], interval_s: float = 0.2, max_duration_s: float = 120.0) -> None:
        self.ask, self.rec, self.old, self.quorum, self.names = ask, rec, old_leader, quorum, names
        self.interval_s, self.max_duration_s = interval_s, max_duration_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.new_leader: int | None = None
        self.last_old_seen: float | None = None  # the last poll at which a member still named the old leader
        self.polls = 0

    def __enter__(self) -> "LeaderWatcher":
        self._thread = threading.Thread(target=self._loop, name="kd-leader-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        t_end = time.monotonic() + self.max_duration_s
        while not self._stop.is_set() and time.monotonic() < t_end and self.new_leader is None:
            self.polls += 1
            try:
                statuses = self.ask()
            except Exception:  # noqa: BLE001 - a poll that fails is just no observation
                statuses = []
            now = time.monotonic()
            votes: dict[int, int] = {}
            for s in statuses:
                lid = int(s["Status"].get("leader") or 0)
                if lid == self.old:
                    self.last_old_seen = now
                elif lid:
                    votes[lid] = votes.get(lid, 0) + 1
            for lid, n in votes.items():
                if n >= self.quorum:
                    self.new_leader = lid
                    self.rec.event("leader-elected", f"{self.names.get(self.old)} -> {self.names.get(lid)}",
                                   old=self.names.get(self.old, str(self.old)), new=self.names.get(lid, str(lid)),
                                   last_old_seen=self.last_old_seen)
            self._stop.wait(self.interval_s)
