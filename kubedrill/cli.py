"""`kubedrill`: the one command a release pipeline runs.

    kubedrill run [-c kubedrill.yaml] [--suite drain ...] [options] [-- extra pytest args]
    kubedrill report [reports/latest/results.json] [-o report.html]
    kubedrill config [kubedrill.yaml] [options]   validate a config and print it resolved
    kubedrill doctor [...]                        check this host (kubedrill.cluster.doctor)
    kubedrill build [--with-upgrade-source]       build and cache node images offline (kubedrill.cluster.setup)
    kubedrill soak --suite NAME --runs N          repeat a suite on fresh clusters, tabulate its flakes (kubedrill.soak)

`run` and `config` take the options of kubedrill/options.py, which a pytest run takes too.

`run` validates the config, prepares the host (engine, kind, node image), runs the chosen suites
in one pytest session (so there is one report), prints the gate table and exits non-zero unless
every gate passed. Clusters are created and deleted by the suites' fixtures, not here, so a
pytest run started by hand behaves the same as `kubedrill run`.

Exit codes: 0 all gates passed; 1 a test failed or could not be judged (UNKNOWN); 2 bad config or
usage; 5 nothing was checked (no tests collected, none passed, or a requested suite ran no test);
10 host setup failed; other codes are pytest's own. The run config's `gate:` section may allow
named UNKNOWN verdicts and empty suites (docs/results-schema.md, "The gate").
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from kubedrill import options
from kubedrill.config import ConfigError, RunConfig, suite_dir
from kubedrill.report.meta import COMMAND_ENV, REPO_ROOT

EXIT_NOTHING_CHECKED = 5
EXIT_USAGE = 2
EXIT_SETUP = 10


class Progress:
    """`[kubedrill run 01:23] message` lines on stderr, so CI logs show where the time went."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        m, s = divmod(int(time.monotonic() - self.t0), 60)
        print(f"[kubedrill run {m:02d}:{s:02d}] {msg}", file=sys.stderr, flush=True)


