"""Edge → hub uplink under faults (issue 6; PACS-19, PACS-7.1, QOS-3): real edge and hub
processes on loopback, DCMTK storescu/findscu, a TCP proxy under the test's control between
them. Each test ends with "hub content == edge content (digests), no duplicates, nothing lost":

- 500 instances stored at the edge all reach the hub and C-FIND at the hub finds them;
- the hub killed (-9) mid-transfer, a large object's partial upload among it, and restarted;
- one byte flipped in transit (a STOW-RS part, then a resumable chunk): refused, retried,
  never stored damaged;
- the hub's disk full (a tmpfs): uploads back off, then finish once space returns;
- the edge killed (-9) mid-upload of a 200 MB cine loop behind a bandwidth cap: after the
  restart it resumes where the hub stopped, nothing received is sent again.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pydicom
import pytest

from tests.authn import add_token
from tests.conftest import (
    assert_archive_consistent,
    blob_files,
    ct_instances,
    find_sop_uids,
    index_digests,
    storescu,
)
from tests.nodeproc import NodeProcess, free_port
from tests.test_uplink import TcpProxy, edge_config, uplink, wait_for
from tools import gendata

PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) explicit VR little endian
APPENDED = re.compile(r"upload (\w+): (\d+) bytes appended at offset (\d+)")
MB = 1_000_000
CHUNK_REFUSED = re.compile(r"upload \w+: chunk at \d+ not written")
FULL = re.compile(r"out of resources|0xA700|disk is full|no space left", re.IGNORECASE)


class FaultProxy(TcpProxy):
    """Counts the bytes sent towards the hub; when armed, flips one byte of pixel data."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.sent = 0
        self.armed = 0  # how many flips are still to make
        self.flipped = 0

    def upstream(self, data: bytes) -> bytes:
        self.sent += len(data)
        at = data.find(PIXEL_TAG) if self.armed else -1
        if at < 0 or at + 300 >= len(data):
            return data
        self.armed -= 1
        self.flipped += 1
        damaged = bytearray(data)
        damaged[at + 300] ^= 0x5A  # inside the pixel data, after the element header
        return bytes(damaged)


class Pair:
    """A hub (optionally on ``data``), the proxy in front of it, and edges sending through it."""

    def __init__(self, node_factory: Callable[..., NodeProcess], tmp_path: Path,
                 hub_data: Path | None) -> None:  # fmt: skip
        self.factory, self.tmp_path = node_factory, tmp_path
        hub_toml = tmp_path / "hub.toml"  # its own mutual-TLS port: other hubs may run here
        hub_toml.write_text(f"[hub]\nmtls_port = {free_port()}\n")
        options = {"mode": "hub", "trusted_loopback": False,
                   "extra_args": ["--config", str(hub_toml)]}  # fmt: skip
        self.hub = NodeProcess(hub_data, **options) if hub_data else node_factory("hub", **options)
        self.hub.start()
        self.proxy = FaultProxy(self.hub.http_port)
        self.proxy.start()
        self.token = add_token(self.hub, "edge_uplink", "technician")
        self.edge: NodeProcess | None = None

    def start_edge(self, **extra: int | float) -> NodeProcess:
        url = f"http://127.0.0.1:{self.proxy.port}/dicom-web"
        args = edge_config(self.tmp_path / "edge.toml", url, self.token, **extra)
        if self.edge is None:
            self.edge = self.factory("edge", extra_args=args)
        self.edge.extra_args = args
        return self.edge.start()

    def restart_hub(self) -> None:
        self.hub.start()
        self.proxy.target_port = self.hub.http_port

    def close(self) -> None:
        if self.edge is not None:
            self.edge.stop()
        self.hub.stop()
        self.proxy.stop()
        self.proxy.loop.call_soon_threadsafe(self.proxy.loop.stop)

    def all_arrived(self) -> bool:
        assert self.edge is not None
        return uplink(self.edge)["queue_depth"] == 0 and self.hub_equals_edge()

    def hub_equals_edge(self) -> bool:
        assert self.edge is not None
        return index_digests(self.hub.data_dir) == index_digests(self.edge.data_dir) != {}

    def assert_complete(self, count: int) -> None:
        """Hub content == edge content, no duplicates, nothing lost, nothing half-written."""
        assert self.edge is not None
        edge_digests = index_digests(self.edge.data_dir)
        assert len(edge_digests) == count
        hub_digests = assert_archive_consistent(self.hub.data_dir)  # every blob has its row
        assert hub_digests == edge_digests
        assert len(blob_files(self.hub.data_dir)) == count, "something stored twice"
        assert not list((self.hub.data_dir / "uploads").glob("*.part")), "partials left"
        assert uplink(self.edge)["counts"]["dead"] == 0


