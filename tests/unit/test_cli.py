"""The `kubedrill` command: config errors, the pytest command it builds, exit codes and reports.

`run` is exercised end to end against a throwaway checkout (suites/ with tiny tests and a
conftest loading the plugin) with --no-setup, so no Docker is needed.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from kubedrill import cli
from kubedrill.report.meta import REPO_ROOT


@pytest.fixture
def fake_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with suites/smoke (passes) and suites/drain (fails); `run` executes pytest in it."""
    root = tmp_path / "repo"
    (root / "suites" / "smoke").mkdir(parents=True)
    (root / "suites" / "drain").mkdir(parents=True)
    (root / "conftest.py").write_text('pytest_plugins = ["kubedrill.pytest_plugin"]\n')
    (root / "suites" / "smoke" / "test_smoke.py").write_text(
        "from kubedrill.check.verdict import Verdict\n"
        "def test_serves(kd_report):\n    assert kd_report.add(Verdict.ok('serves', '200 OK')).passed\n")
    (root / "suites" / "drain" / "test_drain.py").write_text(
        "from kubedrill.check.verdict import Verdict\n"
        "def test_drain(kd_report):\n"
        "    v = kd_report.add(Verdict.fail('availability', '3 requests failed during the drain'))\n"
        "    assert v.passed, v.reason\n")
    monkeypatch.setattr(cli, "REPO_ROOT", root)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    for var in ("KUBEDRILL_CONFIG", "KUBEDRILL_REPORTS", "KUBEDRILL_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return root


def results(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    return data


def test_config_prints_resolved_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "k.yaml"
    cfg.write_text("cluster: {kind_config: ha}\n")
    assert cli.main(["config", "-c", str(cfg), "--kd-set", "slo.availability=0.99"]) == 0
    out = capsys.readouterr().out
    assert "kind_config: ha" in out and "availability: 0.99" in out


def test_config_takes_the_file_as_argument_as_help_says(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "k.yaml"
    cfg.write_text("cluster: {kind_config: single}\n")
    assert cli.main(["config", str(cfg)]) == 0
    by_argument = capsys.readouterr().out
    assert "kind_config: single" in by_argument and f"source: {cfg}" in by_argument
    for flag in ("-c", "--config", "--kd-config"):
        assert cli.main(["config", flag, str(cfg)]) == 0
        assert capsys.readouterr().out == by_argument, flag
    assert cli.main(["config", str(cfg), "-c", str(cfg)]) == 0  # the same file twice is fine


def test_config_refuses_two_different_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["config", "a.yaml", "-c", "b.yaml"]) == cli.EXIT_USAGE
    assert "FILE (a.yaml) and -c/--config (b.yaml) name different files" in capsys.readouterr().err


def test_config_file_from_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "k.yaml"
    cfg.write_text("reports_dir: from-file\n")
    monkeypatch.setenv("KUBEDRILL_CONFIG", str(cfg))
    monkeypatch.delenv("KUBEDRILL_REPORTS", raising=False)
    assert cli.main(["config"]) == 0
    assert "reports_dir: from-file" in capsys.readouterr().out
    monkeypatch.setenv("KUBEDRILL_REPORTS", "from-env")  # env beats the file, an option beats env
    assert cli.main(["config"]) == 0 and "reports_dir: from-env" in capsys.readouterr().out
    assert cli.main(["config", "--reports-dir", "from-option"]) == 0
    assert "reports_dir: from-option" in capsys.readouterr().out


def test_overrides_name_where_each_value_came_from() -> None:
    from kubedrill import options

    found, origins = options.overrides({"cluster_config": "ha", "suite": ["smoke,etcd"], "kd_set": ["seed=1"]},
                                       environ={"KUBEDRILL_REPORTS": "out"})
    assert found == {"cluster.kind_config": "ha", "suites": ["smoke", "etcd"], "reports_dir": "out", "seed": 1}
    assert origins == {"cluster.kind_config": "--cluster-config", "suites": "--suite", "reports_dir": "KUBEDRILL_REPORTS",
                       "seed": "--kd-set seed"}


def test_config_errors_exit_2_and_name_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "--cluster-config", "big"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "config.cluster.kind_config: 'big' is not one of single, three-node, ha (from --cluster-config)" in err


def test_dry_run_builds_one_pytest_over_existing_suites(fake_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "--dry-run", "--suite", "smoke", "--suite", "drain,upgrade", "--cluster-config", "ha",
                     "--keep-cluster", "--kd-set", "slo.availability=0.99", "-n", "2", "--", "-k", "drain"])
    assert code == 0
    captured = capsys.readouterr()
    cmd = captured.out.strip()
    assert f"-m pytest --rootdir {fake_repo} {fake_repo}/suites/smoke {fake_repo}/suites/drain " in cmd
    for part in ("--cluster-config ha", "--keep-cluster", "--kd-set slo.availability=0.99", "--kd-progress",
                 "-n 2 --dist loadgroup", "-k drain"):
        assert part in cmd, part
    assert "suite 'upgrade': suites/upgrade does not exist" in captured.err
    # --suite exists only here; pytest learns it as a config override, ahead of the user's --kd-set.
    assert cmd.index("--kd-set 'suites=[smoke, drain, upgrade]'") < cmd.index("--kd-set slo.availability=0.99")


def test_dry_run_hands_paths_and_environment_to_pytest_absolute(fake_repo: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """pytest runs in the checkout, not here: relative paths and env-named files must not change meaning."""
    (tmp_path / "k.yaml").write_text("cluster: {kind_config: single}\n")
    monkeypatch.setenv("KUBEDRILL_CONFIG", "k.yaml")
    monkeypatch.setenv("KUBEDRILL_REPORTS", "out")
    assert cli.main(["run", "--dry-run", "--suite", "smoke", "--kubeconfig", "kc", "--context", "c",
                     "--workload", "w.yaml"]) == 0
    cmd = capsys.readouterr().out
    for part in (f"--kd-config {tmp_path}/k.yaml", f"--kubeconfig {tmp_path}/kc", "--context c",
                 f"--workload {tmp_path}/w.yaml", f"--reports-dir {tmp_path}/out"):
        assert part in cmd, part


def test_run_with_no_existing_suite_is_an_error(fake_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--no-setup", "--suite", "upgrade"]) == cli.EXIT_NOTHING_CHECKED
    assert "nothing to run, so the gate cannot pass" in capsys.readouterr().err


def test_run_passing_suite_exits_0_and_prints_gate(fake_repo: Path, tmp_path: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--no-setup", "--suite", "smoke"]) == 0
    out, err = capfd.readouterr()
    assert "== kubedrill gate: PASS" in out and "PASS  smoke" in out
    assert "[kubedrill run 00:" in err and "smoke: test_serves passed" in err  # progress lines
    doc = results(tmp_path)
    assert doc["summary"]["gate"] == "pass"
    assert doc["run"]["reproduce"]["command"] == "kubedrill run --no-setup --suite smoke"
    assert (tmp_path / "reports" / "latest" / "report.html").is_file()


def test_run_failing_gate_exits_nonzero_with_reason(fake_repo: Path, tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--no-setup", "--suite", "smoke", "--suite", "drain"]) == 1
    out, _ = capfd.readouterr()
    assert "FAIL  drain" in out and "availability: 3 requests failed during the drain" in out
    assert results(tmp_path)["summary"]["gate"] == "fail"


def test_run_no_tests_collected_is_a_clear_error(fake_repo: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (fake_repo / "suites" / "smoke" / "test_smoke.py").write_text("X = 1\n")
    assert cli.main(["run", "--no-setup", "--suite", "smoke"]) == cli.EXIT_NOTHING_CHECKED
    assert "gate not passed: requested suite ran no test, so nothing was checked there: smoke (no test collected)" \
        in capfd.readouterr().err


def test_run_all_skipped_does_not_pass(fake_repo: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (fake_repo / "suites" / "smoke" / "test_smoke.py").write_text(
        "import pytest\ndef test_x():\n    pytest.skip('needs kind')\n")
    assert cli.main(["run", "--no-setup", "--suite", "smoke"]) == cli.EXIT_NOTHING_CHECKED
    assert "gate not passed: requested suite ran no test, so nothing was checked there: smoke (all 1 tests " \
        "skipped: needs kind)" in capfd.readouterr().err


def test_setup_failure_writes_a_report_and_exits_10(fake_repo: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[Any, ...]] = []

    def ensure_ready(version: str | None, need_kind: bool = True, node_image: str | None = None) -> None:
        calls.append((version, need_kind))
        raise RuntimeError("docker engine did not start: dockerd exited 1")

    monkeypatch.setitem(sys.modules, "kubedrill.cluster.setup",
                        types.SimpleNamespace(ensure_ready=ensure_ready))  # type: ignore[arg-type]
    assert cli.main(["run", "--suite", "smoke", "--k8s-version", "v1.34.4"]) == cli.EXIT_SETUP
    assert calls == [("v1.34.4", True)]
    doc = results(tmp_path)
    assert doc["summary"]["gate"] == "fail"
    assert any("docker engine did not start" in n for n in doc["run"]["notes"])
    assert "docker engine did not start" in (tmp_path / "reports" / "latest" / "report.html").read_text()
    assert "host setup failed" in capfd.readouterr().err


def test_existing_cluster_setup_does_not_need_kind(fake_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setitem(sys.modules, "kubedrill.cluster.setup", types.SimpleNamespace(
        ensure_ready=lambda v, need_kind=True: calls.append(need_kind)))
    monkeypatch.setattr(cli.subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=0))
    cli.main(["run", "--suite", "smoke", "--kubeconfig", "/k", "--context", "c"])
    assert calls == [False]


def test_doctor_and_build_delegate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, list[str]]] = []

    def fake_main(name: str, code: int) -> Any:
        def main(argv: list[str]) -> int:
            seen.append((name, argv))
            return code
        return main

    monkeypatch.setitem(sys.modules, "kubedrill.cluster.doctor", types.SimpleNamespace(main=fake_main("doctor", 0)))
    monkeypatch.setitem(sys.modules, "kubedrill.cluster.setup", types.SimpleNamespace(main=fake_main("build", 3)))
    assert cli.main(["doctor", "--fix"]) == 0
    assert cli.main(["build", "--version", "v1.34.4"]) == 3
    assert seen == [("doctor", ["--fix"]), ("build", ["--version", "v1.34.4"])]


def test_build_builds_the_pinned_and_the_upgrade_source_image(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    """`python -m kubedrill build [--with-upgrade-source]`, as tests/run.sh calls it, reaches the real
    kubedrill.cluster.setup.main (the engine and the image recipes are stubbed)."""
    from kubedrill.cluster import setup
    from kubedrill.cluster.paths import default_k8s_version, versions

    built: list[str] = []

    def build_node_image(version: str) -> str:
        built.append(version)
        return f"kubedrill/node:{version}-x"

    monkeypatch.setattr(setup, "ensure_engine", lambda: None)
    monkeypatch.setattr(setup, "ensure_kind", lambda: tmp_path / "kind")
    monkeypatch.setattr(setup, "build_node_image", build_node_image)
    monkeypatch.setenv("KUBEDRILL_CACHE", str(tmp_path))
    assert cli.main(["build"]) == 0
    assert built == [default_k8s_version()]
    built.clear()
    assert cli.main(["build", "--with-upgrade-source"]) == 0
    assert built == [default_k8s_version(), versions()["K8S_UPGRADE_FROM"]]


def test_missing_delegate_is_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "kubedrill.cluster.doctor", None)  # import raises ModuleNotFoundError
    assert cli.main(["doctor"]) == cli.EXIT_USAGE
    assert "kubedrill.cluster.doctor.main is not available" in capsys.readouterr().err


def test_report_rerenders_from_results_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = tmp_path / "demo.html"
    assert cli.main(["report", "--demo", "-o", str(demo)]) == 0
    assert "<svg" in demo.read_text()
    # Round trip: write a results.json, re-render it elsewhere.
    from kubedrill.report.demo import demo_results
    from kubedrill.report.writer import write_reports

    latest = write_reports(demo_results(), tmp_path / "reports", 0.0, 1, [], [], snapshot=False)
    (latest / "report.html").unlink()
    capsys.readouterr()
    assert cli.main(["report", str(latest / "results.json")]) == 0
    assert (latest / "report.html").is_file()
    captured = capsys.readouterr()
    assert "kubedrill gate: FAIL" in captured.out and "warning" not in captured.err


def test_report_on_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path / "nope.json")]) == cli.EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


def test_python_dash_m_entry_point() -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "kubedrill", "--help"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 0 and "kubedrill run" in proc.stdout
