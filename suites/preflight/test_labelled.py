"""The labelled set (cases/*.yaml, expected findings in expected-findings.yaml): preflight must find
every labelled finding and nothing on the clean objects, for every target version.

This is how the suite earns trust: removed built-in APIs across many releases, a CRD version that is
no longer served, a deprecated CRD version, server-side validation errors, drain-blocking and
drain-safe PDBs, preStop/grace pairs on both sides of the line. The same set is what
benchmarks/preflight_recall.py gives pluto for the comparison.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubedrill.check import preflight as P
from kubedrill.check.verdict import Figure, Verdict
from kubedrill.preflight.inputs import read_manifests
from kubedrill.preflight.run import Report
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.conformance]
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _expected() -> dict:
    return yaml.safe_load((HERE / "expected-findings.yaml").read_text())


def test_every_labelled_object_has_an_expectation_and_every_expectation_an_object() -> None:
    keys = [m.ref.key for m in read_manifests([HERE / "cases"], base=REPO)]
    exp = set(_expected()["objects"])
    assert len(keys) >= 60
    assert len(keys) == len(set(keys)), "two objects of the labelled set share Kind/namespace/name"
    assert not set(keys) - exp, f"objects without an expected-findings entry: {sorted(set(keys) - exp)}"
    assert not exp - set(keys), f"expected-findings entries with no object: {sorted(exp - set(keys))}"


def test_finds_every_labelled_finding_and_nothing_on_clean_objects(labelled_report: Report, target: str,
                                                                   kd_report: TestResult) -> None:
    expected = P.expected_for(_expected(), target)
    findings = labelled_report.findings(target)
    found = [(f.ref.key, f.check) for f in findings]
    verdicts = []
    for name, checks in (("api", P.API_CHECKS), ("drain", P.DRAIN_CHECKS), ("shutdown", P.SHUTDOWN_CHECKS),
                         ("all", None)):
        s = P.score(expected, found, checks)
        figs = [Figure(f"recall_{name}", round(s.recall, 4), "ratio", f"{s.found}/{s.expected} labelled findings"),
                Figure(f"false_positives_{name}", len(s.false_positives), "findings"),
                Figure(f"clean_flagged_{name}", s.clean_flagged, "objects", f"of {s.clean_objects} clean objects")]
        ok = not s.missed and not s.false_positives
        why = (f"{s.found}/{s.expected} labelled {name} findings found, {len(s.false_positives)} false positive(s)"
               + (f"; missed: {'; '.join(s.missed[:8])}" if s.missed else "")
               + (f"; false positives: {'; '.join(s.false_positives[:8])}" if s.false_positives else ""))
        verdicts.append(kd_report.add(Verdict.ok(f"preflight/labelled-{name}", why, figs) if ok
                                      else Verdict.fail(f"preflight/labelled-{name}", why, figs)))
    unchecked = [f for f in findings if f.severity == P.UNKNOWN]
    assert not unchecked, "objects the server did not answer: " + "; ".join(f.reason for f in unchecked[:5])
    bad = [v for v in verdicts if not v.passed]
    assert not bad, "\n".join(str(v) for v in bad)


def test_refusals_say_whether_the_upgrade_causes_them_and_what_the_server_serves(labelled_report: Report,
                                                                                  target: str) -> None:
    by_key = {f.ref.key: f for f in labelled_report.api_findings(target) if f.check == P.API_REMOVED}
    removed_everywhere = [k for k, f in by_key.items() if "removed-apis.yaml" in f.ref.file]
    assert len(removed_everywhere) >= 20
    for k in removed_everywhere:
        # All were removed before the current version: refused by both, so the manifest, not the upgrade.
        assert by_key[k].category == P.MANIFEST_ERROR, (k, by_key[k].reason)
    hints = {"Ingress/preflight-cases/legacy-ext-ingress": "networking.k8s.io/v1",
             "CronJob/preflight-cases/legacy-cron": "batch/v1",
             "HorizontalPodAutoscaler/preflight-cases/legacy-hpa-v2beta2": "autoscaling/v2",
             "FlowSchema//legacy-fs-v1beta2": "flowcontrol.apiserver.k8s.io/v1",
             "Widget/preflight-cases/widget-unserved-version": "kubedrill.example.com/v1"}
    for key, served in hints.items():
        assert served in by_key[key].reason, by_key[key].reason
    psp = by_key["PodSecurityPolicy//legacy-psp"]
    assert "serves no version of kind PodSecurityPolicy" in psp.reason


def test_every_finding_names_its_file_and_line(labelled_report: Report, target: str) -> None:
    for f in labelled_report.findings(target):
        assert f.ref.file.startswith("suites/preflight/cases/") and f.ref.line > 0, f
        assert f"{f.ref.file}:{f.ref.line}" in f.verdict().reason
