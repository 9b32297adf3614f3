"""Node access optional (issue 13): providers, the one traffic-path decision, load gaps judged as the
load's failure, and bad input (a context that does not exist, an API server that does not answer,
credentials that may not create namespaces, an image the nodes cannot get) turned into one clear
error naming the fix. Pure or against local fakes: no Docker, no cluster."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client as k8s

from kubedrill.check.load_gaps import Gap, check_load_gaps, gaps_of, hidden_by_gaps, without_gap_failures
from kubedrill.check.verdict import Status, Verdict
from kubedrill.cluster.access import AccessDenied, Right, missing_rights, require_namespace_rights
from kubedrill.cluster.existing import AttachError, ClusterUnreachable, attach
from kubedrill.cluster.handle import Cluster, NodeAccessUnavailable
from kubedrill.load import incluster_spec as spec
from kubedrill.load.path import InClusterTraffic, choose
from kubedrill.record import Event, Operation, Recorder, Window
from kubedrill.scenarios.drain import no_room_for_load, unavailable
from kubedrill.workload.deploy import pull_failure_message, pull_failures

NODES = {"control-plane": ["kd-control-plane"], "worker": ["kd-worker", "kd-worker2"]}


def kind_cluster(ports: bool = True) -> Cluster:
    return Cluster(name="kd", kubeconfig=Path("/nonexistent"), provider="kind", nodes=NODES,
                   port_map={30080: {"kd-control-plane": 40080}} if ports else {})


# -- providers --------------------------------------------------------------------------------

def test_generic_gives_the_api_only_and_says_what_is_missing() -> None:
    c = kind_cluster().as_generic()
    assert c.provider == "generic" and c.port_map == {} and c.nodes == NODES
    assert kind_cluster().node_access is None
    with pytest.raises(NodeAccessUnavailable, match=r"needs a shell on nodes: provider generic gives Kubernetes API "
                                                     r"only .*--provider kind"):
        c.node_exec("kd-worker", "true")


# -- the one traffic-path decision --------------------------------------------------------------

@pytest.mark.parametrize(("cluster", "path", "why"), [
    (kind_cluster(), "host-port", "maps NodePorts [30080] to 127.0.0.1"),
    (kind_cluster(ports=False), "in-cluster", "maps no NodePort to 127.0.0.1 (a plain `kind create cluster`)"),
    (kind_cluster().as_generic(), "in-cluster", "provider generic gives no host ports"),
], ids=["kind/mapped", "kind/unmapped", "generic"])
def test_traffic_path_is_host_port_only_where_a_host_port_reaches_the_service(cluster: Cluster, path: str,
                                                                                why: str) -> None:
    chosen = choose(cluster)
    assert chosen.name == path and why in chosen.why


class FakeLoad:
    """InClusterLoad's interface, recording how it was made and handing back canned requests."""

    made: list["FakeLoad"] = []

    def __init__(self, cluster: Cluster, url: str, **kw: Any) -> None:
        self.url, self.kw, self.started, self.stopped = url, kw, False, False
        FakeLoad.made.append(self)
        pod = f"w-{len(FakeLoad.made)}"
        self.ops = [Operation("http GET /", 1.0 + i, 1.1 + i, "ok", client=pod) for i in range(3)]

    def start(self, first_answer_timeout: float = 60) -> None:
        if "bad" in self.url:
            raise TimeoutError("no worker answered")
        self.started = True

    def stop(self) -> None:
        self.stopped = True
        self.kw["recorder"].extend(self.ops)

    def operations(self) -> list[Operation]:
        return self.ops

    def gaps(self) -> list[Any]:
        return []

    def clock_offsets(self) -> dict[str, float]:
        return {f"pod-of-{self.url}": 0.002}

    def log_tail(self, lines: int = 15) -> str:
        return "log"


@pytest.fixture
def fake_load(monkeypatch: pytest.MonkeyPatch) -> type[FakeLoad]:
    import kubedrill.load.incluster as incluster

    FakeLoad.made = []
    monkeypatch.setattr(incluster, "InClusterLoad", FakeLoad)
    return FakeLoad


