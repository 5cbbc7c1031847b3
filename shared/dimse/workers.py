"""Extra DICOM receiving processes, so ingest uses every core (pynetdicom holds the GIL).

Each worker is a process with its own pynetdicom listener on the node's DICOM port
(SO_REUSEPORT: the kernel spreads new associations over the listeners), its own index
connection and group-commit writer on the shared SQLite database (WAL; writers take turns),
and the shared blob store. A worker dies with the node: Linux delivers SIGKILL to it when its
parent dies (PR_SET_PDEATHSIG), so a kill -9 of the node leaves no receiver behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import signal
from multiprocessing.process import BaseProcess

from mekong.shared import logs
from mekong.shared.config import NodeConfig
from mekong.shared.db.index import Index
from mekong.shared.dicom import configure_pydicom, uids
from mekong.shared.dimse.frontdoor import dicom_listeners
from mekong.shared.dimse.services import open_services
from mekong.shared.storage.blobs import BlobStore

log = logging.getLogger(__name__)
_START_SECONDS = 60.0
_STOP_SECONDS = 45.0
_PR_SET_PDEATHSIG = 1


class DimseWorkers:
    name = "dimse-workers"

    def __init__(self, config: NodeConfig, count: int) -> None:
        self._config = config
        self._count = count
        self._processes: list[BaseProcess] = []
        self._state = "stopped"

    @property
    def state(self) -> str:
        if self._state == "running" and not all(p.is_alive() for p in self._processes):
            return "degraded"
        return self._state

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        for number in range(1, self._count + 1):
            ready = context.Event()
            process = context.Process(
                target=run_worker, args=(self._config, number, ready), name=f"dimse-{number}"
            )
            process.start()
            self._processes.append(process)
            if not await asyncio.to_thread(ready.wait, _START_SECONDS):
                raise RuntimeError(f"DICOM worker {number} did not start")
        self._state = "running"

    async def stop(self) -> None:
        self._state = "draining"
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker drains its associations
        for process in self._processes:
            await asyncio.to_thread(process.join, _STOP_SECONDS)
            if process.is_alive():
                log.warning("DICOM worker %s did not stop; killing it", process.name)
                process.kill()
        self._state = "stopped"


def run_worker(config: NodeConfig, number: int, ready) -> None:  # type: ignore[no-untyped-def]
    """Entry point of a worker process."""
    _die_with_parent()
    logs.configure(config.log_level)
    asyncio.run(_serve(config, number, ready))


async def _serve(config: NodeConfig, number: int, ready) -> None:  # type: ignore[no-untyped-def]
    configure_pydicom()
    uids.configure(config.dicom.uid_root)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    blobs = BlobStore(config.data_dir)
    index = await Index.open(config.index_path)
    index.start_writer(blobs.sync_dirs, config.dicom.duplicate_policy)
    services = await open_services(config, index, blobs)
    listeners = dicom_listeners(config, services, reuse_port=True, first=False)
    await services.audit.start()
    try:
        for listener in listeners:
            await listener.start()
        ready.set()
        log.info("DICOM worker %d ready", number)
        await stop.wait()
    finally:
        await asyncio.gather(*(listener.stop() for listener in reversed(listeners)))
        await services.policy.stop()
        await services.audit.stop()
        await index.close()


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the node's stop() still ends workers on a clean shutdown
        pass
