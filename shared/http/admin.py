"""Administration routes. RIS-2.4: read and change the log level, read the recent log lines;
QOS-5: run a backup now."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from mekong.shared import logs
from mekong.shared.appliance.backup import BackupError
from mekong.shared.appliance.scheduled import describe
from mekong.shared.audit.trail import FAILURE
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


@routes.get("/api/admin/log-level")
@requires(Permission.SYSTEM_READ)
async def get_log_level(request: web.Request) -> web.Response:
    return web.json_response({"level": logs.current_level()})


@routes.put("/api/admin/log-level")
@requires(Permission.SYSTEM_CONFIGURE)
async def put_log_level(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        level = logs.set_level(str(body["level"]))
    except (ValueError, KeyError, TypeError):
        return error_response(400, 'send {"level": "DEBUG|INFO|WARNING|ERROR|CRITICAL"} as JSON')
    principal = principal_of(request)
    log.warning("log level set to %s by %s", level, principal.name if principal else "?")
    record(request, "config.change", object="log_level", detail={"level": level})
    return web.json_response({"level": level})


@routes.post("/api/admin/backup")
@requires(Permission.SYSTEM_CONFIGURE)
async def backup_now(request: web.Request) -> web.Response:
    """Run the scheduled backup now (QOS-5), e.g. before a risky change; answers when done."""
    backups = keys.node(request).backups
    if backups is None:
        return error_response(409, 'no backup folder is configured: set [backup] to = "/path"')
    try:
        result = await backups.run_now()
    except (BackupError, OSError) as exc:
        record(request, "system.backup", outcome=FAILURE, detail={"error": str(exc)})
        return error_response(500, f"backup failed: {exc}")
    record(request, "system.backup", object=result.snapshot.name)
    return web.json_response(describe(result))


@routes.get("/api/admin/logs")
@requires(Permission.SYSTEM_READ)
async def recent_logs(request: web.Request) -> web.Response:
    """The node's last log lines (``level``: minimum level, ``q``: text, ``limit``)."""
    try:
        lines = recent_lines(request.query)
    except ValueError as exc:
        return error_response(400, str(exc))
    return web.json_response(
        [{"at": line.at, "level": line.level, "logger": line.logger, "text": line.text}
         for line in lines]
    )  # fmt: skip


def recent_lines(query: Mapping[str, str]) -> list[logs.LogLine]:
    """Lines chosen by the query parameters ``level``, ``q`` and ``limit`` (1..2000)."""
    limit_text = query.get("limit") or "500"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= logs.RECENT_LINES:
        raise ValueError(f"limit must be a whole number from 1 to {logs.RECENT_LINES}")
    level = (query.get("level") or "DEBUG").upper()
    if level not in logs.LEVELS:
        raise ValueError(f"level must be one of {', '.join(logs.LEVELS)}")
    return logs.RECENT.lines(level, query.get("q") or "", int(limit_text))
