"""Edge (satellite clinic) mode: capture, imports, QR labels and uplink plug in here."""

from __future__ import annotations

from typing import Any


def register(node: Any) -> None:
    """Add the edge-only components to ``node``: the uplink when ``[uplink] url`` is set."""
    if node.config.uplink.enabled:
        from mekong.edge.uplink.register import register_uplink

        register_uplink(node)
