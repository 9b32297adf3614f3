"""How fast can LoadRunner drive the sample app on this machine, and how fast does it start?

Runs the sample app image on 127.0.0.1 (Docker) and, for each configuration, one bounded locust
run (RUN_SECONDS each, capped at MAX_REQUESTS), printing achieved rate, failures, p50/p99 latency
and the time from start() to the first recorded request. Also the in-process LocalTarget (no
Docker) as a baseline. Usage:  python benchmarks/load_rate.py [--seconds 8] [--no-docker]

Why it matters: the availability check needs a minimum rate before a disruption to mean anything
(default 5 req/s), and the per-request record costs a little; this shows the headroom.

Recorded on the 2-core development machine (2026-11-25, Python 3.11, locust 2.47 FastHttpUser,
Docker 20.10, load average ~3.5 from a parallel Kubernetes compile), 8 s per row:

    == in-process LocalTarget (Python ThreadingHTTPServer) ==
    config                          target  achieved  failed  p50 ms  p99 ms  start s
    1 proc, 10 users, paced 100/s    100/s      97/s       0     1.9     6.7     0.57
    1 proc, 20 users, paced 500/s    500/s     466/s       0     1.7    10.9     0.45
    1 proc, 20 users, unpaced          max    5366/s       0     2.4    10.7     0.52
    == sample app in Docker, via docker-proxy on 127.0.0.1 ==
    1 proc, 10 users, paced 100/s    100/s     101/s       0     3.0    11.8     0.45
    1 proc, 20 users, paced 500/s    500/s     501/s       0     4.9    32.5     0.67
    1 proc, 20 users, unpaced          max    3746/s       0     3.0    22.1     0.76
    2 procs, 20 users, unpaced         max    3775/s       0     2.5    26.1     1.46

Reading: paced rates up to 500/s are met; one process tops out near 3.7k req/s against the app,
and a second process adds nothing on 2 shared cores (the target and docker-proxy compete for
them), so distributed mode is for bigger machines. Locust starts recording within ~0.5 s (1.5 s
with --processes 2, which waits for its workers to connect).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.load import LoadRunner, LocalTarget  # noqa: E402
from kubedrill.workload.sample import build_sample_image  # noqa: E402


@dataclass(frozen=True)
class Config:
    label: str
    users: int
    rate: float | None
    processes: int = 1


CONFIGS = [
    Config("1 proc, 10 users, paced 100/s", 10, 100.0),
    Config("1 proc, 20 users, paced 500/s", 20, 500.0),
    Config("1 proc, 20 users, unpaced", 20, None),
    Config("2 procs, 20 users, unpaced", 20, None, processes=2),
]


def run_one(url: str, cfg: Config, seconds: float) -> str:
    t0 = time.monotonic()
    with LoadRunner(url, users=cfg.users, rate=cfg.rate, processes=cfg.processes, run_time=seconds + 30,
                    max_requests=200_000, start_timeout=60) as load:
        first = time.monotonic() - t0
        time.sleep(seconds)
    st = load.stats
    assert st is not None
    lat = sorted(o.latency * 1000 for o in load.operations if o.outcome == "ok") or [0.0]
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    target = f"{cfg.rate:g}/s" if cfg.rate else "max"
    return (f"{cfg.label:34s} {target:>8s} {st.achieved_rate:9.0f}/s {st.failed:8d} "
            f"{statistics.median(lat):8.1f} {p99:8.1f} {first:8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per configuration (default 8)")
    ap.add_argument("--no-docker", action="store_true", help="only the in-process LocalTarget baseline")
    args = ap.parse_args()
    header = f"{'config':34s} {'target':>8s} {'achieved':>11s} {'failed':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'start s':>8s}"
    load_avg = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average before: {load_avg}")
    print("\n== in-process LocalTarget (Python ThreadingHTTPServer) ==")
    print(header)
    with LocalTarget() as t:
        for cfg in CONFIGS[:3]:
            print(run_one(t.url, cfg, args.seconds), flush=True)
    if args.no_docker:
        return
    image = build_sample_image()
    name = f"kd-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--label", "kubedrill.run=bench", "-p", "127.0.0.1::8080",
                    image], check=True, capture_output=True, timeout=60)
    try:
        port = subprocess.run(["docker", "port", name, "8080/tcp"], check=True, capture_output=True, text=True,
                              timeout=30).stdout.split()[0].rsplit(":", 1)[1]
        time.sleep(0.5)
        print(f"\n== sample app {image} in Docker, via docker-proxy on 127.0.0.1 ==")
        print(header)
        for cfg in CONFIGS:
            print(run_one(f"http://127.0.0.1:{port}", cfg, args.seconds), flush=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[0]}")


if __name__ == "__main__":
    main()
