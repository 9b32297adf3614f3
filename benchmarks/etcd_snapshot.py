"""Snapshot save / restore throughput of etcd on a large dataset, against a plain file copy.

Loads --mb MB of values (--value-kb each, seeded random bytes, so incompressible) into a
1-member TLS cluster, then times:
  save     `etcdctl snapshot save` over TLS from a container on the cluster network (wall time,
           container start to exit; etcdctl's own transfer time is printed too)
  copy     the baseline: copying that snapshot file and fsyncing it (what "just copy the file"
           would cost on this disk)
  restore  `etcdutl snapshot restore` into a new data dir (wall time, container start to exit)
and verifies the restored member: same revision, same key count, same hashkv at that revision.
Usage:  python benchmarks/etcd_snapshot.py [--mb 512] [--value-kb 64]

A 1-member source keeps the load phase from writing every byte three times on two shared cores;
save and restore do not depend on the member count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.etcd.standalone import standalone_run  # noqa: E402
from kubedrill.etcd.tools import snapshot_restore, snapshot_save, snapshot_status  # noqa: E402
from kubedrill.load.etcd_workload import Endpoint, load_dataset  # noqa: E402

MB = 1e6


def copy_fsync(src: Path, dst: Path) -> float:
    t0 = time.monotonic()
    with open(src, "rb") as i, open(dst, "wb") as o:
        shutil.copyfileobj(i, o, 8 << 20)
        o.flush()
        os.fsync(o.fileno())
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--value-kb", type=int, default=64)
    a = ap.parse_args()
    n = a.mb * 1_000_000 // (a.value_kb * 1024)
    with standalone_run() as run, run.cluster(1, name="snapsrc") as src:
        ep = Endpoint(src.members[0].name, src.members[0].ip)
        ds = load_dataset(ep, run.tls, n, seed=1, threads=2, value_size=lambda _r: a.value_kb * 1024, timeout_s=60)
        print(f"loaded {ds.keys} keys, {ds.value_bytes / MB:.0f} MB of values in {ds.seconds:.1f} s "
              f"({ds.value_bytes / MB / ds.seconds:.1f} MB/s through the JSON gateway)", flush=True)
        snap = run.workdir / "snap" / "snapshot.db"
        saved = snapshot_save(src, src.members[0], snap, timeout=900)
        if not saved.ok:
            print(saved.explain(), file=sys.stderr)
            return 1
        size = snap.stat().st_size
        took = re.search(r'"took":"([0-9.]+)(ms|s)"', saved.stderr)
        fetch = float(took.group(1)) / (1000 if took.group(2) == "ms" else 1) if took else float("nan")
        status = json.loads(snapshot_status(run.image, run.run_id, snap).stdout)
        copy_s = min(copy_fsync(snap, run.workdir / "snap" / f"copy{i}.db") for i in range(2))
        for i in range(2):
            (run.workdir / "snap" / f"copy{i}.db").unlink()
        target = run.cluster(1, name="snapdst").prepare()
        try:
            m = target.members[0]
            restored = snapshot_restore(run.image, run.run_id, snap, m, target.initial_cluster, target.token, timeout=900)
            if not restored.ok:
                print(restored.explain(), file=sys.stderr)
                return 1
            target.start(timeout=120)
            with m.client(timeout=60) as c, src.members[0].client(timeout=60) as s:
                rev = int(status["revision"])
                same_hash = c.hashkv(rev)[0] == s.hashkv(rev)[0]
                count = c.range(b"\x00", b"\x00", keys_only=True, limit=1).count
        finally:
            target.close()
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}, Docker {docker}, "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"snapshot: {size / MB:.0f} MB file, revision {status['revision']}, {status['totalKey']} keys, hash {status['hash']}")
    rows = [("plain copy + fsync", copy_s), ("snapshot save (wall)", saved.seconds), ("  etcdctl transfer", fetch),
            ("snapshot restore (wall)", restored.seconds)]
    for name, secs in rows:
        print(f"{name:24s} {secs:7.2f} s  {size / MB / secs:7.1f} MB/s   {secs / copy_s:5.1f}x copy")
    print(f"restored member: {count} keys (source {ds.keys}), hashkv at revision {status['revision']} "
          f"{'equal' if same_hash else 'DIFFERENT'} to the source")
    return 0 if same_hash and count == ds.keys else 1


if __name__ == "__main__":
    sys.exit(main())
