"""Low-bandwidth WADO-RS (MOB-1): the same resources under ``/dicom-web/lite/``, with frames
sent as lossy JPEG 2000 (compression ratio 20, about 5 % of the bytes of a CT frame).

OHIF's ``lite`` data source points its WADO root here (``/viewer/lite?StudyInstanceUIDs=…``);
clients asking for ``transfer-syntax=*`` may be given any syntax (PS3.18), and J2K keeps the
full bit depth, so CT windowing still works. Lossy frames are cached by digest and frame.
"""

from __future__ import annotations

import asyncio

import openjpeg
from aiohttp import web
from pydicom import dcmread
from pydicom.pixels import pixel_array

from mekong.shared.dicomweb.state import LRU, Located

PREFIX, LITE_PREFIX = "/dicom-web/", "/dicom-web/lite/"
LOSSY_SYNTAX = "1.2.840.10008.1.2.4.91"  # JPEG 2000 (lossy allowed)
COMPRESSION_RATIO = 20
_cache: LRU[tuple[str, int], bytes] = LRU(64 * 1024 * 1024, weigh=len)


def is_lite(request: web.Request) -> bool:
    return request.path.startswith(LITE_PREFIX)


def add_lite_routes(routes: web.RouteTableDef) -> None:
    """Serve every GET route of ``routes`` a second time under ``/dicom-web/lite/``."""
    for definition in list(routes):
        if isinstance(definition, web.RouteDef) and definition.method == "GET":
            lite_path = definition.path.replace(PREFIX, LITE_PREFIX, 1)
            routes.route("GET", lite_path)(definition.handler)


async def lossy_frame(item: Located, number: int) -> bytes:
    key = (item.ref.digest, number)
    cached = _cache.get(key)
    if cached is None:
        cached = await asyncio.to_thread(_encode, item, number)
        _cache.put(key, cached)
    return cached


def _encode(item: Located, number: int) -> bytes:
    header = dcmread(item.path, stop_before_pixels=True)
    pixels = pixel_array(item.path, index=number - 1)
    colour = pixels.ndim == 3
    return openjpeg.encode(
        pixels, bits_stored=int(header.get("BitsStored") or pixels.dtype.itemsize * 8),
        photometric_interpretation=1 if colour else 0, use_mct=False,
        compression_ratios=[COMPRESSION_RATIO],
    )  # fmt: skip
