"""Rendering console pages: the Jinja environment (autoescaped, gettext), the context every
page gets (user, menu, language, CSRF token) and the security headers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel import Locale

from mekong.shared.auth.roles import Permission, allowed
from mekong.shared.console import i18n, menu
from mekong.shared.console.formats import FILTERS
from mekong.shared.console.headers import security_headers
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGE_NAMES = {code: Locale.parse(code).display_name for code in i18n.LANGUAGES}  # autonyms


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        filters=FILTERS,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]


def page(
    request: web.Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> web.Response:
    """A console page or fragment in the request's language, with the security headers."""
    response = aiohttp_jinja2.render_template(
        template, request, {**_base(request), **(context or {})}, status=status
    )
    response.headers.update(security_headers(keys.node(request).config.http.frame_ancestors))
    return response


def fragment(request: web.Request, template: str, context: Mapping[str, Any]) -> str:
    """A fragment as text, drawn like :func:`page` (for :mod:`listcache`)."""
    return aiohttp_jinja2.render_string(template, request, {**_base(request), **context})


def html(request: web.Request, text: str) -> web.Response:
    """Ready text (a cached fragment) as a console response, with the security headers."""
    response = web.Response(text=text, content_type="text/html")
    response.headers.update(security_headers(keys.node(request).config.http.frame_ancestors))
    return response


def _base(request: web.Request) -> dict[str, Any]:
    """What every template gets; also sets the language gettext uses for this task."""
    language = i18n.language_of(request)
    i18n.activate(language)
    principal = principal_of(request)
    role = principal.role if principal else ""
    mode = keys.node(request).config.mode
    return {
        "lang": language,
        "languages": i18n.LANGUAGES,
        "language_names": LANGUAGE_NAMES,
        "user": principal,
        "menu": menu.grouped(role, mode) if principal and not principal.must_change else [],
        "csrf": principal.session.csrf if principal and principal.session else "",
        "here": request.path_qs,
        "can": lambda permission: bool(role) and allowed(role, Permission(permission)),
    }
