"""How long does the kubeadm upgrade rehearsal take here, and did users notice? Prints and records it.

Runs the upgrade suite's drill once (`kubedrill.scenarios.upgrade`: a fresh kind cluster at
K8S_UPGRADE_FROM with the suite's default workloads -- the graceful sample app and nginx-correct
from apps/thirdparty, each under its own locust load -- upgraded to K8S_VERSION), judges it with
the suite's checks (`judge`), and prints: wall time (cluster creation included), rehearsal time,
staging time, each node's step with its phases, each workload's requests and failures, and every
failed check. Appends the run to benchmarks/upgrade_results.json (committed).

Usage:  python benchmarks/upgrade_rehearsal.py [--config three-node|ha] [--out FILE]
        python benchmarks/upgrade_rehearsal.py --kubeconfig K --context kind-NAME   (a kind cluster at
        K8S_UPGRADE_FROM; it ends at K8S_VERSION)

Why it matters: the issue's budget is <= 15 min for the three-node rehearsal and zero failed
requests for the graceful sample app; this is the number to watch when the recipe changes.
Recorded results are in benchmarks/upgrade_results.json (see its "runs" list; host load noted).

Recorded on the 2-core development machine (2026-11-25, kind v0.30.0, offline node images,
v1.33.13 -> v1.34.4, load average ~17 from other engineers' kind clusters), three-node:

    wall (cluster creation 35 s included)     450 s  (7.5 min; budget 15 min)
    rehearsal (preflight .. final checks)      384 s
      stage images, 3 nodes in parallel         ~60 s   (7 images on the control plane, 3 per worker)
      control plane step                        217 s   (drain 7, plan 4, kubeadm apply 164, kubelet 14,
                                                         static pods Ready again 24)
      worker steps                           20, 22 s   (drain 13-17 s with the PDB, kubeadm node <1 s)
    requests (25 req/s through the control plane's NodePort)   9408, failed 0

An earlier run on an attached cluster (same versions) took 447 s for the rehearsal, 10860
requests, 0 failed; there a worker's drain took 62 s (its two replicas evicted one at a time).

HA (--config ha: 3 control planes + 2 workers, opt-in), same day: cluster creation 127 s, staging
66 s, control-plane 224 s (kubeadm apply), control-plane2 213 s (kubeadm upgrade node 174 s); 0 of
13265 requests failed, skew within policy; then the rollout HALTED: a worker was reported NotReady
for ~9 s while control-plane2 was out (two nodes out at once). Details in upgrade_results.json.
(Runs recorded before the rehearsal moved into kubedrill.scenarios list "outcomes" per suite test;
later runs list them per check. Runs before 2026-12-02 rehearsed the sample app alone at 25 req/s;
later ones list "workloads", the total rate split evenly between them.)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.check.verdict import Verdict  # noqa: E402
from kubedrill.cluster.handle import Cluster  # noqa: E402
from kubedrill.cluster.paths import versions  # noqa: E402
from kubedrill.scenarios.upgrade import (  # noqa: E402
    RehearsalRecord,
    Settings,
    default_workloads,
    judge,
    prepare_release,
    run_upgrade_rehearsal,
)
from kubedrill.workload.deploy import deployed  # noqa: E402
from kubedrill.workload.sample import build_sample_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def summarize(rec: RehearsalRecord, verdicts: list[Verdict], wall_s: float, config: str) -> dict[str, Any]:
    http = [o for w in rec.workloads for o in w.http]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": config,
        "versions": versions(),
        "host": {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 1) for x in os.getloadavg()]},
        "gate": "pass" if all(v.passed for v in verdicts) else "fail",
        "outcomes": {v.check: v.status.value for v in verdicts},
        "wall_seconds": round(wall_s, 1),
        "rehearsal_seconds": round(rec.seconds, 1),
        "upgrade_seconds": round(rec.upgrade_window.duration, 1) if rec.upgrade_window else None,
        "requests_total": len(http),
        "requests_failed": sum(o.outcome != "ok" for o in http),
        "workloads": {w.id: {"kind": w.kind, "rate": round(w.rate, 2), "requests": len(w.http),
                             "failed": sum(o.outcome != "ok" for o in w.http)} for w in rec.workloads},
        "halted": rec.halted,
        "staged_images": {k: len(v) for k, v in rec.staged.items()},
        "nodes": [{"node": n.node, "role": n.role, "kubeadm": n.kubeadm_step,
                   "window_s": round(n.window.duration, 1) if n.window else None,
                   "phases": {p.name: round(p.seconds, 1) for p in n.phases}} for n in rec.nodes],
    }


def get_cluster(args: argparse.Namespace, source: str) -> tuple[Cluster, bool]:
    """(cluster at `source`, created here); an attached cluster must be a kind cluster at `source`."""
    if args.kubeconfig:
        from kubedrill.cluster.existing import attach

        return attach(args.kubeconfig, args.context, allow_disruptive_on=args.context), False
    from kubedrill.cluster import kind, setup
    from kubedrill.cluster.waits import wait_cluster_ready

    setup.ensure_engine()
    setup.ensure_kind()
    c = kind.create(args.config, setup.choose_node_image(source).ref, k8s_version=source)
    wait_cluster_ready(c, timeout=400)
    return c, True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="three-node", choices=("three-node", "ha"))
    ap.add_argument("--kubeconfig")
    ap.add_argument("--context")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "upgrade_results.json"))
    args = ap.parse_args()
    pinned = versions()
    source, target = pinned["K8S_UPGRADE_FROM"], pinned["K8S_VERSION"]
    release = prepare_release(target)
    specs = default_workloads(build_sample_image())
    t0 = time.monotonic()
    cluster, owned = get_cluster(args, source)
    try:
        with contextlib.ExitStack() as stack:
            workloads = [stack.enter_context(deployed(cluster, spec, purpose=f"bench-upgrade-{spec.name}",
                                                      expose_service=True, wait_deleted=False, timeout=300))
                         for spec in specs]
            rec = run_upgrade_rehearsal(cluster, release, workloads, Settings(source, target))
    finally:
        if owned:
            from kubedrill.cluster import kind

            kind.delete(cluster.name)
    wall = time.monotonic() - t0
    verdicts = judge(rec)
    where = Path(tempfile.mkdtemp(prefix="kd-upgrade-bench-"))
    rec.dump(where)
    run = summarize(rec, verdicts, wall, "attached" if not owned else args.config)
    print(f"gate {run['gate']}; wall {run['wall_seconds']} s incl. cluster creation; rehearsal "
          f"{run['rehearsal_seconds']} s; upgrade window {run['upgrade_seconds']} s; raw record in {where}")
    print(f"requests {run['requests_total']}, failed {run['requests_failed']}; halted: {run['halted'] or 'no'}")
    for wid, w in run["workloads"].items():
        print(f"  {w['kind']} {wid}: {w['requests']} requests at {w['rate']} req/s, {w['failed']} failed")
    print(f"{'node':38s} {'kubeadm':8s} {'step s':>7s}  phases")
    for n in run["nodes"]:
        phases = ", ".join(f"{k} {v:.0f}" for k, v in n["phases"].items())
        print(f"{n['node']:38s} {n['kubeadm']:8s} {n['window_s'] or 0:7.1f}  {phases}")
    for v in verdicts:
        if not v.passed:
            print(f"  {v}"[:600])
    out = Path(args.out)
    doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"about": __doc__.split("\n")[0], "runs": []}
    doc["runs"].append(run)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"recorded in {out}")
    return 0 if run["gate"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
