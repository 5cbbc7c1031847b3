"""Administration: system status (RIS-2.1, RIS-2.6; refreshed every 5 s) and the effective
configuration (RIS-2.5; secrets never shown)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.render import page
from mekong.shared.http import keys
from mekong.shared.http.health import snapshot

routes = web.RouteTableDef()
HIDDEN = "••••••"
# a key whose name says it holds a secret is never shown, whatever section adds it later
SECRET_KEY = re.compile(r"(pass(word|phrase)?|secret|token|private|credential|_key$|^key$)", re.I)


@routes.get("/admin/status")
@requires(Permission.SYSTEM_READ)
async def status(request: web.Request) -> web.Response:
    return page(request, "status.html", await _status(request))


@routes.get("/admin/status/panel")
@requires(Permission.SYSTEM_READ)
async def status_panel(request: web.Request) -> web.Response:
    return page(request, "status_panel.html", await _status(request))


async def _status(request: web.Request) -> dict[str, Any]:
    return {"health": await snapshot(keys.node(request)), "now": time.time()}


@routes.get("/admin/config")
@requires(Permission.SYSTEM_READ)
async def configuration(request: web.Request) -> web.Response:
    return page(request, "config.html", {"settings": effective(keys.node(request).config)})


def effective(config: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every setting as (dotted key, shown value), secrets hidden."""
    settings: list[tuple[str, str]] = []
    for field in dataclasses.fields(config):
        key, value = f"{prefix}{field.name}", getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            settings.extend(effective(value, f"{key}."))
        elif SECRET_KEY.search(field.name):
            settings.append((key, HIDDEN if value else ""))
        else:
            settings.append((key, _shown(value)))
    return settings


def _shown(value: object) -> str:
    if isinstance(value, tuple | list | frozenset | set):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    return "" if value is None else str(value)
