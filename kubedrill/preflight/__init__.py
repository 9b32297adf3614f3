"""Preflight: ask real API servers of the target version about the user's objects before an upgrade.

    inputs.py     manifests (files, directories, multi-document YAML, List) -> Manifest with file:line
    apiserver.py  build (clusters/images/build-apiserver.sh) and run kube-apiserver + etcd as processes,
                  envtest-style (no kubelet); bounded waits, cleanup on every exit path
    dryrun.py     discovery, CRD install, server-side dry-run of every object -> DryRunResult
    live.py       a live cluster: its objects, version skew vs the target, `kubectl drain --dry-run=server`
    run.py        the whole pass for several versions; `python -m kubedrill.preflight` is its CLI

The judgement (findings, verdicts, scoring) is pure and lives in kubedrill/check/preflight.py, which
also holds the record types (ObjectRef, Manifest, DryRunResult, Finding).
"""


class PreflightError(RuntimeError):
    """Bad input or an unusable target: one clear message, naming the file/line or version and the fix."""
