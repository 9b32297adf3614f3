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


def test_slow_path_without_seconds_is_any_slow_url(tmp_path: Path) -> None:
    spec = load_workload(write(tmp_path, "name: web\nmanifests: [k8s/]\nslow_path: /big{1}.iso\nslow_size: 3145728\n"))
    assert (spec.slow_url_path(7), spec.slow_size) == ("/big{1}.iso", 3145728)
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
        ("name: web\nmanifests: [k8s/]\nslow_path: slow\n", "field 'slow_path'"),
        ("name: web\nmanifests: [k8s/]\nslow_size: 0\n", "field 'slow_size': expected an integer >= 1 (bytes), got 0"),
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


# Found by tests/unit/test_fuzz_inputs.py: each of these raised another exception type (or, for
# nodePort, returned a spec with a string port) instead of one WorkloadSpecError naming file and field.
@pytest.mark.parametrize(
    ("spec_text", "needle"),
    [
        ("name: web\nmanifests: [k8s/]\n1: a\nzz: b\n", "unknown field(s) 1, 'zz'"),
        ("name: web\nmanifests: [k8s/]\nslow_path: /slow?s={seconds}&x={x}\n", "field 'slow_path': expected a URL path"),
        ("name: web\nmanifests: [\"k8s/\\0\"]\n", "field 'manifests': 'k8s/\\x00' is not a usable path (embedded null byte)"),
        (f"name: web\nmanifests: [{'a' * 5000}]\n", "is not a usable path (File name too long)"),
        ("name: web\nmanifests: [k8s/]\nreplicas: 2020-13-45\n", "workload.yaml:3:11: a value cannot be read as its type"),
        ("name: web\nname: web2\nmanifests: [k8s/]\n", "workload.yaml:2:1: duplicate key 'name' (first at line 1)"),
        ("name: web\nmanifests: [k8s/]\n---\nname: x\n", "workload.yaml:4: a workload spec is one YAML document"),
        ("name: w\x07b\nmanifests: [k8s/]\n", "workload.yaml:1: malformed YAML: character U+0007 is not allowed"),
        ("", "a workload spec must be a YAML mapping with at least name and manifests, got NoneType"),
        ("name: web\nmanifests: [\"k8s\\n\"]\n", "/k8s\\n' does not exist"),
    ],
    ids=["mixed-key-types", "slow-path-placeholder", "nul-path", "long-path", "bad-date", "duplicate-key",
         "two-documents", "control-character", "empty", "newline-in-path"],
)
def test_hostile_spec_gives_one_spec_error(tmp_path: Path, spec_text: str, needle: str) -> None:
    with pytest.raises(WorkloadSpecError) as err:
        load_workload(write(tmp_path, spec_text))
    assert needle in str(err.value) and str(tmp_path / "workload.yaml") in str(err.value), str(err.value)
    assert "\n" not in str(err.value)  # one line, even when the user's text holds a newline


def test_spec_that_is_not_utf8(tmp_path: Path) -> None:
    p = write(tmp_path, "")
    p.write_bytes(b"name: caf\xe9\nmanifests: [k8s/]\n")
    with pytest.raises(WorkloadSpecError, match=r"workload.yaml:1: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        load_workload(p)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("spec:\n  replicas: 4", "spec: null\nx:\n  replicas: 4", None),  # no pod template: nothing to infer
        ("  replicas: 4\n", "  replicas: four\n", "Deployment 'web': spec.replicas: expected an integer, got 'four'"),
        ("  replicas: 4\n", "  replicas: 1.0e+400\n", "spec.replicas: expected an integer, got inf"),
        ("    spec:\n      terminationGracePeriodSeconds: 45\n", "    spec: [a]\n    x:\n      terminationGracePeriodSeconds: 45\n",
         "Deployment 'web': spec.template.spec: expected a mapping (the pod spec), got ['a']"),
        ("      terminationGracePeriodSeconds: 45", "      terminationGracePeriodSeconds: null",
         None),  # null means the default
        ("      terminationGracePeriodSeconds: 45", "      terminationGracePeriodSeconds: '45'",
         "spec.template.spec.terminationGracePeriodSeconds: expected an integer (seconds), got '45'"),
        ("      containers:\n", "      containers: {}\n      x:\n",
         "spec.template.spec.containers: expected a list of containers, got {}"),
        ("        - name: web\n          image: example/web:1.2\n", "        - oops\n        - image: [a]\n",
         "spec.template.spec.containers[0]: expected a mapping (a container), got 'oops'"),
        ('          lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}', "          lifecycle: [preStop]",
         "spec.template.spec.containers[0].lifecycle: expected a mapping, got ['preStop']"),
        ("  selector: {matchLabels: {app: web}}", "  selector: {matchLabels: [app, web]}",
         "spec.selector.matchLabels: expected a mapping of label names to values, got ['app', 'web']"),
    ],
    ids=["spec-null", "replicas-text", "replicas-inf", "pod-spec-list", "grace-null", "grace-text",
         "containers-mapping", "container-text", "lifecycle-list", "match-labels-list"],
)
def test_wrong_types_in_the_deployment_name_the_object_and_field(tmp_path: Path, old: str, new: str,
                                                                  needle: str | None) -> None:
    assert old in DEPLOY
    files = {"k8s/deploy.yaml": DEPLOY.replace(old, new), "k8s/svc.yaml": SERVICE}
    spec_file = write(tmp_path, "name: web\nmanifests: [k8s/]\nselector: {app: web}\n", files)
    if needle is None:  # these used to raise AttributeError/TypeError; they are valid
        assert load_workload(spec_file).grace_seconds in (30, 45)
        return
    with pytest.raises(WorkloadSpecError) as err:
        load_workload(spec_file)
    assert needle in str(err.value) and str(spec_file) in str(err.value) and "field 'manifests'" in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("ports", "needle"),
    [
        ("{port: 80}", "Service 'web-svc': spec.ports: expected a list"),
        ("[80]", "Service 'web-svc': spec.ports[0]: expected a mapping (a port), got 80"),
        ("[{port: 80, nodePort: '30123'}]", "spec.ports[0].nodePort: expected an integer port, got '30123'"),
        ("[{port: http}]", "spec.ports[0].port: expected an integer port, got 'http'"),
    ],
    ids=["ports-mapping", "port-number", "node-port-text", "port-name"],
)
def test_wrong_types_in_the_service_name_the_object_and_field(tmp_path: Path, ports: str, needle: str) -> None:
    svc = SERVICE.replace("ports: [{port: 80, targetPort: 8080, nodePort: 30123}]", f"ports: {ports}")
    spec_file = write(tmp_path, "name: web\nmanifests: [k8s/]\n", {"k8s/deploy.yaml": DEPLOY, "k8s/svc.yaml": svc})
    with pytest.raises(WorkloadSpecError) as err:
        load_workload(spec_file)
    assert needle in str(err.value) and str(spec_file) in str(err.value), str(err.value)
