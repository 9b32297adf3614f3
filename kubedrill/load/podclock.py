"""How far a pod's clock is from the runner's: measured, so records made in a pod land on the runner's clock.

A request record made in a pod carries the pod's wall time. On a kind cluster every pod shares the
runner's kernel clock, but on a real cluster the pod runs on another machine whose clock may be off
by milliseconds or seconds, and a shutdown verdict compares request times with pod events to the
tenth of a second. So each worker pod's offset is measured the way NTP does it: the runner sends a
ping over one open exec session, the pod answers with its time, and

    offset = pod_time - (sent + received) / 2      (pod clock minus runner clock)

is exact when the two legs take equally long; its error is at most half the round trip. The
best of several pings (the shortest round trip) is kept. One long-lived session, not one exec per
ping: setting up an exec (API server, kubelet, runtime) takes far longer than tearing it down,
which would skew the midpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from kubedrill.cluster.handle import Cluster


class ClockError(RuntimeError):
    """The pod's clock could not be read; the message says what was seen."""


@dataclass(frozen=True)
class ClockSample:
    sent: float  # runner wall time the ping left
    pod: float  # the pod's wall time in its answer
    received: float  # runner wall time the answer arrived

    @property
    def round_trip(self) -> float:
        return self.received - self.sent

    @property
    def offset(self) -> float:
        return self.pod - (self.sent + self.received) / 2


@dataclass(frozen=True)
class ClockOffset:
    offset: float  # s, pod clock minus runner clock
    uncertainty: float  # s, half the best round trip: the offset is right to within this
    samples: int

    def to_runner(self, pod_time: float) -> float:
        """A pod wall time as the runner's wall time."""
        return pod_time - self.offset


def offset_from_samples(samples: Sequence[ClockSample]) -> ClockOffset:
    """The offset of the sample with the shortest round trip (the least room for asymmetry)."""
    if not samples:
        raise ClockError("no clock sample: the pod never answered a ping")
    best = min(samples, key=lambda s: s.round_trip)
    if best.round_trip < 0:
        raise ClockError(f"a ping came back before it was sent ({best}): the runner's clock jumped")
    return ClockOffset(offset=best.offset, uncertainty=best.round_trip / 2, samples=len(samples))


# Answers one line per line read: the pod's wall time with nanoseconds (coreutils date).
PING_LOOP = "while read -r _; do date +%s.%N; done"


def measure_offset(cluster: Cluster, namespace: str, pod: str, container: str, pings: int = 5,
                   timeout: float = 20.0) -> ClockOffset:
    """Best of `pings` round trips over one exec session into the pod (bounded by `timeout`)."""
    from kubernetes.stream import stream

    deadline = time.monotonic() + timeout
    try:
        ws = stream(cluster.core().connect_get_namespaced_pod_exec, pod, namespace, container=container,
                    command=["sh", "-c", PING_LOOP], stdin=True, stdout=True, stderr=True, tty=False,
                    _preload_content=False)
    except Exception as exc:  # noqa: BLE001 - any failure to open the session is the same finding
        raise ClockError(f"could not open an exec session into pod {namespace}/{pod} to read its clock: {exc}. "
                         "Try: kubectl exec works for this user (RBAC pods/exec)") from exc
    samples: list[ClockSample] = []
    errors = ""
    try:
        for _ in range(pings):
            buf = ""
            sent = time.time()
            ws.write_stdin("x\n")
            while "\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not ws.is_open():
                    raise ClockError(f"pod {namespace}/{pod} did not answer a clock ping within {timeout:g} s "
                                     f"(got {buf!r}, stderr {errors!r}); is `date` in its image?")
                buf += ws.read_stdout(timeout=min(left, 2.0)) or ""
                if ws.peek_stderr():
                    errors += ws.read_stderr(timeout=0) or ""
            received = time.time()
            try:
                samples.append(ClockSample(sent, float(buf.split("\n", 1)[0].strip()), received))
            except ValueError:
                raise ClockError(f"pod {namespace}/{pod} answered a clock ping with {buf!r}, not a time") from None
    finally:
        ws.close()
    return offset_from_samples(samples)
