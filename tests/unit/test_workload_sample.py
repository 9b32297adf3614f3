"""The bundled sample app's spec: rendered manifests per mode, its image tag, refused combinations."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from kubedrill.record.lifecycle import parse_lifecycle
from kubedrill.workload.sample import BUILD_SCRIPT, SAMPLE_MODES, sample_image_tag, sample_workload
from kubedrill.workload.spec import WorkloadSpecError, render_manifests


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("mode", SAMPLE_MODES)
def test_every_mode_renders_deployment_service_and_pdb(mode: str) -> None:
    spec = sample_workload(mode, replicas=3, grace_seconds=20, namespace="kd-x", image="kubedrill/sample-app:t")
    docs = by_kind(render_manifests(spec))
    assert set(docs) == {"Deployment", "Service", "PodDisruptionBudget"}
    dep = docs["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert dep["metadata"]["namespace"] == "kd-x" and dep["spec"]["replicas"] == 3
    assert pod["terminationGracePeriodSeconds"] == 20
    assert env["SHUTDOWN_MODE"] == mode and env["PRESTOP_SECONDS"] == "5"
    assert c["image"] == "kubedrill/sample-app:t" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    if mode == "no-prestop":
        assert "lifecycle" not in c and not spec.prestop
    else:
        assert c["lifecycle"]["preStop"]["exec"]["command"] == ["/app", "prestop"] and spec.prestop
    assert docs["Service"]["spec"]["ports"][0]["nodePort"] == 30080
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 2
    sel = docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert sel == dep["spec"]["selector"]["matchLabels"] == docs["Service"]["spec"]["selector"] == spec.selector


def test_defaults_and_spec_fields() -> None:
    spec = sample_workload()
    assert spec.images == (sample_image_tag(),)
    assert (spec.replicas, spec.grace_seconds, spec.node_port, spec.service, spec.shutdown_mode) == (
        3, 30, 30080, "kd-sample", "graceful")
    assert spec.slow_url_path(4) == "/slow?seconds=4"
    assert spec.extra["drain_seconds"] == 23  # 30 - 5 s preStop - 2 s margin


def test_node_port_can_be_left_to_kubernetes() -> None:
    docs = by_kind(render_manifests(sample_workload(node_port=None, image="x")))
    assert "nodePort" not in docs["Service"]["spec"]["ports"][0]


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"mode": "polite"}, "not one of"),
        ({"replicas": 1}, "blocks every eviction"),
        ({"grace_seconds": 5, "prestop_seconds": 5}, "would use the whole 5 s grace period"),
        ({"node_port": 8080}, "30000-32767"),
        ({"pull_policy": "Always"}, "no registry"),
    ],
)
def test_refused_combinations(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(WorkloadSpecError, match=needle):
        sample_workload(image="x", **kw)


def test_image_tag_matches_the_build_script() -> None:
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-tag"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == sample_image_tag()


TERMINATION_MESSAGE = (
    '{"pod":"kd-sample-7d9f-abcde","node":"kd-worker","mode":"graceful","events":['
    '{"event":"started","time":1795620730.2458985,"mono":844.058013777,"detail":"mode=graceful port=8080"},'
    '{"event":"prestop-start","time":1795620731.1998613,"mono":845.01197622,"detail":"sleep=1s"},'
    '{"event":"prestop-end","time":1795620732.203309,"mono":846.015424539},'
    '{"event":"sigterm","time":1795620732.2649484,"mono":846.077064322,"detail":"inflight=1"},'
    '{"event":"listener-closed","time":1795620732.2656064,"mono":846.077721176},'
    '{"event":"inflight-drained","time":1795620733.8483453,"mono":847.660461821},'
    '{"event":"exit","time":1795620733.849055,"mono":847.661169811,"detail":"clean shutdown","code":0}]}'
)


def test_lifecycle_from_a_termination_message() -> None:
    lc = parse_lifecycle(TERMINATION_MESSAGE)
    assert (lc.pod, lc.node, lc.mode, lc.exit_code) == ("kd-sample-7d9f-abcde", "kd-worker", "graceful", 0)
    mono = lc.times()
    assert mono["sigterm"] == pytest.approx(846.077064322) and list(mono)[0] == "started"
    wall = lc.times("wall", offset=-1795620000.0)
    assert wall["exit"] == pytest.approx(733.849055)
    assert lc.first("sigterm") is not None and lc.first("cleanup-start") is None


@pytest.mark.parametrize("text", ["", "not json", '{"events": 3}', '{"events": [{"event": "x"}]}'])
def test_lifecycle_errors_say_what_was_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="lifecycle"):
        parse_lifecycle(text)


def _round_trip(doc: dict[str, Any]) -> Any:
    """Through the kubernetes client's typed models and back: unknown or misspelled fields vanish."""
    from kubernetes.client import ApiClient

    types = {"Deployment": "V1Deployment", "Service": "V1Service", "PodDisruptionBudget": "V1PodDisruptionBudget"}
    api = ApiClient()
    return api.sanitize_for_serialization(api._ApiClient__deserialize(doc, types[doc["kind"]]))  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["graceful", "no-prestop"])
