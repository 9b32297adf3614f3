"""The run config: defaults, overrides, and errors that name the field and the allowed values."""

from __future__ import annotations

import ast
import inspect
import re
import time
from dataclasses import fields
from pathlib import Path

import pytest

from kubedrill.config import (DISRUPTIVE_SUITES, SUITES, ConfigError, GateConfig, RunConfig, SLOConfig,
                              UnknownAllowance, apply_overrides,
                              load_config, parse_set, suite_dir)
from kubedrill.report.meta import REPO_ROOT


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "kubedrill.yaml"
    p.write_text(text)
    return p


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return exc.value.problems


def test_defaults_without_a_file() -> None:
    rc = load_config(None)
    assert rc.cluster.kind_config == "three-node"
    assert not rc.cluster.existing
    assert rc.slo == SLOConfig()
    assert rc.slo.availability == 0.999 and rc.slo.max_failed_requests == 0 and rc.slo.grace_budget_ratio == 0.8
    assert rc.suites == SUITES
    assert rc.explicit == frozenset()


def test_full_file_round_trips(tmp_path: Path) -> None:
    rc = load_config(write(tmp_path, """
version: 1
cluster: {kind_config: ha, k8s_version: v1.34.4}
workloads:
  - name: web
    spec: workloads/web.yaml
  - spec: deploy/api.yaml
    slo: {availability: 0.99}
slo: {availability: 0.9995, max_failed_requests: 2, max_election_s: 2.5}
suites: [smoke, cluster_etcd]
reports_dir: out
"""))
    assert rc.cluster.kind_config == "ha" and rc.cluster.k8s_version == "v1.34.4"
    assert [(w.name, w.spec) for w in rc.workloads] == [("web", "workloads/web.yaml"), ("api", "deploy/api.yaml")]
    api = rc.workloads[1]
    # A workload's SLO starts from the global one and overrides only what it names.
    assert api.slo.availability == 0.99 and api.slo.max_failed_requests == 2 and api.slo.max_election_s == 2.5
    assert rc.slo_for("web").availability == 0.9995
    assert rc.suites == ("smoke", "cluster-etcd")
    assert rc.reports_dir == "out"
    assert "cluster.kind_config" in rc.explicit and "slo.availability" in rc.explicit
    d = rc.to_dict()
    assert d["workloads"][1] == {"name": "api", "spec": "deploy/api.yaml", "slo": {**d["slo"], "availability": 0.99}}
    assert d["source"].endswith("kubedrill.yaml")


def test_bad_kind_config_names_field_and_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "cluster: {kind_config: big}\n"))
    assert problems(exc) == ["config.cluster.kind_config: 'big' is not one of single, three-node, ha"]
    assert str(tmp_path) in str(exc.value)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, """
cluster: {kind_config: big, colour: red}
slo: {availability: 1.5, max_failed_requests: -1, grace_budget_ratio: high}
suites: [smoke, chaos]
workloads: [{name: x}]
extra_top: 1
"""))
    msgs = "\n".join(problems(exc))
    for expected in ("config.cluster.kind_config: 'big' is not one of single, three-node, ha",
                     "config.cluster.colour: unknown field; allowed: kind_config",
                     "config.slo.availability: expected a fraction in (0, 1]",
                     "config.slo.max_failed_requests: expected a whole number >= 0, got -1",
                     "config.slo.grace_budget_ratio: expected a number >= 0, got 'high'",
                     "config.suites: 'chaos' is not one of smoke, etcd, shutdown, drain, cluster-etcd, upgrade",
                     "config.workloads[0].spec: missing: name the workload's spec YAML",
                     "config.extra_top: unknown field"):
        assert expected in msgs, msgs


