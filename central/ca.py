"""The hub's small certificate authority (issue 6, SEC "use SSL"): it signs the client
certificate of every enrolled edge and the server certificate of the mutual-TLS listener.

Files in ``DATA/hub/``: ``ca.pem`` / ``ca.key`` (EC P-256, key mode 0600, made at the first
start of a hub), ``server.pem`` / ``server.key`` (re-issued at every start for the current host
names). Edges pin ``ca.pem``; an enrollment token carries the CA's SHA-256 fingerprint so the
edge can check it received the right CA even over plain HTTP.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825


class CsrError(ValueError):
    """A certificate signing request the CA will not sign."""


@dataclass(frozen=True)
class Issued:
    pem: bytes
    serial: str  # hex, upper case, as ssl.getpeercert() spells it
    not_after: float


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600), replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 (hex) of a certificate's DER encoding."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def serial_hex(serial: int) -> str:
    return f"{serial:X}"


class HubCA:
    """Load the CA from ``folder`` or make it; sign client and server certificates."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        if not (folder / "ca.key").exists():
            self._create()
        self.key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        self.cert_pem = (folder / "ca.pem").read_bytes()
        self.cert = x509.load_pem_x509_certificate(self.cert_pem)
        self.fingerprint = fingerprint(self.cert_pem)

    @property
    def cert_path(self) -> Path:
        return self.folder / "ca.pem"

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, f"Mekong hub CA {socket.gethostname()}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mekong RIS-PACS"),
        ])  # fmt: skip
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(self.folder / "ca.key", key_pem(key))
        (self.folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def sign_client(self, csr_pem: bytes, site: str, days: int, serial: int) -> Issued:
        """A client certificate for ``site`` (its name is the subject, whatever the CSR says)."""
        public = check_csr(csr_pem).public_key()
        name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, site),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mekong edge"),
        ])  # fmt: skip
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        return self._issue(name, public, days, usage, [], serial)

    def write_server(self, hosts: list[str]) -> tuple[Path, Path]:
        """Issue the mutual-TLS listener's certificate for ``hosts``; returns (cert, key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        issued = self._issue(name, key.public_key(), SERVER_DAYS, usage, hosts,
                             x509.random_serial_number())  # fmt: skip
        cert_path, key_path = self.folder / "server.pem", self.folder / "server.key"
        write_private(key_path, key_pem(key))
        cert_path.write_bytes(issued.pem)
        return cert_path, key_path

    def _issue(self, name, public, days, usage, hosts, serial) -> Issued:  # type: ignore[no-untyped-def]
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if hosts:
            names = [_san(h) for h in dict.fromkeys(hosts)]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        not_after = cert.not_valid_after_utc.timestamp()
        return Issued(cert.public_bytes(serialization.Encoding.PEM), serial_hex(serial), not_after)


def check_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """The CSR, when it is one the CA signs: valid signature, EC key of >= 256 bits."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CsrError(f"not a PEM certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise CsrError("the CSR's signature does not match its key")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.key_size < 256:
        raise CsrError("the edge key must be an EC key of at least 256 bits (P-256)")
    return csr


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
