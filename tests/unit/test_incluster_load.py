"""The pure parts of the in-cluster load (kubedrill.load.incluster*, podclock): manifests, clock
math, record placement and merging, gap detection. The cluster part is suites/smoke/test_incluster_load.py."""

from __future__ import annotations

import json

import pytest

from kubedrill.load import incluster_spec as spec
from kubedrill.load.incluster import PodChange, detect_gaps, read_header, split_chunk, summarize
from kubedrill.load.podclock import ClockError, ClockSample, offset_from_samples
from kubedrill.load.requestlog import parse_request_lines
from kubedrill.record import Recorder

SHAPE = spec.LoadShape(url="http://kd-sample.ns.svc.cluster.local:8080", path="/work", users=8, rate=40.0,
                       run_time=90.5, workers=2)


def _docs(**kw: object) -> dict[str, dict]:
    docs = spec.render(SHAPE, "kubedrill/locust:abc123", run_label="r1", locustfile="# lf", **kw)  # type: ignore[arg-type]
    return {d["kind"]: d for d in docs}


def test_render_master_runs_headless_distributed_with_the_shape() -> None:
    master = _docs()["Pod"]
    cmd = master["spec"]["containers"][0]["command"]
    args = dict(zip(cmd, cmd[1:]))
    assert "--master" in cmd and "--headless" in cmd
    assert args["--expect-workers"] == "2" and args["-u"] == "8" and args["-r"] == "8"
    assert args["-t"] == "91s", "run_time is rounded up, never down"
    assert args["--host"] == SHAPE.url
    assert master["spec"]["restartPolicy"] == "Never"


def test_render_workers_pace_each_user_and_write_one_record_file() -> None:
    d = _docs()
    dep = d["Deployment"]
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert float(env["KD_LOAD_RATE_PER_USER"]) == pytest.approx(5.0)  # 40 req/s over 8 users
    assert env["KD_LOAD_FILE"] == spec.RECORD_FILE and env["KD_LOAD_PATH"] == "/work"
    assert c["command"][:2] == ["sh", "/kd/files/worker.sh"] and spec.MASTER in c["command"]
    assert d["ConfigMap"]["data"]["locustfile.py"] == "# lf" and "worker.sh" in d["ConfigMap"]["data"]
    assert d["Service"]["spec"]["selector"][spec.ROLE_LABEL] == "master"
    # The master's selector must not also pick the workers.
    assert dep["spec"]["selector"]["matchLabels"][spec.ROLE_LABEL] == "worker"


def test_render_ships_the_real_locustfile_by_default() -> None:
    docs = spec.render(SHAPE, "img:1", run_label="r1")
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert cm["data"]["locustfile.py"] == spec.LOCUSTFILE.read_text()
    json.dumps(docs)  # what kubectl apply gets


def test_render_keeps_every_pod_off_the_avoided_nodes_and_tolerates_nothing() -> None:
    d = _docs(avoid_nodes=["kind-worker2", "kind-worker"])
    for pod in (d["Pod"]["spec"], d["Deployment"]["spec"]["template"]["spec"]):
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn",
                                                "values": ["kind-worker", "kind-worker2"]}]}]
        assert "tolerations" not in pod
    assert "affinity" not in _docs()["Pod"]["spec"], "no avoided node: no affinity at all"


def test_kubedrills_own_image_is_never_pulled_a_named_one_is() -> None:
    assert spec.pull_policy("kubedrill/locust:97c50e08cdd7") == "Never"
    assert spec.pull_policy("registry.example/kubedrill/locust:1") == "IfNotPresent"


@pytest.mark.parametrize("kw, match", [
    ({"users": 1, "workers": 2}, "users"),
    ({"rate": 0}, "rate"),
    ({"url": "kd-sample:8080"}, "url"),
])
def test_shape_refuses_what_cannot_run(kw: dict, match: str) -> None:
    args = {"url": "http://x:1", **kw}
    with pytest.raises(ValueError, match=match):
        spec.LoadShape(**args)  # type: ignore[arg-type]


# -- clock -------------------------------------------------------------------------------------

def test_offset_is_taken_from_the_shortest_round_trip() -> None:
    # True offset +2.5 s. The slow sample's answer waited on the way back (asymmetric): its midpoint is off.
    samples = [ClockSample(100.0, 102.5 + 0.2, 100.6), ClockSample(200.0, 202.5 + 0.01, 200.02),
               ClockSample(300.0, 302.5 + 0.05, 300.3)]
    off = offset_from_samples(samples)
    assert off.offset == pytest.approx(2.5, abs=1e-9)
    assert off.uncertainty == pytest.approx(0.01)
    assert off.samples == 3
    assert off.to_runner(1000.0) == pytest.approx(997.5)


def test_offset_without_samples_or_with_a_clock_jump_is_an_error() -> None:
    with pytest.raises(ClockError, match="never answered"):
        offset_from_samples([])
    with pytest.raises(ClockError, match="before it was sent"):
        offset_from_samples([ClockSample(10.0, 5.0, 9.0)])


