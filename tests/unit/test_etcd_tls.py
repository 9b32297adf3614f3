"""The per-run PKI issues what kubeadm issues: the right usages, SANs and a chain to the CA."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubedrill.etcd.client import prefix_end
from kubedrill.etcd.tls import CertAuthority


def load(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def usages(c: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_member_certs_match_kubeadm(tmp_path: Path) -> None:
    ca = CertAuthority.create(tmp_path / "ca")
    server, peer = ca.issue_member(tmp_path / "m0", "m0", "172.30.1.10")
    for pair in (server, peer):
        cert = load(pair.cert)
        cert.verify_directly_issued_by(load(ca.ca_cert))
        assert usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "m0"}
        assert ipaddress.ip_address("172.30.1.10") in san.get_values_for_type(x509.IPAddress)
        assert stat.S_IMODE(pair.key.stat().st_mode) == 0o600
    assert (tmp_path / "m0" / "ca.crt").read_bytes() == ca.ca_cert.read_bytes()
    assert not (tmp_path / "m0" / "ca.key").exists(), "a member must never get the CA key"


def test_client_cert_is_client_auth_only(tmp_path: Path) -> None:
    ca = CertAuthority.create(tmp_path / "ca")
    c = load(ca.issue_client(tmp_path / "c", "client", "kube-apiserver-etcd-client").cert)
    assert usages(c) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert load(ca.issue_server_only(tmp_path / "s", "s", "x").cert) is not None


def test_other_ca_does_not_vouch(tmp_path: Path) -> None:
    ca = CertAuthority.create(tmp_path / "ca")
    other = CertAuthority.create(tmp_path / "other")
    c = load(other.issue_client(tmp_path / "c", "client", "intruder").cert)
    with pytest.raises(Exception):  # noqa: B017 - cryptography raises ValueError or InvalidSignature
        c.verify_directly_issued_by(load(ca.ca_cert))


def test_prefix_end() -> None:
    assert prefix_end(b"kd/") == b"kd0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"
