"""Meta: a run cut short by a real signal heals what it broke where the cluster outlives it, and the
next run sweeps what a SIGKILLed run left.

A child `pytest` run is started against the session's three-node kind cluster, attached by
kubeconfig and context (the cluster outlives the child, as a kept or staging cluster does), and
signalled at the moment its progress lines say the cluster is broken:

  drain/sigint       a worker cordoned, its pods being evicted ("drain: kubectl drain ...");
                     SIGINT to the child's process group, as Ctrl-C in a terminal sends it
  reboot/sigterm     a worker's node container stopped, the machine "being upgraded" ("reboot: node
                     ... is down");
                     SIGTERM to the runner alone, as `kill` or a CI cancel sends it
  freeze/sigterm     a worker's node container paused, a hung node ("disruption applied: node-freeze")
  restore/sigint     the API server's static-pod manifest moved away, etcd being stopped for the
                     restore ("etcd-restore ...: stop-etcd ...")
  partition/sigint   a standalone etcd cluster cut in two by iptables DROP rules in the members'
                     network namespaces ("disruption applied: etcd-partition"); the run deletes
                     the etcd cluster it made, so nothing of it may be left
  upgrade/sigint     mid-upgrade: the control plane upgraded, the first worker drained and its
                     `kubeadm upgrade node` running ("<worker>: kubeadm-node ..."), on a cluster at
                     the upgrade's source version made by this test (not in CI's kind segment: it
                     upgrades a control plane first, ~10 min; `tox -e meta -- tests/meta/test_interrupt_meta.py`)
  namespace/sigkill  the runner killed with its workload deployed; the next run on the cluster
                     removes the namespace (labelled with the dead owner)
  kind/sigkill       the runner killed right after creating its own kind cluster; the next
                     run's sweeper deletes that cluster
  etcd/sigkill       the runner killed with its standalone etcd containers running; the next
                     run's sweeper removes the containers and networks

After each child on the kind cluster: no node cordoned, every node container running and not paused, no manifest left
in the moved-away directory, the API server ready and every node Ready, no kubedrill namespace
left that is not already being deleted; and for SIGINT / SIGTERM the child's results.json says the
run was interrupted, where, and that the disruption was healed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.cluster import VersionedClusters
from kubedrill.cluster import kubeadm_etcd as ke
from kubedrill.cluster.handle import Cluster
from kubedrill.cluster.namespaces import PART_OF
from kubedrill.cluster.paths import versions
from kubedrill.cluster.waits import until
from kubedrill.report.meta import REPO_ROOT

pytestmark = [pytest.mark.meta, pytest.mark.needs_docker]

REACH_S = 600  # from start to the signalled point: attach, images, deploy, load, the disruption
EXIT_S = 600  # from the signal to the child's exit: heal, teardown, report


def _sigint_as_in_a_terminal() -> None:
    """Give the child SIGINT's default disposition, as a shell in a terminal does. A runner started
    with `&` from a non-interactive shell (as CI scripts often are) inherits SIGINT *ignored*, and
    Python then never turns it into KeyboardInterrupt: the Ctrl-C cases would signal a run that
    cannot hear it (seen in a cold `.ci/run` started in the background)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A kubedrill pytest run in its own process group, its output (stdout and stderr) read line by line."""

    def __init__(self, args: list[str], reports: Path) -> None:
        reports.mkdir(parents=True, exist_ok=True)
        self.reports = reports
        self.log = reports / "child.log"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--reports-dir", str(reports), *args],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True, preexec_fn=_sigint_as_in_a_terminal)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w") as out:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                out.write(line)
                out.flush()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def wait_for(self, text: str, timeout: float = REACH_S) -> str:
        """The first output line containing `text`; fails if the child exits or time runs out first."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            hit = next((ln for ln in self.lines if text in ln), None)
            if hit is not None:
                return hit
            if self.proc.poll() is not None:
                time.sleep(0.5)  # let the reader drain
                pytest.fail(f"the child run exited {self.proc.returncode} before printing {text!r}; "
                            f"its output ends:\n{self.tail()}")
            time.sleep(0.2)
        pytest.fail(f"the child run did not print {text!r} within {timeout:.0f}s; its output ends:\n{self.tail()}")

    def wait_for_name(self, marker: str, timeout: float = REACH_S) -> str:
        """The word right after `marker` in the first line containing it (a node, a namespace, a cluster)."""
        return self.wait_for(marker, timeout).split(marker, 1)[1].split(" ", 1)[0]

    def signal(self, sig: signal.Signals, group: bool) -> None:
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = EXIT_S) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the child run did not exit within {timeout:.0f}s of the signal; its output ends:\n"
                        f"{self.tail()}")
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def results(self) -> dict:
        path = self.reports / "latest" / "results.json"
        assert path.exists(), f"the interrupted run wrote no {path}; its output ends:\n{self.tail()}"
        return json.loads(path.read_text())


