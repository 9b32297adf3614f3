"""Fuzzed user input: the run config, the workload spec and the manifests.

Every input a user can hand kubedrill must give either a valid result or one error of the module's
own type (ConfigError, WorkloadSpecError, ManifestError) that names the file -- never a traceback
of another type, and never a hang. Three kinds of input per loader, all written to a real file
and read by the real loader:

- structured: the valid document with any key, at any depth, kept, dropped or replaced by a value
  of the wrong type (None, NaN, huge numbers, unicode, empty strings, lists, mappings), plus
  unknown keys;
- mutated: one valid document with one change at one random place;
- raw: YAML-ish text (anchors and aliases, alias bombs, deep nesting, tabs, duplicate keys,
  several documents, directives, control characters) and bytes that are not UTF-8.

The example counts come from the hypothesis profile (tests/unit/conftest.py): deterministic in
`tox -e unit`, `HYPOTHESIS_PROFILE=fuzz-long` for 10,000 random examples per test.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubedrill.config import KIND_CONFIGS, SUITES, ConfigError, RunConfig, load_config, parse_set
from kubedrill.options import run_config
from kubedrill.workload.manifests import Manifest, ManifestError, load_manifest_files
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError, load_workload

T = TypeVar("T")

# --- valid documents, the seeds of every mutation ---------------------------------------------------

VALID_CONFIG: dict[str, Any] = {
    "version": 1,
    "cluster": {"kind_config": "three-node", "k8s_version": "v1.34.4", "node_image": "kindest/node:v1.34.4",
                "keep": False},
    "workloads": [{"name": "web", "spec": "workloads/web.yaml", "slo": {"availability": 0.99}}, "api.yaml"],
    "slo": {"availability": 0.999, "max_failed_requests": 0, "grace_budget_ratio": 0.8, "min_load_rps": 5.0,
            "max_lost_writes": 0, "max_unavailability_s": 3.0, "max_election_s": 5.0},
    "suites": ["smoke", "drain", "cluster_etcd"],
    "reports_dir": "reports",
}
ATTACHED_CONFIG: dict[str, Any] = {  # the other way to name a cluster: an existing one
    **VALID_CONFIG,
    "cluster": {"kubeconfig": "/tmp/kubeconfig", "context": "kind-kd", "allow_disruptive_on": "kind-kd", "keep": True},
}
DEPLOY: Manifest = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"terminationGracePeriodSeconds": 30,
                                   "containers": [{"name": "web", "image": "example/web:1",
                                                   "ports": [{"containerPort": 8080}],
                                                   "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}}]}}},
}
SERVICE: Manifest = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-svc"},
    "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30123}]},
}
VALID_SPEC: dict[str, Any] = {
    "name": "web", "namespace": "web-ns", "manifests": ["k8s/"], "selector": {"app": "web"}, "service": "web-svc",
    "node_port": 30123, "service_port": 80, "replicas": 2, "grace_seconds": 30, "images": ["example/web:1"],
    "health_path": "/", "slow_path": "/slow?seconds={seconds}", "slo": 0.999, "prestop": True,
}

# --- strategies -------------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from([
    "", " ", "\t", "\n", "~", "null", "yes", "no", "on", "0x1F", "0o17", "1e400", "-.inf", ".nan", "1_000",
    "2020-13-45", "12:30:00", "=", "<<", "*a", "&a", "!!binary", "{seconds}", "{x}", "/slow?seconds={seconds}{",
    "ünïcødé", "\u202e\u200b", "😀", "a\x00b", "\x85", "C:\\path", "../../etc/passwd", "a" * 300, "three-node",
    "smoke", "cluster-etcd", "k8s/", "workload.yaml", "Deployment", "/",
])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | ODD_TEXT  # Cs: no surrogates in a str
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=-(2**80), max_value=2**80), st.sampled_from([0, 1, -1, 2**63, 10**400]),
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-320, 0.5, 1.5]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, st.dates(), st.binary(max_size=8))
JUNK = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT | NUMBERS | st.none() | st.booleans(), kids, max_size=4),
    max_leaves=8,
)


def shaped(valid: Any) -> st.SearchStrategy[Any]:
    """`valid`, with any key at any depth kept, dropped or replaced by junk, and unknown keys added."""
    if isinstance(valid, dict):
        known = st.fixed_dictionaries({}, optional={k: shaped(v) for k, v in valid.items()})
        unknown = st.dictionaries(TEXT, JUNK, max_size=2)
        return st.one_of(st.tuples(known, unknown).map(lambda kv: {**kv[1], **kv[0]}), JUNK)
    if isinstance(valid, list):
        return st.one_of(st.lists(st.one_of(*(shaped(v) for v in valid)), max_size=4), JUNK)
    return st.one_of(st.just(valid), JUNK)


@st.composite
def mutated(draw: st.DrawFn, valid: Any) -> Any:
    """A deep copy of `valid` with one change at one random place: replace, drop or add a value."""
    doc = copy.deepcopy(valid)
    if not isinstance(doc, (dict, list)) or not doc:
        return draw(JUNK)
    parent: Any = doc
    while True:  # walk down a random path, stopping at a random depth
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = parent[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            parent = child
            continue
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[key] = draw(JUNK)
        elif action == "drop":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JUNK)
        else:
            parent.append(draw(JUNK))
        break
    return doc


def dumped(docs: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return docs.map(lambda d: yaml.safe_dump(d, allow_unicode=True, sort_keys=False).encode("utf-8"))


def dumped_all(docs: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[bytes]:
    return docs.map(lambda ds: yaml.safe_dump_all(ds, allow_unicode=True, sort_keys=False).encode("utf-8"))


YAMLISH_PIECES = st.sampled_from([
    ": ", "- ", "\n", "  ", "    ", "\t", "---\n", "...\n", "&a ", "*a", "&b ", "*b", "[", "]", "{", "}", ", ", "? ",
    "!!str ", "!!int ", "!!binary ", "!!timestamp ", "!!python/object:os.system ", "!custom ", "<<: ", "'", '"', "# ",
    "|\n", ">-\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\ufeff", "\x00", "\x07", "\x85", "\u2028", "ü", "\\",
    "name", "manifests", "cluster", "suites", "slo", "kind", "apiVersion", "metadata", "spec", "items", "List",
    "web", "1", "-1", "1e400", "9" * 5000, "0x", ".nan", "2020-13-45", "0000-01-01", "true",
])


@st.composite
def yamlish(draw: st.DrawFn, valid_text: str) -> bytes:
    """Raw YAML-like input: fragments, valid text cut or spliced, bombs, deep nesting, odd encodings."""
    kind = draw(st.sampled_from(["pieces", "splice", "bomb", "cycle", "deep", "tabs", "duplicate", "multi",
                                 "bytes", "encoding", "text"]))
    if kind == "pieces":
        return "".join(draw(st.lists(YAMLISH_PIECES | TEXT, max_size=30))).encode("utf-8", "surrogatepass")
    if kind == "splice":
        lines = valid_text.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines)))
        junk = "".join(draw(st.lists(YAMLISH_PIECES, max_size=6)))
        cut = draw(st.integers(0, len(lines)))
        return "".join(lines[:at] + [junk] + lines[at:cut or None]).encode("utf-8")
    if kind == "bomb":  # billion laughs: each level holds `width` aliases of the one below
        width, levels = draw(st.integers(2, 12)), draw(st.integers(2, 12))
        lines = ["l0: &l0 [lol, lol]"]
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
        where = draw(st.sampled_from(["", "name: ", "suites: ", "slo: {availability: ", "manifests: "]))
        tail = f"{where}*l{levels - 1}" + ("}" if "{" in where else "")
        return ("\n".join(lines) + "\n" + (f"x: {tail}" if not where else tail) + "\n").encode()
    if kind == "cycle":
        return draw(st.sampled_from([b"a: &a [*a]\n", b"&a {k: *a}\n", b"name: &n {x: [*n]}\n",
                                     b"- &a [1, [2, *a]]\n", b"suites: &s [*s]\n"]))
    if kind == "deep":
        n = draw(st.integers(50, 3000))
        shape = draw(st.sampled_from(["flow-seq", "flow-map", "block-seq", "block-map"]))
        if shape == "flow-seq":
            return ("[" * n + "]" * n).encode()
        if shape == "flow-map":
            return ("{a: " * n + "1" + "}" * n).encode()
        if shape == "block-seq":
            return "".join("  " * i + "-\n" for i in range(min(n, 400))).encode()
        return "".join("  " * i + "k:\n" for i in range(min(n, 400))).encode()
    if kind == "tabs":
        return valid_text.replace("  ", "\t", draw(st.integers(1, 5))).encode()
    if kind == "duplicate":
        lines = valid_text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        return "".join(lines[: i + 1] + [lines[i]] + lines[i + 1:]).encode()
    if kind == "multi":
        parts = draw(st.lists(st.sampled_from([valid_text, "", "null\n", "- a\n", "a: 1\n", "...\n"]), min_size=1, max_size=4))
        return "---\n".join(parts).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "encoding":
        codec = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]))
        return (valid_text + "# é ü\n").encode(codec)
    return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")


# --- the loaders, and what a good outcome is -----------------------------------------------------------

def one_clear_error(call: Callable[[], T], error: type[Exception], file: Path) -> T | None:
    """Run a loader: its result, or None after checking its error is the one clear kind.

    Any other exception type propagates, and hypothesis reports it with its traceback.
    """
    try:
        return call()
    except error as exc:
        message = str(exc)
        assert message.strip(), f"{error.__name__} with an empty message"
        assert "Traceback" not in message, message
        assert str(file) in message, f"the message does not name {file}: {message}"
        # One error: one line, or for ConfigError a header and one indented line per problem.
        lines = message.split("\n")
        assert len(lines) == 1 or (error is ConfigError and all(line.startswith("  ") for line in lines[1:])), message
        return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per test module (function-scoped tmp_path is refused by hypothesis' health check):
    a valid manifests folder k8s/ for the spec tests, and the files each example overwrites."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "k8s").mkdir()
    (root / "k8s" / "app.yaml").write_text(yaml.safe_dump_all([DEPLOY, SERVICE]))
    return root


def check_config(raw: bytes, workdir: Path) -> None:
    path = workdir / "kubedrill.yaml"
    path.write_bytes(raw)
    rc = one_clear_error(lambda: load_config(path), ConfigError, path)
    if rc is not None:
        assert isinstance(rc, RunConfig)
        assert rc.suites and set(rc.suites) <= set(SUITES)
        assert rc.cluster.kind_config in (*KIND_CONFIGS, None)
        for slo in (rc.slo, *(w.slo for w in rc.workloads)):
            for value in vars(slo).values():
                assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        assert all(isinstance(w.name, str) and w.name and isinstance(w.spec, str) for w in rc.workloads)
        assert isinstance(rc.reports_dir, str) and rc.reports_dir


def check_spec(raw: bytes, workdir: Path) -> None:
    path = workdir / "workload.yaml"
    path.write_bytes(raw)
    spec = one_clear_error(lambda: load_workload(path), WorkloadSpecError, path)
    if spec is not None:
        assert isinstance(spec, WorkloadSpec)
        assert isinstance(spec.name, str) and spec.name and isinstance(spec.namespace, str)
        assert spec.selector and all(isinstance(k, str) and isinstance(v, str) for k, v in spec.selector.items())
        for port in (spec.node_port, spec.service_port):
            assert port is None or (isinstance(port, int) and not isinstance(port, bool))
        assert isinstance(spec.replicas, int) and isinstance(spec.grace_seconds, int)
        assert all(isinstance(i, str) for i in spec.images) and isinstance(spec.prestop, bool)
        assert 0 < spec.slo <= 1
        if spec.slow_path is not None:
            assert spec.slow_url_path(1.5)


def check_manifests(raw: bytes, workdir: Path) -> None:
    """The manifest file read by itself, then through a workload spec (whose inference reads fields)."""
    path = workdir / "m" / "app.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    docs = one_clear_error(lambda: load_manifest_files([path]), ManifestError, path)
    if docs is not None:
        assert all(isinstance(d, dict) and isinstance(d["kind"], str) and d["metadata"]["name"] for d in docs)
    spec = workdir / "m-workload.yaml"
    spec.write_text("name: web\nmanifests: [m/app.yaml]\n")
    one_clear_error(lambda: load_workload(spec), WorkloadSpecError, spec)


CONFIG_TEXT = yaml.safe_dump(VALID_CONFIG, sort_keys=False)
SPEC_TEXT = yaml.safe_dump(VALID_SPEC, sort_keys=False)
MANIFEST_TEXT = yaml.safe_dump_all([DEPLOY, SERVICE], sort_keys=False)


def test_the_seeds_are_valid(workdir: Path) -> None:
    """The valid documents load, so mutations start from inputs that reach every field."""
    path = workdir / "seed.yaml"
    path.write_text(CONFIG_TEXT)
    assert load_config(path).suites == ("smoke", "drain", "cluster-etcd")
    path.write_text(yaml.safe_dump(ATTACHED_CONFIG))
    assert load_config(path).cluster.existing
    path = workdir / "workload.yaml"
    path.write_text(SPEC_TEXT)
    assert load_workload(path).node_port == 30123
    (workdir / "m").mkdir(exist_ok=True)
    (workdir / "m" / "app.yaml").write_text(MANIFEST_TEXT)
    assert [d["kind"] for d in load_manifest_files([workdir / "m" / "app.yaml"])] == ["Deployment", "Service"]


# --- run config -----------------------------------------------------------------------------------

@given(raw=dumped(shaped(VALID_CONFIG) | shaped(ATTACHED_CONFIG)))
def test_config_structured(workdir: Path, raw: bytes) -> None:
    check_config(raw, workdir)


@given(raw=dumped(mutated(VALID_CONFIG) | mutated(ATTACHED_CONFIG)))
def test_config_mutated(workdir: Path, raw: bytes) -> None:
    check_config(raw, workdir)


@given(raw=yamlish(CONFIG_TEXT))
def test_config_raw(workdir: Path, raw: bytes) -> None:
    check_config(raw, workdir)


DOTTED_KEYS = st.sampled_from(["cluster.kind_config", "cluster.kubeconfig", "cluster.context", "cluster.keep",
                               "cluster.allow_disruptive_on", "cluster.node_image", "cluster.k8s_version", "suites",
                               "workloads", "slo.availability", "slo.max_failed_requests", "reports_dir", "version",
                               "slo", "cluster", "", ".", "cluster..x", "slo.availability.x", "unknown.key"]) | TEXT


@given(raw=dumped(mutated(VALID_CONFIG) | mutated(ATTACHED_CONFIG)), sets=st.lists(st.tuples(DOTTED_KEYS, st.text(max_size=20) | YAMLISH_PIECES), max_size=4),
       items=st.lists(TEXT, max_size=3), suites=st.lists(TEXT | st.sampled_from(SUITES), max_size=3),
       kind=st.none() | TEXT | st.sampled_from(KIND_CONFIGS), kubeconfig=st.none() | TEXT, keep=st.booleans())
def test_config_options_and_overrides(workdir: Path, raw: bytes, sets: list[tuple[str, str]], items: list[str],
                                      suites: list[str], kind: str | None, kubeconfig: str | None, keep: bool) -> None:
    """The options path: --kd-set items (well-formed or not), the other options, over a mutated file."""
    path = workdir / "kubedrill.yaml"
    path.write_bytes(raw)
    values = {"kd_config": str(path), "kd_set": [f"{k}={v}" for k, v in sets] + items, "suite": suites,
              "cluster_config": kind, "kubeconfig": kubeconfig, "keep_cluster": keep}
    try:
        rc = run_config(values, environ={})
    except ConfigError as exc:
        message = str(exc)
        assert message.strip() and "Traceback" not in message
        assert str(path) in message or "--kd-set" in message, message
    else:
        assert isinstance(rc, RunConfig) and set(rc.suites) <= set(SUITES)


@given(items=st.lists(st.text(max_size=30) | st.tuples(DOTTED_KEYS, YAMLISH_PIECES | TEXT).map("=".join), max_size=5))
def test_parse_set(items: list[str]) -> None:
    try:
        parsed = parse_set(items)
    except ConfigError as exc:
        assert "--kd-set" in str(exc) and "expected key=value" in str(exc)
    else:
        assert all(isinstance(k, str) and k for k in parsed)


# --- workload spec ---------------------------------------------------------------------------------

@given(raw=dumped(shaped(VALID_SPEC)))
def test_spec_structured(workdir: Path, raw: bytes) -> None:
    check_spec(raw, workdir)


@given(raw=dumped(mutated(VALID_SPEC)))
def test_spec_mutated(workdir: Path, raw: bytes) -> None:
    check_spec(raw, workdir)


@given(raw=yamlish(SPEC_TEXT))
def test_spec_raw(workdir: Path, raw: bytes) -> None:
    check_spec(raw, workdir)


# --- manifests -------------------------------------------------------------------------------------

MANIFEST_DOCS = st.lists(st.one_of(shaped(DEPLOY), shaped(SERVICE), JUNK,
                                   st.builds(lambda items: {"apiVersion": "v1", "kind": "List", "items": items},
                                             st.lists(shaped(DEPLOY) | shaped(SERVICE) | JUNK, max_size=2) | JUNK)),
                         min_size=1, max_size=3)


@given(raw=dumped_all(MANIFEST_DOCS))
def test_manifests_structured(workdir: Path, raw: bytes) -> None:
    check_manifests(raw, workdir)


@given(raw=dumped_all(st.tuples(mutated(DEPLOY), mutated(SERVICE)).map(list)))
def test_manifests_mutated(workdir: Path, raw: bytes) -> None:
    check_manifests(raw, workdir)


@given(raw=yamlish(MANIFEST_TEXT))
def test_manifests_raw(workdir: Path, raw: bytes) -> None:
    check_manifests(raw, workdir)
