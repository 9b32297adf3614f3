"""How long the per-key linearizability checker takes on large register histories.

Histories come from kubedrill.check.linearizability.synthetic_history: linearizable by
construction (each op applied at a random point inside its interval), 16 concurrent clients,
40% put / 40% get / 20% cas, 2% of writes with unknown outcome (half of them applied). The
"mutated" rows change one read in the middle to a stale value, which the checker must reject.
Usage:  python benchmarks/etcd_checker.py [--ops 10000]

Target (issue 3): a 10,000-op, 100-key history decided in <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.check.linearizability import check_linearizable, synthetic_history  # noqa: E402
from kubedrill.record import Operation  # noqa: E402


def stale_read(hist: list[Operation]) -> list[Operation]:
    """Replace the value of a read in the middle with an older value of the same key."""
    out = list(hist)
    mid = len(out) // 2
    for i in range(mid, len(out)):
        o = out[i]
        if o.kind != "get" or o.result["value"] is None:
            continue
        older = [p.value for p in out[:i] if p.kind == "put" and p.key == o.key and p.end < o.start - 0.05
                 and p.value != o.result["value"]]
        if older:
            out[i] = Operation(o.kind, o.start, o.end, o.outcome, o.client, o.key, o.value,
                               {"value": older[0], "revision": 0})
            return out
    raise RuntimeError("no read to mutate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=10_000)
    a = ap.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"{'history':34s} {'verdict':8s} {'seconds':>8s}")
    worst = 0.0
    for keys in (100, 10, 1):
        h = synthetic_history(a.ops, keys, clients=16, seed=42)
        for label, hist in ((f"{a.ops} ops, {keys} keys", h), (f"{a.ops} ops, {keys} keys, mutated", stale_read(h))):
            t0 = time.monotonic()
            v = check_linearizable(hist, time_budget_s=60)
            dt = time.monotonic() - t0
            if keys == 100:
                worst = max(worst, dt)
            print(f"{label:34s} {v.status.value:8s} {dt:8.3f}")
    print(f"\ntarget: {a.ops} ops on 100 keys in <= 10 s: {'met' if worst <= 10 else 'MISSED'} ({worst:.3f} s)")
    return 0 if worst <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
