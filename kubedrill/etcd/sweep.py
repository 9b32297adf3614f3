"""Remove etcd containers and networks that kubedrill runs left behind.

    python -m kubedrill.etcd.sweep            # only those whose owner process is gone (safe anytime)
    python -m kubedrill.etcd.sweep --run ID   # one run's resources
    python -m kubedrill.etcd.sweep --all      # every kubedrill etcd resource on this engine

Resources are found by label (kubedrill.component=etcd), never by name pattern.
"""

from __future__ import annotations

import argparse
import sys

from kubedrill.etcd.cluster import sweep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kubedrill.etcd.sweep", description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--run", help="remove the resources of this run id")
    g.add_argument("--all", action="store_true", help="remove every kubedrill etcd resource")
    a = ap.parse_args(argv)
    removed = sweep(run_id=a.run, dead_owners_only=not (a.all or a.run))
    for r in removed:
        print(f"removed {r}")
    print(f"{len(removed)} resource(s) removed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
