"""etcdctl and etcdutl from the pinned image, run as one-off containers.

Why containers rather than host binaries: the image is the artifact under test (the same bytes a
kind node would run), and a one-off container on the cluster's network reaches members exactly
like an operator's backup job would. Every run is labelled for the sweeper and removed after it
exits; its exit code, stdout and stderr are kept apart so callers can assert on each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from kubedrill.etcd.cluster import EtcdCluster, Member, labels_for
from kubedrill.etcd.tls import ClientTLS

ETCDCTL = "/usr/local/bin/etcdctl"
ETCDUTL = "/usr/local/bin/etcdutl"


@dataclass(frozen=True)
class ToolResult:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def explain(self) -> str:
        return f"`{' '.join(self.argv)}` exited {self.rc} after {self.seconds:.1f}s; stderr: {self.stderr.strip()[-800:]}"


def run_tool(
    image: str,
    argv: list[str],
    *,
    run_id: str,
    mounts: dict[Path, tuple[str, str]] | None = None,
    network: str | None = None,
    timeout: float = 300.0,
) -> ToolResult:
    """Run argv in a fresh container of image; bounded by timeout (the container is killed then)."""
    dc = docker.from_env(timeout=max(60, int(timeout) + 30))
    volumes = {str(h): {"bind": c, "mode": mode} for h, (c, mode) in (mounts or {}).items()}
    t0 = time.monotonic()
    c = dc.containers.run(
        image, entrypoint=[argv[0]], command=argv[1:], detach=True, labels=labels_for(run_id, "tools"),
        volumes=volumes, network=network or "none",
    )
    try:
        try:
            rc = int(c.wait(timeout=timeout)["StatusCode"])
        except Exception as exc:  # noqa: BLE001 - requests' ReadTimeout or ConnectionError
            try:
                c.kill()
            except docker.errors.APIError:
                pass  # it exited just now
            raise TimeoutError(
                f"expected `{' '.join(argv)}` to finish within {timeout:.0f}s; it did not ({exc!r}). "
                f"Last output: {c.logs(tail=5).decode(errors='replace')!r}. Try a smaller dataset or a longer timeout."
            ) from exc
        seconds = time.monotonic() - t0
        out = c.logs(stdout=True, stderr=False).decode(errors="replace")
        err = c.logs(stdout=False, stderr=True).decode(errors="replace")
        return ToolResult(argv, rc, out, err, seconds)
    finally:
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass
        dc.close()


CLIENT_PKI = "/kd/client"


def tls_args(tls: ClientTLS) -> tuple[list[str], dict[Path, tuple[str, str]]]:
    """etcdctl TLS flags and the mounts that put the files where the flags point."""
    mounts: dict[Path, tuple[str, str]] = {tls.ca.parent: ("/kd/ca", "ro")}
    args = [f"--cacert=/kd/ca/{tls.ca.name}"]
    if tls.pair is not None:
        mounts[tls.pair.cert.parent] = (CLIENT_PKI, "ro")
        args += [f"--cert={CLIENT_PKI}/{tls.pair.cert.name}", f"--key={CLIENT_PKI}/{tls.pair.key.name}"]
    return args, mounts


def etcdctl(
    cluster: EtcdCluster, member: Member, args: list[str], *, tls: ClientTLS | None = None,
    extra_mounts: dict[Path, tuple[str, str]] | None = None, timeout: float = 120.0, command_timeout_s: int = 20,
) -> ToolResult:
    """etcdctl against one member, from a container on the cluster's network, over TLS.

    command_timeout_s bounds etcdctl's own retries (a refused client retries until then);
    timeout bounds the container as a whole.
    """
    targs, mounts = tls_args(tls or cluster.client_tls)
    mounts.update(extra_mounts or {})
    argv = [ETCDCTL, f"--endpoints={member.client_url}", "--dial-timeout=5s",
            f"--command-timeout={command_timeout_s}s", *targs, *args]
    return run_tool(cluster.image, argv, run_id=cluster.run_id, mounts=mounts, network=cluster.network_name,
                    timeout=timeout)


def snapshot_save(cluster: EtcdCluster, member: Member, out_file: Path, timeout: float = 600.0) -> ToolResult:
    """`etcdctl snapshot save` over TLS into out_file on the host."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    return etcdctl(cluster, member, ["snapshot", "save", f"/kd/out/{out_file.name}"],
                   extra_mounts={out_file.parent: ("/kd/out", "rw")}, timeout=timeout,
                   command_timeout_s=int(timeout))


def etcdutl(image: str, run_id: str, args: list[str], mounts: dict[Path, tuple[str, str]], timeout: float = 600.0) -> ToolResult:
    """etcdutl works on files only, so it runs without any network."""
    return run_tool(image, [ETCDUTL, *args], run_id=run_id, mounts=mounts, network=None, timeout=timeout)


def snapshot_status(image: str, run_id: str, snap: Path) -> ToolResult:
    return etcdutl(image, run_id, ["snapshot", "status", "-w", "json", f"/kd/in/{snap.name}"],
                   {snap.parent: ("/kd/in", "ro")}, timeout=120)


def snapshot_restore(image: str, run_id: str, snap: Path, member: Member, initial_cluster: str, token: str,
                     timeout: float = 600.0) -> ToolResult:
    """`etcdutl snapshot restore` into member.data_dir (which must not exist or be empty).

    The member's home is mounted, the data dir is its `data` child: restore creates it, as it
    would on a real node, and refuses an existing non-empty one.
    """
    member.home.mkdir(parents=True, exist_ok=True)
    return etcdutl(
        image, run_id,
        [
            "snapshot", "restore", f"/kd/in/{snap.name}",
            f"--name={member.name}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-token={token}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--data-dir=/kd/home/{member.data_dir.name}",
        ],
        {snap.parent: ("/kd/in", "ro"), member.home: ("/kd/home", "rw")},
        timeout=timeout,
    )
