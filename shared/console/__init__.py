"""The web console (issue 7): server-rendered pages (aiohttp-jinja2 + htmx), Vietnamese by
default, English selectable. Every page declares its permission like the API routes; the menu
shows only what the role allows. State changes go from the page to the JSON API."""

from __future__ import annotations

from aiohttp import web

from mekong.shared.console import (
    aes,
    assets,
    audit,
    logview,
    render,
    signin,
    studies,
    system,
    users,
)

ROUTE_MODULES = (signin, assets, studies, system, aes, logview, users, audit)


def install(app: web.Application) -> None:
    """The template environment; the routes come with ``ROUTE_MODULES``."""
    render.setup(app)