def test_manifests_use_only_fields_the_kubernetes_api_knows(mode: str) -> None:
    for doc in render_manifests(sample_workload(mode, image="x")):
        assert _round_trip(doc) == doc, f"{doc['kind']} has a field the Kubernetes API models do not know"
    typo = render_manifests(sample_workload(image="x"))[0]
    typo["spec"]["template"]["spec"]["terminationGracePeriod"] = 3
    assert _round_trip(typo) != typo  # the check has teeth


def test_terminated_state_from_raw_pod_status() -> None:
    from kubedrill.record.termination import TerminationRecord
    from kubedrill.record.lifecycle import terminated_state

    raw = {"exitCode": 0, "reason": "Completed", "finishedAt": "2026-11-25T15:32:13Z", "message": TERMINATION_MESSAGE}
    st = terminated_state(raw, wall0=1795620700.0, mono0=800.0)
    assert st.exit_code == 0 and st.reason == "Completed" and st.note == ""
    assert st.exit_at == pytest.approx(847.661169811)  # the app's own exit event, not finishedAt
    wall = terminated_state(raw, wall0=1795620700.0, mono0=800.0, clock="wall")
    assert wall.events["sigterm"] == pytest.approx(800.0 + 32.2649484)
    rec = TerminationRecord.from_events("p", 30, **st.as_kwargs(), deletion_at=845.0)
    assert rec.sigterm_at == pytest.approx(846.077064322)


def test_terminated_state_of_a_sigkilled_container_uses_finished_at() -> None:
    from datetime import datetime, timezone

    from kubedrill.record.lifecycle import terminated_state

    sigterm_only = TERMINATION_MESSAGE.split(',{"event":"listener-closed"')[0] + "]}"
    client_dict = {"exit_code": 137, "reason": "Error", "message": sigterm_only,
                   "finished_at": datetime(2026, 11, 25, 15, 32, 40, tzinfo=timezone.utc)}
    st = terminated_state(client_dict, wall0=1795620700.0, mono0=800.0)
    assert st.exit_code == 137 and "exit" not in st.events and "sigterm" in st.events
    finished = datetime(2026, 11, 25, 15, 32, 40, tzinfo=timezone.utc).timestamp()
    assert st.exit_at == pytest.approx(800.0 + finished + 0.5 - 1795620700.0)
    empty = terminated_state({"exitCode": 137, "finishedAt": "2026-11-25T15:32:40.123456789Z"}, wall0=0.0, mono0=0.0)
    assert empty.events == {} and "empty termination message" in empty.note
    assert empty.exit_at == pytest.approx(finished + 0.123456789 + 0.5)
