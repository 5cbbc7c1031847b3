"""The audit trail (GEN-3, PACS-16): one event per audited act, tamper detection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pydicom
import pytest
import requests

from mekong.shared.audit.sites import append_from_site, sealed_after
from mekong.shared.audit.trail import AuditEvent, append, verify
from mekong.shared.cli_support import with_index
from tests.authn import add_token, browser, cli, db
from tests.conftest import dcmtk, storescu
from tests.nodeproc import AE_TITLE, NodeProcess
from tools import gendata


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, dict, Path]]:
    root = tmp_path_factory.mktemp("audit")
    node = NodeProcess(root / "data", trusted_loopback=False).start()
    files = gendata.ct_series(root / "ct", count=2, patient_id="AUD001")
    storescu(node, *files)
    headers = {
        "reader": {"Authorization": f"Bearer {add_token(node, 'reader', 'radiologist')}"},
        "auditor": {"Authorization": f"Bearer {add_token(node, 'auditor1', 'auditor')}"},
        "admin": {"Authorization": f"Bearer {add_token(node, 'it1', 'admin')}"},
    }
    yield node, headers, files[0]
    node.stop()


def events(node: NodeProcess, headers: dict, **filters: str) -> list[dict]:
    url = f"http://127.0.0.1:{node.http_port}/api/audit"
    reply = requests.get(url, params=filters, headers=headers["auditor"], timeout=30)
    assert reply.ok, reply.text
    return reply.json()


def count_after(node: NodeProcess, headers: dict, act, **filters: str) -> list[dict]:  # type: ignore[no-untyped-def]
    before = {e["id"] for e in events(node, headers, **filters)}
    act()
    time.sleep(0.6)  # the audit log writes in batches every 0.25 s
    return [e for e in events(node, headers, **filters) if e["id"] not in before]


def test_a_wado_rs_retrieval_is_one_event(audited) -> None:  # type: ignore[no-untyped-def]
    node, headers, sample = audited
    study = pydicom.dcmread(sample).StudyInstanceUID
    url = f"http://127.0.0.1:{node.http_port}/dicom-web/studies/{study}"
    new = count_after(node, headers, lambda: requests.get(url, headers=headers["reader"]),
                      action="images.retrieve")  # fmt: skip
    assert len(new) == 1
    assert (new[0]["actor"], new[0]["object"], new[0]["patient_id"]) == ("reader", study, "AUD001")


def test_a_c_find_is_one_event(audited) -> None:  # type: ignore[no-untyped-def]
    node, headers, _ = audited

    def find() -> None:
        result = dcmtk("findscu", "-S", "-aet", "FINDER", "-aec", AE_TITLE, "127.0.0.1",
                       str(node.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                       "-k", "PatientID=AUD001", "-k", "StudyInstanceUID")  # fmt: skip
        assert result.returncode == 0, result.stderr

    new = count_after(node, headers, find, action="images.query", actor="FINDER")
    assert len(new) == 1 and new[0]["actor_kind"] == "ae" and new[0]["patient_id"] == "AUD001"


def test_a_failed_sign_in_is_one_event(audited) -> None:  # type: ignore[no-untyped-def]
    node, headers, _ = audited
    new = count_after(node, headers, lambda: browser(node).login("ghost", "Wrong-1-pass"),
                      action="login", outcome="failure")  # fmt: skip
    assert len(new) == 1 and new[0]["actor"] == "ghost"


def test_a_config_change_is_one_event(audited) -> None:  # type: ignore[no-untyped-def]
    node, headers, _ = audited
    url = f"http://127.0.0.1:{node.http_port}/api/admin/log-level"
    new = count_after(node, headers,
                      lambda: requests.put(url, json={"level": "INFO"}, headers=headers["admin"]),
                      action="config.change")  # fmt: skip
    assert len(new) == 1 and new[0]["actor"] == "it1" and new[0]["object"] == "log_level"


def test_events_export_as_dicom_audit_messages(audited) -> None:  # type: ignore[no-untyped-def]
    node, headers, _ = audited
    url = f"http://127.0.0.1:{node.http_port}/api/audit/export"
    reply = requests.get(url, params={"action": "images.retrieve"}, headers=headers["auditor"])
    messages = ET.fromstring(reply.content).findall("AuditMessage")
    assert messages
    event_id = messages[0].find("EventIdentification/EventID")
    assert event_id is not None and event_id.get("csd-code") == "110103"


def test_sealed_events_cannot_be_changed_and_tampering_is_detected(audited) -> None:  # type: ignore[no-untyped-def]
    node, headers, _ = audited
    verify = f"http://127.0.0.1:{node.http_port}/api/audit/verify"
    assert requests.get(verify, headers=headers["auditor"]).json()["ok"] is True
    assert cli("audit", "verify", "--data", str(node.data_dir)).returncode == 0
    with db(node) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_event SET actor = 'someone-else' WHERE id = 1")
    with db(node) as conn:  # an attacker with the database file drops the guard and edits
        conn.execute("DROP TRIGGER audit_sealed_is_final")
        conn.execute("UPDATE audit_event SET actor = 'someone-else' WHERE id = 1")
    result = cli("audit", "verify", "--data", str(node.data_dir))
    assert result.returncode == 1 and "event 1 was altered" in result.stdout
    assert requests.get(verify, headers=headers["auditor"]).status_code == 409


def test_a_storage_association_is_one_event_per_study(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, headers, _ = audited
    files = gendata.ct_series(tmp_path / "more", count=3, patient_id="AUD002", seed=5)
    new = count_after(node, headers, lambda: storescu(node, *files), action="images.store")
    assert len(new) == 1
    event = new[0]
    assert (event["actor"], event["actor_kind"], event["patient_id"]) == (
        "STORESCU",
        "ae",
        "AUD002",
    )
    assert '"instances": 3' in event["detail"]


def test_a_site_trail_resent_is_kept_once_and_bad_events_are_refused(tmp_path: Path) -> None:
    async def make(_index: object) -> None:
        return None

    asyncio.run(with_index(tmp_path / "edge", make))
    asyncio.run(with_index(tmp_path / "hub", make))
    edge_db, hub_db = tmp_path / "edge" / "index.db", tmp_path / "hub" / "index.db"
    events = [AuditEvent("ktv_lan", "user", "images.retrieve", object=f"1.2.3.{n}",
                         patient_id="BN001", detail={"n": n}) for n in range(3)]  # fmt: skip
    append(edge_db, events, seal_too=True)
    sent = sealed_after(edge_db, 0, 500)
    assert [e["id"] for e in sent] == [1, 2, 3] and all(e["hash"] for e in sent)
    assert append_from_site(hub_db, "clinic1", sent[:2]) == (2, 2)
    assert append_from_site(hub_db, "clinic1", sent) == (1, 3)  # a resend: only the new one
    assert append_from_site(hub_db, "clinic2", sent[:1]) == (1, 1)  # another site's own ids
    with pytest.raises(ValueError, match="id"):
        append_from_site(hub_db, "clinic1", [{**sent[0], "id": "x"}])
    with pytest.raises(ValueError, match="action"):
        append_from_site(hub_db, "clinic1", [{**sent[0], "id": 9, "action": ""}])
    append(hub_db, [], seal_too=True)
    assert verify(hub_db).ok