class Children(list):
    """The children of one test; `start` makes one and registers it for the teardown."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.tmp_path = tmp_path

    def start(self, name: str, *args: str) -> Child:
        child = Child(list(args), self.tmp_path / name)
        self.append(child)
        return child


@pytest.fixture
def child_runs(tmp_path: Path) -> Iterator[Children]:
    """Every child started by a test. A child still running at teardown (the test failed on the
    way) is killed with its group, and the kind clusters and etcd containers it may have made are
    swept as the next run would (the session's own cluster, and all in it, is deleted at its end)."""
    children = Children(tmp_path)
    yield children
    killed = [c for c in children if c.proc.poll() is None]
    for c in killed:
        c.kill()
    if killed:
        from kubedrill.cluster import kind
        from kubedrill.etcd.cluster import sweep

        kind.sweep()
        sweep(dead_owners_only=True)


def _attached(cluster: Cluster) -> list[str]:
    ctx = cluster.context or f"kind-{cluster.name}"
    return ["--kubeconfig", str(cluster.kubeconfig), "--context", ctx, "--allow-disruptive-on", ctx]


def _started(node: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", node], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def _container_states(names: list[str]) -> dict[str, str]:
    out = {}
    for n in names:
        p = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} paused={{.State.Paused}}", n],
                           capture_output=True, text=True, timeout=30, check=False)
        out[n] = p.stdout.strip() or f"missing ({p.stderr.strip()[:100]})"
    return out


def broken_now(cluster: Cluster) -> list[str]:
    """What an interrupted run must never leave: each item names the node or file."""
    problems = []
    for n in cluster.core().list_node(_request_timeout=15).items:
        if n.spec.unschedulable:
            problems.append(f"node {n.metadata.name} is cordoned")
    for name, state in _container_states(cluster.all_nodes).items():
        if state != "running paused=false":
            problems.append(f"node container {name} is {state}")
    for cp in cluster.control_planes:
        off = cluster.node_exec(cp, "sh", "-c", f"ls {ke.MANIFESTS_OFF} 2>/dev/null", check=False, timeout=30).stdout.split()
        if [f for f in off if f.endswith(".yaml")]:
            problems.append(f"{cp}: manifests left moved away in {ke.MANIFESTS_OFF}: {off}")
        on = cluster.node_exec(cp, "ls", ke.MANIFESTS, timeout=30).stdout.split()
        for need in ("etcd.yaml", "kube-apiserver.yaml"):
            if need not in on:
                problems.append(f"{cp}: {ke.MANIFESTS}/{need} is missing")
    return problems


