"""WADO-RS (PS3.18 §10.4): instances, metadata, frames and bulk data of stored objects."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io

import pydicom
from aiohttp import web
from pydicom.pixels import pixel_array

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.dicom.pixeldata import PIXEL_DATA, NoPixelData, read_ranges, scan
from mekong.shared.dicom.transcode import CannotTranscode, dataset_for
from mekong.shared.dicom.transfer_syntaxes import VIDEO
from mekong.shared.dicomweb.accept import EXPLICIT_LE, choose, multipart_syntax
from mekong.shared.dicomweb.dicomjson import accepts_gzip
from mekong.shared.dicomweb.lite import LOSSY_SYNTAX, add_lite_routes, is_lite, lossy_frame
from mekong.shared.dicomweb.multipart import MultipartWriter, multipart_response
from mekong.shared.dicomweb.params import frame_numbers, uid_param
from mekong.shared.dicomweb.state import LRU, Located, state
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
VIEW, RETRIEVE = "images.view", "images.retrieve"
STUDY = "/dicom-web/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{instance}"
_DICOM = "application/dicom"
_OCTETS = "application/octet-stream"
_DICOM_JSON = "application/dicom+json"
_series_bodies: LRU[str, tuple[bytes, bytes]] = LRU(128 * 1024 * 1024, weigh=lambda v: len(v[0]))


async def selected(request: web.Request, action: str = VIEW) -> list[Located]:
    """Instances named by the path (study, series or one instance); 404 when none.

    The access is audited: ``images.retrieve`` once per request, ``images.view`` (frames,
    metadata, renderings: hundreds of requests per study view) once per user and study
    every five minutes.
    """
    located = await _located(request)
    first = located[0]
    dedupe = () if action == VIEW else None
    record(
        request,
        action,
        object=first.study_uid,
        patient_id=first.patient_id,
        dedupe=dedupe,
        detail={"path": request.path, "instances": len(located)} if dedupe is None else None,
    )
    return located


async def _located(request: web.Request) -> list[Located]:
    study = uid_param(request, "study")
    series = uid_param(request, "series") if "series" in request.match_info else ""
    if "instance" in request.match_info:
        return [await state(request).instance(study, series, uid_param(request, "instance"))]
    found = await state(request).instances(study, series)
    if not found:
        what = f"series {series} of study {study}" if series else f"study {study}"
        raise web.HTTPNotFound(text=f"no instances stored for {what}")
    return found


@routes.get(STUDY)
@routes.get(SERIES)
@routes.get(INSTANCE)
@requires(Permission.IMAGES_READ)
async def retrieve_instances(request: web.Request) -> web.StreamResponse:
    located = await selected(request, RETRIEVE)
    syntaxes = [multipart_syntax(request, _DICOM, item.ref.transfer_syntax) for item in located]
    writer = MultipartWriter(request, _DICOM)
    for item, syntax in zip(located, syntaxes, strict=True):
        content_type = f"{_DICOM}; transfer-syntax={syntax}"
        if syntax == item.ref.transfer_syntax:
            await writer.part_file(item.path, content_type)
        else:
            await writer.part(await asyncio.to_thread(transcoded, item, syntax), content_type)
    return await writer.finish()


def transcoded(item: Located, syntax: str) -> bytes:
    try:
        ds = dataset_for(item.path, [syntax])
    except CannotTranscode as exc:
        raise web.HTTPNotAcceptable(text=str(exc)) from None
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@routes.get(STUDY + "/metadata")
@routes.get(SERIES + "/metadata")
@routes.get(INSTANCE + "/metadata")
@requires(Permission.IMAGES_READ)
async def metadata(request: web.Request) -> web.Response:
    choose(request, [_DICOM_JSON, "application/json"])
    located = await selected(request)
    key = hashlib.sha256("".join(i.ref.digest for i in located).encode()).hexdigest()
    bodies = _series_bodies.get(key)
    if bodies is None:
        items = [await state(request).metadata(item) for item in located]
        body = b"[" + b",".join(items) + b"]"
        bodies = (body, await asyncio.to_thread(gzip.compress, body, 5))
        _series_bodies.put(key, bodies)
    return _json_body(request, *bodies)


def _json_body(request: web.Request, body: bytes, gzipped: bytes) -> web.Response:
    headers = {"Content-Type": _DICOM_JSON, "Vary": "Accept-Encoding"}
    if accepts_gzip(request):
        return web.Response(body=gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return web.Response(body=body, headers=headers)


@routes.get(INSTANCE + "/frames/{frames}")
@requires(Permission.IMAGES_READ)
async def frames(request: web.Request) -> web.Response:
    item = (await selected(request))[0]
    layout = await state(request).layout(item)
    if layout.transfer_syntax in VIDEO:
        raise web.HTTPNotAcceptable(text="a video has no separate frames: GET its /rendered")
    numbers = frame_numbers(request.match_info["frames"], layout.count)
    syntax = multipart_syntax(request, _OCTETS, layout.transfer_syntax)
    if is_lite(request) and syntax == layout.transfer_syntax:  # client takes any syntax
        parts = [await lossy_frame(item, n) for n in numbers]
        return multipart_response(parts, _OCTETS, f"{_OCTETS}; transfer-syntax={LOSSY_SYNTAX}")
    if syntax == layout.transfer_syntax or (
        syntax == EXPLICIT_LE and not layout.encapsulated
    ):  # native pixels are the same bytes in either little-endian syntax
        parts = await asyncio.to_thread(
            lambda: [read_ranges(item.path, layout.frames[n - 1]) for n in numbers]
        )
    else:
        parts = await asyncio.to_thread(_decoded_frames, item, numbers)
    return multipart_response(parts, _OCTETS, f"{_OCTETS}; transfer-syntax={syntax}")


def _decoded_frames(item: Located, numbers: list[int]) -> list[bytes]:
    """Frames decoded to native little-endian bytes (for clients that cannot decode)."""
    try:
        return [pixel_array(item.path, index=n - 1).tobytes() for n in numbers]
    except Exception as exc:  # no codec for this syntax, or corrupt compressed data
        raise web.HTTPNotAcceptable(
            text=f"frames stored as {item.ref.transfer_syntax} cannot be decoded here ({exc}); "
            "ask for transfer-syntax=*"
        ) from None


@routes.get(INSTANCE + "/bulk/{tag}")
@requires(Permission.IMAGES_READ)
async def bulk(request: web.Request) -> web.Response:
    item = (await selected(request))[0]
    tag_text = request.match_info["tag"]
    try:
        tag = int(tag_text, 16)
    except ValueError:
        raise web.HTTPBadRequest(text=f"bulk data tag '{tag_text}' must be 8 hex digits") from None
    form = choose(request, ["multipart/related", _OCTETS])
    data, syntax = await asyncio.to_thread(_bulk_value, item, tag)
    if form == _OCTETS:  # single part, as OHIF's singlepart "bulkdata" asks for
        return web.Response(body=data, content_type=_OCTETS)
    return multipart_response([data], _OCTETS, f"{_OCTETS}; transfer-syntax={syntax}")


def _bulk_value(item: Located, tag: int) -> tuple[bytes, str]:
    syntax = item.ref.transfer_syntax
    try:
        found = scan(item.path)
        element = found.elements.get(tag)
        if element is not None and tag == PIXEL_DATA and found.fragments:
            return read_ranges(item.path, found.fragments[1:]), syntax
        if element is not None:
            return read_ranges(item.path, [(element.value_offset, element.length)]), syntax
    except NoPixelData:
        pass
    ds = pydicom.dcmread(item.path)
    if tag not in ds:
        raise web.HTTPNotFound(text=f"instance {item.sop_uid} has no top-level ({tag:08X})")
    return bytes(ds[tag].value), syntax


add_lite_routes(routes)
