"""The run configuration: one YAML file says what to rehearse, on which cluster, against which SLOs.

A release gate must be reproducible from a file in version control, so everything a run needs is
here: the cluster (a kind config kubedrill creates, or an existing kubeconfig/context with an
explicit allowance for disruptive suites), the workloads, the SLOs and thresholds, and the suites.
Command-line options override the file; `load_config(path, overrides)` merges both and validates
the result, naming the offending field and the allowed values in every error, because a typo in a
gate's config must stop the run before a cluster is created, not half an hour into it.

Example (every key is optional)::

    version: 1
    cluster:
      kind_config: three-node        # single | three-node | ha
      k8s_version: v1.34.4           # default: K8S_VERSION in clusters/versions.env
      provider: kind                 # kind | generic (Kubernetes API only: no node shell, no host ports)
    load:                            # in-cluster load (used where no host port reaches the workload)
      workers: 1                     # locust worker pods
      image: null                    # locust image the nodes can pull; default: kubedrill's, loaded into kind
    workloads:
      - name: web
        spec: workloads/web.yaml     # a WorkloadSpec file, read by kubedrill.workload
      - spec: workloads/api.yaml     # name defaults to the file's stem: api
        slo: {availability: 0.99}    # per-workload override of the global slo
    slo:                             # defaults shown; each field says which suites read it
      availability: 0.999
      max_failed_requests: 0
      grace_budget_ratio: 0.8
      min_load_rps: 5.0
      max_lost_writes: 0
      max_unavailability_s: 3.0
      max_election_s: 5.0
    suites: [smoke, drain, shutdown]
    gate:                            # what may not close the gate; nothing by default
      allow_unknown:                 # UNKNOWN verdicts allowed: a check name, or check + test (globs)
        - in-flight
        - {check: sigkill, test: "*thirdparty*", reason: "runtime events not kept on this host"}
      allow_empty_suites: [upgrade]  # requested suites that may run no test (none collected or all skipped)
    reports_dir: reports

Command-line options that set these fields are declared in kubedrill/options.py.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from kubedrill.cluster.handle import PROVIDERS
from kubedrill.workload.manifests import YAMLTextError, named, read_utf8, shown, yaml_documents

CONFIG_VERSION = 1
KIND_CONFIGS: tuple[str, ...] = ("single", "three-node", "ha")
SUITES: tuple[str, ...] = ("smoke", "etcd", "shutdown", "drain", "cluster-etcd", "upgrade", "preflight", "node-loss")
DISRUPTIVE_SUITES: frozenset[str] = frozenset({"drain", "cluster-etcd", "upgrade", "node-loss"})
"""The one definition of "disruptive": a suite that changes the state of the Kubernetes cluster it
runs on (drains or reboots nodes, restores etcd, upgrades nodes).