def settled(cluster: Cluster) -> tuple[bool, str]:
    """API server ready, every node Ready, no kubedrill namespace that is not being deleted."""
    try:
        nodes = cluster.core().list_node(_request_timeout=10).items
        namespaces = cluster.core().list_namespace(label_selector=f"{PART_OF}=kubedrill", _request_timeout=10).items
    except Exception as exc:  # noqa: BLE001 - the API server may still be coming back
        return False, f"API server not answering: {type(exc).__name__}"
    not_ready = [n.metadata.name for n in nodes
                 if not any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))]
    left = [ns.metadata.name for ns in namespaces if ns.metadata.deletion_timestamp is None]
    return not not_ready and not left, f"nodes not Ready: {not_ready}; kubedrill namespaces left: {left}"


def assert_healed(cluster: Cluster, child: Child, case: str) -> None:
    # The API server first: after a restore's heal it restarts, and answers 403 until its RBAC
    # caches are filled. Nothing broken_now() looks for mends itself while this waits.
    until(f"{case}: the cluster to be settled after the interrupted run", lambda: settled(cluster), timeout=300,
          interval=3, hint=f"the child's log: {child.log}")
    problems = broken_now(cluster)
    assert not problems, f"{case}: the interrupted run left the cluster broken: {problems}\nchild output ends:\n" \
                         f"{child.tail()}"


def assert_reported(child: Child, code: int, disruption: str) -> None:
    assert code != 0, f"an interrupted run must not exit 0; its output ends:\n{child.tail()}"
    text = json.dumps(child.results())
    assert "run interrupted" in text, f"results.json does not say the run was interrupted:\n{text[:2000]}"
    assert f"{disruption}" in text and "healed" in text, (
        f"results.json does not name the cut-short {disruption} and its heal:\n{text[:3000]}")
    assert "the heal FAILED" not in text, f"a heal failed: {text[:3000]}"


def cut_short(cluster: Cluster | None, child: Child, sig: signal.Signals, group: bool, disruption: str,
              case: str) -> None:
    """Send the signal, then require the child's report to name the cut-short disruption and its heal,
    and (for a kind cluster that outlives the child) the cluster to be whole again."""
    child.signal(sig, group=group)
    assert_reported(child, child.finish(), disruption)
    if cluster is not None:
        assert_healed(cluster, child, case)


def test_drain_cut_by_ctrl_c_uncordons(cluster: Cluster, child_runs: Children, tmp_path: Path) -> None:
    child = child_runs.start("drain",
                              "suites/drain/test_drain.py::test_node_maintenance[sample-graceful/drain]", *_attached(cluster))
    node = child.wait_for_name("drain: kubectl drain ")
    # kubectl cordons first, then evicts (the sample app takes ~13 s to leave): signal in between.
    until(f"kubectl drain to cordon {node}", lambda: (bool(cluster.core().read_node(node).spec.unschedulable),
                                                      "not cordoned yet"), timeout=60, interval=0.2)
    cut_short(cluster, child, signal.SIGINT, True, "drain of", "drain/sigint")


def test_reboot_cut_by_sigterm_starts_the_node_again(cluster: Cluster, child_runs: Children,
                                                     tmp_path: Path) -> None:
    child = child_runs.start("reboot",
                              "suites/drain/test_drain.py::test_node_maintenance[sample-graceful/reboot]", *_attached(cluster))
    node = child.wait_for_name("reboot: stopping node ")
    started = _started(node)
    child.wait_for(f"reboot: node {node} is down")
    state = _container_states([node])[node]
    assert state.startswith("exited"), f"node container {node} should be stopped when the signal is sent: {state}"
    cut_short(cluster, child, signal.SIGTERM, False, "reboot of", "reboot/sigterm")
    assert _started(node) != started, f"node container {node} never restarted: the case proved nothing"


def test_node_freeze_cut_by_sigterm_thaws_the_node(cluster: Cluster, child_runs: Children, tmp_path: Path) -> None:
    child = child_runs.start("freeze",
                              "suites/node_loss/test_node_loss.py::test_node_loss[node-freeze/deployment-short-toleration]", *_attached(cluster))
    node = child.wait_for_name("disruption applied: node-freeze of ")
    state = _container_states([node])[node]
    assert state == "paused paused=true", f"node container {node} should be paused when the signal is sent: {state}"
    cut_short(cluster, child, signal.SIGTERM, False, "node-freeze of", "node-freeze/sigterm")


