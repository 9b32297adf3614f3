"""Control-plane quorum drills on an HA kubeadm cluster (3 control planes, stacked etcd, kind's LB):
record everything, then judge it.

Two recorded API probers update and read a ConfigMap through the load balancer every 150 ms with a
1 s client timeout: one on a keep-alive connection (client-go style), one with a new connection per
request (kubectl style: each is routed again, so a backend the LB still sends to shows).

    quorum drill:  etcd healthy -> probers -> stop a follower's node (one down: reads and writes
                   go on, the outage is measured) -> stop the other follower's node (two down: no
                   quorum, every write refused within the client timeout; one write with a long
                   timeout shows the API server gives up by itself) -> start both -> etcd healthy
    stop drill:    etcd healthy -> probers -> stop one node, the etcd leader's (re-election watched
                   from etcd and seen from the API) or a follower's -> start it -> etcd healthy

`run_quorum_drill` / `run_stop_drill` only record; a disruption that cannot run or shows no effect
raises (kubedrill.disrupt.base.Inconclusive) and there is no record to judge. `judge_quorum` /
`judge_stop` turn a record into verdicts with the pure checkers, `quorum_figures` / `stop_figures`
into the figures no verdict carries. The suite and the benchmark share them.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Iterator

from kubedrill.check.etcd_checks import (check_answers, check_election, check_hashes_equal, check_min_rate,
                                         check_unavailability, unavailability_windows)
from kubedrill.check.verdict import Figure, Verdict, safe_check
from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.handle import Cluster
from kubedrill.disrupt.control_plane import StopControlPlanes
from kubedrill.load.api_prober import ApiConn, ApiError, ApiProber, ApiTarget, LeaderWatcher, configmap_path
from kubedrill.record import Operation, Recorder

OP_TIMEOUT_S = 1.0
INTERVAL_S = 0.15
CLIENTS = ("keepalive", "fresh")
WARMUP_S = 3.0  # probers run this long before the first stop; the load before it must reach MIN_RATE
MIN_RATE = 2.0  # ok probes per second before the first stop, or the drill proves nothing
HOLD_S = 12.0  # how long each fault is held while the probers record
SETTLE_S = 5.0  # probers keep recording this long after the heal
# One control plane down must not cost more than this much write availability through the LB.
MAX_ONE_DOWN_OUTAGE_S = 15.0
# The API server must answer a write without quorum (an error) within this, whatever the client waits.
SERVER_GIVES_UP_S = 70.0
# From the `docker stop` call: includes the node's graceful shutdown (up to its 10 s grace).
MAX_ELECTION_S = 25.0
REFUSAL_CLIENT = "long-timeout"


@dataclass(frozen=True)
class EtcdHealth:
    """etcd at one moment: every member healthy, and the members' keyspace hashes at a common revision."""

    members_ok: bool
    members_seen: str
    revision: int
    hashes: dict[str, int]


@dataclass(frozen=True)
class StopSeen:
    """One StopControlPlanes as it ran, on the record's clock."""

    nodes: tuple[str, ...]
    began: float  # the docker stop was called (disruption-start)
    stopped: float  # every container had exited
    held_until: float  # the hold ended; the heal came after
    ended: float  # healed (end of the disruption's window)
    ip_changed: dict[str, Any] = field(default_factory=dict)


def _plain(o: Any) -> Any:
    return asdict(o) if is_dataclass(o) and not isinstance(o, type) else str(o)


@dataclass
class DrillRecord:
    """What both drills record: the probers' operations and the drill's events, on one clock."""

    recorder: Recorder

    def dump(self, path: Path) -> None:
        """The record as JSON (kept as an artifact when a test fails)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "recorder"}
        path.write_text(json.dumps({**data, "record": json.loads(self.recorder.to_json())}, indent=1, default=_plain))


@dataclass
class QuorumRecord(DrillRecord):
    before: EtcdHealth
    after: EtcdHealth
    load_ready_at: float  # end of the warm-up: the load is judged over the WARMUP_S before it
    one_down: StopSeen
    two_down: StopSeen
    refusal: Operation  # the long-timeout write made while two were down
    healed_at: float  # both nodes back; writes from here on must succeed
    ended_at: float  # probers stopped


@dataclass
class StopRecord(DrillRecord):
    before: EtcdHealth
    after: EtcdHealth
    load_ready_at: float
    leader: str  # the etcd leader's node before the stop
    stopped_leader: bool
    stop: StopSeen
    members: list[dict[str, Any]]  # etcdctl member list before the stop
    leader_polls: int  # 0 when the leader was not watched (a follower's node stopped)
    last_old_leader_seen: float | None
    ended_at: float


# -- recording -----------------------------------------------------------------------------------

def etcd_health(cluster: Cluster) -> EtcdHealth:
    """Asked of the first control plane's member: health of all members, hashkv at the lowest revision."""
    asker = cluster.control_planes[0]
    ok, seen = ke.healthy_members(cluster, asker)
    t = ke.NodeEtcd(cluster, asker)
    rev = min(int(s["Status"]["header"]["revision"]) for s in t.endpoint_status())
    return EtcdHealth(ok, seen, rev, t.hashkv(rev))


