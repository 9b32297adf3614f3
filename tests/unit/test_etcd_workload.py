"""The recorded workload and the checkers end to end, against a fake etcd on loopback.

The fake speaks the slice of etcd's JSON gateway the client uses (put, range with revision,
txn compare-and-swap, status) over TLS with client-cert auth. A correct fake must pass the
linearizability and lost-write checks; a fake that serves stale reads, or that acknowledges
writes it then drops, must be caught. No Docker needed.
"""

from __future__ import annotations

import base64
import http.server
import json
import random
import ssl
import threading
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from kubedrill.check.etcd_checks import check_lost_writes
from kubedrill.check.linearizability import check_linearizable
from kubedrill.check.verdict import Status
from kubedrill.etcd.client import EtcdClient, EtcdError
from kubedrill.etcd.tls import CertAuthority, ClientTLS
from kubedrill.load.etcd_workload import Endpoint, EtcdWorkload, EtcdLoadConfig, probe, readback
from kubedrill.record import Recorder


class FakeEtcd:
    """An in-memory MVCC register store with injectable bugs."""

    def __init__(self, bug: str = "") -> None:
        self.bug = bug
        self.lock = threading.Lock()
        self.rev = 1
        self.hist: dict[bytes, list[tuple[int, bytes, int, int]]] = {}  # key -> [(mod_rev, value, create, version)]
        self.rng = random.Random(5)
        self.puts = 0
        self.delay = 0.0
        self.error: str | None = None

    def _at(self, key: bytes, rev: int) -> tuple[int, bytes, int, int] | None:
        older = [e for e in self.hist.get(key, []) if e[0] <= rev]
        return older[-1] if older else None

    def _put(self, key: bytes, value: bytes) -> int:
        self.rev += 1
        self.puts += 1
        if self.bug == "lose-writes" and self.puts % 4 == 0:
            return self.rev  # acknowledged, never stored
        cur = self._at(key, self.rev)
        self.hist.setdefault(key, []).append((self.rev, value, cur[2] if cur else self.rev, (cur[3] + 1) if cur else 1))
        return self.rev

    def _kv(self, key: bytes, e: tuple[int, bytes, int, int]) -> dict[str, Any]:
        return {"key": base64.b64encode(key).decode(), "value": base64.b64encode(e[1]).decode(),
                "mod_revision": str(e[0]), "create_revision": str(e[2]), "version": str(e[3])}

    def handle(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.delay:
            time.sleep(self.delay)
        if self.error:
            return {"error": self.error, "code": 14, "message": self.error}
        with self.lock:
            hdr = lambda: {"revision": str(self.rev), "member_id": "1"}  # noqa: E731
            if path == "/v3/kv/put":
                self._put(base64.b64decode(body["key"]), base64.b64decode(body.get("value", "")))
                return {"header": hdr()}
            if path == "/v3/kv/range":
                key = base64.b64decode(body["key"])
                at = int(body.get("revision", 0)) or self.rev
                if self.bug == "stale-reads" and not body.get("revision") and self.rng.random() < 0.3:
                    versions = self.hist.get(key, [])
                    e = versions[-2] if len(versions) >= 2 else None
                else:
                    e = self._at(key, at)
                return {"header": hdr(), "kvs": [self._kv(key, e)] if e else [], "count": "1" if e else "0"}
            if path == "/v3/kv/txn":
                cmp = body["compare"][0]
                key = base64.b64decode(cmp["key"])
                e = self._at(key, self.rev)
                if e is not None and e[1] == base64.b64decode(cmp["value"]):
                    put = body["success"][0]["request_put"]
                    self._put(key, base64.b64decode(put["value"]))
                    return {"header": hdr(), "succeeded": True}
                return {"header": hdr(), "responses": [{"response_range": {"kvs": [self._kv(key, e)] if e else []}}]}
            if path == "/v3/maintenance/status":
                return {"header": hdr(), "leader": "1", "raftTerm": "2", "raftIndex": str(self.rev)}
        return {"error": f"unknown path {path}", "code": 12}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertAuthority, Path]:
    d = tmp_path_factory.mktemp("fake-etcd-pki")
    ca = CertAuthority.create(d / "ca")
    ca.issue_member(d / "srv", "fake", "127.0.0.1")
    return ca, d


