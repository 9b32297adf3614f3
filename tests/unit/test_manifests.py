"""Reading the user's manifests strictly: one ManifestError naming file, line and fix for hostile YAML.

Each case here was found by tests/unit/test_fuzz_inputs.py: it raised another exception type
(UnicodeDecodeError, RecursionError, IndexError, AttributeError), hung, or was read silently wrong.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubedrill.workload.manifests import MAX_DEPTH, ManifestError, load_manifest_files, parse_manifests, pod_templates

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"


def load(tmp_path: Path, raw: bytes) -> list[dict]:
    path = tmp_path / "app.yaml"
    path.write_bytes(raw)
    return load_manifest_files([path])


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (CONFIGMAP.encode() + b"data: {k: caf\xe9}\n", "app.yaml:4: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
        (CONFIGMAP.encode() + b"data: " + b"[" * 5000 + b"]" * 5000, "app.yaml:4:107: malformed YAML: nested deeper than 100 levels"),
        (CONFIGMAP.encode() + b"data: {k: !!int }\n", "app.yaml:4:11: a value cannot be read as its type (IndexError"),
        (CONFIGMAP.encode() + b"data: {k: !!timestamp x}\n", "app.yaml:4:11: a value cannot be read as its type (AttributeError"),
        (CONFIGMAP.encode() + b"data: {k: 2020-02-30}\n", "app.yaml:4:11: a value cannot be read as its type (ValueError"),
        (CONFIGMAP.encode() + b"data: {k: \"a\x00b\"}\n", "app.yaml:4: malformed YAML: character U+0000 is not allowed"),
        (CONFIGMAP.encode() + b"metadata: {name: b}\n", "app.yaml:4:1: duplicate key 'metadata' (first at line 3)"),
        (CONFIGMAP.encode() + b"data: &d {k: [*d]}\n", "app.yaml:4:7: an alias (*name) refers to a value that contains it"),
        (b"apiVersion: v1\nkind: List\nitems: {a: 1}\n", "app.yaml:1: document 1: a List's 'items' must be a list of objects"),
        (b"apiVersion: v1\nkind: \"Config\\nMap\"\n", "app.yaml:1: document 1: 'Config\\nMap' has no metadata.name"),
    ],
    ids=["not-utf8", "deep", "empty-int-tag", "bad-timestamp-tag", "bad-date", "nul", "duplicate-key", "self-alias",
         "list-items-mapping", "newline-in-kind"],
)
def test_hostile_manifest_gives_one_manifest_error(tmp_path: Path, raw: bytes, needle: str) -> None:
    with pytest.raises(ManifestError) as err:
        load(tmp_path, raw)
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ["x-l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    started = time.monotonic()
    with pytest.raises(ManifestError, match=r"app.yaml:1:1: aliases \(\*name\) expand this document to 926,177,125 values from 39"):
        load(tmp_path, (CONFIGMAP + "\n".join(levels) + "\ndata: {k: *l8}\n").encode())
    assert time.monotonic() - started < 2


def test_ordinary_anchors_and_nesting_still_load(tmp_path: Path) -> None:
    """The refusals are for abuse only: reused blocks, merge keys and deep-but-sane nesting load."""
    text = (CONFIGMAP.replace("name: a", "name: a, labels: &l {app: web}")
            + "data:\n  base: &b {x: '1'}\n  one: {<<: *b, y: '2'}\n  two: {<<: *b, z: '3'}\n  labels: *l\n"
            + "---\n" + CONFIGMAP.replace("name: a", "name: deep") + "binaryData: " + "[" * (MAX_DEPTH - 3)
            + "]" * (MAX_DEPTH - 3) + "\n")
    docs = load(tmp_path, text.encode())
    assert docs[0]["data"]["one"] == {"x": "1", "y": "2"} and docs[0]["data"]["labels"] == {"app": "web"}
    assert docs[1]["metadata"]["name"] == "deep"


@pytest.mark.parametrize("spec", ["null", "[a]", "{template: null}", "{template: {spec: null}}"])
def test_pod_templates_of_workloads_without_a_pod_spec(spec: str) -> None:
    """`spec: null` made pod_templates raise AttributeError; absent means no template, a wrong type says so."""
    docs = parse_manifests(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec: {spec}\n", "d.yaml")
    if spec == "[a]":
        with pytest.raises(ManifestError, match=r"Deployment 'web': spec: expected a mapping, got \['a'\]; fix the manifest"):
            pod_templates(docs)
    else:
        assert pod_templates(docs) == []