It guards an *existing attached cluster* (`cluster.kubeconfig`), which may be someone's real
cluster: there a disruptive suite runs only when `cluster.allow_disruptive_on` spells out the
context, and the default suite list leaves them out. A kind cluster kubedrill creates is its own
to break. The standalone etcd suite is not disruptive: it never touches a Kubernetes cluster, only
etcd containers it starts itself. This frozenset is the only list: the pytest plugin marks every
test of these suites `disruptive`, and the `cluster` fixture skips a marked test on an attached
cluster without the allowance. A single test of another suite may carry the marker itself (the
smoke suite's cordon/drain check); a whole module may not (tests/unit/test_config.py checks).
"""


def suite_dir(name: str) -> str:
    """The folder under suites/ that holds a suite: config names use '-', Python packages '_'."""
    return name.replace("-", "_")


class ConfigError(ValueError):
    """A configuration that cannot be run; `problems` lists every field at fault, one per line."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid kubedrill config{where}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class SLOConfig:
    """Thresholds the checkers judge against. Defaults are strict: a gate should be loosened on purpose."""

    # Workload traffic (shutdown, drain, upgrade suites).
    availability: float = 0.999  # fraction of requests that must succeed during a disruption (drain, upgrade)
    max_failed_requests: int = 0  # absolute cap on failed requests during a disruption (shutdown, upgrade)
    grace_budget_ratio: float = 0.8  # a pod must exit within this fraction of its grace period (shutdown)
    min_load_rps: float = 5.0  # below this the load is too thin for the verdict to mean anything (drain, upgrade)
    # The standalone etcd suite (faults, partitions, quorum loss).
    max_lost_writes: int = 0  # acknowledged writes not read back at their revision after a fault
    max_unavailability_s: float = 3.0  # longest write outage during a fault, not counting a leader election
    max_election_s: float = 5.0  # longest time from a fault to a new leader

    def etcd_outage_allowed(self, leader_changes: bool) -> float:
        """The longest etcd write outage a fault may cause. Writes wait for a new leader when the
        fault removes the old one, so such a fault also gets max_election_s on top."""
        return self.max_unavailability_s + (self.max_election_s if leader_changes else 0.0)


@dataclass(frozen=True)
class ClusterConfig:
    """Where the suites run: a kind cluster kubedrill creates, or an existing cluster."""

    kind_config: str | None = "three-node"  # None when an existing cluster is used
    k8s_version: str | None = None  # None: the pinned default from clusters/versions.env
    node_image: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    allow_disruptive_on: str | None = None  # the context name, spelled out, to allow disruption
    keep: bool = False  # keep kind clusters after the run (debugging)
    # What kubedrill may do there (kubedrill.cluster.handle): None = kind for a kind cluster on this
    # host, else generic. "generic" on a kind cluster kubedrill creates hands the suites an API-only
    # handle: how CI rehearses a staging cluster.
    provider: str | None = None

    @property
    def existing(self) -> bool:
        return self.kubeconfig is not None

    @property
    def disruptive_allowed(self) -> bool:
        """Disruptive suites may run: always on kind, on an existing cluster only when named."""
        return not self.existing or self.allow_disruptive_on is not None


@dataclass(frozen=True)
class LoadConfig:
    """In-cluster load (kubedrill.load.incluster): used where no host port reaches the workload."""

    workers: int = 1  # locust worker pods
    image: str | None = None  # a locust image the nodes can pull; None: kubedrill's, loaded into kind nodes


@dataclass(frozen=True)
class WorkloadConfig:
    """One application under test: a WorkloadSpec YAML (read by kubedrill.workload, which holds the
    manifests, Service and paths) and the SLO it is judged by."""

    name: str
    spec: str
    slo: SLOConfig = field(default_factory=SLOConfig)


@dataclass(frozen=True)
class UnknownAllowance:
    """One `gate.allow_unknown` entry: UNKNOWN verdicts of a check matching `check`, in a test whose
    node id matches `test`, do not close the gate. `*` and `?` are the only wildcards (brackets are
    literal: they are part of parametrized ids). `reason` is the team's word on why, shown in the report."""

    check: str = "*"
    test: str = "*"
    reason: str = ""


@dataclass(frozen=True)
class GateConfig:
    """Explicit exceptions to "the gate opens only on evidence". Empty by default: kubedrill never
    allows what it could not see on its own; a run config has to say so, and the report lists what
    each entry allowed (kubedrill.report.results applies them)."""

    allow_unknown: tuple[UnknownAllowance, ...] = ()
    allow_empty_suites: tuple[str, ...] = ()  # config names (SUITES), e.g. "cluster-etcd"


@dataclass(frozen=True)
class RunConfig:
    """A validated run. Build with load_config(); `to_dict()` is what results.json records."""

    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    workloads: tuple[WorkloadConfig, ...] = ()
    slo: SLOConfig = field(default_factory=SLOConfig)
    suites: tuple[str, ...] = SUITES
    gate: GateConfig = field(default_factory=GateConfig)
    reports_dir: str = "reports"
    source: str | None = None  # the file it came from, if any
    # Dotted keys set by the file or an override (not defaulted), e.g. {"cluster.kind_config"}:
    # lets the pytest plugin fill only the options the user actually chose.
    explicit: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["explicit"] = sorted(self.explicit)
        return d

    def slo_for(self, workload: str | None) -> SLOConfig:
        """The SLO a workload is judged by: its own override, else the global one."""
        for w in self.workloads:
            if w.name == workload:
                return w.slo
        return self.slo


# --- loading -------------------------------------------------------------------------------------

def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                origins: Mapping[str, str] | None = None) -> RunConfig:
    """Read `path` (None: defaults only), apply `overrides`, validate, and return a RunConfig.

    `overrides` maps dotted field names to values, e.g. {"cluster.kind_config": "ha",
    "slo.availability": 0.99, "suites": ["smoke"]}; None values are ignored so that unset
    command-line options do not clobber the file. `origins` names where an override came from
    (e.g. {"cluster.kind_config": "--cluster-config"}) so errors can point at the option.
    Raises ConfigError listing every problem found.
    """
    raw: dict[str, Any] = {}
    source = str(path) if path else None
    if path:
        p = Path(path).expanduser()
        try:
            documents = yaml_documents(read_utf8(p))
        except YAMLTextError as exc:
            raise ConfigError([exc.at(p)], source) from None
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            raise ConfigError([f"cannot read config file: {getattr(exc, 'strerror', None) or exc}"], source) from None
        if len(documents) > 1:
            raise ConfigError([f"{source}:{documents[1][0]}: a config is one YAML document, this file has "
                               f"{len(documents)}; remove the '---' that starts another"], source)
        loaded = documents[0][1] if documents and documents[0][1] is not None else {}
        if not isinstance(loaded, dict):
            raise ConfigError([f"config: expected a mapping at the top level, got {_tname(loaded)}"], source)
        raw = loaded
    merged = apply_overrides(raw, overrides or {})
    return validate(merged, source=source, origins=origins or {})


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """Parse `--kd-set key=value` items; values are YAML scalars or lists (`suites=[smoke,drain]`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"--kd-set {item!r}: expected key=value, e.g. slo.availability=0.99"])
        try:
            documents = yaml_documents(value)
        except YAMLTextError:
            documents = [(1, value)]  # not YAML: the text itself, which validation then judges
        out[key.strip()] = documents[0][1] if len(documents) == 1 else (value if documents else None)
    return out


# Keys that select how the cluster is obtained; an override of one group drops the other group
# from the file, so `--kubeconfig` on top of a file saying `kind_config: ha` means "use that cluster".
_KIND_KEYS = ("kind_config", "node_image")
_EXISTING_KEYS = ("kubeconfig", "context")


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with dotted-key overrides applied (None values skipped)."""
    out = copy.deepcopy(dict(raw))
    live = {k: v for k, v in overrides.items() if v is not None}
    cluster_keys = {k.split(".", 1)[1] for k in live if k.startswith("cluster.")}
    if isinstance(out.get("cluster"), dict):
        if cluster_keys & set(_EXISTING_KEYS) and not cluster_keys & set(_KIND_KEYS):
            for k in _KIND_KEYS:
                out["cluster"].pop(k, None)
        if cluster_keys & set(_KIND_KEYS) and not cluster_keys & set(_EXISTING_KEYS):
            for k in (*_EXISTING_KEYS, "allow_disruptive_on"):
                out["cluster"].pop(k, None)
    for key, value in live.items():
        node: dict[str, Any] = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = value
    return out


