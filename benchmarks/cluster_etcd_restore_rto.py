"""Restore RTO of the kubeadm etcd runbook on a three-node kind cluster, over several drills.

Per run: the suite's drill (`kubedrill.scenarios.etcd_restore.run_restore_drill`, correct
runbook): seed objects, snapshot, change objects, restore, judge. Prints, per run, the RTO (API
writes unavailable: first failed probe to the next success, probes every 250 ms with a 1 s
timeout), the procedure's duration, its slowest steps and whether every check passed; then
p50 / min / max. Target: RTO p50 <= 120 s.
Usage (from the repository root):
    python -m benchmarks.cluster_etcd_restore_rto [--runs 3] [--kubeconfig K --context kind-NAME]
Without --kubeconfig it creates a three-node kind cluster for the runs and deletes it after.

Why it matters: the RTO is what a restore costs in API availability; the step timings show where
it goes (kube-apiserver's graceful stop dominates: the kubelet waits out its grace period).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kubedrill.cluster.handle import Cluster
from kubedrill.scenarios.etcd_restore import judge, restore_rto, run_restore_drill


def get_cluster(args: argparse.Namespace) -> tuple[Cluster, bool]:
    if args.kubeconfig:
        from kubedrill.cluster.existing import attach

        return attach(args.kubeconfig, args.context), False
    from kubedrill.cluster import kind, setup
    from kubedrill.cluster.waits import wait_cluster_ready

    img = setup.ensure_ready(None, need_kind=True)
    assert img is not None
    c = kind.create("three-node", img.ref)
    wait_cluster_ready(c, timeout=400)
    return c, True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--context")
    args = ap.parse_args()
    c, owned = get_cluster(args)
    rtos, procs = [], []
    try:
        for i in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory(prefix="kd-bench-restore-") as tmp:
                t0 = time.monotonic()
                r = run_restore_drill(c, Path(tmp))
                verdicts = judge(r)
                if r.objects is not None:
                    r.objects.delete()
            rto = restore_rto(r) or 0.0
            proc = r.window.duration if r.window else float("nan")
            rtos.append(rto)
            procs.append(proc)
            bad = [str(v) for v in verdicts if not v.passed]
            slow = sorted(r.steps, key=lambda s: -s.seconds)[:3]
            print(f"run {i}: RTO {rto:6.1f} s  procedure {proc:6.1f} s  drill {time.monotonic() - t0:5.0f} s  "
                  f"slowest: {', '.join(f'{s.name} {s.seconds:.1f}s' for s in slow)}  "
                  f"checks: {'all passed' if not bad else 'FAILED ' + '; '.join(bad)[:300]}", flush=True)
    finally:
        if owned:
            from kubedrill.cluster import kind

            kind.delete(c.name)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}, load average {load}, "
          f"Python {platform.python_version()}")
    print(f"cluster {c.name} ({len(c.control_planes)} control plane, {len(c.workers)} workers), {args.runs} runs")
    print(f"restore RTO      p50 {statistics.median(rtos):6.1f} s   min {min(rtos):6.1f} s   max {max(rtos):6.1f} s   "
          f"(target p50 <= 120 s: {'met' if statistics.median(rtos) <= 120 else 'MISSED'})")
    print(f"procedure        p50 {statistics.median(procs):6.1f} s   min {min(procs):6.1f} s   max {max(procs):6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
