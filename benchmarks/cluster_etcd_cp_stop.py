"""API write unavailability through kind's load balancer when one of three control planes stops.

Per trial on an HA kind cluster: two API probers (ConfigMap update + read every 150 ms, 1 s client
timeout, through the LB; one on a keep-alive connection re-made after errors, one with a new
connection per request) run; one control
plane node container is `docker stop`ped (alternately a follower's and the etcd leader's node),
held HOLD seconds, started again; the control plane must be healthy again (3 etcd members, nodes
Ready) before the next trial. Prints the longest write outage per trial and client, and p50 / max.
Target: p50 <= 5 s.
Usage:  python benchmarks/cluster_etcd_cp_stop.py [--trials 4] [--kubeconfig K --context kind-NAME]
Without --kubeconfig it creates an HA kind cluster and deletes it after.

Why it matters: HA is only as good as the client's experience of losing a control plane: the
etcd election (~1-2 s) plus how fast the LB stops sending new connections to the dead API server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.check.etcd_checks import unavailability_windows  # noqa: E402
from kubedrill.cluster.handle import Cluster  # noqa: E402
from kubedrill.disrupt.cluster_etcd import StopNodes, etcd_leader_node  # noqa: E402
from kubedrill.load.api_prober import ApiProber, ApiTarget  # noqa: E402
from kubedrill.record import Recorder  # noqa: E402
from kubedrill.workload import apply  # noqa: E402

HOLD = 12.0
# keepalive: one connection, re-made only after an error (client-go); fresh: a new connection per
# request (kubectl), so every request is routed by the LB again.
CLIENTS = ("keepalive", "fresh")


def get_cluster(args: argparse.Namespace) -> tuple[Cluster, bool]:
    if args.kubeconfig:
        from kubedrill.cluster.existing import attach

        return attach(args.kubeconfig, args.context), False
    from kubedrill.cluster import kind, setup
    from kubedrill.cluster.waits import wait_cluster_ready

    from kubedrill.cluster import network

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
    target = ApiTarget.from_kubeconfig(c.kubeconfig, c.context)
    out: dict[tuple[str, str], list[float]] = {(w, cl): [] for w in ("follower", "leader") for cl in CLIENTS}
    try:
        for i in range(1, args.trials + 1):
            which = "follower" if i % 2 else "leader"
            leader = etcd_leader_node(c)
            node = leader if which == "leader" else next(n for n in c.control_planes if n != leader)
            rec = Recorder("bench")
            with contextlib.ExitStack() as probers:
                for client in CLIENTS:
                    probers.enter_context(ApiProber(target, ns, rec, name=f"kd-probe-{client}", client=client,
                                                    interval_s=0.15, timeout_s=1.0, max_duration_s=600,
                                                    fresh_connections=client == "fresh"))
                time.sleep(3)
                stop = StopNodes(c, [node])
                with stop.applied(rec):
                    time.sleep(HOLD)
                    t1 = time.monotonic()
                assert stop.window is not None
            parts = []
            for client in CLIENTS:
                ops = [o for o in rec.history if o.client == client and stop.window.start - 1 <= o.start <= t1]
                outs = unavailability_windows(ops, kinds=("put",))
                worst = max((o.window.duration for o in outs), default=0.0)
                fails = sum(1 for o in ops if o.kind == "put" and o.outcome != "ok")
                out[(which, client)].append(worst)
                parts.append(f"{client} {worst:5.2f} s ({fails} of {sum(1 for o in ops if o.kind == 'put')} writes failed)")
            print(f"trial {i}: stopped {which:8s} {node:24s} longest write outage: {'; '.join(parts)}; "
                  f"docker stop took {stop.inject_s or 0:.1f} s, healthy again in {stop.heal_s or 0:.0f} s", flush=True)
    finally:
        apply.delete_namespace(c, ns, wait=False)
        if owned:
            from kubedrill.cluster import kind, network

            kind.delete(c.name)
            network.remove_network(f"{c.name}-net")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}, load average {load}, "
          f"Python {platform.python_version()}")
    print(f"cluster {c.name}: {len(c.control_planes)} control planes behind the kind LB, {args.trials} trials, hold {HOLD:.0f} s")
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
