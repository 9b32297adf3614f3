"""Reading the user's manifests: lines of every object, one clear error for bad input; the dry-run
module's pure helpers (REST mapping from discovery, unknown kinds, Warning headers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.check.preflight import Manifest, ObjectRef
from kubedrill.preflight import PreflightError
from kubedrill.preflight.dryrun import _WARNING, Discovery, Resource, builtin_group, crd_kinds, unknown_kinds
from kubedrill.preflight.inputs import duplicates, parse_text, read_manifests

CASES = Path(__file__).resolve().parents[2] / "suites" / "preflight" / "cases"

MULTI = """\
# leading comment
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: n}
---
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: c}
  - apiVersion: v1
    kind: Secret
    metadata: {name: d, namespace: n}
"""


def test_every_object_keeps_its_file_and_line() -> None:
    objs, problems = parse_text(MULTI, "m.yaml")
    assert problems == []
    assert [(o.ref.kind, o.ref.name, o.ref.line) for o in objs] == [
        ("ConfigMap", "a", 2), ("Deployment", "b", 7), ("Service", "c", 15), ("Secret", "d", 18)]
    assert objs[0].ref.namespace == "n" and objs[1].ref.namespace == ""
    assert str(objs[1].ref) == "Deployment b (apps/v1, m.yaml:7)"


def test_json_and_generate_name() -> None:
    objs, _ = parse_text('{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "run-"}}', "j.json")
    assert objs[0].ref.name == "run-*" and objs[0].ref.group == "batch"


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   oops: [\n")
    with pytest.raises(PreflightError) as e:
        read_manifests([f])
    assert f"{f}:5:" in str(e.value) and "malformed YAML" in str(e.value)


def test_unrendered_helm_template_gets_a_hint(tmp_path: Path) -> None:
    f = tmp_path / "deploy.yaml"
    f.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n")
    with pytest.raises(PreflightError, match="helm template"):
        read_manifests([f])


def test_documents_without_kind_or_not_objects_are_named(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("apiVersion: v1\nmetadata: {name: a}\n---\n- just\n- a list\n")
    with pytest.raises(PreflightError) as e:
        read_manifests([f])
    msg = str(e.value)
    assert "2 problem(s)" in msg and f"{f}:1: a document without apiVersion and kind" in msg and f"{f}:4:" in msg


def test_empty_directory_missing_path_and_comment_only_files(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="directory has no .yaml"):
        read_manifests([tmp_path])
    with pytest.raises(PreflightError, match="no such file"):
        read_manifests([tmp_path / "nope.yaml"])
    (tmp_path / "a.yaml").write_text("# nothing\n---\n")
    with pytest.raises(PreflightError, match="no Kubernetes objects found"):
        read_manifests([tmp_path])
    with pytest.raises(PreflightError, match="no manifests given"):
        read_manifests([])


def test_directories_are_read_recursively_in_order_and_hidden_files_skipped(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b" / "z.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: z}\n")
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / ".git" / "c.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    (tmp_path / "notes.txt").write_text("not yaml")
    objs = read_manifests([tmp_path], base=tmp_path)
    assert [(o.ref.name, o.ref.file) for o in objs] == [("a", "a.yaml"), ("z", "b/z.yml")]


def test_duplicates_are_listed() -> None:
    objs, _ = parse_text(MULTI + "---\n" + MULTI.split("---")[0], "m.yaml")
    assert duplicates(objs) == ["m.yaml:23: ConfigMap a repeats m.yaml:2"]


def test_the_labelled_set_reads_cleanly_and_is_large_enough() -> None:
    objs = read_manifests([CASES])
    assert len(objs) >= 60
    assert duplicates(objs) == []


# --- dryrun helpers --------------------------------------------------------------------------------

def m(api: str, kind: str, name: str = "x", line: int = 1) -> Manifest:
    return Manifest(ObjectRef(api, kind, "n", name, "f.yaml", line), {"apiVersion": api, "kind": kind})


def disc() -> Discovery:
    d = Discovery(groups={"", "apps", "networking.k8s.io", "example.com"})
    for r in (Resource("", "v1", "Pod", "pods", True), Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True),
              Resource("example.com", "v1", "Thing", "things", True)):
        d.resources[(r.group, r.version, r.kind)] = r
    return d


def test_rest_mapping_and_served_alternatives_come_from_discovery() -> None:
    d = disc()
    assert d.lookup("v1", "Pod") is not None and d.lookup("extensions/v1beta1", "Ingress") is None
    assert d.served_as("Ingress", "extensions") == ("networking.k8s.io/v1",)
    assert d.served_as("PodSecurityPolicy", "policy") == ()


def test_unknown_kinds_are_only_non_kubernetes_groups_without_a_crd() -> None:
    crd = Manifest(ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.acme.io", "c.yaml", 1),
                   {"spec": {"group": "acme.io", "names": {"kind": "Widget"}, "versions": [{"name": "v1"}]}})
    objs = [m("extensions/v1beta1", "Ingress"), m("settings.k8s.io/v1alpha1", "PodPreset"),
            m("acme.io/v1", "Widget"), m("example.com/v2", "Thing"), m("other.io/v1", "Gizmo", "g", 9), crd]
    assert crd_kinds(objs) == {("acme.io", "Widget"): crd.ref}
    assert unknown_kinds(objs, disc(), crd_kinds(objs)) == ["f.yaml:9: Gizmo g (other.io/v1)"]
    assert builtin_group("") and builtin_group("policy") and builtin_group("gateway.networking.k8s.io")
    assert not builtin_group("cert-manager.io")


def test_warning_headers_are_unquoted() -> None:
    hdr = '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
    assert _WARNING.match(hdr).group(1).startswith("v1 Endpoints is deprecated")  # type: ignore[union-attr]
