"""TLS material for etcd clusters, laid out the way kubeadm lays out /etc/kubernetes/pki/etcd.

Why per run: a fresh CA per test session means no key ever outlives the run and no cert from a
previous run (or another machine) can be trusted by accident. kubeadm issues, from one etcd CA:
  server.crt   serverAuth+clientAuth, SANs localhost, node name, 127.0.0.1, node IP, ::1
  peer.crt     serverAuth+clientAuth, same SANs (peers authenticate each other both ways)
  client certs clientAuth only (kube-apiserver-etcd-client, kube-etcd-healthcheck-client)
kubeadm uses RSA-2048; ECDSA P-256 is used here because it is generated ~100x faster and etcd
accepts both, which keeps a 5-member cluster's setup well under a second.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Where kubeadm puts etcd's PKI; members get their own directory mounted here read-only.
CONTAINER_PKI_DIR = "/etc/kubernetes/pki/etcd"
_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, as PEM files on the host."""

    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path, 0o600)



def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.CertificateBuilder:
    """A certificate valid from five minutes ago for _VALIDITY; a CA may sign certificates, a leaf
    may sign and encipher (TLS)."""
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=True, key_cert_sign=ca, crl_sign=ca,
                content_commitment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )

class CertAuthority:
    """A self-signed etcd CA that can issue server, peer and client certificates.

    `CertAuthority.create(dir, "etcd-ca")` writes ca.crt/ca.key; `issue_member` and `issue_client`
    write leaf pairs signed by it. Two CAs never trust each other, which the TLS suite relies on
    to prove that a client with a certificate from the wrong CA is refused.
    """

    def __init__(self, directory: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.dir = directory
        self._cert = cert
        self._key = key

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @classmethod
    def create(cls, directory: Path, common_name: str = "etcd-ca") -> "CertAuthority":
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            _builder(name, name, key, ca=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(directory / "ca.key", key)
        return cls(directory, cert, key)

    def _issue(
        self,
        out_dir: Path,
        stem: str,
        common_name: str,
        usages: list[x509.ObjectIdentifier],
        dns: list[str] | None = None,
        ips: list[str] | None = None,
        organization: str | None = None,
    ) -> CertPair:
        out_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        builder = (
            _builder(x509.Name(attrs), self._cert.subject, key, ca=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in (dns or [])]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in (ips or [])]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        pair = CertPair(out_dir / f"{stem}.crt", out_dir / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pair.key, key)
        return pair

    def issue_member(self, out_dir: Path, name: str, ip: str) -> tuple[CertPair, CertPair]:
        """Write server.crt/key and peer.crt/key for one member plus a copy of ca.crt into out_dir.

        out_dir is what gets mounted at CONTAINER_PKI_DIR, so it holds exactly what kubeadm's
        etcd static pod sees (minus ca.key, which a member never needs).
        """
        dns = ["localhost", name]
        ips = ["127.0.0.1", "::1", ip]
        both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        server = self._issue(out_dir, "server", name, both, dns, ips)
        peer = self._issue(out_dir, "peer", name, both, dns, ips)
        (out_dir / "ca.crt").write_bytes(self.ca_cert.read_bytes())
        return server, peer

    def issue_client(self, out_dir: Path, stem: str, common_name: str, organization: str | None = None) -> CertPair:
        """A client-auth-only certificate, like kubeadm's apiserver-etcd-client."""
        return self._issue(out_dir, stem, common_name, [ExtendedKeyUsageOID.CLIENT_AUTH], organization=organization)

    def issue_server_only(self, out_dir: Path, stem: str, common_name: str) -> CertPair:
        """A serverAuth-only certificate: valid chain, wrong usage for a client (used to test refusal)."""
        return self._issue(out_dir, stem, common_name, [ExtendedKeyUsageOID.SERVER_AUTH])


@dataclass(frozen=True)
class ClientTLS:
    """What a client needs to talk to etcd: the CA to verify servers and its own cert pair.

    `pair=None` is a client without a certificate (refused by --client-cert-auth).
    """

    ca: Path
    pair: CertPair | None

    @property
    def cert(self) -> Path | None:
        return self.pair.cert if self.pair else None

    @property
    def key(self) -> Path | None:
        return self.pair.key if self.pair else None
