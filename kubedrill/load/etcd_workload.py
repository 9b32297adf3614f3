"""A recorded etcd workload: concurrent clients doing put, linearizable get, serializable get and
compare-and-swap on a small set of keys, every operation timestamped on the monotonic clock.

It only records; checkers judge later. Bounded three ways: total operations, wall time, and a
per-client rate cap (so two shared cores are not saturated and histories stay checkable).
Values are unique per write ("<client>-<seq>"), which lets the linearizability checker and the
lost-write check identify exactly which write a read observed.
Outcomes: ok; fail when etcd certainly did not apply it (connection refused, "no leader");
unknown when the client timed out or lost the connection after sending.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from kubedrill.etcd.client import EtcdClient, EtcdError
from kubedrill.etcd.cluster import Member
from kubedrill.etcd.tls import ClientTLS
from kubedrill.record import Operation, Recorder


@dataclass(frozen=True)
class Endpoint:
    """Where a client sends requests: a member's name and IP."""

    name: str
    host: str
    port: int = 2379


def endpoints(members: Iterable[Member]) -> list[Endpoint]:
    """Endpoints for etcd cluster members: each member's client port on its own IP."""
    return [Endpoint(m.name, m.ip) for m in members]


@dataclass(frozen=True)
class EtcdLoadConfig:
    key_prefix: str = "kd/"
    keys: int = 8
    clients_per_endpoint: int = 1
    op_timeout_s: float = 2.0
    max_ops: int = 20_000
    max_duration_s: float = 60.0
    rate_per_client: float = 40.0  # ops/s cap per client; 0 = as fast as the client can go
    backoff_after_error_s: float = 0.05  # so a refused connection does not flood the record
    mix: dict[str, float] = field(default_factory=lambda: {"put": 0.3, "get": 0.3, "sget": 0.1, "cas": 0.3})

    def key(self, i: int) -> str:
        return f"{self.key_prefix}k{i}"


def _outcome(exc: EtcdError) -> str:
    return "fail" if exc.definite else "unknown"


