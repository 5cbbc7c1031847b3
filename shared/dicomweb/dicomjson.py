"""PS3.18 Annex F JSON: index rows for QIDO-RS and stored headers for WADO-RS metadata."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pydicom
from aiohttp import web
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

from mekong.shared.db.attributes import ATTRIBUTES
from mekong.shared.dicom.pixeldata import PIXEL_DATA, NoPixelData, scan

DICOM_JSON = "application/dicom+json"
_BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_BULK_THRESHOLD = 1024
_NUMBER_VRS = {"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"}


def tag_hex(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}"


def attribute_json(keyword: str, value: Any, vr: str | None = None) -> tuple[str, dict]:
    """One ``"ggggeeee": {"vr": …, "Value": […]}`` pair from a plain value."""
    vr = vr or (ATTRIBUTES[keyword].vr if keyword in ATTRIBUTES else dictionary_VR(keyword))
    element: dict[str, Any] = {"vr": vr}
    values = _values(value, vr)
    if values:
        element["Value"] = values
    return tag_hex(keyword), element


def _values(value: Any, vr: str) -> list[Any]:
    if value is None or value == "":
        return []
    if vr == "PN":
        return [_person_name(str(v)) for v in str(value).split("\\")]
    if vr in _NUMBER_VRS:
        return [_number(v) for v in str(value).split("\\") if str(v).strip()]
    if isinstance(value, str):
        return value.split("\\")
    return [value]


def _person_name(name: str) -> dict[str, str]:
    groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), name.split("="), strict=False))
    return {k: v for k, v in groups.items() if v}


def _number(text: Any) -> int | float:
    try:
        return int(text)
    except (TypeError, ValueError):
        return float(text)


def row_json(row: dict[str, Any], extra: dict[str, dict] | None = None) -> dict[str, dict]:
    result = dict(attribute_json(k, v) for k, v in row.items() if not k.startswith("_"))
    if extra:
        result.update(extra)
    return dict(sorted(result.items()))


def read_header(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def instance_metadata(path: Path, instance_uri: str) -> bytes:
    """The instance's header as PS3.18 JSON (UTF-8 bytes), large binary values as BulkDataURIs
    (``instance_uri`` + ``/bulk/<tag>``, relative to the series), Pixel Data included."""
    try:
        found = scan(path)
        ds = pydicom.dcmread(io.BytesIO(found.header), stop_before_pixels=True)
        pixel = found.elements.get(PIXEL_DATA)
        pixel_vr = (pixel.vr or "OW") if pixel else None
    except NoPixelData:  # deflated: read it all
        ds = read_header(path)
        pixel_vr = "OB" if "Rows" in ds else None
    syntax = str(ds.file_meta.TransferSyntaxUID)
    bulk = {
        f"{e.tag:08X}": {"vr": e.VR, "BulkDataURI": f"{instance_uri}/bulk/{e.tag:08X}"}
        for e in ds
        if e.VR in _BULK_VRS and e.value is not None and len(e.value) > _BULK_THRESHOLD
    }
    for tag in bulk:
        del ds[int(tag, 16)]
    ds.SpecificCharacterSet = "ISO_IR 192"
    result = ds.to_json_dict(bulk_data_threshold=1 << 30)
    result.update(bulk)
    result["00083002"] = {"vr": "UI", "Value": [syntax]}  # AvailableTransferSyntaxUID
    if pixel_vr:
        uri = f"{instance_uri}/bulk/{PIXEL_DATA:08X}"
        result[f"{PIXEL_DATA:08X}"] = {"vr": pixel_vr, "BulkDataURI": uri}
    return json.dumps(dict(sorted(result.items())), ensure_ascii=False).encode()


def dicom_json_response(body: Any, status: int = 200) -> web.Response:
    """``application/dicom+json`` exactly (no charset parameter: the media type is UTF-8 by
    definition and some clients compare the whole header), Vietnamese as raw UTF-8."""
    data = json.dumps(body, ensure_ascii=False).encode()
    return web.Response(body=data, status=status, headers={"Content-Type": DICOM_JSON})


def accepts_gzip(request: web.Request) -> bool:
    """True when Accept-Encoding lists gzip (or ``*``) with a non-zero q (RFC 9110 §12.5.3)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False
