"""The OHIF viewer at the site root: its static files, a generated /app-config.js, SPA routes.

The prebuilt bundle (build/ohif/, from tools/fetch_viewer.py) was built for `/`: index.html
loads `/app.bundle.<hash>.js` and the chunks use `__webpack_require__.p = "/"`. Served at the
root it needs no edit. Routes registered elsewhere (`/api/...`, `/dicom-web/...`, IID) win over
the catch-all: aiohttp tries a path's longer prefixes first and `/{path:.*}` sits at `/`;
it is also registered last (this module is the last of `server.ROUTE_MODULES`, the catch-all
its last route), so a root-level route added later still comes before it.
The catch-all still refuses `/api/` and `/dicom-web/` so a wrong method or a typo there gets
JSON, never the viewer's index.html.

The file list is read once, off the event loop, by the first request (again by later ones for
as long as the folder is missing); requests only look names up in it, so no request can reach
outside the folder. Restart the node after replacing the viewer with another version.
The viewer's files are public; the images it shows come from DICOMweb, which needs
`images.read`.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from mekong.shared.auth.roles import public
from mekong.shared.config import HttpConfig
from mekong.shared.http import viewer_config
from mekong.shared.http.errors import error_response

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "build" / "ohif"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
NOT_INSTALLED = "viewer not installed: run `make setup`"
# First path segments OHIF's router answers: mode routes (`/viewer`, `/viewer/<source>`, ...)
# and its built-in pages. Not its worklist `/`, which is the console's home (the console's
# studies page is the worklist), nor its OpenID Connect pages (`/login`, `/logout`,
# `/callback`): OHIF's OIDC is not used, and `/login` is Mekong's sign-in page.
SPA_ROUTES = frozenset(
    {
        "viewer", "basic", "basic-test", "dev", "dynamic-volume", "microscopy", "segmentation",
        "tmtv", "usAnnotation", "local", "localbasic", "notfoundserver", "notfoundstudy", "debug",
    }
)  # fmt: skip
RESERVED = frozenset({"api", "dicom-web"})
_HASHED = re.compile(r"(?:^|\.)[0-9a-f]{16,}\.")  # a content hash in a file name
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".webapp": "application/x-web-app-manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".xml": "application/xml",
}

routes = web.RouteTableDef()  # the catch-all is its last route; viewer is the last module


@dataclass(frozen=True)
class Asset:
    path: Path
    content_type: str
    cache_control: str
    gzipped: bool  # a .gz sibling exists (made by tools/fetch_viewer.py)


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    guessed = mimetypes.guess_type(name)[0]
    return CONTENT_TYPES.get(suffix) or guessed or "application/octet-stream"


def is_hashed(name: str) -> bool:
    return bool(_HASHED.search(name.rsplit("/", 1)[-1]))


def scan(root: Path) -> dict[str, Asset]:
    """Every servable file below `root` by its URL path (without the leading slash).

    Not listed: dot files (the fetch stamp), links that lead outside `root`, and the `.gz`
    siblings, which FileResponse sends in place of their original when the client accepts
    gzip."""
    if not (root / "index.html").is_file():
        return {}
    real_root = root.resolve()
    assets = {}
    for path in root.rglob("*"):
        name = path.relative_to(root).as_posix()
        if not path.is_file() or path.name.endswith(".gz") or "/." in f"/{name}":
            continue
        if not path.resolve().is_relative_to(real_root):  # a link to somewhere else
            continue
        cache = IMMUTABLE if is_hashed(name) else NO_CACHE
        gzipped = path.with_name(path.name + ".gz").is_file()
        assets[name] = Asset(path, content_type(name), cache, gzipped)
    return assets


class ViewerSite:
    """The viewer folder's file list and the headers every viewer response carries."""

    def __init__(self, root: Path, frame_ancestors: str) -> None:
        self.root = root
        self.assets: dict[str, Asset] = {}
        self.headers = {
            "Content-Security-Policy": f"frame-ancestors {frame_ancestors}",
            "X-Content-Type-Options": "nosniff",
        }
        self.config_script = viewer_config.render().encode()
        self.config_etag = '"' + hashlib.sha256(self.config_script).hexdigest()[:32] + '"'

    @classmethod
    def from_config(cls, http: HttpConfig) -> ViewerSite:
        return cls(http.viewer_dir or DEFAULT_DIR, http.frame_ancestors)

    async def installed(self) -> bool:
        """True when the file list is there; re-reads the folder (off the loop) while not."""
        if not self.assets:
            self.assets = await asyncio.to_thread(scan, self.root)
        return bool(self.assets)

    def respond(self, asset: Asset) -> web.FileResponse:
        headers = {
            **self.headers,
            "Content-Type": asset.content_type,
            "Cache-Control": asset.cache_control,
        }
        if asset.gzipped:
            headers["Vary"] = "Accept-Encoding"
        return web.FileResponse(asset.path, headers=headers)


SITE_KEY: web.AppKey[ViewerSite] = web.AppKey("viewer_site", ViewerSite)


def install(app: web.Application, http: HttpConfig) -> None:
    """Attach the viewer's state (folder, file list, headers) to the app."""
    app[SITE_KEY] = ViewerSite.from_config(http)


@routes.get("/app-config.js")
@public  # the viewer's code and configuration; its data comes from DICOMweb (images.read)
async def app_config(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE_KEY]
    headers = {**site.headers, "Cache-Control": NO_CACHE, "ETag": site.config_etag}
    if site.config_etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    response = web.Response(
        body=site.config_script, content_type="text/javascript", charset="utf-8", headers=headers
    )
    response.enable_compression()
    return response


@routes.get("/{path:.*}")  # keep last: registered after every other route
@public
async def static(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE_KEY]
    path = request.match_info["path"]
    first = path.partition("/")[0]
    if first in RESERVED:
        return error_response(404, f"no such resource: {request.method} {request.path}")
    if not await site.installed():
        return error_response(503, NOT_INSTALLED)
    if (asset := site.assets.get(path)) is not None:
        return site.respond(asset)
    if path == "" or first in SPA_ROUTES:
        return site.respond(site.assets["index.html"])
    return error_response(404, f"no such resource: {request.path}")
