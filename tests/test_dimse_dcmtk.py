"""The archive against DCMTK, the independent peer: echo, store, find, get, move."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from tests.conftest import dcmtk
from tests.nodeproc import AE_TITLE, NodeProcess, free_port, mekong_command, mekong_env, peer_env
from tools import gendata
from tools.gendata import decoded_pixels

VIETNAMESE_NAME = "Nguyễn^Thị Hồng Nhung".encode()


def store(node: NodeProcess, *files: Path, propose: str = "-R") -> subprocess.CompletedProcess:
    return dcmtk(
        "storescu", propose, "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port),
        *map(str, files),
    )  # fmt: skip


def find(node: NodeProcess, level: str, *keys: str, model: str = "-S") -> list[pydicom.Dataset]:
    """findscu; the responses written by -X and read back with pydicom."""
    out = node.data_dir.parent / f"find-{time.monotonic_ns()}"
    out.mkdir()
    args = [f"-k{k}" if k.startswith("=") else k for k in keys]
    result = dcmtk(
        "findscu", model, "-X", "-od", str(out), "-aec", AE_TITLE, "127.0.0.1",
        str(node.dicom_port), "-k", f"QueryRetrieveLevel={level}",
        *[part for key in args for part in ("-k", key)],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


@pytest.fixture
def loaded(node: NodeProcess, dataset_dir: Path) -> NodeProcess:
    plain = [*sorted((dataset_dir / "ct").glob("*.dcm")), *(dataset_dir / "cr").glob("*.dcm")]
    plain += [*(dataset_dir / "us").glob("*.dcm"), *(dataset_dir / "vn").glob("*.dcm")]
    for files, propose in (
        (plain, "-R"),
        (list((dataset_dir / "j2k").glob("*.dcm")), "-xv"),
        (list((dataset_dir / "jls").glob("*.dcm")), "-xt"),
    ):
        result = store(node, *files, propose=propose)
        assert result.returncode == 0 and "E:" not in result.stderr, result.stderr
    return node


def test_echo(node: NodeProcess) -> None:
    result = dcmtk("echoscu", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port))
    assert result.returncode == 0, result.stderr


def test_store_indexes_every_kind(loaded: NodeProcess) -> None:
    counts = loaded.health()["index"]
    assert counts == {"patients": 6, "studies": 6, "series": 6, "instances": 10}


def test_find_all_levels_with_wildcard_date_range_and_modality(loaded: NodeProcess) -> None:
    patients = find(loaded, "PATIENT", "PatientName=TEST*", "PatientID",
                    "NumberOfPatientRelatedInstances", model="-P")  # fmt: skip
    assert {str(p.PatientName) for p in patients} == {
        "TEST^CT",
        "TEST^CR",
        "TEST^US",
        "TEST^J2K",
        "TEST^JPEGLS",
    } or len(patients) == 5
    ct_patient = next(p for p in patients if p.PatientID == "CT001")
    assert int(ct_patient.NumberOfPatientRelatedInstances) == 5

    studies = find(loaded, "STUDY", "StudyDate=19000101-29991231", "ModalitiesInStudy=CT",
                   "StudyInstanceUID", "NumberOfStudyRelatedInstances", "PatientID")  # fmt: skip
    assert studies and all("CT" in s.ModalitiesInStudy for s in studies)
    assert not find(loaded, "STUDY", "StudyDate=18000101-18001231", "StudyInstanceUID")

    ct_study = next(s for s in studies if s.PatientID == "CT001")
    series = find(loaded, "SERIES", f"StudyInstanceUID={ct_study.StudyInstanceUID}",
                  "Modality=C?", "SeriesInstanceUID", "NumberOfSeriesRelatedInstances")  # fmt: skip
    assert len(series) == 1 and int(series[0].NumberOfSeriesRelatedInstances) == 5

    images = find(loaded, "IMAGE", f"StudyInstanceUID={ct_study.StudyInstanceUID}",
                  f"SeriesInstanceUID={series[0].SeriesInstanceUID}", "SOPInstanceUID",
                  "InstanceNumber")  # fmt: skip
    assert sorted(int(i.InstanceNumber) for i in images) == [1, 2, 3, 4, 5]
    two = "\\".join(i.SOPInstanceUID for i in images[:2])
    listed = find(
        loaded, "IMAGE", f"StudyInstanceUID={ct_study.StudyInstanceUID}",
        f"SeriesInstanceUID={series[0].SeriesInstanceUID}", f"SOPInstanceUID={two}",
    )  # fmt: skip
    assert len(listed) == 2


def test_vietnamese_name_comes_back_byte_identical(loaded: NodeProcess) -> None:
    out = loaded.data_dir.parent / "vn-find"
    out.mkdir()
    result = dcmtk(
        "findscu", "-S", "-X", "-od", str(out), "-aec", AE_TITLE, "127.0.0.1",
        str(loaded.dicom_port), "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=VN0001",
        "-k", "PatientName", "-k", "StudyDescription", "-k", "StudyInstanceUID",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [response] = out.glob("rsp*.dcm")
    raw = response.read_bytes()
    assert VIETNAMESE_NAME in raw
    ds = pydicom.dcmread(response)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Nguyễn^Thị Hồng Nhung"


def test_find_is_case_insensitive_on_patient_name(loaded: NodeProcess) -> None:
    utf8 = "SpecificCharacterSet=ISO_IR 192"
    assert len(find(loaded, "STUDY", utf8, "PatientName=nguyễn*", "StudyInstanceUID")) == 1
    assert not find(loaded, "STUDY", "PatientName=nguyen*", "StudyInstanceUID")  # accents kept


def _study_uid(node: NodeProcess, patient_id: str) -> str:
    [study] = find(node, "STUDY", f"PatientID={patient_id}", "StudyInstanceUID")
    return str(study.StudyInstanceUID)


def _getscu(node: NodeProcess, out: Path, *keys: str) -> None:
    out.mkdir()
    result = dcmtk(
        "getscu", "-S", "-aec", AE_TITLE, "-od", str(out), "127.0.0.1", str(node.dicom_port),
        *[part for key in keys for part in ("-k", key)],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_get_series_returns_pixels_byte_for_byte(loaded: NodeProcess, dataset_dir: Path,
                                                 tmp_path: Path) -> None:  # fmt: skip
    _getscu(loaded, tmp_path / "get", "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={_study_uid(loaded, 'CT001')}",
            f"SeriesInstanceUID={_series_uid(loaded, 'CT001')}")  # fmt: skip
    _assert_same_pixels(dataset_dir / "ct", tmp_path / "get", expected=5)


def test_get_transcodes_jpeg2000_for_a_peer_that_takes_only_uncompressed(
    loaded: NodeProcess, dataset_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "get-j2k"
    _getscu(loaded, out, "QueryRetrieveLevel=STUDY",
            f"StudyInstanceUID={_study_uid(loaded, 'J2K001')}")  # fmt: skip
    [received] = out.glob("*")
    ds = pydicom.dcmread(received)
    assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    [original] = (dataset_dir / "j2k").glob("*.dcm")
    assert decoded_pixels(received) == decoded_pixels(original)


def test_move_series_to_a_storescp(loaded: NodeProcess, dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "moved"
    out.mkdir()
    port = free_port()
    add = subprocess.run(
        mekong_command("ae", "add", "DEST", "--host", "127.0.0.1", "--port", str(port),
                       "--data", str(loaded.data_dir)),
        capture_output=True, text=True, env=mekong_env(), timeout=60,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    receiver = subprocess.Popen(
        ["/usr/bin/storescp", "-aet", "DEST", "-od", str(out), "--fork", str(port)], env=peer_env()
    )
    try:
        time.sleep(1.5)  # the node reloads its AE table every second
        result = dcmtk(
            "movescu", "-S", "-aec", AE_TITLE, "-aem", "DEST", "127.0.0.1",
            str(loaded.dicom_port), "-k", "QueryRetrieveLevel=SERIES",
            "-k", f"StudyInstanceUID={_study_uid(loaded, 'CT001')}",
            "-k", f"SeriesInstanceUID={_series_uid(loaded, 'CT001')}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        receiver.terminate()
        receiver.wait(10)
    _assert_same_pixels(dataset_dir / "ct", out, expected=5)


def test_move_to_unknown_destination_fails_cleanly(loaded: NodeProcess) -> None:
    result = dcmtk(
        "movescu", "-S", "-aec", AE_TITLE, "-aem", "NOBODY", "127.0.0.1", str(loaded.dicom_port),
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={_study_uid(loaded, 'CT001')}",
    )  # fmt: skip
    assert "MoveDestinationUnknown" in result.stderr


def _series_uid(node: NodeProcess, patient_id: str) -> str:
    [series] = find(node, "SERIES", f"StudyInstanceUID={_study_uid(node, patient_id)}",
                    "SeriesInstanceUID")  # fmt: skip
    return str(series.SeriesInstanceUID)


def _assert_same_pixels(sent_dir: Path, received_dir: Path, expected: int) -> None:
    sent = {pydicom.dcmread(p).SOPInstanceUID: p for p in sent_dir.glob("*.dcm")}
    received = list(received_dir.glob("*"))
    assert len(received) == expected
    for path in received:
        ds = pydicom.dcmread(path)
        original = pydicom.dcmread(sent[ds.SOPInstanceUID])
        assert ds.PixelData == original.PixelData


def test_find_response_echoes_the_query_level(loaded: NodeProcess) -> None:
    studies = find(loaded, "STUDY", "PatientID=CT001", "StudyInstanceUID")
    assert [s.QueryRetrieveLevel for s in studies] == ["STUDY"]


def test_get_transcodes_big_endian_with_pixels_swapped(node: NodeProcess, tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    original = Path(get_testdata_file("MR_small_bigendian.dcm"))
    assert store(node, original, propose="-xb").returncode == 0
    uid = pydicom.dcmread(original).StudyInstanceUID
    out = tmp_path / "get-be"
    out.mkdir()
    result = dcmtk(
        "getscu", "-S", "-aec", AE_TITLE, "-od", str(out), "127.0.0.1",
        str(node.dicom_port), "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [received] = out.glob("*")
    ds = pydicom.dcmread(received)
    assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    assert (ds.pixel_array == pydicom.dcmread(original).pixel_array).all()


def test_find_matches_and_returns_sequence_items(node: NodeProcess, tmp_path: Path) -> None:
    from pydicom.dataset import Dataset

    paths = []
    for n, code in enumerate(("CTHEAD", "CTCHEST")):
        [path] = gendata.ct_series(tmp_path / code, count=1, rows=16, cols=16,
                                   patient_id=f"SEQ{n}", seed=40 + n)  # fmt: skip
        ds = pydicom.dcmread(path)
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "99VN", f"Chụp {code}"
        ds.ProcedureCodeSequence = [item]
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    assert store(node, *paths).returncode == 0

    hits = find(node, "STUDY", "ProcedureCodeSequence[0].CodeValue=CTCH*",
                "ProcedureCodeSequence[0].CodeMeaning", "PatientID")  # fmt: skip
    assert [h.PatientID for h in hits] == ["SEQ1"]
    [answer] = hits[0].ProcedureCodeSequence
    assert (answer.CodeValue, answer.CodeMeaning) == ("CTCHEST", "Chụp CTCHEST")
    assert "CodingSchemeDesignator" not in answer  # only the keys asked for

    universal = find(node, "STUDY", "ProcedureCodeSequence", "PatientID=SEQ0")
    assert [i.CodeValue for i in universal[0].ProcedureCodeSequence] == ["CTHEAD"]
    assert not find(node, "STUDY", "ProcedureCodeSequence[0].CodeValue=MR*", "PatientID")