def test_in_cluster_traffic_splits_rate_and_users_over_urls_and_records_once(fake_load: type[FakeLoad]) -> None:
    rec = Recorder("t")
    with InClusterTraffic(kind_cluster().as_generic(), ["http://lb.ns.svc.cluster.local:80",
                                                        "http://app.ns.svc.cluster.local:8080"],
                          recorder=rec, rate=40, users=8, workers=2, avoid_nodes=["kd-worker"]) as t:
        assert all(f.started for f in fake_load.made)
    assert [(f.kw["rate"], f.kw["users"], f.kw["workers"], f.kw["keep_alive"]) for f in fake_load.made] == \
        [(20.0, 4, 2, False), (20.0, 4, 2, False)]
    assert all(f.kw["avoid_nodes"] == ("kd-worker",) and f.stopped for f in fake_load.made)
    assert len(t.operations) == 6 and len(rec.history) == 6  # the loads put them on the recorder; not twice
    t.stop()
    assert len(rec.history) == 6
    assert rec.events_of("load-clocks")[0].data == {"pod-of-http://lb.ns.svc.cluster.local:80": 0.002,
                                                    "pod-of-http://app.ns.svc.cluster.local:8080": 0.002}
    assert t.stats is not None and t.stats.requests == 6 and "from load pods in the cluster" in t.summary()


def test_in_cluster_traffic_that_fails_to_start_stops_what_it_started(fake_load: type[FakeLoad]) -> None:
    t = InClusterTraffic(kind_cluster().as_generic(), ["http://ok:80", "http://bad:80"], recorder=Recorder("t"))
    with pytest.raises(TimeoutError):
        t.start()
    assert [f.stopped for f in fake_load.made] == [True, True]


# -- drain: what runs where ----------------------------------------------------------------------

def test_reboot_is_unavailable_without_node_access_and_cordon_is_not() -> None:
    generic = kind_cluster().as_generic()
    assert "node access" in (unavailable(generic, "reboot") or "")
    assert unavailable(generic, "cordon") is None and unavailable(generic, "drain") is None
    assert unavailable(kind_cluster(), "reboot") is None


def test_in_cluster_load_needs_a_node_the_operation_leaves_alone() -> None:
    generic = kind_cluster().as_generic()
    assert no_room_for_load(generic, "drain") is None
    assert no_room_for_load(generic, "rolling-drain") is None  # the control plane is left
    managed = dataclasses.replace(generic, nodes={"control-plane": [], "worker": NODES["worker"]})
    why = no_room_for_load(managed, "rolling-drain")
    assert why is not None and "takes every worker" in why and "no control-plane node" in why and "--provider kind" in why
    assert no_room_for_load(kind_cluster(), "rolling-drain") is None  # host-port path: no load pods


def test_load_pods_tolerate_the_control_plane_only_when_asked() -> None:
    shape = spec.LoadShape(url="http://s.ns.svc.cluster.local:80", path="/", users=2, rate=10.0, run_time=30.0,
                           workers=2, request_timeout=5.0, keep_alive=True)
    for ok in (False, True):
        pods = [d["spec"] if d["kind"] == "Pod" else d["spec"]["template"]["spec"]
                for d in spec.render(shape, "img:1", "r1", avoid_nodes=["kd-worker"], control_plane_ok=ok)
                if d["kind"] in ("Pod", "Deployment")]
        assert len(pods) == 2
        for p in pods:
            assert (p.get("tolerations") == [spec.CONTROL_PLANE_TOLERATION]) is ok
            assert p["affinity"]["nodeAffinity"]  # still kept off the drilled nodes


# -- load gaps: the load's failure, never the app's -----------------------------------------------

def ops_every(start: float, end: float, step: float, client: str, outcome: str = "ok") -> list[Operation]:
    out, t = [], start
    while t < end:
        out.append(Operation("http GET /", t, t + 0.05, outcome, client=client))  # type: ignore[arg-type]
        t += step
    return out


