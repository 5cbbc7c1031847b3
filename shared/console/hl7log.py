"""Administration: the HL7 message log (PACS-16.5), searched through ``GET /api/hl7/messages``'s
own function: control id, message type, outcome, dates and text."""

from __future__ import annotations

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.render import page
from mekong.shared.console.studies import BAD_DATE
from mekong.shared.hl7 import msglog
from mekong.shared.http import keys
from mekong.shared.http.hl7log import OUTCOMES, parse_time

routes = web.RouteTableDef()
FIELDS = ("control_id", "type", "outcome", "since", "until", "text")


@routes.get("/admin/hl7")
@requires(Permission.SYSTEM_READ)
async def hl7_page(request: web.Request) -> web.Response:
    chosen = {name: request.query.get(name, "").strip()[:128] for name in FIELDS}
    try:
        messages, error = await _search(request, chosen), ""
    except ValueError:
        messages, error = [], BAD_DATE
    return page(request, "hl7.html", {"chosen": chosen, "messages": messages, "error": error,
                                      "outcomes": OUTCOMES})  # fmt: skip


async def _search(request: web.Request, chosen: dict[str, str]) -> list[dict]:
    until = chosen["until"] + ("T23:59:59" if len(chosen["until"]) == 10 else "")
    since, until_time = parse_time(chosen["since"], "since"), parse_time(until, "until")
    outcome = chosen["outcome"].upper() if chosen["outcome"].upper() in OUTCOMES else ""
    index = keys.node(request).index
    assert index is not None
    return await index.reading(lambda conn: msglog.search(
        conn, control_id=chosen["control_id"], message_type=chosen["type"], outcome=outcome,
        since=since, until=until_time, text=chosen["text"], limit=200,
    ))  # fmt: skip
