"""The one wait primitive: bounded polls whose timeout errors say what was expected, what was seen,
and what to try (testcontainers' wait strategies), plus the cluster-readiness waits built on it.

`until(what, probe, timeout)` polls `probe() -> (done, what I see)`; `wait_for` is the same loop for
probes that return a value (or None while not there yet). A probe that knows waiting cannot help
raises GiveUp, which ends the wait at once with the probe's reason.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.states import node_conditions, node_ready

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


class GiveUp(Exception):
    """Raised by a probe that knows waiting longer cannot help (e.g. the process exited)."""


def until(what: str, probe: Callable[[], tuple[bool, str]], timeout: float, interval: float = 2.0,
          hint: str = "", diagnose: Callable[[], str] | None = None) -> str:
    """Poll `probe` (-> (done, what I see)) until done or timeout; returns the last observation."""
    deadline = time.monotonic() + timeout
    seen = "nothing observed yet"
    while True:
        try:
            done, seen = probe()
        except GiveUp as exc:
            raise WaitTimeout(f"expected {what}, but gave up early: {exc}." + (f"\nTry: {hint}" if hint else "")) from exc
        except Exception as exc:  # noqa: BLE001 - a failing probe is an observation, not a crash
            done, seen = False, f"probe error: {exc!r}"
        if done:
            return seen
        if time.monotonic() >= deadline:
            extra = ""
            if diagnose is not None:
                try:
                    extra = "\n--- diagnostics ---\n" + diagnose()
                except Exception as exc:  # noqa: BLE001
                    extra = f"\n(diagnostics failed: {exc!r})"
            raise WaitTimeout(
                f"expected {what} within {timeout:.0f}s; timed out.\nLast seen: {seen}"
                + (f"\nTry: {hint}" if hint else "") + extra
            )
        time.sleep(interval)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.1,
             seen: Callable[[], str] | None = None, hint: str = "") -> T:
    """`until` for a probe that returns the awaited value, or None while it is not there yet."""
    got: list[T] = []

    def step() -> tuple[bool, str]:
        value = probe()
        if value is not None:
            got.append(value)
            return True, repr(value)
        return False, seen() if seen is not None else "no result yet"

    until(what, step, timeout, interval=interval, hint=hint)
    return got[-1]


def node_summary(cluster: Cluster) -> tuple[bool, str]:
    nodes = cluster.core().list_node().items
    parts, ready = [], 0
    for n in nodes:
        conds = node_conditions(n)
        ok = node_ready(n)
        ready += ok
        flags = "" if not n.spec.unschedulable else ",SchedulingDisabled"
        parts.append(f"{n.metadata.name}=Ready:{conds.get('Ready', '?')}{flags}")
    expected = len(cluster.all_nodes) or len(nodes)
    return (ready >= expected and len(nodes) >= expected), f"{ready}/{expected} Ready: " + ", ".join(parts)


def kube_system_summary(cluster: Cluster) -> tuple[bool, str]:
    pods = cluster.core().list_namespaced_pod("kube-system").items
    bad = []
    for p in pods:
        cs = p.status.container_statuses or []
        ready = bool(cs) and all(c.ready for c in cs)
        if p.status.phase != "Running" or not ready:
            reason = ""
            for c in cs:
                if c.state and c.state.waiting:
                    reason = f" ({c.state.waiting.reason}: {(c.state.waiting.message or '')[:120]})"
            bad.append(f"{p.metadata.name}={p.status.phase}{reason}")
    return (len(pods) > 0 and not bad), (f"{len(pods)} kube-system pods; not ready: {', '.join(bad)}" if bad else f"all {len(pods)} kube-system pods Running")


def diagnose(cluster: Cluster) -> str:
    lines = []
    try:
        lines.append(cluster.kubectl("get", "nodes", "-o", "wide", check=False, timeout=20).stdout)
        lines.append(cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False, timeout=20).stdout)
        ev = cluster.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False, timeout=20).stdout
        lines.append("\n".join(ev.splitlines()[-15:]))
    except Exception as exc:  # noqa: BLE001
        lines.append(f"(kubectl failed: {exc!r})")
    if cluster.provider == "kind":
        for node in cluster.all_nodes:
            p = cluster.node_exec(node, "journalctl", "-u", "kubelet", "--no-pager", "-n", "15", check=False, timeout=20)
            lines.append(f"--- kubelet log tail on {node} ---\n{p.stdout}{p.stderr}")
    return "\n".join(lines)


def wait_cluster_ready(cluster: Cluster, timeout: float = 240) -> None:
    hint = ("check the kubelet log tail below; on hosts without CAP_SYS_RESOURCE containerd needs "
            "restrict_oom_score_adj = true; a missing image shows as ImagePullBackOff")
    until("all nodes Ready", lambda: node_summary(cluster), timeout, hint=hint, diagnose=lambda: diagnose(cluster))
    until("kube-system pods Running and Ready", lambda: kube_system_summary(cluster), timeout, hint=hint,
          diagnose=lambda: diagnose(cluster))
