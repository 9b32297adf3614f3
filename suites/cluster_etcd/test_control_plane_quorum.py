"""Control-plane quorum on the HA config: 3 control planes (stacked etcd) behind kind's LB.

Two recorded probers update and read a ConfigMap through the load balancer every 150 ms with a
1 s client timeout, one on a keep-alive connection, one with a new connection per request. Control-plane node containers are stopped with `docker stop`:
  * one down: the API stays readable and writable through the LB (the outage is measured);
  * two down: etcd has no quorum; every write is refused or times out within the client timeout,
    and one write with a long timeout shows the API server itself gives up in bounded time;
  * both back: etcd has 3 healthy members with equal `endpoint hashkv`, the API is writable;
  * the etcd leader's node stopped: re-election measured from etcd and from the API.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from kubedrill.check.etcd_checks import check_answers, check_election, check_hashes_equal, check_min_rate, \
    check_unavailability
from kubedrill.check.verdict import Figure, Verdict, combine
from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.cluster_etcd import StopNodes, etcd_healthy_members, etcd_leader_node
from kubedrill.load.api_prober import ApiConn, ApiError, ApiProber, ApiTarget, LeaderWatcher, configmap_path
from kubedrill.record import Operation, Recorder
from kubedrill.report.model import TestResult
from kubedrill.workload import apply

pytestmark = [pytest.mark.needs_docker, pytest.mark.disruptive, pytest.mark.slow]

OP_TIMEOUT_S = 1.0
INTERVAL_S = 0.15
HOLD_S = 12.0  # how long each fault is held while the prober records
# One control plane down must not cost more than this much write availability through the LB.
MAX_ONE_DOWN_OUTAGE_S = 15.0
# The API server must answer a write without quorum (an error) within this, whatever the client waits.
SERVER_GIVES_UP_S = 70.0


@pytest.fixture(scope="module")
def probe_ns(ha_cluster: Cluster) -> Iterator[str]:
    ns = apply.unique_namespace("cp-quorum")
    apply.create_namespace(ha_cluster, ns)
    yield ns
    apply.delete_namespace(ha_cluster, ns, wait=False)


CLIENTS = ("keepalive", "fresh")


@contextlib.contextmanager
def _probers(c: Cluster, ns: str, rec: Recorder) -> Iterator[None]:
    """Two recorded clients through the LB: one keep-alive connection (client-go style) and one
    new connection per request (kubectl style: each is routed again, so a dead backend shows)."""
    target = ApiTarget.from_kubeconfig(c.kubeconfig, c.context)
    with contextlib.ExitStack() as stack:
        for client in CLIENTS:
            stack.enter_context(ApiProber(target, ns, rec, name=f"kd-probe-{client}", client=client,
                                          interval_s=INTERVAL_S, timeout_s=OP_TIMEOUT_S, max_duration_s=900,
                                          fresh_connections=client == "fresh"))
        yield


def _outages(rec: Recorder, lo: float, hi: float, label: str, max_s: float | None) -> list[Verdict]:
    """Write unavailability per client over [lo, hi] (a window closes only with that client's success)."""
    return [check_unavailability([o for o in rec.history if o.client == client and lo <= o.start <= hi],
                                 max_window_s=max_s, label=f"{label}-{client}") for client in CLIENTS]


def _writes(rec: Recorder, lo: float, hi: float) -> list[Operation]:
    return [o for o in rec.history if o.kind == "put" and lo <= o.start <= hi]


def _healthy_three(c: Cluster) -> tuple[ke.NodeEtcd, list[Verdict]]:
    """etcd has every member healthy and equal hashkv at a common revision; the API writes."""
    t = ke.NodeEtcd(c, c.control_planes[0])
    ok, seen = etcd_healthy_members(c, c.control_planes[0])
    verdicts = [Verdict.ok("etcd-members-healthy", seen) if ok else Verdict.fail("etcd-members-healthy", seen)]
    st = t.endpoint_status()
    rev = min(int(s["Status"]["header"]["revision"]) for s in st)
    verdicts.append(check_hashes_equal(t.hashkv(rev), rev))
    return t, verdicts


def _server_refusal(c: Cluster, ns: str, attempts: int = 5) -> Operation:
    """One write with a long client timeout: how long until the API server itself says no.

    The LB may still route a new connection to a stopped backend (it has not marked it down
    yet); such an attempt fails without reaching an API server, so it is retried (bounded) until
    an API server answers."""
    target = ApiTarget.from_kubeconfig(c.kubeconfig, c.context)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kd-probe-keepalive", "namespace": ns},
            "data": {"seq": "no-quorum"}}
    op: Operation | None = None
    for _ in range(attempts):
        conn = ApiConn(target, SERVER_GIVES_UP_S)
        t0 = time.monotonic()
        try:
            conn.request("PUT", configmap_path(ns, "kd-probe-keepalive"), body, write=True)
            return Operation("put", t0, time.monotonic(), "ok", "long-timeout", "kd-probe-keepalive", "no-quorum")
        except ApiError as exc:
            op = Operation("put", t0, time.monotonic(), exc.outcome, "long-timeout", "kd-probe-keepalive", "no-quorum",
                           None, str(exc))
            if exc.status:  # an API server answered
                return op
        finally:
            conn.close()
    assert op is not None
    return op


