"""How long does the kubeadm upgrade rehearsal take here, and did users notice? Prints and records it.

Runs `pytest suites/upgrade` once (a fresh kind cluster at K8S_UPGRADE_FROM, upgraded to K8S_VERSION
under locust load), then reads its results.json and the raw record (reports/.../upgrade/record.json)
and prints: wall time (cluster creation included), rehearsal time, staging time, each node's step
with its phases, requests and failures. Writes benchmarks/upgrade_results.json (committed).

Usage:  python benchmarks/upgrade_rehearsal.py [--config three-node|ha] [--out FILE]

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
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def fig(test: dict[str, Any], name: str) -> Any:
    return next((f["value"] for f in test.get("figures", []) if f["name"] == name), None)


def summarize(results: dict[str, Any], record: dict[str, Any], wall_s: float, config: str) -> dict[str, Any]:
    tests = {t["name"]: t for t in results.get("tests", [])}
    users = tests.get("test_users_never_noticed", {})
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": config,
        "versions": results.get("run", {}).get("pinned", {}),
        "host": {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 1) for x in os.getloadavg()]},
        "gate": results.get("summary", {}).get("gate"),
        "outcomes": {k: v["outcome"] for k, v in tests.items()},
        "wall_seconds": round(wall_s, 1),
        "rehearsal_seconds": fig(users, "rehearsal_seconds"),
        "upgrade_seconds": fig(users, "upgrade_seconds"),
        "requests_total": fig(users, "requests_total"),
        "requests_failed": fig(users, "requests_failed_total"),
        "halted": record.get("halted", ""),
        "staged_images": {k: len(v) for k, v in record.get("staged", {}).items()},
        "nodes": [{"node": n["node"], "role": n["role"], "kubeadm": n["kubeadm"], "window_s": n["window_s"],
                   "phases": {p["name"]: p["seconds"] for p in n["phases"]}} for n in record.get("nodes", [])],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="three-node", choices=("three-node", "ha"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "upgrade_results.json"))
    args = ap.parse_args()
    reports = Path(tempfile.mkdtemp(prefix="kd-upgrade-bench-"))
    argv = [sys.executable, "-m", "pytest", "suites/upgrade", "--upgrade-config", args.config, "--reports-dir",
            str(reports), "-p", "no:cacheprovider"]
    t0 = time.monotonic()
    p = subprocess.run(argv, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=5400)
    wall = time.monotonic() - t0
    results = json.loads((reports / "latest" / "results.json").read_text())
    rec_path = reports / "latest" / "upgrade" / "record.json"
    record = json.loads(rec_path.read_text()) if rec_path.exists() else {}
    run = summarize(results, record, wall, args.config)
    print(f"gate {run['gate']} (pytest exit {p.returncode}); wall {run['wall_seconds']} s incl. cluster creation; "
          f"rehearsal {run['rehearsal_seconds']} s; upgrade window {run['upgrade_seconds']} s")
    print(f"requests {run['requests_total']}, failed {run['requests_failed']}; halted: {run['halted'] or 'no'}")
    print(f"{'node':38s} {'kubeadm':8s} {'step s':>7s}  phases")
    for n in run["nodes"]:
        phases = ", ".join(f"{k} {v:.0f}" for k, v in n["phases"].items())
        print(f"{n['node']:38s} {n['kubeadm']:8s} {n['window_s'] or 0:7.1f}  {phases}")
    out = Path(args.out)
    doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"about": __doc__.split("\n")[0], "runs": []}
    doc["runs"].append(run)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"recorded in {out}")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
