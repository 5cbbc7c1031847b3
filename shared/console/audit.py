"""The audit trail for auditors (GEN-3, PACS-16): search by actor, action, outcome, patient and
date; verify the hash chain and export as DICOM audit messages (the ``/api/audit`` routes)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.render import page
from mekong.shared.http.audit_api import find_events
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
FIELDS = ("actor", "action", "outcome", "patient_id", "since", "until")


@routes.get("/audit")
@requires(Permission.AUDIT_READ)
async def audit_page(request: web.Request) -> web.Response:
    chosen = {name: request.query.get(name, "").strip() for name in FIELDS}
    try:
        events, error = await find_events(request), ""
    except web.HTTPBadRequest as exc:
        events, error = [], exc.text or ""
    record(request, "audit.read", detail={"returned": len(events), "via": "console"})
    export = "/api/audit/export?" + urlencode({k: v for k, v in chosen.items() if v})
    return page(request, "audit.html", {"chosen": chosen, "events": events, "error": error,
                                        "export": export})  # fmt: skip
