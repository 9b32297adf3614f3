"""Requests sent straight to one pod (kubedrill.load.direct) without a cluster: the port-forward's
lifecycle with a stand-in kubectl, and the health sampler against a local target."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kubedrill.load import LoadError, LocalTarget
from kubedrill.load.direct import DirectHealth, PortForward
from kubedrill.record import Recorder


class FakeKubectl:
    def __init__(self, script: Path) -> None:
        self.script = script

    def kubectl_argv(self, *args: str) -> list[str]:
        return [str(self.script), *args]


def fake(tmp_path: Path, body: str) -> FakeKubectl:
    script = tmp_path / "kubectl"
    script.write_text("#!/bin/sh\n" + body)
    os.chmod(script, 0o755)
    return FakeKubectl(script)


def test_port_forward_reads_the_local_port_and_keeps_kubectl_drained(tmp_path: Path) -> None:
    kubectl = fake(tmp_path, 'echo "Forwarding from 127.0.0.1:45678 -> 8080"\n'
                             'i=0; while [ $i -lt 4000 ]; do echo "Handling connection for 45678"; i=$((i+1)); done\n'
                             'echo "E1202 lost connection to pod" >&2\nsleep 30\n')
    t0 = time.monotonic()
    with PortForward(kubectl, "ns", "web-1", 8080) as pf:  # type: ignore[arg-type]
        assert pf.url == "http://127.0.0.1:45678"
        time.sleep(0.5)
        assert pf.output == ["E1202 lost connection to pod"]  # per-connection lines dropped, the pipe drained
    assert time.monotonic() - t0 < 10  # exit terminates kubectl


def test_port_forward_that_never_listens_says_what_kubectl_printed(tmp_path: Path) -> None:
    kubectl = fake(tmp_path, 'echo "error: unable to forward port because pod is not running" >&2\nexit 1\n')
    with pytest.raises(LoadError, match="did not start within 2 s .*pod is not running"):
        with PortForward(kubectl, "ns", "web-1", 8080, start_timeout=2):  # type: ignore[arg-type]
            pass


def test_direct_health_records_answers_and_refusals_for_its_pod() -> None:
    rec = Recorder()
    with LocalTarget() as t:
        with DirectHealth(t.url, "/", "web-1", recorder=rec, every_s=0.05) as health:
            time.sleep(0.3)
    ops = health.operations
    assert ops and all(o.result == "web-1" and o.outcome == "ok" for o in ops)
    with DirectHealth(t.url, "/", "web-1", recorder=rec, every_s=0.05, timeout_s=0.5) as gone:
        time.sleep(0.2)
    assert gone.operations and all(o.outcome == "fail" for o in gone.operations)
