"""Recall and false positives of preflight vs the table-based tools (pluto, kubent) on the labelled set.

Runs, on suites/preflight/cases (labels: suites/preflight/expected-findings.yaml):
- preflight: real kube-apiservers of each target (PREFLIGHT_TARGETS) with the current K8S_VERSION as
  the control, plus the drain and shutdown checks;
- pluto (PLUTO_VERSION, built by clusters/images/build-table-tools.sh): `pluto detect-files
  --target-versions k8s=TARGET -o json`; a `removed` item counts as api-removed, a deprecated one
  (not yet removed) as api-warning;
- kubent (KUBENT_VERSION): same mapping, when the Go module proxy serves it; otherwise listed as
  not available, with the reason.
Each tool is scored on everything (recall over every labelled finding) and on its own ground (API
findings only, the only kind a table can know). Prints a table; writes
benchmarks/results/preflight_recall.json and .txt (committed).

Usage:  python benchmarks/preflight_recall.py [--target vX.Y.Z ...] [--no-preflight]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubedrill.check import preflight as P  # noqa: E402
from kubedrill.preflight.apiserver import preflight_targets  # noqa: E402
from kubedrill.preflight.inputs import read_manifests  # noqa: E402

CASES = ROOT / "suites" / "preflight" / "cases"
EXPECTED = ROOT / "suites" / "preflight" / "expected-findings.yaml"
RESULTS = ROOT / "benchmarks" / "results"


def build_tools() -> dict[str, str]:
    """name -> binary path, or 'unavailable:<why>'."""
    p = subprocess.run(["bash", str(ROOT / "clusters/images/build-table-tools.sh"), "pluto", "kubent"],
                       capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    out = {}
    for line in p.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def table_tool_findings(name: str, binary: str, target: str) -> tuple[list[tuple[str, str]], float, str]:
    """(object key, finding id) pairs a table tool reports for the labelled files."""
    t0 = time.monotonic()
    if name == "pluto":
        argv = [binary, "detect-files", "-d", str(CASES), "--target-versions", f"k8s={target}", "-o", "json"]
    else:  # kubent reads files with -f (one per flag) and no cluster (-c=false)
        argv = [binary, "-c=false", "--helm3=false", "-o", "json", "-t", target.lstrip("v")]
        for f in sorted(CASES.glob("*.yaml")):
            argv += ["-f", str(f)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - t0
    try:
        doc: Any = json.loads(p.stdout or "null")
    except ValueError:
        return [], seconds, f"{name} printed no JSON (exit {p.returncode}): {p.stderr[-300:]}"
    found = []
    items = (doc or {}).get("items", []) if isinstance(doc, dict) else (doc or [])
    for it in items or []:
        if name == "pluto":
            api = it.get("api") or {}
            kind, ns = api.get("kind", ""), it.get("namespace", "") or ""
            check = P.API_REMOVED if it.get("removed") else P.API_WARNING if it.get("deprecated") else ""
            obj = it.get("name", "")
        else:
            kind, ns, obj = it.get("Kind", ""), it.get("Namespace", "") or "", it.get("Name", "")
            check = P.API_REMOVED
        if ns in ("<UNKNOWN>", "default") and kind in CLUSTER_SCOPED:
            ns = ""
        if check:
            found.append((f"{kind}/{ns}/{obj}", check))
    return found, seconds, ""


CLUSTER_SCOPED = {"PodSecurityPolicy", "FlowSchema", "PriorityLevelConfiguration", "RuntimeClass", "ClusterRole",
                  "ValidatingWebhookConfiguration", "CustomResourceDefinition", "PriorityClass", "CSIDriver",
                  "IngressClass", "Namespace", "StorageClass", "ValidatingAdmissionPolicy"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", help="target version(s) (default PREFLIGHT_TARGETS)")
    ap.add_argument("--no-preflight", action="store_true", help="score only the table tools")
    args = ap.parse_args()
    targets = args.target or preflight_targets()
    labels = yaml.safe_load(EXPECTED.read_text())
    objects = read_manifests([CASES], base=ROOT)
    load = os.getloadavg()
    rows: list[dict[str, Any]] = []
    report = None
    if not args.no_preflight:
        from kubedrill.preflight.run import preflight

        t0 = time.monotonic()
        report = preflight([CASES], targets, "", base=ROOT)
        pf_seconds = time.monotonic() - t0
    tools = build_tools()
    for target in targets:
        expected = P.expected_for(labels, target)
        if report is not None:
            found = [(f.ref.key, f.check) for f in report.findings(target)]
            r = report.targets[target]
            rows.append({"tool": "kubedrill preflight", "target": target, "all": P.score(expected, found).to_dict(),
                         "api": P.score(expected, found, P.API_CHECKS).to_dict(),
                         "seconds": round(r.start_s + r.check_s, 1),
                         "note": f"server start {r.start_s:.1f}s + dry-run of {len(objects)} objects {r.check_s:.1f}s "
                                 f"(plus the control {report.current.version if report.current else '-'}; whole "
                                 f"pass for all targets {pf_seconds:.0f}s)"})
        for name in ("pluto", "kubent"):
            binary = tools.get(name, "unavailable:not built")
            if binary.startswith("unavailable:"):
                rows.append({"tool": name, "target": target, "all": None, "api": None, "seconds": None,
                             "note": binary.split(":", 1)[1]})
                continue
            found, secs, err = table_tool_findings(name, binary, target)
            rows.append({"tool": f"{name} {os.path.basename(os.path.dirname(binary)).split('-', 1)[1]}",
                         "target": target, "all": P.score(expected, found).to_dict(),
                         "api": P.score(expected, found, P.API_CHECKS).to_dict(), "seconds": round(secs, 1),
                         "note": err})
    lines = [f"# python benchmarks/preflight_recall.py   ({time.strftime('%Y-%m-%d')})",
             f"# labelled set: {len(objects)} objects in suites/preflight/cases, "
             f"{sum(len(v) for v in P.expected_for(labels, targets[0]).values())} labelled findings, "
             f"{sum(1 for v in P.expected_for(labels, targets[0]).values() if not v)} clean objects",
             f"# machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start",
             "",
             f"{'tool':<24} {'target':<9} {'recall(all)':>11} {'recall(API)':>11} {'false+':>6} "
             f"{'clean flagged':>13} {'seconds':>7}  note"]
    for r in rows:
        a, b = r["all"], r["api"]
        if a is None:
            lines.append(f"{r['tool']:<24} {r['target']:<9} {'-':>11} {'-':>11} {'-':>6} {'-':>13} {'-':>7}  "
                         f"not available: {r['note']}")
            continue
        lines.append(f"{r['tool']:<24} {r['target']:<9} {a['found']:>4}/{a['expected']:<3} {a['recall']:>3.0%} "
                     f"{b['found']:>4}/{b['expected']:<3} {b['recall']:>3.0%} {len(a['false_positives']):>6} "
                     f"{a['clean_flagged']:>6}/{a['clean_objects']:<6} {r['seconds']:>7}  {r['note']}")
    missed = {f"{r['tool']} {r['target']}": r["api"]["missed"] for r in rows if r["api"] and r["api"]["missed"]}
    if missed:
        lines.append("")
        lines.append("API findings the table tools miss (the target server refuses or warns, no table lists it):")
        for k, v in missed.items():
            lines.append(f"  {k}: " + "; ".join(v))
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "preflight_recall.txt").write_text(text)
    (RESULTS / "preflight_recall.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "load": load,
                                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
