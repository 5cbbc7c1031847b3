"""The capture component: devices from the configuration and the REST API, their clips and
snapshots, and closing devices nobody uses (RIS-5.6, RIS-6.7, FEAT-2.1).

Devices added over REST are kept in ``DATA/capture-devices.json`` (a configured device of the
same name wins). A clip ends when it is stopped, when its length is reached, or when the node
stops; in every case it is stored, and the result (SOP Instance UID, frames, dropped,
duplicated, stop → stored seconds) stays readable in the device's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mekong.edge.capture.device import CaptureDevice, DeviceBusy
from mekong.edge.capture.images import cropped
from mekong.edge.capture.recording import ClipResult
from mekong.edge.capture.store import Stored, header_maker, store_clip, store_snapshot
from mekong.edge.labels.bind import SCAN_SECONDS, accession_in_frames
from mekong.edge.orders import OrderContext, UnknownOrder, order_context
from mekong.shared.archive import Archive
from mekong.shared.config import CaptureDeviceConfig, ConfigError, validate_capture_device
from mekong.shared.db.index import Index

log = logging.getLogger(__name__)
IDLE_CLOSE_SECONDS = 60.0
Audit = Callable[[str, str, dict[str, Any]], None]  # (outcome, object, detail)


class UnknownDevice(LookupError):
    pass


class CaptureManager:
    name = "capture"

    def __init__(self, data_dir: Path, configured: tuple[CaptureDeviceConfig, ...],
                 index: Index, archive: Archive) -> None:  # fmt: skip
        self.work_dir = data_dir / "capture"
        self.saved_file = data_dir / "capture-devices.json"
        self.configured = {d.name: d for d in configured}
        self.index, self.archive = index, archive
        self.devices: dict[str, CaptureDevice] = {}
        self.viewers: dict[str, int] = {}
        self._storing: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._idle_task: asyncio.Task | None = None
        self.state = "stopped"

    # --- component ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.work_dir.glob("*.*"):  # an interrupted clip has no MP4 index
            log.warning("capture: removing %s left by an interrupted clip", leftover.name)
            leftover.unlink()
        for config in [*self._saved(), *self.configured.values()]:
            self.devices[config.name] = CaptureDevice(config, self.work_dir)
        self._idle_task = asyncio.create_task(self._close_idle())
        self.state = "running"

    async def stop(self) -> None:
        self.state = "draining"
        if self._idle_task:
            self._idle_task.cancel()
        for name, device in self.devices.items():
            if device.recording is not None:
                with contextlib.suppress(Exception):
                    await self.stop_clip(name)
        await asyncio.gather(*(asyncio.to_thread(d.close) for d in self.devices.values()))
        self.state = "stopped"

    async def health(self) -> dict[str, Any]:
        """The capture section of /api/health (RIS-2.1): each device's state and clip."""
        return {name: {"state": d.state, "error": d.error,
                       "recording": d.recording.counters() if d.recording else None}
                for name, d in self.devices.items()}  # fmt: skip

    # --- devices -----------------------------------------------------------------------------

    def device(self, name: str) -> CaptureDevice:
        try:
            return self.devices[name]
        except KeyError:
            raise UnknownDevice(f"no capture device named {name!r}") from None

    async def put_device(self, config: CaptureDeviceConfig) -> CaptureDevice:
        """Add or replace a device (REST); refused for configured ones and while recording."""
        validate_capture_device(config, "device")
        if config.name in self.configured:
            raise ConfigError(f"device {config.name!r} is set in the node configuration")
        old = self.devices.get(config.name)
        if old is not None:
            if old.recording is not None:
                raise ConfigError(f"device {config.name!r} is recording; stop it first")
            await asyncio.to_thread(old.close)
        self.devices[config.name] = CaptureDevice(config, self.work_dir)
        await asyncio.to_thread(self._save)
        return self.devices[config.name]

    def _saved(self) -> list[CaptureDeviceConfig]:
        if not self.saved_file.exists():
            return []
        found = []
        for item in json.loads(self.saved_file.read_text()):
            item["crop"] = tuple(item.get("crop", ()))
            found.append(CaptureDeviceConfig(**item))
        return found

    def _save(self) -> None:
        own = [dataclasses.asdict(d.config) for n, d in self.devices.items()
               if n not in self.configured]  # fmt: skip
        temp = self.saved_file.with_suffix(".tmp")
        temp.write_text(json.dumps(own, ensure_ascii=False, indent=1))
        temp.replace(self.saved_file)

    # --- clip and snapshot ---------------------------------------------------------------------

    async def start_clip(
        self, name: str, accession: str, seconds: float, audit: Audit
    ) -> dict[str, Any]:
        device = self.device(name)
        config = device.config
        if not accession.strip() and device.recording is None:
            accession = await self._label_accession(device)
        ctx = await order_context(self.index, accession, config.modality)
        if device.recording is not None:
            raise DeviceBusy(
                f"{name} is recording for accession {device.recording.accession}; stop it first"
            )
        if name in self._storing and not self._storing[name].done():
            await self._storing[name]  # the previous clip of this device is still being stored
        await asyncio.to_thread(device.open)
        recording = device.start_clip(ctx.accession, seconds, header_maker(config, ctx))
        task = asyncio.create_task(self._finish(device, ctx, recording.result, audit))
        self._storing[name] = task
        return device.status()

    async def stop_clip(self, name: str) -> dict[str, Any]:
        """End the clip (if still running) and wait until it is stored; its result."""
        device = self.device(name)
        device.stop_clip()
        task = self._storing.get(name)
        if task is None:
            raise LookupError(f"{name} has recorded no clip since the node started")
        return await asyncio.shield(task)

    async def _finish(
        self, device: CaptureDevice, ctx: OrderContext, future, audit: Audit
    ) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        clip: ClipResult = await asyncio.wrap_future(future)
        ended = time.monotonic()
        outcome: dict[str, Any] = {
            "accession": ctx.accession, "frames_sent": clip.frames, "dropped": clip.dropped,
            "duplicated": clip.duplicated, "seconds": round(clip.stopped_at - clip.started_at, 2),
        }  # fmt: skip
        try:
            if clip.error:
                raise RuntimeError(clip.error)
            stored = await store_clip(self.archive, device.config, ctx, clip)
            outcome.update(_stored_json(stored), stored=True)
        except Exception as exc:
            log.error("capture %s: clip not stored: %s", device.config.name, exc)
            outcome.update(stored=False, error=str(exc))
        outcome["store_seconds"] = round(time.monotonic() - ended, 3)
        outcome.update({k: v for k, v in clip.extra.items() if k == "store_steps"})
        clip.extra.update(outcome)
        audit("success" if outcome["stored"] else "failure", outcome.get("sop_uid", ""),
              {**outcome, "device": device.config.name, "patient_id": ctx.patient_id})  # fmt: skip
        return outcome

    async def snapshot(self, name: str, accession: str, audit: Audit) -> dict[str, Any]:
        device = self.device(name)
        if not accession and device.recording is not None:
            accession = device.recording.accession
        if not accession.strip():
            accession = await self._label_accession(device)
        ctx = await order_context(self.index, accession, device.config.modality)
        await asyncio.to_thread(device.open)
        frame = device.latest
        assert frame is not None
        stored = await store_snapshot(self.archive, device.config, ctx,
                                      cropped(frame, device.box))  # fmt: skip
        result = {"accession": ctx.accession, **_stored_json(stored)}
        audit("success", stored.sop_uid, {**result, "device": name,
                                          "patient_id": ctx.patient_id})  # fmt: skip
        return result

    async def _label_accession(self, device: CaptureDevice) -> str:
        """No accession given: the order of a QR label shown to the camera (FEAT-5.3)."""
        await asyncio.to_thread(device.open)
        accession = await accession_in_frames(self.index, lambda: device.latest)
        if not accession:
            raise UnknownOrder("no accession given and no order label seen by the camera "
                               f"within {SCAN_SECONDS:.0f} s")  # fmt: skip
        log.info("capture %s: label of order %s seen", device.config.name, accession)
        return accession

    async def open_for_preview(self, name: str) -> CaptureDevice:
        device = self.device(name)
        await asyncio.to_thread(device.open)
        return device

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(5)
            now = time.monotonic()
            for name, device in list(self.devices.items()):
                idle = now - device.last_used > IDLE_CLOSE_SECONDS
                if (device.state != "closed" and device.recording is None
                        and not self.viewers.get(name) and idle):  # fmt: skip
                    log.info("capture %s: closed after %.0f s unused", name, IDLE_CLOSE_SECONDS)
                    await asyncio.to_thread(device.close)


def _stored_json(stored: Stored) -> dict[str, Any]:
    return {"sop_uid": stored.sop_uid, "sop_class_uid": stored.sop_class_uid,
            "study_uid": stored.study_uid, "series_uid": stored.series_uid,
            "frames": stored.frames}  # fmt: skip
