"""WorkloadSpec: what kubedrill needs to know about the workload under test, and its YAML file.

A user points kubedrill at their own app with a small file (`--workload my-app.yaml`):

    name: my-api                  # required
    manifests: [deploy.yaml, k8s/] # required; files or directories, relative to this file
    health_path: /                 # what the load hits (default /)
    slow_path: /big.iso            # optional: any URL that takes a while (a large download, a stream,
                                   # a long poll); {seconds} in it is replaced by the wanted duration
    slow_size: 3145728             # optional: the body's size in bytes, needed only when the server
                                   # sends neither Content-Length nor chunked framing
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

from kubedrill.workload.manifests import (
    Manifest,
    ManifestError,
    YAMLTextError,
    field_at,
    load_manifest_files,
    named,
    pod_templates,
    read_utf8,
    shown,
    with_namespace,
    yaml_documents,
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
    slow_size: int | None = None
    slo: float = 0.999
    prestop: bool = False
    shutdown_mode: str | None = None  # only for the bundled sample app
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def slow_url_path(self, seconds: float) -> str:
        """The URL path of the slow request, asking for `seconds` where the path takes a duration
        ({seconds}); a path without one lasts as long as the server makes it (needs `slow_path`)."""
        if self.slow_path is None:
            raise WorkloadSpecError(
                f"workload {self.name!r} has no slow_path, so in-flight requests cannot be probed; "
                "set slow_path (any URL that takes a while, e.g. /big.iso or /slow?seconds={seconds}) in the workload spec"
            )
        return self.slow_path.format(seconds=seconds) if "{seconds}" in self.slow_path else self.slow_path

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
    "slow_path": "a URL path starting with / (with {seconds} as its only placeholder, if any)",
    "slow_size": "an integer >= 1 (bytes)",
    "slo": "a number in (0, 1]",
    "prestop": "true or false",
}


class _Fields:
    """Typed access to the raw YAML mapping, with errors that name the file and field."""

    def __init__(self, raw: dict[str, Any], source: Path) -> None:
        self.raw = raw
        self.source = source

    def error(self, key: str, got: Any) -> WorkloadSpecError:
        return WorkloadSpecError(f"{self.source}: field '{key}': expected {_FIELDS[key]}, got {shown(got)}")

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


def _is_slow_path(v: Any) -> bool:
    """A path starting with /; if it has {seconds}, that is its only placeholder (str.format fails on any other)."""
    if not (_is_str(v) and v.startswith("/")):
        return False
    if "{seconds}" not in v:
        return True
    try:
        v.format(seconds=1)
    except (KeyError, IndexError, ValueError):
        return False
    return True


def load_workload(path: str | Path) -> WorkloadSpec:
    """Load and validate a workload spec file and the manifests it names."""
    source = Path(path)
    try:
        documents = yaml_documents(read_utf8(source))
    except YAMLTextError as exc:
        raise WorkloadSpecError(exc.at(source)) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise WorkloadSpecError(f"{source}: cannot read workload spec: {getattr(exc, 'strerror', None) or exc}") from None
    if len(documents) > 1:
        raise WorkloadSpecError(f"{source}:{documents[1][0]}: a workload spec is one YAML document, this file has "
                                f"{len(documents)}; remove the '---' that starts another")
    raw = documents[0][1] if documents else None
    if not isinstance(raw, dict):
        raise WorkloadSpecError(f"{source}: a workload spec must be a YAML mapping with at least name and "
                                f"manifests, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_FIELDS), key=str)
    if unknown:
        hints = [f"{shown(u)} (did you mean {m[0]!r}?)"
                 if isinstance(u, str) and (m := difflib.get_close_matches(u, _FIELDS, 1)) else shown(u)
                 for u in unknown]
        raise WorkloadSpecError(f"{source}: unknown field(s) {', '.join(hints)}; known fields: {', '.join(_FIELDS)}")
    f = _Fields(raw, source)
    name = f.get("name", _is_str)
    if name is None:
        raise WorkloadSpecError(f"{source}: field 'name' is required ({_FIELDS['name']})")
    listed = f.get("manifests", lambda v: isinstance(v, list) and bool(v) and all(_is_str(x) for x in v))
    if listed is None:
        raise WorkloadSpecError(f"{source}: field 'manifests' is required ({_FIELDS['manifests']})")
    paths = []
    for listed_path in listed:
        try:
            p = (source.parent / listed_path).resolve()
            found = p.exists()
        except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
            raise WorkloadSpecError(f"{source}: field 'manifests': {shown(listed_path)} is not a usable path "
                                    f"({getattr(exc, 'strerror', None) or exc}); list files or directories") from None
        if not found:
            raise WorkloadSpecError(f"{source}: field 'manifests': {named(str(p))} does not exist")
        paths.append(p)
    try:
        docs = load_manifest_files(paths)
        if not docs:
            raise WorkloadSpecError(f"{source}: field 'manifests': the files contain no Kubernetes objects")
        inferred = _infer(docs, source)
    except ManifestError as exc:
        raise WorkloadSpecError(f"{source}: field 'manifests': {exc}") from None
    selector = f.get("selector", lambda v: isinstance(v, dict) and bool(v) and all(_is_str(k) and isinstance(x, str) for k, x in v.items()))
    slow_path = f.get("slow_path", _is_slow_path)
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
        manifests=tuple(paths),
        health_path=f.get("health_path", lambda v: _is_str(v) and v.startswith("/"), "/"),
        slow_path=slow_path,
        slow_size=f.get("slow_size", _is_int(1, 1 << 62)),
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
    """Read selector, service, ports, replicas, grace period, images and preStop from manifests.

    Raises ManifestError naming the object and field when a value read here has the wrong type.
    """
    templates = pod_templates(docs)
    services = [d for d in docs if d["kind"] == "Service"]
    out: dict[str, Any] = {"workloads": len(templates), "selector": {}, "service": None, "node_port": None,
                           "service_port": None, "replicas": 1, "grace_seconds": DEFAULT_GRACE_SECONDS,
                           "images": (), "prestop": False}
    if len(templates) == 1:
        wl, _ = templates[0]
        labels = field_at(wl, "spec.selector.matchLabels", dict, "a mapping of label names to values")
        if labels:
            out["selector"] = {str(k): str(v) for k, v in labels.items()}
        replicas = field_at(wl, "spec.replicas", int, "an integer")
        out["replicas"] = 1 if replicas is None else replicas
    images: list[str] = []
    graces: set[int] = set()
    prestops: list[bool] = []
    for wl, _ in templates:
        grace = field_at(wl, "spec.template.spec.terminationGracePeriodSeconds", int, "an integer (seconds)")
        graces.add(DEFAULT_GRACE_SECONDS if grace is None else grace)
        containers = field_at(wl, "spec.template.spec.containers", list, "a list of containers") or []
        for i in range(len(containers)):
            container = f"spec.template.spec.containers[{i}]"
            field_at(wl, container, dict, "a mapping (a container)")
            image = field_at(wl, f"{container}.image", str, "an image reference")
            if image and image not in images:
                images.append(image)
            prestops.append(bool(field_at(wl, f"{container}.lifecycle.preStop", dict, "a mapping (a handler)")))
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
        field_at(svc, "spec.ports[0]", dict, "a mapping (a port)")
        out["service_port"] = field_at(svc, "spec.ports[0].port", int, "an integer port")
        out["node_port"] = field_at(svc, "spec.ports[0].nodePort", int, "an integer port")
    return out
