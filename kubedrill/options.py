"""Command-line options that set run-config fields: declared once, for `kubedrill` and for pytest.

`kubedrill run` and a pytest run started by hand must take the same options with the same meaning,
and `kubedrill run` hands them on to pytest. So every such option is one `Option` row in OPTIONS:
its flag, the config key it sets and its help. `add_to_argparse` / `add_to_pytest` declare the
rows, `run_config` turns parsed values into the RunConfig, and `pytest_args` turns the
same values back into pytest arguments. Adding an option is adding a row.

Precedence, highest first: `--kd-set KEY=VALUE`, an option, its environment variable, the config
file, the built-in default.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

from kubedrill.config import KIND_CONFIGS, SUITES, RunConfig, load_config, parse_set

if TYPE_CHECKING:  # the engine imports without pytest installed
    import pytest

# The option naming the config file; the option holding `--kd-set` items. Both are handled by name
# because they are not one config key: one is the file itself, the other any key.
CONFIG_FILE = "kd_config"
SET = "kd_set"


def _listed(items: list[str]) -> list[str]:
    """A repeatable, comma-separated option: `--suite smoke --suite drain,upgrade` -> ['smoke', 'drain', 'upgrade']."""
    return [s.strip() for item in items for s in item.split(",") if s.strip()]


def _whole(value: str) -> int | str:
    """`--load-workers 2` -> 2; anything else is passed on for validation to name the field."""
    try:
        return int(value)
    except ValueError:
        return value


def _one_workload(path: str) -> list[dict[str, str]]:
    """`--workload FILE` replaces the config's workloads with that one spec."""
    return [{"spec": path}]


