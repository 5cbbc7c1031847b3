"""QIDO-RS (PS3.18 §10.6) against a node loaded by DCMTK: the searches OHIF sends, matching,
paging, PS3.18 JSON and the 4xx answers to bad queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pydicom
import pytest

from tests.dicomweb_support import Uids, assert_json_error, client, http, loaded_node, qido
from tests.nodeproc import NodeProcess
from tools import gendata

Files = dict[str, list[Path]]
OLD_STUDY_DATE = "20231220"  # the other studies are on gendata.STUDY_DATE (20240115)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    out = tmp_path_factory.mktemp("qido-data")
    old = gendata.cr_image(out / "old", 32, 32, patient_id="QOLD001")[0]
    ds = pydicom.dcmread(old)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = OLD_STUDY_DATE
    ds.save_as(old)
    return {
        "ct": gendata.ct_series(out / "ct", 3, 64, 64, patient_id="QCT001"),
        "vn": gendata.vietnamese_patient(out / "vn"),
        "us": gendata.us_multiframe(out / "us", frames=2, rows=16, cols=16, patient_id="QUS001"),
        "old": [old],
    }


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, files: Files) -> Iterator[NodeProcess]:
    everything = [path for paths in files.values() for path in paths]
    with loaded_node(tmp_path_factory.mktemp("qido-node"), (everything, "-R")) as node:
        yield node


@pytest.fixture(scope="module")
def ct(files: Files) -> Uids:
    return Uids.of(files["ct"][0])


def study_uids(results: list[dict]) -> list[str]:
    return [r["0020000D"]["Value"][0] for r in results]


def patient_ids(results: list[dict]) -> set[str]:
    return {r["00100020"]["Value"][0] for r in results}


def value(result: dict, tag: str) -> Any:
    return result[tag]["Value"][0]


# --- the three levels, through dicomweb-client -----------------------------------------------


def test_search_studies_finds_each_stored_study(pacs: NodeProcess) -> None:
    results = client(pacs).search_for_studies()
    assert patient_ids(results) == {"QCT001", "VN0001", "QUS001", "QOLD001"}
    assert len(results) == 4


def test_search_series_of_a_study(pacs: NodeProcess, ct: Uids) -> None:
    [series] = client(pacs).search_for_series(ct.study)
    assert value(series, "0020000E") == ct.series
    assert value(series, "00080060") == "CT"
    assert value(series, "00201209") == 3  # NumberOfSeriesRelatedInstances


def test_search_instances_of_a_series(pacs: NodeProcess, files: Files, ct: Uids) -> None:
    results = client(pacs).search_for_instances(ct.study, ct.series)
    assert {value(r, "00080018") for r in results} == {Uids.of(p).sop for p in files["ct"]}


def test_search_instances_of_a_study_without_naming_the_series(pacs: NodeProcess, ct: Uids) -> None:
    assert len(qido(pacs, f"studies/{ct.study}/instances")) == 3


# --- what OHIF sends --------------------------------------------------------------------------


def test_ohif_study_query_with_fuzzymatching_false_and_includefield_list(
    pacs: NodeProcess, ct: Uids
) -> None:
    [study] = qido(
        pacs, "studies?limit=101&offset=0&fuzzymatching=false"
        f"&includefield=00081030,00080060&StudyInstanceUID={ct.study}",
    )  # fmt: skip
    assert value(study, "00081030") == "Synthetic CT study"
    assert value(study, "00080060") == "CT"  # a series attribute, read from a stored header


def test_ohif_313_includefield_list_returns_each_field(pacs: NodeProcess, ct: Uids) -> None:
    [study] = qido(
        pacs,
        f"studies?includefield=00081030,00080060,00080090,00100030&StudyInstanceUID={ct.study}",
    )
    for tag in ("00081030", "00080060", "00080090", "00100030"):
        assert tag in study, tag


def test_ohif_series_query_returns_the_fields_it_includes(pacs: NodeProcess, ct: Uids) -> None:
    [series] = qido(
        pacs, f"studies/{ct.study}/series?includefield=00080021,00080031,0008103E,00200011"
    )
    assert value(series, "00080021") == gendata.STUDY_DATE
    assert value(series, "00080031") == gendata.STUDY_TIME
    assert value(series, "0008103E") == "Synthetic CT series 1"
    assert value(series, "00200011") == 1


def test_ohif_thumbnail_fallback_instance_query(pacs: NodeProcess, ct: Uids) -> None:
    query = f"studies/{ct.study}/series/{ct.series}/instances?limit=1&includefield=00080018"
    results = qido(pacs, query)
    assert len(results) == 1 and "00080018" in results[0]


@pytest.mark.parametrize("level", ["studies", "series", "instances"])
def test_includefield_all(pacs: NodeProcess, level: str) -> None:
    reply = http(pacs, f"/dicom-web/{level}?PatientID=QCT001&includefield=all")
    assert reply.status == 200, reply.body[:300]
    [result, *_] = reply.json()
    assert "00081030" in result  # StudyDescription is not a default study attribute


def test_includefield_of_an_attribute_the_index_lacks_is_read_from_the_header(
    pacs: NodeProcess, ct: Uids
) -> None:
    query = "instances?InstanceNumber=1&includefield=SliceThickness"
    [first] = qido(pacs, f"studies/{ct.study}/series/{ct.series}/{query}")
    assert first["00180050"] == {"vr": "DS", "Value": [gendata.CT_SLICE_THICKNESS]}


# --- matching ---------------------------------------------------------------------------------


def test_patient_name_wildcard(pacs: NodeProcess) -> None:
    assert patient_ids(qido(pacs, "studies?PatientName=Ngu*")) == {"VN0001"}


def test_exact_vietnamese_name_comes_back_as_pn_json(pacs: NodeProcess) -> None:
    [study] = qido(pacs, f"studies?PatientName={quote(gendata.VIETNAMESE_NAME)}")
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": gendata.VIETNAMESE_NAME}]}


def test_vietnamese_name_is_utf8_bytes_in_the_json_body(pacs: NodeProcess) -> None:
    """Byte-identical UTF-8 (DESIGN: "Vietnamese names must survive byte-identical"), as the
    series metadata does, not \\u escapes."""
    reply = http(pacs, f"/dicom-web/studies?PatientName={quote(gendata.VIETNAMESE_NAME)}")
    assert reply.status == 200
    assert gendata.VIETNAMESE_NAME.encode("utf-8") in reply.body, reply.body[:400]


@pytest.mark.parametrize("key", ["PatientID", "00100020"])
def test_patient_id_as_keyword_or_tag(pacs: NodeProcess, key: str) -> None:
    assert patient_ids(qido(pacs, f"studies?{key}=QCT001")) == {"QCT001"}


def test_accession_number(pacs: NodeProcess, files: Files) -> None:
    accession = pydicom.dcmread(files["us"][0], stop_before_pixels=True).AccessionNumber
    assert patient_ids(qido(pacs, f"studies?AccessionNumber={accession}")) == {"QUS001"}


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ("20240101-20240131", {"QCT001", "VN0001", "QUS001"}),
        ("-20231231", {"QOLD001"}),
        ("20240101-", {"QCT001", "VN0001", "QUS001"}),
        (OLD_STUDY_DATE, {"QOLD001"}),
        ("20250101-", set()),
    ],
)
def test_study_date_ranges(pacs: NodeProcess, dates: str, expected: set[str]) -> None:
    assert patient_ids(qido(pacs, f"studies?StudyDate={dates}")) == expected


@pytest.mark.parametrize("separator", ["%5C", ","])  # backslash (PS3.18), comma (OHIF lists)
def test_study_uid_list(pacs: NodeProcess, files: Files, separator: str) -> None:
    wanted = [Uids.of(files["ct"][0]).study, Uids.of(files["old"][0]).study]
    results = qido(pacs, f"studies?StudyInstanceUID={separator.join(wanted)}")
    assert sorted(study_uids(results)) == sorted(wanted)


def test_modalities_in_study(pacs: NodeProcess) -> None:
    assert patient_ids(qido(pacs, "studies?ModalitiesInStudy=US")) == {"QUS001"}
    assert patient_ids(qido(pacs, "studies?ModalitiesInStudy=CT")) == {"QCT001", "VN0001"}


def test_limit_and_offset_page_through_every_study(pacs: NodeProcess) -> None:
    everything = study_uids(qido(pacs, "studies"))
    pages = [study_uids(qido(pacs, f"studies?limit=3&offset={start}")) for start in (0, 3, 6)]
    assert [len(page) for page in pages] == [3, 1, 0]
    assert pages[0] + pages[1] == everything


def test_numbers_are_json_numbers(pacs: NodeProcess, files: Files) -> None:
    [study] = qido(pacs, "studies?PatientID=QUS001")
    assert value(study, "00201208") == 1 and value(study, "00201206") == 1  # IS
    [instance] = qido(pacs, "instances?PatientID=QUS001")
    assert value(instance, "00280010") == 16 and value(instance, "00280011") == 16  # US
    assert value(instance, "00280008") == 2 and value(instance, "00200013") == 1  # IS


# --- what is refused, what is tolerated ---------------------------------------------------------


def test_unknown_attribute_keyword_is_400_json(pacs: NodeProcess) -> None:
    assert_json_error(http(pacs, "/dicom-web/studies?PatientNmae=Ngu*"), 400)


def test_unknown_includefield_is_400_json(pacs: NodeProcess) -> None:
    assert_json_error(http(pacs, "/dicom-web/studies?includefield=NoSuchKeyword"), 400)


def test_attribute_that_cannot_be_matched_is_ignored_with_a_warning(pacs: NodeProcess) -> None:
    reply = http(pacs, "/dicom-web/studies?PatientWeight=70")
    assert reply.status == 200
    assert len(reply.json()) == 4  # not filtered
    warning = reply.headers["Warning"]
    assert warning and warning.startswith("299 ") and "PatientWeight" in warning


@pytest.mark.parametrize("query", ["limit=abc", "limit=-5", "offset=x", "offset=-1"])
def test_bad_limit_or_offset_is_400_json(pacs: NodeProcess, query: str) -> None:
    assert_json_error(http(pacs, f"/dicom-web/studies?{query}"), 400)


def test_malformed_uid_in_a_query_is_400_json(pacs: NodeProcess) -> None:
    assert_json_error(http(pacs, "/dicom-web/studies?StudyInstanceUID=1.2.abc"), 400)


def test_non_json_accept_is_406_json(pacs: NodeProcess) -> None:
    reply = http(pacs, "/dicom-web/studies", {"Accept": "application/dicom+xml"})
    assert_json_error(reply, 406)
