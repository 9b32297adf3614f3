"""The third-party shutdown set's ground truth cannot drift silently.

apps/thirdparty holds real servers from Debian packages (nginx, Apache httpd, gunicorn, Node.js),
each in correct and broken shutdown configurations; benchmarks/results/thirdparty-ground-truth.json
holds what each case did in plain Docker, and apps/thirdparty/workloads/expected.yaml the verdict
kubedrill must reach for it. These tests keep the three in step:

- without Docker: the manifests name the image the build recipe makes now, every case has a
  measurement and an expected verdict, and each expected verdict is the one its facts support;
- with Docker and the image built: each case, measured again, shows the committed facts
  (outcomes and phases, not milliseconds: benchmarks/thirdparty_ground_truth.py `facts()`).

The measuring code is the benchmark script's own, loaded from its file (benchmarks/ is not a
package), so the test and the committed numbers come from one procedure.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "thirdparty_ground_truth.py"
COMMITTED = ROOT / "benchmarks" / "results" / "thirdparty-ground-truth.json"
EXPECTED = ROOT / "apps" / "thirdparty" / "workloads" / "expected.yaml"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kd_thirdparty_ground_truth", SCRIPT)
    assert spec is not None and spec.loader is not None, f"cannot load {SCRIPT}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gt = _load_script()
COMMITTED_DOC: dict[str, Any] = json.loads(COMMITTED.read_text())
COMMITTED_CASES: dict[str, dict[str, Any]] = {c["case"]: c for c in COMMITTED_DOC["cases"]}
EXPECTED_CASES: dict[str, dict[str, Any]] = yaml.safe_load(EXPECTED.read_text())["cases"]
CASES = {c.name: c for c in gt.load_cases()}


def test_manifests_name_the_image_the_recipe_builds() -> None:
    tag = gt.image_tag()
    stale = {name: c.image for name, c in CASES.items() if c.image != tag}
    assert not stale, (
        f"clusters/images/build-thirdparty.sh now builds {tag}, but these manifests name another image: {stale}. "
        "The recipe (package list, apps/thirdparty/image/ or the script) changed: update the manifests with\n"
        f"  sed -i 's|kubedrill/thirdparty:[0-9a-f]*|{tag}|' apps/thirdparty/workloads/manifests/*.yaml\n"
        "then rebuild and re-measure: python benchmarks/thirdparty_ground_truth.py")


def test_committed_ground_truth_is_for_this_image_and_every_case() -> None:
    assert COMMITTED_DOC["image"] == gt.image_tag(), (
        f"{COMMITTED.name} was measured on {COMMITTED_DOC['image']}, the recipe now builds {gt.image_tag()}; "
        "re-measure: python benchmarks/thirdparty_ground_truth.py")
    assert set(COMMITTED_CASES) == set(CASES) == set(EXPECTED_CASES), (
        f"cases differ: workloads {sorted(CASES)}, measured {sorted(COMMITTED_CASES)}, "
        f"expected.yaml {sorted(EXPECTED_CASES)}; measure new cases and give each an expected verdict")


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_verdict_is_what_the_ground_truth_supports(name: str) -> None:
    facts = COMMITTED_CASES[name]["facts"]
    assert facts == gt.facts(COMMITTED_CASES[name]), f"{name}: the committed facts do not follow from the measurement"
    want, reasons = gt.verdict(facts)
    exp = EXPECTED_CASES[name]
    assert (exp["verdict"], exp["reasons"]) == (want, reasons), (
        f"{name}: expected.yaml says {exp['verdict']} {exp['reasons']}, the measured facts support {want} {reasons}: "
        f"{json.dumps(facts)}")
    assert exp.get("sigkill_cause") == gt.sigkill_cause(facts), (
        f"{name}: expected.yaml gives the SIGKILL cause {exp.get('sigkill_cause')!r}, the facts support "
        f"{gt.sigkill_cause(facts)!r} (new request after SIGTERM: {facts['new_request_after_sigterm']})")
    assert (exp["verdict"] == "pass") == (CASES[name].config == "correct"), (
        f"{name}: a '-correct' case must pass and a broken one fail; the ground truth says {want} {reasons}, "
        "so the configuration is not what its name says")


@pytest.fixture(scope="module")
def thirdparty_image() -> str:
    tag = gt.image_tag()
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.skip("no Docker engine reachable (docker info failed); start one with clusters/engine/ensure-docker.sh")
    if not gt.image_present(tag):
        pytest.skip(f"image {tag} is not built; build it offline with: bash clusters/images/build-thirdparty.sh "
                    "(debootstrap from the Debian mirror, a few minutes cold, cached afterwards)")
    return tag


@pytest.mark.needs_docker
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_ground_truth_has_not_drifted(name: str, thirdparty_image: str) -> None:
    del thirdparty_image
    measured = gt.measure(CASES[name])
    committed = COMMITTED_CASES[name]["facts"]
    got = measured.facts()
    changed = {k: {"committed": committed.get(k), "now": got.get(k)} for k in committed.keys() | got.keys()
               if committed.get(k) != got.get(k)}
    assert not changed, (
        f"{name} behaves differently from its committed ground truth: {json.dumps(changed)}.\n"
        f"This run: exit {measured.exit_code} {measured.exit_after_sigterm_s} s after SIGTERM, downloads "
        f"{[(d.path, d.received_bytes, d.declared_bytes, d.error) for d in measured.downloads]}, "
        f"log tail {measured.log_tail[-4:]}.\nIf the machine was overloaded, re-run; if a package or config changed "
        "on purpose, re-measure (python benchmarks/thirdparty_ground_truth.py) and update expected.yaml.")
