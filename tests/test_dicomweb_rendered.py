"""Rendered resources and thumbnails (PS3.18 §10.4.1.1.3), H.264 video with byte ranges, the
Encapsulated PDF, and WADO-URI (PS3.18 §9) for older HIS integrations."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import blob_files, index_digests
from tests.dicomweb_support import (
    Uids,
    assert_json_error,
    client,
    http,
    image,
    loaded_node,
    pixel_spread,
)
from tests.nodeproc import NodeProcess
from tools import gendata

MPEG4_HP41 = "1.2.840.10008.1.2.4.102"
VIDEO_FRAMES = 50


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("rendered-data")
    return {
        "ct": gendata.ct_series(out / "ct", 1, 128, 128, patient_id="RCT001")[0],
        "video": gendata.video_endoscopic(out / "video", frames=VIDEO_FRAMES)[0],
        "pdf": gendata.encapsulated_pdf(out / "pdf")[0],
    }


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, files: dict[str, Path]) -> Iterator[NodeProcess]:
    with loaded_node(
        tmp_path_factory.mktemp("rendered-node"),
        ([files["ct"], files["pdf"]], "-R"),
        ([files["video"]], "-R -xn"),
    ) as node:
        yield node


@pytest.fixture(scope="module")
def ct(files: dict[str, Path]) -> Uids:
    return Uids.of(files["ct"])


@pytest.fixture(scope="module")
def video(files: dict[str, Path]) -> Uids:
    return Uids.of(files["video"])


# --- images -----------------------------------------------------------------------------------


def test_rendered_instance_is_a_jpeg_with_content(pacs: NodeProcess, ct: Uids) -> None:
    data = client(pacs).retrieve_instance_rendered(
        ct.study, ct.series, ct.sop, media_types=("image/jpeg",)
    )
    picture = image(data)
    assert picture.format == "JPEG" and picture.size == (128, 128)
    assert pixel_spread(picture) > 10  # not blank


def test_rendered_accept_query_png_gives_png(pacs: NodeProcess, ct: Uids) -> None:
    reply = http(pacs, f"{ct.path}/rendered?accept=image/png")
    assert reply.status == 200 and reply.media_type == "image/png"
    assert image(reply.body).format == "PNG"


def test_rendered_viewport_bounds_the_size(pacs: NodeProcess, ct: Uids) -> None:
    reply = http(pacs, f"{ct.path}/rendered?viewport=64,64")
    assert reply.status == 200
    assert image(reply.body).size == (64, 64)


def test_rendered_with_only_an_unsupported_image_type_is_406_json(
    pacs: NodeProcess, ct: Uids
) -> None:
    assert_json_error(http(pacs, f"{ct.path}/rendered", {"Accept": "image/gif"}), 406)


@pytest.mark.parametrize("level", ["study_path", "series_path", "path"])
def test_thumbnail_at_each_level_is_a_jpeg(pacs: NodeProcess, ct: Uids, level: str) -> None:
    reply = http(pacs, f"{getattr(ct, level)}/thumbnail")
    assert reply.status == 200 and reply.media_type == "image/jpeg"
    assert pixel_spread(image(reply.body)) > 10


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?viewport=256,256", {"Accept": "image/jpeg"}), ("?accept=image/jpeg", {})],
    ids=["ohif-3.13", "ohif-3.12"],
)
def test_ohif_thumbnail_requests(
    pacs: NodeProcess, ct: Uids, query: str, headers: dict[str, str]
) -> None:
    reply = http(pacs, f"{ct.path}/thumbnail{query}", headers)
    assert reply.status == 200 and reply.media_type == "image/jpeg"
    assert image(reply.body).format == "JPEG"


# --- video ------------------------------------------------------------------------------------


def test_video_metadata_lets_ohif_detect_it(pacs: NodeProcess, video: Uids) -> None:
    [instance] = client(pacs).retrieve_series_metadata(video.study, video.series)
    assert instance["00083002"]["Value"] == [MPEG4_HP41]
    assert "BulkDataURI" in instance["7FE00010"]


def test_video_rendered_is_mp4_that_ffprobe_reads_as_h264(pacs: NodeProcess, video: Uids) -> None:
    url = f"{pacs.url}{video.path}/rendered"
    assert http(pacs, f"{video.path}/rendered").media_type == "video/mp4"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,nb_read_frames", "-of", "json", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    [stream] = json.loads(probe.stdout)["streams"]
    assert stream["codec_name"] == "h264"
    assert int(stream["nb_read_frames"]) == VIDEO_FRAMES


def test_video_series_thumbnail_is_a_still_from_the_video(pacs: NodeProcess, video: Uids) -> None:
    reply = http(pacs, f"{video.series_path}/thumbnail")
    assert reply.status == 200 and reply.media_type == "image/jpeg"
    assert pixel_spread(image(reply.body)) > 10


def test_video_range_gives_206_with_exactly_those_bytes(pacs: NodeProcess, video: Uids) -> None:
    whole = http(pacs, f"{video.path}/rendered")
    assert whole.status == 200 and whole.headers["Accept-Ranges"] == "bytes"
    reply = http(pacs, f"{video.path}/rendered", {"Range": "bytes=0-99"})
    assert reply.status == 206
    assert reply.headers["Content-Range"] == f"bytes 0-99/{len(whole.body)}"
    assert reply.body == whole.body[:100]


def test_video_range_past_the_end_is_416(pacs: NodeProcess, video: Uids) -> None:
    reply = http(pacs, f"{video.path}/rendered", {"Range": "bytes=100000000-"})
    assert reply.status == 416


def test_416_tells_the_length_in_content_range(pacs: NodeProcess, video: Uids) -> None:
    """RFC 9110 §15.5.17: a 416 to a byte-range request carries ``Content-Range: bytes */N``."""
    total = len(http(pacs, f"{video.path}/rendered").body)
    reply = http(pacs, f"{video.path}/rendered", {"Range": "bytes=100000000-"})
    assert reply.headers["Content-Range"] == f"bytes */{total}"


# --- PDF --------------------------------------------------------------------------------------


def test_pdf_rendered_is_application_pdf(pacs: NodeProcess, files: dict[str, Path]) -> None:
    reply = http(pacs, f"{Uids.of(files['pdf']).path}/rendered")
    assert reply.status == 200 and reply.media_type == "application/pdf"
    assert reply.body.startswith(b"%PDF")


def test_pdf_rendered_is_the_document_without_its_dicom_padding(
    pacs: NodeProcess, files: dict[str, Path]
) -> None:
    """PS3.3 C.24.2.1: Encapsulated Document Length is the document's length without padding."""
    ds = pydicom.dcmread(files["pdf"])
    document = ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength]
    assert http(pacs, f"{Uids.of(files['pdf']).path}/rendered").body == document


