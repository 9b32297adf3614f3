"""A rolling drain of every worker under locust load: failed requests, drain times, achieved rate.

Targets (issue 5), for the bundled graceful app with 3 replicas and a PDB minAvailable 2:
  - zero failed requests across a rolling drain of both workers
  - each drain <= 120 s
  - the load generator's achieved rate within 10% of the configured rate while a drain runs

Usage (attach a kind cluster of this host, or let it create and delete a three-node one):
    python benchmarks/drain_rolling.py --kubeconfig K --context kind-NAME [--runs 3] [--rate 50] [--users 10]
    python benchmarks/drain_rolling.py --create [--runs 3]

Each run deploys the app in a fresh namespace and runs the drain suite's scenario
(kubedrill.scenarios.drain, operation rolling-drain): starts the load, waits 8 s, drains worker
after worker, the busiest first (uncordon and wait for the Deployment between nodes, 3 s of
"maintenance" each), keeps the load 6 s more, and prints one line per run. Results:
benchmarks/results/drain_rolling.txt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.cluster.handle import Cluster  # noqa: E402
from kubedrill.scenarios.drain import LoadPlan, MaintenanceSettings, run_maintenance  # noqa: E402
from kubedrill.workload.deploy import deployed  # noqa: E402
from kubedrill.workload.sample import build_sample_image, sample_workload  # noqa: E402


def one_run(cluster: Cluster, image: str, users: int, rate: float, keep_alive: bool) -> str:
    spec = sample_workload("graceful", replicas=3, grace_seconds=15, prestop_seconds=3, image=image, min_available=2)
    with deployed(cluster, spec, purpose="bench-drain", expose_service=True, wait_deleted=False) as d:
        r = run_maintenance(cluster, d, "rolling-drain", MaintenanceSettings(drain_timeout_s=120, maintenance_s=3.0),
                            LoadPlan(users=users, rate=rate, keep_alive=keep_alive, max_s=600))
    assert r.window is not None and r.load_stats is not None
    ops = r.operations
    failed = sum(1 for o in ops if o.outcome != "ok")
    rates = []
    for p in r.passes:
        assert p.drained_at is not None
        n = sum(1 for o in ops if p.start <= o.start <= p.drained_at)
        rates.append(n / (p.drained_at - p.start))
    drains = " ".join(f"{p.drain_s:5.1f}" for p in r.passes if p.drain_s is not None)
    within = all(abs(x - rate) <= 0.1 * rate for x in rates)
    failed_drain = next((f"drain of {p.node} failed: {p.drain_failed}" for p in r.passes if p.drain_failed), "")
    return (f"{len(ops):8d} {failed:7d} {drains:>13s} {r.window.duration:7.1f} {rate:7.0f} "
            f"{' '.join(f'{x:5.1f}' for x in rates):>12s} {'yes' if within else 'NO':>7s}"
            + (f"   {failed_drain}" if failed_drain else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubeconfig")
    ap.add_argument("--context")
    ap.add_argument("--create", action="store_true", help="create a three-node kind cluster (deleted at the end)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--keep-alive", action="store_true", help="reuse connections (default: one per request)")
    args = ap.parse_args()
    created = None
    if args.create:
        from kubedrill.cluster import kind, setup
        from kubedrill.cluster.paths import default_k8s_version
        from kubedrill.cluster.waits import wait_cluster_ready

        img = setup.ensure_ready(default_k8s_version(), need_kind=True, node_image=None)
        assert img is not None
        cluster = created = kind.create("three-node", img.ref)
        wait_cluster_ready(cluster)
    elif args.kubeconfig:
        from kubedrill.cluster.existing import attach

        cluster = attach(args.kubeconfig, args.context, allow_disruptive_on=args.context)
    else:
        ap.error("pass --kubeconfig/--context of a kind cluster, or --create")
    try:
        image = build_sample_image()
        print(f"cluster {cluster.name}: workers {', '.join(cluster.workers)}; load {args.users} users, "
              f"{args.rate:g} req/s, {'keep-alive' if args.keep_alive else 'new connection per request'}; "
              f"load average {Path('/proc/loadavg').read_text().split()[0]}")
        print(f"{'requests':>8s} {'failed':>7s} {'drain s/node':>13s} {'pass s':>7s} {'target':>7s} "
              f"{'achieved/node':>12s} {'in 10%':>7s}")
        for _ in range(args.runs):
            print(one_run(cluster, image, args.users, args.rate, args.keep_alive), flush=True)
        print(f"load average after: {Path('/proc/loadavg').read_text().split()[0]}")
    finally:
        if created is not None:
            from kubedrill.cluster import kind

            kind.delete(created.name)


if __name__ == "__main__":
    main()
