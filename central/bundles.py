"""The hub's configuration bundles (PACS-13, QOS-3): issued, signed, kept, served to edges.

Files under ``HUB_DATA/hub/``: ``bundle-signing.key`` (Ed25519, PEM, mode 0600, made on first
use) and ``bundles/NNNNNN.json``, one signed envelope per version, never rewritten. A new
version is created with ``O_EXCL``, so the running hub and ``mekong bundle issue`` never
issue the same number twice.

    GET /api/hub/config-bundle          the newest envelope (204 when none was issued yet);
                                        ``?after=N`` answers 204 when the newest is ≤ N
    PUT /api/hub/config-bundle          {"settings": {...}}: issue the next version
    GET /api/hub/config-bundle/key      the public key edges check signatures with
"""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import Connection

from mekong.shared import bundles
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response, json_object
from mekong.shared.ris import catalogue
from mekong.shared.storage.files import create_file

routes = web.RouteTableDef()
STORE_KEY = web.AppKey("bundle_store", object)


class BundleStore:
    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "hub" / "bundles"
        self.key_path = data_dir / "hub" / "bundle-signing.key"

    def signing_key(self) -> Ed25519PrivateKey:
        if not self.key_path.exists():
            self._make_key()
        key = load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def public_key_text(self) -> str:
        return bundles.public_key_text(self.signing_key().public_key())

    def latest(self) -> tuple[int, dict[str, str]] | None:
        versions = self._versions()
        if not versions:
            return None
        newest = versions[-1]
        return newest, json.loads((self.folder / _name(newest)).read_text())

    def issue(self, settings: dict[str, Any], issued_by: str) -> tuple[int, dict[str, str]]:
        """Sign ``settings`` as the next version; BundleError when a setting is wrong."""
        bundles.check_settings(settings)
        key = self.signing_key()
        self.folder.mkdir(parents=True, exist_ok=True)
        version = (self._versions() or [0])[-1] + 1
        while True:
            issued_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            envelope = bundles.seal(key, version, issued_at, issued_by, settings)
            try:
                create_file(self.folder / _name(version), json.dumps(envelope).encode())
                return version, envelope
            except FileExistsError:
                version += 1

    def _versions(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("*.json") if p.stem.isdigit())

    def _make_key(self) -> None:
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        # made at the same moment by another process: use that one
        with contextlib.suppress(FileExistsError):
            create_file(self.key_path, pem, mode=0o600)


def _name(version: int) -> str:
    return f"{version:06d}.json"


CURRENT = "current"  # "catalogue": "current" = the hub's master files as they are now


def hub_catalogue(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every master file of this node, as bundle entries (without bookkeeping columns)."""
    return {
        kind: [{k: v for k, v in entry.items() if k != "updated_at" and v is not None}
               for entry in catalogue.entries(conn, kind)]
        for kind in bundles.CATALOGUE_KINDS
    }  # fmt: skip


def _store(request: web.Request) -> BundleStore:
    store = request.app[STORE_KEY]
    assert isinstance(store, BundleStore)
    return store


@routes.get("/api/hub/config-bundle")
@requires(Permission.CONFIG_PULL)
async def newest(request: web.Request) -> web.Response:
    """The newest signed configuration bundle; 204 if none, or none newer than ``after``."""
    latest = _store(request).latest()
    after = request.query.get("after", "0")
    if not after.isdigit():
        return error_response(400, "after must be a bundle version number")
    if latest is None or latest[0] <= int(after):
        return web.Response(status=204)
    return web.json_response(latest[1])


@routes.put("/api/hub/config-bundle")
@requires(Permission.SYSTEM_CONFIGURE)
async def issue(request: web.Request) -> web.Response:
    """Issue the next bundle version from ``{"settings": {...}}``; 400 names a wrong setting."""
    body = await json_object(request)
    settings = body.get("settings")
    if not isinstance(settings, dict):
        return error_response(400, 'send {"settings": {...}} (log_level, aes, uplink_bandwidth, '
                                   "catalogue)")  # fmt: skip
    if settings.get("catalogue") == CURRENT:
        index = keys.node(request).index
        assert index is not None
        settings = {**settings, "catalogue": await index.reading(hub_catalogue)}
    try:
        principal = principal_of(request)
        issuer = principal.name if principal is not None else "anonymous"
        version, _ = _store(request).issue(settings, issuer)
    except bundles.BundleError as error:
        return error_response(400, str(error))
    record(request, "config.bundle", object=f"bundle:{version}", detail=settings)
    return web.json_response({"version": version}, status=201)


@routes.get("/api/hub/config-bundle/key")
@requires(Permission.CONFIG_PULL)
async def public_key(request: web.Request) -> web.Response:
    public = _store(request).signing_key().public_key()
    text = bundles.public_key_text(public)
    return web.json_response({"public_key": text, "key_id": bundles.key_id(public)})