def test_restore_cut_by_ctrl_c_puts_the_manifests_back(cluster: Cluster, child_runs: Children,
                                                       tmp_path: Path) -> None:
    child = child_runs.start("restore",
                              "suites/cluster_etcd/test_backup_restore.py::test_restore_runs_as_the_runbook_says", *_attached(cluster))
    child.wait_for(": stop-etcd ...")  # the API servers' manifests are moved away by now
    cp = cluster.control_planes[0]
    off = cluster.node_exec(cp, "ls", ke.MANIFESTS_OFF, check=False, timeout=30).stdout.split()
    assert "kube-apiserver.yaml" in off, (
        f"the API server's manifest should be moved away when the signal is sent, {ke.MANIFESTS_OFF} holds {off}: "
        "the case would prove nothing")
    cut_short(cluster, child, signal.SIGINT, True, "etcd-restore", "restore/sigint")


def test_killed_run_namespace_is_swept_by_the_next_run(cluster: Cluster, child_runs: Children,
                                                       tmp_path: Path) -> None:
    child = child_runs.start("killed",
                              "suites/smoke/test_smoke.py::test_app_answers_through_service_from_host", *_attached(cluster))
    line = child.wait_for("smoke: Deployment ")
    ns = line.split("Deployment ", 1)[1].split("/", 1)[0]
    child.signal(signal.SIGKILL, group=True)
    child.finish(60)
    assert cluster.core().read_namespace(ns).metadata.deletion_timestamp is None, (
        f"namespace {ns} should still be there after SIGKILL: the case would prove nothing")
    nxt = child_runs.start("next", "suites/smoke/test_smoke.py::test_all_nodes_ready", *_attached(cluster))
    code = nxt.finish()
    assert code == 0, f"the next run failed ({code}):\n{nxt.tail()}"
    assert any("left by kubedrill runs that were killed" in ln and ns in ln for ln in nxt.lines), (
        f"the next run should say it removed {ns}:\n{nxt.tail()}")
    assert_healed(cluster, nxt, "namespace/sigkill")


def test_killed_run_kind_cluster_is_swept(child_runs: Children, tmp_path: Path) -> None:
    from kubedrill.cluster import kind

    child = child_runs.start("kind", "suites/smoke/test_smoke.py::test_all_nodes_ready", "--cluster-config", "single")
    name = child.wait_for_name("creating kind cluster ")
    child.wait_for(f"cluster {name} created")
    child.signal(signal.SIGKILL, group=True)
    child.finish(60)
    assert name in kind.list_clusters(), f"{name} should outlive the killed run: the case would prove nothing"
    swept = kind.sweep()
    assert name in swept, f"the sweeper did not take {name}; it took {swept}"
    left = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=io.x-k8s.kind.cluster={name}"],
                          capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert not left, f"containers of {name} are left: {left}"


def test_killed_run_etcd_containers_are_swept(child_runs: Children, tmp_path: Path) -> None:
    import docker

    from kubedrill.etcd.cluster import COMPONENT, LABEL_COMPONENT, LABEL_OWNER, sweep

    child = child_runs.start("etcd", "suites/etcd/test_snapshot.py")
    dc = docker.from_env()
    owner = {"label": [f"{LABEL_COMPONENT}={COMPONENT}", f"{LABEL_OWNER}={child.proc.pid}"]}

    def running() -> tuple[bool, str]:
        if child.proc.poll() is not None:
            pytest.fail(f"the etcd run exited {child.proc.returncode} before starting a member:\n{child.tail()}")
        got = dc.containers.list(filters={**owner, "status": "running"})
        return bool(got), f"{len(got)} running etcd container(s) of pid {child.proc.pid}"

    until("the child's etcd members to run", running, timeout=REACH_S, interval=0.5)
    child.signal(signal.SIGKILL, group=True)
    child.finish(60)
    assert dc.containers.list(all=True, filters=owner), "the killed run's containers should be left: nothing to sweep"
    sweep(dead_owners_only=True)
    assert not dc.containers.list(all=True, filters=owner), "the sweeper left the killed run's etcd containers"
    assert not dc.networks.list(filters={"label": owner["label"]}), "the sweeper left the killed run's networks"


