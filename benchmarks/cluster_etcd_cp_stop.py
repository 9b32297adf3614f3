"""API write unavailability through kind's load balancer when one of three control planes stops.

Per trial on an HA kind cluster: the suite's stop drill
(`kubedrill.scenarios.control_plane_quorum.run_stop_drill`): two API probers (ConfigMap update +
read every 150 ms, 1 s client timeout, through the LB; one on a keep-alive connection re-made
after errors, one with a new connection per request) run; one control plane node container is
`docker stop`ped (alternately a follower's and the etcd leader's node), held 12 s, started again;
the control plane must be healthy again (3 etcd members, nodes Ready) before the next trial.
Prints the longest write outage per trial and client, whether the drill's checks passed, and
p50 / max. Target: p50 <= 5 s.
Usage (from the repository root):
    python -m benchmarks.cluster_etcd_cp_stop [--trials 4] [--kubeconfig K --context kind-NAME]
Without --kubeconfig it creates an HA kind cluster and deletes it after.

Why it matters: HA is only as good as the client's experience of losing a control plane: the
etcd election (~1-2 s) plus how fast the LB stops sending new connections to the dead API server.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

from kubedrill.cluster.handle import Cluster
from kubedrill.scenarios.control_plane_quorum import CLIENTS, HOLD_S, judge_stop, run_stop_drill, write_outage
from kubedrill.workload import apply


def get_cluster(args: argparse.Namespace) -> tuple[Cluster, bool]:
    if args.kubeconfig:
        from kubedrill.cluster.existing import attach

        return attach(args.kubeconfig, args.context), False
    from kubedrill.cluster import kind, network, setup
    from kubedrill.cluster.waits import wait_cluster_ready

    img = setup.ensure_ready(None, need_kind=True)
    assert img is not None
    name = kind.unique_name()
    network.create_private_network(f"{name}-net")  # stopped nodes come back at their own address
    c = kind.create("ha", img.ref, name=name, network=f"{name}-net")
    wait_cluster_ready(c, timeout=600)
    return c, True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--context")
    args = ap.parse_args()
    c, owned = get_cluster(args)
    if len(c.control_planes) < 3:
        print(f"needs 3 control planes, {c.name} has {len(c.control_planes)}", file=sys.stderr)
        return 2
    ns = apply.unique_namespace("bench-cp-stop")
    apply.create_namespace(c, ns)
    out: dict[tuple[str, str], list[float]] = {(w, cl): [] for w in ("follower", "leader") for cl in CLIENTS}
    try:
        for i in range(1, args.trials + 1):
            which = "follower" if i % 2 else "leader"
            r = run_stop_drill(c, ns, stop_leader=which == "leader")
            parts = []
            for client in CLIENTS:
                worst, failed, writes = write_outage(r, client)
                out[(which, client)].append(worst)
                parts.append(f"{client} {worst:5.2f} s ({failed} of {writes} writes failed)")
            bad = [str(v) for v in judge_stop(r) if not v.passed]
            stop = r.stop
            print(f"trial {i}: stopped {which:8s} {stop.nodes[0]:24s} longest write outage: {'; '.join(parts)}; "
                  f"docker stop took {stop.stopped - stop.began:.1f} s, healthy again in {stop.ended - stop.held_until:.0f} s; "
                  f"checks: {'all passed' if not bad else 'FAILED ' + '; '.join(bad)[:300]}", flush=True)
    finally:
        apply.delete_namespace(c, ns, wait=False)
        if owned:
            from kubedrill.cluster import kind, network

            kind.delete(c.name)
            network.remove_network(f"{c.name}-net")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}, load average {load}, "
          f"Python {platform.python_version()}")
    print(f"cluster {c.name}: {len(c.control_planes)} control planes behind the kind LB, {args.trials} trials, hold {HOLD_S:.0f} s")
    for (which, client), v in out.items():
        if v:
            print(f"write outage, {which:8s} stopped, {client:9s} client  p50 {statistics.median(v):5.2f} s   "
                  f"max {max(v):5.2f} s   (n={len(v)})")
    allv = [x for v in out.values() for x in v]
    print(f"all trials and clients: p50 {statistics.median(allv):5.2f} s, max {max(allv):5.2f} s; "
          f"target p50 <= 5 s: {'met' if allv and statistics.median(allv) <= 5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
