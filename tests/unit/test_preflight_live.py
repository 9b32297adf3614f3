"""Live-cluster preflight helpers on hand-made inputs: `kubectl drain --dry-run=server` output parsing,
agreement with the object view, version skew against a target."""

from __future__ import annotations

from kubedrill.check import preflight as P
from kubedrill.check.skew import Observed
from kubedrill.check.verdict import Status
from kubedrill.preflight import live
from kubedrill.record.versions import Version

V = Version.parse

DRAIN = """\
node/kd-worker cordoned (server dry run)
Warning: ignoring DaemonSet-managed Pods: kube-system/kindnet-abcde, kube-system/kube-proxy-fghij
evicting pod shop/pinned-7d9f-abc (server dry run)
evicting pod shop/free-5c8b-xyz (server dry run)
error when evicting pods/"pinned-7d9f-abc" -n "shop" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
pod/free-5c8b-xyz evicted (server dry run)
evicting pod shop/pinned-7d9f-abc (server dry run)
error when evicting pods/"pinned-7d9f-abc" -n "shop" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
There are pending pods in node "kd-worker" when an error occurred: error when evicting pods/"pinned-7d9f-abc" -n "shop": global timeout reached: 20s
error: unable to drain node "kd-worker" due to error: error when evicting pods/"pinned-7d9f-abc" -n "shop": global timeout reached: 20s, continuing command...
"""


def test_drain_output_is_parsed_into_blocked_and_evictable_pods() -> None:
    a = live.parse_drain("kd-worker", DRAIN)
    assert a.blocked == {"shop/pinned-7d9f-abc"} and a.evictable == {"shop/free-5c8b-xyz"}
    b = live.parse_drain("n", "error: unable to drain node \"n\" due to error: cannot delete Pods that declare no "
                              "controller (use --force to override): shop/debug, shop/other")
    assert b.no_controller == {"shop/debug", "shop/other"}


def test_agreement_names_the_pdb_and_catches_both_kinds_of_disagreement() -> None:
    a = live.parse_drain("kd-worker", DRAIN)
    ok = live.drain_agreement({"shop/pinned-7d9f-abc": "pinned-pdb"}, [a])
    assert ok.status is Status.PASS and "pinned-pdb" in ok.reason
    missed = live.drain_agreement({"shop/pinned-7d9f-abc": "pinned-pdb", "shop/free-5c8b-xyz": "free-pdb"}, [a])
    assert missed.status is Status.FAIL and "free-pdb" in missed.reason and "server evicts shop/free-5c8b-xyz" in missed.reason
    extra = live.drain_agreement({}, [a])
    assert extra.status is Status.FAIL and "no blocking PDB in the object view covers" in extra.reason
    assert live.drain_agreement({}, []).status is Status.UNKNOWN
    # A predicted pod on a node that was not drained is not counted against the server.
    assert live.drain_agreement({"shop/pinned-7d9f-abc": "p", "shop/elsewhere": "p"}, [a]).status is Status.PASS


def test_predicted_blocked_pods_follow_the_blocking_pdbs_selectors() -> None:
    pdb = P.Manifest(P.ObjectRef("policy/v1", "PodDisruptionBudget", "shop", "pinned-pdb", "cluster"),
                     {"spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "pinned"}}}})
    f = P.Finding(P.PDB_BLOCKS, P.ERROR, pdb.ref, "blocks")
    pods = [{"metadata": {"namespace": "shop", "name": "pinned-1", "labels": {"app": "pinned"}}},
            {"metadata": {"namespace": "shop", "name": "free-1", "labels": {"app": "free"}}},
            {"metadata": {"namespace": "other", "name": "pinned-2", "labels": {"app": "pinned"}}}]
    assert live.predicted_blocked([f], [pdb], pods) == {"shop/pinned-1": "pinned-pdb"}


def obs(api: str, kubelets: dict[str, str], proxies: dict[str, str] | None = None) -> Observed:
    return Observed(0.0, {"cp": V(api)}, {n: V(v) for n, v in kubelets.items()},
                    {"cp": V(api)}, {"cp": V(api)}, {n: V(v) for n, v in (proxies or {}).items()})


def test_skew_one_minor_up_is_clean_two_minors_is_refused() -> None:
    o = obs("v1.34.4", {"cp": "v1.34.4", "w1": "v1.34.4"})
    assert live.skew_findings(o, V("v1.35.4"), V("v1.34.4")) == []
    two = live.skew_findings(o, V("v1.36.3"), V("v1.34.4"))
    assert any("too high" in f.reason and f.severity == P.ERROR for f in two)
    assert any(f.ref.name == "kubectl" and f.severity == P.WARNING for f in two)


def test_kubelets_too_old_for_the_target_are_named() -> None:
    o = obs("v1.34.4", {"cp": "v1.34.4", "old": "v1.31.9"})
    found = live.skew_findings(o, V("v1.35.4"))
    [f] = [f for f in found if f.ref.name == "old"]
    assert "more than 3 minors older" in f.reason and f.check == P.SKEW