@contextlib.contextmanager
def probers(cluster: Cluster, namespace: str, rec: Recorder) -> Iterator[None]:
    """The two recorded clients through the LB (module docstring)."""
    target = ApiTarget.from_kubeconfig(cluster.kubeconfig, cluster.context)
    with contextlib.ExitStack() as stack:
        for client in CLIENTS:
            stack.enter_context(ApiProber(target, namespace, rec, name=f"kd-probe-{client}", client=client,
                                          interval_s=INTERVAL_S, timeout_s=OP_TIMEOUT_S, max_duration_s=900,
                                          fresh_connections=client == "fresh"))
        yield


def server_refusal(cluster: Cluster, namespace: str, route_s: float = 45.0) -> Operation:
    """One write with a long client timeout: how long until the API server itself says no.

    The LB may still route a new connection to a stopped backend (it has not marked it down
    yet); such an attempt fails without reaching an API server, so it is retried until an API
    server answers or `route_s` has passed (kind's haproxy needs a few failed health checks, each
    seconds apart, before it stops routing to a stopped backend; CI once used up five quick attempts
    before that, which left the verdict UNKNOWN)."""
    target = ApiTarget.from_kubeconfig(cluster.kubeconfig, cluster.context)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kd-probe-keepalive", "namespace": namespace},
            "data": {"seq": "no-quorum"}}
    op: Operation | None = None
    deadline = time.monotonic() + route_s
    while op is None or time.monotonic() < deadline:
        conn = ApiConn(target, SERVER_GIVES_UP_S)
        t0 = time.monotonic()
        try:
            conn.request("PUT", configmap_path(namespace, "kd-probe-keepalive"), body, write=True)
            return Operation("put", t0, time.monotonic(), "ok", REFUSAL_CLIENT, "kd-probe-keepalive", "no-quorum")
        except ApiError as exc:
            op = Operation("put", t0, time.monotonic(), exc.outcome, REFUSAL_CLIENT, "kd-probe-keepalive",
                           "no-quorum", None, str(exc))
            if exc.status:  # an API server answered
                return op
        finally:
            conn.close()
        time.sleep(0.5)
    assert op is not None
    return op


def _seen(stop: StopControlPlanes, held_until: float) -> StopSeen:
    if stop.window is None or stop.stopped_at is None:
        raise RuntimeError(f"{stop.name}: the disruption ended without a window or a stop time")
    return StopSeen(tuple(stop.nodes), stop.window.start, stop.stopped_at, held_until, stop.window.end,
                    dict(stop.effect.get("ip_changed", {})))


def run_quorum_drill(cluster: Cluster, namespace: str) -> QuorumRecord:
    """One follower's node down, then both followers' nodes down, then both back (module docstring).
    The probers write ConfigMaps in `namespace`, which the caller owns."""
    rec = Recorder("cp-quorum")
    before = etcd_health(cluster)
    leader = ke.leader_node(cluster)
    followers = [n for n in cluster.control_planes if n != leader]
    with probers(cluster, namespace, rec):
        time.sleep(WARMUP_S)
        load_ready_at = time.monotonic()
        one = StopControlPlanes(cluster, [followers[0]])
        with one.applied(rec):
            time.sleep(HOLD_S)
            one_held = time.monotonic()
            two = StopControlPlanes(cluster, [followers[1]])
            with two.applied(rec, check_health=False):  # one is down: not healthy, by design
                assert two.stopped_at is not None
                refusal = server_refusal(cluster, namespace)
                rec.add(refusal)
                time.sleep(max(0.0, HOLD_S - (time.monotonic() - two.stopped_at)))
                two_held = time.monotonic()
        time.sleep(SETTLE_S)
        healed_at = time.monotonic() - SETTLE_S
    ended_at = time.monotonic()
    return QuorumRecord(rec, before, etcd_health(cluster), load_ready_at, _seen(one, one_held), _seen(two, two_held),
                        refusal, healed_at, ended_at)


