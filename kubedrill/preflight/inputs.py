"""Read the user's manifests: files and directories, multi-document YAML, JSON, `kind: List`.

Every object keeps its file and 1-based line (the line of its document, or of its item in a List),
because a finding is only actionable if it says where to edit. Bad input stops here with one
PreflightError listing every problem with file:line, before any API server is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from kubedrill.check.preflight import Manifest, ObjectRef
from kubedrill.preflight import PreflightError
from kubedrill.workload.manifests import YAMLTextError, yaml_documents

SUFFIXES = (".yaml", ".yml", ".json")


def _files(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                problems.append(f"{p}: directory has no {', '.join(SUFFIXES)} files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or directory")
    return files, problems


def _ref(obj: dict[str, Any], file: str, line: int) -> tuple[ObjectRef | None, str]:
    api, kind = obj.get("apiVersion"), obj.get("kind")
    raw_meta = obj.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    if not isinstance(api, str) or not api or not isinstance(kind, str) or not kind:
        return None, (f"{file}:{line}: a document without apiVersion and kind (keys: "
                      f"{', '.join(map(str, list(obj)[:6])) or 'none'}); every object needs both")
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "")
    return ObjectRef(api, kind, str(meta.get("namespace") or ""), str(name), file, line), ""


def _item_lines(node: yaml.Node) -> list[int]:
    """1-based lines of the entries of a List document's `items` sequence."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "items" and isinstance(v, yaml.SequenceNode):
                return [n.start_mark.line + 1 for n in v.value]
    return []


def parse_text(text: str, file: str) -> tuple[list[Manifest], list[str]]:
    """The objects of one YAML/JSON stream, and the problems found (file:line each)."""
    out: list[Manifest] = []
    problems: list[str] = []
    try:
        # The strict reader first (duplicate keys, alias bombs, self-containing values, deep nesting,
        # control characters): the same rules as the workload's own manifests.
        yaml_documents(text)
    except YAMLTextError as exc:
        hint = (" (this looks like an unrendered Helm template: render it first, `helm template ... > out.yaml`)"
                if "{{" in text else "")
        return out, [f"{file}:{exc.position}: malformed YAML: {exc.problem.removeprefix('malformed YAML: ')}{hint}"]
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            if data is None:
                continue
            if not isinstance(data, dict):
                problems.append(f"{file}:{line}: a document that is a {type(data).__name__}, not an object "
                                "(expected a mapping with apiVersion, kind, metadata)")
                continue
            if data.get("kind") == "List" or (isinstance(data.get("kind"), str) and data["kind"].endswith("List")
                                               and isinstance(data.get("items"), list)):
                lines = _item_lines(node)
                for i, item in enumerate(data.get("items") or []):
                    iline = lines[i] if i < len(lines) else line
                    if not isinstance(item, dict):
                        problems.append(f"{file}:{iline}: List item {i} is not an object")
                        continue
                    ref, why = _ref(item, file, iline)
                    if ref is None:
                        problems.append(why)
                    else:
                        out.append(Manifest(ref, item))
                continue
            ref, why = _ref(data, file, line)
            if ref is None:
                problems.append(why)
            else:
                out.append(Manifest(ref, data))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        hint = ""
        if "{{" in text:
            hint = " (this looks like an unrendered Helm template: render it first, `helm template ... > out.yaml`)"
        problems.append(f"{where}: malformed YAML: {what}{hint}")
    except yaml.YAMLError as exc:
        problems.append(f"{file}: malformed YAML: {exc}")
    finally:
        loader.dispose()
    return out, problems


def read_manifests(paths: Sequence[str | Path], base: Path | None = None) -> list[Manifest]:
    """Every object under `paths`, in order. File names are shown relative to `base` when given.

    Raises PreflightError (one message, every problem on its own line) for a missing path, malformed
    YAML, a document without apiVersion/kind, or inputs that hold no object at all.
    """
    if not paths:
        raise PreflightError("no manifests given: pass files or directories of Kubernetes YAML")
    files, problems = _files(paths)
    out: list[Manifest] = []
    for f in files:
        shown = str(f.resolve().relative_to(base.resolve())) if base and f.resolve().is_relative_to(base.resolve()) \
            else str(f)
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{shown}: cannot read: {exc}")
            continue
        objs, probs = parse_text(text, shown)
        out.extend(objs)
        problems.extend(probs)
    if problems:
        raise PreflightError(f"{len(problems)} problem(s) in the manifests:\n  " + "\n  ".join(problems))
    if not out:
        raise PreflightError(f"no Kubernetes objects found in {', '.join(map(str, paths))} "
                             f"({len(files)} file(s) read, all empty or comments)")
    return out


def duplicates(manifests: Iterable[Manifest]) -> list[str]:
    """Objects given twice (same apiVersion group, kind, namespace, name): the later one would win."""
    seen: dict[tuple[str, str, str, str], Manifest] = {}
    out = []
    for m in manifests:
        k = (m.ref.group, m.ref.kind, m.ref.namespace, m.ref.name)
        if k in seen and m.ref.name and not m.ref.name.endswith("*"):
            out.append(f"{m.ref.where}: {m.ref.kind} {m.ref.name} repeats {seen[k].ref.where}")
        seen.setdefault(k, m)
    return out
