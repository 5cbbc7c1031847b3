"""Logging set-up, the runtime log-level switch and the recent-lines buffer (RIS-2.4).

Every record the node logs also goes to :data:`RECENT`, a bounded in-memory ring of the last
:data:`RECENT_LINES` lines that the console's log viewer reads. It holds only what the log
already holds, for the node's main process (extra DICOM receiving processes log to stderr only).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from dataclasses import dataclass

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_QUIET_LIBRARIES = ("pynetdicom", "aiohttp.access", "alembic", "sqlalchemy", "aiosqlite")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RECENT_LINES = 2000


@dataclass(frozen=True)
class LogLine:
    at: float
    level: str
    logger: str
    text: str  # the formatted line, exception trace included

    @property
    def levelno(self) -> int:
        return logging.getLevelName(self.level)  # type: ignore[no-any-return]


class RecentLines(logging.Handler):
    """Keeps the last ``size`` formatted lines; safe to read from any thread."""

    def __init__(self, size: int = RECENT_LINES) -> None:
        super().__init__()
        self._lines: deque[LogLine] = deque(maxlen=size)
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = LogLine(record.created, record.levelname, record.name, self.format(record))
        except Exception:  # a bad format string in somebody's log call
            self.handleError(record)
            return
        with self._guard:
            self._lines.append(line)

    def lines(self, level: str = "DEBUG", text: str = "", limit: int = 500) -> list[LogLine]:
        """The newest ``limit`` lines at ``level`` or above containing ``text`` (any case),
        oldest first."""
        threshold = logging.getLevelName(level.upper())
        if not isinstance(threshold, int):
            raise ValueError(f"unknown log level {level!r}")
        needle = text.casefold()
        with self._guard:
            snapshot = list(self._lines)
        found = [
            line
            for line in snapshot
            if line.levelno >= threshold and (not needle or needle in line.text.casefold())
        ]
        return found[-limit:] if limit > 0 else []


RECENT = RecentLines()


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler, RECENT]
    set_level(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def set_level(level: str) -> str:
    """Change the node's log level while it runs; returns the level now in force."""
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    logging.getLogger().setLevel(name)
    logging.getLogger("mekong").setLevel(name)
    return name


def current_level() -> str:
    return logging.getLevelName(logging.getLogger().level)
