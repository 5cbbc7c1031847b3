"""The uplink sender component (PACS-19, PACS-7.1, QOS-3): one per destination.

Loop: enqueue what was stored since the last look, claim a due batch, send it with STOW-RS,
settle each row from the destination's answer. A row becomes ``sent`` only when the
destination confirmed it, by the same SHA-256 for a Mekong hub. Transient failures (no
connection, 5xx, out of resources) back the whole destination off (capped exponential, with
jitter) and are retried without limit; permanent ones are retried ``max_attempts`` times, then
dead-lettered for an operator to resend. Rows left ``sending`` by a crash are queued again at
start: the hub recognises a resent identical instance by its digest and does not store it twice.

Objects of ``resumable_bytes`` and more (video) go by resumable upload when the destination is
a Mekong hub (probed once: ``GET /api/hub/uploads``), one at a time, with the upload id and
offset kept in the outbox row: after a restart the hub says where it stopped and only the rest
is sent (:mod:`mekong.edge.uplink.resumable`). Another DICOMweb destination gets them by STOW-RS.

An edge enrolled at its hub (issue 6) sends through a :class:`~mekong.edge.hub.link.HubLink`:
mutual TLS with its client certificate instead of a bearer token, and a refusal of the
certificate (401/403: the site was revoked) is transient — the rows stay queued, backing off,
until the site is enrolled again; nothing is dead-lettered for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import aiohttp

from mekong.edge.uplink import outbox
from mekong.edge.uplink.policy import backoff, transient_reason
from mekong.edge.uplink.reencode import lossless_j2k
from mekong.edge.uplink.resumable import HubTarget, hub_base, probe, upload
from mekong.edge.uplink.schedule import PAUSED, Schedule
from mekong.edge.uplink.stowclient import Answer, RequestFailed, store
from mekong.edge.uplink.throttle import TokenBucket
from mekong.shared.config import UplinkConfig

if TYPE_CHECKING:
    from mekong.edge.hub.link import HubLink
    from mekong.shared.node import Node

log = logging.getLogger(__name__)


class UplinkSender:
    def __init__(self, node: Node, config: UplinkConfig, link: HubLink | None = None) -> None:
        self.name = f"uplink:{config.destination}"
        self.state = "stopped"
        self.node = node
        self.config = config
        self.link = link  # set: the enrolled hub over mutual TLS (config.url/token unused)
        self.bucket = TokenBucket(config.bandwidth)
        self.schedule = Schedule(config.schedule, config.bandwidth)
        self.failures = 0  # consecutive failed requests: the destination's back-off
        self.last_error = ""
        self.last_error_at: float | None = None
        self.last_success_at: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pool: ProcessPoolExecutor | None = None  # uplink.j2k_lossless: the encoders
        self._resumable: bool | None = None  # the destination takes resumable uploads

    @property
    def index(self):  # type: ignore[no-untyped-def]
        assert self.node.index is not None
        return self.node.index

    async def start(self) -> None:
        resumed = await self.index.transaction(lambda c: outbox.resume(c, self.config.destination))
        if resumed:
            log.info("uplink %s: %d interrupted sends queued again", self.name, resumed)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout, sock_connect=10)
        self._session = aiohttp.ClientSession(timeout=timeout)
        if self.config.j2k_lossless:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded process
            self._pool = ProcessPoolExecutor(os.cpu_count() or 2, mp_context=context)
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.state = "running"

    async def stop(self) -> None:
        self.state = "draining"
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session:
            await self._session.close()
        if self._pool:
            self._pool.shutdown(cancel_futures=True)
        # rows of a cancelled request stay 'sending' until the next start queues them again
        self.state = "stopped"

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                delay = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never die: the index may be busy, a blob unreadable
                log.exception("uplink %s: unexpected failure", self.name)
                self._note_error(f"internal: {exc!r}")
                delay = self.config.poll_interval
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _step(self) -> float:
        """One round; returns how long to wait before the next one."""
        destination = self.config.destination
        if self.link is not None and not self.link.ready:
            return self.config.poll_interval  # not enrolled yet: instances wait in the index
        reconciled_only = self.node.config.recon.enabled  # send studies once coerced
        await self.index.transaction(lambda c: outbox.enqueue_new(c, destination, reconciled_only))
        rate = self.schedule.rate_now()
        if rate is PAUSED:
            return self.config.poll_interval  # a schedule window: the queue waits
        self.bucket.set_rate(rate)
        batch = await self.index.transaction(
            lambda c: outbox.claim(c, destination, self.config.batch_size, self.config.batch_bytes)
        )
        if not batch:
            return self.config.poll_interval
        rest = await self._send_large(batch)
        if rest is None:
            return self._delay()
        if rest:
            try:
                answers, sent = await self._send(rest)
            except RequestFailed as exc:
                return await self._request_failed(rest, exc)
            await self._settle(rest, answers, sent)
        return 0.0 if self.failures == 0 else self._delay()

    async def _send_large(self, batch: list[outbox.Pending]) -> list[outbox.Pending] | None:
        """Send the batch's large objects by resumable upload, each settled here; returns the
        rest for STOW-RS (the whole batch when the destination is no Mekong hub), or None when
        a transient failure ended the round (the rows not sent are queued again)."""
        threshold = self.config.resumable_bytes
        large = [p for p in batch if threshold and p.size >= threshold]
        if not large:
            return batch
        try:
            if not await self._takes_resumable():
                return batch
        except RequestFailed as exc:
            await self._request_failed(batch, exc)
            return None
        rest = [p for p in batch if p.id not in {q.id for q in large}]
        for number, pending in enumerate(large):
            try:
                digest = await self._upload(pending)
            except RequestFailed as exc:
                if exc.transient or (self.link is not None and exc.status in (401, 403)):
                    await self._request_failed([*large[number:], *rest], exc)
                    return None
                await self._request_failed([pending], exc)  # this object only
                continue
            await self._settle([pending], {pending.sop_uid: Answer(True, digest=digest)})
        return rest

    async def _takes_resumable(self) -> bool:
        if self._resumable is None:
            assert self._session is not None
            self._resumable = await probe(self._session, self._target())
            log.info("uplink %s: destination %s resumable uploads", self.name,
                     "takes" if self._resumable else "does not take")  # fmt: skip
        return self._resumable

    def _target(self) -> HubTarget:
        if self.link is not None:
            return HubTarget(self.link.base_url, ssl=self.link.ssl_context())
        return HubTarget(hub_base(self.config.url), self.config.token)

    async def _upload(self, pending: outbox.Pending) -> str:
        """One object by resumable upload; the hub's digest of what it stored."""
        assert self._session is not None and self.node.blobs is not None
        row_id = pending.id

        async def progress(upload_id: str, offset: int) -> None:
            await self.index.transaction(
                lambda c: outbox.remember_upload(c, row_id, upload_id, offset)
            )

        path = self.node.blobs.path_for(pending.digest)
        try:
            return await upload(self._session, self._target(), path, pending.digest,
                                pending.size, self.bucket, self.config.chunk_bytes,
                                pending.upload_id, progress)  # fmt: skip
        except OSError as exc:  # the blob cannot be read here: not a network matter
            raise RequestFailed(f"blob unreadable: {exc}", transient=False) from None

    async def _send(self, batch: list[outbox.Pending]) -> tuple[dict[str, Answer], dict[str, str]]:
        """The destination's answers, and the SHA-256 of what was sent for each instance that
        went re-encoded (it is what the destination must confirm)."""
        assert self._session is not None and self.node.blobs is not None
        blobs = self.node.blobs
        parts = await asyncio.to_thread(lambda: [blobs.read(p.digest) for p in batch])
        sent: dict[str, str] = {}
        if self._pool is not None:
            parts, sent = await self._reencode(batch, parts)
        digests = [sent.get(p.sop_uid, p.digest) for p in batch]
        if self.link is not None:
            answers = await store(self._session, self.link.dicomweb_url, "", parts, self.bucket,
                                  ssl=self.link.ssl_context(), digests=digests)  # fmt: skip
        else:
            answers = await store(self._session, self.config.url, self.config.token, parts,
                                  self.bucket, digests=digests)  # fmt: skip
        return answers, sent

    async def _reencode(
        self, batch: list[outbox.Pending], parts: list[bytes]
    ) -> tuple[list[bytes], dict[str, str]]:
        """Lossless JPEG 2000 copies of the uncompressed CT/MR parts (the rest as they are)."""
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, lossless_j2k, part) for part in parts),
            return_exceptions=True,
        )
        encoded: list[bytes | None] = []
        for result in results:  # a broken pool: the originals go, as without the option
            if isinstance(result, BaseException):
                log.warning("uplink %s: re-encoding failed: %r", self.name, result)
            encoded.append(result if isinstance(result, bytes) else None)
        sent = {}
        for pending, copy in zip(batch, encoded, strict=True):
            if copy is not None:
                sent[pending.sop_uid] = await asyncio.to_thread(_sha256, copy)
        return [copy or part for copy, part in zip(encoded, parts, strict=True)], sent

    async def _request_failed(self, batch: list[outbox.Pending], exc: RequestFailed) -> float:
        if self.link is not None and exc.status in (401, 403):
            exc.transient = True  # our certificate is refused: wait for re-enrollment
        self.failures += 1
        delay = self._delay()
        self._note_error(str(exc))
        log.warning("uplink %s: %d instances not sent (%s); next try in %.1f s",
                    self.name, len(batch), exc, delay)  # fmt: skip
        retry_at = time.time() + delay
        failures = [(p, str(exc), exc.transient) for p in batch]
        await self.index.transaction(lambda c: self._fail_rows(c, failures, retry_at))
        return delay

    async def _settle(
        self, batch: list[outbox.Pending], answers: dict[str, Answer],
        sent: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """``sent``: the digest of the re-encoded copy sent instead of the stored instance."""
        verified, unverified, failures = [], [], []
        for pending in batch:
            answer = answers.get(pending.sop_uid)
            expected = (sent or {}).get(pending.sop_uid, pending.digest)
            if answer is None:
                failures.append((pending, "not in the destination's answer", True))
            elif not answer.stored:
                text = f"refused (reason 0x{answer.reason or 0:04X}): {answer.text}"
                failures.append((pending, text, transient_reason(answer.reason)))
            elif answer.digest is None:
                unverified.append(pending.id)  # not a Mekong destination: no digest to compare
            elif answer.digest == expected:
                verified.append(pending.id)
            else:
                text = f"destination holds other content (SHA-256 {answer.digest})"
                failures.append((pending, text, False))
        self._account(len(verified) + len(unverified), failures)
        retry_at = time.time() + (self._delay() if self.failures else self.config.backoff_base)

        def write(conn):  # type: ignore[no-untyped-def]
            outbox.mark_sent(conn, verified, verified=True)
            outbox.mark_sent(conn, unverified, verified=False)
            self._fail_rows(conn, failures, retry_at)

        await self.index.transaction(write)

    def _account(self, sent: int, failures: list[tuple[outbox.Pending, str, bool]]) -> None:
        if sent:
            self.last_success_at = time.time()
        transient = [f for f in failures if f[2]]
        self.failures = self.failures + 1 if transient and not sent else 0
        for pending, text, _ in failures:
            log.warning("uplink %s: %s not confirmed: %s", self.name, pending.sop_uid, text)
            self._note_error(f"{pending.sop_uid}: {text}")

    def _fail_rows(self, conn, failures, retry_at: float) -> None:  # type: ignore[no-untyped-def]
        for pending, text, transient in failures:
            dead = not transient and pending.attempts + 1 >= self.config.max_attempts
            outbox.mark_failed(conn, pending.id, "dead" if dead else "queued", text, retry_at)
            if dead:
                log.error("uplink %s: %s dead-lettered after %d attempts: %s",
                          self.name, pending.sop_uid, pending.attempts + 1, text)  # fmt: skip

    def _delay(self) -> float:
        return backoff(max(self.failures, 1), self.config.backoff_base, self.config.backoff_max)

    def _note_error(self, text: str) -> None:
        self.last_error, self.last_error_at = text, time.time()

    async def health(self) -> dict[str, Any]:
        """The uplink section of /api/health (QOS-3)."""
        summary = await self.index.reading(lambda c: outbox.summary(c, self.config.destination))
        counts = summary["counts"]
        return {
            "destination": self.config.destination,
            "url": self.link.dicomweb_url if self.link and self.link.ready else self.config.url,
            "queue_depth": counts["queued"] + counts["sending"],
            **summary,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_success_at": self.last_success_at,
            "bandwidth_bytes_per_second": self.schedule.base,
            "now": self.schedule.describe(),
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
