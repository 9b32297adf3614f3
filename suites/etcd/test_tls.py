"""TLS everywhere, like kubeadm: etcd accepts a client only with a certificate from its CA that is
valid for client auth, and accepts a peer only with a certificate from its CA.

Every refusal is asserted two ways: the request raises, and a valid client then confirms the key
the refused client tried to write does not exist.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path

import pytest

from fixtures.etcd import ClusterFactory, EtcdRun
from kubedrill.check.verdict import Verdict
from kubedrill.etcd.client import EtcdClient, EtcdError
from kubedrill.etcd.cluster import EtcdCluster
from kubedrill.etcd.tls import CertAuthority, CertPair, ClientTLS
from kubedrill.etcd.tools import etcdctl
from kubedrill.report.model import TestResult

pytestmark = [pytest.mark.needs_docker, pytest.mark.conformance]


@pytest.fixture(scope="module")
def tls_cluster(etcd_module_cluster: ClusterFactory) -> EtcdCluster:
    """One healthy 3-member cluster for the whole module; these tests do not disrupt it."""
    return etcd_module_cluster(3, tag="tls")


@pytest.fixture(scope="module")
def rogue(etcd_run: EtcdRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClientTLS]:
    """Clients that must be refused, each for a different reason."""
    d = tmp_path_factory.mktemp("rogue")
    other = CertAuthority.create(d / "other-ca", "not-the-etcd-ca")
    return {
        "no-cert": ClientTLS(etcd_run.ca.ca_cert, None),
        "other-ca": ClientTLS(etcd_run.ca.ca_cert, other.issue_client(d / "other", "client", "kube-apiserver-etcd-client")),
        "server-only-eku": ClientTLS(etcd_run.ca.ca_cert, etcd_run.ca.issue_server_only(d / "srv", "server-only", "intruder")),
    }


def _absent(cluster: EtcdCluster, key: str) -> bool:
    with cluster.members[0].client() as c:
        kv, _ = c.get(key)
    return kv is None


def test_valid_client_cert_is_accepted(tls_cluster: EtcdCluster, etcd_run: EtcdRun, kd_report: TestResult) -> None:
    for m in tls_cluster.members:
        with m.client() as c:
            rev = c.put(f"kd/tls/ok/{m.name}", "yes")
            kv, _ = c.get(f"kd/tls/ok/{m.name}")
        assert kv is not None and kv.value == b"yes" and kv.mod_revision == rev
    r = etcdctl(tls_cluster, tls_cluster.members[0], ["endpoint", "health", "--cluster"])
    assert r.ok, r.explain()
    assert r.stdout.count("is healthy") == 3, r.stdout
    kd_report.add(Verdict.ok("tls-valid-client", "kube-apiserver-etcd-client cert accepted on every member and by etcdctl"))


@pytest.mark.parametrize("who", ["no-cert", "other-ca", "server-only-eku"])
def test_client_without_valid_cert_is_refused(who: str, tls_cluster: EtcdCluster, rogue: dict[str, ClientTLS],
                                              kd_report: TestResult) -> None:
    key = f"kd/tls/rogue/{who}"
    m = tls_cluster.members[0]
    with pytest.raises(EtcdError) as err, EtcdClient(m.ip, rogue[who], timeout=3) as c:
        c.put(key, "should not be written")
    msg = str(err.value).lower()
    assert any(s in msg for s in ("certificate", "alert", "handshake", "reset", "eof")), msg
    assert _absent(tls_cluster, key), f"{who}: the refused client's write is visible"
    kd_report.add(Verdict.ok(f"tls-refuse-{who}", f"refused: {str(err.value)[:160]}"))


def test_plain_http_is_refused(tls_cluster: EtcdCluster, kd_report: TestResult) -> None:
    key = "kd/tls/plain"
    m = tls_cluster.members[0]
    conn = http.client.HTTPConnection(m.ip, 2379, timeout=3)
    try:
        conn.request("POST", "/v3/kv/put", body='{"key":"a2QvdGxzL3BsYWlu","value":"eA=="}')
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        status = -1
    finally:
        conn.close()
    assert status != 200, "a plaintext HTTP request got 200 from the TLS client port"
    assert _absent(tls_cluster, key)
    kd_report.add(Verdict.ok("tls-refuse-plaintext", f"plaintext request answered with status {status}, nothing written"))


def test_server_identity_is_verified(tls_cluster: EtcdCluster, etcd_run: EtcdRun, tmp_path: Path,
                                     kd_report: TestResult) -> None:
    """A client that trusts another CA refuses etcd's server certificate (no blind trust)."""
    other = CertAuthority.create(tmp_path / "other-ca", "someone-else")
    tls = ClientTLS(other.ca_cert, etcd_run.tls.pair)
    with pytest.raises(EtcdError) as err, EtcdClient(tls_cluster.members[0].ip, tls, timeout=3) as c:
        c.status()
    assert "certificate verify failed" in str(err.value).lower(), str(err.value)
    kd_report.add(Verdict.ok("tls-server-verified", "server cert from the etcd CA is rejected by a client trusting another CA"))


def _peer_tls(ip: str, tls: ClientTLS) -> str:
    """Talk TLS to a member's peer port; "refused: ..." if the server rejected our certificate.

    With TLS 1.3 the server judges the client certificate after the client's handshake is done,
    so the verdict arrives as an alert on the first read, not as a handshake error.
    """
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    ctx.check_hostname = False
    if tls.pair is not None:
        ctx.load_cert_chain(str(tls.pair.cert), str(tls.pair.key))
    try:
        with socket.create_connection((ip, 2380), timeout=3) as raw, ctx.wrap_socket(raw) as s:
            s.sendall(b"GET /version HTTP/1.1\r\nHost: etcd\r\n\r\n")
            s.recv(100)
    except ssl.SSLError as exc:
        return f"refused: {exc}"
    except OSError as exc:
        return f"transport error: {exc!r}"
    return "accepted"


@pytest.mark.parametrize("who", ["no-cert", "other-ca"])
def test_peer_port_requires_peer_cert(who: str, tls_cluster: EtcdCluster, rogue: dict[str, ClientTLS],
                                      kd_report: TestResult) -> None:
    m = tls_cluster.members[1]
    got = _peer_tls(m.ip, rogue[who])
    # Go answers a missing cert with "certificate required" and an untrusted one by closing the
    # TLS session (EOF); either is a TLS-level refusal, unlike the control below.
    assert got.startswith("refused"), f"peer port with {who}: {got}"
    # A member's own peer certificate is accepted: the refusal above is about the certificate.
    own = ClientTLS(m.pki_dir / "ca.crt", CertPair(m.pki_dir / "peer.crt", m.pki_dir / "peer.key"))
    assert _peer_tls(tls_cluster.members[2].ip, own) == "accepted"
    kd_report.add(Verdict.ok(f"peer-refuse-{who}", got[:200]))


def test_etcdctl_without_cert_is_refused(tls_cluster: EtcdCluster, etcd_run: EtcdRun, kd_report: TestResult) -> None:
    r = etcdctl(tls_cluster, tls_cluster.members[0], ["put", "kd/tls/etcdctl", "x"],
                tls=ClientTLS(etcd_run.ca.ca_cert, None), timeout=60, command_timeout_s=5)
    assert not r.ok, f"etcdctl without a client cert succeeded: {r.stdout}"
    assert _absent(tls_cluster, "kd/tls/etcdctl")
    kd_report.add(Verdict.ok("tls-refuse-etcdctl", f"etcdctl exited {r.rc}: {r.stderr.strip()[-160:]}"))
