"""Import over HTTP (RIS-6.8, FEAT-2.2, PACS-5.4).

POST /api/import                          multipart: file, accession, device
GET  /api/import/folders                  watch folders: waiting files, errors, counts
"""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from mekong.edge.imports.convert import NotConvertible
from mekong.edge.imports.service import Actor, Importer, StoreRefused
from mekong.edge.orders import UnknownOrder
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http.access import principal_of
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
IMPORTER_KEY: web.AppKey[Importer] = web.AppKey("importer", Importer)
WATCH_KEY: web.AppKey[Any] = web.AppKey("watch_folders")
MAX_FILE = 1024**3  # the HTTP body limit


def _actor(request: web.Request) -> Actor:
    principal = principal_of(request)
    if principal is None:
        return Actor("anonymous", "anonymous", request.remote or "")
    return Actor(principal.name, principal.kind, request.remote or "")


async def _form(request: web.Request) -> tuple[bytes, str, dict[str, str]]:
    if not request.content_type.startswith("multipart/form-data"):
        raise web.HTTPUnsupportedMediaType(
            text="send multipart/form-data with a 'file' part and an 'accession' field"
        )
    data, filename, fields = b"", "", {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest(text="nested multipart bodies are not accepted")
        if part.name == "file":
            data, filename = bytes(await part.read()), part.filename or "upload"
        elif part.name:
            fields[part.name] = (await part.text()).strip()
    if not data:
        raise web.HTTPBadRequest(text="no 'file' part, or the file is empty")
    return data, filename, fields


@routes.post("/api/import")
@requires(Permission.IMAGES_WRITE)
async def upload(request: web.Request) -> web.Response:
    """Import a JPEG, PNG, PDF or MP4 file for the order with this accession (multipart)."""
    data, filename, fields = await _form(request)
    importer, actor = request.app[IMPORTER_KEY], _actor(request)
    try:
        result = await importer.import_bytes(
            data,
            filename,
            fields.get("accession", ""),
            fields.get("device", ""),
            "upload",
            actor,
            fields.get("kind", "other"),
        )
    except UnknownOrder as exc:
        importer.refused(actor, filename, str(exc))
        return error_response(404, str(exc).strip("'\""))
    except NotConvertible as exc:
        importer.refused(actor, filename, str(exc))
        return error_response(415, f"{filename}: {exc}")
    except StoreRefused as exc:
        return error_response(503, str(exc))
    return web.json_response(result.json(), status=200 if result.duplicate else 201)


@routes.get("/api/import/folders")
@requires(Permission.SYSTEM_READ)
async def folders(request: web.Request) -> web.Response:
    """Watch folders: files waiting to be complete, files in error/, counts, the last error."""
    watcher = request.app.get(WATCH_KEY)
    return web.json_response({"folders": watcher.status() if watcher else []})
