"""Audit events from HTTP requests: the caller (user, token or trusted LAN) and its address."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mekong.shared.audit.trail import SUCCESS, AuditEvent
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of


def record(
    request: web.Request,
    action: str,
    *,
    outcome: str = SUCCESS,
    object: str = "",  # noqa: A002 - the audit vocabulary's word
    patient_id: str = "",
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
    dedupe: tuple | None = None,
) -> None:
    principal = principal_of(request)
    name = actor or (principal.name if principal else "anonymous")
    kind = "user" if actor else (principal.kind if principal else "anonymous")
    event = AuditEvent(
        name[:128], kind, action, outcome, request.remote or "", object, patient_id[:64],
        detail or {},
    )  # fmt: skip
    key = (name, action, object, *(dedupe or ())) if dedupe is not None else None
    keys.audit(request).record(event, dedupe=key)
