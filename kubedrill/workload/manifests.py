"""Kubernetes manifests as plain dicts: parse, validate, fill templates, set the namespace.

Why plain dicts: the lead deploys with the official kubernetes client (`create_from_dict` style),
and a dict is what both YAML and that client speak. Errors name the file and line, because a user
pointing kubedrill at their own manifests must be able to fix them without reading our code.

The strict YAML reading here (`read_utf8`, `yaml_documents`) is shared by every user file kubedrill
reads: the manifests, the workload spec and the run config.
"""

from __future__ import annotations

import copy
import re
import reprlib
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


# --- YAML text, read strictly ----------------------------------------------------------------------

MAX_ALIAS_GROWTH = 100_000
"""Values a document may gain by expanding its aliases (`*name`). Without aliases a document is no
bigger than its text; a few reused blocks add hundreds. A "billion laughs" document (aliases of
aliases) parses instantly into shared objects but expands to billions of values in anything that
walks it -- an error message's repr, JSON for the API server -- so it is refused here."""
MAX_DEPTH = 100
"""Nesting levels a document may have. Real manifests (CRD schemas included) stay well below; deeper
input would hit Python's recursion limit in the parser or later in a deep copy."""


class YAMLTextError(ValueError):
    """Text kubedrill will not read as YAML; the caller adds the file and raises its own error type."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        super().__init__(f"{self.position}: {problem}" if line else problem)

    @property
    def position(self) -> str:
        """'line:column' (or 'line'), '' when unknown: appended to a file name as `file:line:column`."""
        if self.line is None:
            return ""
        return f"{self.line}:{self.column}" if self.column is not None else str(self.line)

    def at(self, source: str | Path) -> str:
        """The problem prefixed by `file:line:column:`, the form every error about user YAML takes."""
        pos = f":{self.position}" if self.position else ""
        return f"{source}{pos}: {self.problem}"


def read_utf8(path: Path) -> str:
    """The text of a user file; YAMLTextError (with the line) when it is not UTF-8. OSError passes."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YAMLTextError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                            line) from None


