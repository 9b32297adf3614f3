"""Kubernetes manifests as plain dicts: parse, validate, fill templates, set the namespace.

Why plain dicts: the lead deploys with the official kubernetes client (`create_from_dict` style),
and a dict is what both YAML and that client speak. Errors name the file and line, because a user
pointing kubedrill at their own manifests must be able to fix them without reading our code.
"""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any, Mapping

import yaml

Manifest = dict[str, Any]

# Kinds that have no namespace; everything else gets the test's namespace.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "CSIDriver",
    }
)

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


class ManifestError(ValueError):
    """A manifest cannot be used; the message starts with `file:line:` where known."""


def parse_manifests(text: str, source: str = "<string>") -> list[Manifest]:
    """Parse a multi-document YAML string into validated manifests (`kind: List` is flattened)."""
    docs: list[Manifest] = []
    loader = yaml.SafeLoader(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            index += 1
            if data is None:
                continue
            where = f"{source}:{line}: document {index}"
            if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
                for i, item in enumerate(data["items"]):
                    docs.append(_validated(item, f"{where}, items[{i}]"))
            else:
                docs.append(_validated(data, where))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "?"
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ManifestError(f"{source}:{pos}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    return docs


def _validated(doc: Any, where: str) -> Manifest:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: a manifest must be a mapping, got {type(doc).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ManifestError(f"{where}: missing or empty '{key}'")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(f"{where}: {doc['kind']} has no metadata.name")
    return doc


def load_manifest_files(paths: list[Path] | tuple[Path, ...]) -> list[Manifest]:
    """Read and parse manifest files (a directory means its *.yaml and *.yml files, sorted)."""
    out: list[Manifest] = []
    for path in paths:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise ManifestError(f"{path}: directory has no *.yaml or *.yml files")
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except OSError as exc:
                raise ManifestError(f"{f}: cannot read manifest: {exc.strerror or exc}") from None
            out.extend(parse_manifests(text, str(f)))
    return out


def render_template(path: Path, values: Mapping[str, object]) -> list[Manifest]:
    """Fill `${name}` placeholders in a manifest template with string.Template, then parse it.

    Why string.Template rather than Jinja: the templates only substitute scalars, and anything
    structural (dropping the preStop hook) is done on the parsed dicts, where it is testable.
    """
    text = path.read_text(encoding="utf-8")
    try:
        filled = string.Template(text).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise ManifestError(
            f"{path}: template placeholder ${{{exc.args[0]}}} has no value; given: {', '.join(sorted(values))}"
        ) from None
    except ValueError as exc:
        raise ManifestError(f"{path}: bad template placeholder: {exc}") from None
    return parse_manifests(filled, str(path))


def with_namespace(docs: list[Manifest] | tuple[Manifest, ...], namespace: str) -> list[Manifest]:
    """Deep copies of `docs` with metadata.namespace set on every namespaced object.

    An explicit namespace in a user's manifest is overridden on purpose: each test run gets its
    own namespace, and a hard-coded one would make runs collide.
    """
    out = []
    for doc in docs:
        d = copy.deepcopy(doc)
        if d["kind"] not in CLUSTER_SCOPED_KINDS:
            d.setdefault("metadata", {})["namespace"] = namespace
        out.append(d)
    return out


def pod_templates(docs: list[Manifest] | tuple[Manifest, ...]) -> list[tuple[Manifest, Manifest]]:
    """(workload, pod template spec) pairs for the Deployment/StatefulSet/DaemonSet/ReplicaSet docs."""
    out = []
    for d in docs:
        if d["kind"] in WORKLOAD_KINDS:
            spec = d.get("spec", {}).get("template", {}).get("spec")
            if isinstance(spec, dict):
                out.append((d, spec))
    return out
