"""Ask one API server about every object: discovery, CRDs installed, server-side dry-run.

The order mirrors what `kubectl apply` of the whole set would meet on a fresh cluster:
1. CustomResourceDefinitions from the inputs are created for real (the custom objects need them)
   and waited for (Established, then visible in discovery);
2. prerequisites other objects' admission looks up (Namespace, PriorityClass, RuntimeClass) are
   dry-run first, then created for real, and every namespace an object names is created;
3. every other object is sent with `?dryRun=All&fieldValidation=Strict` (what `kubectl apply
   --dry-run=server` sends), as a create; one that exists already (e.g. Namespace default) as a
   server-side apply.
The REST mapping comes from the server's own discovery, never from a table: an apiVersion/kind the
server does not list is "not served", and the kinds it serves under other apiVersions are reported.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from kubedrill.check.preflight import DryRunResult, Manifest, ObjectRef
from kubedrill.preflight import PreflightError

FIELD_MANAGER = "kubedrill-preflight"
PREREQUISITE_KINDS = ("Namespace", "PriorityClass", "RuntimeClass")
_WARNING = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


@dataclass
class Answer:
    code: int
    body: Any
    warnings: list[str]


class Client:
    """A minimal REST client for the local API server (bearer token, no cert verification)."""

    def __init__(self, url: str, token: str, ctx: ssl.SSLContext | None, timeout: float = 30.0) -> None:
        self.url, self.token, self.ctx, self.timeout = url.rstrip("/"), token, ctx, timeout

    def request(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None,
                content_type: str = "application/json") -> Answer:
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path + q, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json", "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ctx) as r:
                raw, code, headers = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, code, headers = e.read(), e.code, e.headers
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        warnings = []
        for h in headers.get_all("Warning") or []:
            m = _WARNING.match(h)
            warnings.append(m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else h)
        return Answer(code, parsed, warnings)

    def get(self, path: str) -> Any:
        a = self.request("GET", path)
        if a.code != 200:
            raise PreflightError(f"GET {path} answered {a.code}: {status_message(a)}")
        return a.body


def status_message(a: Answer) -> str:
    """The server's reason, with field causes when the message does not already hold them."""
    b = a.body
    if isinstance(b, dict):
        msg = str(b.get("message") or b.get("reason") or b)
        causes = [c.get("message", "") for c in (b.get("details") or {}).get("causes") or [] if isinstance(c, dict)]
        extra = [c for c in causes if c and c not in msg]
        return msg + (" (" + "; ".join(extra) + ")" if extra else "")
    return str(b)[:500]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass
class Discovery:
    resources: dict[tuple[str, str, str], Resource] = field(default_factory=dict)  # (group, version, kind)
    groups: set[str] = field(default_factory=set)

    def lookup(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        return self.resources.get((group, version, kind))

    def served_as(self, kind: str, group: str) -> tuple[str, ...]:
        """apiVersions serving `kind`: the same group's first, then other groups."""
        hits = sorted({r.api_version for r in self.resources.values() if r.kind == kind},
                      key=lambda av: (av.rpartition("/")[0] != group, av))
        return tuple(hits)


def discover(client: Client) -> Discovery:
    d = Discovery()
    gvs: list[tuple[str, str]] = [("", v) for v in client.get("/api").get("versions", [])]
    for g in client.get("/apis").get("groups", []):
        d.groups.add(g["name"])
        gvs.extend((g["name"], v["version"]) for v in g.get("versions", []))
    d.groups.add("")
    for group, version in gvs:
        path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        a = client.request("GET", path)
        if a.code != 200:  # an aggregated API that is down: skip it, like kubectl does
            continue
        for r in a.body.get("resources", []):
            if "/" in r["name"]:
                continue
            d.resources[(group, version, r["kind"])] = Resource(group, version, r["kind"], r["name"],
                                                                bool(r.get("namespaced")))
    return d


def _path(res: Resource, namespace: str, name: str = "") -> str:
    base = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
    ns = f"/namespaces/{namespace}" if res.namespaced else ""
    return f"{base}{ns}/{res.plural}" + (f"/{name}" if name else "")


def _crd_names(m: Manifest) -> tuple[str, str, list[str]] | None:
    spec = m.obj.get("spec") or {}
    if not isinstance(spec, dict):
        return None
    kind = (spec.get("names") or {}).get("kind", "")
    group = spec.get("group", "")
    vs = [v.get("name", "") for v in spec.get("versions") or [] if isinstance(v, dict)]
    if spec.get("version"):
        vs.append(spec["version"])
    return group, kind, vs


def crd_kinds(manifests: Iterable[Manifest]) -> dict[tuple[str, str], ObjectRef]:
    """(group, kind) -> the CRD object that defines it, among the inputs."""
    out = {}
    for m in manifests:
        if m.ref.kind == "CustomResourceDefinition":
            n = _crd_names(m)
            if n:
                out[(n[0], n[1])] = m.ref
    return out


def builtin_group(group: str) -> bool:
    """Kubernetes' own API groups: the core group, dotless legacy groups (apps, extensions, policy,
    batch, autoscaling), and *.k8s.io (reserved for Kubernetes; CRD groups there need API approval)."""
    return group == "" or "." not in group or group.endswith(".k8s.io")


def unknown_kinds(manifests: Sequence[Manifest], disc: Discovery, crds: Mapping[tuple[str, str], ObjectRef]) -> list[str]:
    """Objects of a non-Kubernetes group that no server serves and no input CRD defines."""
    out = []
    for m in manifests:
        g = m.ref.group
        if builtin_group(g) or g in disc.groups or (g, m.ref.kind) in crds:
            continue
        if any(r.kind == m.ref.kind and r.group == g for r in disc.resources.values()):
            continue
        out.append(f"{m.ref.where}: {m.ref.kind} {m.ref.name} ({m.ref.api_version})")
    return out


def _clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as a create expects it: server-set metadata (from a live cluster's listing) dropped."""
    o = json.loads(json.dumps(obj, default=str))
    meta = o.get("metadata") or {}
    for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "selfLink", "generation",
              "deletionTimestamp"):
        meta.pop(k, None)
    o.pop("status", None)
    return o


def _ns_of(m: Manifest, res: Resource) -> str:
    return (m.ref.namespace or "default") if res.namespaced else ""


class Session:
    """One server, one pass over the inputs."""

    def __init__(self, client: Client, version: str) -> None:
        self.client = client
        self.version = version
        self.disc = Discovery()
        self.crd_results: dict[tuple[str, str], DryRunResult] = {}

    def _result(self, ref: ObjectRef, a: Answer) -> DryRunResult:
        if a.code in (200, 201):
            return DryRunResult(ref, self.version, "accepted", warnings=tuple(a.warnings), code=a.code)
        if a.code >= 500:  # the server failed (a webhook down, an internal error): it did not judge
            return DryRunResult(ref, self.version, "error", status_message(a), tuple(a.warnings), a.code)
        return DryRunResult(ref, self.version, "refused", status_message(a), tuple(a.warnings), a.code)

    def not_served(self, m: Manifest) -> DryRunResult:
        g = m.ref.group
        crd = self.crd_results.get((g, m.ref.kind))
        if crd is not None and crd.outcome != "accepted":
            why = (f"its CustomResourceDefinition ({crd.ref.where}) was refused by {self.version}, so "
                   f"{m.ref.api_version} {m.ref.kind} does not exist there")
        elif g and g not in self.disc.groups:
            why = (f"{self.version} serves no API group {g!r} (removed from Kubernetes, or provided by "
                   "CustomResourceDefinitions that are not among the inputs)")
        else:
            why = f"{self.version} does not serve {m.ref.api_version} {m.ref.kind}"
        return DryRunResult(m.ref, self.version, "refused", why, code=404, not_served=True,
                            served_as=self.disc.served_as(m.ref.kind, g))

    def send(self, m: Manifest, dry_run: bool = True) -> DryRunResult:
        res = self.disc.lookup(m.ref.api_version, m.ref.kind)
        if res is None:
            return self.not_served(m)
        body = _clean(m.obj)
        ns = _ns_of(m, res)
        params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        try:
            a = self.client.request("POST", _path(res, ns), body, params)
            name = (body.get("metadata") or {}).get("name")
            if a.code == 409 and name and (a.body or {}).get("reason") == "AlreadyExists":
                # Exists on the server (a namespace like `default`): what `kubectl apply` would do is apply.
                a2 = self.client.request("PATCH", _path(res, ns, name), body, {**params, "force": "true"},
                                         content_type="application/apply-patch+yaml")
                a = Answer(a2.code, a2.body, a.warnings + [w for w in a2.warnings if w not in a.warnings])
        except (OSError, TimeoutError) as exc:
            return DryRunResult(m.ref, self.version, "error", f"no answer: {exc}")
        return self._result(m.ref, a)

    def install_crds(self, manifests: Sequence[Manifest], timeout: float = 60.0) -> list[DryRunResult]:
        """Create the input CRDs for real and wait until each is Established; their results."""
        out = []
        created: list[tuple[Manifest, str]] = []
        for m in manifests:
            if m.ref.kind != "CustomResourceDefinition":
                continue
            r = self.send(m, dry_run=False)
            if r.outcome == "accepted" and r.code == 201:
                created.append((m, m.ref.name))
            n = _crd_names(m)
            if n:
                self.crd_results[(n[0], n[1])] = r
            out.append(r)
        deadline = time.monotonic() + timeout
        for m, name in created:
            while True:
                a = self.client.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conds = {c.get("type"): c for c in ((a.body or {}).get("status") or {}).get("conditions") or []}
                if conds.get("Established", {}).get("status") == "True":
                    break
                if conds.get("NamesAccepted", {}).get("status") == "False":
                    i = out.index(next(r for r in out if r.ref == m.ref))
                    out[i] = DryRunResult(m.ref, self.version, "refused",
                                          f"names not accepted: {conds['NamesAccepted'].get('message')}", code=201)
                    break
                if time.monotonic() > deadline:
                    raise PreflightError(f"CRD {name} was not Established on {self.version} within {timeout:.0f}s")
                time.sleep(0.2)
        if created:
            self._wait_discovery([m for m, _ in created], deadline)
        return out

    def _wait_discovery(self, crds: Sequence[Manifest], deadline: float) -> None:
        want: set[tuple[str, str, str]] = set()
        for m in crds:
            n = _crd_names(m)
            served = [str(v.get("name")) for v in (m.obj.get("spec") or {}).get("versions") or []
                      if isinstance(v, dict) and v.get("served", True)]
            if n:
                want.update((n[0], v, n[1]) for v in served)
        while True:
            self.disc = discover(self.client)
            if want <= set(self.disc.resources):
                return
            if time.monotonic() > deadline:
                return  # whatever is missing is reported per object as not served
            time.sleep(0.3)

    def check_all(self, manifests: Sequence[Manifest], allow_unknown: bool = False) -> list[DryRunResult]:
        """One DryRunResult per input object, in input order."""
        self.disc = discover(self.client)
        crds = crd_kinds(manifests)
        unknown = unknown_kinds(manifests, self.disc, crds)
        if unknown and not allow_unknown:
            raise PreflightError(
                f"{len(unknown)} object(s) of a kind that {self.version} does not serve and whose "
                "CustomResourceDefinition is not among the inputs (nor the live cluster):\n  " + "\n  ".join(unknown)
                + "\nAdd the CRD manifests to the inputs (or pass --kubeconfig of a cluster that has them), "
                  "or drop these objects")
        results: dict[int, DryRunResult] = {}
        crd_res = self.install_crds(manifests)
        it = iter(crd_res)
        for i, m in enumerate(manifests):
            if m.ref.kind == "CustomResourceDefinition":
                results[i] = next(it)
        # Prerequisites: dry-run, then create for real so that later objects' admission finds them.
        for i, m in enumerate(manifests):
            if m.ref.kind in PREREQUISITE_KINDS and i not in results:
                results[i] = self.send(m)
                if results[i].outcome == "accepted" and results[i].code == 201:  # 200: applied, exists already
                    self.send(m, dry_run=False)
        namespaces = set()
        for m in manifests:
            res = self.disc.lookup(m.ref.api_version, m.ref.kind)
            if res is not None and res.namespaced:
                namespaces.add(m.ref.namespace or "default")
        for ns in sorted(namespaces):
            a = self.client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                                   "metadata": {"name": ns}})
            if a.code not in (201, 409):
                raise PreflightError(f"could not create namespace {ns} on {self.version}: {status_message(a)}")
        for i, m in enumerate(manifests):
            if i not in results:
                results[i] = self.send(m)
        return [results[i] for i in range(len(manifests))]