def yaml_documents(text: str) -> list[tuple[int, Any]]:
    """Each document of a YAML stream as (1-based line of its start, value), empty ones as None.

    Stricter than yaml.safe_load on purpose, because the YAML comes from users and a silent
    surprise costs a wasted drill: a duplicate key (PyYAML keeps the last, kubectl refuses it), an
    alias bomb, a structure that contains itself and nesting deeper than MAX_DEPTH are refused.
    Every problem is one YAMLTextError with the line and column where known.
    """
    out: list[tuple[int, Any]] = []
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # checks the characters first: may raise ReaderError
        while loader.check_node():
            node = loader.get_node()
            _check_node(node)
            try:
                out.append((node.start_mark.line + 1, loader.construct_document(node)))
            except YAMLTextError:
                raise
            except _UNFIT as exc:  # from the second half of a collection's constructor, run here
                raise _unfit(node, exc) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YAMLTextError(f"malformed YAML: {problem}", *((mark.line + 1, mark.column + 1) if mark else ())) from None
    except yaml.reader.ReaderError as exc:  # a control character, e.g. NUL, in the text
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YAMLTextError(f"malformed YAML: character U+{char:04X} is not allowed in YAML; remove it or "
                            "write it as an escape in a double-quoted string", line) from None
    except yaml.YAMLError as exc:
        raise YAMLTextError(f"malformed YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return out


# PyYAML's constructors fail with these on a value that matches a type but does not fit it:
# `2020-13-45` (a date), `!!int` with no digits, `!!timestamp x`.
_UNFIT = (ValueError, TypeError, ArithmeticError, LookupError, AttributeError)


def _unfit(node: yaml.Node, exc: Exception) -> YAMLTextError:
    return _at(node, f"a value cannot be read as its type ({type(exc).__name__}: {exc}); a date-like value or an "
                     "explicit tag (!!int, !!timestamp, ...) does not fit its text; quote the value to make it a string")


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops past MAX_DEPTH levels of nesting, before PyYAML's recursive composer
    hits Python's recursion limit, and before its scanner, quadratic in the nesting of `[[[...`
    (it scans all of them ahead), spends minutes on a long run of brackets."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.nesting = 0

    def _too_deep(self, mark: yaml.Mark) -> YAMLTextError:
        return YAMLTextError(f"malformed YAML: nested deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1)

    def fetch_flow_collection_start(self, token_class: type) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep(self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except YAMLTextError:
            raise
        except _UNFIT as exc:
            raise _unfit(node, exc) from None

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.nesting += 1
        try:
            if self.nesting > MAX_DEPTH:
                raise self._too_deep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1


def _check_node(root: yaml.Node) -> None:
    """Refuse duplicate keys, self-containing structures, alias bombs and nesting made deep by
    aliases in one walk. It visits each node once (aliases share nodes), so a bomb costs its text,
    not its size.
    """
    size: dict[int, int] = {}  # node id -> values it expands to (done nodes)
    depth: dict[int, int] = {}  # node id -> levels below it, itself included
    open_: set[int] = set()  # nodes on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if children_done:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            depth[id(node)] = 1 + max((depth[id(k)] for k in kids), default=0)
            if depth[id(node)] > MAX_DEPTH:
                raise _at(node, f"malformed YAML: nested deeper than {MAX_DEPTH} levels")
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise _at(node, "an alias (*name) refers to a value that contains it; a value cannot contain itself")
        if isinstance(node, yaml.MappingNode):
            _check_keys(node)
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    distinct = len(size)
    if size[id(root)] - distinct > MAX_ALIAS_GROWTH:
        raise _at(root, f"aliases (*name) expand this document to {size[id(root)]:,} values from {distinct:,}; "
                        f"more than {MAX_ALIAS_GROWTH:,} added values is refused (a billion-laughs document?)")


def _check_keys(node: yaml.MappingNode) -> None:
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            first = seen.setdefault((key.tag, key.value), key)
            if first is not key:
                raise _at(key, f"duplicate key {shown(key.value)} (first at line {first.start_mark.line + 1}); "
                               "a key may appear once in a mapping")


def _at(node: yaml.Node, problem: str) -> YAMLTextError:
    return YAMLTextError(problem, node.start_mark.line + 1, node.start_mark.column + 1)


class _Shown(reprlib.Repr):
    """repr() bounded in length, depth and cost: a user's value quoted in an error message."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong = 3, 80, 80, 40
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # str() of a huge int is slow, and refused past 4300 digits
            return f"<an integer of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)


_SHOWN = _Shown()


def shown(value: Any) -> str:
    """A user's value as an error message quotes it: repr, cut short, safe for any size."""
    return _SHOWN.repr(value)


def named(text: str) -> str:
    """A user's name (a kind, a path, a context) as an error message names it: as is when plain,
    quoted with escapes when blank or holding a newline or control character, so the message stays
    one line that says where the odd character is."""
    return text if text and text.isprintable() and text.strip() == text else repr(text)  # whole: a path must not be cut


def parse_manifests(text: str, source: str = "<string>") -> list[Manifest]:
    """Parse a multi-document YAML string into validated manifests (`kind: List` is flattened)."""
    docs: list[Manifest] = []
    try:
        documents = yaml_documents(text)
    except YAMLTextError as exc:
        raise ManifestError(exc.at(source)) from None
    for index, (line, data) in enumerate(documents, start=1):
        if data is None:
            continue
        where = f"{source}:{line}: document {index}"
        if isinstance(data, dict) and data.get("kind") == "List":
            items = data.get("items")
            if not isinstance(items, list):
                raise ManifestError(f"{where}: a List's 'items' must be a list of objects, got {shown(items)}")
            for i, item in enumerate(items):
                docs.append(_validated(item, f"{where}, items[{i}]"))
        else:
            docs.append(_validated(data, where))
    return docs


def _validated(doc: Any, where: str) -> Manifest:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: a manifest must be a mapping, got {type(doc).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ManifestError(f"{where}: missing or empty '{key}'")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(f"{where}: {named(doc['kind'])} has no metadata.name")
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
                text = read_utf8(f)
            except OSError as exc:
                raise ManifestError(f"{f}: cannot read manifest: {exc.strerror or exc}") from None
            except YAMLTextError as exc:
                raise ManifestError(exc.at(f)) from None
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
            spec = field_at(d, "spec.template.spec", dict, "a mapping (the pod spec)")
            if spec is not None:
                out.append((d, spec))
    return out


def field_at(doc: Manifest, path: str, types: type | tuple[type, ...], expected: str) -> Any:
    """The value at `path` (e.g. "spec.ports[0].port") in a validated manifest; None where it or a
    level above is absent.

    A value (or a level above it) of the wrong type is a ManifestError naming the object and the
    field, so that kubedrill's reading of a manifest never fails with a bare KeyError or TypeError.
    """
    kinds = types if isinstance(types, tuple) else (types,)
    value: Any = doc
    walked = ""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        index = int(part[1:-1]) if part.startswith("[") else None
        if index is None and not isinstance(value, dict):
            raise _wrong(doc, walked, "a mapping", value)
        if index is not None and not isinstance(value, list):
            raise _wrong(doc, walked, "a list", value)
        walked += part if index is not None or not walked else f".{part}"
        value = value.get(part) if index is None else (value[index] if index < len(value) else None)
        if value is None:
            return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise _wrong(doc, path, expected, value)
    return value


def _wrong(doc: Manifest, path: str, expected: str, value: Any) -> ManifestError:
    return ManifestError(f"{named(doc['kind'])} {doc['metadata']['name']!r}: {path}: expected {expected}, got "
                        f"{shown(value)}; fix the manifest")
