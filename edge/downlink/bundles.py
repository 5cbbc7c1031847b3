"""The edge's configuration-bundle component ``config-bundles`` (PACS-13, QOS-3).

Every ``uplink.bundle_interval`` seconds it asks the hub for a bundle newer than the newest it
has seen (``GET {hub}/api/hub/config-bundle?after=N``). A bundle is applied only when its
Ed25519 signature matches ``uplink.bundle_key`` and every setting is valid; then the AE table
is replaced in one transaction, the log level and the uplink's bandwidth cap are set, and the
version is recorded — or, on any refusal, nothing changes and the reason is in the health
section and the log. At start the bundle in force is applied again (log level and bandwidth
live in memory). A rollback applies the previous kept bundle, checked again, and the hub's
newer versions are skipped until it issues a new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mekong.edge.downlink.applied import AppliedBundles, State
from mekong.edge.downlink.channel import Channel
from mekong.shared import bundles, logs
from mekong.shared.audit.trail import FAILURE, SUCCESS, AuditEvent
from mekong.shared.background import Background
from mekong.shared.ris import catalogue

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)


class BundlePuller(Background):
    name = "config-bundles"

    def __init__(self, node: Node, channel: Channel, interval: float) -> None:
        self.node = node
        self.channel = channel
        self.interval = interval
        self.key: Ed25519PublicKey | None = None  # the hub's, from the channel
        self.applied = AppliedBundles(node.config.data_dir)
        self.last_check: float | None = None
        self.last_error = ""
        self._lock = asyncio.Lock()  # one apply at a time (poll or rollback)

    async def start(self) -> None:
        current = self.applied.state().current
        if current:
            try:
                await self._load_key(None)
                await self._apply(self._kept(current), "restart")
            except (bundles.BundleError, OSError) as error:  # a kept file edited on disk
                self._note_error(f"bundle {current} in force no longer checks: {error}")
        await super().start()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if self.channel.ready:
                    await self.check(session)
                await asyncio.sleep(self.interval)

    async def check(self, session: aiohttp.ClientSession) -> None:
        """One look at the hub; applies what it offers if it checks."""
        self.last_check = time.time()
        try:
            await self._load_key(session)
            envelope = await self._fetch(session, self.applied.state().newest_seen)
            if envelope is not None:
                await self.receive(envelope)
            else:
                self.last_error = ""
        except bundles.BundleError as error:
            if str(error) != self.last_error:  # once per refused bundle, not once per look
                self._audit("config.bundle.apply", FAILURE, "", {"error": str(error)})
            self._note_error(str(error))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            self._note_error(f"hub not reachable for bundles: {error!r}")

    async def receive(self, envelope: Any) -> int:
        """Check, keep and apply ``envelope``; returns its version. BundleError if refused."""
        bundle = bundles.open_envelope(envelope, self._checked_key())
        async with self._lock:
            seen = self.applied.state().newest_seen
            if bundle.version <= seen:
                raise bundles.BundleError(
                    f"bundle {bundle.version} is not newer than {seen}: refused (replay?)"
                )
            self.applied.keep(bundle.version, bundle.envelope)
            await self._apply(bundle, "hub")
            self.applied.set_state(State(current=bundle.version))
        self.last_error = ""
        return bundle.version

    async def rollback(self, actor: str) -> int:
        """Apply the kept bundle before the one in force; returns its version."""
        async with self._lock:
            state = self.applied.state()
            older = [v for v in self.applied.versions() if v < state.current]
            if not older:
                raise bundles.BundleError("no earlier bundle is kept to roll back to")
            bundle = self._kept(older[-1])
            await self._apply(bundle, f"rollback by {actor}")
            self.applied.set_state(State(current=bundle.version, skip_through=state.newest_seen))
        return bundle.version

    def _kept(self, version: int) -> bundles.Bundle:
        return bundles.open_envelope(self.applied.envelope(version), self._checked_key())

    async def _load_key(self, session: aiohttp.ClientSession | None) -> None:
        if self.key is None:
            text = await self.channel.bundle_key(session)  # type: ignore[arg-type]
            self.key = bundles.public_key_from_text(text)

    def _checked_key(self) -> Ed25519PublicKey:
        if self.key is None:
            raise bundles.BundleError("the hub's bundle key is not known yet")
        return self.key

    async def _apply(self, bundle: bundles.Bundle, cause: str) -> None:
        settings = bundle.settings
        catalogue_files = settings.get("catalogue") or {}
        if catalogue_files:  # every master file named, in one transaction
            assert self.node.index is not None
            await self.node.index.transaction(lambda conn: _replace(conn, catalogue_files))
        aes = bundle.aes
        if aes is not None:
            assert self.node.index is not None
            await self.node.index.replace_remote_aes(aes)
        if "log_level" in settings:
            logs.set_level(settings["log_level"])
        if "uplink_bandwidth" in settings:
            self._set_bandwidth(int(settings["uplink_bandwidth"]))
        log.info("configuration bundle %d applied (%s): %s", bundle.version, cause,
                 ", ".join(sorted(settings)) or "no settings")  # fmt: skip
        self._audit("config.bundle.apply", SUCCESS, f"bundle:{bundle.version}",
                    {"cause": cause, "settings": sorted(settings)})  # fmt: skip

    def _set_bandwidth(self, rate: int) -> None:
        from mekong.edge.uplink.routes import SENDER_KEY

        sender = self.node.http.app.get(SENDER_KEY) if self.node.http else None
        if sender is not None:
            sender.schedule.base = rate  # the cap outside schedule windows, from the next send

    async def _fetch(self, session: aiohttp.ClientSession, after: int) -> Any | None:
        url = f"{self.channel.base_url()}/api/hub/config-bundle"
        args = self.channel.request_args()
        async with session.get(url, params={"after": str(after)}, **args) as reply:
            if reply.status == 204:
                return None
            if reply.status != 200:
                text = (await reply.text())[:200]
                raise aiohttp.ClientResponseError(reply.request_info, (), status=reply.status,
                                                  message=text)  # fmt: skip
            return await reply.json()

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("configuration bundles: %s", message)
        self.last_error = message

    def _audit(self, action: str, outcome: str, obj: str, detail: dict[str, Any]) -> None:
        if self.node.audit is not None:
            self.node.audit.record(AuditEvent("hub", "system", action, outcome, object=obj,
                                              detail=detail))  # fmt: skip

    async def health(self) -> dict[str, Any]:
        state = self.applied.state()
        return {"state": self.state, "version": state.current,
                "skip_through": state.skip_through, "kept": self.applied.versions(),
                "key_id": bundles.key_id(self.key) if self.key else "",
                "last_check": self.last_check,
                "last_error": self.last_error}  # fmt: skip


def _replace(conn: Any, files: dict[str, list[dict[str, Any]]]) -> None:
    for kind, entries in files.items():
        catalogue.replace_entries(conn, kind, entries)
