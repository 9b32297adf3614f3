"""Bad input gives one clear error: malformed YAML (file:line), an unknown kind without its CRD, a
directory with no objects, a target version kubedrill cannot build. And an API server stopped on an
error or Ctrl-C leaves no process and no temp dir behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubedrill.check.preflight import Manifest, ObjectRef
from kubedrill.cluster.paths import default_k8s_version
from kubedrill.preflight import PreflightError
from kubedrill.preflight.apiserver import ApiServer, ensure_built
from kubedrill.preflight.dryrun import Client, Session
from kubedrill.preflight.run import preflight

pytestmark = [pytest.mark.conformance]


def test_malformed_yaml_is_one_error_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: Service\n"
                 "metadata:\n  name: web\n  labels: {a: b\n")
    with pytest.raises(PreflightError) as e:
        preflight([f], ["v1.35.4"], None)
    assert str(e.value).count("malformed YAML") == 1 and f"{f}:10:" in str(e.value), str(e.value)


def test_a_directory_without_objects_is_refused(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no manifests here")
    with pytest.raises(PreflightError, match="directory has no .yaml, .yml, .json files"):
        preflight([tmp_path], ["v1.35.4"], None)
    (tmp_path / "empty.yaml").write_text("---\n# nothing\n")
    with pytest.raises(PreflightError, match="no Kubernetes objects found"):
        preflight([tmp_path], ["v1.35.4"], None)


@pytest.mark.parametrize(("version", "message"), [
    ("v1.99.0", "does not serve k8s.io/kubernetes@v1.99.0"),
    ("1.35", "is not a Kubernetes version"),
    ("v1.36.0-rc.0", "released versions only"),
], ids=["not-on-the-proxy", "not-a-version", "pre-release"])
def test_a_target_kubedrill_cannot_build_is_one_clear_error(version: str, message: str) -> None:
    obj = Manifest(ObjectRef("v1", "ConfigMap", "default", "x", "x.yaml", 1),
                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(PreflightError, match=message):
        preflight([obj], [version], None)


def test_unknown_kind_without_crd_is_one_error_and_the_server_is_cleaned_up() -> None:
    objs = [Manifest(ObjectRef("acme.example.io/v1", "Rocket", "default", "r1", "rockets.yaml", 3),
                     {"apiVersion": "acme.example.io/v1", "kind": "Rocket", "metadata": {"name": "r1"}}),
            Manifest(ObjectRef("v1", "ConfigMap", "default", "c", "rockets.yaml", 9),
                     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})]
    api = ApiServer(ensure_built(default_k8s_version()))
    with pytest.raises(PreflightError) as e:
        with api:
            pids = [p.pid for p in api.procs]
            tmp = api.dir
            Session(Client(api.url, api.token, api.ssl), api.version).check_all(objs)
    msg = str(e.value)
    assert "rockets.yaml:3: Rocket r1 (acme.example.io/v1)" in msg and "CustomResourceDefinition" in msg
    assert "rockets.yaml:9" not in msg
    _assert_gone(pids, tmp)


def test_ctrl_c_stops_etcd_and_the_api_server_and_removes_the_temp_dir() -> None:
    api = ApiServer(ensure_built(default_k8s_version()))
    with pytest.raises(KeyboardInterrupt):
        with api:
            pids = [p.pid for p in api.procs]
            tmp = api.dir
            assert len(pids) == 2 and tmp is not None and tmp.exists()
            raise KeyboardInterrupt
    _assert_gone(pids, tmp)


def _assert_gone(pids: list[int], tmp: Path | None) -> None:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie would still answer kill(0); Popen.wait reaped ours, so any answer is a live process.
        raise AssertionError(f"process {pid} still runs after the API server was stopped")
    assert tmp is not None and not tmp.exists(), f"{tmp} left behind"
