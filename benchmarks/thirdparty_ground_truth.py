"""Ground truth for the third-party shutdown set (apps/thirdparty), measured in plain Docker.

Each case is a real server from a Debian package (nginx, Apache httpd, gunicorn, Node.js) in a
correct or a broken shutdown configuration, described by a workload spec and its manifests. Before
kubedrill judges a case in Kubernetes, this script measures what the case really does, with no
Kubernetes in the way, so the verdict can be compared with facts rather than with expectations.

The container is started from the manifest itself (image, command, env, memory limit, preStop,
terminationGracePeriodSeconds), with its port published on 127.0.0.1 only, and terminated the way
the kubelet terminates a container:

    deletion (t=0) -> preStop exec hook (`docker exec`, bounded by the grace period)
                   -> SIGTERM (`docker kill --signal SIGTERM`), given the rest of the grace period,
                      but at least 2 s, as the kubelet does after a hook
                   -> SIGKILL (`docker kill --signal SIGKILL`) if it is still running then

Downloads started before the deletion (3 MiB paced at 256 KiB/s: 12 s) tell whether requests in
flight survive; one second after SIGTERM a fresh request from inside the container (curl on the
container's loopback) tells whether the server still accepts work. Recorded per case: each
download's status, framing, bytes against the Content-Length or the chunked terminator; exit code;
time from SIGTERM to exit (the engine's FinishedAt); whether SIGKILL was needed; the hook's exit
code; the server's last log lines. `facts()` reduces a measurement to what must not drift
(tests/integration/test_thirdparty_ground_truth.py re-measures and compares).

Usage:  python benchmarks/thirdparty_ground_truth.py [--case NAME ...]
        (needs the image: bash clusters/images/build-thirdparty.sh; on a shared machine wrap it in
        `flock /tmp/kubedrill-cluster.lock ...`)
Results: benchmarks/results/thirdparty-ground-truth.json and .md (written when every case ran).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "apps" / "thirdparty" / "workloads"
RESULTS = ROOT / "benchmarks" / "results"
BUILD_SCRIPT = ROOT / "clusters" / "images" / "build-thirdparty.sh"
PORT = 8080
# Every server offers these; gunicorn and Node also stream the same bytes chunked.
DOWNLOADS: dict[str, tuple[str, ...]] = {
    "nginx": ("/blob.bin",),
    "apache": ("/blob.bin",),
    "gunicorn": ("/blob.bin", "/stream"),
    "node": ("/blob.bin", "/stream"),
}
PACKAGES = ("nginx-light", "apache2-bin", "python3-gunicorn", "nodejs", "dumb-init")  # versions go in the results
MIN_GRACE_AFTER_HOOK = 2.0  # s: the kubelet gives SIGTERM at least this long after a preStop hook
IN_FLIGHT_BYTES = 64 * 1024  # a download counts as in flight once this much has arrived
EXIT_AT_ONCE = 2.0  # s: an exit this soon after SIGTERM did not wait for anything (measured: <= 0.5 s)
# Server log lines saying which stop signal arrived and how it stopped (nginx, httpd, gunicorn,
# server.js), kept as evidence with the server's last line.
SHUTDOWN_LOG = re.compile(r"SIGTERM|SIGQUIT|SIGWINCH|caught|Handling signal|Shutting down|closing|closed|listening")
SOCKET_TIMEOUT = 15.0  # s: no read on a download waits longer (the server sends every 1/16 s)


class GroundTruthError(RuntimeError):
    """A case could not be measured (Docker failed, the server never answered); says what to try."""


@dataclass(frozen=True)
class Case:
    """One workload of the set, read from its spec and manifest: what the kubelet would run."""

    name: str
    server: str  # the container's name: nginx, apache, gunicorn, node
    config: str  # correct | broken
    workload: str  # path relative to the repository
    image: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    memory_limit: str | None
    prestop: tuple[str, ...] | None
    grace_seconds: int
    health_path: str
    downloads: tuple[str, ...]


@dataclass
class Download:
    path: str
    status: int = 0
    framing: str = ""  # content-length | chunked | close-delimited
    declared_bytes: int | None = None
    received_bytes: int = 0
    complete: bool = False
    error: str = ""
    ended_after_sigterm_s: float | None = None


@dataclass
class Measurement:
    case: str
    server: str
    config: str
    workload: str
    command: list[str]
    grace_seconds: int
    prestop_command: list[str] | None
    prestop_exit_code: int | None = None
    prestop_seconds: float | None = None
    stop_signal: str = "SIGTERM"
    health_while_downloading: str = ""
    downloads: list[Download] = field(default_factory=list)
    new_request_after_sigterm: str = ""
    exit_code: int | None = None
    exit_after_sigterm_s: float | None = None
    sigkill: bool = False
    log_tail: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        """What must not drift between runs: outcomes and phases, not milliseconds."""
        return facts(asdict(self))


def facts(m: dict[str, Any]) -> dict[str, Any]:
    """The stable facts of a measurement (a Measurement as a dict, as stored in the JSON)."""
    if m["sigkill"]:
        exit_phase = "SIGKILL at the end of the grace period"
    elif m["exit_after_sigterm_s"] is not None and m["exit_after_sigterm_s"] <= EXIT_AT_ONCE:
        exit_phase = "at once"
    else:
        exit_phase = "after the open responses ended"
    return {
        "in_flight": {d["path"]: ("completed" if d["complete"] else "cut") for d in m["downloads"]},
        "exit_code": m["exit_code"],
        "sigkill": m["sigkill"],
        "exit": exit_phase,
        "prestop_exit_code": m["prestop_exit_code"],
        "new_request_after_sigterm": m["new_request_after_sigterm"],
        "health_while_downloading": m["health_while_downloading"].split(" ")[0],
    }


def verdict(f: dict[str, Any]) -> tuple[str, list[str]]:
    """The verdict the facts support and its reasons, most fundamental first.

    sigkill before in-flight: a request cut by the SIGKILL is the kill's consequence. exit-code is
    a non-zero exit that was not the SIGKILL (e.g. 143: died of SIGTERM, no handler).
    """
    reasons = []
    if f["prestop_exit_code"] not in (None, 0):
        reasons.append("prestop")
    if f["sigkill"]:
        reasons.append("sigkill")
    elif f["exit_code"] != 0:
        reasons.append("exit-code")
    if any(v != "completed" for v in f["in_flight"].values()):
        reasons.append("in-flight")
    return ("fail" if reasons else "pass"), reasons


def sigkill_cause(f: dict[str, Any]) -> str | None:
    """Why a SIGKILL was needed: the server still took new requests after SIGTERM (it ignored it),
    or it had stopped taking them and was still finishing (it handled SIGTERM, too slowly)."""
    if not f["sigkill"]:
        return None
    return "ignored-sigterm" if f["new_request_after_sigterm"].startswith("served") else "slow-shutdown"


# --- reading the cases -------------------------------------------------------------------------


def load_cases(names: list[str] | None = None) -> list[Case]:
    """Every workload spec under apps/thirdparty/workloads (or the named ones), as the kubelet sees it."""
    cases = []
    for spec_path in sorted(WORKLOADS.glob("*.yaml")):
        if spec_path.name == "expected.yaml":
            continue
        spec = yaml.safe_load(spec_path.read_text())
        if names and spec["name"] not in names:
            continue
        cases.append(_case(spec, spec_path))
    if names:
        missing = sorted(set(names) - {c.name for c in cases})
        if missing:
            known = sorted(p.stem for p in WORKLOADS.glob("*.yaml") if p.name != "expected.yaml")
            raise GroundTruthError(f"no workload spec for case(s) {missing}; known: {known}")
    return cases


def _case(spec: dict[str, Any], spec_path: Path) -> Case:
    docs = [d for m in spec["manifests"] for d in yaml.safe_load_all((spec_path.parent / m).read_text()) if d]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deployments) != 1:
        raise GroundTruthError(f"{spec_path}: expected one Deployment in its manifests, found {len(deployments)}")
    pod = deployments[0]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    prestop = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
    config = "correct" if "-correct" in spec["name"] else "broken"
    return Case(
        name=spec["name"],
        server=c["name"],
        config=config,
        workload=str(spec_path.relative_to(ROOT)),
        image=c["image"],
        command=tuple(c["command"]) + tuple(c.get("args") or ()),
        env=tuple((e["name"], e["value"]) for e in c.get("env") or ()),
        memory_limit=((c.get("resources") or {}).get("limits") or {}).get("memory"),
        prestop=tuple(prestop) if prestop else None,
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
        health_path=spec.get("health_path", "/"),
        downloads=DOWNLOADS[c["name"]],
    )


def image_tag() -> str:
    """The reference build-thirdparty.sh builds now (its recipe hash); needs no Docker."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-tag"], capture_output=True, text=True, timeout=30,
                         check=True)
    return out.stdout.strip()


