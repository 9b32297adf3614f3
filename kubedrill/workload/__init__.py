"""The workload under test: a spec (user YAML or the bundled sample app) and its manifests.

    from kubedrill.workload import load_workload, sample_workload, render_manifests
    spec = sample_workload("graceful", replicas=3, grace_seconds=30, namespace="kd-t1")
    docs = render_manifests(spec)        # list[dict] for the kubernetes client
"""

from kubedrill.record.lifecycle import AppLifecycle, LifecycleEvent, TerminatedState, parse_lifecycle, terminated_state
from kubedrill.workload.manifests import ManifestError, parse_manifests
from kubedrill.workload.sample import (
    MODE_FAULTS,
    SAMPLE_MODES,
    build_sample_image,
    sample_image_tag,
    sample_workload,
)
from kubedrill.workload.spec import WorkloadSpec, WorkloadSpecError, load_workload, render_manifests

__all__ = [
    "AppLifecycle",
    "LifecycleEvent",
    "MODE_FAULTS",
    "ManifestError",
    "SAMPLE_MODES",
    "TerminatedState",
    "WorkloadSpec",
    "WorkloadSpecError",
    "build_sample_image",
    "load_workload",
    "parse_lifecycle",
    "parse_manifests",
    "render_manifests",
    "sample_image_tag",
    "sample_workload",
    "terminated_state",
]