def _finish(kd_report: TestResult, kd_artifacts: Path, rec: Recorder, verdicts: list[Verdict]) -> None:
    for v in verdicts:
        kd_report.add(v)
    (kd_artifacts / "record.json").write_text(rec.to_json())
    verdict = combine("control-plane-quorum", verdicts)
    assert verdict.passed, str(verdict)


def test_one_down_writable_two_down_refused_then_healed(ha_cluster: Cluster, probe_ns: str, kd_report: TestResult,
                                                        kd_artifacts: Path) -> None:
    c = ha_cluster
    rec = Recorder("cp-quorum")
    _, verdicts = _healthy_three(c)
    leader = etcd_leader_node(c)
    followers = [n for n in c.control_planes if n != leader]
    with _probers(c, probe_ns, rec):
        time.sleep(3)
        verdicts.append(check_min_rate(rec.history, before=time.monotonic(), min_rate=2.0, lookback_s=3))
        one = StopNodes(c, [followers[0]])
        with one.applied(rec):
            assert one.stopped_at is not None
            time.sleep(HOLD_S)
            t1 = time.monotonic()
            assert one.window is None and one.inject_s is not None
            verdicts += _outages(rec, one.stopped_at - one.inject_s - 1, t1, "api-write-one-cp-down", MAX_ONE_DOWN_OUTAGE_S)
            verdicts.append(check_answers(_writes(rec, one.stopped_at, t1), expect_ok=True, timeout_s=OP_TIMEOUT_S,
                                          what="api-writes-one-cp-down"))
            verdicts.append(check_answers([o for o in rec.history if o.kind == "get" and one.stopped_at <= o.start <= t1],
                                          expect_ok=True, timeout_s=OP_TIMEOUT_S, what="api-reads-one-cp-down"))
            two = StopNodes(c, [followers[1]])
            with two.applied(rec, check_health=False):
                assert two.stopped_at is not None
                refusal = _server_refusal(c, probe_ns)
                rec.add(refusal)
                time.sleep(max(0.0, HOLD_S - (time.monotonic() - two.stopped_at)))
                t2 = time.monotonic()
            refused = _writes(rec, two.stopped_at, t2)
            refused = [o for o in refused if o.client != "long-timeout"]
            verdicts.append(check_answers(refused, expect_ok=False, timeout_s=OP_TIMEOUT_S, slack_s=0.5,
                                          what="api-writes-two-cp-down"))
            last_ok = max((o.end for o in _writes(rec, two.stopped_at - 30, t2) if o.outcome == "ok"), default=None)
            kd_report.figure("last_ok_write_after_second_stop",
                             round(last_ok - two.stopped_at, 2) if last_ok is not None else None, "s",
                             "negative: the last write that succeeded ended before the second node was down")
            answered = refusal.detail.startswith("HTTP")
            srv = (Verdict.fail if refusal.outcome == "ok" or refusal.latency >= SERVER_GIVES_UP_S - 1
                   else Verdict.ok if answered else Verdict.unknown)
            verdicts.append(srv("api-server-refuses-without-quorum",
                                f"a write with a {SERVER_GIVES_UP_S:.0f}s timeout ended {refusal.outcome} after "
                                f"{refusal.latency:.1f}s: {refusal.detail or 'accepted'}"
                                + ("" if answered or refusal.outcome == "ok" else
                                   " (no API server answered: the LB kept routing to stopped backends)"),
                                [Figure("server_refusal_seconds", round(refusal.latency, 2), "s")]))
        time.sleep(5)
        healed_at = time.monotonic() - 5
    verdicts.append(check_answers(_writes(rec, healed_at, time.monotonic()), expect_ok=True, timeout_s=OP_TIMEOUT_S,
                                  what="api-writes-after-heal"))
    _, after = _healthy_three(c)
    verdicts += after
    kd_report.figure("ip_changed_on_restart", len(one.effect.get("ip_changed", {})) + len(two.effect.get("ip_changed", {})),
                     "nodes")
    _finish(kd_report, kd_artifacts, rec, verdicts)