def test_overrides_beat_the_file_and_errors_name_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster: {kind_config: single}\nslo: {availability: 0.99}\n")
    rc = load_config(path, {"cluster.kind_config": "ha", "slo.availability": None})
    assert rc.cluster.kind_config == "ha" and rc.slo.availability == 0.99  # None overrides are ignored
    with pytest.raises(ConfigError) as exc:
        load_config(path, {"cluster.kind_config": "huge"}, {"cluster.kind_config": "--cluster-config"})
    assert problems(exc) == ["config.cluster.kind_config: 'huge' is not one of single, three-node, ha "
                             "(from --cluster-config)"]


def test_kubeconfig_override_switches_file_from_kind_to_existing(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster: {kind_config: ha}\n")
    rc = load_config(path, {"cluster.kubeconfig": "/k/config", "cluster.context": "staging"})
    assert rc.cluster.existing and rc.cluster.kind_config is None and rc.cluster.context == "staging"


def test_existing_cluster_defaults_leave_out_disruptive_suites() -> None:
    rc = load_config(None, {"cluster.kubeconfig": "/k", "cluster.context": "prod"})
    assert not rc.cluster.disruptive_allowed
    assert not set(rc.suites) & DISRUPTIVE_SUITES and "smoke" in rc.suites


def test_existing_cluster_refuses_disruptive_suite_without_allowance() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"cluster.kubeconfig": "/k", "cluster.context": "prod", "suites": ["drain"]})
    assert problems(exc) == ["config.suites: 'drain' disrupts the cluster it runs on; on an existing cluster set "
                             "cluster.allow_disruptive_on: prod to allow it"]
    rc = load_config(None, {"cluster.kubeconfig": "/k", "cluster.context": "prod",
                            "cluster.allow_disruptive_on": "prod", "suites": ["drain"]})
    assert rc.suites == ("drain",) and rc.cluster.disruptive_allowed


def test_allowance_must_name_the_context_in_use() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"cluster.kubeconfig": "/k", "cluster.context": "prod", "cluster.allow_disruptive_on": "dev"})
    assert "does not name the context in use ('prod')" in problems(exc)[0]


def test_existing_and_kind_fields_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "cluster: {kind_config: ha, kubeconfig: /k}\n"))
    assert "set either kind_config/node_image" in problems(exc)[0]


def test_context_without_kubeconfig_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"cluster.context": "prod"})
    assert problems(exc) == ["config.cluster.context: only applies to an existing cluster; set cluster.kubeconfig too"]


def test_yaml_and_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"kubedrill.yaml:2:1: malformed YAML"):
        load_config(write(tmp_path, "cluster: [unclosed\n"))
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got a list"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="config.version: 2 is not a supported config version"):
        load_config(write(tmp_path, "version: 2\n"))


