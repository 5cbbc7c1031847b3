"""Forwarding sealed audit events to a syslog collector over TLS (GEN-3, PACS-16;
RFC 5424 messages, RFC 5425 transport).

Each sealed ``audit_event`` row becomes one RFC 5424 message, sent in id order:

    <PRI>1 TIMESTAMP HOSTNAME mekong - ACTION [mekong@32473 id=… actor=… …] BOM actor action …

- PRI: facility ``audit.syslog_facility`` (default authpriv = 10, as IHE ATNA uses), severity
  notice (5) for a success and warning (4) for a failure;
- MSGID: the action (``login``, ``images.query``…); structured data ``mekong@32473`` carries
  every field of the event, its chain hash included (32473 is the documentation enterprise
  number of RFC 5612 until Mekong has its own);
- MSG: UTF-8 text starting with the BOM, as RFC 5424 requires for UTF-8 MSG.

RFC 5425 framing: ``MSG-LEN SP SYSLOG-MSG`` (octet counting). The id of the last event handed to
the connection is kept in ``DATA/audit-syslog.cursor`` (written atomically), so a restart or a
broken link resumes after it. The forwarder runs as its own task: reads are done in a thread,
the connection has timeouts, and a down collector only means back-off and a growing backlog —
never a blocked node. A collector that closes the connection is noticed (its end of the stream
reaches EOF) before the next batch is written, so stopping it loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from mekong.shared.audit.trail import connect
from mekong.shared.background import Background
from mekong.shared.config import SYSLOG_FACILITIES, AuditConfig

log = logging.getLogger(__name__)
SD_ID = "mekong@32473"
BOM = "\ufeff"
NOTICE, WARNING = 5, 4
_BATCH = 200
_POLL_SECONDS = 1.0
_BACKOFF_FIRST, _BACKOFF_MAX = 1.0, 60.0
_CONNECT_TIMEOUT = 10.0
_FIELDS = ("id", "at", "actor", "actor_kind", "source", "action", "object", "patient_id",
           "outcome", "detail", "hash")  # fmt: skip


def sd_escape(value: str) -> str:
    """PARAM-VALUE escaping of RFC 5424 §6.3.3: '"', '\\' and ']' get a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _msgid(action: str) -> str:
    text = "".join(c if 33 <= ord(c) <= 126 else "_" for c in action)[:32]
    return text or "-"


def _name(value: str, limit: int) -> str:
    """HOSTNAME / APP-NAME: printable US-ASCII without spaces."""
    text = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return text or "-"


def format_event(row: dict, facility: int, hostname: str) -> bytes:
    """One audit event as an RFC 5424 message (UTF-8, without the RFC 5425 length prefix)."""
    severity = WARNING if row["outcome"] == "failure" else NOTICE
    stamp = datetime.fromtimestamp(row["at"], UTC).isoformat(timespec="microseconds")
    stamp = stamp.replace("+00:00", "Z")
    params = " ".join(f'{_PARAM_NAMES[k]}="{sd_escape(str(row[k]))}"' for k in _FIELDS if k != "at")
    text = f"{row['actor']} {row['action']} {row['object']} {row['outcome']}".replace("  ", " ")
    header = f"<{facility * 8 + severity}>1 {stamp} {_name(hostname, 255)} mekong - "
    return f"{header}{_msgid(row['action'])} [{SD_ID} {params}] {BOM}{text}".encode()


_PARAM_NAMES = {
    "id": "id", "actor": "actor", "actor_kind": "actorKind", "source": "source",
    "action": "action", "object": "object", "patient_id": "patientId", "outcome": "outcome",
    "detail": "detail", "hash": "hash",
}  # fmt: skip


