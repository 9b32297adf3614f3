"""etcd clusters as containers: N members on a private Docker network, TLS everywhere like kubeadm.

Each cluster gets its own bridge network with a /24 chosen at random (retried on overlap) so that
every member has a fixed IP: a SIGKILLed member restarts with the same peer URL, certificates can
name the IP, and partitions can be cut by IP. Data dirs are bind mounts from a per-run work dir on
the host, so snapshots can be restored into fresh dirs and started as a new cluster.

Everything created carries labels kubedrill.component=etcd, kubedrill.run=<run id> and
kubedrill.owner-pid=<pid>; `sweep()` removes a run's leftovers, or those of dead owners.
Containers are testcontainers `DockerContainer`s (Ryuk is disabled: it cannot be pulled offline,
and the label sweeper does its job).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TypeVar

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import EndpointConfig, IPAMConfig, IPAMPool
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from kubedrill.cluster.waits import GiveUp, wait_for
from kubedrill.etcd.client import EtcdClient, EtcdError, MemberStatus
from kubedrill.etcd.tls import CONTAINER_PKI_DIR, CertAuthority, ClientTLS

if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
    # Ryuk's image cannot be pulled here; kubedrill's label sweeper replaces it.
    testcontainers_config.ryuk_disabled = True

log = logging.getLogger("kubedrill.etcd")

LABEL_COMPONENT = "kubedrill.component"
LABEL_RUN = "kubedrill.run"
LABEL_OWNER = "kubedrill.owner-pid"
LABEL_CLUSTER = "kubedrill.etcd-cluster"
COMPONENT = "etcd"
CLIENT_PORT = 2379
PEER_PORT = 2380
DATA_DIR = "/var/lib/etcd"

T = TypeVar("T")


def docker_client() -> docker.DockerClient:
    return docker.from_env(timeout=30)


def labels_for(run_id: str, cluster: str | None = None) -> dict[str, str]:
    d = {LABEL_COMPONENT: COMPONENT, LABEL_RUN: run_id, LABEL_OWNER: str(os.getpid())}
    if cluster:
        d[LABEL_CLUSTER] = cluster
    return d


class Member:
    """One etcd member: a container with a fixed IP, its PKI dir and its host data dir."""

    def __init__(self, cluster: "EtcdCluster", name: str, ip: str, home: Path) -> None:
        self.cluster = cluster
        self.name = name
        self.ip = ip
        self.home = home
        self.pki_dir = home / "pki"
        self.data_dir = home / "data"
        self.container_name = f"{cluster.prefix}-{name}"
        self.tc: DockerContainer | None = None
        self.member_id: int | None = None

    def __repr__(self) -> str:
        return f"Member({self.name} {self.ip})"

    @property
    def client_url(self) -> str:
        return f"https://{self.ip}:{CLIENT_PORT}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.ip}:{PEER_PORT}"

    def client(self, timeout: float = 2.0, tls: ClientTLS | None = None, require_leader: bool = True) -> EtcdClient:
        return EtcdClient(self.ip, tls or self.cluster.client_tls, CLIENT_PORT, timeout, require_leader)

    def container(self) -> Container:
        return self.cluster.docker.containers.get(self.container_name)

    def state(self) -> str:
        """Docker's view: running, paused, exited, created, or missing."""
        try:
            return str(self.container().status)
        except docker.errors.NotFound:
            return "missing"

    def pid(self) -> int:
        pid = int(self.container().attrs["State"]["Pid"])
        if pid <= 0:
            raise RuntimeError(f"member {self.name} has no process (state {self.state()})")
        return pid

    def logs(self, tail: int = 30) -> str:
        try:
            return self.container().logs(tail=tail).decode(errors="replace")
        except docker.errors.NotFound:
            return "(container gone)"

    def last_error(self, tail: int = 60) -> str:
        """The most telling recent log line: the last one that reads like an error or panic, else
        the last line. A panic's stack trace would otherwise bury its own first line."""
        lines = [ln for ln in self.logs(tail=tail).splitlines() if ln.strip()]
        for ln in reversed(lines):
            low = ln.lower()
            if low.startswith("panic:") or '"level":"fatal"' in low or '"level":"error"' in low or "error:" in low:
                return ln.strip()[:400]
        return lines[-1].strip()[:400] if lines else "(no log output)"

    def status(self, timeout: float = 1.0) -> MemberStatus:
        with self.client(timeout=timeout, require_leader=False) as c:
            st = c.status()
        self.member_id = st.member_id
        return st

    # -- lifecycle used by disruptions --------------------------------------------------------

    def kill(self, signal: str = "SIGKILL") -> None:
        self.container().kill(signal=signal)

    def stop(self, timeout: int = 10) -> None:
        self.container().stop(timeout=timeout)

    def start(self) -> None:
        self.container().start()

    def pause(self) -> None:
        self.container().pause()

    def unpause(self) -> None:
        self.container().unpause()

    def command(self, initial_cluster: str, state: str) -> list[str]:
        """etcd's flags, modelled on kubeadm's etcd static pod manifest."""
        p = CONTAINER_PKI_DIR
        c = self.cluster
        return [
            f"--name={self.name}",
            f"--data-dir={DATA_DIR}",
            f"--listen-client-urls=https://127.0.0.1:{CLIENT_PORT},https://{self.ip}:{CLIENT_PORT}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={c.token}",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            f"--cert-file={p}/server.crt",
            f"--key-file={p}/server.key",
            "--client-cert-auth=true",
            f"--trusted-ca-file={p}/ca.crt",
            f"--peer-cert-file={p}/peer.crt",
            f"--peer-key-file={p}/peer.key",
            "--peer-client-cert-auth=true",
            f"--peer-trusted-ca-file={p}/ca.crt",
            "--snapshot-count=10000",
            f"--heartbeat-interval={c.heartbeat_ms}",
            f"--election-timeout={c.election_ms}",
            f"--log-level={c.log_level}",
        ]


