"""One preflight pass: read the manifests, ask each API server version (one at a time), judge.

Servers run one after the other: each is a kube-apiserver and an etcd (~0.5 GB together), and a
2-core machine gains nothing from overlapping their start-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kubedrill.check import preflight as P
from kubedrill.record.versions import Version, VersionError
from kubedrill.cluster.paths import default_k8s_version
from kubedrill.cluster.progress import say
from kubedrill.preflight import PreflightError
from kubedrill.preflight.apiserver import ApiServer, ensure_built, preflight_targets
from kubedrill.preflight.dryrun import Client, Session
from kubedrill.preflight.inputs import read_manifests


@dataclass
class VersionRun:
    version: str
    results: list[P.DryRunResult]
    build_s: float = 0.0  # finding or building the binaries (0-ish when cached)
    start_s: float = 0.0  # etcd + kube-apiserver to /readyz
    check_s: float = 0.0  # discovery, CRDs, every dry-run


@dataclass
class Report:
    manifests: list[P.Manifest]
    current: VersionRun | None
    targets: dict[str, VersionRun] = field(default_factory=dict)
    drain: list[P.Finding] = field(default_factory=list)
    shutdown: list[P.Finding] = field(default_factory=list)

    def api_findings(self, target: str) -> list[P.Finding]:
        return P.dryrun_findings(self.targets[target].results, self.current.results if self.current else None)

    def findings(self, target: str) -> list[P.Finding]:
        return [*self.api_findings(target), *self.drain, *self.shutdown]

    def to_dict(self) -> dict[str, Any]:
        def vr(v: VersionRun | None) -> dict[str, Any] | None:
            if v is None:
                return None
            return {"version": v.version, "build_s": round(v.build_s, 1), "start_s": round(v.start_s, 1),
                    "check_s": round(v.check_s, 1),
                    "results": [{"object": r.ref.key, "api_version": r.ref.api_version, "file": r.ref.file,
                                 "line": r.ref.line, "outcome": r.outcome, "code": r.code, "reason": r.reason,
                                 "warnings": list(r.warnings), "not_served": r.not_served,
                                 "served_as": list(r.served_as)} for r in v.results]}
        return {"objects": len(self.manifests), "current": vr(self.current),
                "targets": {t: {**(vr(v) or {}), "findings": [f.to_dict() for f in self.api_findings(t)]}
                            for t, v in self.targets.items()},
                "drain": [f.to_dict() for f in self.drain], "shutdown": [f.to_dict() for f in self.shutdown]}


def check_version(version: str) -> str:
    try:
        v = Version.parse(version)
    except VersionError as exc:
        raise PreflightError(str(exc)) from None
    if v.pre:
        raise PreflightError(f"{version}: preflight builds released versions only (no pre-releases)")
    return str(v)


def run_version(version: str, manifests: Sequence[P.Manifest], allow_unknown: bool = False,
                echo: Callable[[str], None] = say) -> VersionRun:
    """Build (if needed) and start kube-apiserver `version`, dry-run every object, stop it."""
    t0 = time.monotonic()
    bins = ensure_built(check_version(version), echo=echo)
    t1 = time.monotonic()
    with ApiServer(bins, echo=echo) as api:
        t2 = time.monotonic()
        session = Session(Client(api.url, api.token, api.ssl), version)
        results = session.check_all(manifests, allow_unknown=allow_unknown)
        t3 = time.monotonic()
    echo(f"preflight {version}: {sum(r.outcome == 'accepted' for r in results)} accepted, "
         f"{sum(r.outcome == 'refused' for r in results)} refused, {sum(bool(r.warnings) for r in results)} "
         f"with warnings, {sum(r.outcome == 'error' for r in results)} unanswered ({t3 - t2:.1f}s)")
    return VersionRun(version, results, t1 - t0, t2 - t1, t3 - t2)


def preflight(inputs: Sequence[str | Path] | Sequence[P.Manifest], targets: Sequence[str] | None = None,
              current: str | None = "", allow_unknown: bool = False, base: Path | None = None,
              echo: Callable[[str], None] = say) -> Report:
    """The whole pass. `current=""` means the pinned K8S_VERSION; `current=None` runs no control."""
    manifests: list[P.Manifest] = (
        [m for m in inputs if isinstance(m, P.Manifest)] if inputs and isinstance(inputs[0], P.Manifest)
        else read_manifests([p for p in inputs if not isinstance(p, P.Manifest)], base=base))
    targets = [check_version(t) for t in (targets or preflight_targets())]
    if not targets:
        raise PreflightError("no target version: pass --target vX.Y.Z or set PREFLIGHT_TARGETS in clusters/versions.env")
    cur = None
    if current is not None:
        cur = run_version(current or default_k8s_version(), manifests, allow_unknown, echo)
    rep = Report(manifests, cur)
    for t in targets:
        rep.targets[t] = run_version(t, manifests, allow_unknown, echo)
    rep.drain = P.drain_findings(manifests)
    rep.shutdown = P.shutdown_findings(manifests)
    return rep