def frame(message: bytes) -> bytes:
    """RFC 5425 §4.3 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


def sealed_after(db_path: Path, last_id: int, limit: int = _BATCH) -> list[dict]:
    """Sealed events with id > ``last_id``, oldest first (blocking: run it in a thread)."""
    conn = connect(db_path)
    try:
        rows = conn.execute(
            f"SELECT {', '.join(_FIELDS)} FROM audit_event WHERE id > ? AND hash != '' "
            "ORDER BY id LIMIT ?",
            (last_id, limit),
        ).fetchall()
    finally:
        conn.close()
    return [_row(dict(zip(_FIELDS, row, strict=True))) for row in rows]


def _row(row: dict) -> dict:
    with contextlib.suppress(ValueError, TypeError):  # compact JSON, Vietnamese kept as is
        row["detail"] = json.dumps(json.loads(row["detail"]), ensure_ascii=False,
                                   separators=(",", ":"), sort_keys=True)  # fmt: skip
    return row


class Cursor:
    """The id of the last event forwarded, kept in a small file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def write(self, last_id: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as out:
            out.write(f"{last_id}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


def client_context(config: AuditConfig) -> ssl.SSLContext:
    """TLS for RFC 5425: the collector's certificate is verified (CA file or the system's)."""
    context = ssl.create_default_context(cafile=config.syslog_ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.syslog_client_cert:
        context.load_cert_chain(config.syslog_client_cert, config.syslog_client_key)
    return context


class SyslogForwarder(Background):
    """The node component that sends sealed audit events to ``audit.syslog_url``."""

    name = "audit-syslog"

    def __init__(self, config: AuditConfig, db_path: Path, data_dir: Path) -> None:
        url = urlsplit(config.syslog_url)
        self.host, self.port, self.tls = url.hostname or "", url.port or 0, url.scheme == "tls"
        self.config, self.db_path = config, db_path
        self.cursor = Cursor(data_dir / "audit-syslog.cursor")
        self.facility = SYSLOG_FACILITIES[config.syslog_facility]
        self.hostname = config.syslog_hostname or socket.gethostname()
        self.connected = False
        self.last_error = ""
        self.forwarded = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        await super().start()  # running: a down collector is a backlog, not a broken node

    async def stop(self) -> None:
        await super().stop()
        await self._close()

    async def status(self) -> dict:
        """For GET /api/health: connected, last error, how many events wait."""
        waiting = await asyncio.to_thread(_count_after, self.db_path, self.cursor.read())
        return {"url": self.config.syslog_url, "connected": self.connected,
                "last_error": self.last_error, "waiting": waiting,
                "forwarded": self.forwarded}  # fmt: skip

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            try:
                await self._forward_all()
                backoff = _BACKOFF_FIRST
                await asyncio.sleep(_POLL_SECONDS)
            except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.connected:
                    log.warning("audit syslog: link to %s:%s lost (%s)", self.host, self.port,
                                self.last_error)  # fmt: skip
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _forward_all(self) -> None:
        last_id = self.cursor.read()
        while True:
            rows = await asyncio.to_thread(sealed_after, self.db_path, last_id)
            if not rows:
                return
            writer = await self._connection()
            writer.write(b"".join(frame(format_event(r, self.facility, self.hostname))
                                  for r in rows))  # fmt: skip
            await asyncio.wait_for(writer.drain(), _CONNECT_TIMEOUT)
            last_id = rows[-1]["id"]
            await asyncio.to_thread(self.cursor.write, last_id)
            self.forwarded += len(rows)

    async def _connection(self) -> asyncio.StreamWriter:
        """The open connection, or a new one; a connection the collector closed is dropped."""
        if self._writer is not None and self._reader is not None:
            if not self._reader.at_eof() and not self._writer.is_closing():
                await asyncio.sleep(0)  # let a pending EOF or reset be noticed
                if not self._reader.at_eof():
                    return self._writer
            await self._close()
            raise ConnectionResetError("the collector closed the connection")
        context = client_context(self.config) if self.tls else None
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=context,
                                    server_hostname=self.host if self.tls else None),
            _CONNECT_TIMEOUT,
        )  # fmt: skip
        self._watch = asyncio.create_task(self._drain_reader(self._reader))
        self.connected, self.last_error = True, ""
        log.info("audit syslog: connected to %s:%s", self.host, self.port)
        return self._writer

    @staticmethod
    async def _drain_reader(reader: asyncio.StreamReader) -> None:
        """A collector sends nothing; reading notices its close (EOF) as soon as it happens."""
        with contextlib.suppress(OSError, ssl.SSLError, ConnectionError):
            while await reader.read(4096):
                pass

    async def _close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self.connected = False
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)


def _count_after(db_path: Path, last_id: int) -> int:
    conn = connect(db_path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit_event WHERE id > ?",
                                (last_id,)).fetchone()[0])  # fmt: skip
    finally:
        conn.close()
