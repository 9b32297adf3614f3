"""What `kubectl drain` said, parsed into facts: evicted pods, PDB refusals, bare pods, timeout.

Why parse text: kubectl drain is the real procedure operators run, and its output is the only
place that says which pod an eviction was refused for and why. The phrases matched here are
kubectl's (checked against kubectl v1.34):

    node/N cordoned
    evicting pod NS/POD
    pod/POD evicted
    error when evicting pods/"POD" -n "NS" (will retry after 5s): Cannot evict pod as it would
        violate the pod's disruption budget.
    error: unable to drain node "N" due to error: cannot delete cannot delete Pods that declare no
        controller (use --force to override): NS/POD, continuing command...
    Warning: ignoring DaemonSet-managed Pods: NS/A, NS/B; deleting Pods that declare no controller: NS/C
    ... global timeout reached: 30s ...

Pure: unit-tested on captured outputs (tests/unit/test_scheduling_checks.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EVICTED = re.compile(r"^pod/(?P<pod>\S+) evicted$")
_EVICTING = re.compile(r"^evicting pod (?P<key>\S+/\S+)$")
_PDB_REFUSED = re.compile(r'error when evicting pods/"(?P<pod>[^"]+)" -n "(?P<ns>[^"]+)".*disruption budget')
_NO_CONTROLLER = re.compile(r"Pods that declare no controller \(use --force to override\): (?P<pods>[^,\n]+(?:, [^,\n]+)*?)"
                            r"(?:, continuing command\.\.\.|$)")
_DELETING_BARE = re.compile(r"deleting Pods that declare no controller: (?P<pods>[^;\n]+)")
_IGNORED_DS = re.compile(r"ignoring DaemonSet-managed Pods: (?P<pods>[^;\n]+)")
_TIMEOUT = re.compile(r"global timeout reached: (?P<t>\S+?)[\],\s]")


@dataclass(frozen=True)
class DrainLog:
    """Facts from one `kubectl drain` run. Pod references are "namespace/name" where kubectl gives
    the namespace, else the bare name (pod/NAME evicted lines carry no namespace)."""

    cordoned: bool
    evicting: tuple[str, ...]  # eviction requested (ns/name), in order, deduplicated
    evicted: tuple[str, ...]  # eviction succeeded (name)
    pdb_refused: tuple[str, ...]  # ns/name whose eviction a PodDisruptionBudget refused (deduplicated)
    pdb_refusals: int  # how many refusals kubectl retried through
    bare_blocking: tuple[str, ...]  # ns/name of pods without a controller that stopped the drain
    bare_deleted: tuple[str, ...]  # ns/name of pods without a controller deleted (--force)
    ignored_daemonset: tuple[str, ...]
    timed_out: bool
    drained: bool  # kubectl said "node/N drained"
    error: str  # the first "error: ..." line, or ""

    @property
    def blocked_by_pdb(self) -> bool:
        return self.pdb_refusals > 0 and not self.drained


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _split_pods(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip() and "/" in p]


def parse_drain_output(text: str) -> DrainLog:
    evicting: list[str] = []
    evicted: list[str] = []
    refused: list[str] = []
    refusals = 0
    bare_blocking: list[str] = []
    bare_deleted: list[str] = []
    ignored: list[str] = []
    error = ""
    for raw in text.splitlines():
        line = raw.strip()
        if m := _EVICTED.match(line):
            evicted.append(m["pod"])
        elif m := _EVICTING.match(line):
            evicting.append(m["key"])
        if m := _PDB_REFUSED.search(line):
            refused.append(f"{m['ns']}/{m['pod']}")
            refusals += 1
        if m := _NO_CONTROLLER.search(line):
            bare_blocking += _split_pods(m["pods"])
        if m := _DELETING_BARE.search(line):
            bare_deleted += _split_pods(m["pods"])
        if m := _IGNORED_DS.search(line):
            ignored += _split_pods(m["pods"])
        if line.startswith("error:") and not error:
            error = line
    return DrainLog(
        cordoned=bool(re.search(r"^node/\S+ (already )?cordoned$", text, re.M)),
        evicting=_unique(evicting), evicted=_unique(evicted), pdb_refused=_unique(refused), pdb_refusals=refusals,
        bare_blocking=_unique(bare_blocking), bare_deleted=_unique(bare_deleted), ignored_daemonset=_unique(ignored),
        timed_out=bool(_TIMEOUT.search(text + " ")) or "global timeout reached" in text,
        drained=bool(re.search(r"^node/\S+ drained$", text, re.M)), error=error,
    )
