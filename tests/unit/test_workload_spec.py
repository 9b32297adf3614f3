"""Workload spec files: inference from manifests, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.workload.manifests import ManifestError, parse_manifests
from kubedrill.workload.spec import WorkloadSpecError, load_workload, render_manifests

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 45
      containers:
        - name: web
          image: example/web:1.2
          lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web-svc, namespace: hardcoded}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30123}]
"""


def write(tmp_path: Path, spec: str, files: dict[str, str] | None = None) -> Path:
    for name, text in (files if files is not None else {"k8s/deploy.yaml": DEPLOY, "k8s/svc.yaml": SERVICE}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    p = tmp_path / "workload.yaml"
    p.write_text(spec)
    return p


def test_minimal_spec_infers_the_rest_from_manifests(tmp_path: Path) -> None:
    spec = load_workload(write(tmp_path, "name: web\nmanifests: [k8s/]\nslow_path: /slow?seconds={seconds}\n"))
    assert spec.selector == {"app": "web"}
    assert (spec.service, spec.node_port, spec.service_port) == ("web-svc", 30123, 80)
    assert (spec.replicas, spec.grace_seconds, spec.images, spec.prestop) == (4, 45, ("example/web:1.2",), True)
    assert spec.namespace == "web" and spec.slo == 0.999 and spec.health_path == "/"
    assert spec.slow_url_path(7) == "/slow?seconds=7"
    assert [d["kind"] for d in spec.documents] == ["Deployment", "Service"]


def test_explicit_fields_override_inference(tmp_path: Path) -> None:
    spec = load_workload(write(tmp_path, "name: web\nmanifests: [k8s/deploy.yaml]\nselector: {tier: front}\n"
                                         "replicas: 2\ngrace_seconds: 60\nslo: 0.99\nimages: [a/b:1]\nnamespace: ns1\n"))
    assert (spec.selector, spec.replicas, spec.grace_seconds, spec.slo, spec.images, spec.namespace) == (
        {"tier": "front"}, 2, 60, 0.99, ("a/b:1",), "ns1")
    assert spec.service is None and spec.node_port is None
    with pytest.raises(WorkloadSpecError, match="no slow_path"):
        spec.slow_url_path(3)


def test_render_sets_the_namespace_without_touching_the_spec(tmp_path: Path) -> None:
    spec = load_workload(write(tmp_path, "name: web\nmanifests: [k8s/]\n")).in_namespace("kd-t-1")
    docs = render_manifests(spec)
    assert [d["metadata"]["namespace"] for d in docs] == ["kd-t-1", "kd-t-1"]
    assert spec.documents[1]["metadata"]["namespace"] == "hardcoded"  # the spec's own copy is untouched


@pytest.mark.parametrize(
    ("spec_text", "needle"),
    [
        ("manifests: [k8s/]\n", "field 'name' is required"),
        ("name: web\n", "field 'manifests' is required"),
        ("name: web\nmanifests: [k8s/]\nreplica: 3\n", "unknown field(s) 'replica' (did you mean 'replicas'?)"),
        ("name: web\nmanifests: [k8s/]\nreplicas: three\n", "field 'replicas': expected an integer >= 1, got 'three'"),
        ("name: web\nmanifests: [k8s/]\nslo: 1.5\n", "field 'slo': expected a number in (0, 1], got 1.5"),
        ("name: web\nmanifests: [k8s/]\nnode_port: 80\n", "field 'node_port': expected an integer in 30000-32767"),
        ("name: web\nmanifests: [k8s/]\nslow_path: /slow\n", "field 'slow_path'"),
        ("name: web\nmanifests: [nope.yaml]\n", "field 'manifests':"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: [unclosed\n", "workload.yaml:2:1: malformed YAML"),
    ],
)
def test_spec_errors_name_the_file_and_field(tmp_path: Path, spec_text: str, needle: str) -> None:
    with pytest.raises(WorkloadSpecError) as err:
        load_workload(write(tmp_path, spec_text))
    assert needle in str(err.value)
    assert "workload.yaml" in str(err.value)


def test_malformed_manifest_points_at_file_and_line(tmp_path: Path) -> None:
    bad = DEPLOY.replace("  replicas: 4\n", "  replicas: 4\n   bad: indent\n")
    with pytest.raises(WorkloadSpecError) as err:
        load_workload(write(tmp_path, "name: web\nmanifests: [k8s/]\n", {"k8s/deploy.yaml": bad}))
    msg = str(err.value)
    assert "deploy.yaml:6:" in msg and "malformed YAML" in msg


def test_manifest_without_kind_names_the_document_line() -> None:
    with pytest.raises(ManifestError, match=r"m.yaml:5: document 2: missing or empty 'kind'"):
        parse_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n",
                        "m.yaml")
    with pytest.raises(ManifestError, match="has no metadata.name"):
        parse_manifests("apiVersion: v1\nkind: ConfigMap\n", "m.yaml")
    with pytest.raises(ManifestError, match="must be a mapping"):
        parse_manifests("- a\n", "m.yaml")


def test_lists_and_empty_documents() -> None:
    docs = parse_manifests("---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n")
    assert [d["metadata"]["name"] for d in docs] == ["a"]


def test_ambiguous_selector_must_be_given(tmp_path: Path) -> None:
    two = DEPLOY + "---\n" + DEPLOY.replace("name: web}", "name: web2}")
    with pytest.raises(WorkloadSpecError, match="field 'selector': could not infer it"):
        load_workload(write(tmp_path, "name: web\nmanifests: [k8s/d.yaml]\n", {"k8s/d.yaml": two}))


def test_disagreeing_grace_periods_must_be_settled(tmp_path: Path) -> None:
    two = DEPLOY + "---\n" + DEPLOY.replace("name: web}", "name: web2}").replace("45", "10")
    with pytest.raises(WorkloadSpecError, match=r"grace_seconds': the manifests disagree \(\[10, 45\]\)"):
        load_workload(write(tmp_path, "name: web\nmanifests: [k8s/d.yaml]\nselector: {app: web}\n", {"k8s/d.yaml": two}))
