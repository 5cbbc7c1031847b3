"""The web console (issue 7): server-rendered pages (aiohttp-jinja2 + htmx), Vietnamese by
default, English selectable. Every page declares its permission like the API routes; the menu
shows only what the role allows. State changes go from the page to the JSON API."""

from __future__ import annotations

from aiohttp import web

from mekong.shared.console import (
    aes,
    assets,
    audit,
    hl7log,
    listcache,
    logview,
    orders,
    render,
    signin,
    studies,
    system,
    unmatched,
    users,
)
from mekong.shared.ris import events

ROUTE_MODULES = (signin, assets, studies, orders, unmatched, system, aes, logview, hl7log, users,
                 audit)  # fmt: skip


def install(app: web.Application) -> None:
    """The template environment; the routes come with ``ROUTE_MODULES``."""
    render.setup(app)
    listcache.install(app)
    app.on_shutdown.append(_end_streams)


async def _end_streams(_app: web.Application) -> None:
    events.close_all()
