"""Capture over HTTP: the REST API and a small self-contained capture page (RIS-6.7, FEAT-2.1).

GET  /capture                          the capture page (Vietnamese first, English)
GET  /api/capture                      devices and their state
PUT  /api/capture/{device}             add or replace a device (not a configured one)
GET  /api/capture/{device}             state, frames, dropped, duplicated, last clip
POST /api/capture/{device}/start       {"accession": "...", "seconds": 20}
POST /api/capture/{device}/stop        ends the clip, answers once it is stored
POST /api/capture/{device}/snapshot    {"accession": "..."} (default: the clip's)
GET  /api/capture/{device}/preview     MJPEG, the crop shown (10 frames/s)
GET  /api/capture/{device}/preview.jpg one preview picture
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from mekong.edge.capture.device import DeviceBusy
from mekong.edge.capture.images import preview_jpeg
from mekong.edge.capture.manager import CaptureManager, UnknownDevice
from mekong.edge.capture.sources import SourceError
from mekong.edge.capture.store import StoreFailed
from mekong.edge.orders import UnknownOrder
from mekong.shared.audit.trail import AuditEvent
from mekong.shared.auth.roles import Permission, public, requires
from mekong.shared.config import CaptureDeviceConfig, ConfigError
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
STATIC = Path(__file__).parent / "static"
_FILES = {"capture.js": "text/javascript", "capture.css": "text/css"}
MANAGER_KEY: web.AppKey[CaptureManager] = web.AppKey("capture", CaptureManager)
PREVIEW_FPS = 10
_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownDevice, 404), (UnknownOrder, 404), (DeviceBusy, 409), (ConfigError, 400),
    (SourceError, 503), (StoreFailed, 503), (LookupError, 409),
)  # fmt: skip


def manager(request: web.Request) -> CaptureManager:
    return request.app[MANAGER_KEY]


async def _answer(work: Awaitable[Any], status: int = 200) -> web.Response:
    try:
        return web.json_response(await work, status=status)
    except tuple(kind for kind, _ in _ERRORS) as exc:
        code = next(code for kind, code in _ERRORS if isinstance(exc, kind))
        return error_response(code, str(exc).strip("'\""))


def auditor(request: web.Request) -> Callable[[str, str, dict[str, Any]], None]:
    """``capture.store`` events, usable after the request ended (clips stored later)."""
    principal = principal_of(request)
    actor = principal.name if principal else "anonymous"
    kind = principal.kind if principal else "anonymous"
    remote, log = request.remote or "", keys.audit(request)

    def audit(outcome: str, sop_uid: str, detail: dict[str, Any]) -> None:
        patient = str(detail.pop("patient_id", ""))
        log.record(AuditEvent(actor[:128], kind, "capture.store", outcome, remote, sop_uid,
                              patient[:64], detail))  # fmt: skip

    return audit


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the request body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the request body must be a JSON object")
    return body


@routes.get("/capture")
@public  # the page; everything it shows comes from routes that need permissions
async def page(request: web.Request) -> web.FileResponse:
    return _file("capture.html", "text/html")


@routes.get("/capture/static/{name}")
@public
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound(text=f"no such file: /capture/static/{name}")
    return _file(name, _FILES[name])


def _file(name: str, content_type: str) -> web.FileResponse:
    return web.FileResponse(
        STATIC / name,
        headers={"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": "no-cache"},
    )


@routes.get("/api/capture")
@requires(Permission.IMAGES_READ)
async def list_devices(request: web.Request) -> web.Response:
    """Capture devices and their state."""
    devices = manager(request).devices.values()
    return web.json_response({"devices": [d.status() for d in devices]})


@routes.put("/api/capture/{device}")
@requires(Permission.SYSTEM_CONFIGURE)
async def put_device(request: web.Request) -> web.Response:
    """Add or replace a capture device (devices of the node configuration cannot be changed)."""
    body = await _json(request)
    body["name"] = request.match_info["device"]
    try:
        if "crop" in body:
            body["crop"] = tuple(int(v) for v in body["crop"] or ())
        config = CaptureDeviceConfig(**body)
    except (TypeError, ValueError) as exc:
        return error_response(400, f"not a capture device: {exc}")

    async def work() -> dict[str, Any]:
        return (await manager(request).put_device(config)).status()

    return await _answer(work())


@routes.get("/api/capture/{device}")
@requires(Permission.IMAGES_READ)
async def device_status(request: web.Request) -> web.Response:
    """A device's state, frames read, the clip's frames/dropped/duplicated and the last clip."""

    async def work() -> dict[str, Any]:
        return manager(request).device(request.match_info["device"]).status()

    return await _answer(work())


@routes.post("/api/capture/{device}/start")
@requires(Permission.IMAGES_WRITE)
async def start(request: web.Request) -> web.Response:
    """Start a clip for the order with this accession; ``seconds`` ends it by itself."""
    body = await _json(request)
    seconds = body.get("seconds", 0) or 0
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return error_response(400, "seconds must be a number >= 0")
    work = manager(request).start_clip(request.match_info["device"],
                                       str(body.get("accession", "")), float(seconds),
                                       auditor(request))  # fmt: skip
    return await _answer(work, 202)


@routes.post("/api/capture/{device}/stop")
@requires(Permission.IMAGES_WRITE)
async def stop(request: web.Request) -> web.Response:
    """End the clip; answers once it is stored (SOP Instance UID, frames, dropped, duplicated)."""
    return await _answer(manager(request).stop_clip(request.match_info["device"]))


@routes.post("/api/capture/{device}/snapshot")
@requires(Permission.IMAGES_WRITE)
async def snapshot(request: web.Request) -> web.Response:
    """Store the current frame (cropped) as a still of the order; answers when stored."""
    body = await _json(request)
    work = manager(request).snapshot(request.match_info["device"],
                                     str(body.get("accession", "")), auditor(request))  # fmt: skip
    return await _answer(work, 201)


@routes.get("/api/capture/{device}/preview.jpg")
@requires(Permission.IMAGES_READ)
async def preview_picture(request: web.Request) -> web.Response:
    """One preview picture: the whole frame with the crop outlined."""
    try:
        device = await manager(request).open_for_preview(request.match_info["device"])
    except (UnknownDevice, SourceError) as exc:
        return error_response(404 if isinstance(exc, UnknownDevice) else 503, str(exc))
    jpeg = await asyncio.to_thread(preview_jpeg, device.latest, device.box)
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


@routes.get("/api/capture/{device}/preview")
@requires(Permission.IMAGES_READ)
async def preview(request: web.Request) -> web.StreamResponse:
    """Live preview as MJPEG (multipart/x-mixed-replace), the crop shown."""
    name, capture = request.match_info["device"], manager(request)
    try:
        device = await capture.open_for_preview(name)
    except (UnknownDevice, SourceError) as exc:
        return error_response(404 if isinstance(exc, UnknownDevice) else 503, str(exc))
    response = web.StreamResponse(headers={
        "Content-Type": "multipart/x-mixed-replace; boundary=frame", "Cache-Control": "no-store",
    })  # fmt: skip
    await response.prepare(request)
    capture.viewers[name] = capture.viewers.get(name, 0) + 1
    try:
        await _stream(response, capture, device)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        capture.viewers[name] -= 1
    return response


async def _stream(response: web.StreamResponse, capture: CaptureManager, device) -> None:  # type: ignore[no-untyped-def]
    shown = 0.0
    while capture.state == "running" and device.state == "running":
        began = time.monotonic()
        frame = device.latest
        if frame is not None and device.latest_at != shown:
            shown = device.latest_at
            jpeg = await asyncio.to_thread(preview_jpeg, frame, device.box)
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            await response.write(head.encode() + jpeg + b"\r\n")
            device.last_used = time.monotonic()
        await asyncio.sleep(max(0.0, 1 / PREVIEW_FPS - (time.monotonic() - began)))
