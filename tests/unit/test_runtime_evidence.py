"""The container runtime's view of a pod's end (kubedrill.observe.runtime) and what the shutdown
checker decides with it that the API's evidence cannot: an exit status when the API has none or
only the kubelet's guess, the exec preStop hook's run, its duration and its exit status.

The ctr events and crictl inspect fixtures in tests/unit/data/runtime/ are recorded from kind nodes
(containerd 1.6, Debian bookworm) during shutdown drills on apps/thirdparty (see its README.md).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kubedrill.check.shutdown import ShutdownThresholds, check_shutdown, termination_figures
from kubedrill.check.verdict import Status
from kubedrill.cluster.handle import Cluster
from kubedrill.observe.runtime import (
    RuntimeWatch,
    _Container,
    apply_events,
    evidence_from,
    parse_event_line,
    wall_from_rfc3339,
)
from kubedrill.record import Recorder
from kubedrill.record.termination import (
    KubeEvent,
    PodEvidence,
    RuntimeEvidence,
    RuntimeExec,
    TerminationRecord,
    termination_record,
)

DATA = Path(__file__).parent / "data" / "runtime"


def recorded(name: str) -> tuple[list[str], dict[str, object], dict[str, object]]:
    """(ctr event lines, crictl inspect, the facts kubedrill recorded) of one captured drill."""
    d = json.loads((DATA / f"{name}.json").read_text())
    return d["events"], d["inspect"], d["expect"]


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.json")))
def test_recorded_runtime_views_give_the_exit_and_the_prestop_exec(name: str) -> None:
    lines, inspect, expect = recorded(name)
    events = [e for e in map(parse_event_line, lines) if e is not None]
    assert len(events) == len(lines), "every recorded line parses"
    cid = str(expect["container_id"])
    c = _Container("pod", "node", cid)
    exited = apply_events({cid: c}, events)
    assert exited == [c]
    c.inspect = inspect
    rt = evidence_from(c, watched_from_wall=events[0].wall - 1)
    assert rt.available and rt.exit_code == expect["exit_code"]
    assert rt.signal == (9 if rt.exit_code == 137 else None)
    assert rt.reason == expect["reason"]
    # The event's exit time is the one crictl reports as finishedAt, to the nanosecond.
    assert rt.exited_wall == pytest.approx(rt.finished_wall, abs=1e-6)
    hooks = [x for x in rt.execs if x.exited_wall is not None]
    assert len(hooks) == expect["execs"]
    for x in hooks:
        assert x.exit_code == 0 and x.started_wall is not None
        assert x.exited_wall - x.started_wall == pytest.approx(float(str(expect["prestop_s"])), abs=0.5)


def test_a_status_read_before_the_runtime_caught_up_is_not_the_end() -> None:
    # Recorded on gunicorn-broken: crictl inspect ran right at the exit event and still said running.
    c = _Container("pod", "node", "abc", exit_code=137, exited_wall=1796217043.99)
    c.inspect = {"status": {"state": "CONTAINER_RUNNING", "exitCode": 0, "reason": "",
                            "startedAt": "2026-12-02T13:10:20.286199600Z", "finishedAt": "0001-01-01T00:00:00Z"}}
    rt = evidence_from(c, watched_from_wall=1796217033.68)
    assert (rt.exit_code, rt.exited_wall, rt.reason, rt.finished_wall) == (137, 1796217043.99, None, None)


def test_event_lines_and_times_parse_to_the_nanosecond() -> None:
    line = ('2026-12-02 12:40:01.123456789 +0000 UTC k8s.io /tasks/exit {"container_id":"abc","id":"abc",'
            '"pid":7,"exit_status":137,"exited_at":"2026-12-02T12:40:01.120000001Z"}')
    ev = parse_event_line(line)
    assert ev is not None and ev.topic == "/tasks/exit" and ev.body["exit_status"] == 137
    assert ev.wall == pytest.approx(wall_from_rfc3339("2026-12-02T12:40:01.123456789Z"), abs=1e-6)
    assert wall_from_rfc3339("0001-01-01T00:00:00Z") is None  # Go's zero time: not finished yet
    assert parse_event_line("time=... level=warning msg=cannot unmarshal") is None
    with pytest.raises(ValueError, match="RFC 3339"):
        wall_from_rfc3339("yesterday")


def test_a_zero_exit_status_left_out_of_the_event_is_zero() -> None:
    c = _Container("pod", "node", "abc")
    apply_events({"abc": c}, [e for e in [parse_event_line(
        '2026-12-02 12:40:01.5 +0000 UTC k8s.io /tasks/exit {"container_id":"abc","id":"abc","pid":7,'
        '"exited_at":"2026-12-02T12:40:01.4Z"}')] if e is not None])
    assert c.exit_code == 0 and c.exited_wall == pytest.approx(wall_from_rfc3339("2026-12-02T12:40:01.4Z"))


def test_without_node_access_the_runtime_view_says_why() -> None:
    c = Cluster(name="x", kubeconfig=Path("/nonexistent"), provider="existing")
    with RuntimeWatch(c, "ns", ["pod-1"], Recorder()) as watch:
        pass
    rt = watch.evidence("pod-1")
    assert not rt.available and "kind nodes only" in rt.note


# -- what the checker decides with it -------------------------------------------------------------

CLOCK = Recorder()
D = CLOCK.mono0 + 100.0  # deletion on the test clock
W = CLOCK.wall_at(D)  # the same moment in Unix time


def pod_evidence(*, exit_code: int | None, reason: str | None, runtime: RuntimeEvidence | None,
                 events: tuple[str, ...] = ("Killing",), exec_hook: bool = True) -> PodEvidence:
    return PodEvidence(pod="p", uid="u", node="n", container="c", grace_seconds=20, prestop_hook=True,
                       first_seen_at=D - 30, deletion_seen_at=D + 0.05, deletion_timestamp_wall=W + 20,
                       terminated_seen_at=None if exit_code is None else D + 8, gone_at=D + 9,
                       exit_code=exit_code, reason=reason, signal=None, message="", started_wall=W - 30,
                       finished_wall=None if exit_code is None else float(int(W + 7.3)),
                       events=tuple(KubeEvent(r, "Normal", "", 1, W, W) for r in events),
                       prestop_exec_only=exec_hook, runtime=runtime)


def runtime(code: int, exit_s: float, *, hook: tuple[float, float, int] | None = (0.1, 5.1, 0)) -> RuntimeEvidence:
    execs = () if hook is None else (RuntimeExec("x1", W + hook[0], W + hook[1], hook[2]),)
    return RuntimeEvidence(available=True, container_id="abc", watched_from_wall=W - 5, exit_code=code,
                           exited_wall=W + exit_s, finished_wall=W + exit_s, reason="Completed" if code == 0 else "Error",
                           execs=execs)


def record(ev: PodEvidence) -> TerminationRecord:
    return termination_record(ev, CLOCK, requested_at=D, grace_fallback=20, use_app_record=False)


def judged(ev: PodEvidence) -> str:
    """"status: reason" of the pod's verdict, with in-flight and traffic waived."""
    rec = dataclasses.replace(record(ev), inflight=(), traffic=())
    v = check_shutdown(rec, ShutdownThresholds(require_inflight=False, require_traffic=False))
    return f"{v.status.value}: {v.reason}"