# Found by tests/unit/test_fuzz_inputs.py: each of these raised another exception type, hung, or
# was accepted as a value no suite can use.
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"cluster:\n  kind_config: caf\xe9\n", "kubedrill.yaml:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
        (b"slo: {min_load_rps: 1" + b"0" * 400 + b"}\n", "config.slo.min_load_rps: expected a number >= 0, got <an integer"),
        (b"cluster: {k8s_version: 2020-13-45}\n", "kubedrill.yaml:1:24: a value cannot be read as its type (ValueError"),
        (b"cluster: {k8s_version: .nan}\n", "config.cluster.k8s_version: expected a non-empty string, got nan"),
        (b"version: true\n", "config.version: True is not a supported config version"),
        (b"'': 1\n", "config.'': unknown field"),
        (b"suites: [smoke]\nsuites: [drain]\n", "kubedrill.yaml:2:1: duplicate key 'suites' (first at line 1)"),
        (b"suites: [smoke]\n---\nsuites: [drain]\n", "kubedrill.yaml:3: a config is one YAML document, this file has 2"),
        (b"suites: &s [*s]\n", "kubedrill.yaml:1:9: an alias (*name) refers to a value that contains it"),
        (b"cluster: " + b"[" * 2000 + b"]" * 2000 + b"\n", "kubedrill.yaml:1:110: malformed YAML: nested deeper than 100 levels"),
        (b"cluster: {context: a\x00b}\n", "kubedrill.yaml:1: malformed YAML: character U+0000 is not allowed in YAML"),
        (b"suites: [drain]\ncluster: {kubeconfig: k, context: \"kind\\nx\"}\n",
         "set cluster.allow_disruptive_on: 'kind\\nx' to allow it"),
        (b"\"a\\nb\": 1\n", "config.'a\\nb': unknown field"),
    ],
    ids=["not-utf8", "huge-int", "bad-date", "nan-version-string", "bool-version", "empty-key", "duplicate-key",
         "two-documents", "self-alias", "deep", "nul", "newline-in-context", "newline-in-key"],
)
def test_hostile_files_give_one_config_error(tmp_path: Path, raw: bytes, problem: str) -> None:
    path = tmp_path / "kubedrill.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)
    assert any(problem in p for p in problems(exc)), problems(exc)
    assert all("\n" not in p for p in problems(exc)), problems(exc)  # one line per problem


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """A billion-laughs config used to hang in the error message's repr of `suites`."""
    levels = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "kubedrill.yaml"
    path.write_text("\n".join(levels) + "\nsuites: *l8\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"aliases \(\*name\) expand this document to 926,177,115 values from 29"):
        load_config(path)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("value", ["!!int", "!!timestamp x", "!!bool", "a\x00b", "[a, &x [*x]]"])
def test_parse_set_keeps_unreadable_yaml_as_text(value: str) -> None:
    """These made PyYAML raise IndexError/AttributeError/KeyError (or a self-containing list) out of
    --kd-set; the text is kept and validation then says what the field expects."""
    assert parse_set([f"cluster.kind_config={value}"]) == {"cluster.kind_config": value}
    with pytest.raises(ConfigError, match="config.cluster.kind_config: .* is not one of single, three-node, ha"):
        load_config(None, parse_set([f"cluster.kind_config={value}"]))


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).cluster == RunConfig().cluster


def test_parse_set_reads_yaml_values() -> None:
    assert parse_set(["slo.availability=0.99", "suites=[smoke, drain]", "cluster.keep=true"]) == {
        "slo.availability": 0.99, "suites": ["smoke", "drain"], "cluster.keep": True}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_set(["nonsense"])


def test_apply_overrides_creates_sections_and_copies() -> None:
    raw = {"slo": {"availability": 0.9}}
    out = apply_overrides(raw, {"slo.max_failed_requests": 3, "cluster.kind_config": "ha"})
    assert out == {"slo": {"availability": 0.9, "max_failed_requests": 3}, "cluster": {"kind_config": "ha"}}
    assert raw == {"slo": {"availability": 0.9}}


def test_workload_shorthands_and_duplicates() -> None:
    rc = load_config(None, {"workloads": "apps/web.yaml"})
    assert rc.workloads[0].name == "web" and rc.workloads[0].spec == "apps/web.yaml"
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"workloads": [{"name": "a", "spec": "x.yaml"}, {"name": "a", "spec": "y.yaml"}]})
    assert problems(exc) == ["config.workloads[1].name: 'a' is used by another workload; names must be unique"]


def test_workloads_are_spec_files_only() -> None:
    """Inline manifests/service/ports were accepted but read by no suite (drain silently tested the
    sample app instead), so they are refused, pointing at the spec file that carries them."""
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"workloads": [{"name": "api", "manifests": ["api.yaml"], "ports": [8080]}]})
    assert problems(exc) == [
        "config.workloads[0].manifests: unknown field; allowed: name, spec, slo",
        "config.workloads[0].ports: unknown field; allowed: name, spec, slo",
        "config.workloads[0].spec: missing: name the workload's spec YAML (see suites/shutdown/example-workload.yaml)"]


@pytest.mark.parametrize("key", ["seed", "chaos"])
def test_fields_nothing_read_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {key: 1}, {key: f"--kd-set {key}"})
    assert problems(exc) == [f"config.{key}: unknown field; allowed: version, cluster, load, workloads, slo, suites, "
                             f"gate, reports_dir (from --kd-set {key})"]