# --- argument parsing ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kubedrill", description="Rehearse cluster maintenance and gate a release "
                                 "on the result.", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=(__doc__ or "").split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="command", metavar="{run,report,config,doctor,build,soak}")
    run = sub.add_parser("run", help="set up, run the suites, write the report, exit by the gate")
    options.add_to_argparse(run)
    run.add_argument("--no-setup", action="store_true", help="skip host setup (engine, kind, node image)")
    run.add_argument("-n", "--workers", help="pytest-xdist workers (e.g. 2 or auto); tests grouped by xdist_group")
    run.add_argument("--dry-run", action="store_true", help="print the pytest command instead of running it")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra arguments for pytest")
    rep = sub.add_parser("report", help="re-render report.html from a results.json")
    rep.add_argument("results", nargs="?", default="reports/latest/results.json")
    rep.add_argument("-o", "--output", help="HTML file to write (default: report.html next to results.json)")
    rep.add_argument("--demo", action="store_true", help="render a made-up run (to look at the report layout)")
    cfg = sub.add_parser("config", help="validate a config and print it with defaults filled in")
    cfg.add_argument("file", nargs="?", metavar="FILE", help="the config file (the same as -c FILE)")
    options.add_to_argparse(cfg)
    sub.add_parser("doctor", help="check this host can run kubedrill (args passed through)", add_help=False)
    sub.add_parser("build", help="build and cache images offline (args passed through)", add_help=False)
    sub.add_parser("soak", help="run a suite N times on fresh clusters and tabulate its flakes", add_help=False)
    return ap


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the run will use: file, then command-line options (raises ConfigError)."""
    return options.run_config(vars(args))


# --- run -------------------------------------------------------------------------------------------

def suite_paths(rc: RunConfig, root: Path | None = None) -> tuple[list[Path], list[str]]:
    """Folders of the configured suites that exist, and the names of those that do not (yet)."""
    root = root or REPO_ROOT
    found: list[Path] = []
    missing: list[str] = []
    for name in rc.suites:
        d = root / "suites" / suite_dir(name)
        if d.is_dir():
            found.append(d)
        else:
            missing.append(name)
    return found, missing


def pytest_command(args: argparse.Namespace, paths: Sequence[Path], reports_dir: Path) -> list[str]:
    """The pytest invocation for a run: suite folders plus the options the user gave (the plugin
    re-reads the config file itself, so only explicit overrides are passed through)."""
    # --rootdir pins conftest loading and nodeids (suites/drain/...) to the checkout.
    cmd = [sys.executable, "-m", "pytest", "--rootdir", str(REPO_ROOT), *(str(p) for p in paths)]
    cmd += options.pytest_args({**vars(args), "reports_dir": str(reports_dir)})
    cmd += ["--kd-progress", "-v", "-rfEs"]
    if args.workers:
        cmd += ["-n", str(args.workers), "--dist", "loadgroup"]
    extra = list(args.pytest_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return cmd + extra


def _setup(rc: RunConfig, say: Callable[[str], None]) -> str | None:
    """Prepare the host (lead's kubedrill.cluster.setup); returns an error message or None."""
    try:
        setup = importlib.import_module("kubedrill.cluster.setup")
    except ImportError as exc:
        return f"kubedrill.cluster.setup is not available ({exc}); rerun with --no-setup if the host is ready"
    need_kind = not rc.cluster.existing
    say(f"setup: ensure_ready(k8s_version={rc.cluster.k8s_version or 'pinned'}, need_kind={need_kind})")
    kwargs: dict[str, Any] = {"need_kind": need_kind}
    if rc.cluster.node_image:
        kwargs["node_image"] = rc.cluster.node_image
    try:
        setup.ensure_ready(rc.cluster.k8s_version, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any setup failure must become a report, not a traceback
        return f"host setup failed: {type(exc).__name__}: {exc}"
    return None


def _broken_report(reports_dir: Path, started: float, note: str, argv: list[str], rc: RunConfig) -> Path:
    """A report for a run that never reached pytest, so the gate reader still learns why."""
    from kubedrill.report.writer import write_reports

    return write_reports([], reports_dir, started, EXIT_SETUP, [note], argv, config=rc.to_dict())


def _print_summary(results: Path) -> dict[str, Any] | None:
    from kubedrill.report.summary import format_summary

    try:
        doc: dict[str, Any] = json.loads(results.read_text())
    except (OSError, ValueError) as exc:
        print(f"kubedrill: no readable results at {results}: {exc}", file=sys.stderr)
        return None
    print(format_summary(doc))
    return doc


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    say = Progress()
    started = time.time()
    try:
        rc = resolve_config(args)
    except ConfigError as exc:
        print(f"kubedrill: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reports_dir = Path(rc.reports_dir).resolve()
    say(f"config: {rc.source or 'defaults'}; suites: {', '.join(rc.suites)}; cluster: "
        + (f"existing {rc.cluster.context or rc.cluster.kubeconfig}" if rc.cluster.existing
           else f"kind {rc.cluster.kind_config}"))
    paths, missing = suite_paths(rc)
    for name in missing:
        say(f"suite {name!r}: suites/{suite_dir(name)} does not exist in this checkout; skipped")
    if not paths:
        print(f"kubedrill: none of the requested suites exist under {REPO_ROOT / 'suites'} "
              f"({', '.join(rc.suites)}): nothing to run, so the gate cannot pass", file=sys.stderr)
        return EXIT_NOTHING_CHECKED
    cmd = pytest_command(args, paths, reports_dir)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    if not args.no_setup:
        err = _setup(rc, say)
        if err:
            say(err)
            latest = _broken_report(reports_dir, started, err, ["kubedrill", *argv], rc)
            _print_summary(latest / "results.json")
            say(f"report: {latest / 'report.html'}")
            return EXIT_SETUP
    say(f"pytest: {shlex.join(cmd[1:])}")
    env = {**os.environ, COMMAND_ENV: shlex.join(["kubedrill", *argv])}
    try:
        code = subprocess.run(cmd, cwd=REPO_ROOT, env=env).returncode
    except KeyboardInterrupt:
        # The child got the same SIGINT and cleans up its clusters; report what it wrote.
        code = 2
    say(f"pytest exited {code}")
    doc = _print_summary(reports_dir / "latest" / "results.json")
    say(f"report: {reports_dir / 'latest' / 'report.html'}")
    if code == EXIT_NOTHING_CHECKED:
        # 5 is also the plugin's code for a requested suite that ran no test: say which, when the report can.
        why = doc["summary"]["reason"] if doc else (
            f"no tests were collected from {', '.join(str(p.relative_to(REPO_ROOT)) for p in paths)}: nothing was checked")
        print(f"kubedrill: gate not passed: {why}", file=sys.stderr)
        return EXIT_NOTHING_CHECKED
    if code == 0 and (doc is None or doc["summary"]["gate"] != "pass"):
        why = doc["summary"]["reason"] if doc else "pytest wrote no results.json"
        print(f"kubedrill: gate not passed: {why}", file=sys.stderr)
        return EXIT_NOTHING_CHECKED
    return code


# --- the other subcommands -------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from kubedrill.report import results as R
    from kubedrill.report.writer import render_file

    if args.demo:
        from kubedrill.report.demo import demo_results

        doc = R.build_doc(demo_results(), R.RunInfo(started=time.time() - 420, finished=time.time(), exitstatus=1,
                                                    argv=["suites/"], notes=["demo data: not a real run"]))
        out = Path(args.output or "kubedrill-demo-report.html")
    else:
        src = Path(args.results)
        try:
            doc = R.load(src)
        except (OSError, ValueError) as exc:
            print(f"kubedrill report: cannot read {src}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        for problem in R.validate(doc):
            print(f"kubedrill report: warning: {src}: {problem}", file=sys.stderr)
        out = Path(args.output) if args.output else src.with_name("report.html")
    render_file(doc, out)
    from kubedrill.report.summary import format_summary

    print(format_summary(doc))
    print(f"report: {out}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.file and args.kd_config and args.file != args.kd_config:
        print(f"kubedrill config: FILE ({args.file}) and -c/--config ({args.kd_config}) name different files; "
              "give the file once", file=sys.stderr)
        return EXIT_USAGE
    args.kd_config = args.file or args.kd_config
    try:
        rc = resolve_config(args)
    except ConfigError as exc:
        print(f"kubedrill: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(yaml.safe_dump(json.loads(json.dumps(rc.to_dict())), sort_keys=False), end="")
    return 0


def delegate(module: str, argv: list[str]) -> int:
    """Run `module.main(argv)` (the cluster tooling), imported only when asked for."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        mod = None
    main = getattr(mod, "main", None)
    if not callable(main):
        print(f"kubedrill: {module}.main is not available in this checkout (the cluster tooling provides it)",
              file=sys.stderr)
        return EXIT_USAGE
    return int(main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["doctor"]:
        return delegate("kubedrill.cluster.doctor", argv[1:])
    if argv[:1] == ["build"]:
        return delegate("kubedrill.cluster.setup", argv[1:])
    if argv[:1] == ["soak"]:
        return delegate("kubedrill.soak", argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args, argv)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "config":
        return cmd_config(args)
    parser.print_help()
    return EXIT_USAGE
