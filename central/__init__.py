"""Hub (central hospital) mode: site registry, replication receiver and config push plug in."""

from __future__ import annotations

from typing import Any


def register(node: Any) -> None:
    """Add the hub-only components to ``node``. None yet beyond the shared archive."""
