"""STOW-RS (PS3.18 §10.5): store through dicomweb-client, find by DCMTK C-FIND, retrieve by
WADO; refused bodies get a 0008,1198 or 4xx JSON answer and store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import find_sop_uids
from tests.dicomweb_support import (
    Reply,
    Uids,
    assert_json_error,
    client,
    http,
    index_counts,
    loaded_node,
    qido,
)
from tests.nodeproc import NodeProcess
from tools import gendata

BOUNDARY = "mekong-test-boundary"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
WRONG_STUDY = 0xA900  # PS3.18 Table I.2-1 / PS3.4: data set does not match the study
RETRIEVE_URL, FAILED_SEQUENCE, REFERENCED_SEQUENCE = "00081190", "00081198", "00081199"
FAILURE_REASON, SOP_INSTANCE = "00081197", "00081155"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with loaded_node(tmp_path_factory.mktemp("stow-node")) as node:
        yield node


def ct(tmp_path: Path, patient_id: str, count: int = 1) -> list[Path]:
    return gendata.ct_series(tmp_path / patient_id, count, 64, 64, patient_id=patient_id)


def multipart(*parts: bytes, close: bool = True) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    body = b"".join(head + part + b"\r\n" for part in parts)
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def post(
    node: NodeProcess, body: bytes, path: str = "/dicom-web/studies", content_type: str = MULTIPART
) -> Reply:
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    return http(node, path, headers, body, method="POST")


def assert_not_stored(node: NodeProcess, before: dict[str, int], *sources: Path) -> None:
    assert index_counts(node) == before
    for source in sources:
        assert not qido(node, f"instances?SOPInstanceUID={Uids.of(source).sop}")


# --- stored -----------------------------------------------------------------------------------


def test_stow_response_lists_each_instance_with_its_retrieve_url(
    pacs: NodeProcess, tmp_path: Path
) -> None:
    sources = ct(tmp_path, "STOW001", count=2)
    response = client(pacs).store_instances([pydicom.dcmread(p) for p in sources])
    assert "ReferencedSOPSequence" in response, "dicomweb-client read no 0008,1199 in the reply"
    stored = {str(item.ReferencedSOPInstanceUID): item for item in response.ReferencedSOPSequence}
    assert set(stored) == {Uids.of(p).sop for p in sources}
    for source in sources:
        assert str(stored[Uids.of(source).sop].RetrieveURL).endswith(Uids.of(source).path)


def test_stow_over_plain_http_answers_dicom_json_with_working_retrieve_urls(
    pacs: NodeProcess, tmp_path: Path
) -> None:
    [source] = ct(tmp_path, "STOW002")
    reply = post(pacs, multipart(source.read_bytes()))
    assert reply.status == 200, reply.body[:300]
    assert reply.media_type == "application/dicom+json"
    [item] = reply.json()[REFERENCED_SEQUENCE]["Value"]
    assert item[SOP_INSTANCE]["Value"] == [Uids.of(source).sop]
    [url] = item[RETRIEVE_URL]["Value"]
    assert url == f"{pacs.url}{Uids.of(source).path}"
    assert http(pacs, url.removeprefix(pacs.url)).status == 200


def test_stowed_instance_is_found_by_dcmtk_findscu(pacs: NodeProcess, tmp_path: Path) -> None:
    sources = ct(tmp_path, "STOW003", count=2)
    client(pacs).store_instances([pydicom.dcmread(p) for p in sources])
    assert find_sop_uids(pacs, Uids.of(sources[0]).study) == {Uids.of(p).sop for p in sources}


def test_stowed_instance_is_retrievable_by_wado_rs(pacs: NodeProcess, tmp_path: Path) -> None:
    [source] = ct(tmp_path, "STOW004")
    client(pacs).store_instances([pydicom.dcmread(source)])
    uids = Uids.of(source)
    ds = client(pacs).retrieve_instance(uids.study, uids.series, uids.sop)
    assert ds.SOPInstanceUID == uids.sop
    assert ds.PixelData == pydicom.dcmread(source).PixelData


def test_stow_to_its_own_study_url_is_accepted(pacs: NodeProcess, tmp_path: Path) -> None:
    [source] = ct(tmp_path, "STOW005")
    reply = post(pacs, multipart(source.read_bytes()), Uids.of(source).study_path)
    assert reply.status == 200, reply.body[:300]
    assert qido(pacs, f"instances?SOPInstanceUID={Uids.of(source).sop}")


# --- refused, nothing stored ------------------------------------------------------------------


def test_stow_to_another_study_is_409_a900_and_stores_nothing(
    pacs: NodeProcess, tmp_path: Path
) -> None:
    [source] = ct(tmp_path, "STOW010")
    [other] = ct(tmp_path, "STOW011")
    before = index_counts(pacs)
    reply = post(pacs, multipart(source.read_bytes()), Uids.of(other).study_path)
    assert reply.status == 409, reply.body[:300]
    [failed] = reply.json()[FAILED_SEQUENCE]["Value"]
    assert failed[FAILURE_REASON]["Value"] == [WRONG_STUDY]
    assert failed[SOP_INSTANCE]["Value"] == [Uids.of(source).sop]
    assert_not_stored(pacs, before, source)


def test_stow_to_another_study_through_dicomweb_client_is_refused(
    pacs: NodeProcess, tmp_path: Path
) -> None:
    [source] = ct(tmp_path, "STOW012")
    before = index_counts(pacs)
    with pytest.raises(Exception, match="409"):
        client(pacs).store_instances([pydicom.dcmread(source)], study_instance_uid="1.2.3.4.5")
    assert_not_stored(pacs, before, source)


def test_stow_of_a_garbage_part_is_409_with_a_failure_reason(pacs: NodeProcess) -> None:
    before = index_counts(pacs)
    reply = post(pacs, multipart(b"this is not DICOM" * 20))
    assert reply.status == 409, reply.body[:300]
    [failed] = reply.json()[FAILED_SEQUENCE]["Value"]
    assert failed[FAILURE_REASON]["Value"][0] > 0
    assert index_counts(pacs) == before


def test_stow_of_a_truncated_dicom_part_stores_nothing(pacs: NodeProcess, tmp_path: Path) -> None:
    [source] = ct(tmp_path, "STOW013")
    before = index_counts(pacs)
    reply = post(pacs, multipart(source.read_bytes()[:-3000]))
    assert reply.status == 409, reply.body[:300]
    assert FAILURE_REASON in reply.json()[FAILED_SEQUENCE]["Value"][0]
    assert_not_stored(pacs, before, source)


@pytest.mark.parametrize(
    "broken",
    ["no closing boundary", "truncated inside the second part", "empty body"],
)
def test_broken_multipart_is_400_json_and_stores_nothing(
    pacs: NodeProcess, tmp_path: Path, broken: str
) -> None:
    sources = ct(tmp_path, "STOW014", count=2)
    good = multipart(*(p.read_bytes() for p in sources))
    body = {
        "no closing boundary": multipart(*(p.read_bytes() for p in sources), close=False),
        "truncated inside the second part": good[: len(good) - 5000],
        "empty body": b"",
    }[broken]
    before = index_counts(pacs)
    assert_json_error(post(pacs, body), 400)
    assert_not_stored(pacs, before, *sources)


def test_multipart_without_boundary_parameter_is_400_json(
    pacs: NodeProcess, tmp_path: Path
) -> None:
    [source] = ct(tmp_path, "STOW015")
    before = index_counts(pacs)
    reply = post(
        pacs,
        multipart(source.read_bytes()),
        content_type='multipart/related; type="application/dicom"',
    )
    assert_json_error(reply, 400)
    assert_not_stored(pacs, before, source)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "application/json",
        f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}',
    ],
)
def test_wrong_content_type_is_415_json(
    pacs: NodeProcess, tmp_path: Path, content_type: str
) -> None:
    [source] = ct(tmp_path, "STOW016")
    before = index_counts(pacs)
    assert_json_error(post(pacs, multipart(source.read_bytes()), content_type=content_type), 415)
    assert_not_stored(pacs, before, source)
