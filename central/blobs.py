"""``GET /api/hub/blobs/{digest}``: an instance's stored bytes by SHA-256, for an edge fetching
back a study it freed (issue 6 item 4, PACS-8.3). An enrolled site gets only blobs of studies
it sent (``hub_site_study``); every answer is audited with the study and patient."""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import select

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.schema import instance, patient, series, study
from mekong.shared.db.schema_hub import hub_site_study
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
_DIGEST = re.compile(r"[0-9a-f]{64}")


@routes.get("/api/hub/blobs/{digest}")
@requires(Permission.BLOBS_FETCH)
async def blob(request: web.Request) -> web.StreamResponse:
    """The stored instance with this SHA-256 (hex), as ``application/dicom``."""
    digest = request.match_info["digest"]
    if not _DIGEST.fullmatch(digest):
        return error_response(400, "a blob is named by its SHA-256: 64 lower-case hex digits")
    principal = principal_of(request)
    site = principal.user_id if principal and principal.kind == "site" else None
    node = keys.node(request)
    assert node.index is not None and node.blobs is not None
    query = (
        select(study.c.study_uid, patient.c.patient_id)
        .select_from(instance.join(series).join(study).join(patient))
        .where(instance.c.digest == digest)
    )
    if site is not None:
        sent = select(hub_site_study.c.study_uid).where(hub_site_study.c.site_fk == site)
        query = query.where(study.c.study_uid.in_(sent))
    found = await node.index.reading(lambda conn: conn.execute(query).first())
    path = node.blobs.path_for(digest)
    if found is None or not path.exists():
        return error_response(404, "no such blob among the studies this site sent")
    record(request, "images.retrieve", object=found.study_uid, patient_id=found.patient_id,
           detail={"blob": digest, "fetch_back": True})  # fmt: skip
    return web.FileResponse(path, headers={"Content-Type": "application/dicom"})
