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
    language = i18n.language_of(request)
    i18n.activate(language)
    principal = principal_of(request)
    role = principal.role if principal else ""
    mode = keys.node(request).config.mode
    base = {
        "lang": language,
        "languages": i18n.LANGUAGES,
        "language_names": LANGUAGE_NAMES,
        "user": principal,
        "menu": menu.grouped(role, mode) if principal and not principal.must_change else [],
        "csrf": principal.session.csrf if principal and principal.session else "",
        "here": request.path_qs,
        "can": lambda permission: bool(role) and allowed(role, Permission(permission)),
    }
    response = aiohttp_jinja2.render_template(
        template, request, {**base, **(context or {})}, status=status
    )
    response.headers.update(security_headers(keys.node(request).config.http.frame_ancestors))
    return response
