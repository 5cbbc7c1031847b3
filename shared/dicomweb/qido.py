"""QIDO-RS (PS3.18 §10.6): search studies, series and instances from the index.

Matching is the C-FIND matching of ``shared/db/query.py``: universal, single value, ``*``/``?``
wildcards, UID lists (``\\`` or ``,``), date/time ranges, ModalitiesInStudy; PatientName
case-insensitively, accent-folded when ``fuzzymatching=true``. Attributes the index does not
hold can be returned (``includefield``) from one stored instance of each result; matching on
them is ignored with a ``Warning: 299`` header, as PS3.18 §8.3.4.1 asks.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydicom import dcmread
from pydicom.datadict import dictionary_has_tag, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.attributes import ATTRIBUTES, Level
from mekong.shared.db.query import Query, QueryError
from mekong.shared.dicomweb.accept import choose
from mekong.shared.dicomweb.dicomjson import (
    attribute_json,
    dicom_json_response,
    row_json,
    tag_hex,
)
from mekong.shared.dicomweb.lite import add_lite_routes
from mekong.shared.dicomweb.params import checked_uid, int_param
from mekong.shared.dicomweb.state import state
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
_MAX_RESULTS = 5000
_CONTROL = {"includefield", "limit", "offset", "fuzzymatching"}
DEFAULTS = {
    Level.STUDY: [
        "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy",
        "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
        "StudyInstanceUID", "StudyID", "StudyDescription", "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ],
    Level.SERIES: [
        "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber",
        "SeriesDate", "SeriesTime", "BodyPartExamined", "NumberOfSeriesRelatedInstances",
    ],
    Level.IMAGE: [
        "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID",
        "InstanceNumber", "Rows", "Columns", "NumberOfFrames", "AvailableTransferSyntaxUID",
    ],
}  # fmt: skip


@dataclass
class Search:
    query: Query
    returned: list[str]
    from_header: list[str] = field(default_factory=list)  # includefields the index lacks
    ignored: list[str] = field(default_factory=list)  # match keys the index cannot match


@routes.get("/dicom-web/studies")
@requires(Permission.IMAGES_READ)
async def search_studies(request: web.Request) -> web.Response:
    return await _answer(request, Level.STUDY)


@routes.get("/dicom-web/series")
@routes.get("/dicom-web/studies/{study}/series")
@requires(Permission.IMAGES_READ)
async def search_series(request: web.Request) -> web.Response:
    return await _answer(request, Level.SERIES)


@routes.get("/dicom-web/instances")
@routes.get("/dicom-web/studies/{study}/instances")
@routes.get("/dicom-web/studies/{study}/series/{series}/instances")
@requires(Permission.IMAGES_READ)
async def search_instances(request: web.Request) -> web.Response:
    return await _answer(request, Level.IMAGE)


async def _answer(request: web.Request, level: Level) -> web.Response:
    choose(request, ["application/dicom+json", "application/json"])
    search = parse_search(request, level)
    record(request, "images.query", object=search.query.filters.get("StudyInstanceUID", ""),
           patient_id=search.query.filters.get("PatientID", ""),
           detail={"level": level.name, "query": dict(request.query)})  # fmt: skip
    try:
        rows = await state(request).index.find(search.query, search.returned)
    except QueryError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    base = f"{request.url.origin()}/dicom-web"
    extras = await asyncio.to_thread(_header_values, request, rows, search.from_header)
    body = [
        row_json(row, {**_retrieve_url(row, level, base), **extra})
        for row, extra in zip(rows, extras, strict=True)
    ]
    response = dicom_json_response(body)
    warnings = _warnings(search, len(rows))
    if warnings:
        response.headers["Warning"] = warnings
    response.enable_compression()
    return response


def parse_search(request: web.Request, level: Level) -> Search:
    filters: dict[str, str] = {}
    ignored: list[str] = []
    for key, value in request.query.items():
        if key.lower() in _CONTROL:
            continue
        keyword = _keyword(key)
        if keyword not in ATTRIBUTES or ATTRIBUTES[keyword].level > level:
            ignored.append(keyword)
            continue
        if ATTRIBUTES[keyword].vr == "UI":
            value = "\\".join(checked_uid(u, keyword) for u in value.replace(",", "\\").split("\\"))
        filters[keyword] = f"{filters[keyword]}\\{value}" if keyword in filters else value
    for name, keyword in (("study", "StudyInstanceUID"), ("series", "SeriesInstanceUID")):
        if name in request.match_info:
            filters[keyword] = checked_uid(request.match_info[name], keyword)
    fuzzy = request.query.get("fuzzymatching", "false").lower() == "true"
    limit = int_param(request, "limit", _MAX_RESULTS, 1, _MAX_RESULTS)
    offset = int_param(request, "offset", 0, 0, 10**9)
    returned, from_header = _returned(request, level)
    query = Query(level, filters, fuzzy, limit, offset, with_digest=bool(from_header))
    return Search(query, returned, from_header, ignored)


def _keyword(key: str) -> str:
    """A query key as a keyword: ``PatientID`` or ``00100020`` (8 hex digits)."""
    if len(key) == 8:
        try:
            tag = int(key, 16)
        except ValueError:
            tag = None
        if tag is not None and dictionary_has_tag(tag):
            return keyword_for_tag(tag)
    if tag_for_keyword(key) is None:
        raise web.HTTPBadRequest(
            text=f"'{key}' is not a DICOM attribute keyword or tag (e.g. PatientID or 00100020)"
        )
    return key


def _returned(request: web.Request, level: Level) -> tuple[list[str], list[str]]:
    wanted = list(DEFAULTS[level])
    for value in request.query.getall("includefield", []):
        for item in filter(None, (v.strip() for v in value.split(","))):
            if item.lower() == "all":
                wanted += [k for k, a in ATTRIBUTES.items() if a.level <= level]
            else:
                wanted.append(_keyword(item))
    unique = list(dict.fromkeys(wanted))
    indexed = [k for k in unique if k in ATTRIBUTES and ATTRIBUTES[k].level <= level]
    return indexed, [k for k in unique if k not in indexed and k not in _COMPUTED]


_COMPUTED = {"RetrieveURL", "InstanceAvailability"}


def _retrieve_url(row: dict[str, Any], level: Level, base: str) -> dict[str, dict]:
    url = f"{base}/studies/{row['StudyInstanceUID']}"
    if level >= Level.SERIES:
        url += f"/series/{row['SeriesInstanceUID']}"
    if level >= Level.IMAGE:
        url += f"/instances/{row['SOPInstanceUID']}"
    return dict(
        [attribute_json("RetrieveURL", url, "UR"), attribute_json("InstanceAvailability", "ONLINE")]
    )


def _header_values(request: web.Request, rows: list[dict], keywords: list[str]) -> list[dict]:
    """Values the index does not hold, read from the row's representative stored instance."""
    if not keywords:
        return [{} for _ in rows]
    blobs = state(request).blobs
    tags = [tag_for_keyword(k) for k in keywords]
    extras = []
    for row in rows:
        digest = row.pop("_digest", None)
        header = Dataset()
        if digest:
            with contextlib.suppress(OSError):
                header = dcmread(
                    blobs.path_for(digest), stop_before_pixels=True, specific_tags=tags
                )
        as_json = header.to_json_dict(bulk_data_threshold=1 << 30)
        extras.append({tag_hex(k): as_json.get(tag_hex(k)) or _empty(k) for k in keywords})
    return extras


def _empty(keyword: str) -> dict:
    return attribute_json(keyword, None)[1]


def _warnings(search: Search, count: int) -> str:
    notes = []
    if search.ignored:
        names = ", ".join(sorted(set(search.ignored)))
        notes.append(
            f'299 Mekong "The following attributes are not supported for matching: {names}"'
        )
    if count >= (search.query.limit or _MAX_RESULTS) == _MAX_RESULTS:
        notes.append(f'299 Mekong "Results limited to {_MAX_RESULTS}; narrow the query"')
    return ", ".join(notes)


add_lite_routes(routes)
