"""The skew policy, the upgrade-path refusal and the `kubeadm upgrade plan` parser, on hand-made inputs.

The plan text in tests/unit/data/kubeadm-upgrade-plan-v1.33.13-v1.34.4.txt was captured from a real
`kubeadm upgrade plan v1.34.4` on a three-node kind cluster at v1.33.13 (kubedrill's offline build).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.check.skew import Observed, kubelet_skew_minors, skew_verdict, skew_violations
from kubedrill.record.versions import PlanParseError, UpgradeRefused, Version, VersionError, check_upgrade_path, parse_upgrade_plan, plan_problems, upgrade_path_problems, version_of_image
from kubedrill.check.verdict import Status

PLAN = Path(__file__).parent / "data" / "kubeadm-upgrade-plan-v1.33.13-v1.34.4.txt"
NODES = ["kdupgrade-control-plane", "kdupgrade-worker", "kdupgrade-worker2"]  # as captured
V = Version.parse


def obs(api: str | dict[str, str], kubelets: dict[str, str], label: str = "",
        controller_managers: dict[str, str] | None = None, schedulers: dict[str, str] | None = None,
        kube_proxies: dict[str, str] | None = None) -> Observed:
    def conv(d: dict[str, str] | None) -> dict[str, Version]:
        return {n: V(x) for n, x in (d or {}).items()}

    apis = {"kd-control-plane": api} if isinstance(api, str) else api
    return Observed(0.0, conv(apis), conv(kubelets), conv(controller_managers), conv(schedulers), conv(kube_proxies),
                    label=label)


# --- versions -----------------------------------------------------------------------------------------

def test_versions_parse_and_order_by_number_not_text() -> None:
    assert V("v1.34.4") > V("v1.33.13")
    assert V("1.9.0") < V("1.10.0")
    assert str(V("v1.35.0-rc.1+abc")) == "v1.35.0-rc.1"
    assert V("v1.34.4").minors_above(V("v1.32.9")) == 2
    with pytest.raises(VersionError, match="not a Kubernetes version"):
        V("v0.0.0-master+$Format:%H$x")
    with pytest.raises(VersionError):
        V("1.34")


def test_version_of_image_reads_the_tag_and_ignores_odd_ones() -> None:
    assert version_of_image("registry.k8s.io/kube-apiserver:v1.34.4") == V("v1.34.4")
    assert version_of_image("localhost:5000/kube-proxy") is None
    assert version_of_image("registry.k8s.io/etcd:3.6.5-0") == V("3.6.5-0")
    assert version_of_image("registry.k8s.io/pause@sha256:abc") is None


# --- upgrade path ----------------------------------------------------------------------------------

def test_one_minor_and_patch_upgrades_are_accepted() -> None:
    check_upgrade_path("v1.33.13", "v1.34.4", "v1.34.4")
    check_upgrade_path("v1.34.1", "v1.34.4")


def test_a_two_minor_jump_is_refused_with_kubeadms_reason_and_the_fix() -> None:
    with pytest.raises(UpgradeRefused) as exc:
        check_upgrade_path("v1.33.13", "v1.35.0", "v1.35.0")
    msg = str(exc.value)
    assert "kubeadm can upgrade only 1 minor version at a time" in msg
    assert "skips v1.34" in msg and "upgrade to v1.34.x first" in msg


def test_downgrades_same_version_major_change_and_old_kubeadm_are_refused() -> None:
    assert any("downgrade" in p for p in upgrade_path_problems(V("v1.34.4"), V("v1.34.1")))
    assert any("too low" in p for p in upgrade_path_problems(V("v1.34.4"), V("v1.32.1")))
    assert any("already at" in p for p in upgrade_path_problems(V("v1.34.4"), V("v1.34.4")))
    assert any("major" in p for p in upgrade_path_problems(V("v1.34.4"), V("v2.0.0")))
    assert any("place kubeadm" in p for p in upgrade_path_problems(V("v1.33.13"), V("v1.34.4"), kubeadm=V("v1.33.13")))
    assert any("unstable" in p for p in upgrade_path_problems(V("v1.33.13"), V("v1.34.0-rc.1")))


# --- skew policy -----------------------------------------------------------------------------------

def test_mid_upgrade_states_kubeadm_passes_through_are_within_policy() -> None:
    # control plane upgraded, workers not yet: the normal middle of a rollout
    mid = obs("v1.34.4", {"kd-control-plane": "v1.34.4", "kd-worker": "v1.33.13", "kd-worker2": "v1.33.13"},
              controller_managers={"kd-control-plane": "v1.34.4"}, kube_proxies={"kd-worker": "v1.34.4"})
    assert skew_violations(mid) == []
    # kubelets three minors older are still supported
    assert skew_violations(obs("v1.34.4", {"w": "v1.31.0"})) == []
    assert kubelet_skew_minors(obs("v1.34.4", {"w": "v1.31.0"})) == 3


def test_a_worker_upgraded_before_the_control_plane_is_a_violation() -> None:
    bad = obs("v1.33.13", {"kd-control-plane": "v1.33.13", "kd-worker": "v1.34.4"})
    (v,) = skew_violations(bad)
    assert v.component == "kubelet" and v.node == "kd-worker"
    assert "newer than kube-apiserver v1.33.13" in str(v) and "upgrade the control plane first" in str(v)


def test_too_old_kubelets_and_ha_api_servers_apart_are_violations() -> None:
    assert "more than 3 minors older" in str(skew_violations(obs("v1.34.4", {"w": "v1.30.9"}))[0])
    ha = obs({"cp1": "v1.34.4", "cp2": "v1.32.9"}, {"w": "v1.32.9"})
    assert [x.component for x in skew_violations(ha)] == ["kube-apiserver"]


def test_controller_manager_is_compared_with_the_api_server_on_its_own_node() -> None:
    # HA mid-upgrade: cp1 done (apiserver and controller-manager new), cp2 not yet. kubeadm points each
    # controller-manager at its local API server, so cp1's new controller-manager is fine.
    ha = obs({"cp1": "v1.34.4", "cp2": "v1.33.13"}, {"cp1": "v1.33.13", "cp2": "v1.33.13"},
             controller_managers={"cp1": "v1.34.4", "cp2": "v1.33.13"}, schedulers={"cp2": "v1.34.4"})
    (v,) = skew_violations(ha)
    assert v.component == "kube-scheduler" and v.node == "cp2" and "newer than the kube-apiserver on cp2" in str(v)


def test_kube_proxy_newer_than_the_api_server_is_a_violation() -> None:
    v = skew_violations(obs("v1.33.13", {"w": "v1.33.13"}, kube_proxies={"w": "v1.34.4"}))
    assert [x.component for x in v] == ["kube-proxy"]


def test_skew_verdict_fails_on_any_snapshot_and_names_when() -> None:
    good = obs("v1.33.13", {"w": "v1.33.13"}, label="before")
    bad = obs("v1.33.13", {"w": "v1.34.4"}, label="after kd-worker")
    v = skew_verdict([good, bad, good])
    assert v.status is Status.FAIL
    assert "after kd-worker" in v.reason and "kubelet on w at v1.34.4" in v.reason


def test_skew_verdict_is_unknown_without_complete_snapshots_or_required_moments() -> None:
    empty = Observed(0.0, {}, {"w": V("v1.33.13")})
    assert skew_verdict([empty]).status is Status.UNKNOWN
    assert skew_verdict([]).status is Status.UNKNOWN
    v = skew_verdict([obs("v1.33.13", {"w": "v1.33.13"}, label="before")], required_labels=["before", "after w"])
    assert v.status is Status.UNKNOWN and "after w" in v.reason
    ok = skew_verdict([obs("v1.33.13", {"w": "v1.33.13"}, label="before")], required_labels=["before"])
    assert ok.status is Status.PASS


# --- kubeadm upgrade plan --------------------------------------------------------------------------

def test_real_plan_output_is_parsed() -> None:
    plan = parse_upgrade_plan(PLAN.read_text())
    assert plan.cluster_version == V("v1.33.13")
    assert plan.kubeadm_version == V("v1.34.4")
    assert plan.target_version == V("v1.34.4")
    assert plan.apply_command == "kubeadm upgrade apply v1.34.4"
    kubelets = {r.node: (r.current, r.target) for r in plan.manual if r.component == "kubelet"}
    assert set(kubelets) == set(NODES)
    assert all(v == ("v1.33.13", "v1.34.4") for v in kubelets.values())
    auto = {r.component: r for r in plan.automatic}
    assert auto["kube-apiserver"].target == "v1.34.4" and auto["kube-apiserver"].node == NODES[0]
    assert auto["etcd"].target == "3.6.5-0" and auto["etcd"].current == "3.5.24-0"
    # kubeadm prints kube-proxy's current version without the "v" and no node for the addons
    assert auto["kube-proxy"].node == "" and auto["kube-proxy"].current == "1.33.13"
    assert auto["CoreDNS"].target == "v1.12.1"
    assert plan.description == "version in the v1.33 series"  # kubeadm's wording with an explicit version
    assert plan_problems(plan, V("v1.33.13"), V("v1.34.4"), NODES) == []
    assert plan.to_dict()["target_version"] == "v1.34.4"


def test_plan_problems_name_what_differs_from_the_intent() -> None:
    plan = parse_upgrade_plan(PLAN.read_text())
    problems = plan_problems(plan, V("v1.33.13"), V("v1.34.5"), [*NODES, "kdupgrade-worker3"])
    assert any("wants v1.34.5" in p for p in problems)
    assert any("no kubelet upgrade for kdupgrade-worker3" in p for p in problems)


def test_plan_without_an_upgrade_is_a_clear_parse_error() -> None:
    text = ("[upgrade/versions] Cluster version: v1.34.4\n[upgrade/versions] kubeadm version: v1.34.4\n"
            "Awesome, you're up-to-date! Enjoy!\n")
    with pytest.raises(PlanParseError, match="no 'kubeadm upgrade apply vX' line"):
        parse_upgrade_plan(text)


def test_a_control_plane_kubelet_is_judged_against_the_api_server_it_talks_to() -> None:
    # HA after the first control plane: kubeadm's documented order upgrades cp1's kubelet before cp2's API
    # server. With ControlPlaneKubeletLocalMode cp1's kubelet talks to cp1's (new) API server: supported.
    apis = {"cp1": "v1.34.4", "cp2": "v1.33.13"}
    kubelets = {"cp1": "v1.34.4", "cp2": "v1.33.13", "w1": "v1.33.13"}
    local = Observed(0.0, {n: V(x) for n, x in apis.items()}, {n: V(x) for n, x in kubelets.items()},
                     kubelet_apiservers={"cp1": "cp1", "cp2": "cp2"})
    assert skew_violations(local) == []
    # the same kubelet behind the load balancer may reach cp2's older API server: a violation
    (v,) = skew_violations(obs(apis, kubelets | {"cp1": "v1.34.4"}))
    assert v.node == "cp1" and "newer than kube-apiserver v1.33.13" in str(v)
    # a worker through the load balancer is judged against the oldest even when a control plane is new
    lb_worker = Observed(0.0, {n: V(x) for n, x in apis.items()}, {"w1": V("v1.34.4")}, kubelet_apiservers={})
    assert [x.node for x in skew_violations(lb_worker)] == ["w1"]
    # and a kubelet mapped to its node's API server is still caught when that one is older
    wrong = Observed(0.0, {n: V(x) for n, x in apis.items()}, {"cp2": V("v1.34.4")}, kubelet_apiservers={"cp2": "cp2"})
    assert "on cp2, the one it talks to" in str(skew_violations(wrong)[0])