def test_gap_events_become_gaps_and_the_lost_workers_failures_are_dropped() -> None:
    events = [Event(12.0, "load-gap", "pod went away: evicted", {"pod": "w1", "end": None}),
              Event(3.0, "traffic-start")]
    gaps = gaps_of(events)
    assert gaps == [Gap("w1", 12.0, None, "pod went away: evicted")]
    ops = ops_every(0, 12, 0.5, "w1") + [Operation("http GET /", 11.5, 12.2, "fail", client="w1"),
                                         Operation("http GET /", 11.5, 12.2, "fail", client="w2")]
    kept = without_gap_failures(ops, gaps)
    assert [o.client for o in kept if o.outcome == "fail"] == ["w2"]  # another worker's failure is the app's


def test_a_gap_the_other_workers_covered_passes_and_says_so() -> None:
    gaps = [Gap("w1", 12.0, 20.0, "pod went away: evicted")]
    ops = ops_every(0, 30, 0.25, "w2") + ops_every(0, 12, 0.25, "w1")
    v = check_load_gaps(gaps, ops, Window(10, 25))
    assert v.status is Status.PASS and "the others kept the load" in v.reason and "not counted against the app" in v.reason


def test_a_gap_that_silenced_the_load_is_unknown_and_hides_an_availability_pass() -> None:
    gaps = [Gap("w1", 12.0, 19.0, "pod went away: evicted")]
    ops = ops_every(0, 12, 0.25, "w1") + ops_every(19, 30, 0.25, "w1b")
    v = check_load_gaps(gaps, ops, Window(10, 25), t0=0)
    assert v.status is Status.UNKNOWN
    assert "no request was sent from +12.0 s to +19.0 s" in v.reason and "not an app failure" in v.reason
    assert hidden_by_gaps(Verdict.ok("availability", "100%"), v).status is Status.UNKNOWN
    failed = Verdict.fail("availability", "97%")
    assert hidden_by_gaps(failed, v) is failed  # what was seen failing was the app


def test_gaps_outside_the_window_leave_it_judged() -> None:
    ops = ops_every(0, 30, 0.25, "w2")
    assert check_load_gaps([Gap("w1", 26.0, None, "exited")], ops, Window(10, 25)).status is Status.PASS
    assert check_load_gaps([], ops, Window(10, 25)).reason == "every load worker ran to the end"


# -- bad input: permissions ---------------------------------------------------------------------

def test_credentials_that_may_not_create_namespaces_are_refused_before_anything_is_made() -> None:
    asked: list[Right] = []

    def ask(right: Right) -> tuple[bool, str]:
        asked.append(right)
        return right.verb == "delete", "" if right.verb == "delete" else 'no RBAC policy matched'

    assert [str(r) for r, _ in missing_rights(ask)] == ["create namespaces"]
    with pytest.raises(AccessDenied) as exc:
        require_namespace_rights(Cluster(name="c", kubeconfig=Path("/x"), provider="generic", context="viewer"), ask)
    msg = str(exc.value)
    assert "context 'viewer' may not create namespaces" in msg and "no RBAC policy matched" in msg
    assert "may create and delete namespaces" in msg and "Nothing was created" in msg
    require_namespace_rights(Cluster(name="c", kubeconfig=Path("/x"), provider="generic"), lambda r: (True, ""))


# -- bad input: images ------------------------------------------------------------------------------

def pod(name: str, reason: str | None, image: str = "kubedrill/sample-app:abc") -> Any:
    waiting = k8s.V1ContainerStateWaiting(reason=reason, message=f"{reason} for {image}") if reason else None
    status = k8s.V1ContainerStatus(name="app", image=image, image_id="", ready=False, restart_count=0,
                                   state=k8s.V1ContainerState(waiting=waiting))
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name), status=k8s.V1PodStatus(container_statuses=[status]))


