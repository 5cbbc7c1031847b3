"""Outbound HL7 to the HIS against a real node and a test MLLP listener (RIS-6.2): status
messages, retries with the listener down, dead letters and resend, kill -9 with messages
queued, OMI^O23, configuration errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import mekong_cli
from tests.hl7peer import HisListener, Received
from tests.nodeproc import NodeProcess, free_port, peer_env
from tests.test_hl7 import NAME, api, send
from tools.hl7send import orm


def node_config(path: Path, his_port: int, message_type: str = "ORM^O01", **hl7: Any) -> Path:
    settings = {"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0, "max_attempts": 50,
                "ack_timeout_seconds": 2.0, "viewer_url": "https://pacs.bvcr.vn",
                **hl7}  # fmt: skip
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    path.write_text("\n".join([
        "[dicom]", "workers = 1", "[hl7]", *lines, "[[hl7.destinations]]", 'name = "his"',
        'host = "127.0.0.1"', f"port = {his_port}", f'message_type = "{message_type}"',
        'receiving_application = "HIS"', 'receiving_facility = "BVCR"',
    ]) + "\n")  # fmt: skip
    return path


@pytest.fixture(scope="module")
def his() -> Iterator[HisListener]:
    listener = HisListener(free_port()).start()
    yield listener
    listener.stop()


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory, his: HisListener) -> Iterator[NodeProcess]:
    folder = tmp_path_factory.mktemp("out")
    config = node_config(folder / "n.toml", his.port)
    node = NodeProcess(folder / "data", extra_args=["--config", str(config)])
    yield node.start()
    node.stop()


def for_order(messages: list[Received], accession: str) -> list[Received]:
    return [m for m in messages if m.field("OBR", 18) == accession]


def outbox(node: NodeProcess, query: str = "") -> list[dict[str, Any]]:
    status, body = api(node, "GET", f"/api/hl7/outbox?{query}")
    assert status == 200, body
    return body["messages"]


def wait_rows(node: NodeProcess, accession: str, state: str, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = outbox(node, f"accession={accession}&state={state}")
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"no {state} message for {accession}: {outbox(node)}")


def set_status(node: NodeProcess, accession: str, status: str) -> None:
    code, body = api(node, "POST", f"/api/orders/{accession}/status", {"status": status})
    assert code == 200, body


def test_status_change_reaches_the_his(ris: NodeProcess, his: HisListener) -> None:
    assert send(ris, orm("OUT-1", "OUT1"))["code"] == "AA"
    set_status(ris, "OUT1", "ARRIVED")
    his.wait_for(lambda got: len(for_order(got, "OUT1")) == 1)
    [message] = for_order(his.received, "OUT1")
    assert message.segment("MSH")[3:7] == ["MEKONG", "MEKONG", "HIS", "BVCR"]
    assert message.field("MSH", 9) == "ORM^O01" and message.field("MSH", 18) == "UNICODE UTF-8"
    assert (message.field("ORC", 1), message.field("ORC", 5)) == ("SC", "SC")
    assert message.field("ORC", 16).startswith("ARRIVED^")
    assert message.field("PID", 5).encode() == NAME.encode()
    assert message.field("PID", 3) == "BN001^^^BVCR" and message.field("ORC", 2) == "POUT1"
    [row] = wait_rows(ris, "OUT1", "SENT")
    assert row["control_id"] == message.control_id and row["attempts"] == 1
    status, full = api(ris, "GET", f"/api/hl7/outbox/{row['id']}")
    assert status == 200 and "MSA|AA|" + row["control_id"] in full["ack"]

    set_status(ris, "OUT1", "IN_PROGRESS")
    his.wait_for(lambda got: len(for_order(got, "OUT1")) == 2)
    assert for_order(his.received, "OUT1")[1].field("ORC", 5) == "IP"


def test_hl7_changes_from_the_his_are_not_echoed(ris: NodeProcess, his: HisListener) -> None:
    assert send(ris, orm("OUT-2", "OUT2"))["code"] == "AA"
    assert send(ris, orm("OUT-2C", "OUT2", control="CA"))["code"] == "AA"
    set_status(ris, "OUT1", "COMPLETED")  # a later message on the same queue
    his.wait_for(lambda got: any(m.field("ORC", 5) == "CM" for m in for_order(got, "OUT1")))
    assert for_order(his.received, "OUT2") == []


def test_listener_down_then_back_is_delivered_once(
    ris: NodeProcess, his: HisListener, tmp_path: Path
) -> None:
    his.stop()
    try:
        assert send(ris, orm("OUT-3", "OUT3"))["code"] == "AA"
        set_status(ris, "OUT3", "ARRIVED")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            [row] = outbox(ris, "accession=OUT3")
            if row["attempts"] >= 3:
                break
            time.sleep(0.1)
        assert row["state"] == "PENDING" and "connect" in row["last_error"], row
    finally:
        his.start()
    [sent] = wait_rows(ris, "OUT3", "SENT")
    his.wait_for(lambda got: len(for_order(got, "OUT3")) == 1)
    time.sleep(1.5)  # nothing further arrives
    ids = [m.control_id for m in for_order(his.received, "OUT3")]
    assert ids == [sent["control_id"]]


def test_no_ack_in_time_is_sent_again_with_the_same_control_id(
    ris: NodeProcess, his: HisListener
) -> None:
    silent: set[str] = set()

    def answer(text: str) -> str:
        if "|OUT4|" in text and not silent:
            silent.add(Received(text).control_id)
            return ""  # the first time: no ACK at all
        return "AA"

    his.answer = answer
    try:
        assert send(ris, orm("OUT-4", "OUT4"))["code"] == "AA"
        set_status(ris, "OUT4", "ARRIVED")
        [row] = wait_rows(ris, "OUT4", "SENT")
    finally:
        his.answer = lambda _text: "AA"
    got = [m.control_id for m in for_order(his.received, "OUT4")]
    assert got == [row["control_id"]] * 2 and row["attempts"] == 2


def test_refused_message_is_dead_lettered_and_resent(ris: NodeProcess, his: HisListener) -> None:
    his.answer = lambda text: "AR" if "|OUT5|" in text else "AA"
    try:
        assert send(ris, orm("OUT-5", "OUT5"))["code"] == "AA"
        set_status(ris, "OUT5", "ARRIVED")
        [dead] = wait_rows(ris, "OUT5", "DEAD")
        assert dead["last_error"].startswith("AR: ") and "không tồn tại" in dead["last_error"]
        assert dead in outbox(ris, "state=DEAD")
        assert send(ris, orm("OUT-6", "OUT6"))["code"] == "AA"  # the queue goes on

        set_status(ris, "OUT6", "ARRIVED")
        wait_rows(ris, "OUT6", "SENT")
    finally:
        his.answer = lambda _text: "AA"
    listing = mekong_cli("outbox", "list", "--state", "dead", "--data", str(ris.data_dir))
    assert listing.returncode == 0 and f"#{dead['id']} " in listing.stdout, listing
    assert "không tồn tại" in listing.stdout and "OUT6" not in listing.stdout
    status, again = api(ris, "POST", f"/api/hl7/outbox/{dead['id']}/resend")
    assert status == 200 and again["state"] == "PENDING", again
    [sent] = wait_rows(ris, "OUT5", "SENT")
    refused = mekong_cli("outbox", "resend", str(dead["id"]), "--data", str(ris.data_dir))
    assert refused.returncode == 1 and "only DEAD" in refused.stdout
    assert sent["control_id"] == dead["control_id"]
    status, body = api(ris, "POST", f"/api/hl7/outbox/{dead['id']}/resend")
    assert status == 409 and "only DEAD" in body["error"]
    assert api(ris, "POST", "/api/hl7/outbox/999999/resend")[0] == 404
    assert api(ris, "GET", "/api/hl7/outbox?state=LOST")[0] == 400


def test_messages_queued_at_kill_9_are_delivered_after_restart(
    node_factory, tmp_path: Path
) -> None:
    his = HisListener(free_port())  # not started: the HIS is down
    config = node_config(tmp_path / "n.toml", his.port)
    node: NodeProcess = node_factory(extra_args=["--config", str(config)]).start()
    for n in range(5):
        assert send(node, orm(f"K-{n}", f"KILL{n}"))["code"] == "AA"
        set_status(node, f"KILL{n}", "ARRIVED")
    node.kill()
    with closing(sqlite3.connect(node.data_dir / "index.db")) as db:
        queued = db.execute("SELECT control_id FROM hl7_outbox WHERE state='PENDING'").fetchall()
    assert len(queued) == 5
    his.start()
    try:
        restarted = node_factory(extra_args=node.extra_args).start()  # same data folder
        his.wait_for(lambda got: len(got) >= 5)
        for n in range(5):
            wait_rows(restarted, f"KILL{n}", "SENT")
        assert sorted(his.control_ids()) == sorted(c for (c,) in queued)
        order = [m.field("OBR", 18) for m in his.received]
        assert order == [f"KILL{n}" for n in range(5)], "one destination's queue keeps its order"
    finally:
        his.stop()


def test_omi_o23_destination(node_factory, tmp_path: Path) -> None:
    his = HisListener(free_port()).start()
    try:
        config = node_config(tmp_path / "n.toml", his.port, "OMI^O23")
        node: NodeProcess = node_factory(extra_args=["--config", str(config)]).start()
        assert send(node, orm("OMI-1", "OMI1"))["code"] == "AA"
        set_status(node, "OMI1", "ARRIVED")
        his.wait_for(lambda got: len(got) == 1)
        [message] = his.received
        assert message.field("MSH", 9) == "OMI^O23^OMI_O23" and message.field("MSH", 12) == "2.5.1"
        assert message.field("IPC", 1) == "OMI1" and message.field("IPC", 4) == "OMI1"
        assert message.segment("TQ1") and message.field("ORC", 5) == "SC"
    finally:
        his.stop()


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('[[hl7.destinations]]\nname = "his"\nhost = "h"\nport = 2575\nmessage_type = "ADT"',
         "hl7.destinations[0].message_type must be one of ORM^O01, OMI^O23"),
        ('[[hl7.destinations]]\nname = "his"\nport = 2575', "hl7.destinations[0].host"),
        ("[hl7]\ndestinations = 5", "must be an array of tables"),
        ("[hl7]\nretry_initial_seconds = 0", "hl7.retry_initial_seconds"),
    ],
)  # fmt: skip
def test_bad_destination_config_stops_start_up(tmp_path: Path, toml: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "mekong.shared.cli", "serve", "--data", str(tmp_path / "d"),
         "--config", str(path)],
        capture_output=True, text=True, env=peer_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert error in result.stderr and len(result.stderr.strip().splitlines()) == 1