class EtcdWorkload:
    """Start with `running()`; each client thread is pinned to one endpoint (a member), so a
    disruption of that member shows up in that client's record."""

    def __init__(
        self, endpoints: Sequence[Endpoint], tls: ClientTLS, recorder: Recorder, config: EtcdLoadConfig | None = None,
        seed: int = 0,
    ) -> None:
        if not endpoints:
            raise ValueError("a workload needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.tls = tls
        self.rec = recorder
        self.cfg = config or EtcdLoadConfig()
        self.seed = seed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._count = 0
        self._count_lock = threading.Lock()
        self.errors: list[str] = []

    # -- the client loop -------------------------------------------------------------------------

    def _take_ticket(self) -> bool:
        with self._count_lock:
            if self._count >= self.cfg.max_ops:
                return False
            self._count += 1
            return True

    def _client_loop(self, cid: str, ep: Endpoint, rng: random.Random, deadline: float) -> None:
        cfg = self.cfg
        kinds = list(cfg.mix)
        weights = [cfg.mix[k] for k in kinds]
        seen: dict[str, str | None] = {}
        seq = 0
        period = 1.0 / cfg.rate_per_client if cfg.rate_per_client > 0 else 0.0
        client = EtcdClient(ep.host, self.tls, ep.port, timeout=cfg.op_timeout_s)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline and self._take_ticket():
                kind = rng.choices(kinds, weights)[0]
                key = cfg.key(rng.randrange(cfg.keys))
                seq += 1
                value: object = None
                start = time.monotonic()
                result: dict[str, object] | None = None
                outcome = "ok"
                detail = ""
                try:
                    if kind == "put":
                        value = f"{cid}-{seq}"
                        rev = client.put(key, str(value))
                        result = {"revision": rev}
                        seen[key] = str(value)
                    elif kind in ("get", "sget"):
                        kv, rev = client.get(key, serializable=(kind == "sget"))
                        got = kv.value.decode() if kv else None
                        result = {"value": got, "revision": rev, "mod_revision": kv.mod_revision if kv else 0}
                        if kind == "get":
                            seen[key] = got
                    else:
                        expected = seen.get(key) or f"{cid}-never"
                        new = f"{cid}-{seq}"
                        value = {"expected": expected, "new": new}
                        r = client.cas(key, expected, new)
                        cur = r.current.decode() if r.current is not None else None
                        result = {"succeeded": r.succeeded, "current": cur, "revision": r.revision}
                        seen[key] = new if r.succeeded else cur
                except EtcdError as exc:
                    outcome = _outcome(exc)
                    detail = str(exc)[:300]
                end = time.monotonic()
                self.rec.add(Operation(kind, start, end, outcome, cid, key, value, result, detail))  # type: ignore[arg-type]
                if outcome != "ok":
                    self._stop.wait(cfg.backoff_after_error_s)
                if period:
                    rest = period - (time.monotonic() - start)
                    if rest > 0:
                        self._stop.wait(rest)
        except Exception as exc:  # noqa: BLE001 - a crashed client must be visible, not silent
            self.errors.append(f"client {cid}: {exc!r}")
        finally:
            client.close()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        deadline = time.monotonic() + self.cfg.max_duration_s
        master = random.Random(self.seed)
        for ep in self.endpoints:
            for j in range(self.cfg.clients_per_endpoint):
                cid = f"{ep.name}.{j}"
                t = threading.Thread(target=self._client_loop, args=(cid, ep, random.Random(master.random()), deadline),
                                     name=f"kd-etcd-load-{cid}", daemon=True)
                self._threads.append(t)
        self.rec.event("workload-start", f"{len(self._threads)} clients", clients=len(self._threads))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop and join every client; bounded by op timeout + 5 s."""
        self._stop.set()
        limit = timeout if timeout is not None else self.cfg.op_timeout_s + 5
        end = time.monotonic() + limit
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        self.rec.event("workload-stop", f"{len(self.rec.history)} ops recorded")
        if alive:
            raise TimeoutError(f"expected workload clients to stop within {limit:.0f}s; still running: {alive}. "
                               "A request is hanging past its timeout: check the client timeout handling.")

    @contextmanager
    def running(self) -> Iterator["EtcdWorkload"]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def wait_ops(self, n: int, timeout: float) -> None:
        """Block until at least n operations completed ok (e.g. before injecting a fault)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for o in self.rec.history if o.outcome == "ok") >= n:
                return
            time.sleep(0.05)
        ok = sum(1 for o in self.rec.history if o.outcome == "ok")
        raise TimeoutError(f"expected {n} ok operations within {timeout:.0f}s, saw {ok}; errors: {self.errors[:3]}. "
                           "Is the cluster healthy and the client cert valid?")


def readback(history: Sequence[Operation], endpoint: Endpoint, tls: ClientTLS, recorder: Recorder,
             threads: int = 4, timeout: float = 5.0) -> int:
    """Read every acknowledged write back at its revision (`get key --rev R`) and record it.

    Runs after the workload, against a healthy member; feeds check_lost_writes. Returns the
    number of readbacks recorded.
    """
    # Load never imports checks (layering): acknowledged = ok put, or ok cas that succeeded.
    todo = sorted({
        (str(op.key), int(op.result["revision"])) for op in history
        if op.outcome == "ok" and isinstance(op.result, dict)
        and (op.kind == "put" or (op.kind == "cas" and op.result.get("succeeded")))
    })
    if not todo:
        return 0
    local = threading.local()
    clients: list[EtcdClient] = []

    def one(item: tuple[str, int]) -> Operation:
        if not hasattr(local, "c"):
            local.c = EtcdClient(endpoint.host, tls, endpoint.port, timeout=timeout)
            clients.append(local.c)
        key, rev = item
        t0 = time.monotonic()
        try:
            kv, _ = local.c.get(key, revision=rev)
            res = {"value": kv.value.decode() if kv else None, "mod_revision": kv.mod_revision if kv else 0}
            return Operation("readback", t0, time.monotonic(), "ok", "readback", key, {"revision": rev}, res)
        except EtcdError as exc:
            return Operation("readback", t0, time.monotonic(), _outcome(exc), "readback", key, {"revision": rev},  # type: ignore[arg-type]
                             None, str(exc)[:200])

    try:
        with ThreadPoolExecutor(threads) as pool:
            ops = list(pool.map(one, todo))
    finally:
        for c in clients:
            c.close()
    recorder.extend(ops)
    return len(ops)


