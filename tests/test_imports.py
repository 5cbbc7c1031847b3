"""Non-DICOM import on a real edge node (RIS-5.7, RIS-6.8, PACS-5.4, FEAT-2.2): watch folder,
upload and the ``mekong import`` / ``mekong capture`` command line.

JPEG, PNG, PDF and MP4 files dropped in a watch folder become DICOM objects dciodvfy accepts;
each original comes back byte for byte; a file written slowly is not taken early; a damaged
file goes to error/ with a reason; the same file twice is imported once.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_fragments

from tests.authn import add_token
from tests.conftest import mekong_cli
from tests.edge_support import (
    NAME,
    call,
    dciodvfy_errors,
    edge_config,
    multipart,
    new_order,
    stored_path,
    wait_for,
)
from tests.nodeproc import NodeProcess
from tools import gendata
from tools.capture_source import make_source

PATTERN = "^(?P<accession>[A-Z0-9]+)_"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("files")
    picture = np.zeros((240, 320, 3), np.uint8)
    picture[:, :, 0] = np.arange(320, dtype=np.uint8)[None, :]
    jpeg, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(picture).save(jpeg, "JPEG", quality=90)
    Image.fromarray(picture).save(png, "PNG")
    return {
        "jpg": jpeg.getvalue(), "png": png.getvalue(), "pdf": gendata._PDF,
        "mp4": gendata.mp4_file(folder / "clip.mp4", frames=30).read_bytes(),
    }  # fmt: skip


@pytest.fixture(scope="module")
def import_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("imports")
    folder = {"path": str(root / "watch"), "device": "ecg1", "accession_pattern": PATTERN,
              "stable_seconds": 2.0}  # fmt: skip
    node = NodeProcess(root / "data", extra_args=edge_config(root / "n.toml", [], [folder]))
    node.watch = root / "watch"  # type: ignore[attr-defined]
    yield node.start()
    node.stop()


def _folder(node: NodeProcess) -> dict:
    return call(node, "GET", "/api/import/folders")[1]["folders"][0]


def _originals(node: NodeProcess) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(node.data_dir / "index.db") as db:
        return dict(db.execute("SELECT filename, sop_uid FROM import_original").fetchall())


def test_four_kinds_from_a_watch_folder(import_node: NodeProcess, files: dict) -> None:
    order = new_order(import_node, "IMP1", modality="OT")
    watch: Path = import_node.watch  # type: ignore[attr-defined]
    for kind, content in files.items():
        (watch / f"IMP1_file.{kind}").write_bytes(content)
    found = wait_for(lambda: len(_originals(import_node)) >= 4 and _originals(import_node))
    classes = {}
    for kind, content in files.items():
        sop_uid = found[f"IMP1_file.{kind}"]
        path = stored_path(import_node, sop_uid)
        assert dciodvfy_errors(path) == [], kind
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.AccessionNumber == "IMP1" and ds.PatientName.original_string == NAME.encode()
        assert ds.StudyInstanceUID == order["procedure"]["study_uid"]
        classes[kind] = (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        status, original = call(import_node, "GET", f"/api/import/originals/{sop_uid}")
        assert status == 200 and original == content, kind  # byte for byte
    assert classes["jpg"] == ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.4.50")
    assert classes["png"] == ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.1")
    assert classes["pdf"][0] == "1.2.840.10008.5.1.4.1.1.104.1"
    assert classes["mp4"] == ("1.2.840.10008.5.1.4.1.1.77.1.4.1", "1.2.840.10008.1.2.4.102")
    jpeg_ds = pydicom.dcmread(stored_path(import_node, found["IMP1_file.jpg"]))
    fragments = list(generate_fragments(jpeg_ds.PixelData))
    assert fragments[-1].rstrip(b"\0") == files["jpg"].rstrip(b"\0")  # wrapped, not re-encoded

    # the same content again, under another name: imported once
    before = _folder(import_node)["imported"]
    (watch / "IMP1_again.jpg").write_bytes(files["jpg"])
    time.sleep(4)
    assert _folder(import_node)["imported"] == before
    assert "IMP1_again.jpg" not in _originals(import_node)


def test_half_written_file_is_not_taken_early(import_node: NodeProcess, files: dict) -> None:
    new_order(import_node, "IMP2", modality="OT")
    target = import_node.watch / "IMP2_slow.png"  # type: ignore[attr-defined]
    content = files["png"]
    done = threading.Event()

    def write_slowly() -> None:
        with open(target, "wb") as handle:
            for start in range(0, len(content), len(content) // 8 + 1):
                handle.write(content[start : start + len(content) // 8 + 1])
                handle.flush()
                time.sleep(0.6)
        done.set()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    while not done.is_set():
        assert "IMP2_slow.png" not in _originals(import_node), "taken while being written"
        assert not (import_node.watch / "error").joinpath("IMP2_slow.png").exists()  # type: ignore[attr-defined]
        time.sleep(0.2)
    writer.join()
    sop_uid = wait_for(lambda: _originals(import_node).get("IMP2_slow.png"))
    assert call(import_node, "GET", f"/api/import/originals/{sop_uid}")[1] == content


def test_damaged_file_goes_to_the_error_folder(import_node: NodeProcess, files: dict) -> None:
    new_order(import_node, "IMP3", modality="OT")
    watch: Path = import_node.watch  # type: ignore[attr-defined]
    (watch / "IMP3_broken.jpg").write_bytes(files["jpg"][: len(files["jpg"]) // 2])
    (watch / "IMP3_notes.txt").write_text("not an image")
    reason = watch / "error" / "IMP3_broken.jpg.reason.txt"
    wait_for(reason.exists)
    assert "cut off" in reason.read_text()
    wait_for((watch / "error" / "IMP3_notes.txt.reason.txt").exists)
    assert not (watch / "IMP3_broken.jpg").exists()
    assert "IMP3_broken.jpg" in _folder(import_node)["errors"]


def test_upload_transcodes_video_that_is_not_high_profile(
    import_node: NodeProcess, tmp_path: Path
) -> None:
    new_order(import_node, "IMP4", modality="ES")
    baseline = tmp_path / "baseline.mp4"
    with av.open(str(baseline), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"profile": "baseline"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for n in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), n * 9, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    body, headers = multipart({"accession": "IMP4", "device": "endo-upload", "kind": "endoscopy"},
                              "baseline.mp4", baseline.read_bytes())  # fmt: skip
    status, result = call(import_node, "POST", "/api/import", data=body, headers=headers)
    assert status == 201 and result["transcoded"], result
    path = stored_path(import_node, result["sop_uids"][0])
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.1.1" and int(ds.NumberOfFrames) == 25
    status, again = call(import_node, "POST", "/api/import", data=body, headers=headers)
    assert status == 200 and again["duplicate"] and again["sop_uids"] == result["sop_uids"]
    body, headers = multipart({"accession": "IMP4"}, "x.txt", b"hello")
    status, error = call(import_node, "POST", "/api/import", data=body, headers=headers)
    assert status == 415 and "not a JPEG" in error["error"]
    body, headers = multipart({"accession": "NOPE"}, "a.pdf", gendata._PDF)
    status, error = call(import_node, "POST", "/api/import", data=body, headers=headers)
    assert status == 404 and "NOPE" in error["error"]


def test_command_line_import_and_capture(
    import_node: NodeProcess, files: dict, tmp_path: Path
) -> None:
    new_order(import_node, "IMP5", modality="XC")
    token = add_token(import_node, "cli_support", "technician")
    (tmp_path / "a.jpg").write_bytes(files["jpg"])
    (tmp_path / "b.pdf").write_bytes(files["pdf"])
    node = ["--url", import_node.url, "--token", token]
    result = mekong_cli("import", str(tmp_path / "a.jpg"), str(tmp_path / "b.pdf"),
                        "--accession", "IMP5", *node)  # fmt: skip
    assert result.returncode == 0, result.stderr
    uids = result.stdout.split()
    assert len(uids) == 2 and all(u.startswith("2.25.") for u in uids)
    bad = mekong_cli("import", str(tmp_path / "a.jpg"), "--accession", "NOPE", *node)
    assert bad.returncode == 1 and "NOPE" in bad.stderr and bad.stdout == ""
    unreachable = mekong_cli("import", str(tmp_path / "a.jpg"), "--accession", "IMP5",
                             "--url", "http://127.0.0.1:9")  # fmt: skip
    assert unreachable.returncode == 2

    source = make_source(tmp_path / "src.mp4", seconds=2, size="640x360")
    admin = ["--url", import_node.url]  # loopback acts as admin: may add a device
    snap = mekong_cli("capture", "--source", str(source), "--accession", "IMP5", "--snapshot",
                      *admin)  # fmt: skip
    assert snap.returncode == 0, snap.stderr
    clip = mekong_cli("capture", "--source", str(source), "--accession", "IMP5",
                      "--seconds", "2", *admin)  # fmt: skip
    assert clip.returncode == 0, clip.stderr
    ds = pydicom.dcmread(stored_path(import_node, clip.stdout.strip()), stop_before_pixels=True)
    assert int(ds.NumberOfFrames) == 60 and ds.Modality == "XC"
    missing = mekong_cli("capture", "--source", "/nonexistent.mp4", "--accession", "IMP5",
                         "--snapshot", "--device", "cam9", *admin)  # fmt: skip
    assert missing.returncode == 1 and "nonexistent" in missing.stderr
