"""Enrollment of an edge at its hub (issue 6): the key is made here and never leaves the edge.

``POST {hub_url}/api/hub/enroll`` with the one-time token and a CSR; the answer's CA must have
the fingerprint the token carries (so a plain-HTTP hub URL cannot be answered with another CA),
and the certificate must be for our key and signed by that CA. Files in ``DATA/hub/``:
``key.pem`` (0600), ``cert.pem``, ``ca.pem`` (the pinned hub CA), ``site.json`` (site, id,
mutual-TLS URL; written last, so its presence means a complete enrollment).
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SITE_FILE = "site.json"


class EnrollError(Exception):
    """Enrollment failed; ``permanent`` when trying again with the same token cannot help."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Enrollment:
    site: str
    site_id: int
    mtls_url: str
    folder: Path

    def client_context(self) -> ssl.SSLContext:
        """TLS context of every request to the hub: our certificate, only the pinned CA."""
        context = ssl.create_default_context(cafile=str(self.folder / "ca.pem"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.folder / "cert.pem", self.folder / "key.pem")
        return context


def load(folder: Path) -> Enrollment | None:
    """The stored enrollment, or None before the first one."""
    try:
        info = json.loads((folder / SITE_FILE).read_text())
    except FileNotFoundError:
        return None
    return Enrollment(info["site"], int(info["site_id"]), info["mtls_url"], folder)


async def enroll(
    folder: Path, hub_url: str, token: str, ca_file: str = "", timeout: float = 30.0
) -> Enrollment:
    """Enroll with ``token`` at ``hub_url`` and store the result in ``folder``."""
    _, _, expected = token.strip().partition(".")
    if len(expected) < 16:
        raise EnrollError("the enrollment token is malformed (copy all of it)", permanent=True)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mekong-edge")]))
        .sign(key, hashes.SHA256())
    )
    body = {"token": token.strip(), "csr": csr.public_bytes(serialization.Encoding.PEM).decode()}
    answer = await _post(f"{hub_url.rstrip('/')}/api/hub/enroll", body, ca_file, timeout)
    ca_pem, cert_pem = answer["ca"].encode(), answer["certificate"].encode()
    _check(key, ca_pem, cert_pem, expected)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    _write(folder / "key.pem", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), private=True)  # fmt: skip
    _write(folder / "cert.pem", cert_pem)
    _write(folder / "ca.pem", ca_pem)
    info = {"site": answer["site"], "site_id": answer["site_id"], "mtls_url": answer["mtls_url"],
            "hub_url": hub_url}  # fmt: skip
    _write(folder / SITE_FILE, json.dumps(info, indent=2).encode())
    return Enrollment(info["site"], int(info["site_id"]), info["mtls_url"], folder)


async def _post(url: str, body: dict, ca_file: str, timeout: float) -> dict:
    context: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    try:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        async with session, session.post(url, json=body, ssl=context) as reply:
            text = await reply.text()
            if reply.status != 200:
                raise EnrollError(f"hub answered HTTP {reply.status}: {text[:300]}",
                                  permanent=400 <= reply.status < 500)  # fmt: skip
            answer = json.loads(text)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise EnrollError(f"cannot reach the hub: {type(exc).__name__}: {exc}", False) from None
    except ValueError:
        raise EnrollError("the hub's answer is not JSON", permanent=False) from None
    wanted = ("site", "site_id", "certificate", "ca", "mtls_url")
    if not isinstance(answer, dict) or any(key not in answer for key in wanted):
        raise EnrollError("the hub's answer lacks the certificate or the CA", permanent=False)
    return answer


def _check(key: ec.EllipticCurvePrivateKey, ca_pem: bytes, cert_pem: bytes, expected: str) -> None:
    try:
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise EnrollError(f"the hub sent an unreadable certificate: {exc}", False) from None
    found = hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    if not found.startswith(expected.lower()):
        message = "the hub's CA does not match the token's fingerprint: not the hub that made it"
        raise EnrollError(message, permanent=True)
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if mine != theirs:
        raise EnrollError("the hub's certificate is not for this edge's key", permanent=True)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrollError(f"the certificate is not signed by the hub's CA: {exc}", True) from None


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