@pytest.fixture
def pair(node_factory, tmp_path: Path) -> Iterator[Pair]:  # type: ignore[no-untyped-def]
    found = Pair(node_factory, tmp_path, None)
    yield found
    found.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs for the hub's data (the approach of test_disk_full)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mount = tmp_path / "hubdisk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _appended(log: str) -> list[tuple[int, int]]:
    """(offset, length) of every chunk the hub wrote, in order, from its log."""
    return [(int(m.group(3)), int(m.group(2))) for m in APPENDED.finditer(log)]


def _partial_size(hub: NodeProcess) -> int:
    parts = list((hub.data_dir / "uploads").glob("*.part"))
    return sum(p.stat().st_size for p in parts if p.exists())


def _stored_size(node: NodeProcess) -> int:
    with closing(sqlite3.connect(f"file:{node.data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT size FROM instance").fetchone()[0])


def _store(edge: NodeProcess, files: list[Path]) -> None:
    result = storescu(edge, *files, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_500_instances_reach_the_hub_and_c_find_there_finds_them(pair: Pair, tmp_path) -> None:
    edge = pair.start_edge(batch_size=100)
    files = ct_instances(tmp_path / "ct", 5, 100, size=32)
    _store(edge, files)
    wait_for(pair.all_arrived, what="500 instances at the hub")
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    assert find_sop_uids(pair.hub, study) == set(index_digests(edge.data_dir))
    pair.assert_complete(500)


def test_hub_killed_mid_transfer_and_restarted(pair: Pair, tmp_path) -> None:
    edge = pair.start_edge(bandwidth=4 * MB, resumable_bytes=16 * MB, chunk_bytes=1024 * 1024)
    small = ct_instances(tmp_path / "ct", 1, 40, size=128)
    large = gendata.large_cine(tmp_path / "cine", 20, seed=2)
    _store(edge, [*small, *large])
    wait_for(lambda: _partial_size(pair.hub) >= 5 * MB, what="the large upload to be under way")
    pair.hub.kill()
    received = _partial_size(pair.hub)
    assert 0 < received < large[0].stat().st_size, "the kill did not land mid-object"
    mark = len(pair.hub.log())
    pair.restart_hub()
    wait_for(pair.all_arrived, what="everything after the hub came back")
    after = _appended(pair.hub.log()[mark:])
    assert after and after[0][0] == received, "the partial upload did not survive the restart"
    pair.assert_complete(41)


def test_byte_flipped_in_transit_is_refused_and_retried(pair: Pair, tmp_path) -> None:
    edge = pair.start_edge(resumable_bytes=16 * MB)
    pair.proxy.armed = 1
    _store(edge, ct_instances(tmp_path / "ct", 1, 10, size=64))
    wait_for(pair.all_arrived, what="the series at the hub")
    assert pair.proxy.flipped == 1
    assert "does not match its Content-Digest" in pair.hub.log()
    pair.proxy.armed = 1  # now one chunk of a resumable upload
    _store(edge, gendata.large_cine(tmp_path / "cine", 17, seed=3))
    wait_for(pair.all_arrived, what="the large object at the hub")
    assert pair.proxy.flipped == 2
    assert "damaged in transit (Content-Digest differs)" in pair.hub.log()
    pair.assert_complete(11)


@pytest.fixture
def disk_pair(node_factory, tmp_path: Path, small_disk: Path) -> Iterator[Pair]:  # type: ignore[no-untyped-def]
    found = Pair(node_factory, tmp_path, small_disk)  # the log stays outside the tmpfs
    yield found
    found.close()  # before the tmpfs is unmounted


def test_hub_disk_full_backs_off_then_finishes(disk_pair: Pair, tmp_path) -> None:
    pair = disk_pair
    filler = pair.hub.data_dir / "filler"
    free = shutil.disk_usage(pair.hub.data_dir).free
    with open(filler, "wb") as handle:
        handle.write(b"\0" * (free - 2 * 1024 * 1024))  # 2 MiB left
    edge = pair.start_edge(resumable_bytes=16 * MB, chunk_bytes=1024 * 1024, batch_size=20)
    large = gendata.large_cine(tmp_path / "cine", 17, seed=4)  # resumable, sent first
    _store(edge, [*large, *ct_instances(tmp_path / "ct", 1, 80, size=128)])  # ~2.8 MB more
    wait_for(lambda: CHUNK_REFUSED.search(pair.hub.log()) is not None,
             what="a resumable chunk refused for want of space (507)")  # fmt: skip
    wait_for(lambda: "STOW-RS refused" in pair.hub.log(), what="STOW-RS parts refused (A700)")
    wait_for(lambda: uplink(edge)["consecutive_failures"] >= 3, what="backing off when full")
    health = uplink(edge)
    assert FULL.search(health["last_error"]), health["last_error"]
    assert health["queue_depth"] > 0 and health["counts"]["dead"] == 0
    assert len(index_digests(pair.hub.data_dir)) < 81
    filler.unlink()  # space returns
    wait_for(pair.all_arrived, what="everything once space returned")
    pair.assert_complete(81)


def test_edge_killed_mid_upload_of_a_200_mb_video_resumes(pair: Pair, tmp_path) -> None:
    large = gendata.large_cine(tmp_path / "cine", 200, seed=5)[0]
    edge = pair.start_edge(bandwidth=40 * MB)  # ~5 s for the whole object
    _store(edge, [large])
    size = _stored_size(edge)  # the edge's copy: the file meta it wrote may differ a little
    wait_for(lambda: _partial_size(pair.hub) >= 40 * MB, what="the upload to be under way")
    edge.kill()
    received = _partial_size(pair.hub)
    assert 0 < received < size, "the kill did not land mid-object"
    mark, pair.proxy.sent = len(edge.log()), 0
    pair.start_edge()
    wait_for(pair.all_arrived, what="the video at the hub")
    assert f"at byte {received} of {size}" in edge.log()[mark:], "did not resume at the hub"
    chunks = _appended(pair.hub.log())
    assert [offset for offset, _ in chunks] == [sum(n for _, n in chunks[:i])
                                                for i in range(len(chunks))]  # fmt: skip
    assert sum(n for _, n in chunks) == size, "bytes the hub had were sent and written again"
    assert pair.proxy.sent < size - received + 1 * MB, "the restart sent more than the rest"
    pair.assert_complete(1)


# --- the hub's upload API on its own: bad input gets a clear 4xx, nothing is stored -----------


def test_upload_api_refuses_bad_input_and_dedupes(pair: Pair, tmp_path) -> None:
    import hashlib

    import requests

    from mekong.shared.http import contentdigest

    api = f"{pair.hub.url}/api/hub/uploads"
    auth = {"Authorization": f"Bearer {pair.token}"}
    assert requests.get(api, headers=auth, timeout=10).json()["resumable"] is True
    spec = requests.get(f"{pair.hub.url}/api/openapi.json", headers=auth, timeout=10).json()
    patch = spec["paths"]["/api/hub/uploads/{id}"]["patch"]
    assert patch["x-permission"] == "images.write" and "409" in patch["responses"]
    assert {p["name"] for p in patch["parameters"]} >= {"id", "Upload-Offset", "Content-Digest"}
    bad = requests.post(api, json={"sha256": "xyz", "size": 1}, headers=auth, timeout=10)
    assert bad.status_code == 400 and "sha256" in bad.json()["error"]
    junk = b"not DICOM at all " * 1000
    digest = hashlib.sha256(junk).hexdigest()
    created = requests.post(api, json={"sha256": digest, "size": len(junk)}, headers=auth,
                            timeout=10)  # fmt: skip
    assert created.status_code == 201 and created.json()["offset"] == 0
    url = f"{api}/{created.json()['id']}"
    moved = requests.patch(url, data=junk, headers={**auth, "Upload-Offset": "5"}, timeout=10)
    assert moved.status_code == 409 and moved.json()["offset"] == 0
    damaged = {**auth, "Upload-Offset": "0", contentdigest.HEADER: contentdigest.of(b"other")}
    refused = requests.patch(url, data=junk, headers=damaged, timeout=10)
    assert refused.status_code == 400 and "Content-Digest" in refused.json()["error"]
    early = requests.post(f"{url}/complete", headers=auth, timeout=10)
    assert early.status_code == 409 and early.json()["offset"] == 0
    good = {**auth, "Upload-Offset": "0", contentdigest.HEADER: contentdigest.of(junk)}
    assert requests.patch(url, data=junk, headers=good, timeout=10).json()["offset"] == len(junk)
    invalid = requests.post(f"{url}/complete", headers=auth, timeout=10)
    assert invalid.status_code == 422 and "not stored" in invalid.json()["error"]
    assert requests.get(url, headers=auth, timeout=10).status_code == 404
    assert index_digests(pair.hub.data_dir) == {} and not blob_files(pair.hub.data_dir)
    # an object the hub already holds is not sent again
    edge = pair.start_edge()
    _store(edge, ct_instances(tmp_path / "ct", 1, 1, size=32))
    wait_for(pair.all_arrived, what="one instance at the hub")
    known = next(iter(index_digests(pair.hub.data_dir).values()))
    again = requests.post(api, json={"sha256": known, "size": 10}, headers=auth, timeout=10)
    assert again.status_code == 200 and again.json() == {"stored": True, "digest": known}


def test_stale_partial_uploads_are_deleted(tmp_path: Path) -> None:
    from mekong.central.partials import PartialStore

    store = PartialStore(tmp_path, max_age=3600)
    partial = store.open("clinic1", "ab" * 32, 100)
    assert store.append(partial.id, 0, b"x" * 40) == 40
    assert store.open("clinic1", "ab" * 32, 100).received == 40  # same upload found again
    assert store.get(partial.id, "someone else") is None
    assert store.clean_stale() == 0
    assert store.clean_stale(now=time.time() + 7200) == 1
    assert store.get(partial.id, "clinic1") is None and not list(tmp_path.glob("uploads/*"))
