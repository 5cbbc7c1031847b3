"""Bad input gets a prompt DICOM failure, leaves nothing behind, and the node keeps serving."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.status import code_to_category

from tests.conftest import (
    blob_files,
    config_args,
    dcmtk,
    dimse_statuses,
    echo_ok,
    index_digests,
    is_store_failure,
    mekong_cli,
    storescu,
)
from tests.nodeproc import AE_TITLE, NodeProcess
from tools import gendata

Snapshot = tuple[dict[str, int], set[str]]


@pytest.fixture
def ct_file(tmp_path: Path) -> Path:
    return gendata.ct_series(tmp_path / "ct", 1, 64, 64, patient_id="BAD0001")[0]


def snapshot(node: NodeProcess) -> Snapshot:
    return node.health()["index"], set(blob_files(node.data_dir))


def assert_nothing_left(node: NodeProcess, before: Snapshot, aet: str = "ECHOSCU") -> None:
    assert snapshot(node) == before
    assert not list((node.data_dir / "tmp").iterdir())
    assert echo_ok(node, aet)


def send_raw(node: NodeProcess, path: Path) -> Dataset:
    """C-STORE the file's dataset bytes as they are: pynetdicom's chunked mode neither decodes
    nor checks them, and takes the request's UIDs from the file meta."""
    ae = AE(ae_title="PYSCU")
    ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.dicom_port, ae_title=AE_TITLE)
    assert assoc.is_established
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        started = time.monotonic()
        response = assoc.send_c_store(path)
        assert time.monotonic() - started < 5, "no prompt answer"
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()
    assert "Status" in response, "no response (timeout or aborted association)"
    return response


def test_dataset_cut_off_in_pixel_data(node: NodeProcess, ct_file: Path, tmp_path: Path) -> None:
    truncated = gendata.truncated_copy(ct_file, tmp_path / "truncated.dcm")
    before = snapshot(node)
    response = send_raw(node, truncated)
    assert response.Status == 0xC000
    assert "7FE0,0010" in response.ErrorComment
    assert_nothing_left(node, before)


def test_dataset_without_sop_instance_uid(node: NodeProcess, tmp_path: Path) -> None:
    [path] = gendata.without_sop_instance_uid(tmp_path / "bad")
    ds = pydicom.dcmread(path)  # chunked mode needs a UID for the request: in the meta only
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=False)
    before = snapshot(node)
    response = send_raw(node, path)
    assert is_store_failure(response.Status), hex(response.Status)
    assert "SOPInstanceUID" in response.ErrorComment
    assert_nothing_left(node, before)


def test_unknown_caller_rejected_until_added(node_factory, tmp_path: Path, ct_file: Path) -> None:
    node = node_factory(extra_args=config_args(tmp_path / "n.toml", unknown_callers="reject"))
    node.start()
    before = snapshot(node)
    echo = dcmtk("echoscu", "-aet", "STRANGER", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port))
    store = storescu(node, ct_file, aet="STRANGER")
    for result in (echo, store):
        assert result.returncode != 0 and "Association Rejected" in result.stderr, result.stderr
    assert snapshot(node) == before

    data = str(node.data_dir)
    add = mekong_cli("ae", "add", "STRANGER", "--host", "127.0.0.1", "--port", "1",
                     "--allow", "echo,store", "--data", data)  # fmt: skip
    assert add.returncode == 0, add.stderr
    deadline = time.monotonic() + 2.5  # the node reloads the AE table every second
    while (store := storescu(node, ct_file, aet="STRANGER")).returncode and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert dimse_statuses(store.stderr) == [0x0000], store.stderr
    assert echo_ok(node, "STRANGER")

    find = dcmtk("findscu", "-d", "-S", "-aet", "STRANGER", "-aec", AE_TITLE, "127.0.0.1",
                 str(node.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                 "-k", "StudyInstanceUID")  # fmt: skip
    [status] = dimse_statuses(find.stderr)  # no pending response: nothing was disclosed
    assert code_to_category(status) == "Failure", hex(status)


@pytest.mark.parametrize("policy", ["keep_first", "replace"])
def test_duplicate_sop_instance_uid_with_other_content(
    node_factory, tmp_path: Path, ct_file: Path, policy: str
) -> None:
    second = tmp_path / "second.dcm"
    ds = pydicom.dcmread(ct_file)
    ds.ImageComments = "second version"
    ds.save_as(second, enforce_file_format=True)
    replace = config_args(tmp_path / "n.toml", duplicate_policy=policy)
    args = [] if policy == "keep_first" else replace
    node = node_factory(extra_args=args).start()  # keep_first is the default

    assert dimse_statuses(storescu(node, ct_file).stderr) == [0x0000]
    [first_digest] = index_digests(node.data_dir).values()
    assert dimse_statuses(storescu(node, second).stderr) == [0x0000]
    [(sop_uid, digest)] = index_digests(node.data_dir).items()

    assert sop_uid == ds.SOPInstanceUID
    assert set(blob_files(node.data_dir)) == {digest}  # no orphan, no stale version
    stored = pydicom.dcmread(blob_files(node.data_dir)[digest])
    if policy == "keep_first":
        assert digest == first_digest and "ImageComments" not in stored
    else:
        assert digest != first_digest and stored.ImageComments == "second version"
    assert stored.PixelData == ds.PixelData
    assert node.health()["index"]["instances"] == 1
    assert not list((node.data_dir / "tmp").iterdir())
