"""The outbound HL7 component ``hl7-out`` (RIS-6.2): delivers each destination's outbox queue.

One asyncio task per enabled destination takes the oldest PENDING row of its queue, sends it
over MLLP (python-hl7's asyncio client, one connection kept while there is work) and waits for
the ACK up to ``hl7.ack_timeout_seconds``:

- AA / CA → the row is marked SENT (one commit);
- AE / AR / CE / CR → DEAD, with the receiver's error text; the queue goes on;
- no connection, no ACK in time, or an answer that is not an ACK to this MSH-10 → the attempt
  failed: the row waits ``min(retry_max, retry_initial × 2^(attempts−1))`` seconds and stays
  at the head of its queue (messages of one destination keep their order); after
  ``hl7.max_attempts`` failures it is DEAD.

A crash between the ACK and the commit sends the message again after the restart with the
same MSH-10 (at-least-once; the receiver drops a control ID it already has). Destinations are
independent: one that is down does not hold the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from hl7.mllp import open_hl7_connection

from mekong.shared.config import Hl7Config
from mekong.shared.db.index import Index
from mekong.shared.hl7.outbound import outbox
from mekong.shared.hl7.outbound.outbox import Destination, RetryPolicy
from mekong.shared.hl7.outbound.reply import ACCEPTED, BadReply, read_reply

if TYPE_CHECKING:
    from hl7.mllp import HL7StreamReader, HL7StreamWriter

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0  # rows enqueued by other processes are found within this
MAX_ACK = 1024 * 1024


class _Link:
    """One MLLP connection to a destination, opened on demand."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self._reader: HL7StreamReader | None = None
        self._writer: HL7StreamWriter | None = None

    async def exchange(self, message: bytes) -> bytes:
        if self._writer is None:
            self._reader, self._writer = await open_hl7_connection(
                self.dest.host, self.dest.port, limit=MAX_ACK
            )
        assert self._reader is not None
        self._writer.writeblock(message)
        await self._writer.drain()
        return bytes(await self._reader.readblock())

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class Hl7Sender:
    name = "hl7-out"

    def __init__(self, index: Index, config: Hl7Config) -> None:
        self.index = index
        self.policy = RetryPolicy(
            config.max_attempts, config.retry_initial_seconds, config.retry_max_seconds
        )
        self.ack_timeout = config.ack_timeout_seconds
        self.state = "stopped"
        self._tasks: list[asyncio.Task] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._unlisten = lambda: None

    async def start(self) -> None:
        dests = await self.index.reading(outbox.destinations)
        loop = asyncio.get_running_loop()
        self._unlisten = outbox.on_enqueue(lambda: loop.call_soon_threadsafe(self._wake_all))
        for dest in dests:
            self._wake[dest.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(dest), name=f"hl7-out-{dest.name}"))
        self.state = "running"

    async def stop(self) -> None:
        """Stop at once: a message in flight is not marked and goes again after the restart."""
        self.state = "draining"
        self._unlisten()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.state = "stopped"

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def _run(self, dest: Destination) -> None:
        link = _Link(dest)
        wake = self._wake[dest.name]
        try:
            while True:
                try:
                    await self._step(dest, link, wake)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("HL7 out to %s: unexpected failure; retrying", dest.name)
                    await link.close()
                    await _sleep(wake, POLL_SECONDS)
        finally:
            await link.close()

    async def _step(self, dest: Destination, link: _Link, wake: asyncio.Event) -> None:
        row = await self.index.reading(lambda conn: outbox.head(conn, dest.name))
        if row is None:
            await link.close()
            await _sleep(wake, POLL_SECONDS)
            return
        wait = row.next_attempt_at - time.time()
        if wait > 0:
            await link.close()
            await _sleep(wake, min(wait, POLL_SECONDS))
            return
        await self._deliver(dest, link, row)

    async def _deliver(self, dest: Destination, link: _Link, row: Any) -> None:
        try:
            block = await asyncio.wait_for(
                link.exchange(row.payload.encode("utf-8")), self.ack_timeout
            )
            reply = read_reply(block, row.control_id)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, BadReply, ValueError) as exc:
            await link.close()
            await self._failed(dest, row, _describe(exc, self.ack_timeout))
            return
        if reply.code in ACCEPTED:
            await self.index.transaction(lambda conn: outbox.mark_sent(conn, row.id, reply.raw))
            log.info("HL7 %s %s to %s: %s", row.event, row.control_id, dest.name, reply.code)
            return
        error = f"{reply.code}: {reply.text or 'refused without a reason'}"
        await self.index.transaction(lambda conn: outbox.mark_dead(conn, row.id, error, reply.raw))
        log.error("HL7 %s %s refused by %s (%s): dead-lettered",
                  row.event, row.control_id, dest.name, error)  # fmt: skip

    async def _failed(self, dest: Destination, row: Any, error: str) -> None:
        state = await self.index.transaction(
            lambda conn: outbox.mark_failed(conn, row.id, error, self.policy)
        )
        level = logging.ERROR if state == "DEAD" else logging.WARNING
        log.log(level, "HL7 %s %s to %s (%s:%s) failed: %s%s", row.event, row.control_id,
                dest.name, dest.host, dest.port, error,
                "; dead-lettered" if state == "DEAD" else "; will retry")  # fmt: skip


async def _sleep(wake: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no ACK within {timeout:g} s"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the connection closed before the ACK"
    if isinstance(exc, OSError):
        return f"cannot connect or send: {exc.strerror or exc}"
    return str(exc)