def probe(
    endpoint: Endpoint, tls: ClientTLS, recorder: Recorder, *, kind: str, count: int, timeout_s: float,
    key: str, gap_s: float = 0.1, client_id: str | None = None,
) -> list[Operation]:
    """A few sequential operations through one member, recorded like workload ops.

    kind: put | get | sget. Used by the quorum suite to ask "can this member write / read now?".
    Each op is bounded by timeout_s; the whole probe by count * (timeout_s + gap_s).
    """
    cid = client_id or f"probe-{endpoint.name}"
    out: list[Operation] = []
    with EtcdClient(endpoint.host, tls, endpoint.port, timeout=timeout_s) as c:
        for i in range(count):
            t0 = time.monotonic()
            value: object = None
            try:
                if kind == "put":
                    value = f"{cid}-{t0:.6f}-{i}"
                    rev = c.put(key, str(value))
                    op = Operation("put", t0, time.monotonic(), "ok", cid, key, value, {"revision": rev})
                else:
                    kv, rev = c.get(key, serializable=(kind == "sget"))
                    res = {"value": kv.value.decode() if kv else None, "revision": rev}
                    op = Operation(kind, t0, time.monotonic(), "ok", cid, key, None, res)
            except EtcdError as exc:
                op = Operation(kind, t0, time.monotonic(), _outcome(exc), cid, key, value, None, str(exc)[:300])  # type: ignore[arg-type]
            recorder.add(op)
            out.append(op)
            if i + 1 < count:
                time.sleep(gap_s)
    return out


def probe_many(
    endpoints: Sequence[Endpoint], tls: ClientTLS, recorder: Recorder, *, kind: str, count: int, timeout_s: float,
    key: str, gap_s: float = 0.1,
) -> dict[str, list[Operation]]:
    """probe() through several members at once, so asking N members costs one probe's time."""
    with ThreadPoolExecutor(max(1, len(endpoints))) as pool:
        futs = {ep.name: pool.submit(probe, ep, tls, recorder, kind=kind, count=count, timeout_s=timeout_s,
                                     key=key, gap_s=gap_s) for ep in endpoints}
        return {name: f.result() for name, f in futs.items()}


@dataclass(frozen=True)
class Dataset:
    """What load_dataset wrote: keys, value bytes, the revision after the last write, time taken."""

    prefix: str
    keys: int
    value_bytes: int
    revision: int
    seconds: float


def dataset_value_size(rng: random.Random) -> int:
    """Mixed sizes like a Kubernetes keyspace: mostly small objects, some medium, a few large."""
    r = rng.random()
    if r < 0.80:
        return rng.randint(32, 512)
    if r < 0.98:
        return rng.randint(1024, 4096)
    return rng.randint(16 * 1024, 32 * 1024)


def load_dataset(endpoint: Endpoint, tls: ClientTLS, n_keys: int, *, prefix: str = "kd/data/", seed: int = 0,
                 threads: int = 2, value_size: Callable[[random.Random], int] = dataset_value_size,
                 max_batch_bytes: int = 1 << 20, timeout_s: float = 30.0) -> Dataset:
    """Write n_keys keys of mixed sizes in txn batches (<= 128 ops, <= 1 MiB each).

    Deterministic for a seed (values are seeded random bytes). Bounded: each batch has its own
    timeout, and any failed batch raises -- a dataset with holes would make the restore check
    compare against something nobody wrote.
    """
    rng = random.Random(seed)
    batches: list[list[tuple[bytes, bytes]]] = [[]]
    size = 0
    total = 0
    for i in range(n_keys):
        v = rng.randbytes(value_size(rng))
        total += len(v)
        if len(batches[-1]) >= 128 or size + len(v) > max_batch_bytes:
            batches.append([])
            size = 0
        batches[-1].append((f"{prefix}{i:08d}".encode(), v))
        size += len(v)
    local = threading.local()
    clients: list[EtcdClient] = []
    revs: list[int] = []

    def write(batch: list[tuple[bytes, bytes]]) -> int:
        if not hasattr(local, "c"):
            local.c = EtcdClient(endpoint.host, tls, endpoint.port, timeout=timeout_s)
            clients.append(local.c)
        return local.c.put_many(batch)

    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(threads) as pool:
            revs = list(pool.map(write, [b for b in batches if b]))
    finally:
        for c in clients:
            c.close()
    return Dataset(prefix, n_keys, total, max(revs, default=0), time.monotonic() - t0)
