"""Achieved vs configured request rate: in-cluster locust (1, 2, 4 worker pods) and one runner process.

Issue 13 item 5. On a three-node kind cluster with the sample app (3 replicas), in one run:
  - in-cluster (kubedrill.load.incluster.InClusterLoad): for 1, 2 and 4 worker pods, a ladder of
    configured rates, each a fresh load (pods started, clocks measured, --seconds of load, stopped),
    sending to the Service by its cluster DNS name; a worker count leaves the ladder at the first
    rate it reaches less than 0.9 of, and no row starts once --budget seconds have passed;
  - the runner (kubedrill.load.runner.LoadRunner, one locust process on this machine) through the
    Service's host-mapped NodePort on 127.0.0.1, the same ladder plus one unpaced run (its ceiling).
It prints a table and writes benchmarks/results/incluster-load.{json,md}: the machine (nproc,
memory, load average before and after, other kubedrill clusters or containers running meanwhile)
and, per worker count, the highest configured rate reached at >= 0.9.

Usage (creates and deletes its own cluster; on a shared machine run it alone, under the lock):
    flock /tmp/kubedrill-cluster.lock python benchmarks/incluster_load.py [--seconds 12] [--rates 250,500,1000,2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubedrill.cluster.handle import Cluster  # noqa: E402
from kubedrill.load.incluster import InClusterLoad, default_image  # noqa: E402
from kubedrill.load.runner import LoadRunner  # noqa: E402
from kubedrill.record import Operation  # noqa: E402
from kubedrill.workload.deploy import Deployed, deployed  # noqa: E402
from kubedrill.workload.sample import build_sample_image, sample_workload  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
REACHED = 0.9  # achieved / configured counted as reaching the rate
USER_RATE = 25.0  # req/s per locust user at most: pacing, not latency, sets the rate


@dataclass(frozen=True)
class Row:
    generator: str  # "in-cluster" | "runner"
    workers: int  # worker pods (in-cluster) or locust processes (runner)
    users: int
    configured: float | None  # req/s; None = unpaced
    achieved: float
    ratio: float | None
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    start_s: float  # start() until the first requests flowed
    offsets_ms: dict[str, float]
    gaps: int

    def line(self) -> str:
        conf = f"{self.configured:g}" if self.configured else "max"
        ratio = f"{self.ratio:.2f}" if self.ratio is not None else "-"
        offs = " ".join(f"{v:+.1f}" for v in self.offsets_ms.values()) or "-"
        return (f"{self.generator:10s} {self.workers:7d} {self.users:5d} {conf:>8s} {self.achieved:9.0f} {ratio:>6s} "
                f"{self.requests:8d} {self.failed:6d} {self.p50_ms:7.1f} {self.p99_ms:7.1f} {self.start_s:7.1f}  {offs}")


HEADER = (f"{'generator':10s} {'workers':>7s} {'users':>5s} {'rate':>8s} {'achieved':>9s} {'ratio':>6s} "
          f"{'requests':>8s} {'failed':>6s} {'p50 ms':>7s} {'p99 ms':>7s} {'start s':>7s}  clock offsets ms")


def steady_rate(ops: list[Operation], skip: float = 2.0) -> float:
    """Requests per second after the first `skip` s (users spawn and connect then)."""
    if len(ops) < 2:
        return 0.0
    t0 = ops[0].start + skip
    late = [o for o in ops if o.start >= t0]
    span = late[-1].start - t0 if late else 0.0
    return len(late) / span if span > 0 else 0.0


def latency(ops: list[Operation]) -> tuple[float, float]:
    lat = sorted(o.latency * 1000 for o in ops if o.outcome == "ok") or [0.0]
    return statistics.median(lat), lat[min(len(lat) - 1, int(0.99 * len(lat)))]


def users_for(rate: float, workers: int) -> int:
    return max(4 * workers, int(-(-rate // USER_RATE)))


def run_incluster(cluster: Cluster, app: Deployed, image: str, workers: int, rate: float, seconds: float) -> Row:
    users = users_for(rate, workers)
    t0 = time.monotonic()
    with InClusterLoad(cluster, app.service_url, users=users, rate=rate, run_time=seconds + 60, workers=workers,
                       image=image, purpose=f"bench-load-{workers}w") as load:
        started = time.monotonic() - t0
        time.sleep(seconds)
    ops = load.operations()
    p50, p99 = latency(ops)
    achieved = steady_rate(ops)
    return Row("in-cluster", workers, users, rate, achieved, achieved / rate, len(ops),
               sum(1 for o in ops if o.outcome != "ok"), p50, p99, started,
               {k: v * 1000 for k, v in sorted(load.clock_offsets().items())}, len(load.gaps()))


def run_runner(url: str, rate: float | None, seconds: float) -> Row:
    users = users_for(rate or 1000.0, 1)
    t0 = time.monotonic()
    with LoadRunner(url, users=users, rate=rate, run_time=seconds + 30, max_requests=None, start_timeout=60) as load:
        started = time.monotonic() - t0
        time.sleep(seconds)
    ops = load.operations
    p50, p99 = latency(ops)
    achieved = steady_rate(ops)
    return Row("runner", 1, users, rate, achieved, (achieved / rate) if rate else None, len(ops),
               sum(1 for o in ops if o.outcome != "ok"), p50, p99, started, {}, 0)


def machine(label: str) -> dict[str, Any]:
    mem_kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
    containers = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
                                timeout=30).stdout.split()
    top = subprocess.run(["ps", "-eo", "pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True,
                         timeout=30).stdout.splitlines()[1:6]
    return {"when": label, "nproc": os.cpu_count(), "memory_gib": round(mem_kb / 1048576, 1),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "uptime": subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip(),
            "containers": containers, "busiest_processes": [ln.strip()[:160] for ln in top]}


def best_rate(rows: list[Row], workers: int) -> float | None:
    ok = [r.configured for r in rows if r.generator == "in-cluster" and r.workers == workers
          and r.configured and r.ratio is not None and r.ratio >= REACHED]
    return max(ok) if ok else None


def write_results(rows: list[Row], before: dict[str, Any], after: dict[str, Any], cluster_name: str,
                  image: str, seconds: float, notes: list[str]) -> None:
    best = {w: best_rate(rows, w) for w in sorted({r.workers for r in rows if r.generator == "in-cluster"})}
    runner_ok = [r.configured for r in rows if r.generator == "runner" and r.ratio is not None and r.ratio >= REACHED]
    runner_max = max((r.achieved for r in rows if r.generator == "runner"), default=0.0)
    doc = {"benchmark": "incluster_load", "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "cluster": cluster_name, "locust_image": image, "seconds_per_run": seconds, "reached_at": REACHED,
           "machine_before": before, "machine_after": after, "notes": notes,
           "highest_rate_reached_incluster": {str(k): v for k, v in best.items()},
           "highest_rate_reached_runner": max(runner_ok) if runner_ok else None,
           "runner_unpaced_max": runner_max, "rows": [asdict(r) for r in rows]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "incluster-load.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = [
        "# In-cluster load: achieved vs configured request rate",
        "",
        f"Measured {doc['measured']} by `python benchmarks/incluster_load.py` on a three-node kind cluster "
        f"({cluster_name}) with the sample app (3 replicas), {seconds:g} s of load per row (rate counted after "
        f"the first 2 s), locust image `{image}`.",
        f"Machine: {before['nproc']} CPUs, {before['memory_gib']} GiB; before: `{before['uptime']}`; "
        f"after: `{after['uptime']}`.",
        "",
        "| generator | workers | users | configured req/s | achieved req/s | ratio | requests | failed | p50 ms | p99 ms | start s | clock offsets ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(f"| {r.generator} | {r.workers} | {r.users} | {r.configured if r.configured else 'max (unpaced)'} | "
                  f"{r.achieved:.0f} | {f'{r.ratio:.2f}' if r.ratio is not None else '-'} | {r.requests} | "
                  f"{r.failed} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.start_s:.1f} | "
                  f"{' '.join(f'{v:+.2f}' for v in r.offsets_ms.values()) or '-'} |")
    md += ["", "Highest configured rate reached at >= 0.9:", ""]
    md += [f"- in-cluster, {w} worker pod(s): {f'{v:g} req/s' if v else 'none of the ladder'}" for w, v in best.items()]
    md.append(f"- runner (one locust process, through the host-mapped NodePort): "
              f"{f'{max(runner_ok):g} req/s' if runner_ok else 'none of the ladder'}; unpaced it reached "
              f"{runner_max:.0f} req/s")
    md += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    md += ["", "Busiest processes when it started (`ps -eo pcpu,etime,args`, % CPU over each one's lifetime):", ""]
    md += [f"    {ln}" for ln in before["busiest_processes"]]
    md += ["", "... and when it ended:", ""] + [f"    {ln}" for ln in after["busiest_processes"]]
    (RESULTS / "incluster-load.md").write_text("\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="seconds of load per row (default 12)")
    ap.add_argument("--rates", default="250,500,1000,2000", help="configured rate ladder, req/s")
    ap.add_argument("--workers", default="1,2,4", help="worker pod counts")
    ap.add_argument("--budget", type=float, default=450.0, help="start no new row after this many s (default 450)")
    args = ap.parse_args()
    rates = [float(x) for x in args.rates.split(",")]
    worker_counts = [int(x) for x in args.workers.split(",")]
    before = machine("before")
    notes: list[str] = []
    notes.append(f"containers running when the benchmark started: {', '.join(before['containers']) or 'none'}")
    from kubedrill.cluster import kind, setup

    t_start = time.monotonic()
    img = setup.ensure_ready(None, need_kind=True)
    assert img is not None
    sample = build_sample_image()
    image = default_image()
    rows: list[Row] = []
    print(f"load average before: {' '.join(before['loadavg'])}; locust image {image}", flush=True)
    with kind.created("three-node", img.ref) as cluster:
        spec = sample_workload("graceful", replicas=3, grace_seconds=15, prestop_seconds=2, image=sample,
                               min_available=1)
        with deployed(cluster, spec, purpose="bench-incluster", expose_service=True, wait_deleted=False) as app:
            from kubedrill.cluster.images import load_images

            load_images(cluster, [image])
            print(f"cluster {cluster.name}: target {app.service_url} (in-cluster), {app.base_url} (runner)")
            print(HEADER, flush=True)
            for rate in [*rates, None]:
                row = run_runner(app.base_url, rate, args.seconds)
                rows.append(row)
                print(row.line(), flush=True)
            # Rate by rate, every worker count at each, so a spent budget cuts the top of the ladder
            # rather than a whole worker count; a count drops out at the first rate it misses.
            missed: set[int] = set()
            for rate in rates:
                for workers in worker_counts:
                    if workers in missed:
                        continue
                    if time.monotonic() - t_start > args.budget:
                        notes.append(f"time budget {args.budget:g} s spent: {workers} worker pod(s) at {rate:g} req/s "
                                     "not run")
                        continue
                    row = run_incluster(cluster, app, image, workers, rate, args.seconds)
                    rows.append(row)
                    print(row.line(), flush=True)
                    if row.ratio is not None and row.ratio < REACHED:
                        missed.add(workers)
    after = machine("after")
    notes.append(f"containers running when it ended: {', '.join(after['containers']) or 'none'}")
    write_results(rows, before, after, cluster.name, image, args.seconds, notes)
    print(f"load average after: {' '.join(after['loadavg'])}; wrote {RESULTS / 'incluster-load.md'}")


if __name__ == "__main__":
    main()
