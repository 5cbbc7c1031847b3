"""Edge → hub uplink (PACS-19, PACS-7.1, QOS-3): two real nodes on loopback, DCMTK storescu at
the edge, a TCP proxy under the test's control between them, kill -9 of the edge."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests

from mekong.edge.uplink.policy import backoff
from mekong.edge.uplink.stowclient import parse_response
from mekong.shared.config import ConfigError, load_config
from tests.authn import add_token
from tests.conftest import ct_instances, find_sop_uids, index_digests, storescu
from tests.nodeproc import NodeProcess, free_port
from tools import gendata


class TcpProxy:
    """A loopback TCP proxy on its own event loop thread; ``stop()`` cuts every connection.
    What goes towards the target passes :meth:`upstream` (a subclass may count or damage it)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0.1)  # let the copying tasks see the abort and end

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._copy(reader, up_writer, self.upstream),
                             self._copy(up_reader, writer))  # fmt: skip

    def upstream(self, data: bytes) -> bytes:
        return data

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        passing: Callable[[bytes], bytes] = lambda data: data,
    ) -> None:  # fmt: skip
        try:
            while data := await reader.read(65536):
                writer.write(passing(data))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


def edge_config(path: Path, url: str, token: str, **extra: int | float) -> list[str]:
    lines = [f'url = "{url}"', f'token = "{token}"', "backoff_base = 0.2", "backoff_max = 1.0",
             "poll_interval = 0.2", "max_attempts = 2"]  # fmt: skip
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path.write_text("[uplink]\n" + "\n".join(lines) + "\n")
    return ["--config", str(path)]


