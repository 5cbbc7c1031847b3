"""Optional lossless JPEG 2000 on the uplink (``uplink.j2k_lossless``, issue 6): the hub gets a
pixel-exact JPEG 2000 copy confirmed by its own digest, the edge keeps its original."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import requests
from pydicom.uid import JPEG2000Lossless, RLELossless

from mekong.edge.uplink.reencode import lossless_j2k
from tests.authn import add_token
from tests.conftest import blob_files, ct_instances, index_digests, storescu
from tests.test_uplink import edge_config, wait_for
from tools import gendata


def test_ct_is_re_encoded_pixel_exact_with_its_uids_and_the_same_bytes_every_time(
    tmp_path: Path,
) -> None:
    path = gendata.ct_series(tmp_path, 1, 64, 64, seed=3)[0]
    data = path.read_bytes()
    copy = lossless_j2k(data)
    assert copy is not None and copy == lossless_j2k(data)  # deterministic: resends dedupe
    original, encoded = pydicom.dcmread(path), pydicom.dcmread(io.BytesIO(copy))
    assert encoded.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert encoded.SOPInstanceUID == original.SOPInstanceUID
    assert encoded.PatientName == original.PatientName
    assert np.array_equal(encoded.pixel_array, original.pixel_array)


def test_other_modalities_and_compressed_instances_go_as_they_are(tmp_path: Path) -> None:
    cr = gendata.cr_image(tmp_path / "cr", 64, 64)[0]
    assert lossless_j2k(cr.read_bytes()) is None
    ds = pydicom.dcmread(gendata.ct_series(tmp_path / "ct", 1, 64, 64)[0])
    ds.compress(RLELossless, generate_instance_uid=False)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert lossless_j2k(buffer.getvalue()) is None
    assert lossless_j2k(b"not DICOM") is None


def test_the_hub_holds_pixel_exact_j2k_copies_and_the_edge_its_originals(
    node_factory, tmp_path: Path
) -> None:
    hub = node_factory("hub", mode="hub", trusted_loopback=False).start()
    token = add_token(hub, "edge_uplink", "technician")
    url = f"http://127.0.0.1:{hub.http_port}/dicom-web"
    args = edge_config(tmp_path / "edge.toml", url, token)
    (tmp_path / "edge.toml").write_text(
        (tmp_path / "edge.toml").read_text() + "j2k_lossless = true\n"
    )
    edge = node_factory("edge", extra_args=args).start()
    files = ct_instances(tmp_path / "ct", 1, 4, size=64)
    assert storescu(edge, *files).returncode == 0
    wait_for(lambda: edge.health()["uplink"]["queue_depth"] == 0 and
             len(index_digests(hub.data_dir)) == 4, what="the series at the hub")  # fmt: skip
    rows = requests.get(f"{edge.url}/api/uplink/queue?state=sent", timeout=10).json()["items"]
    assert len(rows) == 4 and all(row["verified"] for row in rows)
    edge_blobs, hub_blobs = blob_files(edge.data_dir), blob_files(hub.data_dir)
    hub_digests = index_digests(hub.data_dir)
    for sop_uid, digest in index_digests(edge.data_dir).items():
        original = pydicom.dcmread(edge_blobs[digest])
        copy = pydicom.dcmread(hub_blobs[hub_digests[sop_uid]])
        assert original.file_meta.TransferSyntaxUID != JPEG2000Lossless  # the edge's, unchanged
        assert copy.file_meta.TransferSyntaxUID == JPEG2000Lossless
        assert np.array_equal(copy.pixel_array, original.pixel_array)
    assert {p.name for p in edge_blobs.values()} == set(index_digests(edge.data_dir).values())
