"""Leader re-election after SIGKILL of the leader, on a 3-member TLS etcd cluster in containers.

Per trial: the quorum drill (kubedrill.scenarios.quorum) with the registered `etcd-kill-leader`
fault under a put-only workload (2 clients per member, 25 puts/s each): the fault waits for a
healthy cluster, SIGKILLs the leader's container and records `leader-elected` at the first poll
(~50 ms apart) in which a quorum of the survivors names a new leader; the heal restarts the old
leader and waits for equal hashkv, so every trial starts from a whole cluster. Per trial it prints
the time from the kill to the new leader ("elected", from the drill's election verdict), to the
first write a survivor's client got acknowledged ("writable"), and whether every check of judge()
passed. Prints p50 / p90 / max over the trials.
Usage (from the repository root):  python -m benchmarks.etcd_election [--trials 12] [--size 3]

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

from kubedrill.check.verdict import combine
from kubedrill.config import SLOConfig
from kubedrill.disrupt.base import Inconclusive
from kubedrill.disrupt.etcd_faults import build_fault
from kubedrill.etcd.standalone import standalone_run
from kubedrill.load.etcd_workload import EtcdLoadConfig
from kubedrill.record import Recorder
from kubedrill.scenarios.quorum import QuorumDrillRecord, judge, run_quorum_drill

LOAD = EtcdLoadConfig(key_prefix="kd/bench/elect/", keys=8, clients_per_endpoint=2, rate_per_client=25,
                      max_duration_s=60, mix={"put": 1.0})


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def writable_after(r: QuorumDrillRecord) -> float | None:
    """From the kill to the first acknowledged put a survivor's workload client invoked after it."""
    t0 = r.recorder.events_of("disruption-injected")[0].at
    ends = [o.end for o in r.history if o.kind == "put" and o.outcome == "ok" and o.start >= t0
            and o.client.split(".")[0] in r.survivors]
    return min(ends) - t0 if ends else None


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--size", type=int, default=3)
    a = ap.parse_args()
    elected: list[float] = []
    writable: list[float] = []
    slo = SLOConfig()
    with standalone_run() as run, run.cluster(a.size, name="elect") as c:
        for t in range(a.trials):
            fault = build_fault("etcd-kill-leader", c, Recorder(f"trial-{t + 1}"))
            try:
                r = run_quorum_drill(c, fault, load=LOAD, seed=t, lead_s=1.0, hold_s=1.0, warmup_ops=20)
            except Inconclusive as exc:
                print(f"trial {t + 1}: {exc}", file=sys.stderr)
                return 1
            verdicts = judge(r, slo)
            election = next(v for v in verdicts if v.check == "leader-election")
            e = next((f.value for f in election.figures if f.name == "election_time"), None)
            w = writable_after(r)
            if e is None or w is None:
                print(f"trial {t + 1}: no new leader or no acknowledged write after the kill: {election}",
                      file=sys.stderr)
                return 1
            elected.append(float(e))
            writable.append(w)
            verdict = combine(fault.name, verdicts)
            print(f"trial {t + 1:2d}: killed {r.old_leader}, new leader after {e:.3f} s, writable after {w:.3f} s, "
                  f"checks {verdict.status.value.upper()}" + ("" if verdict.passed else f": {verdict.reason[:300]}"),
                  flush=True)
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"\nmachine: {platform.machine()} {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores,"
          f" kernel {platform.release()}, Docker {docker}, load average {' '.join(load)}, Python {platform.python_version()}")
    print(f"etcd {run.image}, {a.size} members, TLS, heartbeat 100 ms, election timeout 1000 ms, {a.trials} trials")
    for name, xs in (("new leader elected", elected), ("first write accepted", writable)):
        print(f"{name:22s} p50 {statistics.median(xs):.3f} s   p90 {pct(xs, 90):.3f} s   max {max(xs):.3f} s   "
              f"min {min(xs):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