# --- WADO-URI ---------------------------------------------------------------------------------


def wado_uri(uids: Uids, extra: str = "") -> str:
    query = f"studyUID={uids.study}&seriesUID={uids.series}&objectUID={uids.sop}"
    return f"/wado?requestType=WADO&{query}{extra}"


def test_wado_uri_application_dicom_is_the_stored_file(pacs: NodeProcess, ct: Uids) -> None:
    reply = http(pacs, wado_uri(ct, "&contentType=application/dicom"))
    assert reply.status == 200 and reply.media_type == "application/dicom"
    digest = index_digests(pacs.data_dir)[ct.sop]
    assert reply.body == blob_files(pacs.data_dir)[digest].read_bytes()


def test_wado_uri_default_is_a_jpeg(pacs: NodeProcess, ct: Uids) -> None:
    reply = http(pacs, wado_uri(ct))
    assert reply.status == 200 and reply.media_type == "image/jpeg"
    assert pixel_spread(image(reply.body)) > 10


def test_wado_uri_without_request_type_is_400_json(pacs: NodeProcess, ct: Uids) -> None:
    path = f"/wado?studyUID={ct.study}&seriesUID={ct.series}&objectUID={ct.sop}"
    assert_json_error(http(pacs, path), 400)


def test_wado_uri_unknown_object_is_404_json(pacs: NodeProcess, ct: Uids) -> None:
    unknown = Uids(ct.study, ct.series, "1.2.3.4.5")
    assert_json_error(http(pacs, wado_uri(unknown)), 404)
