"""Console languages (Vietnamese by default, English selectable): Babel catalogs, no .mo files.

The catalogs are the ``.po`` files in ``locales/<lang>/LC_MESSAGES/messages.po``; they are read
with Babel and compiled in memory once, when the console is set up, so there is no build step
and no generated file to keep in step. Message ids are English; the English catalog is empty
and falls back to them. The language of a request is the ``lang`` cookie (``vi``/``en``).

Python code marks its UI strings with :func:`N_` (translated when shown); templates use
``_()``/``gettext``. ``make messages`` extracts both into ``messages.pot`` and updates the
catalogs.
"""

from __future__ import annotations

import contextvars
import io
from functools import cache
from pathlib import Path

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("vi", "en")
DEFAULT = "vi"
COOKIE = "lang"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("console_language")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def catalog_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / "messages.po"


@cache
def translations(language: str) -> Translations:
    with open(catalog_path(language), "rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def language_of(request: web.Request) -> str:
    chosen = request.cookies.get(COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT


def activate(language: str) -> None:
    """Translate with ``language`` for the rest of this task (one request)."""
    _current.set(language if language in LANGUAGES else DEFAULT)


def current() -> str:
    return _current.get(DEFAULT)


def gettext(message: str) -> str:
    return translations(current()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ungettext(singular, plural, n)
