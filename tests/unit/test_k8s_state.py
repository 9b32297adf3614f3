"""Restored-state checkers (pure) and the kubeadm etcd helpers that decide what operators type."""

from __future__ import annotations

import copy

import pytest
import yaml

from kubedrill.check import k8s_state as ks
from kubedrill.record import objects as ko
from kubedrill.check.verdict import Status
from kubedrill.cluster import kubeadm_etcd as ke


def cm(name: str, data: dict[str, str], uid: str = "u1", rv: int = 10, ns: str = "kd") -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": str(rv)},
            "data": data}


def dep(name: str, replicas: int, uid: str = "d1") -> dict:
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": "kd", "uid": uid, "resourceVersion": "7",
                                               "generation": 3, "managedFields": [{"x": 1}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"spec": {"containers": [{"name": "p", "image": "pause"}]}}},
            "status": {"readyReplicas": replicas}}


def ns(name: str, uid: str = "n1", deleting: bool = False) -> dict:
    md = {"name": name, "uid": uid, "resourceVersion": "3", "labels": {"a": "b"}}
    if deleting:
        md["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"kind": "Namespace", "metadata": md, "status": {"phase": "Terminating" if deleting else "Active"}}


SNAP = ko.inventory([cm("a", {"x": "1"}, "ua"), cm("b", {"x": "2"}, "ub"), dep("d", 1), ns("kd-gone", "ng")])
CHANGES = [ko.Change("create", "ConfigMap/kd/late", 20), ko.Change("update", "ConfigMap/kd/a", 21),
           ko.Change("delete", "ConfigMap/kd/b"), ko.Change("update", "Deployment/kd/d", 22),
           ko.Change("delete", "Namespace/kd-gone")]
LIVE = ko.inventory([cm("a", {"x": "changed"}, "ua", 21), cm("late", {"y": "1"}, "ul", 20), dep("d", 3),
                     ns("kd-gone", "ng", deleting=True)])


class TestChecksum:
    def test_ignores_metadata_and_status_churn(self) -> None:
        a, b = dep("d", 2), dep("d", 2)
        b["metadata"]["resourceVersion"] = "99"
        b["metadata"]["managedFields"] = []
        b["status"] = {"readyReplicas": 0}
        assert ko.content_checksum(a) == ko.content_checksum(b)

    def test_sees_data_replicas_and_deletion(self) -> None:
        assert ko.content_checksum(cm("a", {"x": "1"})) != ko.content_checksum(cm("a", {"x": "2"}))
        assert ko.content_checksum(dep("d", 1)) != ko.content_checksum(dep("d", 2))
        assert ko.content_checksum(ns("n")) != ko.content_checksum(ns("n", deleting=True))

    def test_keys(self) -> None:
        assert set(SNAP) == {"ConfigMap/kd/a", "ConfigMap/kd/b", "Deployment/kd/d", "Namespace/kd-gone"}


class TestChangesVisible:
    def test_all_visible(self) -> None:
        assert ks.check_changes_visible(SNAP, CHANGES, LIVE).passed

    def test_no_changes_is_unknown(self) -> None:
        v = ks.check_changes_visible(SNAP, [], LIVE)
        assert v.status is Status.UNKNOWN and "would pass" in v.reason

    def test_invisible_update_is_unknown(self) -> None:
        live = dict(LIVE)
        live["ConfigMap/kd/a"] = SNAP["ConfigMap/kd/a"]
        v = ks.check_changes_visible(SNAP, CHANGES, live)
        assert v.status is Status.UNKNOWN and "updated ConfigMap/kd/a shows no change" in v.reason


class TestRestoredInventory:
    def test_exact_restore_passes(self) -> None:
        v = ks.check_restored_inventory(SNAP, CHANGES, dict(SNAP))
        assert v.passed, v.reason
        assert {f.name: f.value for f in v.figures}["objects_restored_equal"] == 4

    def test_restore_that_did_nothing_names_the_leftovers(self) -> None:
        v = ks.check_restored_inventory(SNAP, CHANGES, LIVE)
        assert v.status is Status.FAIL
        assert "1 objects created after the snapshot are still present (ConfigMap/kd/late)" in v.reason
        assert "deleted after the snapshot and not brought back" in v.reason
        assert "carry a change made after the snapshot" in v.reason

    def test_recreated_object_is_not_restored(self) -> None:
        restored = dict(SNAP)
        restored["ConfigMap/kd/a"] = ko.object_state(cm("a", {"x": "1"}, "other-uid"))
        v = ks.check_restored_inventory(SNAP, CHANGES, restored)
        assert v.status is Status.FAIL and "different uid" in v.reason

    def test_foreign_data_says_so(self) -> None:
        v = ks.check_restored_inventory(SNAP, CHANGES, {})
        assert v.status is Status.FAIL and "not this cluster's snapshot" in v.reason

    def test_stale_cache_hint(self) -> None:
        restored = dict(SNAP)
        restored["ConfigMap/kd/late"] = LIVE["ConfigMap/kd/late"]
        v = ks.check_restored_inventory(SNAP, CHANGES, restored)
        assert v.status is Status.FAIL and "pre-restore cache" in v.reason

    def test_unexpected_object(self) -> None:
        restored = dict(SNAP)
        restored["ConfigMap/kd/stray"] = ko.object_state(cm("stray", {}, "us"))
        v = ks.check_restored_inventory(SNAP, CHANGES, restored)
        assert v.status is Status.FAIL and "neither the snapshot nor the test created" in v.reason

    def test_empty_snapshot_is_unknown(self) -> None:
        assert ks.check_restored_inventory({}, [], {}).status is Status.UNKNOWN


class TestIdentity:
    def test_same(self) -> None:
        assert ks.check_cluster_identity("u", "u").passed

    def test_other_cluster(self) -> None:
        v = ks.check_cluster_identity("u", "v")
        assert v.status is Status.FAIL and "another cluster" in v.reason

    def test_missing(self) -> None:
        assert ks.check_cluster_identity("u", None).status is Status.FAIL
        assert ks.check_cluster_identity("", "u").status is Status.UNKNOWN


class TestResourceVersions:
    BEFORE = [ko.RvSeen("write", 1500), ko.RvSeen("list", 1510)]

    def test_bumped_restore_with_410(self) -> None:
        after = [ko.RvSeen("list", 1_000_001_400)]
        v = ks.check_resource_versions(self.BEFORE, after, ko.WatchResume(1510, 410, (), 1_000_001_400))
        assert v.passed and "410 Gone" in v.reason

    def test_no_bump_goes_back(self) -> None:
        after = [ko.RvSeen("a write after the restore", 1402)]
        v = ks.check_resource_versions(self.BEFORE, after)
        assert v.status is Status.FAIL and "went back" in v.reason and "--bump-revision" in v.reason

    def test_watch_resumed_with_old_events(self) -> None:
        v = ks.check_resource_versions(self.BEFORE, [ko.RvSeen("x", 2000)], ko.WatchResume(1510, 200, (1400,), 2000))
        assert v.status is Status.FAIL and "older versions" in v.reason

    def test_watch_error_status(self) -> None:
        v = ks.check_resource_versions(self.BEFORE, [ko.RvSeen("x", 2000)], ko.WatchResume(1510, 504, (), 2000, "timeout"))
        assert v.status is Status.FAIL and "HTTP 504" in v.reason

    def test_relist_below(self) -> None:
        v = ks.check_resource_versions(self.BEFORE, [ko.RvSeen("x", 2000)], ko.WatchResume(1510, 410, (), 1400))
        assert v.status is Status.FAIL and "relist" in v.reason

    def test_no_data_is_unknown(self) -> None:
        assert ks.check_resource_versions([], [ko.RvSeen("x", 1)]).status is Status.UNKNOWN


class TestConvergence:
    def test_converged(self) -> None:
        seen = [ko.DeploymentSeen("kd/a", 2, 2, 2, 2)]
        assert ks.check_converged({"kd/a": 2}, seen).passed

    def test_extra_pod_not_shed(self) -> None:
        v = ks.check_converged({"kd/a": 1}, [ko.DeploymentSeen("kd/a", 1, 1, 1, 2)])
        assert v.status is Status.FAIL and "2 pods running, want 1" in v.reason

    def test_wrong_spec_and_missing(self) -> None:
        v = ks.check_converged({"kd/a": 1, "kd/b": 1}, [ko.DeploymentSeen("kd/a", 3, 3, 3, 3)])
        assert "spec.replicas 3, the snapshot had 1" in v.reason and "kd/b: not found" in v.reason

    def test_orphans(self) -> None:
        assert ks.check_no_orphans({"w1": [], "w2": []}).passed
        v = ks.check_no_orphans({"w1": ["dep-late-x"]})
        assert v.status is Status.FAIL and "w1: dep-late-x" in v.reason

    def test_nodes(self) -> None:
        assert ks.check_nodes_ready(["a", "b"], {"a": True, "b": True}).passed
        v = ks.check_nodes_ready(["a", "b"], {"a": True, "b": False, "c": True})
        assert "not Ready: b" in v.reason and "unknown nodes: c" in v.reason


class TestProcedureEvidence:
    def test_steps(self) -> None:
        ok = [ko.StepRecord("restore", True, 1.0)]
        assert ks.check_procedure(ok).passed
        v = ks.check_procedure(ok + [ko.StepRecord("start-etcd", False, 2.0, "boom")])
        assert v.status is Status.FAIL and "'start-etcd' failed: boom" in v.reason
        assert ks.check_procedure([]).status is Status.UNKNOWN

    def test_restore_took_effect(self) -> None:
        eff = {"etcd_before": {"cluster_id": 1, "revision": 900}, "etcd_after": {"cluster_id": 2, "revision": 1_000_000_510},
               "bump_revision": 1_000_000_000}
        assert ks.check_restore_took_effect(eff, 500).passed
        same = dict(eff, etcd_after={"cluster_id": 1, "revision": 910}, restore_ok=False)
        v = ks.check_restore_took_effect(same, 500)
        assert v.status is Status.FAIL and "did not take effect" in v.reason and "restore step failed" in v.reason
        low = dict(eff, etcd_after={"cluster_id": 2, "revision": 600})
        assert "below the snapshot's" in ks.check_restore_took_effect(low, 500).reason

    def test_apiservers_stopped(self) -> None:
        assert ks.check_apiservers_stopped({"apiservers_running_at_etcd_start": {}}).passed
        v = ks.check_apiservers_stopped({"apiservers_running_at_etcd_start": {"cp1": ["abcdef0123456789"]}})
        assert v.status is Status.FAIL and "cp1 (container abcdef012345)" in v.reason
        assert ks.check_apiservers_stopped({}).status is Status.UNKNOWN


MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.6.5-0
    command:
    - etcd
    - --advertise-client-urls=https://172.18.0.9:2379
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://172.18.0.9:2380
    - --initial-cluster=cp1=https://172.18.0.9:2380
    - --name=cp1
    volumeMounts:
    - {mountPath: /var/lib/etcd, name: etcd-data}
    - {mountPath: /etc/kubernetes/pki/etcd, name: etcd-certs}
  volumes:
  - {hostPath: {path: /etc/kubernetes/pki/etcd, type: DirectoryOrCreate}, name: etcd-certs}
  - {hostPath: {path: /var/lib/etcd, type: DirectoryOrCreate}, name: etcd-data}
"""


class TestKubeadmEtcd:
    def test_parse_member(self) -> None:
        m = ke.parse_member("node1", MANIFEST)
        assert (m.name, m.peer_url, m.data_dir, m.data_host_path) == (
            "cp1", "https://172.18.0.9:2380", "/var/lib/etcd", "/var/lib/etcd")

    def test_point_data_dir_changes_only_the_host_path(self) -> None:
        new = yaml.safe_load(ke.point_data_dir(MANIFEST, "/var/lib/etcd-from-backup"))
        old = yaml.safe_load(MANIFEST)
        vols = {v["name"]: v["hostPath"]["path"] for v in new["spec"]["volumes"]}
        assert vols == {"etcd-certs": "/etc/kubernetes/pki/etcd", "etcd-data": "/var/lib/etcd-from-backup"}
        expect = copy.deepcopy(old)
        expect["spec"]["volumes"][1]["hostPath"]["path"] = "/var/lib/etcd-from-backup"
        assert new == expect

    def test_manifest_errors(self) -> None:
        with pytest.raises(ValueError, match="no container named etcd"):
            ke.parse_member("n", "spec: {containers: [{name: x}]}")
        with pytest.raises(ValueError, match="lacks --name"):
            ke.parse_member("n", "spec: {containers: [{name: etcd, command: [etcd, --data-dir=/x, "
                                 "--initial-advertise-peer-urls=https://a:2380]}]}")

    def test_restore_argv_36_with_bump(self) -> None:
        m = ke.parse_member("n1", MANIFEST)
        m2 = ke.EtcdMember("n2", "cp2", "https://172.18.0.10:2380", "", "/var/lib/etcd", "/var/lib/etcd", "")
        argv = ke.restore_argv("v3.6.5", "/s.db", m, [m, m2], "/var/lib/etcd-new", "tok", 1_000_000_000)
        assert argv[:4] == ["/usr/local/bin/etcdutl", "snapshot", "restore", "/s.db"]
        assert "--initial-cluster=cp1=https://172.18.0.9:2380,cp2=https://172.18.0.10:2380" in argv
        assert "--initial-advertise-peer-urls=https://172.18.0.9:2380" in argv
        assert argv[-2:] == ["--bump-revision=1000000000", "--mark-compacted"]

    def test_restore_argv_old_etcdctl(self) -> None:
        m = ke.parse_member("n1", MANIFEST)
        argv = ke.restore_argv("3.4.27", "/s.db", m, [m], "/d", "tok")
        assert argv[:3] == ["env", "ETCDCTL_API=3", "/usr/local/bin/etcdctl"] and "--bump-revision" not in " ".join(argv)
        with pytest.raises(ValueError, match="cannot bump"):
            ke.restore_argv("3.4.27", "/s.db", m, [m], "/d", "tok", 5)

    def test_versions(self) -> None:
        assert ke.parse_version("etcdutl version: 3.6.5\nAPI version: 3.6") == (3, 6, 5)
        assert ke.parse_version("3.5.16-0") == (3, 5, 16)
        assert ke.restore_tool("v3.5.0") == "etcdutl" and ke.restore_tool("v3.4.30") == "etcdctl"
        with pytest.raises(ValueError):
            ke.parse_version("latest")

    def test_leader_id(self) -> None:
        st = [{"Status": {"leader": 7, "header": {"member_id": i}}} for i in (7, 8, 9)]
        assert ke.leader_id(st) == 7 and set(ke.status_by_member(st)) == {7, 8, 9}
        assert ke.leader_id([{"Status": {"leader": 0, "header": {"member_id": 1}}}]) is None


def test_foreign_apiserver_argv_points_at_another_etcd() -> None:
    from kubedrill.cluster.etcd_backup import foreign_apiserver_argv

    manifest = yaml.safe_dump({"spec": {"containers": [{"name": "kube-apiserver", "command": [
        "kube-apiserver", "--advertise-address=172.18.0.9", "--etcd-servers=https://127.0.0.1:2379",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt", "--secure-port=6443",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub"]}]}})
    argv = foreign_apiserver_argv(manifest, "http://127.0.0.1:32379", 36443)
    assert argv[0] == "kube-apiserver" and "--service-account-key-file=/etc/kubernetes/pki/sa.pub" in argv
    assert [a for a in argv if a.startswith("--etcd")] == ["--etcd-servers=http://127.0.0.1:32379"]
    assert "--secure-port=36443" in argv and "--secure-port=6443" not in argv and "--bind-address=127.0.0.1" in argv