def test_an_image_the_nodes_cannot_get_is_named_with_both_fixes() -> None:
    found = pull_failures([pod("a", "ErrImageNeverPull"), pod("b", "ContainerCreating"), pod("c", None)])
    assert [(f.pod, f.reason) for f in found] == [("a", "ErrImageNeverPull")]
    on_kind = pull_failure_message(kind_cluster(), found)
    assert "cannot get image kubedrill/sample-app:abc" in on_kind
    assert "kind load docker-image kubedrill/sample-app:abc --name kd" in on_kind
    assert "or name an image they can pull" in on_kind
    generic = pull_failure_message(kind_cluster().as_generic(), found)
    assert "push it to a registry the nodes pull from" in generic


def test_the_deploy_wait_gives_up_at_once_on_an_image_never_pulled(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubedrill.cluster.waits import WaitTimeout
    from kubedrill.workload import deploy

    fake = SimpleNamespace(name="kd", provider="generic", core=lambda: SimpleNamespace(
        list_namespaced_pod=lambda ns, **kw: SimpleNamespace(items=[pod("app-1", "ErrImageNeverPull")])),
        kubectl=lambda *a, **kw: SimpleNamespace(stdout=""))
    monkeypatch.setattr(deploy, "workload_ready", lambda *a: (False, "deployment app: ready 0"))
    with pytest.raises(WaitTimeout, match="gave up early: pod app-1 cannot get image"):
        deploy.wait_workload_ready(fake, "ns", "Deployment", "app", timeout=60)  # type: ignore[arg-type]


# -- bad input: the cluster itself ------------------------------------------------------------------

def kubeconfig(tmp_path: Path, server: str, context: str = "staging") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: {context}, context: {{cluster: c, user: u}}}}]
current-context: {context}
""")
    return path


def test_a_context_that_does_not_exist_names_the_ones_that_do(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachable, match=r"context 'prod' is not in .*available: staging\. Pass --context"):
        attach(str(kubeconfig(tmp_path, "https://127.0.0.1:1")), "prod")


def test_an_api_server_that_does_not_answer_is_named_with_what_to_check(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ClusterUnreachable, match=r"API server of context 'staging' \(http://127.0.0.1:\d+\) did not "
                                                 r"answer.*Check that the cluster runs"):
        attach(str(kubeconfig(tmp_path, f"http://127.0.0.1:{port}")), timeout=3)


def test_provider_kind_on_a_cluster_that_is_not_kind_here_is_refused(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes import client

    monkeypatch.setattr(client.VersionApi, "get_code", lambda self, **kw: SimpleNamespace(git_version="v1.34.4"))
    monkeypatch.setattr(client.CoreV1Api, "list_node", lambda self, **kw: SimpleNamespace(items=[]))
    path = str(kubeconfig(tmp_path, "https://127.0.0.1:1"))
    with pytest.raises(AttachError, match="is not one. Attach it with --provider generic"):
        attach(path, provider="kind")
    c = attach(path, allow_disruptive_on="staging")
    assert c.provider == "generic" and c.disruptive_allowed and c.port_map == {}


# -- the drills judge load gaps as the load's, never the app's ----------------------------------

def test_drain_judge_adds_a_load_gap_verdict_only_when_a_load_pod_was_lost() -> None:
    from tests.unit.test_drain_scenario import EXPECT, a_pass, load, record

    from kubedrill.scenarios.drain import judge

    plain = judge(record(passes=[a_pass()]), EXPECT)
    assert "load-gap" not in [v.check for v in plain]  # the host-port path's verdicts are unchanged

    rec = Recorder("drain")
    rec.event("load-gap", "pod went away: evicted", at=12.0, pod="w1", end=21.0)
    silent = [o for o in load() if not 12.0 <= o.start <= 21.0]
    by = {v.check: v for v in judge(record(passes=[a_pass()], operations=silent, recorder=rec), EXPECT)}
    assert by["load-gap"].status is Status.UNKNOWN and "not an app failure" in by["load-gap"].reason
    assert by["availability"].status is Status.UNKNOWN and by["availability"].reason.startswith("load gap:")
