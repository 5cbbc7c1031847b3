"""WADO-RS (PS3.18 §10.4): whole instances and metadata, checked against the source files, with
dicomweb-client as the independent client; plain HTTP for headers and gzip."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from tests.conftest import config_args
from tests.dicomweb_support import (
    EXPLICIT_LE,
    OHIF_FRAMES_ACCEPT,
    Uids,
    assert_json_error,
    client,
    http,
    loaded_node,
    multipart_parts,
    storescu,
)
from tests.nodeproc import NodeProcess
from tools import gendata
from tools.gendata import decoded_pixels

# Per instance, what OHIF reads from series metadata (notes/viewer-ohif.md §2).
OHIF_TAGS = [
    "00080016", "00080018", "00080060", "0020000D", "0020000E", "00200011", "00200013",
    "00200032", "00200037", "00280002", "00280004", "00280010", "00280011", "00280030",
    "00280100", "00280101", "00280102", "00280103", "00281050", "00281051", "00281052",
    "00281053", "00083002",
]  # fmt: skip


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Iterator[NodeProcess]:
    plain = [*sorted((dataset_dir / "ct").glob("*.dcm")), *(dataset_dir / "us").glob("*.dcm")]
    plain += [*(dataset_dir / "vn").glob("*.dcm")]
    j2k = list((dataset_dir / "j2k").glob("*.dcm"))
    with loaded_node(tmp_path_factory.mktemp("wado-node"), (plain, "-R"), (j2k, "-xv")) as node:
        yield node


def by_sop(paths: list[Path]) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, paths)}


def assert_same_instances(received: list[pydicom.Dataset], sources: list[Path]) -> None:
    expected = by_sop(sources)
    assert sorted(str(ds.SOPInstanceUID) for ds in received) == sorted(expected)
    for ds in received:
        assert ds.PixelData == expected[str(ds.SOPInstanceUID)].PixelData, ds.SOPInstanceUID


def ct_files(dataset_dir: Path) -> list[Path]:
    return sorted((dataset_dir / "ct").glob("*.dcm"))


def one(dataset_dir: Path, kind: str) -> Path:
    [path] = (dataset_dir / kind).glob("*.dcm")
    return path


# --- whole instances --------------------------------------------------------------------------


def test_retrieve_study_gives_every_stored_instance(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(ct_files(dataset_dir)[0])
    assert_same_instances(client(pacs).retrieve_study(uids.study), ct_files(dataset_dir))


def test_retrieve_series(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(ct_files(dataset_dir)[0])
    received = client(pacs).retrieve_series(uids.study, uids.series)
    assert_same_instances(received, ct_files(dataset_dir))


def test_retrieve_multiframe_instance(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(one(dataset_dir, "us"))
    ds = client(pacs).retrieve_instance(uids.study, uids.series, uids.sop)
    assert_same_instances([ds], [one(dataset_dir, "us")])


def test_retrieve_j2k_with_any_transfer_syntax_keeps_the_stored_codestream(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    uids = Uids.of(one(dataset_dir, "j2k"))
    ds = client(pacs).retrieve_instance(
        uids.study, uids.series, uids.sop, media_types=(("application/dicom", "*"),)
    )
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert_same_instances([ds], [one(dataset_dir, "j2k")])


def test_retrieve_j2k_without_transfer_syntax_gives_explicit_little_endian(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    """PS3.18 §8.7.8.2 / Table 8.7.3-2: no transfer-syntax parameter means the default one,
    Explicit VR Little Endian, for application/dicom."""
    uids = Uids.of(one(dataset_dir, "j2k"))
    path = f"/dicom-web/studies/{uids.study}/series/{uids.series}/instances/{uids.sop}"
    reply = http(pacs, path, {"Accept": 'multipart/related; type="application/dicom"'})
    [part] = multipart_parts(reply)
    assert part.content_type == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    ds = pydicom.dcmread(io.BytesIO(part.body))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert ds.PixelData == decoded_pixels(one(dataset_dir, "j2k"))


def test_retrieve_with_an_unacceptable_accept_is_406_json(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    uids = Uids.of(ct_files(dataset_dir)[0])
    assert_json_error(http(pacs, uids.series_path, {"Accept": "image/gif"}), 406)


def test_retrieve_part_headers_name_the_transfer_syntax(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    uids = Uids.of(ct_files(dataset_dir)[0])
    reply = http(pacs, uids.path, {"Accept": 'multipart/related; type="application/dicom"'})
    [part] = multipart_parts(reply)
    assert part.content_type == f"application/dicom; transfer-syntax={EXPLICIT_LE}"


# --- metadata ---------------------------------------------------------------------------------


def test_series_metadata_has_what_ohif_needs(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(ct_files(dataset_dir)[0])
    metadata = client(pacs).retrieve_series_metadata(uids.study, uids.series)
    assert len(metadata) == 5
    for instance in metadata:
        missing = [tag for tag in OHIF_TAGS if tag not in instance]
        assert not missing, missing
        assert instance["00083002"]["Value"] == [EXPLICIT_LE]
        assert set(instance["7FE00010"]) == {"vr", "BulkDataURI"}
        pydicom.Dataset.from_json(instance, bulk_data_uri_handler=lambda *_: b"")


def test_study_metadata_lists_every_instance(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(ct_files(dataset_dir)[0])
    metadata = client(pacs).retrieve_study_metadata(uids.study)
    datasets = [
        pydicom.Dataset.from_json(m, bulk_data_uri_handler=lambda *_: b"") for m in metadata
    ]
    assert {str(ds.SOPInstanceUID) for ds in datasets} == set(by_sop(ct_files(dataset_dir)))


def test_multiframe_metadata_has_number_of_frames(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(one(dataset_dir, "us"))
    [instance] = client(pacs).retrieve_series_metadata(uids.study, uids.series)
    assert instance["00280008"]["Value"] == [20]


def test_j2k_metadata_names_the_stored_syntax(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(one(dataset_dir, "j2k"))
    [instance] = client(pacs).retrieve_series_metadata(uids.study, uids.series)
    assert instance["00083002"]["Value"] == [JPEG2000Lossless]


def test_pixel_data_bulk_data_uri_resolves_against_the_series(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    """OHIF (fixBulkDataURI) resolves a relative BulkDataURI against the series URL."""
    source = ct_files(dataset_dir)[0]
    uids = Uids.of(source)
    metadata = client(pacs).retrieve_series_metadata(uids.study, uids.series)
    [instance] = [m for m in metadata if m["00080018"]["Value"] == [uids.sop]]
    uri = instance["7FE00010"]["BulkDataURI"]
    absolute = uri if uri.startswith("http") else f"{pacs.url}{uids.series_path}/{uri}"
    [data] = client(pacs).retrieve_bulkdata(absolute)
    assert data == pydicom.dcmread(source).PixelData


def bulk_path(source: Path) -> str:
    return f"{Uids.of(source).path}/bulk/7FE00010"


def test_bulk_data_as_a_single_part_when_only_octet_stream_is_accepted(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    """OHIF with ``singlepart: 'bulkdata'`` (notes/viewer-ohif.md §5) takes the raw value."""
    source = ct_files(dataset_dir)[0]
    reply = http(pacs, bulk_path(source), {"Accept": "application/octet-stream"})
    assert reply.status == 200
    assert reply.media_type == "application/octet-stream", reply.headers["Content-Type"]
    assert reply.body == pydicom.dcmread(source).PixelData


def test_bulk_data_with_an_unacceptable_accept_is_406_json(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    reply = http(pacs, bulk_path(ct_files(dataset_dir)[0]), {"Accept": "image/gif"})
    assert_json_error(reply, 406)


def test_metadata_keeps_the_vietnamese_name_as_utf8(pacs: NodeProcess, dataset_dir: Path) -> None:
    uids = Uids.of(one(dataset_dir, "vn"))
    reply = http(pacs, f"{uids.series_path}/metadata")
    assert reply.status == 200
    assert gendata.VIETNAMESE_NAME.encode("utf-8") in reply.body
    [instance] = reply.json()
    assert instance["00100010"]["Value"] == [{"Alphabetic": gendata.VIETNAMESE_NAME}]


def test_metadata_is_gzipped_when_asked_and_identical_after_decompression(
    pacs: NodeProcess, dataset_dir: Path
) -> None:
    path = f"{Uids.of(ct_files(dataset_dir)[0]).series_path}/metadata"
    plain = http(pacs, path)
    zipped = http(pacs, path, {"Accept-Encoding": "gzip"})
    assert plain.status == zipped.status == 200
    assert plain.headers["Content-Encoding"] is None
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(zipped.body) < len(plain.body)
    assert gzip.decompress(zipped.body) == plain.body


def test_metadata_is_not_gzipped_when_gzip_is_refused(pacs: NodeProcess, dataset_dir: Path) -> None:
    """RFC 9110 §12.5.3: ``gzip;q=0`` means gzip is not acceptable."""
    path = f"{Uids.of(ct_files(dataset_dir)[0]).series_path}/metadata"
    reply = http(pacs, path, {"Accept-Encoding": "gzip;q=0, identity"})
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] is None


def test_series_metadata_includes_an_instance_stored_after_it_was_served(
    pacs: NodeProcess, tmp_path: Path
) -> None:
    slices = gendata.ct_series(tmp_path, 3, 32, 32, patient_id="WADOINV01")
    uids = Uids.of(slices[0])
    storescu(pacs, slices[:2])
    before = client(pacs).retrieve_series_metadata(uids.study, uids.series)
    assert len(before) == 2
    storescu(pacs, slices[2:])
    after = client(pacs).retrieve_series_metadata(uids.study, uids.series)
    assert {m["00080018"]["Value"][0] for m in after} == {Uids.of(p).sop for p in slices}
    study_level = client(pacs).retrieve_study_metadata(uids.study)
    assert len(study_level) == 3


def test_replaced_instance_shows_its_new_version_in_metadata_and_frames(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    """A corrected re-send under ``duplicate_policy = "replace"``: the cached series metadata
    and the instance lookup must not keep serving the first version."""
    node = node_factory(extra_args=config_args(tmp_path / "n.toml", duplicate_policy="replace"))
    node.start()
    [source] = gendata.ct_series(tmp_path / "v1", 1, 32, 32, patient_id="WADOREPL01")
    uids = Uids.of(source)
    storescu(node, [source])
    assert http(node, f"{uids.series_path}/metadata").status == 200  # cached now
    assert http(node, f"{uids.path}/frames/1").status == 200
    corrected = pydicom.dcmread(source)
    corrected.WindowCenter = 77
    corrected.PixelData = (corrected.pixel_array + 1).astype("<i2").tobytes()
    corrected.save_as(tmp_path / "v2.dcm")
    storescu(node, [tmp_path / "v2.dcm"])

    [instance] = http(node, f"{uids.series_path}/metadata").json()
    assert instance["00281050"]["Value"] == [77]
    [part] = multipart_parts(http(node, f"{uids.path}/frames/1", {"Accept": OHIF_FRAMES_ACCEPT}))
    assert part.body == corrected.PixelData
