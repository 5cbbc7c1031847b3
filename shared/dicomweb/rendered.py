"""Rendered resources (PS3.18 §10.4.1.1.3): consumer images, video and PDF; thumbnails.

Images come out as JPEG (default) or PNG; MPEG-2/4 and HEVC video as the stored stream
(``video/mp4``, ``video/mpeg``) with byte ranges, so a ``<video>`` element can seek;
Encapsulated PDF as ``application/pdf``. Thumbnails exist for a study, a series and an instance.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from pydicom import uid

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.dicom.pixeldata import Range, read_ranges, scan
from mekong.shared.dicom.render import RenderOptions, render_frame
from mekong.shared.dicom.transfer_syntaxes import VIDEO
from mekong.shared.dicom.video import first_video_frame
from mekong.shared.dicomweb.accept import choose
from mekong.shared.dicomweb.lite import add_lite_routes
from mekong.shared.dicomweb.params import frame_numbers
from mekong.shared.dicomweb.retrieve import INSTANCE, SERIES, STUDY, selected
from mekong.shared.dicomweb.state import LRU, Located, state

routes = web.RouteTableDef()
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
_ENCAPSULATED_DOCUMENT = 0x00420011
_DOCUMENT_LENGTH = 0x00420015
_IMAGES = ["image/jpeg", "image/png"]
_MPEG2 = {uid.MPEG2MPML, uid.MPEG2MPMLF, uid.MPEG2MPHL, uid.MPEG2MPHLF}
_CHUNK = 1024 * 1024
_thumbnails: LRU[tuple, bytes] = LRU(64 * 1024 * 1024, weigh=len)


@routes.get(INSTANCE + "/rendered")
@requires(Permission.IMAGES_READ)
async def rendered_instance(request: web.Request) -> web.StreamResponse:
    item = (await selected(request))[0]
    syntax = item.ref.transfer_syntax
    if syntax in VIDEO:
        media = "video/mpeg" if syntax in _MPEG2 else "video/mp4"
        layout = await state(request).layout(item)
        return await send_ranges(request, item, layout.whole_value(), media)
    if item.ref.sop_class_uid == ENCAPSULATED_PDF:
        return await send_ranges(request, item, await _document(item), "application/pdf")
    return await _image(request, item, 0)


@routes.get(INSTANCE + "/frames/{frames}/rendered")
@requires(Permission.IMAGES_READ)
async def rendered_frame(request: web.Request) -> web.Response:
    item = (await selected(request))[0]
    layout = await state(request).layout(item)
    number = frame_numbers(request.match_info["frames"], layout.count)[0]
    return await _image(request, item, number - 1)


@routes.get(STUDY + "/thumbnail")
@routes.get(SERIES + "/thumbnail")
@routes.get(INSTANCE + "/thumbnail")
@requires(Permission.IMAGES_READ)
async def thumbnail(request: web.Request) -> web.Response:
    located = await selected(request)
    item = located[len(located) // 2]  # the middle image shows a series best
    options = render_options(request, default_viewport=(128, 128))
    key = (item.ref.digest, options)
    body = _thumbnails.get(key)
    if body is None:
        body = await asyncio.to_thread(_thumbnail_bytes, item, options)
        _thumbnails.put(key, body)
    return web.Response(body=body, content_type=options.media_type)


def _thumbnail_bytes(item: Located, options: RenderOptions) -> bytes:
    if item.ref.transfer_syntax in VIDEO:
        return first_video_frame(item.path, options)
    return render_image(item, 0, options)


async def _image(request: web.Request, item: Located, frame: int) -> web.Response:
    options = render_options(request)
    body = await asyncio.to_thread(render_image, item, frame, options)
    return web.Response(body=body, content_type=options.media_type)


def render_image(item: Located, frame: int, options: RenderOptions) -> bytes:
    try:
        return render_frame(item.path, frame, options)
    except Exception as exc:  # no pixel data, no codec, corrupt data
        raise web.HTTPNotAcceptable(
            text=f"instance {item.sop_uid} cannot be rendered as an image: {exc}"
        ) from None


def render_options(
    request: web.Request, default_viewport: tuple[int, int] | None = None
) -> RenderOptions:
    accept = request.query.get("accept")
    if accept:
        if accept not in _IMAGES:
            raise web.HTTPBadRequest(text=f"accept={accept}: choose image/jpeg or image/png")
        media = accept
    else:
        media = choose(request, _IMAGES)
    return RenderOptions(
        media_type=media,
        viewport=_numbers(request, "viewport", 2, int) or default_viewport,
        window=_numbers(request, "window", 2, float),
        quality=_quality(request),
    )


def _numbers(request: web.Request, name: str, count: int, kind: type) -> tuple | None:
    raw = request.query.get(name)
    if not raw:
        return None
    parts = raw.split(",")
    try:
        values = tuple(kind(p) for p in parts[:count])
    except ValueError:
        values = ()
    if len(values) < count or any(v <= 0 for v in values[-1:]):
        raise web.HTTPBadRequest(
            text=f"{name}={raw}: expected {count} positive numbers, "
            f"e.g. {name}={'512,512' if kind is int else '40,400'}"
        )
    return values


def _quality(request: web.Request) -> int:
    raw = request.query.get("quality", "90")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise web.HTTPBadRequest(text=f"quality={raw}: expected a whole number from 1 to 100")
    return int(raw)


async def _document(item: Located) -> list[Range]:
    found = await asyncio.to_thread(scan, item.path)
    element = found.elements.get(_ENCAPSULATED_DOCUMENT)
    if element is None:
        raise web.HTTPNotFound(text=f"instance {item.sop_uid} holds no encapsulated document")
    length = element.length
    declared = found.elements.get(_DOCUMENT_LENGTH)
    if declared is not None and declared.length == 4:  # the value without DICOM's even padding
        raw = await asyncio.to_thread(read_ranges, item.path, [(declared.value_offset, 4)])
        length = min(length, int.from_bytes(raw, "little"))
    return [(element.value_offset, length)]


# --- byte ranges ---------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def send_ranges(
    request: web.Request, item: Located, ranges: list[Range], media: str
) -> web.StreamResponse:
    """Send the concatenation of ``ranges`` of the stored file, honouring a ``Range`` header."""
    total = sum(length for _, length in ranges)
    start, stop = _requested(request.headers.get("Range"), total)
    partial = (start, stop) != (0, total)
    response = web.StreamResponse(status=206 if partial else 200)
    response.content_type = media
    response.content_length = stop - start
    response.headers["Accept-Ranges"] = "bytes"
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
    await response.prepare(request)
    for piece in _chunks(slice_ranges(ranges, start, stop)):
        await response.write(await asyncio.to_thread(read_ranges, item.path, [piece]))
    await response.write_eof()
    return response


def _requested(header: str | None, total: int) -> tuple[int, int]:
    if not header:
        return 0, total
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise _unsatisfiable(total, f"Range '{header}' is not a single bytes=START-END range")
    first, last = match.groups()
    if not first:  # suffix: the last N bytes
        return max(total - int(last), 0), total
    start, stop = int(first), min(int(last) + 1 if last else total, total)
    if start >= total or start >= stop:
        raise _unsatisfiable(total, f"Range '{header}' is outside the {total} bytes available")
    return start, stop


def _unsatisfiable(total: int, message: str) -> web.HTTPException:
    return web.HTTPRequestRangeNotSatisfiable(
        text=message, headers={"Content-Range": f"bytes */{total}"}
    )


def slice_ranges(ranges: list[Range], start: int, stop: int) -> list[Range]:
    """The file ranges holding bytes [start, stop) of the concatenated ``ranges``."""
    result, position = [], 0
    for offset, length in ranges:
        low, high = max(start, position), min(stop, position + length)
        if low < high:
            result.append((offset + low - position, high - low))
        position += length
    return result


def _chunks(ranges: list[Range]) -> list[Range]:
    return [
        (offset + done, min(_CHUNK, length - done))
        for offset, length in ranges
        for done in range(0, length, _CHUNK)
    ]


add_lite_routes(routes)
