"""WorkloadSpec: what kubedrill needs to know about the workload under test, and its YAML file.

A user points kubedrill at their own app with a small file (`--workload my-app.yaml`):

    name: my-api                  # required
    manifests: [deploy.yaml, k8s/] # required; files or directories, relative to this file
    health_path: /                 # what the load hits (default /)
    slow_path: /slow?seconds={seconds}   # optional: an endpoint that holds a request in flight
    slo: 0.999                     # success ratio the availability check demands

Everything else (selector, service, node_port, replicas, grace_seconds, images, prestop) is read
from the manifests when omitted, and may be given to override or to settle an ambiguity. Why infer:
a spec that restates the manifests drifts from them; the manifests are the truth.
Validation errors name the file and the field, and say what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from kubedrill.workload.manifests import (
    Manifest,
    ManifestError,
    load_manifest_files,
    pod_templates,
    with_namespace,
)

T = TypeVar("T")
DEFAULT_GRACE_SECONDS = 30  # Kubernetes' default terminationGracePeriodSeconds


class WorkloadSpecError(ValueError):
    """The workload spec file or its manifests are unusable; the message names file and field."""


@dataclass(frozen=True)
class WorkloadSpec:
    """The workload under test. Times are seconds; paths are URL paths on the Service."""

    name: str
    namespace: str
    selector: dict[str, str]
    service: str | None
    node_port: int | None
    service_port: int | None
    replicas: int
    grace_seconds: int
    images: tuple[str, ...]
    documents: tuple[Manifest, ...]
    manifests: tuple[Path, ...] = ()
    health_path: str = "/"
    slow_path: str | None = None
    slo: float = 0.999
    prestop: bool = False
    shutdown_mode: str | None = None  # only for the bundled sample app
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def slow_url_path(self, seconds: float) -> str:
        """The URL path that holds a request in flight for `seconds` (needs `slow_path`)."""
        if self.slow_path is None:
            raise WorkloadSpecError(
                f"workload {self.name!r} has no slow_path, so in-flight requests cannot be probed; "
                "set slow_path (e.g. /slow?seconds={seconds}) in the workload spec"
            )
        return self.slow_path.format(seconds=seconds)

    def in_namespace(self, namespace: str) -> "WorkloadSpec":
        """The same workload in another namespace (each test run gets its own)."""
        return dataclasses.replace(self, namespace=namespace)


def render_manifests(spec: WorkloadSpec) -> list[Manifest]:
    """The spec's manifests, deep-copied, with the spec's namespace set: ready for the API."""
    return with_namespace(spec.documents, spec.namespace)


_FIELDS: dict[str, str] = {
    "name": "a non-empty string",
    "namespace": "a Kubernetes namespace name",
    "manifests": "a list of files or directories",
    "selector": "a mapping of label names to values",
    "service": "the Service name",
    "node_port": "an integer in 30000-32767",
    "service_port": "an integer port",
    "replicas": "an integer >= 1",
    "grace_seconds": "an integer >= 1",
    "images": "a list of image references",
    "health_path": "a URL path starting with /",
    "slow_path": "a URL path starting with / containing {seconds}",
    "slo": "a number in (0, 1]",
    "prestop": "true or false",
}


class _Fields:
    """Typed access to the raw YAML mapping, with errors that name the file and field."""

    def __init__(self, raw: dict[str, Any], source: Path) -> None:
        self.raw = raw
        self.source = source

    def error(self, key: str, got: Any) -> WorkloadSpecError:
        return WorkloadSpecError(f"{self.source}: field '{key}': expected {_FIELDS[key]}, got {got!r}")

    def get(self, key: str, check: Callable[[Any], bool], default: T | None = None) -> Any:
        if key not in self.raw or self.raw[key] is None:
            return default
        value = self.raw[key]
        if not check(value):
            raise self.error(key, value)
        return value


def _is_int(lo: int, hi: int = 1 << 31) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def load_workload(path: str | Path) -> WorkloadSpec:
    """Load and validate a workload spec file and the manifests it names."""
    source = Path(path)
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkloadSpecError(f"{source}: cannot read workload spec: {exc.strerror or exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise WorkloadSpecError(f"{source}{pos}: malformed YAML: {exc.problem}") from None
    if not isinstance(raw, dict):
        raise WorkloadSpecError(f"{source}: a workload spec must be a YAML mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, _FIELDS, 1)) else repr(u) for u in unknown]
        raise WorkloadSpecError(f"{source}: unknown field(s) {', '.join(hints)}; known fields: {', '.join(_FIELDS)}")
    f = _Fields(raw, source)
    name = f.get("name", _is_str)
    if name is None:
        raise WorkloadSpecError(f"{source}: field 'name' is required ({_FIELDS['name']})")
    listed = f.get("manifests", lambda v: isinstance(v, list) and bool(v) and all(_is_str(x) for x in v))
    if listed is None:
        raise WorkloadSpecError(f"{source}: field 'manifests' is required ({_FIELDS['manifests']})")
    paths = tuple((source.parent / p).resolve() for p in listed)
    for p in paths:
        if not p.exists():
            raise WorkloadSpecError(f"{source}: field 'manifests': {p} does not exist")
    try:
        docs = load_manifest_files(list(paths))
    except ManifestError as exc:
        raise WorkloadSpecError(f"{source}: field 'manifests': {exc}") from None
    if not docs:
        raise WorkloadSpecError(f"{source}: field 'manifests': the files contain no Kubernetes objects")
    inferred = _infer(docs, source)
    selector = f.get("selector", lambda v: isinstance(v, dict) and bool(v) and all(_is_str(k) and isinstance(x, str) for k, x in v.items()))
    slow_path = f.get("slow_path", lambda v: _is_str(v) and v.startswith("/") and "{seconds}" in v)
    spec = WorkloadSpec(
        name=name,
        namespace=f.get("namespace", _is_str, name),
        selector=dict(selector) if selector else inferred["selector"],
        service=f.get("service", _is_str, inferred["service"]),
        node_port=f.get("node_port", _is_int(30000, 32767), inferred["node_port"]),
        service_port=f.get("service_port", _is_int(1, 65535), inferred["service_port"]),
        replicas=f.get("replicas", _is_int(1), inferred["replicas"]),
        grace_seconds=f.get("grace_seconds", _is_int(1), inferred["grace_seconds"]),
        images=tuple(f.get("images", lambda v: isinstance(v, list) and all(_is_str(x) for x in v), inferred["images"])),
        documents=tuple(docs),
        manifests=paths,
        health_path=f.get("health_path", lambda v: _is_str(v) and v.startswith("/"), "/"),
        slow_path=slow_path,
        slo=float(f.get("slo", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1, 0.999)),
        prestop=f.get("prestop", lambda v: isinstance(v, bool), inferred["prestop"]),
        source=source,
    )
    if not spec.selector:
        raise WorkloadSpecError(
            f"{source}: field 'selector': could not infer it (the manifests have {inferred['workloads']} "
            "Deployments/StatefulSets/DaemonSets); set selector: {label: value} for the pods under test"
        )
    return spec


def _infer(docs: list[Manifest], source: Path) -> dict[str, Any]:
    """Read selector, service, ports, replicas, grace period, images and preStop from manifests."""
    templates = pod_templates(docs)
    services = [d for d in docs if d["kind"] == "Service"]
    out: dict[str, Any] = {"workloads": len(templates), "selector": {}, "service": None, "node_port": None,
                           "service_port": None, "replicas": 1, "grace_seconds": DEFAULT_GRACE_SECONDS,
                           "images": (), "prestop": False}
    if len(templates) == 1:
        wl, pod = templates[0]
        labels = wl.get("spec", {}).get("selector", {}).get("matchLabels")
        if isinstance(labels, dict):
            out["selector"] = {str(k): str(v) for k, v in labels.items()}
        out["replicas"] = int(wl.get("spec", {}).get("replicas", 1))
    images: list[str] = []
    graces: set[int] = set()
    prestops: list[bool] = []
    for _, pod in templates:
        graces.add(int(pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)))
        for c in pod.get("containers", []) or []:
            if isinstance(c, dict):
                if c.get("image") and c["image"] not in images:
                    images.append(str(c["image"]))
                prestops.append(bool((c.get("lifecycle") or {}).get("preStop")))
    if len(graces) > 1:
        raise WorkloadSpecError(
            f"{source}: field 'grace_seconds': the manifests disagree ({sorted(graces)}); set grace_seconds explicitly"
        )
    if graces:
        out["grace_seconds"] = graces.pop()
    out["images"] = tuple(images)
    out["prestop"] = bool(prestops) and all(prestops)
    if len(services) == 1:
        svc = services[0]
        out["service"] = svc["metadata"]["name"]
        ports = svc.get("spec", {}).get("ports") or []
        if ports and isinstance(ports[0], dict):
            out["service_port"] = ports[0].get("port")
            out["node_port"] = ports[0].get("nodePort")
    return out