def test_provider_and_in_cluster_load_are_read_and_checked() -> None:
    rc = load_config(None, {"cluster.provider": "generic", "load.workers": 3, "load.image": "reg/locust:1"})
    assert rc.cluster.provider == "generic" and rc.load.workers == 3 and rc.load.image == "reg/locust:1"
    assert load_config(None).cluster.provider is None and load_config(None).load.workers == 1
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"cluster.provider": "existing", "load.workers": 0, "load.size": 1},
                    {"cluster.provider": "--provider", "load.workers": "--load-workers"})
    assert problems(exc) == [
        "config.cluster.provider: 'existing' is not one of kind, generic (from --provider)",
        "config.load.size: unknown field; allowed: workers, image",
        "config.load.workers: expected a whole number of worker pods from 1 to 64, got 0 (from --load-workers)"]


def _suite_sources() -> str:
    """The suites and the scenarios whose judge() they call with the run config's SLO."""
    files = [*(REPO_ROOT / "suites").rglob("*.py"), *(REPO_ROOT / "kubedrill" / "scenarios").rglob("*.py")]
    return "\n".join(p.read_text() for p in sorted(files))


def _slo_fields_read_by_suites() -> set[str]:
    """`slo.<field>` in a suite, or `self.<field>` in an SLOConfig method a suite calls as `slo.<method>(`."""
    source = _suite_sources()
    read = set(re.findall(r"\bslo\.(\w+)\b(?!\()", source))
    for method in re.findall(r"\bslo\.(\w+)\(", source):
        read |= set(re.findall(r"\bself\.(\w+)", inspect.getsource(getattr(SLOConfig, method))))
    return read


@pytest.mark.parametrize("name", [f.name for f in fields(SLOConfig)])
def test_every_slo_field_is_read_by_a_suite(name: str) -> None:
    """A threshold in the config that no suite applies would let a gate pass on a limit it never checked."""
    assert name in _slo_fields_read_by_suites(), f"no suite reads slo.{name}"


def test_etcd_outage_allows_the_election_only_when_the_leader_changes() -> None:
    slo = SLOConfig()
    assert (slo.etcd_outage_allowed(False), slo.etcd_outage_allowed(True)) == (3.0, 8.0)
    tight = load_config(None, {"slo.max_unavailability_s": 1, "slo.max_election_s": 2}).slo
    assert (tight.etcd_outage_allowed(False), tight.etcd_outage_allowed(True)) == (1.0, 3.0)


# -- "disruptive" ---------------------------------------------------------------------------------

def _module_marks(path: Path) -> set[str]:
    """Marker names in a test module's `pytestmark = [...]` (read statically: no import, no fixtures)."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Attribute) and n.value.attr == "mark"}
    return set()


def test_disruptive_suites_exist_and_no_other_suite_marks_itself_disruptive() -> None:
    """DISRUPTIVE_SUITES is the one definition (the plugin marks their tests); a whole module marked
    `disruptive` elsewhere would be a second, disagreeing one, as the etcd suite once was."""
    for name in DISRUPTIVE_SUITES:
        assert name in SUITES and (REPO_ROOT / "suites" / suite_dir(name)).is_dir(), name
    allowed = {suite_dir(n) for n in DISRUPTIVE_SUITES}
    stray = [str(p.relative_to(REPO_ROOT)) for p in sorted((REPO_ROOT / "suites").glob("*/test_*.py"))
             if p.parent.name not in allowed and "disruptive" in _module_marks(p)]
    assert stray == []


def test_standalone_etcd_suite_runs_on_an_attached_cluster_without_allowance() -> None:
    """It starts its own etcd containers and never touches the attached Kubernetes cluster."""
    assert "etcd" not in DISRUPTIVE_SUITES
    attached = {"cluster.kubeconfig": "/k", "cluster.context": "prod"}
    assert "etcd" in load_config(None, attached).suites
    assert load_config(None, {**attached, "suites": ["etcd"]}).suites == ("etcd",)


def test_suite_dir_maps_names_to_packages() -> None:
    assert suite_dir("cluster-etcd") == "cluster_etcd" and suite_dir("smoke") == "smoke"


# -- gate: what may not close the gate ------------------------------------------------------------

def test_gate_allowances_default_to_nothing_and_read_both_forms(tmp_path: Path) -> None:
    assert load_config(None).gate == GateConfig()
    rc = load_config(write(tmp_path, """
