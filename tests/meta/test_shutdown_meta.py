"""Meta: the shutdown suite tells the sample app's shutdown modes apart, each for its own reason.

Each case runs `suites/shutdown` in a pytester subprocess against the outer test's cluster
(attached with --kubeconfig/--context, so no second cluster is made) with one `--sample-mode`
and one cause (pod delete). graceful MUST pass; every broken mode MUST fail, and the failing
sub-checks of its verdict MUST be exactly the ones that mode is built to break: a verdict that
fails for an unrelated reason would be a suite bug hiding behind a red test.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kubedrill.cluster.handle import Cluster
from kubedrill.report.model import TestResult

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.meta, pytest.mark.needs_docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "shutdown"
# Read at import, before pytester points HOME at its tmp dir: kubedrill's cache (kind, images) is there.
REAL_HOME = str(Path.home())
SUBCHECKS = ("sigkill", "exit-code", "grace-period", "prestop", "in-flight", "traffic")

# mode -> (failing sub-checks, a phrase the reason must contain)
EXPECTED: dict[str, tuple[frozenset[str], str]] = {
    "graceful": (frozenset(), "preStop hook ran"),
    "ignores-sigterm": (frozenset({"sigkill"}), "the process ignored SIGTERM"),
    "slow-exit": (frozenset({"sigkill"}), "shutdown was too slow"),
    "abrupt": (frozenset({"in-flight"}), "the server exits without waiting for in-flight requests"),
    "exit-nonzero": (frozenset({"exit-code"}), "exit code 1 on SIGTERM"),
    "no-prestop": (frozenset({"traffic"}), "the server closes its listener before endpoints are removed; add a preStop sleep"),
}


def failing_subchecks(verdict_line: str) -> set[str]:
    """Sub-checks reported as "<name>: FAIL:" in a printed shutdown verdict."""
    return {m for m in re.findall(r"([\w-]+): FAIL:", verdict_line) if m in SUBCHECKS}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_shutdown_suite_judges_sample_mode(mode: str, cluster: Cluster, pytester: pytest.Pytester,
                                           monkeypatch: pytest.MonkeyPatch, kd_report: TestResult) -> None:
    if cluster.provider != "kind":
        pytest.skip("the shutdown suite needs a kind cluster on this host (NodePorts mapped to 127.0.0.1)")
    monkeypatch.setenv("HOME", REAL_HOME)
    assert cluster.context is not None
    t0 = time.monotonic()
    result = pytester.runpytest_subprocess(
        str(SUITE), "--rootdir", str(REPO), "-p", "no:cacheprovider",
        "--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context,
        "--allow-disruptive-on", cluster.context, "--no-kd-reports",
        "--sample-mode", mode, "-k", "delete", "-s", timeout=600)
    kd_report.figure("inner_run", round(time.monotonic() - t0, 1), "s", mode)
    out = result.stdout.str()
    # The suite prints "<id>/<cause>: <verdict>" (with -s, after pytest's progress on the same line).
    found = re.findall(rf"(sample-{re.escape(mode)}/delete: shutdown: .*)", out)
    assert found, f"the inner run printed no verdict for sample-{mode}/delete:\n{out[-4000:]}\n{result.stderr.str()[-2000:]}"
    verdict = found[0]
    broken, phrase = EXPECTED[mode]
    if not broken:
        result.assert_outcomes(passed=1)
        assert ": PASS: " in verdict and phrase in verdict, verdict
        return
    result.assert_outcomes(failed=1)
    assert phrase in verdict, f"{mode}: the verdict should say {phrase!r}:\n{verdict}"
    assert failing_subchecks(verdict) == set(broken), (
        f"{mode}: expected only {sorted(broken)} to fail, got {sorted(failing_subchecks(verdict))}:\n{verdict}")