def test_the_runtime_exit_time_is_the_exit_to_the_nanosecond() -> None:
    rec = record(pod_evidence(exit_code=0, reason="Completed", runtime=runtime(0, 7.3)))
    assert rec.exit_at == pytest.approx(D + 7.3, abs=1e-6)  # not finishedAt + 0.5 (one-second resolution)
    assert rec.runtime_prestop == "ran" and rec.prestop_exit_code == 0
    assert (rec.prestop_start, rec.prestop_end) == (pytest.approx(D + 0.1), pytest.approx(D + 5.1))


def test_a_missing_api_status_is_decided_by_the_runtimes_sigkill() -> None:
    rec = record(pod_evidence(exit_code=None, reason=None, runtime=runtime(137, 20.05, hook=(0.1, 5.1, 0))))
    assert rec.exit_code is None and rec.exit_status == 137 and rec.killed
    v = check_shutdown(dataclasses.replace(rec, inflight=(), traffic=()))
    assert v.status is Status.FAIL
    assert "SIGKILLed after the 20 s grace period" in v.reason
    assert "exit status 137, signal 9, as the container runtime reaped it; the API status was missing" in v.reason
    # Without the runtime's view, the same termination is UNKNOWN, never judged.
    blind = check_shutdown(record(pod_evidence(exit_code=None, reason=None, runtime=None)))
    assert blind.status is Status.UNKNOWN and "no container exit was recorded" in blind.reason