def run_stop_drill(cluster: Cluster, namespace: str, stop_leader: bool) -> StopRecord:
    """Stop the etcd leader's node (watching the re-election from a survivor) or a follower's."""
    rec = Recorder("cp-leader" if stop_leader else "cp-follower")
    before = etcd_health(cluster)
    leader = ke.leader_node(cluster)
    asker = next(n for n in cluster.control_planes if n != leader)
    node = leader if stop_leader else asker
    t = ke.NodeEtcd(cluster, asker)
    members = t.member_list()
    watcher: LeaderWatcher | None = None
    with probers(cluster, namespace, rec):
        time.sleep(WARMUP_S)
        load_ready_at = time.monotonic()
        with contextlib.ExitStack() as stack:
            if stop_leader:
                names = {int(m["ID"]): m["name"] for m in members}
                old_id = next(i for i, n in names.items() if n == leader)
                survivors = [m["clientURLs"][0] for m in members if m["name"] != leader]
                watcher = stack.enter_context(LeaderWatcher(
                    lambda: t.endpoint_status(endpoints=survivors, command_timeout_s=2), rec, old_id, 2, names))
            stop = StopControlPlanes(cluster, [node])
            with stop.applied(rec):
                time.sleep(HOLD_S)
                held = time.monotonic()
        time.sleep(SETTLE_S)
    ended_at = time.monotonic()
    return StopRecord(rec, before, etcd_health(cluster), load_ready_at, leader, stop_leader, _seen(stop, held), members,
                      watcher.polls if watcher else 0, watcher.last_old_seen if watcher else None, ended_at)


# -- judging --------------------------------------------------------------------------------------

def _health(h: EtcdHealth) -> list[Verdict]:
    members = Verdict.ok if h.members_ok else Verdict.fail
    return [members("etcd-members-healthy", h.members_seen),
            safe_check("members-converged", check_hashes_equal, h.hashes, h.revision)]


def _writes(rec: Recorder, lo: float, hi: float) -> list[Operation]:
    return [o for o in rec.history if o.kind == "put" and lo <= o.start <= hi]


def _outages(rec: Recorder, lo: float, hi: float, label: str, max_s: float | None) -> list[Verdict]:
    """Write unavailability per client over [lo, hi] (a window closes only with that client's success)."""
    return [safe_check(f"{label}-{client}-unavailability", check_unavailability,
                       [o for o in rec.history if o.client == client and lo <= o.start <= hi],
                       max_window_s=max_s, label=f"{label}-{client}") for client in CLIENTS]


def _load(rec: Recorder, ready_at: float) -> Verdict:
    return safe_check("load-before-fault", check_min_rate, rec.history, before=ready_at, min_rate=MIN_RATE,
                      lookback_s=WARMUP_S)


def check_server_refusal(refusal: Operation, gives_up_s: float = SERVER_GIVES_UP_S) -> Verdict:
    """Without quorum an API server must refuse a write by itself, well before a patient client gives up."""
    name = "api-server-refuses-without-quorum"
    answered = refusal.detail.startswith("HTTP")
    figures = [Figure("server_refusal_seconds", round(refusal.latency, 2), "s")]
    reason = (f"a write with a {gives_up_s:.0f}s timeout ended {refusal.outcome} after {refusal.latency:.1f}s: "
              f"{refusal.detail or 'accepted'}")
    if refusal.outcome == "ok" or refusal.latency >= gives_up_s - 1:
        return Verdict.fail(name, reason, figures)
    if answered:
        return Verdict.ok(name, reason, figures)
    return Verdict.unknown(name, reason + " (no API server answered: the LB kept routing to stopped backends)",
                           figures)