gate:
  allow_unknown:
    - in-flight
    - {check: sigkill, test: "*[nginx-broken/delete]", reason: no runtime events on this host}
    - {test: "*thirdparty*"}
  allow_empty_suites: [upgrade, cluster_etcd]
"""))
    assert rc.gate.allow_unknown == (UnknownAllowance("in-flight"),
                                     UnknownAllowance("sigkill", "*[nginx-broken/delete]", "no runtime events on this host"),
                                     UnknownAllowance("*", "*thirdparty*"))
    assert rc.gate.allow_empty_suites == ("upgrade", "cluster-etcd")
    assert "gate.allow_unknown" in rc.explicit
    assert rc.to_dict()["gate"]["allow_unknown"][0] == {"check": "in-flight", "test": "*", "reason": ""}


def test_bad_gate_entries_name_the_file_the_field_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, """
gate:
  allow_unknown: [in-flight, "*", {check: sigkill, tset: x}, {reason: because}, 7, {check: ""}]
  allow_empty_suites: [chaos]
  allow_everything: true
""")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)
    assert problems(exc) == [
        "config.gate.allow_everything: unknown field; allowed: allow_unknown, allow_empty_suites",
        "config.gate.allow_unknown[1]: allows every UNKNOWN verdict in every test, which turns the gate off for all it "
        "cannot see; name the check (e.g. in-flight) or the tests (test: '*thirdparty*')",
        "config.gate.allow_unknown[2].tset: unknown field; allowed: check, test, reason",
        "config.gate.allow_unknown[3]: name the check, the test or both: a rule without either would allow every "
        "UNKNOWN",
        "config.gate.allow_unknown[4]: expected a check name or a mapping with check, test, reason, got int (e.g. "
        "allow_unknown: [in-flight] or [{check: in-flight, test: '*evict*', reason: ...}])",
        "config.gate.allow_unknown[5].check: expected a non-empty name or glob, got '' (e.g. allow_unknown: "
        "[in-flight] or [{check: in-flight, test: '*evict*', reason: ...}])",
        f"config.gate.allow_empty_suites: 'chaos' is not one of {', '.join(SUITES)}"]


def test_gate_allowances_from_options_replace_the_file(tmp_path: Path) -> None:
    from kubedrill.options import run_config

    path = write(tmp_path, "gate: {allow_unknown: [traffic], allow_empty_suites: [upgrade]}\n")
    rc = run_config({"kd_config": str(path), "allow_unknown": ["in-flight,sigkill"], "allow_empty_suite": ["etcd"]},
                    environ={})
    assert [a.check for a in rc.gate.allow_unknown] == ["in-flight", "sigkill"]
    assert rc.gate.allow_empty_suites == ("etcd",)
    rc = run_config({"kd_set": ["gate.allow_unknown=[in-flight]"]}, environ={})
    assert rc.gate.allow_unknown == (UnknownAllowance("in-flight"),)
    with pytest.raises(ConfigError) as exc:
        run_config({"allow_empty_suite": ["chaos"]}, environ={})
    assert problems(exc) == [f"config.gate.allow_empty_suites: 'chaos' is not one of {', '.join(SUITES)} "
                             "(from --allow-empty-suite)"]
    with pytest.raises(ConfigError) as exc:
        run_config({"allow_unknown": ["*"]}, environ={})
    assert problems(exc)[0].endswith("(from --allow-unknown)")
