"""A real kube-apiserver of a chosen version with its own etcd, as two local processes (envtest-style).

No kubelet, scheduler or controller-manager: preflight only asks the API server whether it accepts
objects (server-side dry-run), which needs admission and validation, nothing else. That makes it
seconds to start and independent of what kind node images this machine can run.

Built by clusters/images/build-apiserver.sh (kube-apiserver alone, cached per version under
KUBEDRILL_CACHE). Started with:
- etcd on loopback ports with a throwaway data dir (`--unsafe-no-fsync`: the data is thrown away);
- kube-apiserver on a loopback port, self-signed serving cert in the temp dir, a static bearer token
  for a `system:masters` user, AlwaysAllow authorization, a fresh service-account key pair;
- the `ServiceAccount` admission plugin disabled, because no controller creates the namespaces'
  `default` ServiceAccount and every Pod would be refused for a reason the real cluster does not have.

Cleanup is guaranteed on every exit path that Python sees (context manager, atexit, SIGTERM turned
into KeyboardInterrupt by the caller): both processes are terminated, then killed, then the temp
dir is removed. For the ones Python does not see (SIGKILL of the parent), the children are started
with PR_SET_PDEATHSIG=SIGKILL, so the kernel kills them when their parent dies.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kubedrill.cluster.paths import IMAGES_DIR, cache_dir, versions
from kubedrill.cluster.progress import say
from kubedrill.cluster.setup import SetupError, run_recipe
from kubedrill.preflight import PreflightError

BUILD_SCRIPT = IMAGES_DIR / "build-apiserver.sh"
_LIVE: set["ApiServer"] = set()


def preflight_targets() -> list[str]:
    """PREFLIGHT_TARGETS from clusters/versions.env (KUBEDRILL_PREFLIGHT_TARGETS overrides)."""
    raw = os.environ.get("KUBEDRILL_PREFLIGHT_TARGETS") or versions().get("PREFLIGHT_TARGETS", "")
    return [v.strip() for v in raw.replace(" ", ",").split(",") if v.strip()]


@dataclass(frozen=True)
class Binaries:
    version: str
    kube_apiserver: Path
    etcd: Path


def cached(version: str) -> Binaries | None:
    """The binaries for `version` if a build left them in the cache (no build, no network)."""
    etcd_v = versions()["ETCD_VERSION"]
    etcd = next((p for p in (cache_dir() / "etcd" / etcd_v / "bin" / "etcd",
                             cache_dir() / "apiserver" / f"etcd-{etcd_v}" / "bin" / "etcd")
                 if p.exists() and (p.parent.parent / ".kubedrill-done").exists()), None)
    api = next((p for p in (cache_dir() / "k8s" / version / "bin" / "kube-apiserver",
                            cache_dir() / "apiserver" / version / "bin" / "kube-apiserver")
                if p.exists() and (p.parent.parent / ".kubedrill-done").exists()), None)
    return Binaries(version, api, etcd) if api and etcd else None


def ensure_built(version: str, timeout: float = 3600, echo: Callable[[str], None] = say) -> Binaries:
    """Build (or find cached) kube-apiserver `version` and an etcd; PreflightError if it cannot be built."""
    hit = cached(version)
    if hit is not None:
        return hit
    try:
        lines = run_recipe(["bash", str(BUILD_SCRIPT), version],
                           f"building kube-apiserver {version} for preflight (measured cold on 2 cores: ~3.5 min)",
                           timeout, echo=echo)
    except SetupError as exc:
        raise PreflightError(f"building kube-apiserver {version} failed: {exc}") from exc
    last = next((ln for ln in reversed(lines) if ln.startswith("kube-apiserver=")), "")
    parts = dict(p.split("=", 1) for p in last.split())
    if "kube-apiserver" not in parts or "etcd" not in parts:
        raise PreflightError(f"build-apiserver.sh {version} printed no binary paths; output tail:\n"
                             + "\n".join(lines[-10:]))
    return Binaries(version, Path(parts["kube-apiserver"]), Path(parts["etcd"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _write_sa_keys(d: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (d / "sa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    (d / "sa.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))


class ApiServer:
    """`with ApiServer(binaries) as api:` -> api.url, api.token, api.version; stopped and removed on exit."""

    def __init__(self, binaries: Binaries, start_timeout: float = 120.0, echo: Callable[[str], None] = say) -> None:
        self.bin = binaries
        self.version = binaries.version
        self.start_timeout = start_timeout
        self.echo = echo
        self.dir: Path | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.url = ""
        self.token = secrets.token_hex(16)
        self.started_s = 0.0
        self.ssl = ssl.create_default_context()
        # Our own child on loopback, with a cert it generated a second ago: nothing to verify against.
        self.ssl.check_hostname = False
        self.ssl.verify_mode = ssl.CERT_NONE

    def __enter__(self) -> "ApiServer":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as fh:
            p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 preexec_fn=_die_with_parent, start_new_session=True)
        self.procs.append(p)
        return p

    def _wait(self, what: str, probe: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
              timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise PreflightError(f"{what} {self.version} exited with code {proc.returncode} while starting; "
                                     f"log tail ({log}):\n{_tail(log)}")
            try:
                if probe():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        raise PreflightError(f"{what} {self.version} not ready within {timeout:.0f}s; log tail:\n{_tail(log)}")

    def start(self) -> None:
        t0 = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix=f"kubedrill-preflight-{self.version}-"))
        _LIVE.add(self)
        d = self.dir
        (d / "pid").write_text(str(os.getpid()))
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd_log = d / "etcd.log"
        etcd = self._spawn([str(self.bin.etcd), "--name", "kd", "--data-dir", str(d / "etcd"),
                            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                            "--initial-cluster", f"kd=http://127.0.0.1:{peer_port}",
                            "--unsafe-no-fsync", "--log-level", "warn"], etcd_log)

        def etcd_ok() -> bool:
            with urllib.request.urlopen(f"{etcd_url}/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")

        self._wait("etcd", etcd_ok, etcd, etcd_log, 30)
        _write_sa_keys(d)
        (d / "tokens.csv").write_text(f'{self.token},kubedrill-preflight,kubedrill-preflight,"system:masters"\n')
        api_log = d / "kube-apiserver.log"
        api = self._spawn([
            str(self.bin.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--cert-dir={d / 'certs'}",
            f"--token-auth-file={d / 'tokens.csv'}",
            "--authorization-mode=AlwaysAllow",
            "--service-account-issuer=https://kubedrill-preflight.local",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ], api_log)
        self.url = f"https://127.0.0.1:{api_port}"

        def api_ok() -> bool:
            req = urllib.request.Request(f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"})
            with urllib.request.urlopen(req, timeout=3, context=self.ssl) as r:
                return r.status == 200
            return False

        try:
            self._wait("kube-apiserver", api_ok, api, api_log, self.start_timeout)
        except PreflightError:
            raise
        self.started_s = time.monotonic() - t0
        self.echo(f"kube-apiserver {self.version} ready at {self.url} in {self.started_s:.1f}s")

    def log_tail(self, n: int = 30) -> str:
        return _tail(self.dir / "kube-apiserver.log", n) if self.dir else ""

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        _LIVE.discard(self)


@atexit.register
def _stop_all() -> None:
    for a in list(_LIVE):
        a.stop()


def sweep(tmp: Path | None = None) -> list[str]:
    """Remove temp dirs of preflight servers whose owner process is gone (a SIGKILLed run)."""
    removed = []
    for d in Path(tmp or tempfile.gettempdir()).glob("kubedrill-preflight-*"):
        try:
            pid = int((d / "pid").read_text())
            os.kill(pid, 0)
            continue  # the owner still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # someone else's live process
        except (OSError, ValueError):
            if time.time() - d.stat().st_mtime < 300:
                continue  # being created right now
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
    return removed
