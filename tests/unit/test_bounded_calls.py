"""Every external call is bounded: a hung API server or a hung command becomes an error that says
what hung, never a stalled run.

Two parts: the API client kubedrill builds gives every request a timeout (checked against a real
socket that accepts and never answers), and a source contract: every subprocess call in the engine
passes a timeout, except the few long-running processes listed with the bound they have instead.
"""

from __future__ import annotations

import ast
import socket
import threading
import time
from pathlib import Path

import pytest

from kubedrill.cluster import handle

ROOT = Path(__file__).resolve().parents[2]

# Processes that run for long by design, each with the bound it has instead of a timeout.
LONG_RUNNING = {
    ("kubedrill/load/runner.py", "Popen"): "locust: --run-time and max requests bound it; stop() terminates, then kills",
    ("kubedrill/cluster/kind.py", "Popen"): "kind create: proc.wait(timeout=...) bounds it; killed on any error",
    ("kubedrill/cluster/setup.py", "Popen"): "build scripts: progress every 30 s, bounded by the build's own steps",
    ("kubedrill/preflight/apiserver.py", "Popen"): "the test API server and etcd: terminated, then killed, on exit",
    ("kubedrill/load/direct.py", "Popen"): "kubectl port-forward: a context manager; exit terminates, then kills",
    ("kubedrill/observe/runtime.py", "Popen"): "ctr events on a kind node: `timeout` on the node; stop() terminates, "
                                               "then kills",
    ("kubedrill/cli.py", "run"): "the pytest session `kubedrill run` hands the terminal to (Ctrl-C ends it)",
}


def _silent_server() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    return srv, srv.getsockname()[1]


def test_an_api_call_to_a_hung_server_times_out_and_names_the_request(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    srv, port = _silent_server()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])  # accept, then never answer
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: hung, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: hung, context: {{cluster: hung, user: u}}}}]
current-context: hung
""")
    monkeypatch.setattr(handle, "API_TIMEOUT_S", (1.0, 1.0))
    c = handle.Cluster(name="hung", kubeconfig=kubeconfig, provider="generic", context="hung")
    t0 = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"did not answer GET /api/v1/nodes within"):
            c.core().list_node()
    finally:
        stop.set()
        t.join(2)
        for s in held:
            s.close()
        srv.close()
    assert time.monotonic() - t0 < 20


def unbounded_calls(source: str, rel: str) -> list[int]:
    """Lines of subprocess calls without timeout= that LONG_RUNNING does not excuse."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "subprocess"):
            continue
        attr = node.func.attr
        if attr not in ("run", "check_output", "check_call", "call", "Popen") or (rel, attr) in LONG_RUNNING:
            continue
        if attr == "Popen" or not any(k.arg == "timeout" for k in node.keywords):
            bad.append(node.lineno)
    return bad


def test_every_subprocess_call_in_the_engine_is_bounded() -> None:
    bad = {rel: lines for p in sorted((ROOT / "kubedrill").rglob("*.py"))
           if (lines := unbounded_calls(p.read_text(), rel := str(p.relative_to(ROOT))))}
    assert not bad, ("subprocess calls without timeout= (or an unlisted Popen; add it to LONG_RUNNING with the "
                     f"bound it has instead): {bad}")


def test_the_contract_sees_an_unbounded_call() -> None:
    planted = "import subprocess\nsubprocess.run(['docker', 'ps'])\nsubprocess.Popen(['sleep', '9'])\n"
    assert unbounded_calls(planted, "kubedrill/cluster/x.py") == [2, 3]
    assert unbounded_calls("import subprocess\nsubprocess.run(['a'], timeout=5)\n", "kubedrill/x.py") == []
