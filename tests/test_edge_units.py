"""Edge building blocks without a node: constant-frame-rate placement, JPEG markers, Level 4.1
geometry, MP4 encapsulation with patched lengths, and the [edge] configuration checks."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_fragments

from mekong.edge.capture.cfr import CfrClock
from mekong.edge.capture.device import CaptureDevice
from mekong.edge.dicomize.common import Origin
from mekong.edge.dicomize.jpeg import NotJpeg, jpeg_info
from mekong.edge.dicomize.video import clip_header, finish_clip, probe, video_dataset
from mekong.edge.imports.transcode import output_geometry
from mekong.edge.orders import OrderContext
from mekong.shared.config import CaptureDeviceConfig, ConfigError, load_config
from tools import gendata
from tools.capture_source import make_source

CTX = OrderContext("A1", "P1", "", "Lê^Thị Ngọc Ánh", "19900101", "F", "2.25.1", "A1", "",
                   "A1", "", "", "ES")  # fmt: skip


def test_cfr_counts_duplicates_when_late_and_drops_when_early() -> None:
    clock = CfrClock(30)
    placements = [clock.place(t / 30) for t in (0, 1, 2, 5, 5.2, 6)]
    assert [(p.duplicates, p.take) for p in placements] == [
        (0, True), (0, True), (0, True), (2, True), (0, False), (0, True)]  # fmt: skip
    assert (clock.dropped, clock.duplicated) == (1, 2)
    steady = CfrClock(30)
    for n in range(300):  # ±10 ms of jitter stays in its slot
        assert steady.place(n / 30 + 0.01 * np.sin(n * 1.7)).take
    assert (steady.dropped, steady.duplicated) == (0, 0)


def _jpeg(**options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(out, "JPEG", **options)
    return out.getvalue()


def test_jpeg_markers_decide_what_can_be_wrapped() -> None:
    baseline = jpeg_info(_jpeg(subsampling="4:2:0"))
    assert (baseline.rows, baseline.columns, baseline.wrappable) == (16, 24, True)
    assert baseline.photometric == "YBR_FULL_422"
    assert jpeg_info(_jpeg(subsampling="4:4:4")).photometric == "YBR_FULL"
    assert not jpeg_info(_jpeg(progressive=True)).wrappable
    with pytest.raises(NotJpeg, match="cut off"):
        jpeg_info(_jpeg()[:-10])
    with pytest.raises(NotJpeg):
        jpeg_info(b"GIF89a")


def test_level_41_geometry() -> None:
    assert output_geometry(1920, 1080, 30) == (1920, 1080, Fraction(30))
    assert output_geometry(3840, 2160, 30) == (1920, 1080, Fraction(30))
    assert output_geometry(1920, 1080, 60)[2] == 30  # 245 760 macroblocks/s
    assert output_geometry(1280, 720, 60) == (1280, 720, Fraction(60))


def test_clip_header_patched_in_place_is_a_readable_object(tmp_path: Path) -> None:
    mp4 = gendata.mp4_file(tmp_path / "c.mp4", frames=25)
    info = probe(mp4)
    origin = Origin("endo1", "ES", "capture video", 2)
    header = clip_header(video_dataset(CTX, info, 0, "1.2.840.10008.5.1.4.1.1.77.1.1.1", origin))
    target = tmp_path / "clip.dcm"
    target.write_bytes(header.data + mp4.read_bytes())  # as the encoder process leaves it
    assert probe(target, len(header.data)).frames == 25
    finish_clip(target, header, 25)
    ds = pydicom.dcmread(target)
    assert int(ds.NumberOfFrames) == 25 and ds.EncapsulatedPixelDataValueTotalLength == (
        mp4.stat().st_size)  # fmt: skip
    stream = b"".join(list(generate_fragments(ds.PixelData))[1:])
    assert stream[: mp4.stat().st_size] == mp4.read_bytes()
    assert ds.PatientName.original_string == "Lê^Thị Ngọc Ánh".encode()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[edge.capture_devices]]\nname = "a b"\nsource = "x"\n', "name must be"),
        ('[[edge.capture_devices]]\nname = "a"\n', "source is required"),
        ('[[edge.capture_devices]]\nname = "a"\nsource = "x"\ncrop = [0, 0, 8]\n', "crop"),
        ('[[edge.capture_devices]]\nname = "a"\nsource = "x"\nkind = "ct"\n', "kind"),
        (
            '[[edge.capture_devices]]\nname = "a"\nsource = "x"\n'
            '[[edge.capture_devices]]\nname = "a"\nsource = "y"\n',
            "used twice",
        ),
        ('[[edge.watch_folders]]\npath = "/tmp/w"\n', "accession_pattern, accession"),
        ('[[edge.watch_folders]]\npath = "/tmp/w"\naccession_pattern = "("\n', "regular"),
        ('[edge]\ncapture_devices = "x"\n', "array of tables"),
    ],
)
def test_edge_config_errors_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    file = tmp_path / "n.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_config(file)


def test_a_closed_device_opens_again_and_records(tmp_path: Path) -> None:
    source = make_source(tmp_path / "s.mp4", seconds=2, size="320x240")
    device = CaptureDevice(CaptureDeviceConfig(name="d", source=str(source)), tmp_path)
    try:
        for _ in range(2):  # closed when idle, opened again by the next request
            device.open()
            assert device.state == "running" and device.frame_size == (320, 240)
            device.close()
            assert device.state == "closed"
        device.open()
        clip = device.start_clip("A1", seconds=0.5).result.result(timeout=60)
        assert (clip.frames, clip.error) == (15, "")
    finally:
        device.close()