def wait_for(condition: Callable[[], bool], timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def digests(node: NodeProcess) -> dict[str, str]:
    return index_digests(node.data_dir)


def uplink(node: NodeProcess) -> dict:
    return node.health()["uplink"]


def all_sent(edge: NodeProcess, hub: NodeProcess) -> Callable[[], bool]:
    def check() -> bool:
        health = uplink(edge)
        return health["queue_depth"] == 0 and digests(hub) == digests(edge) != {}

    return check


def set_token_role(hub: NodeProcess, name: str, role: str) -> None:
    with closing(sqlite3.connect(hub.data_dir / "index.db")) as db, db:
        db.execute("UPDATE api_token SET role = ? WHERE name = ?", (role, name))


@pytest.fixture
def link(node_factory, tmp_path: Path) -> Iterator[tuple[Callable[..., NodeProcess], TcpProxy]]:
    """The hub started, a proxy in front of it; returns (start_edge(**uplink keys), proxy)."""
    hub_toml = tmp_path / "hub.toml"  # its own mutual-TLS port: other hubs may run here
    hub_toml.write_text(f"[hub]\nmtls_port = {free_port()}\n")
    hub = node_factory("hub", mode="hub", trusted_loopback=False,
                       extra_args=["--config", str(hub_toml)]).start()  # fmt: skip
    proxy = TcpProxy(hub.http_port)
    proxy.start()
    token = add_token(hub, "edge_uplink", "technician")

    def start_edge(**extra: int | float) -> NodeProcess:
        url = f"http://127.0.0.1:{proxy.port}/dicom-web"
        args = edge_config(tmp_path / "edge.toml", url, token, **extra)
        edge = node_factory("edge", extra_args=args).start()
        edge.hub = hub  # type: ignore[attr-defined]
        return edge

    yield start_edge, proxy
    proxy.stop()
    proxy.loop.call_soon_threadsafe(proxy.loop.stop)


def test_series_stored_at_the_edge_arrives_at_the_hub_with_equal_digests(link, tmp_path) -> None:
    start_edge, _ = link
    edge = start_edge()
    files = ct_instances(tmp_path / "ct", 1, 5, size=64)
    assert storescu(edge, *files).returncode == 0
    wait_for(all_sent(edge, edge.hub), what="the series at the hub")
    assert find_sop_uids(edge.hub, _study(files[0])) == set(digests(edge))
    rows = requests.get(f"{edge.url}/api/uplink/queue?state=sent", timeout=10).json()["items"]
    assert len(rows) == 5 and all(row["verified"] for row in rows)


def test_link_cut_then_restored_everything_arrives_once(link, tmp_path) -> None:
    start_edge, proxy = link
    edge = start_edge()
    first = ct_instances(tmp_path / "a", 1, 3, size=64)
    second = gendata.ct_series(tmp_path / "b", 8, 64, 64, patient_id="UPLINK02", seed=7)
    assert storescu(edge, *first).returncode == 0
    wait_for(all_sent(edge, edge.hub), what="the first series")
    proxy.stop()
    assert storescu(edge, *second).returncode == 0  # the edge keeps working without the WAN
    wait_for(lambda: uplink(edge)["last_error"] != "", what="the cut to be noticed")
    assert uplink(edge)["queue_depth"] > 0 and len(digests(edge.hub)) == 3
    proxy.start()
    wait_for(all_sent(edge, edge.hub), what="everything after the link came back")
    assert len(digests(edge.hub)) == len(digests(edge)) == 3 + 8


def test_kill_9_of_the_edge_while_sending(link, tmp_path) -> None:
    start_edge, _ = link
    files = ct_instances(tmp_path / "ct", 2, 30, size=128)
    edge = start_edge(bandwidth=400_000, batch_size=5)  # ~35 KB each: some seconds of sending
    assert storescu(edge, *files).returncode == 0
    wait_for(lambda: len(digests(edge.hub)) >= 10, what="sending to begin")
    edge.kill()
    assert len(digests(edge.hub)) < len(files), "the kill did not land while sending"
    restarted = start_edge(batch_size=5)
    restarted.hub = edge.hub  # type: ignore[attr-defined]
    wait_for(all_sent(restarted, edge.hub), what="the rest after the restart")
    hub_digests = digests(edge.hub)
    assert len(hub_digests) == len(files) == len(set(hub_digests.values()))
    blobs = [p for p in (edge.hub.data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == len(files), "a resent instance was stored twice"


def test_refused_upload_is_dead_lettered_and_resent_after_the_fix(link, tmp_path) -> None:
    start_edge, _ = link
    edge = start_edge()
    set_token_role(edge.hub, "edge_uplink", "referring")  # may not store: 403
    assert storescu(edge, *ct_instances(tmp_path / "ct", 1, 3, size=64)).returncode == 0
    queue = f"{edge.url}/api/uplink/queue"
    wait_for(lambda: requests.get(queue, timeout=10).json()["counts"]["dead"] == 3,
             what="dead-lettering")  # fmt: skip
    dead = requests.get(f"{queue}?state=dead", timeout=10).json()["items"]
    assert all(row["attempts"] == 2 and "403" in row["last_error"] for row in dead)
    assert digests(edge.hub) == {}
    set_token_role(edge.hub, "edge_uplink", "technician")  # the fix
    for row in dead:
        reply = requests.post(f"{edge.url}/api/uplink/dead/{row['id']}/resend", timeout=10)
        assert reply.status_code == 200, reply.text
    assert requests.post(f"{edge.url}/api/uplink/dead/999999/resend", timeout=10).status_code == 404
    wait_for(all_sent(edge, edge.hub), what="the resent instances")


def _study(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


# --- units ----------------------------------------------------------------------------------


def test_backoff_is_capped_exponential_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff(n, 1.0, 60.0, rng) for n in range(1, 12)]
    assert 0.5 <= delays[0] <= 1.0 and 4.0 <= delays[3] <= 8.0
    assert all(30.0 <= d <= 60.0 for d in delays[7:])


def test_stow_answer_with_and_without_the_mekong_digest() -> None:
    body = {
        "00081199": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.2.3"]},
             "00090010": {"vr": "LO", "Value": ["MEKONG 1.0"]},
             "00091001": {"vr": "LO", "Value": ["ab" * 32]}},
            {"00081155": {"vr": "UI", "Value": ["1.2.4"]}},
        ]},
        "00081198": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.2.5"]},
             "00081197": {"vr": "US", "Value": [0xC000]}},
        ]},
    }  # fmt: skip
    answers = parse_response(body)
    assert answers["1.2.3"].stored and answers["1.2.3"].digest == "ab" * 32
    assert answers["1.2.4"].stored and answers["1.2.4"].digest is None
    assert not answers["1.2.5"].stored and answers["1.2.5"].reason == 0xC000


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"uplink.url": "ftp://hub"}, "uplink.url"),
        ({"uplink.url": "http://hub/dicom-web"}, "uplink.token"),
        ({"uplink.url": "http://hub", "uplink.token": "t", "uplink.bandwidth": -1}, "bandwidth"),
        ({"uplink.url": "http://hub", "uplink.token": "t", "uplink.backoff_max": 0.1}, "backoff"),
    ],
)
def test_uplink_config_is_validated(keys: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, keys)


def test_uplink_routes_declare_a_permission() -> None:
    from mekong.edge.uplink.routes import routes
    from mekong.shared.auth.roles import Permission

    wanted = {"uplink_queue": Permission.SYSTEM_READ, "uplink_resend": Permission.SYSTEM_CONFIGURE}
    assert {r.handler.__name__: r.handler.permission for r in routes} == wanted  # type: ignore[attr-defined, union-attr]
