"""The node: composes components, starts them in order, drains them in reverse on SIGTERM.

Implements RIS-2.1 (operating status through component states) together with the health route.
Mode-specific code (``mekong.edge`` / ``mekong.central``) plugs in through ``register(node)``;
``shared`` never imports it directly.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from mekong.shared import __version__
from mekong.shared.appliance.restore import MARKER as RESTORE_MARKER
from mekong.shared.appliance.scheduled import ScheduledBackup
from mekong.shared.appliance.service import SystemdLink, stuck_after
from mekong.shared.archive import Archive
from mekong.shared.audit.log import AuditLog
from mekong.shared.audit.syslog import SyslogForwarder
from mekong.shared.config import NodeConfig
from mekong.shared.db.index import Index
from mekong.shared.dicom import configure_pydicom, uids
from mekong.shared.dimse.frontdoor import dicom_listeners
from mekong.shared.dimse.policy import AePolicy
from mekong.shared.dimse.services import open_services
from mekong.shared.dimse.workers import DimseWorkers
from mekong.shared.hl7.listener import Hl7Listener
from mekong.shared.hl7.outbound import outbox
from mekong.shared.hl7.outbound.destinations import destinations
from mekong.shared.hl7.outbound.sender import Hl7Sender
from mekong.shared.http.server import HttpServer
from mekong.shared.recon.reconciler import Reconciler
from mekong.shared.storage.blobs import BlobStore

log = logging.getLogger(__name__)


def _refuse_unfinished_restore(data_dir: Path) -> None:
    """A node on half a restore would take the blobs not yet indexed for crash leftovers."""
    if (data_dir / RESTORE_MARKER).exists():
        raise OSError(
            f"{data_dir} holds an unfinished 'mekong restore': run it again into an empty data "
            "directory before starting the node"
        )


class Component(Protocol):
    name: str
    state: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.version = __version__
        self.started_at = time.time()
        self.components: list[Component] = []
        self.index: Index | None = None
        self.blobs: BlobStore | None = None
        self.archive: Archive | None = None
        self.policy: AePolicy | None = None
        self.http: HttpServer | None = None
        self.audit: AuditLog | None = None
        # extra sections of GET /api/health that mode code adds (e.g. the edge's "uplink")
        self.health_sections: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {}
        self.reconciler: Reconciler | None = None
        self.backups: ScheduledBackup | None = None
        self._stop = asyncio.Event()

    async def open(self) -> None:
        """Open storage and the index; build (not start) the components."""
        configure_pydicom()
        uids.configure(self.config.dicom.uid_root)
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        _refuse_unfinished_restore(self.config.data_dir)
        self.blobs = BlobStore(self.config.data_dir)
        removed = self.blobs.clean_tmp()
        if removed:
            log.info("removed %d unfinished writes from a previous run", removed)
        self.index = await Index.open(self.config.index_path)
        await self._remove_orphan_blobs()
        self.index.start_writer(
            self.blobs.sync_dirs, self.config.dicom.duplicate_policy, self._wake_reconciler
        )
        services = await open_services(self.config, self.index, self.blobs)
        self.archive, self.policy = services.archive, services.policy
        self.audit = services.audit
        self.http = HttpServer(self)
        await self.index.transaction(
            lambda conn: outbox.sync_destinations(conn, destinations(self.config))
        )
        extra_receivers = self.config.dicom.workers - 1
        self.components = [
            self.audit,
            self.http,
            Hl7Listener(self),
            Hl7Sender(self.index, self.config.hl7),
            *self._reconciler(),
            *dicom_listeners(self.config, services, reuse_port=extra_receivers > 0),
        ]
        if extra_receivers:
            self.components.append(DimseWorkers(self.config, extra_receivers))
        self._syslog()
        self._backups()
        _register_mode(self)

    def _syslog(self) -> None:
        """Forward sealed audit events to ``audit.syslog_url`` (GEN-3, RFC 5424/5425)."""
        if not self.config.audit.syslog_url:
            return
        forwarder = SyslogForwarder(self.config.audit, self.config.index_path, self.config.data_dir)
        self.components.append(forwarder)
        self.health_sections["audit_syslog"] = forwarder.status

    def _backups(self) -> None:
        """Daily backups into ``backup.to`` (QOS-5)."""
        if not self.config.backup.to:
            return
        self.backups = ScheduledBackup(self.config)
        self.components.append(self.backups)
        self.health_sections["backup"] = self.backups.status

    def _reconciler(self) -> list[Component]:
        if not self.config.recon.enabled:
            return []
        assert self.index is not None and self.blobs is not None and self.audit is not None
        self.reconciler = Reconciler(self.index, self.blobs, self.config.recon, self.audit.record)
        return [self.reconciler]

    def _wake_reconciler(self) -> None:
        if self.reconciler is not None:
            self.reconciler.wake()

    async def _remove_orphan_blobs(self) -> None:
        """Delete blobs a crash left renamed into place but never committed to the index.

        Only folders changed since the previous start are read (``DATA/last-start``), so this
        stays cheap with a million blobs; a first start on old data reads them all.
        """
        assert self.blobs is not None and self.index is not None
        marker = self.config.data_dir / "last-start"
        since = marker.stat().st_mtime - 1 if marker.exists() else 0.0
        marker.touch()
        candidates = await asyncio.to_thread(self.blobs.digests_changed_since, since)
        orphans = set(candidates) - await self.index.known_digests(candidates)
        for digest in orphans:
            self.blobs.delete(digest)
        if orphans:
            log.warning("removed %d blobs left by an interrupted store", len(orphans))

    def add_component(self, component: Component) -> None:
        self.components.append(component)

    async def start(self) -> None:
        for component in self.components:
            await component.start()
            log.info("%s started", component.name)

    async def stop(self) -> None:
        receivers = [c for c in self.components if c.name.startswith("dimse")]
        others = [c for c in reversed(self.components) if c not in receivers]
        # every DICOM receiver drains at once, then the rest stops in reverse order
        await asyncio.gather(*(self._stop_one(c) for c in receivers))
        for component in others:
            await self._stop_one(component)
        if self.policy:
            await self.policy.stop()
        if self.index:
            await self.index.close()

    @staticmethod
    async def _stop_one(component: Component) -> None:
        try:
            await component.stop()
        except Exception:
            log.exception("%s did not stop cleanly", component.name)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Open, start, serve until SIGTERM/SIGINT, then drain and stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        systemd = SystemdLink.from_env(self.liveness_problem)
        systemd.status("opening the index")
        await self.open()
        try:
            systemd.status("starting components")
            await self.start()
            systemd.ready(self._status_line())
            log.info(
                "Mekong %s node ready: HTTP http://%s:%s/ · DICOM %s@%s:%s · HL7 %s:%s · data %s",
                self.config.mode,
                self.config.bind,
                self.config.http.port,
                self.config.dicom.ae_title,
                self.config.bind,
                self.config.dicom.port,
                self.config.bind,
                self.config.hl7.port,
                self.config.data_dir,
            )
            await self._stop.wait()
            log.info("stopping: finishing in-flight work")
        finally:
            await systemd.stopping("stopping: finishing in-flight work")
            await self.stop()
            systemd.close()
        log.info("stopped")

    def _status_line(self) -> str:
        waiting = [f"{n} {s}" for n, s in self.component_states().items() if s != "running"]
        return f"serving ({', '.join(waiting)})" if waiting else "serving"

    def liveness_problem(self) -> str | None:
        """Why the node is hung, or None (the systemd watchdog's check, QOS-3.1)."""
        writer = self.index.writer if self.index else None
        return writer.problem(stuck_after()) if writer else "the index is not open"

    def component_states(self) -> dict[str, str]:
        return {c.name: c.state for c in self.components}


def _register_mode(node: Node) -> None:
    package = {"edge": "mekong.edge", "hub": "mekong.central"}[node.config.mode]
    importlib.import_module(package).register(node)