# --- Docker ------------------------------------------------------------------------------------


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise GroundTruthError(f"docker {' '.join(args[:4])} failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-400:]}")
    return proc


def image_present(image: str) -> bool:
    return docker("image", "inspect", image, check=False, timeout=30).returncode == 0


def _unix(rfc3339: str) -> float:
    """Docker's FinishedAt (nanoseconds, Z) as a Unix time; Python parses microseconds at most."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp()
    return stamp + (float("0." + frac) if frac else 0.0)


# --- HTTP on loopback --------------------------------------------------------------------------


def _get(port: int, path: str, timeout: float) -> str:
    """One GET on 127.0.0.1: 'served (HTTP 200 in 3 ms)' or 'no answer within 1 s' / the error."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return f"served (HTTP {resp.status} in {(time.monotonic() - start) * 1000:.0f} ms)"
    except TimeoutError:
        return f"no-answer within {timeout:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return f"error {type(exc).__name__}: {exc}"[:160]
    finally:
        conn.close()


def _download(port: int, d: Download, in_flight: threading.Event, ended: dict[str, float]) -> None:
    """Read one download to its end, counting bytes; a short body or a missing chunked terminator
    is a cut request (http.client raises IncompleteRead for the latter, not for the former)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
    try:
        conn.request("GET", d.path)
        resp = conn.getresponse()
        d.status = resp.status
        d.declared_bytes = resp.length
        d.framing = "chunked" if resp.chunked else ("content-length" if resp.length is not None else "close-delimited")
        while True:
            buf = resp.read(64 * 1024)
            if not buf:
                break
            d.received_bytes += len(buf)
            if d.received_bytes >= IN_FLIGHT_BYTES:
                in_flight.set()
        if d.framing == "content-length":
            d.complete = d.status == 200 and d.received_bytes == d.declared_bytes
            if not d.complete:
                d.error = f"body ended after {d.received_bytes} of {d.declared_bytes} bytes"
        elif d.framing == "chunked":
            d.complete = d.status == 200  # read() returned b"" only after the terminating chunk
        else:
            d.error = "close-delimited body: its end cannot be told from a cut"
    except (OSError, http.client.HTTPException) as exc:
        d.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        conn.close()
        ended[d.path] = time.monotonic()
        in_flight.set()  # release the waiter even on failure; it reads d


def _after_sigterm_request(container: str, path: str) -> str:
    """A fresh request from inside the container: does the server still accept work after SIGTERM?"""
    proc = docker("exec", container, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                  f"http://127.0.0.1:{PORT}{path}", check=False, timeout=15)
    curl_says = {0: "served", 7: "refused", 28: "no-answer", 52: "closed", 56: "closed"}
    if proc.returncode in curl_says:
        return curl_says[proc.returncode] + (f" (HTTP {proc.stdout.strip()})" if proc.returncode == 0 else "")
    if "is not running" in proc.stderr or "No such container" in proc.stderr:
        return "exited"
    return f"unclear (docker exec/curl exit {proc.returncode}: {proc.stderr.strip()[-120:]})"


# --- one case ----------------------------------------------------------------------------------


def measure(case: Case, run_id: str | None = None) -> Measurement:
    """Run `case` in a container, hold downloads in flight, terminate it like the kubelet, record."""
    name = f"kd-gt-{case.name}-{run_id or uuid.uuid4().hex[:6]}"
    m = Measurement(case=case.name, server=case.server, config=case.config, workload=case.workload,
                    command=list(case.command), grace_seconds=case.grace_seconds,
                    prestop_command=list(case.prestop) if case.prestop else None)
    run = ["run", "-d", "--name", name, "--label", "kubedrill.ground-truth=1", "-p", f"127.0.0.1::{PORT}",
           "--entrypoint", case.command[0]]
    for k, v in case.env:
        run += ["-e", f"{k}={v}"]
    if case.memory_limit:
        run += ["--memory", case.memory_limit.replace("Mi", "m").replace("Gi", "g")]
    docker(*run, case.image, *case.command[1:])
    try:
        _terminate_with_downloads(case, name, m)
    finally:
        logs = docker("logs", "--tail", "60", name, check=False, timeout=30)
        lines = [ln[:200] for ln in (logs.stdout + logs.stderr).splitlines() if "GET /" not in ln]
        about_stop = [ln for ln in lines if SHUTDOWN_LOG.search(ln)][-6:]
        m.log_tail = about_stop + [ln for ln in lines[-1:] if ln not in about_stop]
        docker("rm", "-f", name, check=False, timeout=60)
    return m


def _terminate_with_downloads(case: Case, name: str, m: Measurement) -> None:
    host = docker("port", name, f"{PORT}/tcp").stdout.strip().splitlines()[0]
    port = int(host.rsplit(":", 1)[1])
    _wait_serving(port, case, name)
    # Downloads first, so they are in flight at the deletion, as kubedrill's probe holds them.
    threads: list[threading.Thread] = []
    events: list[threading.Event] = []
    ended: dict[str, float] = {}
    for path in case.downloads:
        d = Download(path)
        m.downloads.append(d)
        ev = threading.Event()
        th = threading.Thread(target=_download, args=(port, d, ev, ended), name=f"gt-{path}", daemon=True)
        th.start()
        threads.append(th)
        events.append(ev)
    for d, ev in zip(m.downloads, events):
        if not ev.wait(10) or d.received_bytes < IN_FLIGHT_BYTES:
            raise GroundTruthError(f"{case.name}: download {d.path} was not in flight within 10 s "
                                   f"(received {d.received_bytes} bytes, error: {d.error or 'none'})")
    # The readiness probe's view while the downloads run (timeoutSeconds: 1 in the manifests).
    m.health_while_downloading = _get(port, case.health_path, timeout=1.0)

    deletion = time.monotonic()
    if case.prestop:
        hook = docker("exec", name, *case.prestop, check=False, timeout=case.grace_seconds + 5)
        m.prestop_exit_code = hook.returncode
        m.prestop_seconds = round(time.monotonic() - deletion, 2)
    rest = max(case.grace_seconds - (time.monotonic() - deletion), MIN_GRACE_AFTER_HOOK)
    # Times taken before the call: the signal lands during it, and a fast server is gone when it returns.
    sigterm_mono, sigterm_wall = time.monotonic(), time.time()
    docker("kill", "--signal", m.stop_signal, name, check=False, timeout=30)
    after: list[str] = []
    checker = threading.Timer(1.0, lambda: after.append(_after_sigterm_request(name, case.health_path)))
    checker.start()
    deadline = sigterm_mono + rest
    while time.monotonic() < deadline and _running(name):
        time.sleep(0.1)
    if _running(name):
        docker("kill", "--signal", "SIGKILL", name, check=False, timeout=30)
        m.sigkill = True
    stop_deadline = time.monotonic() + 15
    while _running(name) and time.monotonic() < stop_deadline:
        time.sleep(0.1)
    state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
    if state["Running"]:
        raise GroundTruthError(f"{case.name}: container {name} still runs 15 s after SIGKILL; is the engine healthy?")
    m.exit_code = state["ExitCode"]
    m.exit_after_sigterm_s = round(_unix(state["FinishedAt"]) - sigterm_wall, 2)
    checker.join(20)
    m.new_request_after_sigterm = after[0] if after else "unclear (the check did not finish)"
    for th in threads:
        th.join(SOCKET_TIMEOUT + 5)
    for d in m.downloads:
        if d.path in ended:
            d.ended_after_sigterm_s = round(ended[d.path] - sigterm_mono, 2)


def _running(name: str) -> bool:
    proc = docker("inspect", "-f", "{{.State.Running}}", name, check=False, timeout=30)
    return proc.stdout.strip() == "true"


def _wait_serving(port: int, case: Case, name: str) -> None:
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        seen = _get(port, case.health_path, timeout=1.0)
        if seen.startswith("served (HTTP 200"):
            return
        if not _running(name):
            break
        time.sleep(0.2)
    logs = docker("logs", "--tail", "15", name, check=False, timeout=30)
    raise GroundTruthError(f"{case.name}: {case.health_path} never answered 200 within 30 s (last: {seen}); "
                           f"container log tail:\n{(logs.stdout + logs.stderr)[-1500:]}")


# --- the run -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    server = docker("version", "-f", "{{.Server.Version}}", check=False, timeout=30).stdout.strip()
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "docker": server,
        "python": platform.python_version(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip(),
    }


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    lines = [
        "# Third-party shutdown set: ground truth in plain Docker",
        "",
        f"Measured {doc['measured_at']} by `python benchmarks/thirdparty_ground_truth.py` on {doc['machine']['host']} "
        f"({doc['machine']['cpus']} CPUs, Docker {doc['machine']['docker']}); load: `{doc['machine']['uptime']}`; "
        f"after the run: `{doc['machine_after']['uptime']}`.",
        f"Image `{doc['image']}` ({doc['image_size_bytes'] / 1e6:.0f} MB): "
        + ", ".join(f"{k} {v}" for k, v in doc["packages"].items()) + ". Termination as the kubelet does it: "
        "preStop exec, then SIGTERM with the rest of the grace period (at least 2 s), then SIGKILL. "
        "Downloads: 3 MiB paced at 256 KiB/s (12 s), in flight (64 KiB received) when the deletion starts.",
        "",
        "| case | grace | preStop (exit, s) | in-flight downloads | exit code | SIGTERM -> exit | SIGKILL | new request 1 s after SIGTERM | health while downloading | verdict (reasons) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in doc["cases"]:
        f = c["facts"]
        hook = "none" if c["prestop_command"] is None else f"`{' '.join(c['prestop_command'])}` ({c['prestop_exit_code']}, {c['prestop_seconds']})"
        dl = "; ".join(f"{d['path']} {d['framing']} {d['status']} {d['received_bytes']}"
                       + (f"/{d['declared_bytes']}" if d["declared_bytes"] is not None else "")
                       + (" completed" if d["complete"] else " **cut**") for d in c["downloads"])
        v, reasons = verdict(f)
        if sigkill_cause(f):
            reasons = [r + f" ({sigkill_cause(f)})" if r == "sigkill" else r for r in reasons]
        lines.append(f"| {c['case']} | {c['grace_seconds']} s | {hook} | {dl} | {c['exit_code']} | "
                     f"{c['exit_after_sigterm_s']} s ({f['exit']}) | {'yes' if c['sigkill'] else 'no'} | "
                     f"{c['new_request_after_sigterm']} | {c['health_while_downloading']} | "
                     f"{v}{' (' + ', '.join(reasons) + ')' if reasons else ''} |")
    lines += ["", "Server log lines about signals and stopping:", ""]
    for c in doc["cases"]:
        lines.append(f"- **{c['case']}**: " + " / ".join(f"`{ln.strip()}`" for ln in c["log_tail"][-5:]))
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", help="measure only this case (repeatable); results are then "
                    "printed, not written")
    ap.add_argument("--out", type=Path, default=RESULTS / "thirdparty-ground-truth.json")
    args = ap.parse_args(argv)
    tag = image_tag()
    if not image_present(tag):
        print(f"image {tag} is not built; run: bash clusters/images/build-thirdparty.sh", file=sys.stderr)
        return 2
    cases = load_cases(args.case)
    stale = sorted({c.image for c in cases} - {tag})
    if stale:
        print(f"the manifests name {stale}, but build-thirdparty.sh builds {tag}; update the image: fields in "
              "apps/thirdparty/workloads/manifests/", file=sys.stderr)
        return 2
    before = machine()
    results = []
    for case in cases:
        t0 = time.monotonic()
        print(f"[ground truth] {case.name}: measuring (grace {case.grace_seconds} s) ...", file=sys.stderr, flush=True)
        m = measure(case)
        f = m.facts()
        results.append(asdict(m) | {"facts": f})
        print(f"[ground truth] {case.name}: {json.dumps(f)} ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    versions = docker("run", "--rm", "--network", "none", "--entrypoint", "dpkg-query", tag, "-W",
                      "-f", "${Package} ${Version}\\n", *PACKAGES).stdout.split("\n")
    doc = {
        "schema": 1,
        "packages": dict(line.split(" ", 1) for line in versions if line),
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "image": tag,
        "image_size_bytes": int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip()),
        "machine": before,
        "machine_after": machine(),
        "cases": results,
    }
    if args.case:
        print(json.dumps(doc, indent=2))
        return 0
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    write_markdown(doc, args.out.with_suffix(".md"))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
