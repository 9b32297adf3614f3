"""Leader re-election after SIGKILL of the leader, on a 3-member TLS etcd cluster in containers.

Per trial: wait for a healthy cluster, SIGKILL the leader's container, then poll the two
survivors every 20 ms for (a) the first moment a quorum names a new leader ("elected") and
(b) the first successful write through a survivor ("writable"); then restart the old leader and
wait for equal hashkv before the next trial. Prints p50 / p90 / max over the trials.
Usage:  python benchmarks/etcd_election.py [--trials 12] [--size 3]

Why it matters: the election time is the floor of every write outage a leader loss causes.
etcd's defaults (heartbeat 100 ms, election timeout 1000 ms) predict ~1-2 s: a follower waits
one randomized election timeout (1-2x 1000 ms) before campaigning, plus a pre-vote and a vote round.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.etcd.client import EtcdError  # noqa: E402
from kubedrill.etcd.standalone import standalone_run  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--size", type=int, default=3)
    a = ap.parse_args()
    elected: list[float] = []
    writable: list[float] = []
    with standalone_run() as run, run.cluster(a.size, name="elect") as c:
        for t in range(a.trials):
            old = c.wait_healthy(timeout=30).leader
            survivors = [m for m in c.members if m is not old]
            t0 = time.monotonic()
            old.kill("SIGKILL")
            e = w = None
            deadline = t0 + 20
            clients = [m.client(timeout=0.5) for m in survivors]
            while (e is None or w is None) and time.monotonic() < deadline:
                if e is None:
                    ids = []
                    for m in survivors:
                        try:
                            ids.append(m.status(timeout=0.3).leader)
                        except EtcdError:
                            pass
                    if len(ids) >= c.quorum and len(set(ids)) == 1 and ids[0] not in (0, old.member_id):
                        e = time.monotonic() - t0
                if w is None:
                    try:
                        clients[t % len(clients)].put("kd/bench/elect", str(t))
                        w = time.monotonic() - t0
                    except EtcdError:
                        pass
                time.sleep(0.02)
            for cl in clients:
                cl.close()
            if e is None or w is None:
                print(f"trial {t}: no new leader/write within 20 s: {c.describe()}", file=sys.stderr)
                return 1
            elected.append(e)
            writable.append(w)
            print(f"trial {t + 1:2d}: killed {old.name}, new leader after {e:.3f} s, writable after {w:.3f} s", flush=True)
            old.start()
            c.wait_converged(timeout=30)
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\nmachine: {platform.machine()} {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores,"
          f" kernel {platform.release()}, Docker {docker}, load average {' '.join(load)}, Python {platform.python_version()}")
    print(f"etcd {run.image}, {a.size} members, TLS, heartbeat 100 ms, election timeout 1000 ms, {a.trials} trials")
    for name, xs in (("new leader elected", elected), ("first write accepted", writable)):
        print(f"{name:22s} p50 {statistics.median(xs):.3f} s   p90 {pct(xs, 90):.3f} s   max {max(xs):.3f} s   "
              f"min {min(xs):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
