"""`python -m kubedrill.preflight [options] PATH...`: preflight the manifests under PATH against the targets.

Exit codes: 0 no blocking finding; 1 a blocking finding (severity error, or warning with
--fail-on warning); 2 bad input or an unbuildable target (one message saying which and why).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from kubedrill.check import preflight as P
from kubedrill.preflight import PreflightError


def _sigterm(signum: int, frame: object) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kubedrill.preflight", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="manifest files or directories (rendered Helm/Kustomize output)")
    ap.add_argument("-t", "--target", action="append", help="target version (repeatable; default PREFLIGHT_TARGETS)")
    ap.add_argument("--current", default="", help="current version, the control (default K8S_VERSION)")
    ap.add_argument("--no-control", action="store_true", help="do not ask the current version")
    ap.add_argument("--allow-unknown-kinds", action="store_true",
                    help="report objects of unknown kinds as refused instead of stopping")
    ap.add_argument("--fail-on", choices=(P.ERROR, P.WARNING), default=P.ERROR)
    ap.add_argument("--json", help="write the full report (every answer, every finding) to this file")
    ap.add_argument("--kubeconfig", help="also preflight this live cluster's objects (read-only), and its version skew")
    ap.add_argument("--context", help="kubeconfig context of the live cluster")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    from kubedrill.preflight.run import preflight

    from kubedrill.preflight.inputs import read_manifests

    skew: list[P.Finding] = []
    try:
        objs = read_manifests(args.paths, base=Path.cwd()) if args.paths or not args.kubeconfig else []
        if args.kubeconfig:
            from kubedrill.cluster.existing import ClusterUnreachable, attach
            from kubedrill.preflight import live
            from kubedrill.record.versions import Version

            try:
                cluster = attach(args.kubeconfig, args.context)
            except ClusterUnreachable as exc:
                raise PreflightError(str(exc)) from None
            objs += live.list_objects(cluster)
            obs, kubectl = live.observe_versions(cluster), live.kubectl_version(cluster)
            from kubedrill.preflight.apiserver import preflight_targets

            for t in args.target or preflight_targets():
                skew += live.skew_findings(obs, Version.parse(t), kubectl)
        rep = preflight(objs, args.target, None if args.no_control else args.current,
                        allow_unknown=args.allow_unknown_kinds)
    except PreflightError as exc:
        print(f"kubedrill preflight: {exc}", file=sys.stderr)
        return 2
    blocking = 0
    for f in skew:
        v = f.verdict(args.fail_on)
        blocking += v.status.value != "pass"
        print(f"  {v.status.value.upper():7} {v.check}: {v.reason}")
    for t in rep.targets:
        findings = rep.findings(t)
        print(f"\n== target {t} (control: {rep.current.version if rep.current else 'none'}): "
              f"{len(rep.manifests)} objects, {len(findings)} finding(s)")
        for f in findings:
            v = f.verdict(args.fail_on)
            blocking += v.status.value != "pass"
            print(f"  {v.status.value.upper():7} {v.check}: {v.reason}")
    if args.json:
        Path(args.json).write_text(json.dumps(rep.to_dict(), indent=1))
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main())
