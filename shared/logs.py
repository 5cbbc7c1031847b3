"""Logging set-up and the runtime log-level switch (RIS-2.4)."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_QUIET_LIBRARIES = ("pynetdicom", "aiohttp.access", "alembic", "sqlalchemy", "aiosqlite")


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def set_level(level: str) -> str:
    """Change the node's log level while it runs; returns the level now in force."""
    name = level.upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"unknown log level {level!r}")
    logging.getLogger().setLevel(name)
    logging.getLogger("mekong").setLevel(name)
    return name


def current_level() -> str:
    return logging.getLevelName(logging.getLogger().level)
