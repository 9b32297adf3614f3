"""The sample app's shutdown modes on plain Docker (no Kubernetes), judged by the shutdown checker.

Each mode's container runs on 127.0.0.1 under locust load with a slow request in flight, and is
terminated the way the kubelet does it, emulated with Docker:

    deletion (t=0) --- preStop: `docker exec <c> /app prestop` (PRESTOP s) ---> SIGTERM: `docker stop -t <rest of grace>`
          \\--- endpoint removal: the load stops hitting the container at t=PROPAGATION

So graceful must PASS; ignores-sigterm, slow-exit, abrupt and exit-nonzero must FAIL naming their
fault. no-prestop is told apart only because the emulated propagation delay keeps load on the
container after its (immediate) SIGTERM; in Kubernetes the delay is real (kube-proxy, load
balancers) and the suites/shutdown suite shows it for real.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from kubedrill.record.termination import TerminationRecord
from kubedrill.check.shutdown import check_shutdown
from kubedrill.check.verdict import Status
from kubedrill.load import LoadRunner, SlowProbe
from kubedrill.record import Recorder
from kubedrill.record.lifecycle import AppLifecycle, parse_lifecycle, rfc3339_to_unix

pytestmark = [pytest.mark.needs_docker]

GRACE = 8  # s: the emulated terminationGracePeriodSeconds, counted from deletion
PRESTOP = 1.5  # s: the preStop sleep
PROPAGATION = 0.8  # s: how long load keeps reaching the container after deletion
SLOW = 4  # s: the request held in flight across SIGTERM
RUN = os.environ.get("KUBEDRILL_RUN_ID") or uuid.uuid4().hex[:8]

# mode -> (expected status, a phrase the reason must contain)
EXPECTED: dict[str, tuple[Status, str]] = {
    "graceful": (Status.PASS, "preStop hook ran"),
    "ignores-sigterm": (Status.FAIL, "the process ignored SIGTERM"),
    "slow-exit": (Status.FAIL, "shutdown was too slow"),
    "abrupt": (Status.FAIL, "the server exits without waiting for in-flight requests"),
    "exit-nonzero": (Status.FAIL, "exit code 1 on SIGTERM"),
    "no-prestop": (Status.FAIL, "add a preStop sleep of at least"),
}


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc


@pytest.fixture(scope="module")
def sample_app_image() -> str:
    """The sample app image, built offline (cached by source hash)."""
    if shutil.which("docker") is None or docker("info", timeout=20, check=False).returncode != 0:
        pytest.skip("no reachable Docker engine; start one with clusters/engine/ensure-docker.sh")
    if shutil.which("go") is None:
        pytest.skip("go is not installed; it is needed to build the sample app image")
    from kubedrill.workload.sample import build_sample_image

    return build_sample_image()


class AppContainer:
    """One sample-app container on 127.0.0.1 with a host file as its termination log."""

    def __init__(self, image: str, mode: str, workdir: Path) -> None:
        self.name = f"kd-sample-{mode}-{uuid.uuid4().hex[:6]}"
        self.termlog = workdir / "termination-log"
        self.termlog.write_text("")
        self.termlog.chmod(0o666)  # the app runs as uid 65532, like the kubelet's 0666 file
        self.image = image
        self.mode = mode
        self.url = ""

    def start(self) -> None:
        docker("run", "-d", "--name", self.name, "--label", f"kubedrill.run={RUN}", "-p", "127.0.0.1::8080",
               "-e", f"SHUTDOWN_MODE={self.mode}", "-e", f"PRESTOP_SECONDS={PRESTOP}",
               "-e", f"DRAIN_SECONDS={GRACE - PRESTOP - 1}", "-e", "SLOW_EXIT_SECONDS=120",
               "-e", f"POD_NAME={self.name}", "-e", "NODE_NAME=local-docker",
               "-v", f"{self.termlog}:/dev/termination-log", self.image)
        port = docker("port", self.name, "8080/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        seen = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:  # noqa: S310 - loopback
                    if r.status == 200:
                        return
            except OSError as exc:
                seen = repr(exc)
            time.sleep(0.1)
        logs = docker("logs", "--tail", "20", self.name, check=False)
        raise AssertionError(f"sample app container {self.name} was not ready within 15 s (last: {seen}); "
                             f"logs:\n{logs.stdout}{logs.stderr}")

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False, timeout=30)

    def state(self) -> dict[str, object]:
        return dict(json.loads(docker("inspect", "-f", "{{json .State}}", self.name).stdout))

    def lifecycle(self) -> AppLifecycle:
        return parse_lifecycle(self.termlog.read_text())


@pytest.fixture
def container(sample_app_image: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppContainer]:
    c = AppContainer(sample_app_image, request.node.callspec.params["mode"], tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.remove()


def terminate_like_the_kubelet(c: AppContainer, with_prestop: bool, deletion_at: float) -> threading.Thread:
    """preStop (if any), then SIGTERM with what is left of the grace period; runs in a thread."""
    def run() -> None:
        if with_prestop:
            docker("exec", c.name, "/app", "prestop", timeout=PRESTOP + 30)
        left = max(1, math.ceil(GRACE - (time.monotonic() - deletion_at)))
        docker("stop", "-t", str(left), c.name, timeout=GRACE + 30)

    th = threading.Thread(target=run, name="kd-kubelet-emulation", daemon=True)
    th.start()
    return th


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_shutdown_mode_is_judged(mode: str, container: AppContainer, kd_report) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(f"sample-{mode}")
    with_prestop = mode != "no-prestop"
    with LoadRunner(container.url, users=2, rate=50, run_time=60, max_requests=5000, recorder=rec) as load:
        time.sleep(1.0)
        with SlowProbe(container.url, seconds=SLOW, recorder=rec) as probe:
            assert probe.wait_in_flight(timeout=5) == [container.name]
            deletion_at = rec.now()
            rec.event("deletion", container.name)
            kubelet = terminate_like_the_kubelet(container, with_prestop, deletion_at)
            time.sleep(max(0.0, deletion_at + PROPAGATION - rec.now()))
            load.stop()  # endpoint removal reached the client: no new requests to this container
            kubelet.join(timeout=GRACE + 60)
            assert not kubelet.is_alive(), "docker stop did not return within the grace period + 60 s"
    state = container.state()
    lc = container.lifecycle()
    finished_wall = rfc3339_to_unix(state["FinishedAt"])
    assert finished_wall is not None, f"docker reported no FinishedAt: {state}"
    record = TerminationRecord.from_events(
        container.name, GRACE, lc.times("mono"), deletion_at=deletion_at,
        exit_at=rec.mono0 + (finished_wall - rec.wall0), exit_code=int(str(state["ExitCode"])),
        reason="OOMKilled" if state.get("OOMKilled") else None, prestop_expected=with_prestop,
        inflight=probe.operations, traffic=load.operations)
    verdict = kd_report.add(check_shutdown(record))
    print(f"{mode}: {verdict}")
    status, phrase = EXPECTED[mode]
    assert verdict.status is status and phrase in verdict.reason, (
        f"{mode}: expected {status.value} with {phrase!r}; got {verdict}\nlifecycle: {lc.events}")
    # The container shares the host's CLOCK_MONOTONIC: its own timestamps land inside the test's timeline.
    started = lc.first("started")
    assert started is not None and rec.mono0 - 30 < started.mono < deletion_at
    if mode == "graceful":
        assert lc.exit_code == 0 and [e.event for e in lc.events][1:] == [
            "prestop-start", "prestop-end", "sigterm", "listener-closed", "inflight-drained", "exit"]
