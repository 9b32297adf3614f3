"""A small etcd v3 client over the gRPC-gateway JSON API (HTTPS with client certificates).

Why not etcdctl per operation: a process start costs ~30 ms, which caps a recorded workload at a
few dozen ops/s. Why not a gRPC stack: none is installed and the gateway is part of every etcd
server (`/v3/kv/put`, `/v3/kv/range`, `/v3/kv/txn`, `/v3/maintenance/*`), so this is the same
server code path with a JSON skin. Keys and values are base64 in the JSON; int64s come back as
strings.

Outcome classification matters for the checkers: an error is *definite* (the request certainly
did not take effect) only when nothing was sent, or when etcd refused it before proposing it to
raft (no leader, with the require-leader header). Everything else after sending -- timeouts,
"request timed out", "leader changed" -- is *indeterminate*: the write may still commit.
One client object holds one keep-alive connection and is not thread-safe: one per thread.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from kubedrill.etcd.tls import ClientTLS

# Errors etcd returns before a request reaches raft: the request certainly had no effect.
_DEFINITE_MARKERS = (
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: permission denied",
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "etcdserver: too many operations in txn request",
)


class EtcdError(Exception):
    """A request that did not succeed.

    definite=True: it certainly had no effect (never sent, or refused before raft).
    definite=False: it may or may not have taken effect (timeout, connection lost after send).
    timeout=True: no answer within the client timeout.
    """

    def __init__(self, message: str, *, definite: bool, timeout: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.definite = definite
        self.timeout = timeout
        self.code = code


def b64(s: str | bytes) -> str:
    raw = s.encode() if isinstance(s, str) else s
    return base64.b64encode(raw).decode()


def unb64(s: str | None) -> bytes:
    return base64.b64decode(s) if s else b""


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with prefix (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "KeyValue":
        return cls(
            key=unb64(d.get("key")),
            value=unb64(d.get("value")),
            create_revision=int(d.get("create_revision", 0)),
            mod_revision=int(d.get("mod_revision", 0)),
            version=int(d.get("version", 0)),
        )


@dataclass(frozen=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int
    more: bool
    count: int


@dataclass(frozen=True)
class CasResult:
    succeeded: bool
    revision: int
    current: bytes | None  # the value seen when the compare failed (None: key absent)


@dataclass(frozen=True)
class MemberStatus:
    member_id: int
    leader: int
    raft_term: int
    raft_index: int
    applied_index: int
    revision: int
    db_size: int
    version: str


def _int(d: dict[str, Any], *names: str) -> int:
    for n in names:
        if n in d:
            return int(d[n])
    return 0


class EtcdClient:
    """One HTTPS connection to one member's client URL.

    timeout bounds every request (connect + send + answer); a request without answer in time
    raises EtcdError(timeout=True, definite=False). `require_leader` sends the gRPC metadata
    etcd's interceptor checks, so a member that knows it has no leader answers at once
    ("no leader", definite) instead of letting the write wait out the server's request timeout.
    """

    def __init__(
        self,
        host: str,
        tls: ClientTLS,
        port: int = 2379,
        timeout: float = 2.0,
        require_leader: bool = True,
        server_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.require_leader = require_leader
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
        if tls.pair is not None:
            ctx.load_cert_chain(str(tls.pair.cert), str(tls.pair.key))
        self._ctx = ctx
        self._server_hostname = server_hostname
        self._conn: http.client.HTTPSConnection | None = None

    def __repr__(self) -> str:
        return f"EtcdClient(https://{self.host}:{self.port})"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "EtcdClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._ctx)
            try:
                conn.connect()
            except (socket.timeout, TimeoutError) as exc:
                conn.close()
                raise EtcdError(f"connect to {self.host}:{self.port} timed out after {self.timeout}s",
                                definite=True, timeout=True) from exc
            except (OSError, ssl.SSLError) as exc:
                conn.close()
                raise EtcdError(f"connect to {self.host}:{self.port} failed: {exc}", definite=True) from exc
            self._conn = conn
        return self._conn

    def call(self, path: str, body: dict[str, Any], local: bool = False) -> dict[str, Any]:
        """POST body to path; return the decoded JSON answer or raise EtcdError.

        local=True marks a request a member may answer on its own (serializable reads, status):
        it is sent without the require-leader header, so a member cut off from its leader still
        answers it -- which is the point of a serializable read.
        """
        conn = self._connect()
        headers = {"Content-Type": "application/json"}
        if self.require_leader and not local:
            headers["Grpc-Metadata-hasleader"] = "true"
        try:
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (socket.timeout, TimeoutError) as exc:
            self.close()
            raise EtcdError(f"{path} on {self.host}: no answer within {self.timeout}s", definite=False,
                            timeout=True) from exc
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            self.close()
            raise EtcdError(f"{path} on {self.host}: connection failed after sending: {exc!r}",
                            definite=False) from exc
        try:
            data: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise EtcdError(f"{path} on {self.host}: HTTP {resp.status}, not JSON: {raw[:200]!r}",
                            definite=False) from exc
        if resp.status != 200 or "error" in data or ("code" in data and "header" not in data):
            msg = str(data.get("error") or data.get("message") or raw[:200])
            definite = any(m in msg for m in _DEFINITE_MARKERS)
            raise EtcdError(f"{path} on {self.host}: HTTP {resp.status}: {msg}", definite=definite,
                            code=data.get("code"))
        return data

    # -- KV --------------------------------------------------------------------------------

    def put(self, key: str | bytes, value: str | bytes) -> int:
        """Write key=value; return the revision of the write."""
        d = self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        return _int(d.get("header", {}), "revision")

    def get(self, key: str | bytes, serializable: bool = False, revision: int = 0) -> tuple[KeyValue | None, int]:
        """Read one key; return (kv or None when absent, header revision)."""
        body: dict[str, Any] = {"key": b64(key)}
        if serializable:
            body["serializable"] = True
        if revision:
            body["revision"] = revision
        d = self.call("/v3/kv/range", body, local=serializable)
        kvs = d.get("kvs") or []
        return (KeyValue.from_json(kvs[0]) if kvs else None), _int(d.get("header", {}), "revision")

    def range(
        self,
        key: bytes,
        range_end: bytes,
        limit: int = 0,
        revision: int = 0,
        serializable: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        body: dict[str, Any] = {"key": b64(key), "range_end": b64(range_end)}
        if limit:
            body["limit"] = limit
        if revision:
            body["revision"] = revision
        if serializable:
            body["serializable"] = True
        if keys_only:
            body["keys_only"] = True
        d = self.call("/v3/kv/range", body, local=serializable)
        kvs = [KeyValue.from_json(x) for x in d.get("kvs") or []]
        return RangeResult(kvs, _int(d.get("header", {}), "revision"), bool(d.get("more")), _int(d, "count"))

    def scan_prefix(
        self, prefix: bytes, revision: int = 0, page: int = 1000, serializable: bool = False
    ) -> tuple[list[KeyValue], int]:
        """Every key under prefix (b"" = the whole keyspace), paginated, all pages at one revision.

        The first page fixes the revision (unless given), later pages ask for that same revision,
        so the result is one consistent cut even while writers keep writing.
        """
        # etcd's "every key": key "\0" with range_end "\0" (an empty key is rejected).
        start, end = (prefix, prefix_end(prefix)) if prefix else (b"\x00", b"\x00")
        out: list[KeyValue] = []
        rev = revision
        while True:
            r = self.range(start, end, limit=page, revision=rev, serializable=serializable)
            if not rev:
                rev = r.revision
            out.extend(r.kvs)
            if not r.more or not r.kvs:
                return out, rev
            start = r.kvs[-1].key + b"\x00"

    def cas(self, key: str | bytes, expected: str | bytes, new: str | bytes) -> CasResult:
        """Compare-and-swap in one txn: if value(key) == expected then put new else read key."""
        k = b64(key)
        d = self.call(
            "/v3/kv/txn",
            {
                "compare": [{"key": k, "target": "VALUE", "result": "EQUAL", "value": b64(expected)}],
                "success": [{"request_put": {"key": k, "value": b64(new)}}],
                "failure": [{"request_range": {"key": k}}],
            },
        )
        rev = _int(d.get("header", {}), "revision")
        if d.get("succeeded"):
            return CasResult(True, rev, None)
        current: bytes | None = None
        for r in d.get("responses") or []:
            rr = r.get("response_range") or r.get("responseRange")
            if rr and rr.get("kvs"):
                current = unb64(rr["kvs"][0].get("value"))
        return CasResult(False, rev, current)

    def put_many(self, items: list[tuple[bytes, bytes]]) -> int:
        """Write up to 128 keys in one txn (etcd's default --max-txn-ops); return the revision."""
        d = self.call(
            "/v3/kv/txn",
            {"success": [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in items]},
        )
        return _int(d.get("header", {}), "revision")

    # -- maintenance -----------------------------------------------------------------------

    def status(self) -> MemberStatus:
        d = self.call("/v3/maintenance/status", {}, local=True)
        h = d.get("header", {})
        return MemberStatus(
            member_id=_int(h, "member_id"),
            leader=_int(d, "leader"),
            raft_term=_int(d, "raftTerm", "raft_term"),
            raft_index=_int(d, "raftIndex", "raft_index"),
            applied_index=_int(d, "raftAppliedIndex", "raft_applied_index"),
            revision=_int(h, "revision"),
            db_size=_int(d, "dbSize", "db_size"),
            version=str(d.get("version", "")),
        )

    def hashkv(self, revision: int = 0) -> tuple[int, int]:
        """(hash of the MVCC keyspace up to revision, the revision hashed) -- `endpoint hashkv`."""
        d = self.call("/v3/maintenance/hashkv", {"revision": revision} if revision else {}, local=True)
        return int(d.get("hash", 0)), _int(d, "hash_revision", "hashRevision")

    def member_list(self) -> list[dict[str, Any]]:
        return list(self.call("/v3/cluster/member/list", {}, local=True).get("members") or [])