# --- validation ----------------------------------------------------------------------------------

class _Problems:
    """Collects problems so the user sees all of them at once, not one per run."""

    def __init__(self, origins: Mapping[str, str]) -> None:
        self.items: list[str] = []
        self.origins = origins

    def add(self, dotted: str, message: str) -> None:
        # An entry of a list set by an option (gate.allow_unknown[0]) came from that option too.
        origin = self.origins.get(dotted) or next(
            (o for k, o in self.origins.items() if dotted.startswith((f"{k}.", f"{k}["))), None)
        suffix = f" (from {origin})" if origin else ""
        self.items.append(f"config.{dotted}: {message}{suffix}" if dotted else f"config: {message}{suffix}")


def _tname(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}.get(
        type(v), type(v).__name__)


def _unknown_keys(p: _Problems, where: str, d: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for k in d:
        if k not in allowed:
            name = named(k) if isinstance(k, str) else shown(k)
            p.add(f"{where}.{name}" if where else name, f"unknown field; allowed: {', '.join(allowed)}")


def _mapping(p: _Problems, where: str, v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        p.add(where, f"expected a mapping, got {_tname(v)}")
        return {}
    return v


def _opt_str(p: _Problems, where: str, v: Any) -> str | None:
    if v is None:
        return None
    if _finite(v) is not None:
        return str(v)  # `k8s_version: 1.34` is a YAML float; accept it as text
    if not isinstance(v, str) or not v.strip():
        p.add(where, f"expected a non-empty string, got {shown(v)}")
        return None
    return v


def _slo(p: _Problems, where: str, v: Any, base: SLOConfig) -> SLOConfig:
    d = _mapping(p, where, v)
    names = tuple(f.name for f in fields(SLOConfig))
    _unknown_keys(p, where, d, names)
    values: dict[str, Any] = {}
    for f in fields(SLOConfig):
        if f.name not in d:
            continue
        x = d[f.name]
        dotted = f"{where}.{f.name}"
        if f.type == "int":
            if isinstance(x, bool) or not isinstance(x, int) or x < 0:
                p.add(dotted, f"expected a whole number >= 0, got {shown(x)}")
                continue
            values[f.name] = x
        else:
            number = _finite(x)
            if number is None or number < 0:
                p.add(dotted, f"expected a number >= 0, got {shown(x)}")
                continue
            if f.name in ("availability", "grace_budget_ratio") and not 0 < number <= 1:
                p.add(dotted, f"expected a fraction in (0, 1], got {shown(x)} (e.g. 0.999 for 99.9%)")
                continue
            values[f.name] = number
    return SLOConfig(**{**asdict(base), **values})


def _finite(x: Any) -> float | None:
    """x as a finite float; None for a non-number, NaN, infinity or an int too big for a float."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        number = float(x)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _cluster(p: _Problems, v: Any) -> ClusterConfig:
    d = _mapping(p, "cluster", v)
    _unknown_keys(p, "cluster", d, tuple(f.name for f in fields(ClusterConfig)))
    kubeconfig = _opt_str(p, "cluster.kubeconfig", d.get("kubeconfig"))
    context = _opt_str(p, "cluster.context", d.get("context"))
    allow = _opt_str(p, "cluster.allow_disruptive_on", d.get("allow_disruptive_on"))
    kind_config = _opt_str(p, "cluster.kind_config", d.get("kind_config"))
    node_image = _opt_str(p, "cluster.node_image", d.get("node_image"))
    provider = _opt_str(p, "cluster.provider", d.get("provider"))
    if provider is not None and provider not in PROVIDERS:
        p.add("cluster.provider", f"{provider!r} is not one of {', '.join(PROVIDERS)}")
        provider = None
    keep = d.get("keep", False)
    if not isinstance(keep, bool):
        p.add("cluster.keep", f"expected true or false, got {shown(keep)}")
        keep = False
    if kind_config is not None and kind_config not in KIND_CONFIGS:
        p.add("cluster.kind_config", f"{kind_config!r} is not one of {', '.join(KIND_CONFIGS)}")
    if kubeconfig is None:
        for name, val in (("context", context), ("allow_disruptive_on", allow)):
            if val is not None:
                p.add(f"cluster.{name}", "only applies to an existing cluster; set cluster.kubeconfig too")
        kind_config = kind_config or ClusterConfig.kind_config
    else:
        if kind_config is not None or node_image is not None:
            p.add("cluster", "set either kind_config/node_image (kubedrill creates a kind cluster) or "
                  "kubeconfig/context (use an existing cluster), not both")
        if allow is not None and context is not None and allow != context:
            p.add("cluster.allow_disruptive_on",
                  f"{allow!r} does not name the context in use ({context!r}); disruption is allowed only "
                  "on the context spelled out here")
        kind_config = None
    return ClusterConfig(kind_config=kind_config, k8s_version=_opt_str(p, "cluster.k8s_version", d.get("k8s_version")),
                         node_image=node_image, kubeconfig=kubeconfig, context=context,
                         allow_disruptive_on=allow, keep=keep, provider=provider)


def _load(p: _Problems, v: Any) -> LoadConfig:
    d = _mapping(p, "load", v)
    _unknown_keys(p, "load", d, tuple(f.name for f in fields(LoadConfig)))
    workers = d.get("workers", LoadConfig.workers)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        p.add("load.workers", f"expected a whole number of worker pods from 1 to 64, got {shown(workers)}")
        workers = LoadConfig.workers
    return LoadConfig(workers=workers, image=_opt_str(p, "load.image", d.get("image")))


_WORKLOAD_KEYS = tuple(f.name for f in fields(WorkloadConfig))


def _workloads(p: _Problems, v: Any, base_slo: SLOConfig) -> tuple[WorkloadConfig, ...]:
    if v is None:
        return ()
    if isinstance(v, (str, dict)):
        v = [v]  # `workloads: path.yaml` or a single mapping
    if not isinstance(v, list):
        p.add("workloads", f"expected a list of workloads, got {_tname(v)}")
        return ()
    out: list[WorkloadConfig] = []
    seen: set[str] = set()
    for i, entry in enumerate(v):
        where = f"workloads[{i}]"
        if isinstance(entry, str):
            entry = {"spec": entry}
        if not isinstance(entry, dict):
            p.add(where, f"expected a mapping or a path to a workload spec, got {_tname(entry)}")
            continue
        _unknown_keys(p, where, entry, _WORKLOAD_KEYS)
        if entry.get("spec") is None:
            p.add(f"{where}.spec", "missing: name the workload's spec YAML (see suites/shutdown/example-workload.yaml)")
        spec = _opt_str(p, f"{where}.spec", entry.get("spec"))
        name = _opt_str(p, f"{where}.name", entry.get("name")) or (Path(spec).stem if spec else "") or f"workload-{i}"
        if name in seen:
            p.add(f"{where}.name", f"{name!r} is used by another workload; names must be unique")
        seen.add(name)
        slo = _slo(p, f"{where}.slo", entry.get("slo"), base_slo)
        if spec is not None:
            out.append(WorkloadConfig(name=name, spec=spec, slo=slo))
    return tuple(out)


def _suites(p: _Problems, v: Any, cluster: ClusterConfig) -> tuple[str, ...]:
    if v is None:
        # On an existing cluster without an allowance the default leaves out what would disrupt it.
        return SUITES if cluster.disruptive_allowed else tuple(s for s in SUITES if s not in DISRUPTIVE_SUITES)
    if isinstance(v, str):
        v = [s.strip() for s in v.split(",") if s.strip()]
    if not isinstance(v, list) or not v:
        p.add("suites", f"expected a non-empty list of suites from {', '.join(SUITES)}, got {shown(v)}")
        return SUITES
    out: list[str] = []
    for s in v:
        name = s.replace("_", "-") if isinstance(s, str) else s
        if name not in SUITES:
            p.add("suites", f"{shown(s)} is not one of {', '.join(SUITES)}")
        elif name in DISRUPTIVE_SUITES and not cluster.disruptive_allowed:
            p.add("suites", f"{name!r} disrupts the cluster it runs on; on an existing cluster set "
                  f"cluster.allow_disruptive_on: {named(cluster.context or '<context name>')} to allow it")
        elif name not in out:
            out.append(name)
    return tuple(out)


_ALLOWANCE_KEYS = tuple(f.name for f in fields(UnknownAllowance))
_ALLOW_UNKNOWN_EXAMPLE = "e.g. allow_unknown: [in-flight] or [{check: in-flight, test: '*evict*', reason: ...}]"


def _names(p: _Problems, where: str, v: Any, example: str) -> list[Any]:
    """A list of entries; a string is a comma-separated list (`--kd-set gate.allow_unknown=a,b`)."""
    if v is None:
        return []
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    if not isinstance(v, list):
        p.add(where, f"expected a list, got {_tname(v)} ({example})")
        return []
    return v


def _glob(p: _Problems, where: str, v: Any) -> str | None:
    if not isinstance(v, str) or not v.strip():
        p.add(where, f"expected a non-empty name or glob, got {shown(v)} ({_ALLOW_UNKNOWN_EXAMPLE})")
        return None
    return v.strip()


def _allowance(p: _Problems, where: str, entry: Any) -> UnknownAllowance | None:
    if isinstance(entry, str):
        entry = {"check": entry}
    if not isinstance(entry, dict):
        p.add(where, f"expected a check name or a mapping with {', '.join(_ALLOWANCE_KEYS)}, got {_tname(entry)} "
              f"({_ALLOW_UNKNOWN_EXAMPLE})")
        return None
    _unknown_keys(p, where, entry, _ALLOWANCE_KEYS)
    if "check" not in entry and "test" not in entry:
        p.add(where, "name the check, the test or both: a rule without either would allow every UNKNOWN")
        return None
    check = _glob(p, f"{where}.check", entry.get("check", "*"))
    test = _glob(p, f"{where}.test", entry.get("test", "*"))
    reason = entry.get("reason", "")
    if not isinstance(reason, str):
        p.add(f"{where}.reason", f"expected text saying why this UNKNOWN is acceptable, got {_tname(reason)}")
        reason = ""
    if check is None or test is None:
        return None
    if not check.strip("*") and not test.strip("*"):
        p.add(where, "allows every UNKNOWN verdict in every test, which turns the gate off for all it cannot "
              "see; name the check (e.g. in-flight) or the tests (test: '*thirdparty*')")
        return None
    return UnknownAllowance(check=check, test=test, reason=reason.strip())


def _gate(p: _Problems, v: Any) -> GateConfig:
    d = _mapping(p, "gate", v)
    _unknown_keys(p, "gate", d, tuple(f.name for f in fields(GateConfig)))
    rules = [_allowance(p, f"gate.allow_unknown[{i}]", e)
             for i, e in enumerate(_names(p, "gate.allow_unknown", d.get("allow_unknown"), _ALLOW_UNKNOWN_EXAMPLE))]
    suites: list[str] = []
    for s in _names(p, "gate.allow_empty_suites", d.get("allow_empty_suites"),
                    f"suite names from {', '.join(SUITES)}"):
        name = s.replace("_", "-") if isinstance(s, str) else s
        if name not in SUITES:
            p.add("gate.allow_empty_suites", f"{shown(s)} is not one of {', '.join(SUITES)}")
        elif name not in suites:
            suites.append(name)
    return GateConfig(allow_unknown=tuple(r for r in rules if r is not None), allow_empty_suites=tuple(suites))


_TOP_KEYS = ("version", "cluster", "load", "workloads", "slo", "suites", "gate", "reports_dir")


def validate(raw: Mapping[str, Any], source: str | None = None,
             origins: Mapping[str, str] | None = None) -> RunConfig:
    """Turn a raw mapping into a RunConfig or raise ConfigError naming every bad field."""
    p = _Problems(origins or {})
    _unknown_keys(p, "", raw, _TOP_KEYS)
    version = raw.get("version", CONFIG_VERSION)
    if isinstance(version, bool) or version != CONFIG_VERSION:
        p.add("version", f"{shown(version)} is not a supported config version; supported: {CONFIG_VERSION}")
    cluster = _cluster(p, raw.get("cluster"))
    load = _load(p, raw.get("load"))
    slo = _slo(p, "slo", raw.get("slo"), SLOConfig())
    workloads = _workloads(p, raw.get("workloads"), slo)
    suites = _suites(p, raw.get("suites"), cluster)
    gate = _gate(p, raw.get("gate"))
    reports_dir = _opt_str(p, "reports_dir", raw.get("reports_dir")) or "reports"
    if p.items:
        raise ConfigError(p.items, source)
    return RunConfig(cluster=cluster, load=load, workloads=workloads, slo=slo, suites=suites, gate=gate, reports_dir=reports_dir,
                     source=source, explicit=frozenset(_dotted_keys(raw)))


def _dotted_keys(raw: Mapping[str, Any], prefix: str = "") -> list[str]:
    """{'cluster': {'kind_config': 'ha'}, 'suites': [...]} -> ['cluster', 'cluster.kind_config', 'suites']."""
    out: list[str] = []
    for k, v in raw.items():
        key = f"{prefix}{k}"
        out.append(key)
        if isinstance(v, dict) and key in ("cluster", "load", "slo", "gate"):
            out += _dotted_keys(v, key + ".")
    return out