def test_etcd_partition_cut_by_ctrl_c_heals_and_removes_the_cluster(child_runs: Children, tmp_path: Path) -> None:
    import docker

    from kubedrill.disrupt.etcd_faults import CHAIN_OUT, _ns_iptables
    from kubedrill.etcd.cluster import COMPONENT, LABEL_COMPONENT, LABEL_OWNER

    child = child_runs.start("partition", "suites/etcd/test_partition.py::test_partition[size-3/partition-2-1]")
    child.wait_for("disruption applied: etcd-partition of ")
    dc = docker.from_env()
    owner = {"label": [f"{LABEL_COMPONENT}={COMPONENT}", f"{LABEL_OWNER}={child.proc.pid}"]}
    members = dc.containers.list(filters={**owner, "status": "running"})
    cut = [m.name for m in members if _ns_iptables(int(m.attrs["State"]["Pid"]), "-S", CHAIN_OUT).returncode == 0]
    assert cut, (f"no member of the child's etcd cluster ({[m.name for m in members]}) has the {CHAIN_OUT} "
                 "chain when the signal is sent: the case would prove nothing")
    cut_short(None, child, signal.SIGINT, True, "etcd-partition of", "partition/sigint")
    left = [c.name for c in dc.containers.list(all=True, filters=owner)]
    assert not left, f"the interrupted run left its etcd containers: {left}\nits output ends:\n{child.tail()}"
    nets = [n.name for n in dc.networks.list(filters={"label": owner["label"]})]
    assert not nets, f"the interrupted run left its etcd networks: {nets}"


UPGRADE_FROM = versions()["K8S_UPGRADE_FROM"]


@pytest.fixture
def upgrade_source_cluster(versioned_cluster_factory: VersionedClusters) -> Iterator[Cluster]:
    """A three-node kind cluster at the upgrade's source version, made here so that it outlives the child."""
    deferred = os.environ.get("KUBEDRILL_DEFER_UPGRADE", "")
    if deferred not in ("", "0"):
        pytest.skip(f"DEFERRED by KUBEDRILL_DEFER_UPGRADE ({deferred}): the case needs the {UPGRADE_FROM} node image")
    cluster = versioned_cluster_factory("three-node", UPGRADE_FROM, "interrupt-upgrade")
    yield cluster
    versioned_cluster_factory.discard(cluster)


def test_upgrade_cut_by_ctrl_c_mid_worker_uncordons(upgrade_source_cluster: Cluster, child_runs: Children,
                                                    tmp_path: Path) -> None:
    cluster = upgrade_source_cluster
    child = child_runs.start("upgrade", "suites/upgrade/test_upgrade.py::test_never_more_than_one_node_out",
                             *_attached(cluster))
    line = child.wait_for(": kubeadm-node ...", timeout=REACH_S + 900)  # the control plane is upgraded first
    node = line.split("]", 1)[-1].strip().split(":", 1)[0]  # "[kubedrill  331.3s]   <node>: kubeadm-node ..."
    assert node in cluster.workers, f"expected a worker's kubeadm-node step, read node {node!r} from {line!r}"
    assert cluster.core().read_node(node).spec.unschedulable, (
        f"{node} should be cordoned (drained) when the signal is sent: the case would prove nothing")
    cut_short(cluster, child, signal.SIGINT, True, f"upgrade-node/{node}", "upgrade/sigint")
