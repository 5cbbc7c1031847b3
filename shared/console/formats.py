"""How the console writes values: dates, sizes, durations and numbers in the page's language
(Babel), DICOM person names and dates, URL path segments. Used as Jinja filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import quote

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal
from babel.units import format_unit

from mekong.shared.console import i18n


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


FILTERS: dict[str, Callable[..., str]] = {
    "when": when, "day": day, "size": size, "duration": duration, "number": number,
    "person": person, "dicom_date": dicom_date, "path_part": path_part,
}  # fmt: skip