@dataclass(frozen=True)
class Health:
    leader: Member
    statuses: dict[str, MemberStatus]


class EtcdCluster:
    """N etcd members on their own network. Use as a context manager: always torn down.

    Lifecycle: `prepare()` (network, IPs, certificates) -> optionally fill data dirs (restore)
    -> `start()` (containers, then wait until healthy) -> `close()`.
    """

    def __init__(
        self,
        *,
        size: int,
        image: str,
        ca: CertAuthority,
        client_tls: ClientTLS,
        workdir: Path,
        run_id: str,
        name: str,
        token: str | None = None,
        election_ms: int = 1000,
        heartbeat_ms: int = 100,
        log_level: str = "info",
    ) -> None:
        if size < 1:
            raise ValueError(f"cluster size must be >= 1, got {size}")
        self.size = size
        self.image = image
        self.ca = ca
        self.client_tls = client_tls
        self.run_id = run_id
        self.name = name
        self.prefix = f"kubedrill-etcd-{run_id}-{name}"
        self.token = token or f"kubedrill-{run_id}-{name}"
        self.election_ms = election_ms
        self.heartbeat_ms = heartbeat_ms
        self.log_level = log_level
        self.home = workdir / name
        self.docker = docker_client()
        self.network_name = self.prefix
        self.subnet: ipaddress.IPv4Network | None = None
        self.members: list[Member] = []
        self._prepared = False

    def __repr__(self) -> str:
        return f"EtcdCluster({self.name}, size={self.size}, subnet={self.subnet})"

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"no member {name!r} in {self.name}; members: {[m.name for m in self.members]}")

    # -- lifecycle --------------------------------------------------------------------------

    def prepare(self) -> "EtcdCluster":
        """Create the network with a free /24, pick member IPs, issue their certificates."""
        if self._prepared:
            return self
        labels = labels_for(self.run_id, self.name)
        rng = random.Random()
        last_err: Exception | None = None
        for _ in range(30):
            # 172.28.0.0/14 lies inside Docker's default pools but far from the 172.17/172.18 ones
            # a fresh engine hands out first; overlap is detected by Docker and retried here.
            subnet = ipaddress.IPv4Network(f"172.{rng.randint(28, 31)}.{rng.randint(0, 255)}.0/24")
            try:
                self.docker.networks.create(
                    self.network_name,
                    driver="bridge",
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=str(subnet[1]))]),
                    labels=labels,
                    check_duplicate=True,
                )
                self.subnet = subnet
                break
            except docker.errors.APIError as exc:
                last_err = exc
                if "overlap" not in str(exc).lower():
                    raise
        else:
            raise RuntimeError(
                f"could not find a free /24 in 172.28.0.0/14 for network {self.network_name} after 30 tries "
                f"(last error: {last_err}). Remove stale networks: python -m kubedrill.etcd.sweep --all"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            name = f"m{i}"
            m = Member(self, name, str(self.subnet[10 + i]), self.home / name)
            m.home.mkdir(parents=True, exist_ok=True)
            self.ca.issue_member(m.pki_dir, name, m.ip)
            self.members.append(m)
        self._prepared = True
        return self

    @property
    def gateway_ip(self) -> str:
        """The host's address on this network: the source IP of every client request from the host."""
        assert self.subnet is not None
        return str(self.subnet[1])

    def start(self, initial_state: str = "new", wait: bool = True, timeout: float = 60.0) -> "EtcdCluster":
        """Start every member container; with wait, block until the cluster is healthy."""
        self.prepare()
        initial = self.initial_cluster
        for m in self.members:
            m.data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(m.data_dir, 0o700)  # etcd warns about anything wider, like kubeadm's 0700
            tc = DockerContainer(
                self.image,
                command=m.command(initial, initial_state),  # type: ignore[arg-type]
                name=m.container_name,
            )
            # Passed through to docker-py: testcontainers' own `network=` takes a Network object
            # and cannot set a fixed IP.
            tc.with_kwargs(
                labels=labels_for(self.run_id, self.name),
                network=self.network_name,
                networking_config={self.network_name: EndpointConfig("1.41", ipv4_address=m.ip)},
                hostname=m.name,
            )
            tc.with_volume_mapping(str(m.pki_dir), CONTAINER_PKI_DIR, "ro")
            tc.with_volume_mapping(str(m.data_dir), DATA_DIR, "rw")
            m.tc = tc
            tc.start()
        if wait:
            self.wait_healthy(timeout=timeout, give_up_on_exit=True)
        return self

    def close(self, keep_files: bool = False) -> None:
        """Remove containers and network; remove the work dir unless keep_files (kept on failure)."""
        errors: list[str] = []
        for c in self.docker.containers.list(all=True, filters={"label": f"{LABEL_CLUSTER}={self.name}"}):
            if c.labels.get(LABEL_RUN) != self.run_id:
                continue
            try:
                c.remove(force=True, v=True)
            except docker.errors.APIError as exc:
                errors.append(f"container {c.name}: {exc}")
        try:
            self.docker.networks.get(self.network_name).remove()
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            errors.append(f"network {self.network_name}: {exc}")
        if not keep_files:
            shutil.rmtree(self.home, ignore_errors=True)
        self.docker.close()
        if errors:
            raise RuntimeError(f"cleanup of {self.name} left resources behind: {errors}")

    def __enter__(self) -> "EtcdCluster":
        try:
            return self.start()
        except BaseException:
            self.close(keep_files=True)
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observation ------------------------------------------------------------------------

    def statuses(self, members: Iterable[Member] | None = None, timeout: float = 1.0) -> dict[str, MemberStatus | str]:
        """Each member's status, or the error string when it does not answer."""
        out: dict[str, MemberStatus | str] = {}
        for m in members if members is not None else self.members:
            try:
                out[m.name] = m.status(timeout=timeout)
            except EtcdError as exc:
                out[m.name] = f"error: {exc}"
        return out

    def member_by_id(self, member_id: int) -> Member | None:
        for m in self.members:
            if m.member_id == member_id:
                return m
        return None

    def leader(self, members: Iterable[Member] | None = None, timeout: float = 1.0) -> Member | None:
        """The leader a majority of the whole cluster agrees on, or None."""
        sts = [s for s in self.statuses(members, timeout).values() if isinstance(s, MemberStatus)]
        votes: dict[int, int] = {}
        for s in sts:
            if s.leader:
                votes[s.leader] = votes.get(s.leader, 0) + 1
        for lid, n in votes.items():
            if n >= self.quorum:
                return self.member_by_id(lid)
        return None

    def describe(self, members: Iterable[Member] | None = None) -> str:
        parts = []
        for name, s in self.statuses(members).items():
            if isinstance(s, MemberStatus):
                leader = self.member_by_id(s.leader)
                parts.append(f"{name}: leader={leader.name if leader else s.leader} term={s.raft_term} rev={s.revision}")
            else:
                parts.append(f"{name}: {s} [{self.member(name).state()}]")
        return "; ".join(parts)

    def health_once(self, members: list[Member] | None = None) -> Health | None:
        """One look: every given member answers, all agree on one leader, and each serves a
        linearizable read (which needs the leader's ReadIndex, i.e. a working quorum path)."""
        targets = members if members is not None else self.members
        sts = self.statuses(targets)
        good = {n: s for n, s in sts.items() if isinstance(s, MemberStatus)}
        if len(good) != len(targets):
            return None
        leaders = {s.leader for s in good.values()}
        if len(leaders) != 1 or 0 in leaders:
            return None
        leader = self.member_by_id(leaders.pop())
        if leader is None:
            return None
        for m in targets:
            with m.client(timeout=2.0) as c:
                c.get("kubedrill/health")
        return Health(leader, good)

    def wait_healthy(self, timeout: float = 30.0, members: list[Member] | None = None,
                     give_up_on_exit: bool = False) -> Health:
        """Block until health_once() succeeds; the timeout error shows each member's state and log tail.

        give_up_on_exit: fail at once when a member's container has exited (at first start nothing
        restarts it, so waiting out the timeout would only hide the member's own error message).
        """
        targets = members if members is not None else self.members

        def probe() -> Health | None:
            if give_up_on_exit:
                gone = [m for m in targets if m.state() in ("exited", "dead", "missing")]
                if gone:
                    raise GiveUp("; ".join(f"member {m.name} {m.state()}, log: {m.last_error()}" for m in gone))
            return self.health_once(targets)

        def seen() -> str:
            lines = self.describe(targets)
            down = [m for m in targets if m.state() != "running"]
            tails = " | ".join(f"{m.name} log: {m.last_error()}" for m in (down or targets[:1]))
            return f"{lines}. {tails}"

        return wait_for(
            f"etcd cluster {self.name}: {len(targets)} members answering over TLS, one leader, linearizable reads",
            probe, timeout, interval=0.2, seen=seen,
            hint=f"docker logs {targets[0].container_name}; check the certificates in {targets[0].pki_dir}",
        )

    def wait_converged(self, timeout: float = 30.0, members: list[Member] | None = None) -> tuple[int, int]:
        """Block until all members report the same `endpoint hashkv` at the leader's revision.

        This is how an operator proves a recovered member caught up: equal hashes of the whole
        MVCC keyspace at one revision. Returns (revision, hash).
        """
        targets = members if members is not None else self.members
        last: dict[str, str] = {}

        def probe() -> tuple[int, int] | None:
            health = self.health_once(targets)
            if health is None:
                last["health"] = self.describe(targets)
                return None
            rev = max(s.revision for s in health.statuses.values())
            hashes: dict[str, int] = {}
            for m in targets:
                try:
                    with m.client(timeout=3.0) as c:
                        h, _ = c.hashkv(rev)
                    hashes[m.name] = h
                    last[m.name] = str(h)
                except EtcdError as exc:
                    last[m.name] = f"error: {exc}"
                    return None
            if len(set(hashes.values())) == 1:
                return rev, next(iter(hashes.values()))
            return None

        return wait_for(
            f"equal hashkv on members {[m.name for m in targets]} of {self.name}",
            probe, timeout, interval=0.3, seen=lambda: f"{last}",
            hint="a member that stays different has diverged: compare `etcdctl endpoint hashkv` by hand",
        )


def sweep(run_id: str | None = None, dead_owners_only: bool = False, client: docker.DockerClient | None = None) -> list[str]:
    """Remove kubedrill etcd containers and networks: those of run_id, or all, or those whose
    owner process is gone (safe to call at session start, even with other runs active)."""
    dc = client or docker_client()
    removed: list[str] = []

    def selected(labels: dict[str, str]) -> bool:
        if run_id is not None and labels.get(LABEL_RUN) != run_id:
            return False
        if dead_owners_only:
            pid = labels.get(LABEL_OWNER, "")
            return not (pid.isdigit() and Path(f"/proc/{pid}").exists())
        return True

    for c in dc.containers.list(all=True, filters={"label": f"{LABEL_COMPONENT}={COMPONENT}"}):
        if selected(c.labels):
            c.remove(force=True, v=True)
            removed.append(f"container {c.name}")
    for n in dc.networks.list(filters={"label": f"{LABEL_COMPONENT}={COMPONENT}"}):
        if selected(n.attrs.get("Labels") or {}):
            try:
                n.remove()
                removed.append(f"network {n.name}")
            except docker.errors.APIError as exc:
                log.warning("could not remove network %s: %s", n.name, exc)
    if client is None:
        dc.close()
    return removed
