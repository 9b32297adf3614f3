"""Host ports that no two kubedrill users can be handed at once.

Why not "bind port 0, read it, close": the port is free only until the socket closes, and the
kernel hands the same ephemeral range to every other process -- kind picking its API server
port, Docker, a parallel run -- so two nodes or two clusters could get one port ("Bind for
127.0.0.1:57131 failed: port is already allocated"). Here ports come from a range below the
kernel's ephemeral range (which the kernel never hands out by itself), and each is reserved in a
registry shared by every kubedrill process on the host, under a file lock, with the owner's PID:
a reservation of a dead process is free again, so a killed run leaks nothing for long.

    ports = reserve("kubedrill-1a2b3c", 10)   # held until release("kubedrill-1a2b3c")
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from filelock import FileLock

from kubedrill.cluster.handle import pid_alive
from kubedrill.cluster.paths import cache_dir

DEFAULT_RANGE = (20000, 29999)  # below Linux's default ephemeral range (32768-60999) and NodePorts


class PortsExhausted(RuntimeError):
    """No free port is left in the range; the message says how many are held and by whom."""


def port_range() -> tuple[int, int]:
    """KUBEDRILL_HOST_PORTS=LOW-HIGH overrides the range (e.g. where 20000-29999 is in use)."""
    raw = os.environ.get("KUBEDRILL_HOST_PORTS", "")
    if not raw:
        return DEFAULT_RANGE
    try:
        lo, hi = (int(x) for x in raw.split("-", 1))
    except ValueError:
        raise ValueError(f"KUBEDRILL_HOST_PORTS={raw!r}: expected LOW-HIGH, e.g. 20000-29999") from None
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError(f"KUBEDRILL_HOST_PORTS={raw!r}: need 1024 <= LOW <= HIGH <= 65535")
    return lo, hi


def _paths() -> tuple[Path, FileLock]:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / "host-ports.json", FileLock(str(d / "host-ports.lock"))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def reserve(owner: str, count: int, pid: int | None = None) -> list[int]:
    """`count` ports for `owner`, each free to bind now and held by no live kubedrill process."""
    path, lock = _paths()
    lo, hi = port_range()
    me = os.getpid() if pid is None else pid
    with lock:
        held = {p: e for p, e in _read(path).items() if pid_alive(int(str(e.get("pid", 0))))}
        got: list[int] = []
        for port in range(lo, hi + 1):
            if len(got) == count:
                break
            if str(port) in held or not _bindable(port):
                continue
            got.append(port)
        if len(got) < count:
            owners = sorted({str(e.get("owner")) for e in held.values()})
            raise PortsExhausted(f"only {len(got)} of {count} host ports free in {lo}-{hi}; {len(held)} held by "
                                 f"{', '.join(owners[:5]) or 'nobody'} (set KUBEDRILL_HOST_PORTS=LOW-HIGH for another range)")
        held.update({str(p): {"owner": owner, "pid": me} for p in got})
        path.write_text(json.dumps(held))
    return got


def release(owner: str) -> None:
    """Free every port `owner` holds (safe to call twice)."""
    path, lock = _paths()
    with lock:
        held = _read(path)
        kept = {p: e for p, e in held.items() if e.get("owner") != owner}
        if kept != held:
            path.write_text(json.dumps(kept))


def held_by(owner: str) -> list[int]:
    path, _ = _paths()
    return sorted(int(p) for p, e in _read(path).items() if e.get("owner") == owner)
