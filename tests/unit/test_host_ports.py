"""Host ports for kind clusters: reserved across processes, never handed out twice, and the kind
config renders exactly the reserved ones (including the API server's)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubedrill.cluster import kind, kindconfig, ports


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEDRILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KUBEDRILL_HOST_PORTS", "23100-23139")


def test_two_owners_never_share_a_port() -> None:
    a = ports.reserve("cluster-a", 10)
    b = ports.reserve("cluster-b", 10)
    assert len(set(a)) == 10 and len(set(b)) == 10 and not set(a) & set(b)
    assert all(23100 <= p <= 23139 for p in a + b)
    ports.release("cluster-a")
    c = ports.reserve("cluster-c", 10)
    assert not set(c) & set(b) and set(c) & set(a)  # a's ports are free again, b's still held


def test_a_port_in_use_by_another_process_is_skipped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 23100))
        s.listen()
        got = ports.reserve("x", 3)
    assert 23100 not in got


def test_a_dead_owners_ports_are_free_again() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held = ports.reserve("crashed-run", 40, pid=int(dead.stdout))
    assert len(held) == 40
    assert len(ports.reserve("next-run", 40)) == 40  # the dead process's reservation is reclaimed


def test_exhaustion_says_who_holds_the_ports() -> None:
    ports.reserve("greedy", 40)
    with pytest.raises(ports.PortsExhausted, match="held by greedy.*KUBEDRILL_HOST_PORTS"):
        ports.reserve("late", 1)


def test_bad_range_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEDRILL_HOST_PORTS", "30000")
    with pytest.raises(ValueError, match="expected LOW-HIGH"):
        ports.reserve("x", 1)


def test_render_uses_exactly_the_reserved_ports() -> None:
    need = kindconfig.host_ports_needed("three-node")
    assert need == 1 + 3 * len(kindconfig.DEFAULT_NODE_PORTS)
    held = ports.reserve("kubedrill-abc", need)
    r = kindconfig.render("three-node", "img:1", held)
    doc = yaml.safe_load(r.text)
    mapped = [m["hostPort"] for n in doc["nodes"] for m in n["extraPortMappings"]]
    assert doc["networking"]["apiServerPort"] == held[0]
    assert sorted(mapped + [held[0]]) == sorted(held)
    with pytest.raises(ValueError, match="need 10 host ports, got 3"):
        kindconfig.render("three-node", "img:1", held[:3])


def test_transient_create_failures_are_recognised() -> None:
    out = ("ERROR: failed to create cluster: command \"docker run ...\" failed with error: exit status 125\n"
           "docker: Error response from daemon: driver failed programming external connectivity on endpoint "
           "kubedrill-1-worker: Bind for 127.0.0.1:57131 failed: port is already allocated.")
    assert "port is already allocated" in (kind.transient_reason(out) or "")
    assert kind.transient_reason("ERROR: failed to create cluster: node(s) already exist for a cluster") is None
