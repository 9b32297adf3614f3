"""What does judging one pod termination cost? The shutdown suite's after-the-fact work, timed.

No cluster: one synthetic termination shaped like a real drill of the suite (40 req/s of traffic
for `--seconds`, slow requests started 8/s, the sample app's lifecycle record as termination
message), pushed through the same functions the suite uses:

  record     kubedrill.record.termination.termination_record  (parse the app record, attribute in-flight requests)
  figures    kubedrill.check.shutdown.termination_figures      (what kubedrill.scenarios.shutdown.judge adds)
  check      kubedrill.check.shutdown.check_shutdown           (all six sub-checks + the plot series)

Usage:  python benchmarks/shutdown_check_overhead.py [--seconds 20] [--repeat 200]
Why: checkers run after the load, never inside it, so their cost only adds to test time; this
shows it stays negligible next to the tens of seconds a termination takes. Recorded results:
benchmarks/results/shutdown_check_overhead.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubedrill.check.shutdown import check_shutdown, termination_figures  # noqa: E402
from kubedrill.record import Operation, Recorder  # noqa: E402
from kubedrill.record.termination import PodEvidence, termination_record  # noqa: E402

POD = "kd-sample-0"


def synthetic(seconds: float, clock: Recorder) -> tuple[PodEvidence, list[Operation], list[Operation], float]:
    """Deletion at t0+3 s; preStop 5 s; SIGTERM at +5.2 s; exit at +9 s; grace 15 s."""
    t0 = clock.mono0 + 1.0
    deletion = t0 + 3.0
    traffic = [Operation("http GET /", t0 + i / 40, t0 + i / 40 + 0.004, "ok", result=f"pod-{i % 3}")
               for i in range(int(seconds * 40))]
    slow = [Operation("slow", t0 + i / 8, t0 + i / 8 + 9.0, "ok", result=POD if i % 3 == 0 else "other")
            for i in range(int(3.0 * 8))]
    off = clock.wall0 - clock.mono0
    events = [("started", t0 - 30), ("prestop-start", deletion + 0.3), ("prestop-end", deletion + 5.3),
              ("sigterm", deletion + 5.32), ("listener-closed", deletion + 5.33), ("inflight-drained", deletion + 9.0),
              ("exit", deletion + 9.01)]
    message = json.dumps({"pod": POD, "node": "n1", "mode": "graceful",
                          "events": [{"event": e, "time": t + off, "mono": t} | ({"code": 0} if e == "exit" else {})
                                     for e, t in events]})
    ev = PodEvidence(pod=POD, uid="u", node="n1", container="app", grace_seconds=15, prestop_hook=True,
                     first_seen_at=t0, deletion_seen_at=deletion + 0.05, deletion_timestamp_wall=deletion + off + 15,
                     terminated_seen_at=deletion + 9.5, gone_at=deletion + 10, exit_code=0, reason="Completed",
                     signal=None, message=message, started_wall=t0 - 30 + off, finished_wall=deletion + 9 + off)
    return ev, slow, traffic, deletion


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="traffic duration around the termination")
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    clock = Recorder("bench")
    ev, slow, traffic, deletion = synthetic(args.seconds, clock)
    rec = termination_record(ev, clock, requested_at=deletion, slow=slow, traffic=traffic)
    assert check_shutdown(rec).passed, check_shutdown(rec)
    rows = {
        "record": timed(lambda: termination_record(ev, clock, requested_at=deletion, slow=slow, traffic=traffic), args.repeat),
        "figures": timed(lambda: termination_figures(rec, ev), args.repeat),
        "check": timed(lambda: check_shutdown(rec), args.repeat),
    }
    print(f"shutdown check overhead on {platform.node()} ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}), "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"one termination: {len(traffic)} traffic requests, {len(slow)} slow requests "
          f"({len(rec.inflight)} in flight on the pod), {args.repeat} repetitions")
    total = 0.0
    for name, xs in rows.items():
        med = statistics.median(xs)
        total += med
        print(f"  {name:<8} median {med * 1000:7.3f} ms   p99 {sorted(xs)[int(0.99 * len(xs)) - 1] * 1000:7.3f} ms")
    print(f"  per pod  {total * 1000:7.3f} ms (sum of medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
