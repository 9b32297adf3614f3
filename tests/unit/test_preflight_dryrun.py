"""The dry-run session against a fake API server (http, in a thread): the order of requests, the
dry-run parameters, apply for objects that exist, CRDs installed for real and waited for, namespaces
created, answers turned into DryRunResults. The real servers are exercised by suites/preflight."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from kubedrill.check.preflight import Manifest, ObjectRef
from kubedrill.preflight import PreflightError
from kubedrill.preflight.dryrun import Client, Session

RES = {
    "/api/v1": [("pods", "Pod", True), ("namespaces", "Namespace", False), ("services", "Service", True)],
    "/apis/apps/v1": [("deployments", "Deployment", True)],
    "/apis/networking.k8s.io/v1": [("ingresses", "Ingress", True)],
    "/apis/apiextensions.k8s.io/v1": [("customresourcedefinitions", "CustomResourceDefinition", False)],
}
CRD_RES = {"/apis/acme.io/v1": [("widgets", "Widget", True)]}


class Fake:
    def __init__(self) -> None:
        self.log: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.namespaces = {"default"}
        self.crds: dict[str, int] = {}  # name -> GETs until Established

    def resources(self) -> dict[str, list[tuple[str, str, bool]]]:
        return {**RES, **(CRD_RES if self.crds else {})}


@pytest.fixture
def fake() -> Iterator[tuple[Fake, Client]]:
    state = Fake()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, code: int, body: Any, warnings: tuple[str, ...] = ()) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            for w in warnings:
                self.send_header("Warning", f'299 - "{w}"')
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            u = urlparse(self.path)
            state.log.append(("GET", u.path, parse_qs(u.query), None))
            res = state.resources()
            if u.path == "/api":
                return self._send(200, {"versions": ["v1"]})
            if u.path == "/apis":
                groups = sorted({p.split("/")[2] for p in res if p.startswith("/apis/")})
                return self._send(200, {"groups": [{"name": g, "versions": [{"version": "v1"}]} for g in groups]})
            if u.path in res:
                return self._send(200, {"resources": [{"name": n, "kind": k, "namespaced": ns} for n, k, ns in res[u.path]]
                                        + [{"name": "pods/status", "kind": "Pod", "namespaced": True}]})
            if u.path.startswith("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"):
                name = u.path.rsplit("/", 1)[1]
                state.crds[name] -= 1
                status = "True" if state.crds[name] <= 0 else "False"
                return self._send(200, {"status": {"conditions": [{"type": "Established", "status": status}]}})
            return self._send(404, {"message": "not found"})

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_POST(self) -> None:
            u = urlparse(self.path)
            q = parse_qs(u.query)
            body = self._body()
            state.log.append(("POST", u.path, q, body))
            name = body["metadata"]["name"]
            if u.path == "/api/v1/namespaces":
                if name in state.namespaces:
                    return self._send(409, {"reason": "AlreadyExists", "message": f"namespaces \"{name}\" already exists"})
                if "dryRun" not in q:
                    state.namespaces.add(name)
                return self._send(201, body)
            if "/namespaces/" in u.path and u.path.split("/namespaces/")[1].split("/")[0] not in state.namespaces:
                return self._send(404, {"message": "namespace not found"})
            if u.path.endswith("/customresourcedefinitions") and "dryRun" not in q:
                state.crds[name] = 2
            if name == "invalid":
                return self._send(422, {"message": "Service \"invalid\" is invalid", "details": {"causes": [
                    {"message": "spec.ports[0].port: Invalid value: 70000"}]}})
            if name == "flaky":
                return self._send(503, {"message": "webhook unavailable"})
            warn = ("spec.nodeSelector[beta.kubernetes.io/os]: deprecated",) if name == "warned" else ()
            return self._send(201, body, warn)

        def do_PATCH(self) -> None:
            u = urlparse(self.path)
            state.log.append(("PATCH", u.path, parse_qs(u.query), self._body()))
            return self._send(200, {}, ("applied",))

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield state, Client(f"http://127.0.0.1:{srv.server_address[1]}", "tok", None, timeout=5)
    finally:
        srv.shutdown()


def m(api: str, kind: str, name: str, ns: str = "", line: int = 1, **extra: Any) -> Manifest:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return Manifest(ObjectRef(api, kind, ns, name, "in.yaml", line), {"apiVersion": api, "kind": kind, "metadata": meta, **extra})


CRD = m("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.acme.io",
        spec={"group": "acme.io", "names": {"kind": "Widget", "plural": "widgets"},
              "versions": [{"name": "v1", "served": True, "storage": True}]})


def test_a_session_installs_crds_creates_namespaces_and_dry_runs_the_rest(fake: tuple[Fake, Client]) -> None:
    state, client = fake
    objs = [m("acme.io/v1", "Widget", "w", "shop"), m("apps/v1", "Deployment", "warned", "shop"),
            m("v1", "Service", "invalid", "shop"), m("extensions/v1beta1", "Ingress", "old", "shop"),
            m("v1", "Namespace", "default"), CRD, m("v1", "Pod", "flaky", "shop"), m("v1", "Namespace", "shop")]
    res = Session(client, "v9.9.9").check_all(objs)
    assert [r.ref.name for r in res] == [o.ref.name for o in objs]
    out = {r.ref.name: r for r in res}
    assert out["w"].outcome == "accepted" and out["widgets.acme.io"].outcome == "accepted"
    assert out["warned"].warnings == ("spec.nodeSelector[beta.kubernetes.io/os]: deprecated",)
    assert out["invalid"].outcome == "refused" and out["invalid"].code == 422
    assert "Invalid value: 70000" in out["invalid"].reason
    assert out["old"].not_served and out["old"].served_as == ("networking.k8s.io/v1",)
    assert out["flaky"].outcome == "error"
    assert out["default"].outcome == "accepted" and out["default"].warnings == ("applied",)  # exists: applied
    posts = [(p, q, b) for (meth, p, q, b) in state.log if meth == "POST"]
    # The CRD is created for real and first; the Namespace objects are dry-run, then created for real.
    assert posts[0][0].endswith("/customresourcedefinitions") and "dryRun" not in posts[0][1]
    real = [b["metadata"]["name"] for p, q, b in posts if "dryRun" not in q]
    assert real[0] == "widgets.acme.io" and "shop" in real
    dry = [(p, q) for p, q, b in posts if "dryRun" in q]
    assert all(q["dryRun"] == ["All"] and q["fieldValidation"] == ["Strict"] for _, q in dry)
    widget_post = next(p for p, q, b in posts if p.endswith("/widgets"))
    assert widget_post == "/apis/acme.io/v1/namespaces/shop/widgets"
    patches = [(p, q) for (meth, p, q, b) in state.log if meth == "PATCH"]
    assert patches == [("/api/v1/namespaces/default", {"fieldManager": ["kubedrill-preflight"],
                                                        "fieldValidation": ["Strict"], "dryRun": ["All"],
                                                        "force": ["true"]})]


def test_a_custom_kind_without_crd_stops_the_session_with_every_such_object(fake: tuple[Fake, Client]) -> None:
    _, client = fake
    objs = [m("acme.io/v1", "Widget", "w", "shop", line=4), m("other.io/v1", "Gizmo", "g", "shop", line=9),
            m("v1", "Service", "s", "shop")]
    with pytest.raises(PreflightError) as e:
        Session(client, "v9.9.9").check_all(objs)
    assert "in.yaml:4: Widget w" in str(e.value) and "in.yaml:9: Gizmo g" in str(e.value)
    res = Session(client, "v9.9.9").check_all(objs, allow_unknown=True)
    assert res[0].not_served and "serves no API group 'acme.io'" in res[0].reason


def test_a_custom_object_whose_crd_was_refused_says_so(fake: tuple[Fake, Client]) -> None:
    _, client = fake
    old = m("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "widgets.acme.io",
            spec={"group": "acme.io", "version": "v1", "names": {"kind": "Widget", "plural": "widgets"}})
    res = Session(client, "v9.9.9").check_all([old, m("acme.io/v1", "Widget", "w", "shop")])
    assert res[0].not_served
    assert res[1].not_served and "its CustomResourceDefinition (in.yaml:1) was refused" in res[1].reason
