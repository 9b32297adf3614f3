"""RuntimeWatch: the container runtime's own view of chosen pods' containers as they end (kind nodes).

Why: the API's container status is the kubelet's copy of what containerd saw, truncated to whole
seconds, lost with the pod object when a watch misses it, and a guess (exit 137,
ContainerStatusUnknown) when the kubelet lost the container. containerd reaped the process
itself. Its event stream (`ctr -n k8s.io events`, started on the node before the termination)
carries, to the nanosecond:
  /tasks/exit          {container_id, id, pid, exit_status, exited_at}: the container's init process
                       (id == container_id; exit_status is 128 + n when killed by signal n), or an
                       exec'd process (id is the exec id)
  /tasks/exec-started  {container_id, exec_id, pid}: a process started inside the container (an exec
                       preStop hook, an exec probe, kubectl exec)
The kubelet removes a deleted pod's containers soon after they exit, so `crictl inspect` is read
right when the exit event arrives (reason, startedAt, finishedAt), not after the drill.

Only on kind nodes (`cluster.node_exec` is `docker exec` into the node container); on any other
provider the evidence says it was not available and why. It only records; checkers judge.
Bounded: the stream runs under `timeout` on the node and is stopped by stop(); every other node
command has a timeout.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from kubedrill.cluster.handle import Cluster, CommandFailed, NodeAccessUnavailable
from kubedrill.record import Recorder
from kubedrill.record.termination import RuntimeEvidence, RuntimeExec

# `ctr events` prints: <Go time.Time> <namespace> <topic> <event as JSON>
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d{4}) \S+ (\S+) (/\S+) (\{.*\})\s*$")
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def wall_from_rfc3339(text: str | None) -> float | None:
    """Unix seconds from an RFC 3339 time with up to nanoseconds (containerd, crictl); None for Go's
    zero time (0001-01-01: "not yet") or nothing."""
    if not text or text.startswith("0001-01-01"):
        return None
    m = _RFC3339.match(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r} (expected e.g. 2026-12-02T12:12:51.909037564Z)")
    base, frac, zone = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return dt.timestamp() + (float(f"0.{frac}") if frac else 0.0)


@dataclass(frozen=True)
class RuntimeEvent:
    """One parsed line of `ctr events`."""

    wall: float
    topic: str
    body: dict[str, Any]


def parse_event_line(line: str) -> RuntimeEvent | None:
    """A line of `ctr -n k8s.io events`, or None for anything else (blank, a warning)."""
    m = _LINE.match(line.strip())
    if m is None:
        return None
    stamp, offset, topic, body = m.group(1), m.group(2), m.group(4), m.group(5)
    day, _, frac = stamp.partition(".")
    dt = datetime.strptime(day + offset, "%Y-%m-%d %H:%M:%S%z")
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    return RuntimeEvent(dt.timestamp() + (float(f"0.{frac}") if frac else 0.0), topic, data)


def _exited_at(body: dict[str, Any]) -> float | None:
    """exited_at as ctr prints it: an RFC 3339 string (Go time.Time), or {seconds, nanos} (protobuf)."""
    at = body.get("exited_at")
    if isinstance(at, dict):
        return float(at.get("seconds", 0)) + float(at.get("nanos", 0)) / 1e9
    return wall_from_rfc3339(at) if isinstance(at, str) else None


@dataclass
class _Container:
    pod: str
    node: str
    container_id: str
    exit_code: int | None = None
    exited_wall: float | None = None
    inspect: dict[str, Any] = field(default_factory=dict)
    inspect_error: str = ""
    execs: dict[str, RuntimeExec] = field(default_factory=dict)


def apply_events(containers: dict[str, _Container], events: Iterable[RuntimeEvent]) -> list[_Container]:
    """Fold events into what is known of each watched container; returns those whose init process
    exited in these events (their `crictl inspect` is due now)."""
    exited = []
    for ev in events:
        cid = str(ev.body.get("container_id", ""))
        c = containers.get(cid)
        if c is None:
            continue
        if ev.topic == "/tasks/exec-started":
            xid = str(ev.body.get("exec_id", ""))
            c.execs[xid] = RuntimeExec(xid, started_wall=ev.wall)
        elif ev.topic == "/tasks/exit":
            xid = str(ev.body.get("id", ""))
            code = ev.body.get("exit_status", 0)  # proto3 JSON leaves a zero status out
            at = _exited_at(ev.body) or ev.wall
            if xid == cid:
                c.exit_code, c.exited_wall = int(code), at
                exited.append(c)
            elif xid in c.execs:
                x = c.execs[xid]
                c.execs[xid] = RuntimeExec(xid, x.started_wall, at, int(code))
    return exited


def evidence_from(c: _Container, watched_from_wall: float | None, note: str = "") -> RuntimeEvidence:
    """What the runtime saw of one container: its exit event, with `crictl inspect`'s status added
    (that status alone stands in for the event when the stream missed the exit)."""
    st = c.inspect.get("status", {}) if c.inspect else {}
    if st.get("state") != "CONTAINER_EXITED":
        st = {}  # read before the runtime's own status caught up with the exit: nothing in it is the end
    code = c.exit_code
    if code is None and st.get("state") == "CONTAINER_EXITED":
        code = int(st.get("exitCode", 0))
    finished = wall_from_rfc3339(st.get("finishedAt"))
    exited = c.exited_wall if c.exited_wall is not None else finished
    notes = [n for n in (note, c.inspect_error) if n]
    if code is None:
        notes.append("no exit of the container was seen by the runtime (the watch ended before it)")
    return RuntimeEvidence(
        available=code is not None, note="; ".join(notes), container_id=c.container_id,
        watched_from_wall=watched_from_wall, exit_code=code, exited_wall=exited,
        started_wall=wall_from_rfc3339(st.get("startedAt")), finished_wall=finished,
        reason=st.get("reason") or None, execs=tuple(sorted(c.execs.values(), key=lambda x: x.started_wall or 0.0)))


class RuntimeWatch:
    """Watch the first container of each pod in `pods` (namespace `namespace`) through containerd's
    event stream on its node, from start() until stop() (at most `max_run_s`)."""

    def __init__(self, cluster: Cluster, namespace: str, pods: Sequence[str], recorder: Recorder, *,
                 max_run_s: float = 600) -> None:
        self.cluster, self.namespace, self.pods = cluster, namespace, list(pods)
        self.recorder, self.max_run_s = recorder, max_run_s
        self.unavailable = ""  # why there is no runtime evidence at all
        self.errors: list[str] = []
        self.lines: list[str] = []  # the raw stream about the watched containers, for the drill's artifacts
        self.inspected: dict[str, dict[str, Any]] = {}  # pod -> `crictl inspect` at its exit, for the artifacts
        self.watched_from_wall: float | None = None
        self._containers: dict[str, _Container] = {}
        self._procs: list[subprocess.Popen[str]] = []
        self._node_pids: dict[str, str] = {}  # node -> the stream's PID on it, to end it there too
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False

    def __enter__(self) -> "RuntimeWatch":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.cluster.provider != "kind":
            self.unavailable = (f"the container runtime's view needs node access, which a {self.cluster.provider} "
                                "cluster does not give (kind nodes only)")
            return
        core = self.cluster.core()
        for name in self.pods:
            pod = core.read_namespaced_pod(name, self.namespace, _request_timeout=30)
            statuses = pod.status.container_statuses or []
            first = pod.spec.containers[0].name
            cid = next((s.container_id for s in statuses if s.name == first and s.container_id), None)
            if cid is None or not cid.startswith("containerd://") or not pod.spec.node_name:
                self.errors.append(f"{name}: no containerd container id in its status ({cid}) or no node")
                continue
            c = _Container(name, pod.spec.node_name, cid.removeprefix("containerd://"))
            self._containers[c.container_id] = c
        for node in sorted({c.node for c in self._containers.values()}):
            self._start_stream(node)
        # The stream subscribes as soon as ctr runs; give docker exec that moment before anything is injected.
        time.sleep(0.5)
        self.watched_from_wall = time.time()
        self.recorder.event("runtime-watch-start", f"{len(self._containers)} container(s) on "
                            f"{len({c.node for c in self._containers.values()})} node(s)")

    def _start_stream(self, node: str) -> None:
        # Its PID first: ending `docker exec` does not end the command in the node container.
        argv = ["docker", "exec", node, "sh", "-c", f"echo $$; exec timeout {int(self.max_run_s)} ctr -n k8s.io events"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._procs.append(proc)
        th = threading.Thread(target=self._read, args=(node, proc), name=f"kd-runtime-{node}", daemon=True)
        th.start()
        self._threads.append(th)

    def _read(self, node: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        pid = proc.stdout.readline().strip()
        if pid.isdigit():
            self._node_pids[node] = pid
        for line in proc.stdout:
            ev = parse_event_line(line)
            if ev is None:
                if line.strip():
                    self.errors.append(f"{node}: {line.strip()[:200]}")
                continue
            with self._lock:
                if str(ev.body.get("container_id", "")) in self._containers:
                    self.lines.append(line.rstrip())
                exited = apply_events(self._containers, [ev])
            for c in exited:
                self._inspect(c)
        if proc.poll() not in (None, 0, -15, 124, 143):
            self.errors.append(f"{node}: ctr events ended with exit {proc.returncode}")

    def _inspect(self, c: _Container, tries: int = 10) -> None:
        """`crictl inspect` right at the exit, before the kubelet removes the container. containerd's
        CRI status may trail the task exit event by a moment (still CONTAINER_RUNNING, no
        finishedAt): asked again every 0.2 s, a few times."""
        for _ in range(tries):
            try:
                out = self.cluster.node_exec(c.node, "crictl", "inspect", c.container_id, timeout=15).stdout
                c.inspect = json.loads(out)
                self.inspected[c.pod] = c.inspect
            except (CommandFailed, TimeoutError, NodeAccessUnavailable, json.JSONDecodeError) as exc:
                c.inspect_error = f"crictl inspect {c.container_id[:12]} failed: {str(exc).splitlines()[0][:200]}"
                return
            if c.inspect.get("status", {}).get("state") == "CONTAINER_EXITED" or c.exit_code is None:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for node, pid in self._node_pids.items():  # `timeout` passes the TERM on to ctr
            self.cluster.node_exec(node, "kill", pid, check=False, timeout=15)
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for th in self._threads:
            th.join(timeout=20)  # a crictl inspect may be finishing
        with self._lock:
            missed = [c for c in self._containers.values() if c.exit_code is None and not c.inspect]
        for c in missed:  # the stream missed the exit: the container may still be there to inspect
            self._inspect(c)

    def evidence(self, pod: str) -> RuntimeEvidence:
        """What the runtime saw of `pod`'s first container; unavailable with the reason when nothing."""
        if self.unavailable:
            return RuntimeEvidence(available=False, note=self.unavailable)
        with self._lock:
            c = next((x for x in self._containers.values() if x.pod == pod), None)
        if c is None:
            why = "; ".join(e for e in self.errors if e.startswith(pod)) or "it was not among the pods watched"
            return RuntimeEvidence(available=False, note=f"the runtime was not watched for {pod}: {why}")
        stream_errors = "; ".join(e for e in self.errors if e.startswith(c.node))
        return evidence_from(c, self.watched_from_wall, stream_errors)
