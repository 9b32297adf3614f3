"""Measured eviction time after an unplanned node loss against the bound predicted from the
cluster's settings: p50 and max of the error over several runs.

Target (issue 15): every measured eviction within 5 s of its prediction (last heartbeat +
--node-monitor-grace-period + half of (--node-monitor-period + 1 s of reaction) + the pod's
tolerationSeconds: the middle of the window the controllers act in).

Usage (creates the node-loss kind cluster: short timers, private network; deleted at the end; run
it alone, under `flock /tmp/kubedrill-cluster.lock`):
    python benchmarks/node_loss_eviction.py [--runs 5] [--toleration 5]

Each run deploys the sample app (4 replicas, tolerating unreachable/not-ready for --toleration s)
in a fresh namespace and runs the node-loss suite's scenario (kubedrill.scenarios.node_loss) with
the next loss of node-stop, node-freeze, node-partition; the prediction reads the cluster's flags.
Writes benchmarks/results/node-loss-eviction.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.check.eviction import check_node_declared_lost, eviction_measures, predict  # noqa: E402
from kubedrill.cluster import kind, setup  # noqa: E402
from kubedrill.cluster.handle import Cluster  # noqa: E402
from kubedrill.cluster.paths import default_k8s_version  # noqa: E402
from kubedrill.disrupt.node_loss import lost_left, node_losses  # noqa: E402
from kubedrill.scenarios.drain import LoadPlan  # noqa: E402
from kubedrill.scenarios.node_loss import node_loss_sample, run_node_loss  # noqa: E402
from kubedrill.workload.deploy import deployed  # noqa: E402
from kubedrill.workload.sample import build_sample_image  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 5.0


def one_run(cluster: Cluster, image: str, loss: str, toleration: int) -> dict[str, Any]:
    spec = node_loss_sample(image, replicas=4, toleration_s=toleration)
    with deployed(cluster, spec, purpose=f"bench-node-loss-{loss}", expose_service=True) as d:
        r = run_node_loss(cluster, d, loss, load=LoadPlan())
    t = r.timeline
    hb = t.last_heartbeat()
    p = predict(t.settings, hb) if hb is not None else None
    not_ready = t.first()
    measures = eviction_measures(t)
    return {
        "loss": loss, "node": t.node, "settings": t.settings.source,
        "heartbeat_before_loss_s": None if hb is None else round(t.lost_at - hb, 2),
        "not_ready_after_loss_s": None if not_ready is None else round(not_ready - t.lost_at, 2),
        "predicted_not_ready_after_loss_s": None if p is None else round(p.not_ready_at - t.lost_at, 2),
        "node_declared_lost": str(check_node_declared_lost(t)),
        "pods": [{"pod": m.pod, "toleration_s": m.toleration_s,
                  "predicted_after_loss_s": None if m.predicted_at is None else round(m.predicted_at - t.lost_at, 2),
                  "evicted_after_loss_s": None if m.evicted_at is None else round(m.evicted_at - t.lost_at, 2),
                  "error_s": None if m.error is None else round(m.error, 2)} for m in measures],
        "waited": r.waited,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [abs(p["error_s"]) for r in runs for p in r["pods"] if p["error_s"] is not None]
    missing = [f"{r['loss']}/{p['pod']}" for r in runs for p in r["pods"] if p["error_s"] is None]
    return {"evictions": len(errors), "not_measured": missing,
            "p50_abs_error_s": round(statistics.median(errors), 2) if errors else None,
            "max_abs_error_s": round(max(errors), 2) if errors else None,
            "within_target": bool(errors) and not missing and max(errors) <= TARGET_S}


def markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    lines = [
        "# Node loss: measured eviction time against the predicted bound", "",
        f"Measured {doc['when']} by `python benchmarks/node_loss_eviction.py --runs {len(doc['runs'])}` on "
        f"{doc['host']}; load before: `{doc['uptime_before']}`; after: `{doc['uptime_after']}`.",
        f"Cluster: the `node-loss` kind config ({doc['settings']}); sample app, 4 replicas, tolerationSeconds "
        f"{doc['toleration_s']} for unreachable/not-ready; locust load through the control plane's NodePort.",
        "Prediction: last heartbeat (lease renewal or node status) + grace period + half of (monitor period + 1 s of reaction), the "
        "middle of the window the controllers act in, + tolerationSeconds; error = measured - predicted.", "",
        f"**{s['evictions']} evictions: p50 |error| {s['p50_abs_error_s']} s, max |error| {s['max_abs_error_s']} s "
        f"(target <= {TARGET_S:g} s: {'met' if s['within_target'] else 'NOT met'})**"
        + (f"; not measured: {', '.join(s['not_measured'])}" if s["not_measured"] else ""), "",
        "| run | loss | last heartbeat before loss | NotReady after loss (predicted) | pod | evicted after loss | predicted | error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(doc["runs"], 1):
        for p in r["pods"]:
            lines.append(f"| {i} | {r['loss']} | {r['heartbeat_before_loss_s']} s | {r['not_ready_after_loss_s']} s "
                         f"({r['predicted_not_ready_after_loss_s']} s) | {p['pod']} | {p['evicted_after_loss_s']} s | "
                         f"{p['predicted_after_loss_s']} s | {p['error_s']:+.2f} s |"
                         if p["error_s"] is not None else
                         f"| {i} | {r['loss']} | {r['heartbeat_before_loss_s']} s | {r['not_ready_after_loss_s']} s | "
                         f"{p['pod']} | not evicted | {p['predicted_after_loss_s']} s | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--toleration", type=int, default=5, help="the sample app's tolerationSeconds (default 5)")
    args = ap.parse_args()
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    image = build_sample_image()
    node_image = setup.ensure_ready(default_k8s_version(), need_kind=True, node_image=None)
    assert node_image is not None
    losses = node_losses()
    runs: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with kind.created("node-loss", node_image.ref, k8s_version=default_k8s_version(), private_network=True) as cluster:
        for i in range(args.runs):
            loss = losses[i % len(losses)]
            run = one_run(cluster, image, loss, args.toleration)
            runs.append(run)
            errs = ", ".join(f"{p['pod']} {p['error_s']:+.2f} s" if p["error_s"] is not None else f"{p['pod']} -"
                             for p in run["pods"])
            print(f"run {i + 1} {loss}: NotReady {run['not_ready_after_loss_s']} s after the loss (predicted "
                  f"{run['predicted_not_ready_after_loss_s']} s); evictions: {errs}", flush=True)
            left = lost_left(cluster)
            if left:
                raise SystemExit(f"worker(s) left lost after run {i + 1}: {left}")
    doc = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": f"{platform.node()} "
           f"({subprocess.run(['nproc'], capture_output=True, text=True, timeout=10).stdout.strip()} CPUs)",
           "uptime_before": uptime_before,
           "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip(),
           "wall_s": round(time.monotonic() - t0, 1), "toleration_s": args.toleration,
           "settings": runs[0]["settings"] if runs else "", "runs": runs, "summary": summarize(runs)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "node-loss-eviction.json").write_text(json.dumps(doc, indent=1) + "\n")
    (RESULTS / "node-loss-eviction.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
