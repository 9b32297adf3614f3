"""Preflight's pure checkers: dry-run answers -> findings, drain and shutdown safety from objects,
verdicts and scoring. Hand-made objects; no API server."""

from __future__ import annotations

from typing import Any

import pytest

from kubedrill.check import preflight as P
from kubedrill.check.verdict import Status


def man(kind: str, name: str, spec: dict[str, Any] | None = None, api: str = "apps/v1", ns: str = "ns",
        line: int = 1, **top: Any) -> P.Manifest:
    meta = {"name": name, "namespace": ns, **top.pop("meta", {})}
    obj = {"apiVersion": api, "kind": kind, "metadata": meta, **({"spec": spec} if spec is not None else {}), **top}
    return P.Manifest(P.ObjectRef(api, kind, ns, name, "f.yaml", line), obj)


def deploy(name: str, replicas: int | None = 2, labels: dict[str, str] | None = None, kind: str = "Deployment",
           pod: dict[str, Any] | None = None) -> P.Manifest:
    labels = labels or {"app": name}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels},
                            "template": {"metadata": {"labels": labels},
                                         "spec": pod or {"containers": [{"name": "app", "image": "x"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return man(kind, name, spec)


def pdb(name: str, sel: dict[str, Any] | None, **spec: Any) -> P.Manifest:
    return man("PodDisruptionBudget", name, {**({"selector": sel} if sel is not None else {}), **spec}, api="policy/v1")


def ids(findings: list[P.Finding]) -> set[tuple[str, str]]:
    return {(f.ref.name, f.check) for f in findings}


# --- dry-run answers ---------------------------------------------------------------------------------

REF = P.ObjectRef("extensions/v1beta1", "Ingress", "ns", "web", "in.yaml", 7)


def res(outcome: str, version: str = "v1.36.3", **kw: Any) -> P.DryRunResult:
    return P.DryRunResult(REF, version, outcome, **kw)


def test_refused_by_target_only_is_an_upgrade_risk_and_names_what_the_server_serves() -> None:
    t = res("refused", reason="not served", not_served=True, served_as=("networking.k8s.io/v1",))
    c = res("accepted", version="v1.34.4")
    [f] = P.dryrun_findings([t], [c])
    assert (f.check, f.severity, f.category) == (P.API_REMOVED, P.ERROR, P.UPGRADE_RISK)
    assert "networking.k8s.io/v1" in f.reason and "v1.34.4 accepts it" in f.reason
    assert "in.yaml:7" in str(f.ref)


def test_refused_by_both_is_a_manifest_error_not_an_upgrade_risk() -> None:
    t = res("refused", reason="spec.ports[0].port: Invalid value: 70000", code=422)
    c = res("refused", version="v1.34.4", reason="spec.ports[0].port: Invalid value: 70000", code=422)
    [f] = P.dryrun_findings([t], [c])
    assert (f.check, f.category) == (P.API_REFUSED, P.MANIFEST_ERROR)
    assert "broken already" in f.reason


def test_a_removed_kind_says_no_version_is_served() -> None:
    [f] = P.dryrun_findings([res("refused", reason="gone", not_served=True)])
    assert f.category == P.NO_CONTROL and "serves no version of kind Ingress" in f.reason


def test_warnings_are_reported_with_whether_they_are_new() -> None:
    t = res("accepted", warnings=("a is deprecated", "b is deprecated"))
    c = res("accepted", version="v1.34.4", warnings=("a is deprecated", "b is deprecated"))
    [f] = P.dryrun_findings([t], [c])
    assert (f.check, f.severity) == (P.API_WARNING, P.WARNING) and "also on v1.34.4" in f.reason
    [g] = P.dryrun_findings([t], [res("accepted", version="v1.34.4")])
    assert "new in v1.36.3" in g.reason
    assert P.dryrun_findings([res("accepted")]) == []


def test_an_unanswered_object_is_unknown_never_clean() -> None:
    [f] = P.dryrun_findings([res("error", reason="timed out")])
    assert f.severity == P.UNKNOWN and f.verdict().status is Status.UNKNOWN


def test_bad_outcome_and_severity_are_rejected() -> None:
    with pytest.raises(ValueError):
        res("maybe")
    with pytest.raises(ValueError):
        P.Finding("x", "fatal", REF, "")


# --- drain safety ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("replicas", "spec", "blocks"), [
    (3, {"maxUnavailable": 0}, True),
    (3, {"maxUnavailable": "0%"}, True),
    (3, {"maxUnavailable": 1}, False),
    (4, {"maxUnavailable": "25%"}, False),
    (3, {"minAvailable": 3}, True),
    (3, {"minAvailable": 4}, True),
    (3, {"minAvailable": 2}, False),
    (3, {"minAvailable": "90%"}, True),   # ceil(2.7) = 3
    (3, {"minAvailable": "66%"}, False),  # ceil(1.98) = 2
    (2, {"minAvailable": "50%"}, False),
    (1, {"minAvailable": "50%"}, True),   # ceil(0.5) = 1
    (1, {"minAvailable": 1}, True),
    (None, {"minAvailable": 1}, True),    # replicas defaults to 1
])
def test_pdb_eviction_arithmetic(replicas: int | None, spec: dict[str, Any], blocks: bool) -> None:
    found = ids(P.drain_findings([deploy("web", replicas), pdb("web-pdb", {"matchLabels": {"app": "web"}}, **spec)]))
    assert (("web-pdb", P.PDB_BLOCKS) in found) is blocks


def test_pdb_counts_every_workload_it_selects_and_the_hpa_floor() -> None:
    two = [deploy("a", 1, {"tier": "web", "app": "a"}), deploy("b", 1, {"tier": "web", "app": "b"}),
           pdb("web", {"matchLabels": {"tier": "web"}}, minAvailable=1)]
    assert not any(f.check == P.PDB_BLOCKS for f in P.drain_findings(two))
    hpa = man("HorizontalPodAutoscaler", "h", {"scaleTargetRef": {"kind": "Deployment", "name": "a"},
                                                "minReplicas": 2, "maxReplicas": 5}, api="autoscaling/v2")
    found = P.drain_findings([deploy("a", 6), hpa, pdb("p", {"matchLabels": {"app": "a"}}, minAvailable=2)])
    [f] = [f for f in found if f.check == P.PDB_BLOCKS]
    assert "HPA minReplicas" in f.reason and "a" in f.related


def test_pdb_selector_semantics() -> None:
    d = deploy("web", 3, {"app": "web", "tier": "front"})
    match = [{"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
             {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
             {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]},
             {}]  # policy/v1: an empty selector selects every pod of the namespace
    for sel in match:
        assert P.selector_matches(sel, d.obj["spec"]["template"]["metadata"]["labels"]), sel
    nomatch = [{"matchLabels": {"app": "db"}}, {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
               {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
               {"matchExpressions": [{"key": "app", "operator": "Bogus", "values": ["web"]}]}]
    for sel in nomatch:
        assert not P.selector_matches(sel, {"app": "web", "tier": "front"}), sel
    assert not P.selector_matches(None, {"app": "web"})


def test_pdb_in_another_namespace_or_selecting_nothing() -> None:
    p = pdb("lost", {"matchLabels": {"app": "web"}}, maxUnavailable=1)
    p2 = P.Manifest(P.ObjectRef("policy/v1", "PodDisruptionBudget", "other", "far", "f.yaml", 2),
                    {**p.obj, "metadata": {"name": "far", "namespace": "other"}})
    found = ids(P.drain_findings([deploy("web", 3, {"app": "x"}), p, p2]))
    assert ("lost", P.PDB_SELECTS_NOTHING) in found and ("far", P.PDB_SELECTS_NOTHING) in found
    # A PDB that selects nothing blocks nothing, even with maxUnavailable 0: only the one finding.
    only = P.drain_findings([pdb("z", {"matchLabels": {"app": "none"}}, maxUnavailable=0)])
    assert [f.check for f in only] == [P.PDB_SELECTS_NOTHING]


def test_two_pdbs_over_one_pod_block_the_eviction_api() -> None:
    found = P.drain_findings([deploy("web", 4, {"app": "web", "tier": "t"}),
                              pdb("a", {"matchLabels": {"app": "web"}}, maxUnavailable=1),
                              pdb("b", {"matchLabels": {"tier": "t"}}, maxUnavailable=1)])
    [f] = [f for f in found if f.check == P.PDB_OVERLAP]
    assert f.ref.name == "web" and set(f.related) == {"a", "b"}


def test_single_replica_without_pdb_bare_pods_and_what_is_exempt() -> None:
    bare = man("Pod", "debug", {"containers": [{"name": "c", "image": "x"}]}, api="v1")
    owned = man("Pod", "owned", {"containers": [{"name": "c", "image": "x"}]}, api="v1",
                meta={"ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1", "uid": "u"}]})
    ds = deploy("agent", None, kind="DaemonSet")
    found = ids(P.drain_findings([deploy("one", 1), deploy("dflt", None), deploy("sts", 1, kind="StatefulSet"),
                                  deploy("two", 2), bare, owned, ds]))
    assert found == {("one", P.SINGLE_REPLICA), ("dflt", P.SINGLE_REPLICA), ("sts", P.SINGLE_REPLICA),
                     ("debug", P.BARE_POD)}


# --- shutdown safety -------------------------------------------------------------------------------

def pod(prestop: dict[str, Any] | None = None, grace: int | None = None, probe: bool = True,
        port: Any = 8080) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "app", "image": "x", "ports": [{"containerPort": 8080, "name": "http"}]}
    if prestop is not None:
        c["lifecycle"] = {"preStop": prestop}
    if probe:
        c["readinessProbe"] = {"tcpSocket": {"port": port}}
    spec: dict[str, Any] = {"containers": [c]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return spec


def svc(name: str, selector: dict[str, str] | None, target: Any = 8080, typ: str = "ClusterIP") -> P.Manifest:
    spec: dict[str, Any] = {"type": typ, "ports": [{"port": 80, "targetPort": target}]}
    if selector is not None:
        spec["selector"] = selector
    return man("Service", name, spec, api="v1")


@pytest.mark.parametrize(("prestop", "expected"), [
    ({"sleep": {"seconds": 12}}, 12.0),
    ({"exec": {"command": ["sleep", "5"]}}, 5.0),
    ({"exec": {"command": ["/bin/sh", "-c", "sleep 20 && nginx -s quit"]}}, 20.0),
    ({"exec": {"command": ["sh", "-c", "sleep 1m; kill 1"]}}, 60.0),
    ({"exec": {"command": ["sh", "-c", "sleep 2; sleep 3"]}}, 5.0),
    ({"exec": {"command": ["/app", "prestop"]}}, None),
    ({"exec": {"command": ["/bin/sleeper", "9"]}}, None),
    ({"httpGet": {"path": "/drain", "port": 8080}}, None),
])
def test_prestop_sleep_seconds(prestop: dict[str, Any], expected: float | None) -> None:
    assert P.prestop_sleep_s(prestop) == expected


@pytest.mark.parametrize(("sleep", "grace", "cut"), [(30, None, True), (29, None, False), (45, 40, True),
                                                       (10, 60, False), (60, 60, True)])
def test_prestop_against_grace(sleep: int, grace: int | None, cut: bool) -> None:
    d = deploy("web", pod=pod({"sleep": {"seconds": sleep}}, grace))
    found = P.shutdown_findings([d])
    assert ((("web", P.PRESTOP_GRACE) in ids(found))) is cut
    if cut and grace is None:
        assert "(the default)" in found[0].reason


def test_behind_a_service_needs_prestop_and_readiness_on_the_serving_container() -> None:
    ok = deploy("ok", pod=pod({"sleep": {"seconds": 5}}))
    nopre = deploy("nopre", pod=pod(None))
    noprobe = deploy("noprobe", pod=pod({"sleep": {"seconds": 5}}, probe=False))
    alone = deploy("alone", pod=pod(None, probe=False))
    found = ids(P.shutdown_findings([ok, svc("ok", {"app": "ok"}), nopre, svc("nopre", {"app": "nopre"}, "http"),
                                     noprobe, svc("noprobe", {"app": "noprobe"}), alone]))
    assert found == {("nopre", P.NO_PRESTOP), ("noprobe", P.NO_READINESS)}


def test_services_without_selector_or_external_name_select_nothing() -> None:
    bare = deploy("web", pod=pod(None, probe=False))
    assert P.shutdown_findings([bare, svc("manual", None), svc("ext", {"app": "web"}, typ="ExternalName")]) == []


def test_a_sidecars_probe_does_not_cover_the_serving_container() -> None:
    spec = pod(None, probe=False)
    spec["containers"].append({"name": "proxy", "image": "p", "ports": [{"containerPort": 15000}],
                               "readinessProbe": {"tcpSocket": {"port": 15000}},
                               "lifecycle": {"preStop": {"sleep": {"seconds": 3}}}})
    found = ids(P.shutdown_findings([deploy("web", pod=spec), svc("web", {"app": "web"}, 8080)]))
    assert found == {("web", P.NO_PRESTOP), ("web", P.NO_READINESS)}


# --- verdicts and scoring --------------------------------------------------------------------------

def test_verdicts_gate_on_errors_and_optionally_on_warnings() -> None:
    e = P.Finding(P.PDB_BLOCKS, P.ERROR, REF, "blocks")
    w = P.Finding(P.SINGLE_REPLICA, P.WARNING, REF, "one replica")
    assert e.verdict().status is Status.FAIL and e.verdict().check == "preflight/pdb-blocks-eviction"
    assert w.verdict().status is Status.PASS and w.verdict().reason.startswith("WARNING")
    assert w.verdict(fail_on=P.WARNING).status is Status.FAIL
    assert "in.yaml:7" in e.verdict().reason
    s = P.summary_verdict("drain", [e, w], 10, "objects")
    assert s.status is Status.FAIL and "1 of 10" in s.reason
    assert P.summary_verdict("drain", [w], 10, "objects").status is Status.PASS
    assert P.summary_verdict("drain", [], 0, "objects").status is Status.UNKNOWN


def test_score_counts_recall_false_positives_and_flagged_clean_objects() -> None:
    expected = {"A/n/a": ["api-removed"], "B/n/b": ["pdb-blocks-eviction"], "C/n/c": []}
    s = P.score(expected, [("A/n/a", "api-removed"), ("C/n/c", "api-warning")])
    assert (s.expected, s.found, s.recall) == (2, 1, 0.5)
    assert s.missed == ("B/n/b: pdb-blocks-eviction",) and s.false_positives == ("C/n/c: api-warning",)
    assert (s.clean_objects, s.clean_flagged) == (1, 1)
    only_api = P.score(expected, [("A/n/a", "api-removed")], only_checks=P.API_CHECKS)
    assert only_api.recall == 1.0 and only_api.expected == 1


def test_expected_file_entries_may_hold_for_some_targets_only() -> None:
    doc = {"objects": {"A/n/a": ["api-removed"], "B/n/b": [{"check": "api-refused", "targets": ["v1.36.3"]}],
                       "C/n/c": []}}
    assert P.expected_for(doc, "v1.35.4") == {"A/n/a": ["api-removed"], "B/n/b": [], "C/n/c": []}
    assert P.expected_for(doc, "v1.36.3")["B/n/b"] == ["api-refused"]
    with pytest.raises(ValueError, match="unknown finding id"):
        P.expected_for({"objects": {"A/n/a": ["typo"]}}, "v1.35.4")
