"""Benchmark: kind cluster creation with warm images, per config.

Prints, per config, the time from `kind create` to all nodes Ready and kube-system Running
(p50 and max over N runs) and the peak memory of the node containers (cgroup v1
memory.max_usage_in_bytes, or v2 memory.peak). Usage:
    python benchmarks/cluster_create.py [--runs 3] [--config single --config three-node --config ha]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.cluster import kind, setup  # noqa: E402
from kubedrill.cluster.waits import wait_cluster_ready  # noqa: E402


def peak_memory_mb(container: str) -> float:
    cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", container], capture_output=True, text=True).stdout.strip()
    for p in (Path(f"/sys/fs/cgroup/memory/docker/{cid}/memory.max_usage_in_bytes"),
              Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.peak")):
        if p.exists():
            return int(p.read_text()) / 2**20
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--config", action="append")
    args = ap.parse_args()
    configs = args.config or ["single", "three-node", "ha"]
    image = setup.choose_node_image(allow_pull=False).ref
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"host: {platform.node()} {platform.machine()} cpus={os.cpu_count()} mem={mem_gib:.0f}GiB "
          f"kernel={platform.release()} load={os.getloadavg()[0]:.1f}")
    print(f"node image: {image}")
    for cfg in configs:
        times, create_only, peaks = [], [], []
        for i in range(args.runs):
            t0 = time.monotonic()
            c = kind.create(cfg, image, name=kind.unique_name(f"bench{i}"))
            t1 = time.monotonic()
            try:
                wait_cluster_ready(c, timeout=600)
                t2 = time.monotonic()
                times.append(t2 - t0)
                create_only.append(t1 - t0)
                peaks.append(sum(peak_memory_mb(n) for n in c.all_nodes))
            finally:
                kind.delete(c.name)
        print(f"{cfg:<11} runs={len(times)} ready p50={statistics.median(times):.1f}s max={max(times):.1f}s "
              f"(kind create p50={statistics.median(create_only):.1f}s) "
              f"peak node memory p50={statistics.median(peaks):.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
