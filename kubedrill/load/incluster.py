"""InClusterLoad: distributed locust inside the cluster under test, recorded per request on the runner's clock.

    with InClusterLoad(cluster, "http://kd-sample.NS.svc.cluster.local:8080", users=10, rate=50,
                       workers=2, avoid_nodes=[drained_node]) as load:
        ...                                  # disrupt while requests flow
    load.operations()                        # list[Operation] on the runner's time.monotonic() clock
    load.gaps()                              # worker pods that stopped sending (load gaps, never app failures)
    load.clock_offsets()                     # worker pod -> its clock minus the runner's (s)

Why in the cluster: traffic from the runner reaches a workload only through a host-mapped port
(kind) and is one process's worth; from pods it takes the path other pods take (the Service's DNS
name), works on any conformant cluster and scales with the worker count.

Lifecycle: start() makes a fresh labelled namespace (kubedrill.cluster.namespaces, so a sweep
removes it if the runner dies), applies the objects of kubedrill.load.incluster_spec, waits (bounded)
until every worker pod runs, measures each worker's clock offset, and returns once every worker has
recorded a request; a pod that cannot start is named with its reason and the fix (image not on the
nodes, nowhere to schedule, crash). stop() ends the run (SIGTERM to the master, which stops the
workers), reads the last records, keeps the logs' tails and always deletes the namespace.

Records come back by polling: every POLL_S the runner reads each worker's record file from the
byte offset it reached (kubectl exec, at most CHUNK_BYTES a read), so a worker that is evicted
loses at most the records of one poll, and the read is bounded whatever the rate. A worker pod that
disappears, restarts or whose locust exits while the load runs is a LoadGap.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Sequence

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.namespaces import create_namespace, delete_namespace, unique_namespace
from kubedrill.cluster.waits import GiveUp, until
from kubedrill.load import incluster_spec as spec
from kubedrill.load.podclock import ClockError, ClockOffset, measure_offset
from kubedrill.load.requestlog import parse_request_lines
from kubedrill.load.runner import LoadError, LoadStats
from kubedrill.record import Operation, Recorder, Window

POLL_S = 2.0
CHUNK_BYTES = 4 << 20
# Waiting reasons of a container whose image the node cannot get: the first two never resolve by
# waiting; a pull error may be a registry hiccup, so it ends the wait once it lasted PULL_PATIENCE_S.
NEVER_PULLS = ("ErrImageNeverPull", "InvalidImageName")
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff")
PULL_PATIENCE_S = 30.0
BROKEN_REASONS = ("CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class LoadGap:
    """A worker pod that stopped sending: a load gap, never an app failure. Times on the runner's
    monotonic clock; end None when nothing took its place before the load ended."""

    pod: str
    start: float
    end: float | None
    reason: str


@dataclass(frozen=True)
class PodChange:
    """A worker pod seen to stop while the load ran: it went away (deleted, evicted), its container
    restarted, or its locust process exited. Seen at `at`; it was last seen fine at `since`."""

    at: float
    since: float
    pod: str
    kind: Literal["gone", "restarted", "exited"]
    detail: str


Span = tuple[float, float]  # one request's (start, end) on the runner's clock


def detect_gaps(changes: Sequence[PodChange], spans: dict[str, list[Span]]) -> list[LoadGap]:
    """The load gaps the pod changes left in the records (pure).

    gone / exited: from the pod's last request to the first request of a pod that started sending
    after it was last seen fine (its replacement), or None. restarted: the longest silence in the
    pod's own requests around the restart (between `since` and `at`)."""
    spans = {pod: sorted(s) for pod, s in spans.items()}
    first = {pod: s[0][0] for pod, s in spans.items() if s}
    claimed: set[str] = set()
    gaps: list[LoadGap] = []
    for ch in sorted(changes, key=lambda c: c.at):
        own = spans.get(ch.pod, [])
        if ch.kind == "restarted":
            pairs = [(a[1], b[0]) for a, b in zip(own, own[1:]) if a[1] <= ch.at and b[0] >= ch.since]
            before = [s for s in own if s[1] <= ch.at]
            after = [s for s in own if s[0] >= ch.since]
            if pairs:
                start, end = max(pairs, key=lambda p: p[1] - p[0])
            elif before and not after:
                start, end = before[-1][1], None
            else:
                start, end = ch.since, (after[0][0] if after else None)
            gaps.append(LoadGap(ch.pod, start, end, f"container restarted: {ch.detail}"))
            continue
        start = max((s[1] for s in own), default=ch.since)
        end: float | None = None
        if ch.kind == "gone":
            newcomers = sorted((t, pod) for pod, t in first.items()
                               if pod != ch.pod and pod not in claimed and t >= ch.since)
            if newcomers:
                end, taker = newcomers[0]
                claimed.add(taker)
        what = "pod went away" if ch.kind == "gone" else "locust exited in the pod"
        gaps.append(LoadGap(ch.pod, start, end, f"{what}: {ch.detail}"))
    return gaps


