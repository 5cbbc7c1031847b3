"""Configuration bundles: versioned settings the hub signs and the edges apply (PACS-13, QOS-3).

A bundle travels as an *envelope*, JSON::

    {"body": "<base64 of the bundle's JSON bytes>", "signature": "<base64 Ed25519>",
     "key_id": "<first 16 hex of SHA-256 of the public key>"}

The signature covers the exact body bytes, so nothing is re-serialised before checking. The
body::

    {"format": "mekong-config-bundle/1", "version": 7, "issued_at": "2026-11-26T06:00:00Z",
     "issued_by": "admin", "settings": {"log_level": "INFO", "aes": [...],
                                        "uplink_bandwidth": 2500000}}

``settings`` holds the desired state of each key it names; keys it leaves out are left alone
on the edge. Known keys: ``log_level`` (DEBUG … CRITICAL), ``aes`` (the whole table of known
DICOM AEs, each ``{"title", "host", "port", "allow", "fuzzy_find", "ascii_worklist",
"description"}``), ``uplink_bandwidth`` (bytes/s, 0 = unlimited) and ``catalogue`` (master
files ``service``, ``department``, ``room``, ``device``, ``staff``: each a list of entries that
replaces that master file at the edge — RIS-9.6 where the HIS talks to the hub).
:func:`open_envelope` checks the signature, then the format, then every setting, and says
what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mekong.shared.db.index import RemoteAE
from mekong.shared.dimse.known_aes import remote_ae
from mekong.shared.logs import LEVELS
from mekong.shared.ris.catalogue import clean_entry
from mekong.shared.ris.errors import DomainError

FORMAT = "mekong-config-bundle/1"
SETTINGS = ("log_level", "aes", "uplink_bandwidth", "catalogue")
CATALOGUE_KINDS = ("service", "department", "room", "device", "staff")


class BundleError(ValueError):
    """A bundle that must not be applied; the message says why."""


@dataclass(frozen=True)
class Bundle:
    version: int
    issued_at: str
    issued_by: str
    settings: dict[str, Any]
    envelope: dict[str, str]  # as received: kept so a rollback can check it again

    @property
    def aes(self) -> list[RemoteAE] | None:
        if "aes" not in self.settings:
            return None
        return [_ae(item, n) for n, item in enumerate(self.settings["aes"])]


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as error:
        raise BundleError(f"not an Ed25519 public key in base64: {error}") from None


def seal(key: Ed25519PrivateKey, version: int, issued_at: str, issued_by: str,
         settings: dict[str, Any]) -> dict[str, str]:  # fmt: skip
    """The signed envelope of new bundle ``version`` (settings checked first)."""
    check_settings(settings)
    body = {"format": FORMAT, "version": version, "issued_at": issued_at,
            "issued_by": issued_by, "settings": settings}  # fmt: skip
    data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    return {"body": base64.b64encode(data).decode(),
            "signature": base64.b64encode(key.sign(data)).decode(),
            "key_id": key_id(key.public_key())}  # fmt: skip


def open_envelope(envelope: Any, public: Ed25519PublicKey) -> Bundle:
    """The bundle inside ``envelope`` once its signature and content are checked."""
    if not isinstance(envelope, dict):
        raise BundleError("a bundle envelope is a JSON object with body and signature")
    try:
        data = base64.b64decode(str(envelope.get("body", "")), validate=True)
        signature = base64.b64decode(str(envelope.get("signature", "")), validate=True)
    except binascii.Error:
        raise BundleError("body and signature must be base64") from None
    try:
        public.verify(signature, data)
    except InvalidSignature:
        raise BundleError("the signature does not match the hub's key: bundle refused") from None
    return _parse(data, envelope)


def _parse(data: bytes, envelope: dict[str, str]) -> Bundle:
    try:
        body = json.loads(data)
    except ValueError:
        raise BundleError("the signed body is not JSON") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise BundleError(f"unknown bundle format (expected {FORMAT!r})")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError("version must be a whole number ≥ 1")
    settings = body.get("settings")
    if not isinstance(settings, dict):
        raise BundleError("settings must be a JSON object")
    check_settings(settings)
    return Bundle(version, str(body.get("issued_at", "")), str(body.get("issued_by", "")),
                  settings, dict(envelope))  # fmt: skip


def check_settings(settings: dict[str, Any]) -> None:
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise BundleError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    level = settings.get("log_level")
    if level is not None and (not isinstance(level, str) or level.upper() not in LEVELS):
        raise BundleError(f"log_level must be one of {', '.join(LEVELS)}, got {level!r}")
    bandwidth = settings.get("uplink_bandwidth")
    if bandwidth is not None and (
        not isinstance(bandwidth, int) or isinstance(bandwidth, bool) or bandwidth < 0
    ):
        raise BundleError(f"uplink_bandwidth must be bytes/s ≥ 0, got {bandwidth!r}")
    _check_catalogue(settings.get("catalogue"))
    aes = settings.get("aes")
    if aes is not None:
        if not isinstance(aes, list):
            raise BundleError("aes must be a list of AE objects")
        titles = [_ae(item, n).title for n, item in enumerate(aes)]
        if len(set(titles)) != len(titles):
            raise BundleError("aes names an AE title twice")


def _check_catalogue(catalogue: Any) -> None:
    """``{"service": [entry, ...], ...}``: each kind named replaces that master file at the
    edge; every entry is checked as ``mekong ris add`` checks it."""
    if catalogue is None:
        return
    if not isinstance(catalogue, dict):
        raise BundleError("catalogue must be an object of master files (service, device, ...)")
    unknown = sorted(set(catalogue) - set(CATALOGUE_KINDS))
    if unknown:
        raise BundleError(f"catalogue: unknown master file(s) {', '.join(unknown)}; known: "
                          f"{', '.join(CATALOGUE_KINDS)}")  # fmt: skip
    for kind, entries in catalogue.items():
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BundleError(f"catalogue.{kind} must be a list of objects")
        for n, entry in enumerate(entries):
            try:
                clean_entry(kind, entry)
            except DomainError as error:
                raise BundleError(f"catalogue.{kind}[{n}]: {error.message}") from None


def _ae(item: Any, n: int) -> RemoteAE:
    if not isinstance(item, dict):
        raise BundleError(f"aes[{n}] must be an object")
    try:
        return remote_ae(
            str(item.get("title", "")), str(item.get("host", "")), item.get("port"),
            item.get("allow", "echo,store,find,get,move"), bool(item.get("fuzzy_find")),
            str(item.get("description", "")), bool(item.get("ascii_worklist")),
        )  # fmt: skip
    except (ValueError, TypeError) as error:
        raise BundleError(f"aes[{n}]: {error}") from None
