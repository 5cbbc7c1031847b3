"""The edge's link to its hub (issue 6): enrolled once, then the mutual-TLS target of the uplink
and of the health reports.

At start the stored enrollment in ``DATA/hub/`` is used; without one the edge enrolls with
``[hub] enroll_token``. A hub that cannot be reached is tried again in the background (capped
back-off) while the rest of the edge works and the outbox fills; a refused token (used,
expired, revoked) is not tried again: the link stays ``error`` until a new token is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

from mekong.edge.hub.enroll import EnrollError, Enrollment, enroll, load
from mekong.edge.uplink.policy import backoff
from mekong.shared.config import ConfigError, HubConfig

log = logging.getLogger(__name__)


class HubLink:
    name = "hub-link"

    def __init__(self, data_dir: Path, config: HubConfig) -> None:
        self.folder = data_dir / "hub"
        self.config = config
        self.state = "stopped"
        self.enrollment: Enrollment | None = load(self.folder)
        self.last_error = ""
        self._context: ssl.SSLContext | None = None
        self._task: asyncio.Task[None] | None = None
        if self.enrollment is None and not config.enroll_token:
            raise ConfigError(
                "hub.url is set but this edge is not enrolled: give --enroll-token "
                "(mekong site add NAME at the hub prints one)"
            )

    @property
    def ready(self) -> bool:
        return self.enrollment is not None

    @property
    def dicomweb_url(self) -> str:
        assert self.enrollment is not None
        return f"{self.enrollment.mtls_url}/dicom-web"

    @property
    def base_url(self) -> str:
        assert self.enrollment is not None
        return self.enrollment.mtls_url

    def ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            assert self.enrollment is not None
            self._context = self.enrollment.client_context()
        return self._context

    async def start(self) -> None:
        if self.enrollment is None:
            try:
                await self._enroll_once()
            except EnrollError as exc:
                self._failed(exc)
                if not exc.permanent:
                    self._task = asyncio.create_task(self._keep_trying(), name=self.name)
        self.state = "running" if self.ready else ("error" if not self._task else "enrolling")

    async def _enroll_once(self) -> None:
        config = self.config
        self.enrollment = await enroll(self.folder, config.url, config.enroll_token,
                                       config.ca_file)  # fmt: skip
        log.info("enrolled at the hub as site %r; mutual TLS to %s",
                 self.enrollment.site, self.enrollment.mtls_url)  # fmt: skip
        self.state = "running"

    async def _keep_trying(self) -> None:
        failures = 1
        while self.enrollment is None:
            await asyncio.sleep(backoff(failures, 2.0, 300.0))
            try:
                await self._enroll_once()
            except EnrollError as exc:
                self._failed(exc)
                if exc.permanent:
                    self.state = "error"
                    return
                failures += 1

    def _failed(self, exc: EnrollError) -> None:
        self.last_error = str(exc)
        log.error("enrollment at the hub %s failed: %s", self.config.url, exc)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state = "stopped"

    async def health(self) -> dict[str, object]:
        enrollment = self.enrollment
        return {
            "hub_url": self.config.url,
            "enrolled": enrollment is not None,
            "site": enrollment.site if enrollment else "",
            "mtls_url": enrollment.mtls_url if enrollment else "",
            "last_error": self.last_error,
        }