def split_chunk(data: str) -> tuple[list[str], int]:
    """Complete lines of a chunk read from a record file, and how many bytes they take (a line
    still being written stays for the next read). Records are ASCII JSON, so chars are bytes."""
    cut = data.rfind("\n") + 1
    return data[:cut].splitlines(), cut


def read_header(out: str) -> tuple[float | None, str]:
    """The fetch's output is `#kd <exited time or nothing>` then the chunk: (exited at, chunk)."""
    head, _, chunk = out.partition("\n")
    if not head.startswith("#kd"):
        raise ValueError(f"unexpected answer from a worker pod: {out[:200]!r}")
    value = head[3:].strip()
    try:
        return (float(value) if value else None), chunk
    except ValueError:
        return None, chunk


def summarize(ops: Sequence[Operation], target_rate: float | None, processes: int, skipped: int) -> LoadStats:
    """LoadStats as LoadRunner reports them: rate over first to last request start."""
    span = (ops[-1].start - ops[0].start) if len(ops) > 1 else 0.0
    ok = sum(1 for o in ops if o.outcome == "ok")
    return LoadStats(requests=len(ops), ok=ok, failed=len(ops) - ok, duration_s=span,
                     achieved_rate=(len(ops) - 1) / span if span > 0 else 0.0, target_rate=target_rate,
                     processes=processes, skipped_lines=skipped)


def default_image() -> str:
    """kubedrill's own locust image (clusters/images/build-locust.sh): built offline, cached by its
    recipe hash, where a Docker engine answers (so it can be loaded into kind nodes); elsewhere only
    its reference."""
    from kubedrill.cluster import setup

    return setup.build_locust_image() if setup.docker_ok()[0] else setup.locust_image_tag()


@dataclass
class _Worker:
    """What the runner knows of one worker pod."""

    name: str
    node: str = ""
    restarts: int = 0
    seen_ok: float = 0.0  # last observation that found it running and not deleting
    offset: ClockOffset | None = None
    read: int = 0  # bytes of its record file consumed
    lines: list[str] = field(default_factory=list)
    gone: bool = False  # being deleted or vanished: no longer sends
    vanished: bool = False  # no longer in the API: nothing left to read
    exited: bool = False


