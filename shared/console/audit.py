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
    chosen = {name: request.query.get(name, "").strip()[:128] for name in FIELDS}
    filters = {k: v for k, v in chosen.items() if v}
    if len(filters.get("until", "")) == 10:  # a day: up to its end
        filters["until"] += "T23:59:59"
    try:
        events, error = await find_events(request, filters), ""
    except web.HTTPBadRequest as exc:
        events, error = [], exc.text or ""
    record(request, "audit.read", detail={"returned": len(events), "via": "console"})
    export = "/api/audit/export?" + urlencode(filters)
    return page(request, "audit.html", {"chosen": chosen, "events": events, "error": error,
                                        "export": export})  # fmt: skip