def test_leader_node_stop_reelection_seen_from_api(ha_cluster: Cluster, probe_ns: str, kd_report: TestResult,
                                                   kd_artifacts: Path) -> None:
    c = ha_cluster
    rec = Recorder("cp-leader")
    _, verdicts = _healthy_three(c)
    leader = etcd_leader_node(c)
    asker = next(n for n in c.control_planes if n != leader)
    t = ke.NodeEtcd(c, asker)
    members = t.member_list()
    names = {int(m["ID"]): m["name"] for m in members}
    old_id = next(i for i, n in names.items() if n == leader)
    survivors = [m["clientURLs"][0] for m in members if m["name"] != leader]
    with _probers(c, probe_ns, rec):
        time.sleep(3)
        verdicts.append(check_min_rate(rec.history, before=time.monotonic(), min_rate=2.0, lookback_s=3))
        with LeaderWatcher(lambda: t.endpoint_status(endpoints=survivors, command_timeout_s=2), rec, old_id, 2,
                           names) as watcher:
            stop = StopNodes(c, [leader])
            with stop.applied(rec):
                time.sleep(HOLD_S)
                t1 = time.monotonic()
        time.sleep(5)
    assert stop.window is not None
    # From the `docker stop` call: includes the node's graceful shutdown (up to its 10 s grace).
    verdicts.append(check_election(rec.events, max_s=25, fault_kind="disruption-start"))
    verdicts += _outages(rec, stop.window.start - 1, t1, "api-write-leader-down", MAX_ONE_DOWN_OUTAGE_S)
    verdicts.append(check_answers(_writes(rec, stop.window.end, time.monotonic()), expect_ok=True,
                                  timeout_s=OP_TIMEOUT_S, what="api-writes-after-heal"))
    kd_report.figure("leader_polls", watcher.polls, "polls")
    elected = rec.events_of("leader-elected")
    if elected and watcher.last_old_seen is not None:
        kd_report.figure("leaderless_gap_observed", round(elected[0].at - watcher.last_old_seen, 2), "s",
                         "last poll naming the old leader -> first poll naming the new one (upper bound)")
    kd_report.figure("stopped_leader", 1, "node", leader)
    _, after = _healthy_three(c)
    verdicts += after
    (kd_artifacts / "members.json").write_text(json.dumps(members))
    _finish(kd_report, kd_artifacts, rec, verdicts)
