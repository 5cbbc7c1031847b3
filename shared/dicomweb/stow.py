"""STOW-RS (PS3.18 §10.5): ``POST /dicom-web/studies[/{study}]``, multipart/related DICOM.

Every part is stored through the same :class:`Archive` path as C-STORE, so a 200 means every
instance is on disk and in the index. The whole body is read and checked as multipart before
anything is stored: a broken body stores nothing.

Digest confirmation (PACS-19, PACS-7.1): each item of Referenced SOP Sequence (0008,1199) also
carries the SHA-256 of the bytes the archive now holds for that SOP Instance UID, in a private
element: creator (0009,0010) = ``MEKONG 1.0``, digest (0009,1001) LO, 64 hex digits. An edge
uplink marks an instance replicated only when this equals its own digest. For an instance
already held with other content (``duplicate_policy = keep_first``) it is the kept copy's
digest, so the sender sees the mismatch. Other clients ignore private elements.

Damage in transit: a part may carry a ``Content-Digest: sha-256=:…:`` header (RFC 9530; the
uplink always sends one). A part whose bytes do not hash to it is not stored: it is refused
with Failure Reason 0110 (processing failure, which a sender retries) and says so.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import BodyPartReader, web
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from mekong.shared.archive import Failure, StoreResult
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.dicomweb.accept import parse_accept
from mekong.shared.dicomweb.dicomjson import attribute_json, dicom_json_response
from mekong.shared.dicomweb.params import checked_uid
from mekong.shared.dicomweb.state import state
from mekong.shared.http import contentdigest
from mekong.shared.http.auditing import record

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# Failure Reason (0008,1197) values, PS3.18 Table I.2-1 / PS3.4 Annex B
_REASONS = {
    Failure.INVALID: 0xC000,  # cannot understand
    Failure.OUT_OF_RESOURCES: 0xA700,
    Failure.INTERNAL: 0x0110,  # processing failure
}
_WRONG_STUDY = 0xA900  # data set does not match the study of the request URL
_DAMAGED = 0x0110  # processing failure: the part's bytes differ from its Content-Digest
DIGEST_CREATOR = "MEKONG 1.0"
DIGEST_CREATOR_TAG = "00090010"
DIGEST_TAG = "00091001"  # SHA-256 (hex) of the stored bytes, see the module docstring
# Told the instances stored per study after each request (the hub counts them per site).
StoredListener = Callable[[web.Request, dict[str, int]], Awaitable[None]]
STORED: web.AppKey[StoredListener] = web.AppKey("stow_stored")


@routes.post("/dicom-web/studies")
@routes.post("/dicom-web/studies/{study}")
@requires(Permission.IMAGES_WRITE)
async def store_instances(request: web.Request) -> web.Response:
    study = request.match_info.get("study")
    if study:
        checked_uid(study, "StudyInstanceUID")
    parts = await _read_parts(request)
    base = f"{request.url.origin()}/dicom-web"
    stored, failed = [], []
    studies: Counter[str] = Counter()
    source = f"STOW {request.remote or ''}"[:16]
    for number, (data, expected) in enumerate(parts, start=1):
        header = _peek(data)
        if study and header and str(header.get("StudyInstanceUID", "")) != study:
            failed.append(_failed(header, _WRONG_STUDY, f"part {number} is not in study {study}"))
            continue
        if expected and hashlib.sha256(data).hexdigest() != expected:
            text = f"part {number} does not match its Content-Digest: damaged in transit"
            failed.append(_failed(header, _DAMAGED, text))
            continue
        result = await state(request).archive.store(data, source)
        if result.ok:
            stored.append(_stored(result, header, base))
            studies[result.study_uid or str(getattr(header, "StudyInstanceUID", ""))] += 1
        else:
            reason = _REASONS.get(result.failure, 0x0110)  # type: ignore[arg-type]
            failed.append(_failed(header, reason, f"part {number}: {result.message}", result))
    record(request, "images.store", outcome="success" if stored else "failure",
           object=study or "", detail={"stored": len(stored), "failed": len(failed)})  # fmt: skip
    listener = request.app.get(STORED)
    if listener is not None and studies:
        await listener(request, dict(studies))
    return _response(stored, failed, base, study)


async def _read_parts(request: web.Request) -> list[tuple[bytes, str | None]]:
    """Each part's bytes and the SHA-256 its Content-Digest header announces (or None)."""
    content_type = request.headers.get("Content-Type", "")
    media = parse_accept(content_type)[0]
    if media.type != "multipart/related" or media.part_type not in ("application/dicom", ""):
        raise web.HTTPUnsupportedMediaType(
            text=f'STOW-RS takes multipart/related; type="application/dicom", got '
            f"'{content_type or 'no Content-Type'}'"
        )
    try:
        reader = await request.multipart()
        parts = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValueError("nested multipart bodies are not accepted")
            kind = part.headers.get("Content-Type", "application/dicom").split(";")[0].strip()
            if kind.lower() != "application/dicom":
                raise ValueError(f"part of type '{kind}': only application/dicom is accepted")
            expected = contentdigest.expected_sha256(part.headers.get(contentdigest.HEADER))
            parts.append((bytes(await part.read()), expected))
    except (ValueError, AssertionError) as exc:
        raise web.HTTPBadRequest(text=f"the multipart body cannot be read: {exc}") from None
    if not parts:
        raise web.HTTPBadRequest(text="the multipart body holds no DICOM part")
    return parts


