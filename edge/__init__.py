"""Edge (satellite clinic) mode: capture, imports, QR labels and uplink plug in here."""

from __future__ import annotations

from typing import Any


def register(node: Any) -> None:
    """Add the edge-only components to ``node``. None yet beyond the shared archive."""