def judge_quorum(r: QuorumRecord) -> list[Verdict]:
    """Every check of the quorum drill, in the order a reader should see them."""
    rec, one, two = r.recorder, r.one_down, r.two_down
    refused = [o for o in _writes(rec, two.stopped, two.held_until) if o.client != REFUSAL_CLIENT]
    return [
        *_health(r.before),
        _load(rec, r.load_ready_at),
        *_outages(rec, one.began - 1, one.held_until, "api-write-one-cp-down", MAX_ONE_DOWN_OUTAGE_S),
        safe_check("api-writes-one-cp-down-available", check_answers, _writes(rec, one.stopped, one.held_until),
                   expect_ok=True, timeout_s=OP_TIMEOUT_S, what="api-writes-one-cp-down"),
        safe_check("api-reads-one-cp-down-available", check_answers,
                   [o for o in rec.history if o.kind == "get" and one.stopped <= o.start <= one.held_until],
                   expect_ok=True, timeout_s=OP_TIMEOUT_S, what="api-reads-one-cp-down"),
        # The probe's timeout bounds each blocking socket call (TLS handshake, then the response read),
        # not the whole request, so a refused write that did not hang can take up to about twice it
        # (CI saw 1.514 s against a 1.5 s bound); a hung one runs into the server's 60 s.
        safe_check("api-writes-two-cp-down-refused", check_answers, refused, expect_ok=False, timeout_s=OP_TIMEOUT_S,
                   slack_s=OP_TIMEOUT_S, what="api-writes-two-cp-down"),
        safe_check("api-server-refuses-without-quorum", check_server_refusal, r.refusal),
        safe_check("api-writes-after-heal-available", check_answers, _writes(rec, r.healed_at, r.ended_at),
                   expect_ok=True, timeout_s=OP_TIMEOUT_S, what="api-writes-after-heal"),
        *_health(r.after),
    ]


def quorum_figures(r: QuorumRecord) -> list[Figure]:
    two = r.two_down
    last_ok = max((o.end for o in _writes(r.recorder, two.stopped - 30, two.held_until) if o.outcome == "ok"),
                  default=None)
    return [Figure("last_ok_write_after_second_stop", round(last_ok - two.stopped, 2) if last_ok is not None else None,
                   "s", "negative: the last write that succeeded ended before the second node was down"),
            Figure("ip_changed_on_restart", len(r.one_down.ip_changed) + len(two.ip_changed), "nodes")]


def judge_stop(r: StopRecord) -> list[Verdict]:
    """Every check of the stop drill; the election is judged only when the leader's node stopped."""
    rec, stop = r.recorder, r.stop
    which = "leader" if r.stopped_leader else "follower"
    election = ([safe_check("leader-election", check_election, rec.events, max_s=MAX_ELECTION_S,
                            fault_kind="disruption-start")] if r.stopped_leader else [])
    return [
        *_health(r.before),
        _load(rec, r.load_ready_at),
        *election,
        *_outages(rec, stop.began - 1, stop.held_until, f"api-write-{which}-down", MAX_ONE_DOWN_OUTAGE_S),
        safe_check("api-writes-after-heal-available", check_answers, _writes(rec, stop.ended, r.ended_at),
                   expect_ok=True, timeout_s=OP_TIMEOUT_S, what="api-writes-after-heal"),
        *_health(r.after),
    ]


def stop_figures(r: StopRecord) -> list[Figure]:
    out = [Figure("stopped_leader" if r.stopped_leader else "stopped_follower", 1, "node", r.stop.nodes[0])]
    if r.stopped_leader:
        out.append(Figure("leader_polls", r.leader_polls, "polls"))
        elected = r.recorder.events_of("leader-elected")
        if elected and r.last_old_leader_seen is not None:
            out.append(Figure("leaderless_gap_observed", round(elected[0].at - r.last_old_leader_seen, 2), "s",
                              "last poll naming the old leader -> first poll naming the new one (upper bound)"))
    return out


def write_outage(r: StopRecord, client: str) -> tuple[float, int, int]:
    """(longest write outage in seconds, failed writes, writes) of one prober client while the node was down."""
    ops = [o for o in r.recorder.history if o.client == client and r.stop.began - 1 <= o.start <= r.stop.held_until]
    worst = max((o.window.duration for o in unavailability_windows(ops, kinds=("put",))), default=0.0)
    writes = [o for o in ops if o.kind == "put"]
    return worst, sum(1 for o in writes if o.outcome != "ok"), len(writes)