def _peek(data: bytes):  # type: ignore[no-untyped-def]
    """The identifying attributes of a part, or None when it is not readable DICOM."""
    try:
        return dcmread(
            io.BytesIO(data),
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                           "SeriesInstanceUID"],
        )  # fmt: skip
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError):
        return None


def _reference(class_uid: str, instance_uid: str) -> dict[str, dict]:
    return dict(
        [
            attribute_json("ReferencedSOPClassUID", class_uid, "UI"),
            attribute_json("ReferencedSOPInstanceUID", instance_uid, "UI"),
        ]
    )


def _stored(result: StoreResult, header, base: str) -> dict:  # type: ignore[no-untyped-def]
    item = _reference(result.sop_class_uid, result.sop_uid)
    if header is not None:
        url = (f"{base}/studies/{header.StudyInstanceUID}/series/{header.SeriesInstanceUID}"
               f"/instances/{result.sop_uid}")  # fmt: skip
        item.update([attribute_json("RetrieveURL", url, "UR")])
    if result.digest:
        item[DIGEST_CREATOR_TAG] = {"vr": "LO", "Value": [DIGEST_CREATOR]}
        item[DIGEST_TAG] = {"vr": "LO", "Value": [result.digest]}
    return item


def _failed(header, reason: int, message: str, result: StoreResult | None = None) -> dict:  # type: ignore[no-untyped-def]
    log.warning("STOW-RS refused %s", message)
    class_uid = (result and result.sop_class_uid) or str(getattr(header, "SOPClassUID", "") or "")
    sop_uid = (result and result.sop_uid) or str(getattr(header, "SOPInstanceUID", "") or "")
    item = _reference(class_uid, sop_uid)
    item.update([attribute_json("FailureReason", reason, "US")])
    item.update([attribute_json("TextValue", message[:1024], "UT")])  # a reason a person can read
    return item


def _response(stored: list[dict], failed: list[dict], base: str, study: str | None) -> web.Response:
    body: dict[str, dict] = {}
    if study:
        body.update([attribute_json("RetrieveURL", f"{base}/studies/{study}", "UR")])
    body["00081199"] = {"vr": "SQ", "Value": stored} if stored else {"vr": "SQ"}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    status = 200 if not failed else (202 if stored else 409)
    return dicom_json_response(body, status)
