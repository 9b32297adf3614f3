"""Snapshot and restore: a snapshot restored into new data dirs gives back exactly the data at
snapshot time -- every key, value and revision -- and nothing written after it.

A 3-member source cluster is loaded with a dataset of mixed value sizes (--etcd-snapshot-keys,
default 20000), a writer keeps writing while `etcdctl snapshot save` runs over TLS and after it,
and `etcdutl snapshot status` reports hash, revision, keys and size. The snapshot-time state is
read back from the source itself with `get --rev R` (etcd keeps old revisions), so the
expectation does not depend on our own bookkeeping. The snapshot is restored with
`etcdutl snapshot restore` into a 1-member and a 3-member cluster (new token, new
--initial-cluster), started, and compared key by key, plus `hashkv` at R against the source.
Damaged snapshots (truncated, one bit flipped) and a non-empty target data dir must be refused,
and none of that may touch the source cluster.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.etcd import ClusterFactory, EtcdRun
from kubedrill.check.etcd_checks import KV, check_hashes_equal, check_restored_state
from kubedrill.check.verdict import Verdict, combine
from kubedrill.etcd.client import EtcdError, KeyValue
from kubedrill.etcd.cluster import EtcdCluster
from kubedrill.etcd.tools import snapshot_restore, snapshot_save, snapshot_status
from kubedrill.load.etcd_workload import Dataset, endpoints, load_dataset
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.needs_docker]

MB = 1e6


def _state(kvs: list[KeyValue]) -> dict[bytes, KV]:
    return {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version) for kv in kvs}


@dataclass
class SnapshotFile:
    path: Path
    sha256: str
    size: int
    status: dict[str, int | str]
    revision: int
    expected: dict[bytes, KV]  # the source keyspace at `revision`
    source_hash: int  # source hashkv at `revision`
    post_keys: list[bytes]  # keys first written after the snapshot
    save_wall_s: float
    fetch_s: float | None  # etcdctl's own "took" for the transfer
    dataset: Dataset


@pytest.fixture(scope="module")
def source(etcd_module_cluster: ClusterFactory) -> EtcdCluster:
    return etcd_module_cluster(3, tag="snap")


class _Writer:
    """Keeps writing new keys and overwriting dataset keys until stopped (bounded: 20000 writes)."""

    def __init__(self, cluster: EtcdCluster, ds: Dataset) -> None:
        self.cluster = cluster
        self.ds = ds
        self.stop = threading.Event()
        self.written: list[tuple[bytes, int]] = []
        self.errors: list[str] = []
        self.t = threading.Thread(target=self._run, daemon=True, name="kd-snapshot-writer")

    def _run(self) -> None:
        with self.cluster.members[1].client(timeout=5) as c:
            for i in range(20_000):
                if self.stop.is_set():
                    return
                key = f"kd/post/{i:06d}" if i % 2 else f"{self.ds.prefix}{(i * 7919) % self.ds.keys:08d}"
                try:
                    self.written.append((key.encode(), c.put(key, f"after-{i}")))
                except EtcdError as exc:
                    self.errors.append(str(exc))
                time.sleep(0.005)


@pytest.fixture(scope="module")
def snapshot(source: EtcdCluster, etcd_run: EtcdRun, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> SnapshotFile:
    n = int(request.config.getoption("etcd_snapshot_keys"))
    ds = load_dataset(endpoints(source.members)[0], etcd_run.tls, n, seed=etcd_run.seed)
    path = tmp_path_factory.mktemp("snapshots") / "etcd.snapshot.db"
    writer = _Writer(source, ds)
    writer.t.start()
    try:
        saved = snapshot_save(source, source.members[0], path)
        assert saved.ok, saved.explain()
        st = snapshot_status(etcd_run.image, etcd_run.run_id, path)
        assert st.ok, st.explain()
        status = json.loads(st.stdout)
        rev = int(status["revision"])
        with source.members[0].client(timeout=30) as c:
            kvs, got_rev = c.scan_prefix(b"", revision=rev)
            source_hash, _ = c.hashkv(rev)
            deadline = time.monotonic() + 20
            while c.status().revision < rev + 50 and time.monotonic() < deadline:
                time.sleep(0.1)  # make sure writes after the snapshot exist
    finally:
        writer.stop.set()
        writer.t.join(10)
    assert not writer.errors, writer.errors[:3]
    assert got_rev == rev
    expected = _state(kvs)
    post = sorted({k for k, r in writer.written if r > rev and k not in expected})
    assert post, "no keys were created after the snapshot revision: the absence check would be empty"
    took = re.search(r'"took":"([0-9.]+)(ms|s)"', saved.stderr)
    fetch = (float(took.group(1)) / (1000 if took.group(2) == "ms" else 1)) if took else None
    data = path.read_bytes()
    return SnapshotFile(path, hashlib.sha256(data).hexdigest(), len(data), status, rev, expected, source_hash, post,
                    saved.seconds, fetch, ds)


def test_snapshot_save_and_status(snapshot: SnapshotFile, kd_report: TestResult) -> None:
    s = snapshot
    kd_report.figure("dataset_keys", s.dataset.keys, "keys")
    kd_report.figure("dataset_value_bytes", round(s.dataset.value_bytes / MB, 2), "MB")
    kd_report.figure("dataset_load_time", round(s.dataset.seconds, 2), "s")
    kd_report.figure("snapshot_size", round(s.size / MB, 2), "MB")
    kd_report.figure("snapshot_save_time", round(s.save_wall_s, 2), "s", "etcdctl container, start to exit")
    if s.fetch_s:
        kd_report.figure("snapshot_fetch_time", round(s.fetch_s, 3), "s", "etcdctl's own transfer time")
    kd_report.figure("snapshot_save_throughput", round(s.size / MB / s.save_wall_s, 1), "MB/s")
    st = s.status
    problems = []
    if int(st["revision"]) < s.dataset.revision:
        problems.append(f"snapshot revision {st['revision']} is older than the dataset's last write {s.dataset.revision}")
    if int(st["totalKey"]) < s.dataset.keys:
        problems.append(f"snapshot holds {st['totalKey']} key revisions, fewer than the {s.dataset.keys} loaded")
    if not st.get("hash"):
        problems.append("snapshot status reports no hash")
    if int(st["totalSize"]) <= 0 or int(st["totalSize"]) > s.size:
        problems.append(f"totalSize {st['totalSize']} does not fit the file size {s.size}")
    v = kd_report.add(Verdict.fail("snapshot-status", "; ".join(problems)) if problems else
                      Verdict.ok("snapshot-status", f"hash {st['hash']}, revision {st['revision']}, "
                                 f"{st['totalKey']} keys, {st['totalSize']} bytes"))
    assert v.passed, str(v)


def _restore(size: int, snapshot: SnapshotFile, etcd_cluster: ClusterFactory, etcd_run: EtcdRun,
             kd_report: TestResult) -> EtcdCluster:
    target = etcd_cluster(size, start=False, tag="restore")
    target.prepare()
    total = 0.0
    for m in target.members:
        r = snapshot_restore(etcd_run.image, etcd_run.run_id, snapshot.path, m, target.initial_cluster, target.token)
        assert r.ok, r.explain()
        total += r.seconds
    kd_report.figure("restore_time_per_member", round(total / size, 2), "s", "etcdutl container, start to exit")
    kd_report.figure("restore_throughput", round(snapshot.size / MB / (total / size), 1), "MB/s")
    t0 = time.monotonic()
    target.start(initial_state="new", timeout=60)
    kd_report.figure("restored_cluster_ready_time", round(time.monotonic() - t0, 2), "s")
    return target


@pytest.mark.parametrize("size", [1, 3], ids=["restore-1-member", "restore-3-members"])
def test_restore_gives_back_snapshot_time_state(size: int, snapshot: SnapshotFile, etcd_cluster: ClusterFactory,
                                                etcd_run: EtcdRun, kd_report: TestResult) -> None:
    target = _restore(size, snapshot, etcd_cluster, etcd_run, kd_report)
    verdicts: list[Verdict] = []
    for i, m in enumerate(target.members):
        with m.client(timeout=30) as c:
            kvs, rev = c.scan_prefix(b"", serializable=i > 0)  # m0 linearizable, the others from local state
            h, _ = c.hashkv(snapshot.revision)
        verdicts.append(check_restored_state(snapshot.expected, _state(kvs), expected_revision=snapshot.revision,
                                             actual_revision=rev, must_be_absent=snapshot.post_keys,
                                             label=f"restore-{m.name}"))
        verdicts.append(check_hashes_equal({"source": snapshot.source_hash, m.name: h}, snapshot.revision,
                                           name=f"restore-{m.name}-history-hash"))
    with target.members[0].client() as c:
        members = c.member_list()
    if len(members) != size:
        verdicts.append(Verdict.fail("restored-membership", f"{len(members)} members listed, expected {size}"))
    for v in verdicts:
        kd_report.add(v)
    verdict = combine("restore", verdicts)
    assert verdict.passed, str(verdict)


def _damaged(snapshot: SnapshotFile, how: str, out: Path) -> Path:
    data = bytearray(snapshot.path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10  # one bit in the middle of the bolt file
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("how", ["truncated", "bit-flip"])
def test_damaged_snapshot_is_refused(how: str, snapshot: SnapshotFile, source: EtcdCluster, etcd_cluster: ClusterFactory,
                                     etcd_run: EtcdRun, tmp_path: Path, kd_report: TestResult) -> None:
    bad = _damaged(snapshot, how, tmp_path / f"{how}.db")
    target = etcd_cluster(1, start=False, tag="bad").prepare()
    m = target.members[0]
    r = snapshot_restore(etcd_run.image, etcd_run.run_id, bad, m, target.initial_cluster, target.token)
    assert not r.ok, f"etcdutl restored a {how} snapshot: {r.stderr[-300:]}"
    err = r.stderr.lower()
    assert any(s in err for s in ("sha256", "hash", "checksum", "integrity")), f"not an integrity error: {r.explain()}"
    # etcdutl v3.6 copies the bolt file before verifying it, so a refused restore leaves
    # member/snap/db behind (and a retry into that dir is refused as "not empty"). What must not
    # exist is a WAL: without one there is no member that could be started by mistake.
    files = sorted(str(p.relative_to(m.data_dir)) for p in m.data_dir.rglob("*") if p.is_file()) \
        if m.data_dir.exists() else []
    assert not [f for f in files if "/wal/" in f or f.endswith(".wal")], f"a refused restore wrote a WAL: {files}"
    kd_report.figure(f"refused_restore_leftover_files_{how}", len(files), "files", ", ".join(files))
    _assert_source_untouched(source, snapshot)
    note = f"; left {files} in the target data dir: remove it before retrying" if files else ""
    kd_report.add(Verdict.ok(f"refuse-{how}-snapshot",
                             f"etcdutl exited {r.rc}: {r.stderr.strip().splitlines()[-1][:160]}{note}"))


def test_restore_into_non_empty_data_dir_is_refused(snapshot: SnapshotFile, source: EtcdCluster,
                                                    etcd_cluster: ClusterFactory, etcd_run: EtcdRun,
                                                    kd_report: TestResult) -> None:
    target = etcd_cluster(1, start=False, tag="busy").prepare()
    m = target.members[0]
    m.data_dir.mkdir(parents=True)
    marker = m.data_dir / "someone-elses-data"
    marker.write_text("precious")
    r = snapshot_restore(etcd_run.image, etcd_run.run_id, snapshot.path, m, target.initial_cluster, target.token)
    assert not r.ok, "etcdutl restored into a non-empty data dir"
    assert "not empty" in r.stderr, r.explain()
    assert marker.read_text() == "precious" and sorted(p.name for p in m.data_dir.iterdir()) == [marker.name]
    _assert_source_untouched(source, snapshot)
    kd_report.add(Verdict.ok("refuse-non-empty-data-dir", r.stderr.strip().splitlines()[-1][:200]))


def _assert_source_untouched(source: EtcdCluster, snapshot: SnapshotFile) -> None:
    """The source still answers, its history at the snapshot revision is unchanged, and the
    snapshot file itself was not modified by the failed restores."""
    source.wait_healthy(timeout=20)
    with source.members[0].client() as c:
        h, _ = c.hashkv(snapshot.revision)
    assert h == snapshot.source_hash, f"source hashkv at {snapshot.revision} changed: {h} != {snapshot.source_hash}"
    assert hashlib.sha256(snapshot.path.read_bytes()).hexdigest() == snapshot.sha256, "the snapshot file changed"
