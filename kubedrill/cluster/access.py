"""What the cluster's credentials may do, asked before anything is created.

Why ask first: kubedrill puts every workload (and its in-cluster load) in a namespace of its own
and removes it after. Credentials that may not create namespaces would fail half-way through a
deploy, and credentials that may create but not delete them would leave namespaces behind. A
SelfSubjectAccessReview answers both without creating anything, so the error comes before the
first object and names the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from kubedrill.cluster.handle import Cluster


class AccessDenied(RuntimeError):
    """The credentials may not do what a drill needs; the message says what and how to fix it."""


@dataclass(frozen=True)
class Right:
    verb: str
    resource: str
    group: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f".{self.group}" if self.group else "")


# A drill's own namespace: created before the deploy, deleted after (also on failure and Ctrl-C).
NAMESPACE_RIGHTS: tuple[Right, ...] = (Right("create", "namespaces"), Right("delete", "namespaces"))

# (allowed, reason or denial text) for one right; the live one asks the API server.
Ask = Callable[[Right], tuple[bool, str]]


def ask_api(cluster: Cluster) -> Ask:
    """SelfSubjectAccessReview through the cluster's bounded client."""
    from kubernetes import client

    api = client.AuthorizationV1Api(cluster.api_client())

    def ask(right: Right) -> tuple[bool, str]:
        body: Any = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                     "spec": {"resourceAttributes": {"verb": right.verb, "resource": right.resource,
                                                     "group": right.group}}}
        status = api.create_self_subject_access_review(body, _request_timeout=30).status
        return bool(status.allowed), (status.reason or status.evaluation_error or "")

    return ask


def missing_rights(ask: Ask, rights: Sequence[Right] = NAMESPACE_RIGHTS) -> list[tuple[Right, str]]:
    """The rights of `rights` the credentials lack, each with the API server's reason (pure given `ask`)."""
    out: list[tuple[Right, str]] = []
    for right in rights:
        allowed, reason = ask(right)
        if not allowed:
            out.append((right, reason))
    return out


def denial_message(cluster_name: str, context: str | None, missing: Sequence[tuple[Right, str]]) -> str:
    """One error: what was asked, what the API server said, what to do."""
    what = "; ".join(f"{r}: denied" + (f" ({why})" if why else "") for r, why in missing)
    return (f"the credentials of context {context or cluster_name!r} may not {', '.join(str(r) for r, _ in missing)} "
            f"(SelfSubjectAccessReview: {what}). kubedrill deploys each workload into a namespace of its own and "
            "deletes it after; use a kubeconfig whose user may create and delete namespaces and the objects in them "
            "(for example bound to the cluster-admin ClusterRole). Nothing was created.")


def require_namespace_rights(cluster: Cluster, ask: Ask | None = None) -> None:
    """Raise AccessDenied unless the credentials may create and delete namespaces."""
    missing = missing_rights(ask or ask_api(cluster))
    if missing:
        raise AccessDenied(denial_message(cluster.name, cluster.context, missing))
