"""Path and query parameters of DICOMweb requests, checked before anything is looked up."""

from __future__ import annotations

import re

from aiohttp import web

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def uid_param(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    return checked_uid(value, name)


def checked_uid(value: str, name: str) -> str:
    if len(value) > 64 or not _UID.match(value):
        raise web.HTTPBadRequest(
            text=f"{name} '{value[:80]}' is not a DICOM UID (digits and dots, at most 64 chars)"
        )
    return value


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number, got '{raw}'") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between {low} and {high}, got {value}")
    return value


def frame_numbers(text: str, available: int) -> list[int]:
    """``1,3,5`` → [1, 3, 5]; each must exist (frames count from 1)."""
    numbers = []
    for part in text.split(","):
        if not part.strip().isdigit():
            message = f"frame list '{text}' must be numbers separated by commas"
            raise web.HTTPBadRequest(text=message)
        number = int(part)
        if not 1 <= number <= available:
            raise web.HTTPNotFound(
                text=f"frame {number} does not exist: the instance has "
                f"{available} frame(s), numbered from 1"
            )
        numbers.append(number)
    return numbers
