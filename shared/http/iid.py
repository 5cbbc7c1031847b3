"""IHE Invoke Image Display (IID, RAD-106): a HIS/EMR opens images with a plain URL.

    ?requestType=STUDY&studyUID=U1,U2          -> /viewer?StudyInstanceUIDs=U1,U2
    ?requestType=STUDY&accessionNumber=A1,A2   -> the studies of A1 and A2
    ?requestType=PATIENT&patientID=P           -> every study of patient P

The answer is a 302 to the OHIF viewer; a patient's studies open together, the newest first,
for comparison (RIS-4.3). Requirements: RIS-6.6, RIS-7.3. Accepted but ignored IID parameters:
viewerType, diagnosticQuality, keyImagesOnly; the assigning authority of a CX patientID
(`P^^^&1.2.3&ISO`) is ignored too: the index matches the Patient ID alone. The caller needs
`images.read`, like DICOMweb; patient and accession-number look-ups are audited as queries.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.attributes import Level
from mekong.shared.db.query import Query
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

PATH = "/IHEInvokeImageDisplay"
VIEWER = "/viewer?StudyInstanceUIDs="
MAX_STUDIES = 50  # keeps the viewer URL far below aiohttp's 8190-byte request line
MAX_VALUES = 20  # studyUID / accessionNumber values in one request
_UID = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\*?]")  # control, value separator, wildcards
USAGE = (
    f"use {PATH}?requestType=STUDY&studyUID=<uid>[,<uid>...], "
    "requestType=STUDY&accessionNumber=<number>[,...] or requestType=PATIENT&patientID=<id>"
)


class InvokeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@routes.get(PATH)
@requires(Permission.IMAGES_READ)
async def invoke_image_display(request: web.Request) -> web.StreamResponse:
    try:
        study_uids = await _requested_studies(request)
    except InvokeError as exc:
        return error_response(exc.status, str(exc))
    location = VIEWER + ",".join(study_uids)
    raise web.HTTPFound(location, headers={"Cache-Control": "no-store"})


async def _requested_studies(request: web.Request) -> list[str]:
    query = request.query
    request_type = query.get("requestType", "")
    if request_type == "STUDY":
        if "studyUID" in query and "accessionNumber" in query:
            raise InvokeError(400, "give studyUID or accessionNumber, not both")
        if "accessionNumber" in query:
            numbers = _values(query, "accessionNumber", _check_text)
            return await _studies_by_accession(request, numbers)
        return _values(query, "studyUID", _check_uid)
    if request_type == "PATIENT":
        patient_id = query.get("patientID", "").split("^", 1)[0].strip()
        _check_text("patientID", patient_id)
        return await _studies_of_patient(request, patient_id)
    raise InvokeError(400, f"requestType must be STUDY or PATIENT, got {request_type!r}; {USAGE}")


def _values(query, name: str, check) -> list[str]:  # type: ignore[no-untyped-def]
    raw = query.get(name, "")
    values = [v.strip() for v in raw.split(",")]
    if not raw.strip():
        raise InvokeError(400, f"{name} is missing; {USAGE}")
    if len(values) > MAX_VALUES:
        raise InvokeError(400, f"{name}: at most {MAX_VALUES} values, got {len(values)}")
    for value in values:
        check(name, value)
    return list(dict.fromkeys(values))


def _check_uid(name: str, value: str) -> None:
    if not (len(value) <= 64 and _UID.match(value)):
        raise InvokeError(
            400, f"{name}: {value[:80]!r} is not a DICOM UID (digits and dots, at most 64)"
        )


def _check_text(name: str, value: str) -> None:
    if not value:
        raise InvokeError(400, f"{name} is missing or empty; {USAGE}")
    if len(value) > 64 or _FORBIDDEN.search(value):
        raise InvokeError(
            400, f"{name}: {value[:80]!r} must be 1-64 characters without \\ * ? or controls"
        )


async def _studies_of_patient(request: web.Request, patient_id: str) -> list[str]:
    rows = await _find(request, {"PatientID": patient_id})
    if not rows:
        raise InvokeError(404, f"no studies stored for patient ID {patient_id!r}")
    newest_first = sorted(rows, key=lambda r: (r["StudyDate"] or "", r["StudyTime"] or ""))[::-1]
    if len(newest_first) > MAX_STUDIES:
        log.info("IID: patient %r has %d studies; opening the newest %d",
                 patient_id, len(newest_first), MAX_STUDIES)  # fmt: skip
    return [row["StudyInstanceUID"] for row in newest_first[:MAX_STUDIES]]


async def _studies_by_accession(request: web.Request, numbers: list[str]) -> list[str]:
    found: list[str] = []
    for number in numbers:
        rows = await _find(request, {"AccessionNumber": number})
        found += [row["StudyInstanceUID"] for row in rows]
    if not found:
        raise InvokeError(404, f"no studies stored with accession number {', '.join(numbers)}")
    return list(dict.fromkeys(found))[:MAX_STUDIES]


async def _find(request: web.Request, filters: dict[str, str]) -> list[dict]:
    index = keys.node(request).index
    assert index is not None
    record(request, "images.query", patient_id=filters.get("PatientID", ""),
           detail={"via": PATH, "query": dict(request.query)})  # fmt: skip
    returned = ["StudyInstanceUID", "StudyDate", "StudyTime"]
    return await index.find(Query(Level.STUDY, filters), returned)
