"""Rendering console pages: the Jinja environment (autoescaped, gettext), the context every
page gets (user, menu, language, CSRF token) and the security headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal
from babel.units import format_unit

from mekong.shared.auth.roles import Permission, allowed
from mekong.shared.console import i18n, menu
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
        filters={"when": when, "day": day, "size": size, "duration": duration,
                 "number": number, "person": person, "dicom_date": dicom_date,
                 "path_part": path_part},
    )  # fmt: skip
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]


def page(
    request: web.Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> web.Response:
    """A console page or fragment in the request's language, with the security headers."""
    language = i18n.language_of(request)
    i18n.activate(language)
    principal = principal_of(request)
    role = principal.role if principal else ""
    base = {
        "lang": language,
        "languages": i18n.LANGUAGES,
        "language_names": LANGUAGE_NAMES,
        "user": principal,
        "menu": menu.grouped(role) if principal and not principal.must_change else [],
        "csrf": principal.session.csrf if principal and principal.session else "",
        "here": request.path_qs,
        "can": lambda permission: bool(role) and allowed(role, Permission(permission)),
    }
    response = aiohttp_jinja2.render_template(
        template, request, {**base, **(context or {})}, status=status
    )
    response.headers.update(security_headers(keys.node(request).config.http.frame_ancestors))
    return response


def when(seconds: float | None, style: str = "short") -> str:
    if seconds is None:
        return ""
    return format_datetime(dt.datetime.fromtimestamp(seconds), style, locale=i18n.current())


def day(seconds: float | None) -> str:
    """An input[type=date] value."""
    return dt.date.fromtimestamp(seconds).isoformat() if seconds else ""


def dicom_date(value: str | None) -> str:
    try:
        return format_date(dt.datetime.strptime(value or "", "%Y%m%d"), "short",
                           locale=i18n.current())  # fmt: skip
    except ValueError:
        return value or ""


def size(count: int | None) -> str:
    if count is None:
        return ""
    return format_unit(round(count / 1024**3, 1), "digital-gigabyte", length="short",
                       locale=i18n.current())  # fmt: skip


def duration(seconds: float) -> str:
    return format_timedelta(seconds, threshold=2, locale=i18n.current())


def number(value: float, digits: int = 2) -> str:
    return format_decimal(round(value, digits), locale=i18n.current())


def person(name: str | None) -> str:
    """A DICOM person name as people write it: 'Nguyễn^Văn' → 'Nguyễn Văn'."""
    return " ".join((name or "").replace("=", " ").replace("^", " ").split())


def path_part(text: str) -> str:
    """One URL path segment (an AE title may hold a space or a slash)."""
    return quote(text, safe="")
