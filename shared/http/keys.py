"""Typed access to what the HTTP app carries (the node)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from mekong.shared.audit.log import AuditLog
    from mekong.shared.node import Node


def node(request: web.Request) -> Node:
    from mekong.shared.http.server import NODE_KEY

    return request.app[NODE_KEY]


def audit(request: web.Request) -> AuditLog:
    log = node(request).audit
    assert log is not None, "the audit log starts with the node"
    return log