def test_pod_records_land_on_the_runner_clock_using_the_offset() -> None:
    rec = Recorder()
    rec.mono0, rec.wall0 = 50.0, 1_000_000.0
    # The pod's clock runs 3 s ahead: its request at pod wall 1_000_013.0 was at runner wall 1_000_010.0.
    line = json.dumps({"s": 1_000_013.0, "e": 999.0, "l": 0.25, "o": "ok", "c": 200, "p": "app-1", "x": "", "n": "GET /"})
    op = parse_request_lines([line], client="w-1", clock="wall", recorder=rec, offset=3.0).operations[0]
    assert op.start == pytest.approx(60.0) and op.end == pytest.approx(60.25)
    assert op.client == "w-1" and op.result == "app-1" and op.value == 200 and op.outcome == "ok"


def test_chunks_split_at_the_last_complete_line() -> None:
    lines, used = split_chunk('{"a":1}\n{"b":2}\n{"c"')
    assert lines == ['{"a":1}', '{"b":2}'] and used == 16
    assert split_chunk('{"c"') == ([], 0)
    assert read_header("#kd 1733.5\nabc") == (1733.5, "abc")
    assert read_header("#kd \n") == (None, "")
    with pytest.raises(ValueError):
        read_header("error: container not found")


def test_stats_like_the_runner() -> None:
    rec = Recorder()
    rec.mono0, rec.wall0 = 0.0, 0.0
    lines = [json.dumps({"s": t / 10, "l": 0.01, "o": "ok" if t % 5 else "fail", "c": 200}) for t in range(11)]
    ops = parse_request_lines(lines, clock="wall", recorder=rec).operations
    st = summarize(ops, 10.0, 2, 0)
    assert st.requests == 11 and st.failed == 3 and st.duration_s == pytest.approx(1.0)
    assert st.achieved_rate == pytest.approx(10.0) and st.processes == 2


# -- gaps --------------------------------------------------------------------------------------

def _spans(start: float, end: float, step: float = 0.5) -> list[tuple[float, float]]:
    out, t = [], start
    while t < end:
        out.append((t, t + 0.01))
        t += step
    return out


def test_a_deleted_worker_is_a_gap_until_its_replacement_sends() -> None:
    spans = {"w-a": _spans(0, 10), "w-b": _spans(0, 30), "w-c": _spans(14.0, 30)}
    gaps = detect_gaps([PodChange(at=11.0, since=9.9, pod="w-a", kind="gone", detail="evicted")], spans)
    assert len(gaps) == 1
    g = gaps[0]
    assert g.pod == "w-a" and g.start == pytest.approx(9.51) and g.end == pytest.approx(14.0)
    assert "went away" in g.reason and "evicted" in g.reason


def test_a_deleted_worker_with_no_replacement_is_an_open_gap() -> None:
    gaps = detect_gaps([PodChange(11.0, 9.9, "w-a", "gone", "x")], {"w-a": _spans(0, 10), "w-b": _spans(0, 30)})
    assert gaps[0].end is None


def test_one_replacement_closes_one_gap() -> None:
    spans = {"w-a": _spans(0, 10), "w-b": _spans(0, 10), "w-c": _spans(12, 20)}
    changes = [PodChange(10.5, 9.9, "w-a", "gone", ""), PodChange(10.6, 9.9, "w-b", "gone", "")]
    ends = [g.end for g in detect_gaps(changes, spans)]
    assert ends == [12.0, None]


def test_a_restart_is_the_silence_around_it() -> None:
    own = _spans(0, 10) + _spans(16, 30)  # silent from ~9.5 to 16
    gaps = detect_gaps([PodChange(at=17.0, since=12.0, pod="w-a", kind="restarted", detail="1 -> 2")], {"w-a": own})
    assert gaps[0].start == pytest.approx(9.51) and gaps[0].end == pytest.approx(16.0)
    assert "restarted" in gaps[0].reason


def test_a_worker_whose_locust_exited_is_an_open_gap_from_its_last_request() -> None:
    gaps = detect_gaps([PodChange(8.0, 6.0, "w-a", "exited", "locust exited")],
                       {"w-a": _spans(0, 5), "w-b": _spans(0, 30)})
    assert gaps[0].start == pytest.approx(4.51) and gaps[0].end is None and "exited" in gaps[0].reason


def test_no_change_no_gap() -> None:
    assert detect_gaps([], {"w-a": _spans(0, 10)}) == []


def test_an_evicted_worker_is_one_gap_whether_its_exit_or_its_deletion_is_seen_first() -> None:
    from kubedrill.load.incluster import InClusterLoad, _Worker

    load = InClusterLoad(None, "http://svc.ns.svc.cluster.local:8080", workers=2)  # type: ignore[arg-type]
    load._live = True
    a, b = _Worker("w-a", seen_ok=5.0), _Worker("w-b", seen_ok=5.0)
    load._change(a, 6.0, "exited", "locust exited")  # the read saw the exit first ...
    load._change(a, 7.0, "gone", "being deleted")  # ... then the pod list the deletion
    load._change(b, 6.5, "gone", "being deleted")
    load._change(b, 7.5, "exited", "locust exited")
    assert [(c.pod, c.kind, c.at) for c in load._changes] == [("w-a", "gone", 6.0), ("w-b", "gone", 6.5)]
    load._live = False
    load._change(_Worker("w-c"), 9.0, "exited", "the run ended")
    assert len(load._changes) == 2, "after the run, a worker stopping is no gap"
