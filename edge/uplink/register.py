"""Plug the uplink into an edge node: sender component, operator routes, health section."""

from __future__ import annotations

from typing import Any

from mekong.edge.uplink import routes
from mekong.edge.uplink.sender import UplinkSender


def register_uplink(node: Any, link: Any = None) -> UplinkSender:
    """The sender to ``[uplink] url``, or with ``link`` to the enrolled hub (mutual TLS)."""
    sender = UplinkSender(node, node.config.uplink, link)
    node.add_component(sender)
    node.http.app[routes.SENDER_KEY] = sender
    node.http.app.add_routes(routes.routes)
    node.health_sections["uplink"] = sender.health
    return sender
