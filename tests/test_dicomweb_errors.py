"""Bad DICOMweb input: malformed UIDs and unknown objects get 4xx JSON, and the node keeps
serving afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dicomweb_support import (
    OHIF_FRAMES_ACCEPT,
    Uids,
    assert_json_error,
    http,
    loaded_node,
    qido,
)
from tests.nodeproc import NodeProcess
from tools import gendata

UNKNOWN = "1.2.826.0.1.3680043.8.498.999"
TOO_LONG = "1." + "2" * 63  # 65 characters


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("errors-data")
    return gendata.ct_series(out, 1, 64, 64, patient_id="ERR001")[0]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, stored: Path) -> Iterator[NodeProcess]:
    with loaded_node(tmp_path_factory.mktemp("errors-node"), ([stored], "-R")) as node:
        yield node


@pytest.mark.parametrize(
    "path",
    [
        "/dicom-web/studies/abc/series",
        "/dicom-web/studies/abc",
        "/dicom-web/studies/abc/metadata",
        "/dicom-web/studies/1.2.3/series/x.y/metadata",
        "/dicom-web/studies/1.2.3/series/1.2.4/instances/1..5/frames/1",
        "/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5;drop/rendered",
        f"/dicom-web/studies/{TOO_LONG}/thumbnail",
        "/dicom-web/studies/1.2.3/series/1.2.4/instances?SOPInstanceUID=1.2.x",
    ],
)
def test_malformed_uid_is_400_json(pacs: NodeProcess, path: str) -> None:
    assert_json_error(http(pacs, path), 400)


@pytest.mark.parametrize(
    "tail",
    ["", "/metadata", "/thumbnail", "/series/{series}", "/series/{series}/metadata",
     "/series/{series}/instances/{sop}/frames/1", "/series/{series}/instances/{sop}/rendered"],
)  # fmt: skip
def test_unknown_study_is_404_json(pacs: NodeProcess, tail: str) -> None:
    path = f"/dicom-web/studies/{UNKNOWN}" + tail.format(series=UNKNOWN + ".1", sop=UNKNOWN + ".2")
    assert_json_error(http(pacs, path, {"Accept": "*/*"}), 404)


def test_unknown_instance_in_a_known_series_is_404_json(pacs: NodeProcess, stored: Path) -> None:
    uids = Uids.of(stored)
    path = f"{uids.series_path}/instances/{UNKNOWN}/frames/1"
    reply = http(pacs, path, {"Accept": OHIF_FRAMES_ACCEPT})
    assert_json_error(reply, 404)


def test_unknown_bulk_data_tag_is_4xx_json(pacs: NodeProcess, stored: Path) -> None:
    assert_json_error(http(pacs, f"{Uids.of(stored).path}/bulk/00991010"), 404)
    assert_json_error(http(pacs, f"{Uids.of(stored).path}/bulk/pixels"), 400)


def test_node_keeps_serving_after_bad_input(pacs: NodeProcess, stored: Path) -> None:
    """Runs last in this module: everything above was thrown at the same node."""
    assert pacs.health()["status"] == "ok"
    [study] = qido(pacs, "studies?PatientID=ERR001")
    assert study["0020000D"]["Value"] == [Uids.of(stored).study]
    reply = http(pacs, f"{Uids.of(stored).path}/frames/1", {"Accept": OHIF_FRAMES_ACCEPT})
    assert reply.status == 200