def test_the_kubelets_guessed_137_is_not_a_sigkill_when_the_runtime_saw_exit_0() -> None:
    guessed = dict(exit_code=137, reason="ContainerStatusUnknown")
    seen = judged(pod_evidence(**guessed, runtime=runtime(0, 7.3)))  # type: ignore[arg-type]
    assert seen.startswith("pass:") and "exit code 0 (as the container runtime reaped it" in seen
    blind = check_shutdown(dataclasses.replace(record(pod_evidence(**guessed, runtime=None)),  # type: ignore[arg-type]
                                               inflight=(), traffic=()))
    assert blind.status is Status.UNKNOWN
    assert "the kubelet lost the container and wrote exit code 137 (ContainerStatusUnknown) as a guess" in blind.reason


def test_the_runtime_tells_whether_the_exec_prestop_hook_ran() -> None:
    ran = judged(pod_evidence(exit_code=0, reason="Completed", runtime=runtime(0, 7.3), events=()))
    # No Killing event was captured, which alone would be UNKNOWN: the runtime saw the hook run.
    assert ran.startswith("pass:") and "preStop hook ran (the container runtime ran its exec: 5.0 s, exit 0)" in ran
    failed = judged(pod_evidence(exit_code=0, reason="Completed", runtime=runtime(0, 7.3, hook=(0.1, 0.2, 127))))
    assert failed.startswith("fail:") and "the container runtime ran it and it exited 127 after 0.1 s" in failed
    cut = judged(pod_evidence(exit_code=137, reason="Error", runtime=runtime(137, 20.05, hook=(0.1, 20.05, 137))))
    assert "preStop hook in pod p was still running when the grace period ran out" in cut
    timed_out = judged(pod_evidence(exit_code=137, reason="Error", runtime=runtime(137, 22.0, hook=(0.1, 19.9, 137))))
    assert "exit 137 after 19.8 s" in timed_out and "still running when the grace period ran out" in timed_out
    none = judged(pod_evidence(exit_code=0, reason="Completed", runtime=runtime(0, 7.3, hook=None)))
    assert none.startswith("fail:") and "preStop hook did not run" in none
    # An exec probe looks the same to the runtime: then it cannot tell, and the events decide.
    probe = record(pod_evidence(exit_code=0, reason="Completed", runtime=runtime(0, 7.3, hook=None), exec_hook=False))
    assert probe.runtime_prestop is None and probe.prestop_start is None


def test_the_report_shows_the_runtime_view_or_why_there_is_none() -> None:
    ev = pod_evidence(exit_code=137, reason="Error", runtime=runtime(137, 20.05))
    figs = {f.name: f for f in termination_figures(record(ev), ev)}
    assert figs["runtime_exit_code"].value == 137
    assert "containerd reaped exit status 137 (signal 9), at +20.050 s after deletion" in figs["runtime_exit_code"].detail
    assert "preStop exec ran for 5.00 s from +0.10 s, exit 0" in figs["runtime_exit_code"].detail
    off = pod_evidence(exit_code=0, reason="Completed", runtime=RuntimeEvidence(False, note="kind nodes only"))
    assert "not seen by the container runtime: kind nodes only" in termination_figures(record(off), off)[-1].detail


def test_only_an_exec_hook_without_exec_probes_makes_runtime_execs_the_hook() -> None:
    from kubernetes import client

    from kubedrill.observe.pods import _prestop_exec_only

    def container(hook: object = None, probe: object = None) -> object:
        return client.V1Container(name="c", lifecycle=None if hook is None else client.V1Lifecycle(pre_stop=hook),
                                  readiness_probe=probe)

    sleep = client.V1LifecycleHandler(_exec=client.V1ExecAction(command=["sleep", "5"]))
    http = client.V1LifecycleHandler(http_get=client.V1HTTPGetAction(path="/drain", port=8080))
    assert _prestop_exec_only(container(sleep))
    assert _prestop_exec_only(container(sleep, client.V1Probe(http_get=client.V1HTTPGetAction(port=8080))))
    assert not _prestop_exec_only(container(sleep, client.V1Probe(_exec=client.V1ExecAction(command=["true"]))))
    assert not _prestop_exec_only(container(http))
    assert not _prestop_exec_only(container())