class InClusterLoad:
    """Distributed locust in a kubedrill namespace of the cluster under test; see the module docstring."""

    def __init__(self, cluster: Cluster, url: str, *, path: str = "/", users: int = 10, rate: float = 20.0,
                 run_time: float = 120.0, workers: int = 1, avoid_nodes: Sequence[str] = (),
                 image: str | None = None, purpose: str = "load", request_timeout: float = 5.0,
                 keep_alive: bool = True, recorder: Recorder | None = None, control_plane_ok: bool = False) -> None:
        """url: the target as pods reach it (http://SERVICE.NAMESPACE.svc.cluster.local:PORT or an
        Ingress/Gateway URL). rate: total target req/s (each user paced at rate/users). image: a
        locust image the nodes can pull; default kubedrill's own (built and loaded on kind).
        keep_alive=False: a new connection per request (see LoadRunner). recorder: gets the
        operations and load-* events at stop(); its wall0/mono0 also map wall times to the clock."""
        self.shape = spec.LoadShape(url=url, path=path, users=users, rate=rate, run_time=run_time, workers=workers,
                                    request_timeout=request_timeout, keep_alive=keep_alive)
        self.cluster = cluster
        self.avoid_nodes = tuple(avoid_nodes)
        self.control_plane_ok = control_plane_ok
        self.image = image
        self.purpose = purpose
        self.recorder = recorder if recorder is not None else Recorder("incluster-load")
        self.namespace: str | None = None
        self._workers: dict[str, _Worker] = {}
        self._changes: list[PodChange] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = False  # changes count as gaps only while the load runs
        self._stopped = False
        self._master_done_at: float | None = None
        self._logs: dict[str, str] = {}  # pod -> its log tail, kept at stop()
        self._notes: list[str] = []
        self._ops: list[Operation] | None = None
        self._skipped = 0
        self._pull_failing_since: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "InClusterLoad":
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _resolve_image(self) -> str:
        """The named image, else kubedrill's own, loaded into the nodes of a kind cluster (elsewhere
        the nodes must have it already; a missing one is named, with the fix, by start())."""
        if self.image:
            return self.image
        from kubedrill.cluster.images import load_images

        image = default_image()
        load_images(self.cluster, [image])
        return image

    def start(self, first_answer_timeout: float = 60) -> None:
        """Deploy, and return once every worker pod has recorded a request (bounded by
        first_answer_timeout after the objects are applied; building the image on first use is not
        counted). On any error the namespace is removed before the error is raised."""
        if self.namespace is not None:
            raise LoadError("this InClusterLoad was already started; make a new one for another run")
        image = self._resolve_image()
        self.image = image
        self.namespace = unique_namespace(self.purpose)
        try:
            create_namespace(self.cluster, self.namespace)
            docs = spec.render(self.shape, image, run_label=uuid.uuid4().hex[:8], avoid_nodes=self.avoid_nodes,
                               expect_wait=first_answer_timeout, control_plane_ok=self.control_plane_ok)
            self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", timeout=120,
                                 input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
            self.recorder.event("load-start", f"in-cluster locust: {self.shape.workers} worker pod(s), "
                                f"{self.shape.users} users, rate {self.shape.rate:g}", url=self.shape.url + self.shape.path,
                                namespace=self.namespace, image=image)
            deadline = time.monotonic() + first_answer_timeout
            until(f"{self.shape.workers} locust worker pod(s) running in {self.namespace}", self._pods_running,
                  timeout=first_answer_timeout, interval=1.0, hint=self._hint(), diagnose=self._diagnose)
            self._poll_pods()
            for w in list(self._workers.values()):
                self._measure(w, strict=True)
            self._live = True
            self._thread = threading.Thread(target=self._collect_loop, name=f"kd-incluster-{self.namespace}",
                                            daemon=True)
            self._thread.start()
            until(f"every locust worker pod to record a request to {self.shape.url}{self.shape.path}",
                  self._all_sending, timeout=max(5.0, deadline - time.monotonic()), interval=1.0,
                  hint=f"check that {self.shape.url}{self.shape.path} answers from a pod (its DNS name, its port); "
                       "the master's log below says whether the workers connected",
                  diagnose=lambda: self._diagnose() + "\n--- master log ---\n" + self.log_tail(30))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End the load, read the last records, keep the logs, delete the namespace. Idempotent."""
        if self._stopped or self.namespace is None:
            return
        self._stopped = True
        self._live = False
        ns = self.namespace
        try:
            self._halt.set()
            if self._thread is not None:
                self._thread.join(timeout=60)  # one reader at a time: _end_run reads the record files next
            self._master_done()  # if the run had ended by itself, when (workers exiting then leave no gap)
            self._end_run()
            for w in list(self._workers.values()):
                if not w.vanished:
                    self._fetch(w)
                    if w.offset is None:
                        self._measure(w, strict=False)
            self._logs = self._read_logs()
        finally:
            delete_namespace(self.cluster, ns, wait=True, timeout=120)
            self._finish()

    def _end_run(self) -> None:
        """SIGTERM to the master (locust stops its workers, which flush), then wait, bounded, for
        every worker's locust to exit."""
        assert self.namespace is not None
        self.cluster.kubectl("exec", "-n", self.namespace, spec.MASTER, "-c", "master", "--", "sh", "-c",
                             "kill -TERM 1", timeout=30, check=False)

        def exited() -> tuple[bool, str]:
            waiting = [w.name for w in self._workers.values() if not w.vanished and not w.exited and not self._fetch(w)]
            return not waiting, f"locust still running in {waiting}"

        try:
            until("every worker's locust to exit after the master was stopped", exited, timeout=20, interval=1.0)
        except TimeoutError as exc:
            self._notes.append(f"stop: {exc}")

    def _finish(self) -> None:
        ops, skipped = self._operations()
        self._ops, self._skipped = ops, skipped
        self.recorder.extend(ops)
        for gap in self.gaps():
            self.recorder.event("load-gap", gap.reason, at=gap.start, pod=gap.pod, end=gap.end)
        self.recorder.event("load-stop", f"{len(ops)} requests from {len(self._workers)} worker pod(s)",
                            namespace=self.namespace)

    # -- observing the pods -------------------------------------------------------------------
    def _pods(self) -> list[Any]:
        assert self.namespace is not None
        return self.cluster.core().list_namespaced_pod(self.namespace, label_selector=f"{spec.APP_LABEL}=kd-locust",
                                                       _request_timeout=30).items

    @staticmethod
    def _status_line(p: Any) -> str:
        waiting = ""
        for c in p.status.container_statuses or []:
            if c.state and c.state.waiting:
                waiting = f" {c.state.waiting.reason}: {(c.state.waiting.message or '')[:160]}"
            elif c.state and c.state.terminated:
                waiting = f" terminated {c.state.terminated.reason} (exit {c.state.terminated.exit_code})"
        unsched = [c.message for c in p.status.conditions or [] if c.type == "PodScheduled" and c.status == "False"]
        return (f"{p.metadata.name}={p.status.phase} on {p.spec.node_name or '-'}{waiting}"
                + (f" unschedulable: {unsched[0][:200]}" if unsched else ""))

    def _pods_running(self) -> tuple[bool, str]:
        pods = self._pods()
        seen = "; ".join(self._status_line(p) for p in pods) or "no pod yet"
        pulling = False
        for p in pods:
            for c in p.status.container_statuses or []:
                reason = c.state.waiting.reason if c.state and c.state.waiting else ""
                pulling = pulling or reason in PULL_ERRORS
                if reason in PULL_ERRORS and self._pull_failing_since is None:
                    self._pull_failing_since = time.monotonic()
                if reason in NEVER_PULLS or (reason in PULL_ERRORS and self._pull_failing_since is not None
                                             and time.monotonic() - self._pull_failing_since >= PULL_PATIENCE_S):
                    raise GiveUp(f"pod {p.metadata.name} on node {p.spec.node_name} cannot get image {self.image} "
                                 f"({reason}: {(c.state.waiting.message or '')[:200]})")
                if reason in BROKEN_REASONS:
                    raise GiveUp(f"pod {p.metadata.name} cannot run: {reason}: {(c.state.waiting.message or '')[:200]}")
            if p.status.phase == "Failed" or (p.metadata.name == spec.MASTER and p.status.phase == "Succeeded"):
                raise GiveUp(f"pod {p.metadata.name} ended before the load started: {self._status_line(p)}")
        if not pulling:
            self._pull_failing_since = None
        workers = [p for p in pods if (p.metadata.labels or {}).get(spec.ROLE_LABEL) == "worker"
                   and p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
        master = [p for p in pods if p.metadata.name == spec.MASTER and p.status.phase == "Running"]
        return len(workers) >= self.shape.workers and bool(master), seen

    def _hint(self) -> str:
        if self.image and spec.pull_policy(self.image) == "Never":
            fix = ("kubedrill's locust image is never pulled: on kind it is loaded into the nodes for you; on another "
                   "cluster build it (bash clusters/images/build-locust.sh), push it to a registry the nodes can "
                   "pull from and name it (image=REGISTRY/locust:TAG)")
        else:
            fix = f"make {self.image} pullable by the nodes (registry, credentials), or name another image"
        avoid = (f"; the pods must avoid nodes {list(self.avoid_nodes)} and tolerate no taint, so Pending "
                 "'unschedulable' means no other node is schedulable") if self.avoid_nodes else ""
        return fix + avoid

    def _diagnose(self) -> str:
        if self.namespace is None:
            return ""
        return self.cluster.kubectl("get", "pods,events", "-n", self.namespace, "-o", "wide", check=False,
                                    timeout=30).stdout

    def _poll_pods(self) -> None:
        """Update what is known of the worker pods; note changes while the load runs."""
        now = time.monotonic()
        pods = [p for p in self._pods() if (p.metadata.labels or {}).get(spec.ROLE_LABEL) == "worker"]
        names = set()
        for p in pods:
            name = p.metadata.name
            names.add(name)
            restarts = sum(c.restart_count or 0 for c in p.status.container_statuses or [])
            running = p.status.phase == "Running" and p.metadata.deletion_timestamp is None
            with self._lock:
                w = self._workers.get(name)
                if w is None:
                    if not running:
                        continue
                    w = self._workers[name] = _Worker(name, node=p.spec.node_name or "", restarts=restarts, seen_ok=now)
                    continue
                if w.gone:
                    continue
                if p.metadata.deletion_timestamp is not None:
                    self._change(w, now, "gone", f"{name} on {w.node} is being deleted (evicted or drained)")
                elif restarts > w.restarts:
                    self._change(w, now, "restarted", f"{name} on {w.node}: restart count {w.restarts} -> {restarts}")
                    w.restarts = restarts
                elif running:
                    w.seen_ok = now
        with self._lock:
            for w in self._workers.values():
                if w.name not in names:
                    w.vanished = True
                    if not w.gone:
                        self._change(w, now, "gone", f"{w.name} on {w.node} disappeared from the API")

    def _change(self, w: _Worker, now: float, kind: Literal["gone", "restarted", "exited"], detail: str) -> None:
        """Record a change (caller holds the lock). A pod that stops is one gap however it is seen:
        an evicted worker's locust exits on SIGTERM, and a read may see that before the pod list
        shows the deletion; the exit is then told as the pod going away (its replacement ends the gap)."""
        was_exited = w.exited
        if kind == "gone":
            w.gone = True
        if kind == "exited":
            if w.gone:
                w.exited = True
                return
            w.exited = True
        if not self._live:
            return
        if kind == "gone" and was_exited:
            for i, ch in enumerate(self._changes):
                if ch.pod == w.name and ch.kind == "exited":
                    self._changes[i] = PodChange(ch.at, ch.since, w.name, "gone", f"{detail} (its locust exited first)")
                    return
        self._changes.append(PodChange(at=now, since=w.seen_ok, pod=w.name, kind=kind, detail=detail))

    # -- records --------------------------------------------------------------------------------
    def _fetch(self, w: _Worker) -> bool:
        """Read the worker's new complete records; True once its locust has exited. Never raises:
        a pod that cannot be read now is read again next poll (or was lost, which its gap says)."""
        assert self.namespace is not None
        script = (f"printf '#kd %s\\n' \"$(cat {spec.EXITED_FILE} 2>/dev/null)\"; "
                  f"tail -c +{w.read + 1} {spec.RECORD_FILE} 2>/dev/null | head -c {CHUNK_BYTES}")
        try:
            p = self.cluster.kubectl("exec", "-n", self.namespace, w.name, "-c", "worker", "--", "sh", "-c", script,
                                     timeout=30, check=False)
            if p.returncode != 0:
                return False
            exited_at, chunk = read_header(p.stdout)
        except (TimeoutError, ValueError):
            return False
        lines, used = split_chunk(chunk)
        with self._lock:
            w.lines.extend(lines)
            w.read += used
            if exited_at is not None and not w.exited:
                self._change(w, time.monotonic(), "exited", f"{w.name} on {w.node}: locust exited")
        return exited_at is not None

    def _measure(self, w: _Worker, strict: bool) -> None:
        assert self.namespace is not None
        try:
            off = measure_offset(self.cluster, self.namespace, w.name, "worker")
        except ClockError as exc:
            if strict:
                raise LoadError(f"could not measure the clock of worker pod {w.name}: {exc}") from exc
            self._notes.append(f"clock of {w.name} not measured ({exc}); the other pods' median offset is used")
            return
        with self._lock:
            w.offset = off

    def _collect_loop(self) -> None:
        while not self._halt.wait(POLL_S):
            if self._live and self._master_done():
                self._live = False  # the run ended by its run time: workers stopping now leave no gap
            try:
                self._poll_pods()
            except Exception as exc:  # noqa: BLE001 - an API hiccup must not end the collection
                self._notes.append(f"pod poll failed: {exc!r}")
            for w in list(self._workers.values()):
                if self._halt.is_set():
                    break
                if w.offset is None and not w.gone:
                    self._measure(w, strict=False)
                if not w.exited and not w.vanished:
                    self._fetch(w)

    def _master_done(self) -> bool:
        """The master ended its run (run time up, or it failed); notes when, on the runner's clock,
        from its container's finish time (second resolution: the API's clock)."""
        assert self.namespace is not None
        try:
            p = self.cluster.core().read_namespaced_pod(spec.MASTER, self.namespace, _request_timeout=30)
        except Exception:  # noqa: BLE001 - gone is handled as a change of the workers it stops
            return False
        if p.status.phase not in ("Succeeded", "Failed"):
            return False
        if self._master_done_at is None:
            finished = [c.state.terminated.finished_at for c in p.status.container_statuses or []
                        if c.state and c.state.terminated and c.state.terminated.finished_at]
            at = time.monotonic()
            if finished:
                at = min(at, self.recorder.mono0 + (finished[0].timestamp() - self.recorder.wall0))
            self._master_done_at = at - 1.0
        return True

    def _all_sending(self) -> tuple[bool, str]:
        with self._lock:
            counts = {w.name: len(w.lines) for w in self._workers.values() if not w.gone}
        if self.namespace is not None and self._master_done():
            raise GiveUp(f"the locust master ended before every worker sent a request; records so far {counts}. "
                         f"Master log:\n{self.log_tail(20)}")
        return (len(counts) >= self.shape.workers and all(counts.values())), f"records per worker pod: {counts}"

    def _offsets(self) -> dict[str, float]:
        with self._lock:
            known = {w.name: w.offset.offset for w in self._workers.values() if w.offset is not None}
        fallback = statistics.median(known.values()) if known else 0.0
        return {w: known.get(w, fallback) for w in self._workers}

    def _operations(self) -> tuple[list[Operation], int]:
        offsets = self._offsets()
        ops: list[Operation] = []
        skipped = 0
        with self._lock:
            lines = {w.name: list(w.lines) for w in self._workers.values()}
        for pod, pod_lines in lines.items():
            parsed = parse_request_lines(pod_lines, client=pod, clock="wall", recorder=self.recorder,
                                         offset=offsets[pod])
            ops.extend(parsed.operations)
            skipped += parsed.skipped_lines
        ops.sort(key=lambda o: (o.start, o.end))
        return ops, skipped

    def _read_logs(self) -> dict[str, str]:
        assert self.namespace is not None
        logs = {}
        for name in [spec.MASTER, *self._workers]:
            p = self.cluster.kubectl("logs", "-n", self.namespace, name, "--tail=200", timeout=30, check=False)
            logs[name] = (p.stdout or p.stderr).rstrip()
        return logs

    # -- results --------------------------------------------------------------------------------
    def operations(self) -> list[Operation]:
        """Every request so far (all of them after stop()), on the runner's monotonic clock."""
        if self._ops is not None:
            return self._ops
        return self._operations()[0]

    def window(self) -> Window | None:
        """From the first request's start to the last request's end; None without requests."""
        ops = self.operations()
        return Window(ops[0].start, max(o.end for o in ops)) if ops else None

    def clock_offsets(self) -> dict[str, float]:
        """Worker pod -> its clock minus the runner's (s), as measured (best of 5 exec round trips)."""
        with self._lock:
            return {w.name: w.offset.offset for w in self._workers.values() if w.offset is not None}

    def clock_uncertainty(self) -> dict[str, float]:
        """Worker pod -> how far its measured offset can be off (s): half the best round trip."""
        with self._lock:
            return {w.name: w.offset.uncertainty for w in self._workers.values() if w.offset is not None}

    def gaps(self) -> list[LoadGap]:
        """Worker pods that stopped sending while the load ran."""
        with self._lock:
            changes = list(self._changes)
        if self._master_done_at is not None:
            # A worker's locust exits when the master ends the run; the poll may see that first.
            changes = [c for c in changes if not (c.kind == "exited" and c.at >= self._master_done_at - 2 * POLL_S)]
        spans: dict[str, list[Span]] = {}
        for o in self.operations():
            spans.setdefault(o.client, []).append((o.start, o.end))
        return detect_gaps(changes, spans)

    def stats(self) -> LoadStats:
        ops = self.operations()
        return summarize(ops, self.shape.rate, self.shape.workers, self._skipped)

    def notes(self) -> list[str]:
        """What went less than perfectly without failing the load (a clock not measured, a slow stop)."""
        return list(self._notes)

    def log_tail(self, lines: int = 15) -> str:
        """The master's last `lines` log lines (after stop(), from the tails kept then, followed by
        each worker's last three lines)."""
        if self._logs:
            parts = [f"--- {name} ---\n" + "\n".join(text.splitlines()[-(lines if name == spec.MASTER else 3):])
                     for name, text in self._logs.items()]
            return "\n".join(parts)
        if self.namespace is None or self._stopped:
            return ""
        p = self.cluster.kubectl("logs", "-n", self.namespace, spec.MASTER, f"--tail={lines}", timeout=30, check=False)
        return (p.stdout or p.stderr).strip()