@dataclass(frozen=True)
class Option:
    """One command-line option and the config key it sets."""

    flag: str  # "--cluster-config"
    key: str | None  # dotted config key it sets, e.g. "cluster.kind_config"; None: CONFIG_FILE and SET
    help: str
    kind: Literal["value", "switch", "repeat"] = "value"
    metavar: str | None = None
    env: str | None = None  # environment variable read when the option is not given
    path: bool = False  # a path: made absolute before it is handed to pytest, which runs in the checkout
    convert: Callable[[Any], Any] | None = None  # option value -> config value (default: as is)
    aliases: tuple[str, ...] = ()  # extra spellings for `kubedrill` only (pytest's own -c means its ini file)
    in_pytest: bool = True  # False: `kubedrill` only; handed to pytest as `--kd-set KEY=...`

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def argparse_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for argparse's add_argument (pytest's addoption takes the same)."""
        help_ = f"{self.help} (env {self.env})" if self.env else self.help
        kwargs: dict[str, Any] = {"dest": self.dest, "help": help_}
        if self.kind == "switch":
            kwargs.update(action="store_true", default=False)
        elif self.kind == "repeat":
            kwargs.update(action="append", default=[], metavar=self.metavar)
        else:
            kwargs.update(default=None, metavar=self.metavar)
        return kwargs


OPTIONS: tuple[Option, ...] = (
    Option("--kd-config", None, "run config file (YAML); fields in kubedrill/config.py", metavar="FILE",
           env="KUBEDRILL_CONFIG", path=True, aliases=("-c", "--config")),
    Option("--suite", "suites", f"suite to run (repeatable, or comma-separated): {', '.join(SUITES)}",
           kind="repeat", metavar="NAME", convert=_listed, in_pytest=False),
    Option("--cluster-config", "cluster.kind_config", f"kind cluster config: {' | '.join(KIND_CONFIGS)}",
           metavar="NAME"),
    Option("--k8s-version", "cluster.k8s_version", "Kubernetes version (default: K8S_VERSION in clusters/versions.env)",
           metavar="VERSION"),
    Option("--node-image", "cluster.node_image",
           "kind node image (default: upstream if pullable, else the local offline build)", metavar="IMAGE"),
    Option("--kubeconfig", "cluster.kubeconfig", "use this existing cluster instead of creating a kind cluster",
           metavar="FILE", path=True),
    Option("--context", "cluster.context", "kubeconfig context of the existing cluster", metavar="NAME"),
    Option("--provider", "cluster.provider",
           "what kubedrill may do on the cluster: kind (a kind cluster on this host: node shell, host ports) | "
           "generic (Kubernetes API only; on a kind cluster kubedrill creates, rehearses a staging cluster); "
           "default: kind for a kind cluster on this host, else generic", metavar="PROVIDER"),
    Option("--allow-disruptive-on", "cluster.allow_disruptive_on",
           "name the existing cluster's context on which disruptive suites and tests may run", metavar="CONTEXT"),
    Option("--keep-cluster", "cluster.keep", "do not delete kind clusters at the end (debugging)", kind="switch"),
    Option("--load-workers", "load.workers", "locust worker pods of the in-cluster load (default 1)", metavar="N",
           convert=_whole),
    Option("--load-image", "load.image",
           "locust image for the in-cluster load, for clusters whose nodes pull from a registry (default: kubedrill's, "
           "loaded into kind nodes)", metavar="IMAGE"),
    Option("--workload", "workloads", "workload spec (YAML) to test instead of the config's or the bundled sample app",
           metavar="FILE", path=True, convert=_one_workload),
    Option("--allow-unknown", "gate.allow_unknown",
           "UNKNOWN verdicts of this check may not close the gate (repeatable, or comma-separated; replaces the "
           "config's gate.allow_unknown); the report lists each one it allowed", kind="repeat", metavar="CHECK",
           convert=_listed),
    Option("--allow-empty-suite", "gate.allow_empty_suites",
           "this requested suite may run no test (none collected or all skipped) without closing the gate "
           "(repeatable; replaces the config's gate.allow_empty_suites)", kind="repeat", metavar="SUITE",
           convert=_listed),
    Option("--reports-dir", "reports_dir", "where latest/ and the timestamped copies go; default reports",
           metavar="DIR", env="KUBEDRILL_REPORTS", path=True),
    Option("--kd-set", None, "override one config field, e.g. --kd-set slo.availability=0.99 (repeatable)",
           kind="repeat", metavar="KEY=VALUE"),
)
_BY_DEST = {o.dest: o for o in OPTIONS}


def option(dest: str) -> Option:
    """The row of an option by its dest, e.g. option("kubeconfig")."""
    return _BY_DEST[dest]


def add_to_argparse(parser: argparse.ArgumentParser) -> None:
    """Declare every option on a `kubedrill` subcommand."""
    for o in OPTIONS:
        parser.add_argument(*o.aliases, o.flag, **o.argparse_kwargs())


def add_to_pytest(group: pytest.OptionGroup) -> None:
    """Declare the options pytest takes (all but the `kubedrill`-only ones)."""
    for o in OPTIONS:
        if o.in_pytest:
            group.addoption(o.flag, **o.argparse_kwargs())


def _given(value: Any) -> bool:
    """Set on the command line: unset values are None, False (a switch) or [] (a repeat)."""
    return value is not None and value is not False and value != []


def config_file(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str | None:
    """The config file named by --kd-config (or -c/--config), else by KUBEDRILL_CONFIG."""
    environ = os.environ if environ is None else environ
    o = option(CONFIG_FILE)
    given = values.get(o.dest)
    return str(given) if _given(given) else (environ.get(o.env or "") or None)


def overrides(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Config overrides from parsed option values, and where each came from (for error messages).

    `values` maps option dests to values (`vars(argparse_namespace)` or pytest's `vars(config.option)`);
    options that are absent or unset are skipped, so they never clobber the file.
    """
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for o in OPTIONS:
        if o.key is None:
            continue
        value, origin = values.get(o.dest), o.flag
        if not _given(value) and o.env and environ.get(o.env):
            value, origin = environ[o.env], o.env
        if _given(value):
            out[o.key] = o.convert(value) if o.convert else value
            origins[o.key] = origin
    for key, value in parse_set(list(values.get(SET) or [])).items():
        out[key] = value
        origins[key] = f"--kd-set {key}"
    return out, origins


def run_config(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> RunConfig:
    """The RunConfig for these option values: the config file, then the options (raises ConfigError)."""
    found, origins = overrides(values, environ)
    return load_config(config_file(values, environ), found, origins)


def pytest_args(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """The same options as pytest arguments, for `kubedrill run` to hand on to pytest.

    Paths become absolute (pytest runs in the checkout, not in the caller's directory), the config
    file named by KUBEDRILL_CONFIG is passed explicitly for the same reason, and `kubedrill`-only
    options become `--kd-set KEY=...` placed before the user's own `--kd-set`, which still win.
    """
    out: list[str] = []
    cfg = config_file(values, environ)
    if cfg:
        out += [option(CONFIG_FILE).flag, str(Path(cfg).resolve())]
    for o in OPTIONS:
        value: Any = values.get(o.dest)
        if o.dest in (CONFIG_FILE, SET) or not _given(value):
            continue
        if not o.in_pytest:
            out += [option(SET).flag, f"{o.key}={_yaml_flow(o.convert(value) if o.convert else value)}"]
        elif o.kind == "switch":
            out.append(o.flag)
        else:
            items: list[Any] = list(value) if o.kind == "repeat" else [value]
            for item in items:
                out += [o.flag, str(Path(item).resolve()) if o.path else str(item)]
    for item in values.get(SET) or []:
        out += [option(SET).flag, str(item)]
    return out


def _yaml_flow(value: Any) -> str:
    """A `--kd-set` value parse_set reads back: lists as `[a, b]`, scalars as text."""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
