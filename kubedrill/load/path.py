"""Which way a drill's traffic reaches the workload: the one place that decides.

    host-port   from this runner through a NodePort kind maps to 127.0.0.1: no pods to start,
                the fast default on a kind cluster kubedrill made (its configs map 30080-30082)
    in-cluster  locust pods in the cluster send to the Service by its cluster DNS name, the path
                other pods use (kubedrill.load.incluster): any conformant cluster, provider
                generic, or a kind cluster without port mappings (a plain `kind create cluster`)

`choose(cluster)` says which and why; the drills (kubedrill.scenarios.shutdown, .drain) build the
host-port load themselves (each has its own generator there) and `InClusterTraffic` for the other
path, which gives them the same things: requests on the runner's clock in their recorder, and on
top one "load-gap" event per load worker that was lost (kubedrill.check.load_gaps judges those as
the load's failure, never the app's) and one "load-clocks" event with each worker pod's clock
offset from the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

from kubedrill.cluster.handle import Cluster
from kubedrill.load.runner import LoadStats
from kubedrill.record import Operation, Recorder, Window

if TYPE_CHECKING:
    from kubedrill.load.incluster import InClusterLoad, LoadGap

PathName = Literal["host-port", "in-cluster"]


@dataclass(frozen=True)
class TrafficPath:
    name: PathName
    why: str

    @property
    def in_cluster(self) -> bool:
        return self.name == "in-cluster"


def choose(cluster: Cluster) -> TrafficPath:
    """host-port on a kind handle with NodePorts mapped to 127.0.0.1, else in-cluster."""
    if cluster.provider == "kind" and cluster.port_map:
        return TrafficPath("host-port", f"kind cluster {cluster.name} maps NodePorts {sorted(cluster.port_map)} to "
                                        "127.0.0.1: load runs on this runner")
    if cluster.provider == "kind":
        return TrafficPath("in-cluster", f"kind cluster {cluster.name} maps no NodePort to 127.0.0.1 (a plain `kind "
                                          "create cluster`): load runs in the cluster")
    return TrafficPath("in-cluster", f"provider {cluster.provider} gives no host ports: load runs in the cluster")


def _split(total: float, parts: int) -> list[float]:
    return [total / parts] * parts


class InClusterTraffic:
    """In-cluster load to one or more Service URLs, shaped for the drills.

    One InClusterLoad per URL, the rate and users split evenly (the shutdown drill sends half its
    traffic through a lagging router, half straight to the Service). On stop the recorder gets
    every request and the gaps (from the engine) and the clock offsets. `avoid_nodes`: nodes the
    drill will take down; the load pods are kept off them (control_plane_ok: and may run on a
    control-plane node, for drills that take every worker). keep_alive=False: a fresh connection
    per request, as the host-port generators send.
    """

    def __init__(self, cluster: Cluster, urls: Sequence[str], *, recorder: Recorder, path: str = "/",
                 rate: float = 20.0, users: int = 10, run_time: float = 120.0, workers: int = 1,
                 avoid_nodes: Sequence[str] = (), image: str | None = None, purpose: str = "load",
                 keep_alive: bool = False, request_timeout: float = 5.0, control_plane_ok: bool = False) -> None:
        if not urls:
            raise ValueError("at least one Service URL is needed")
        from kubedrill.load.incluster import InClusterLoad

        self.recorder, self.urls, self.rate, self.workers = recorder, list(urls), rate, workers
        n = len(self.urls)
        self.loads: list[InClusterLoad] = [
            InClusterLoad(cluster, url, path=path, users=max(1, round(users / n)), rate=r, run_time=run_time,
                          workers=workers, avoid_nodes=tuple(avoid_nodes), image=image,
                          purpose=purpose if n == 1 else f"{purpose}-{i}", keep_alive=keep_alive,
                          request_timeout=request_timeout, recorder=recorder, control_plane_ok=control_plane_ok)
            for i, (url, r) in enumerate(zip(self.urls, _split(rate, n)))]
        self._ops: list[Operation] | None = None
        self._gaps: list[LoadGap] = []
        self._offsets: dict[str, float] = {}

    def __enter__(self) -> "InClusterTraffic":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, first_answer_timeout: float = 120) -> None:
        """Start every load; if one fails to start, the ones already running are stopped. The bound
        covers scheduling the pods and starting locust, slow on a busy node (2 cores, load 15)."""
        self.recorder.event("traffic-start", f"in-cluster load, {self.rate:g} req/s to {', '.join(self.urls)}")
        started: list[InClusterLoad] = []
        try:
            for load in self.loads:
                started.append(load)  # a load that fails half-way through start() is stopped too
                load.start(first_answer_timeout=first_answer_timeout)
        except BaseException:
            for load in reversed(started):
                try:
                    load.stop()
                except Exception:  # noqa: BLE001 - the start error is the one to report
                    pass
            raise

    def stop(self) -> None:
        """Stop every load (their pods go), then hand the record over (once)."""
        if self._ops is not None:
            return
        errors: list[BaseException] = []
        for load in self.loads:
            try:
                load.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others first, then raise the first
                errors.append(exc)
        ops: list[Operation] = []
        for load in self.loads:  # each load put its requests and gaps on the recorder when it stopped
            ops += load.operations()
            self._gaps += load.gaps()
            self._offsets.update(load.clock_offsets())
        self._ops = sorted(ops, key=lambda o: (o.start, o.end))
        self.recorder.event("load-clocks", "clock offset of each load pod from the runner (s)", **self._offsets)
        self.recorder.event("traffic-stop", f"{len(self._ops)} requests")
        if errors:
            raise errors[0]

    @property
    def operations(self) -> list[Operation]:
        """Every request, on the runner's clock (after stop; while running, what has come back so far)."""
        if self._ops is not None:
            return list(self._ops)
        return sorted((o for load in self.loads for o in load.operations()), key=lambda o: (o.start, o.end))

    @property
    def gaps(self) -> list[LoadGap]:
        return list(self._gaps) if self._ops is not None else [g for load in self.loads for g in load.gaps()]

    @property
    def clock_offsets(self) -> dict[str, float]:
        return dict(self._offsets)

    @property
    def window(self) -> Window | None:
        ops = self.operations
        return Window(ops[0].start, max(o.end for o in ops)) if ops else None

    @property
    def stats(self) -> LoadStats | None:
        """Requests, failures and the achieved rate over every load (None before any request)."""
        from kubedrill.load.incluster import summarize

        ops = self.operations
        return summarize(ops, self.rate, self.workers * len(self.loads), 0) if ops else None

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(f"--- {url} ---\n{load.log_tail()}" for url, load in zip(self.urls, self.loads))

    def summary(self) -> str:
        ops = self.operations
        failed = sum(1 for o in ops if o.outcome != "ok")
        span = (ops[-1].start - ops[0].start) if len(ops) > 1 else 0.0
        rate = (len(ops) - 1) / span if span > 0 else 0.0
        offsets = max((abs(v) for v in self._offsets.values()), default=None)
        clock = f", largest clock offset {offsets * 1000:.1f} ms" if offsets is not None else ""
        return (f"{len(ops)} requests ({failed} failed) in {span:.1f} s: {rate:.1f} req/s from load pods in the cluster "
                f"to {len(self.urls)} Service URL(s); {len(self._gaps)} load gap(s){clock}")
