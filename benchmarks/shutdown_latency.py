"""How long does Kubernetes take to tell a pod to stop? Delete -> preStop -> SIGTERM -> exit, measured.

For each sample app mode (graceful: 1 s preStop sleep; no-prestop: SIGTERM straight away) the
script deletes `--count` pods one at a time (no load, nothing in flight, workload whole before each
deletion) and reads each termination with the suite's own evidence path (kubedrill.observe.PodWatch
-> termination_record), printing p50 / p90 / p99 / max of:

  watch lag        deletion request -> the pod watch sees deletionTimestamp
  -> preStop       deletion request -> the app's prestop-start (the kubelet ran the hook)
  -> SIGTERM       deletion request -> the app's sigterm receipt
  -> exit          deletion request -> the app's exit event
  -> removed       deletion request -> DELETED event (the API object is gone)
  evidence         reading one pod's evidence + events and building its record (API calls)

Usage:  python benchmarks/shutdown_latency.py --kubeconfig K --context kind-NAME [--count 24]
        (without --kubeconfig it creates a three-node kind cluster and deletes it afterwards)

Why it matters: the grace period counts from the deletion request, so the kubelet's reaction time
is spent from every pod's budget before its own shutdown starts; and the suite's verdicts place
these events on one clock, so their resolution bounds what the checker can tell apart.
Results: benchmarks/results/shutdown_latency.txt.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.cluster.handle import Cluster  # noqa: E402
from kubedrill.cluster.waits import until  # noqa: E402
from kubedrill.disrupt.pod import DeletePod  # noqa: E402
from kubedrill.observe.pods import PodWatch  # noqa: E402
from kubedrill.record import Recorder  # noqa: E402
from kubedrill.record.termination import termination_record  # noqa: E402
from kubedrill.scenarios.shutdown import Target, TargetPool  # noqa: E402
from kubedrill.workload.deploy import live_pods, workload_ready  # noqa: E402
from kubedrill.workload.sample import build_sample_image  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(1, math.ceil(q / 100 * len(s))) - 1]


def row(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<14} (none)"
    ms = [v * 1000 for v in values]
    return (f"  {label:<14} n={len(ms):>3}  p50 {pct(ms, 50):7.0f} ms  p90 {pct(ms, 90):7.0f} ms  "
            f"p99 {pct(ms, 99):7.0f} ms  max {max(ms):7.0f} ms")


def drill_mode(cluster: Cluster, pool: TargetPool, mode: str, count: int) -> list[str]:
    target = Target(f"bench-{mode}", sample_mode=mode, sample_grace=10, sample_prestop=1)
    d = pool.get(target).workload
    ns, sel = d.namespace, d.selector
    out: dict[str, list[float]] = {k: [] for k in ("watch lag", "-> preStop", "-> SIGTERM", "-> exit", "-> removed",
                                                   "evidence")}
    rec = Recorder(f"bench-{mode}")
    with PodWatch(cluster, ns, sel, rec, max_seconds=count * 60 + 120) as watch:
        for _ in range(count):
            until("the workload to be whole", lambda: workload_ready(cluster, ns, d.kind, d.name), 120, interval=0.5)
            victim = live_pods(cluster, ns, sel)[0]
            dp = DeletePod(d, victim)
            with dp.applied(rec, check_health=False):
                watch.wait_gone([victim], timeout=60)
            t0 = time.monotonic()
            ev = watch.evidence(victim)
            r = termination_record(ev, rec, requested_at=dp.requested_at, grace_fallback=10)
            out["evidence"].append(time.monotonic() - t0)
            req = dp.requested_at
            assert req is not None
            for key, t in (("watch lag", ev.deletion_seen_at), ("-> preStop", r.prestop_start),
                           ("-> SIGTERM", r.sigterm_at), ("-> exit", r.exit_at), ("-> removed", ev.gone_at)):
                if t is not None:
                    out[key].append(t - req)
    pool.release()
    return [f"{mode} (grace 10 s, preStop {'1 s' if mode != 'no-prestop' else 'none'}), {count} deletions:"] + \
        [row(k, v) for k, v in out.items()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig")
    ap.add_argument("--context")
    ap.add_argument("--count", type=int, default=24)
    args = ap.parse_args()
    made: str | None = None
    if args.kubeconfig:
        from kubedrill.cluster.existing import attach

        cluster = attach(args.kubeconfig, args.context, args.context)
    else:
        from kubedrill.cluster import kind, setup
        from kubedrill.cluster.paths import default_k8s_version
        from kubedrill.cluster.waits import wait_cluster_ready

        img = setup.ensure_ready(default_k8s_version(), need_kind=True, node_image=None)
        assert img is not None
        cluster = kind.create("three-node", img.ref, k8s_version=default_k8s_version())
        made = cluster.name
        wait_cluster_ready(cluster)
    try:
        if cluster.provider != "kind":
            print("needs a kind cluster on this host", file=sys.stderr)
            return 2
        image = build_sample_image()
        pool = TargetPool(cluster, sample_image=lambda: image, lb_lag_s=0)
        lines = [f"shutdown latency on {platform.node()} ({os.cpu_count()} cores, load average "
                 f"{os.getloadavg()[0]:.1f} at start), Kubernetes {cluster.k8s_version}, kind cluster {cluster.name} "
                 f"({len(cluster.all_nodes)} nodes), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
        for mode in ("graceful", "no-prestop"):
            lines += drill_mode(cluster, pool, mode, args.count)
        lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
        print("\n".join(lines))
    finally:
        if made:
            from kubedrill.cluster import kind

            kind.delete(made)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