@contextmanager
def serving(fake: FakeEtcd, pki: tuple[CertAuthority, Path]) -> Iterator[tuple[str, int, ClientTLS]]:
    ca, d = pki

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            out = json.dumps(fake.handle(self.path, body)).encode()
            self.send_response(200 if b'"error"' not in out else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.ca_cert))
    ctx.verify_mode = ssl.CERT_REQUIRED  # like --client-cert-auth
    ctx.load_cert_chain(str(d / "srv" / "server.crt"), str(d / "srv" / "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    client = ca.issue_client(d / "client", "client", "test")
    try:
        yield "127.0.0.1", srv.server_address[1], ClientTLS(ca.ca_cert, client)
    finally:
        srv.shutdown()
        srv.server_close()


def _run(fake: FakeEtcd, pki: tuple[CertAuthority, Path], seconds: float = 1.5) -> Recorder:
    with serving(fake, pki) as (host, port, tls):
        rec = Recorder()
        eps = [Endpoint("a", host, port), Endpoint("b", host, port)]
        cfg = EtcdLoadConfig(keys=3, clients_per_endpoint=2, max_duration_s=seconds, rate_per_client=0, max_ops=3000)
        load = EtcdWorkload(eps, tls, rec, cfg, seed=11)
        with load.running():
            time.sleep(seconds)
        assert not load.errors, load.errors
        readback(rec.history, eps[0], tls, rec)
        return rec


def test_correct_store_passes_every_check(pki: tuple[CertAuthority, Path]) -> None:
    rec = _run(FakeEtcd(), pki)
    kinds = {o.kind for o in rec.history}
    assert {"put", "get", "sget", "cas", "readback"} <= kinds
    assert len(rec.history) > 100
    lin = check_linearizable(rec.history)
    lost = check_lost_writes(rec.history)
    assert lin.status is Status.PASS, lin.reason
    assert lost.status is Status.PASS, lost.reason


def test_stale_reads_are_caught(pki: tuple[CertAuthority, Path]) -> None:
    rec = _run(FakeEtcd("stale-reads"), pki)
    v = check_linearizable(rec.history)
    assert v.status is Status.FAIL, v.reason


def test_dropped_acknowledged_writes_are_caught(pki: tuple[CertAuthority, Path]) -> None:
    rec = _run(FakeEtcd("lose-writes"), pki)
    v = check_lost_writes(rec.history)
    assert v.status is Status.FAIL and "lost" in v.reason, v.reason


def test_outcomes_are_classified(pki: tuple[CertAuthority, Path]) -> None:
    """Refused connection: fail. No leader: fail (refused before raft). Server-side timeout or
    client timeout: unknown (the write may still apply)."""
    fake = FakeEtcd()
    with serving(fake, pki) as (host, port, tls):
        rec = Recorder()
        ep = Endpoint("a", host, port)
        assert probe(ep, tls, rec, kind="put", count=1, timeout_s=1, key="k")[0].outcome == "ok"
        fake.error = "etcdserver: no leader"
        assert probe(ep, tls, rec, kind="put", count=1, timeout_s=1, key="k")[0].outcome == "fail"
        fake.error = "etcdserver: request timed out"
        assert probe(ep, tls, rec, kind="put", count=1, timeout_s=1, key="k")[0].outcome == "unknown"
        fake.error, fake.delay = None, 0.6
        slow = probe(ep, tls, rec, kind="put", count=1, timeout_s=0.2, key="k")[0]
        assert slow.outcome == "unknown" and slow.latency < 0.5, slow
        fake.delay = 0
    # Nobody listens there any more: refused before anything was sent.
    with pytest.raises(EtcdError) as err, EtcdClient(host, tls, port, timeout=1) as c:
        c.put("k", "v")
    assert err.value.definite


def test_client_without_cert_is_refused_by_a_cert_checking_server(pki: tuple[CertAuthority, Path]) -> None:
    with serving(FakeEtcd(), pki) as (host, port, tls):
        with pytest.raises(EtcdError), EtcdClient(host, ClientTLS(tls.ca, None), port, timeout=2) as c:
            c.put("k", "v")


def test_workload_is_bounded_by_count(pki: tuple[CertAuthority, Path]) -> None:
    with serving(FakeEtcd(), pki) as (host, port, tls):
        rec = Recorder()
        cfg = EtcdLoadConfig(max_ops=50, rate_per_client=0, clients_per_endpoint=3)
        load = EtcdWorkload([Endpoint("a", host, port)], tls, rec, cfg, seed=1)
        t0 = time.monotonic()
        with load.running():
            load.wait_ops(50, timeout=10)
            time.sleep(0.2)
        assert len(rec.history) == 50 and time.monotonic() - t0 < 10
