"""WADO-RS frames (PS3.18 §10.4.1.1.1) as OHIF's image loader fetches them: byte-equal to the
stored pixels, the part header it parses, stored or decoded transfer syntaxes, 4xx answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import get_frame

from tests.dicomweb_support import (
    EXPLICIT_LE,
    OHIF_FRAMES_ACCEPT,
    Reply,
    Uids,
    assert_json_error,
    client,
    http,
    loaded_node,
    multipart_parts,
)
from tests.nodeproc import NodeProcess
from tools.gendata import decoded_pixels

US_FRAMES = 20
COMPRESSED = {"j2k": ("-xv", "1.2.840.10008.1.2.4.90"), "jls": ("-xt", "1.2.840.10008.1.2.4.80")}


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Iterator[NodeProcess]:
    plain = [*sorted((dataset_dir / "ct").glob("*.dcm")), *(dataset_dir / "us").glob("*.dcm")]
    batches = [(plain, "-R")] + [
        (list((dataset_dir / kind).glob("*.dcm")), flag) for kind, (flag, _) in COMPRESSED.items()
    ]
    with loaded_node(tmp_path_factory.mktemp("frames-node"), *batches) as node:
        yield node


def one(dataset_dir: Path, kind: str) -> Path:
    return sorted((dataset_dir / kind).glob("*.dcm"))[0]


def frames(node: NodeProcess, source: Path, numbers: str, accept: str | None) -> Reply:
    headers = {"Accept": accept} if accept is not None else {}
    return http(node, f"{Uids.of(source).path}/frames/{numbers}", headers)


def us_frame(source: Path, number: int) -> bytes:
    everything = decoded_pixels(source)
    size = len(everything) // US_FRAMES
    return everything[(number - 1) * size : number * size]


# --- native pixel data ------------------------------------------------------------------------


def test_ct_frame_equals_the_decoded_source_pixels(pacs: NodeProcess, dataset_dir: Path) -> None:
    source = one(dataset_dir, "ct")
    [part] = multipart_parts(frames(pacs, source, "1", OHIF_FRAMES_ACCEPT))
    assert part.body == decoded_pixels(source)


def test_ct_frame_through_dicomweb_client(pacs: NodeProcess, dataset_dir: Path) -> None:
    source = one(dataset_dir, "ct")
    uids = Uids.of(source)
    [frame] = client(pacs).retrieve_instance_frames(uids.study, uids.series, uids.sop, [1])
    assert frame == decoded_pixels(source)


def test_ohif_frames_reply_has_the_shape_its_parser_expects(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    """extractMultipart: the body begins with ``--boundary``; the transfer syntax is read from
    the first part-header line that begins exactly ``Content-Type:``."""
    reply = frames(pacs, one(dataset_dir, "ct"), "1", OHIF_FRAMES_ACCEPT)
    assert reply.status == 200
    assert reply.body.startswith(b"--" + reply.headers.get_param("boundary").encode() + b"\r\n")
    [part] = multipart_parts(reply)
    assert (
        part.header_lines[0]
        == f"Content-Type: application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    )


def test_multiframe_frames_listed_in_one_request_come_back_in_order(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    source = one(dataset_dir, "us")
    parts = multipart_parts(frames(pacs, source, "1,3,20", OHIF_FRAMES_ACCEPT))
    assert [p.body for p in parts] == [us_frame(source, n) for n in (1, 3, 20)]


# --- compressed pixel data --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(COMPRESSED))
def test_any_transfer_syntax_returns_the_stored_codestream(
    pacs: NodeProcess, dataset_dir: Path, kind: str
) -> None:
    source = one(dataset_dir, kind)
    [part] = multipart_parts(frames(pacs, source, "1", OHIF_FRAMES_ACCEPT))
    syntax = COMPRESSED[kind][1]
    assert part.content_type == f"application/octet-stream; transfer-syntax={syntax}"
    assert part.body == get_frame(pydicom.dcmread(source).PixelData, 0, number_of_frames=1)


@pytest.mark.parametrize("kind", sorted(COMPRESSED))
def test_explicit_little_endian_asked_returns_decoded_pixels(
    pacs: NodeProcess, dataset_dir: Path, kind: str
) -> None:
    source = one(dataset_dir, kind)
    uids = Uids.of(source)
    [frame] = client(pacs).retrieve_instance_frames(
        uids.study, uids.series, uids.sop, [1],
        media_types=(("application/octet-stream", EXPLICIT_LE),),
    )  # fmt: skip
    assert frame == decoded_pixels(source)


def test_decoded_frame_part_header_says_explicit_little_endian(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    accept = f"multipart/related; type=application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    [part] = multipart_parts(frames(pacs, one(dataset_dir, "j2k"), "1", accept))
    assert part.content_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"


# --- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["0", str(US_FRAMES + 1), "1,99"])
def test_frame_that_does_not_exist_is_4xx_json(
    pacs: NodeProcess, dataset_dir: Path, number: str
) -> None:
    reply = frames(pacs, one(dataset_dir, "us"), number, OHIF_FRAMES_ACCEPT)
    assert_json_error(reply, (400, 404))


def test_frame_list_that_is_not_numbers_is_400_json(pacs: NodeProcess, dataset_dir: Path) -> None:
    assert_json_error(frames(pacs, one(dataset_dir, "us"), "first", OHIF_FRAMES_ACCEPT), 400)


def test_image_gif_only_accept_is_406_json(pacs: NodeProcess, dataset_dir: Path) -> None:
    assert_json_error(frames(pacs, one(dataset_dir, "ct"), "1", "image/gif"), 406)


def test_unavailable_transfer_syntax_is_406_json(pacs: NodeProcess, dataset_dir: Path) -> None:
    accept = (
        "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50"
    )
    assert_json_error(frames(pacs, one(dataset_dir, "j2k"), "1", accept), 406)
