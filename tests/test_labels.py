"""QR-label mapping for modalities without worklist (FEAT-5, RIS-3.3), against a real node:
the label's key and check digit, the printed PNG read back by pyzbar, the 50 × 30 mm PDF read
by poppler, DCMTK storescu from a configured key device (key in AccessionNumber, or in
StudyDescription through a regex) → the order, with the Vietnamese name coerced and the
originals kept; a bad check digit and another patient's key refused to "unmatched" with the
reason; a wrong mapping undone (audited); an uploaded picture of a label binds the import."""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pyzbar import pyzbar

from mekong.edge.labels import decode
from mekong.shared.config import KeyDeviceConfig
from mekong.shared.ris import labels
from tests.authn import db
from tests.edge_support import call
from tests.hl7peer import HisListener
from tests.nodeproc import NodeProcess, free_port
from tests.test_hl7 import NAME, api, send
from tests.test_reconcile import MODALITY_NAME, coerced, get_files, order, store, study, unmatched
from tests.test_reconcile import wait as wait_for
from tools.hl7send import orm

KEY_DEVICE = "XQ_CU"  # an old X-ray unit: the key is scanned into Accession Number
NOTE_DEVICE = "SA_CU"  # an old ultrasound: the key goes into the study description


# --- the key --------------------------------------------------------------------------------


def test_check_digit_detects_every_substitution_and_adjacent_transposition() -> None:
    rng = random.Random(5)
    keys = [labels.new_key() for _ in range(300)]
    keys += [labels.make_key(f"{n:07d}") for n in rng.sample(range(10**7), 300)]
    for key in keys:
        assert labels.is_valid(key) and len(key) == labels.KEY_LENGTH
        for i in range(len(key)):
            for digit in "0123456789":
                if digit != key[i]:
                    assert not labels.is_valid(key[:i] + digit + key[i + 1 :]), (key, i, digit)
            if i + 1 < len(key) and key[i] != key[i + 1]:
                swapped = key[:i] + key[i + 1] + key[i] + key[i + 2 :]
                assert not labels.is_valid(swapped), (key, i)


def test_key_shape_and_what_a_person_may_type() -> None:
    key = labels.make_key("4820173")
    assert labels.display(key) == "4820 1739"
    assert labels.is_valid("4820 1739") and labels.is_valid("4820-1739")
    assert not labels.is_key_shaped("ACC123") and not labels.is_key_shaped("482017391")
    assert labels.new_key()[0] != "0"


def test_a_label_in_a_camera_frame_is_found_by_zbar_and_by_opencv() -> None:
    data = labels.LabelData(labels.make_key("1234567"), "A1", NAME, "BN1", "1980", "XQ")
    from mekong.edge.labels import render

    label = Image.open(io.BytesIO(render.png(data))).convert("L").resize((300, 180))
    scene = Image.new("L", (1280, 720), 90)
    scene.paste(label, (600, 300))
    gray = np.asarray(scene)
    assert decode.key_in_frame(gray) == data.key
    assert decode._opencv(np.ascontiguousarray(gray)) == [data.key]  # the fallback alone
    assert decode.key_in_image(b"not a picture") == ""


def test_key_device_config_is_checked() -> None:
    from mekong.shared.config import ConfigError, EdgeConfig, validate_edge

    with pytest.raises(ConfigError, match=r"edge.key_devices\[0\].attribute"):
        validate_edge(EdgeConfig(key_devices=(KeyDeviceConfig("XQ", "Modality"),)))
    with pytest.raises(ConfigError, match="regex"):
        validate_edge(EdgeConfig(key_devices=(KeyDeviceConfig("XQ", regex="(("),)))


def test_a_key_devices_attribute_and_regex_give_the_key() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from mekong.shared.db.pending import StoredInstance
    from mekong.shared.recon.facts import study_facts

    ds = Dataset()
    ds.AccessionNumber, ds.PatientName = "4820 1739", "NGUYEN VAN A 48201739"
    ds.StudyDescription = "XQ nguc"
    item = Dataset()
    item.RequestedProcedureID = "48201739"
    ds.RequestAttributesSequence = Sequence([item])
    stored = StoredInstance("1", "d", "XQ ", "1.2", "CR", "", "", 0.0)

    def facts(**device: str):  # type: ignore[no-untyped-def]
        return study_facts(ds, stored, {"XQ": KeyDeviceConfig("XQ", **device)})

    assert facts().label_key == "4820 1739"  # AccessionNumber, whole value
    assert facts().label_where == "AccessionNumber from XQ"
    assert facts(attribute="PatientName", regex=r"(\d{8})$").label_key == "48201739"
    assert facts(attribute="PatientName", regex=r"(?P<key>\d{4})\d{4}").label_key == "4820"
    assert facts(attribute="RequestedProcedureID").label_key == "48201739"  # from the item
    assert facts(attribute="StudyDescription", regex="#(.*)").label_key == ""  # no match
    assert study_facts(ds, stored, {}).label_where == ""  # not a key device


# --- against a node ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    his = HisListener(free_port()).start()
    folder = tmp_path_factory.mktemp("labels")
    (folder / "n.toml").write_text(
        f'[[hl7.destinations]]\nname = "his"\nhost = "127.0.0.1"\nport = {his.port}\n'
        f'[[edge.key_devices]]\nae_title = "{KEY_DEVICE}"\nattribute = "AccessionNumber"\n'
        f'[[edge.key_devices]]\nae_title = "{NOTE_DEVICE}"\nattribute = "StudyDescription"\n'
        "regex = '#(?P<key>[0-9]{4} ?[0-9]{4})'\n"
    )
    node = NodeProcess(folder / "data", extra_args=["--config", str(folder / "n.toml")])
    yield node.start()
    node.stop()
    his.stop()


def new_order(node: NodeProcess, accession: str, patient: str, name: str = NAME) -> None:
    message = orm(f"CTL-{accession}", accession, patient=f"{patient}^^^BVCR", name=name)
    assert send(node, message)["code"] == "AA"


def fetch(node: NodeProcess, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"{node.url}{path}", timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def audit_events(node: NodeProcess, action: str, obj: str) -> list[dict[str, Any]]:
    """The trail's events (written in the background: waited for)."""

    def read() -> list[dict[str, Any]]:
        with db(node) as conn:
            query = ("SELECT actor, patient_id, detail FROM audit_event "
                     "WHERE action = ? AND object = ? ORDER BY id")  # fmt: skip
            rows = conn.execute(query, (action, obj)).fetchall()
        return [{"actor": a, "patient_id": p, "detail": json.loads(d)} for a, p, d in rows]

    return wait_for(read, f"audit event {action} of {obj}", timeout=10)


def scanned_key(node: NodeProcess, accession: str) -> str:
    """Print the label (PNG) and read its QR code as the technician's scanner would."""
    status, media, body = fetch(node, f"/api/orders/{accession}/label.png")
    assert (status, media) == (200, "image/png"), body[:200]
    [symbol] = pyzbar.decode(Image.open(io.BytesIO(body)))
    assert symbol.type == "QRCODE"
    return symbol.data.decode()


def test_label_png_carries_the_key_and_the_pdf_is_50_by_30_mm(
    node: NodeProcess, tmp_path: Path
) -> None:
    new_order(node, "LB1", "BN-LB1")
    key = scanned_key(node, "LB1")
    assert labels.is_valid(key)
    assert scanned_key(node, "LB1") == key  # stable: issued once, stored
    png = Image.open(io.BytesIO(fetch(node, "/api/orders/LB1/label.png")[2]))
    assert png.size == (600, 360) and round(png.info["dpi"][0], 1) == 304.8

    status, media, body = fetch(node, "/api/orders/LB1/label.pdf")
    assert (status, media) == (200, "application/pdf") and body.startswith(b"%PDF")
    (tmp_path / "l.pdf").write_bytes(body)
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", body)
    assert box is not None
    width, height = (float(v) * 25.4 / 72 for v in box.groups())
    assert abs(width - 50) < 0.05 and abs(height - 30) < 0.05, (width, height)
    text = subprocess.run(["pdftotext", str(tmp_path / "l.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    flat = " ".join(text.split())
    assert "Nguyễn Thị Hồng Nhung" in flat and "LB1" in flat and "1980" in flat
    assert labels.display(key) in flat and "Chụp X quang ngực thẳng" in flat

    assert fetch(node, "/api/orders/NO-SUCH/label.pdf")[0] == 404
    [event] = audit_events(node, "order.label", "LB1")[:1]
    assert event["patient_id"] == "BN-LB1" and event["detail"]["key"] == key


def test_storescu_with_the_scanned_key_maps_the_images_to_the_order(
    node: NodeProcess, tmp_path: Path
) -> None:
    new_order(node, "LB2", "BN-LB2")
    key = scanned_key(node, "LB2")
    files = study(tmp_path / "lb2", "MOD-LB2", count=2, AccessionNumber=key)
    study_uid = store(node, files, aet=KEY_DEVICE)

    linked = wait_for(lambda: order(node, "LB2")["studies"], "the study under the order")
    assert [(s["study_uid"], s["matched_by"]) for s in linked] == [(study_uid, "label")]
    for ds in coerced(node, study_uid, NAME, 2):
        assert (ds.PatientID, ds.AccessionNumber) == ("BN-LB2", "LB2")
        [history] = ds.OriginalAttributesSequence
        [before] = history.ModifiedAttributesSequence
        assert (before.AccessionNumber, before.PatientID) == (key, "MOD-LB2")
        assert str(before.PatientName) == MODALITY_NAME
        assert history.ReasonForTheAttributeModification == "COERCE"
    for path in get_files(node, study_uid, tmp_path / "get"):  # as DICOM retrieve gives it
        ds = pydicom.dcmread(path)
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert NAME.encode() in path.read_bytes() and str(ds.PatientName) == NAME


def test_a_key_in_the_study_description_is_found_by_the_devices_regex(
    node: NodeProcess, tmp_path: Path
) -> None:
    new_order(node, "LB3", "BN-LB3")
    key = scanned_key(node, "LB3")
    description = f"SA bung #{labels.display(key)}"
    study_uid = store(node, study(tmp_path / "lb3", "MOD-LB3", StudyDescription=description),
                      aet=NOTE_DEVICE)  # fmt: skip
    linked = wait_for(lambda: order(node, "LB3")["studies"], "the study under the order")
    assert [(s["study_uid"], s["matched_by"]) for s in linked] == [(study_uid, "label")]


def test_a_bad_check_digit_is_refused_to_unmatched(node: NodeProcess, tmp_path: Path) -> None:
    new_order(node, "LB4", "BN-LB4")
    key = scanned_key(node, "LB4")
    typo = key[:-1] + str((int(key[-1]) + 1) % 10)
    study_uid = store(node, study(tmp_path / "lb4", "MOD-LB4", AccessionNumber=typo),
                      aet=KEY_DEVICE)  # fmt: skip
    found = wait_for(lambda: unmatched(node).get(study_uid), "the study in the unmatched list")
    assert found["reason_code"] == "LABEL_CHECK_DIGIT"
    assert typo in found["reason"] and "check digit" in found["reason"]
    assert order(node, "LB4")["studies"] == []


def test_the_key_of_another_patient_is_refused_to_unmatched(
    node: NodeProcess, tmp_path: Path
) -> None:
    new_order(node, "LB5", "BN-LB5")
    new_order(node, "LB6", "BN-LB6", name="Trần^Văn Bình")
    key_of_lb5 = scanned_key(node, "LB5")
    # the images say patient BN-LB6 (a patient the RIS knows) but carry BN-LB5's label
    study_uid = store(node, study(tmp_path / "lb6", "BN-LB6", AccessionNumber=key_of_lb5),
                      aet=KEY_DEVICE)  # fmt: skip
    found = wait_for(lambda: unmatched(node).get(study_uid), "the study in the unmatched list")
    assert found["reason_code"] == "LABEL_OTHER_PATIENT"
    assert "LB5" in found["reason"] and "BN-LB6" in found["reason"]
    assert order(node, "LB5")["studies"] == [] and order(node, "LB6")["studies"] == []

    # a key already used for one modality Patient ID is refused for another one
    new_order(node, "LB7", "BN-LB7")
    key = scanned_key(node, "LB7")
    first = store(node, study(tmp_path / "lb7a", "US-0001", AccessionNumber=key), aet=KEY_DEVICE)
    wait_for(lambda: order(node, "LB7")["studies"], "the first study under LB7")
    again = store(node, study(tmp_path / "lb7b", "US-0002", AccessionNumber=key), aet=KEY_DEVICE)
    found = wait_for(lambda: unmatched(node).get(again), "the second study unmatched")
    assert found["reason_code"] == "LABEL_OTHER_PATIENT" and "US-0001" in found["reason"]
    assert [s["study_uid"] for s in order(node, "LB7")["studies"]] == [first]


def test_a_wrong_mapping_is_undone_and_audited(node: NodeProcess, tmp_path: Path) -> None:
    new_order(node, "LB8", "BN-LB8")
    new_order(node, "LB9", "BN-LB9", name="Lê^Thị Mỹ Duyên")
    key = scanned_key(node, "LB8")  # the technician scanned the wrong patient's label
    study_uid = store(node, study(tmp_path / "lb8", "MOD-LB8", AccessionNumber=key),
                      aet=KEY_DEVICE)  # fmt: skip
    wait_for(lambda: order(node, "LB8")["studies"], "the study under LB8")
    coerced(node, study_uid, NAME, 2)

    status, body = api(node, "POST", f"/api/studies/{study_uid}/move",
                       {"accession": "LB9", "reason": "nhãn dán nhầm bệnh nhân"})  # fmt: skip
    assert status == 200, body
    assert (body["from"], body["order"]["accession"]) == ("LB8", "LB9")
    assert order(node, "LB8")["studies"] == []
    assert [s["matched_by"] for s in order(node, "LB9")["studies"]] == ["manual"]
    for ds in coerced(node, study_uid, "Lê^Thị Mỹ Duyên", 2):
        assert (ds.PatientID, ds.AccessionNumber) == ("BN-LB9", "LB9")
        assert len(ds.OriginalAttributesSequence) == 2  # both changes kept
    events = audit_events(node, "study.move", study_uid)
    assert len(events) == 1 and events[0]["actor"] == "lan:127.0.0.1"
    assert events[0]["detail"]["from"] == "LB8" and events[0]["detail"]["accession"] == "LB9"
    assert events[0]["detail"]["reason"] == "nhãn dán nhầm bệnh nhân"

    assert api(node, "POST", f"/api/studies/{study_uid}/move", {"accession": "LB9"})[0] == 409
    assert api(node, "POST", "/api/studies/1.2.3/move", {"accession": "LB9"})[0] == 404
    assert api(node, "POST", f"/api/studies/{study_uid}/move", {})[0] == 400


def test_an_uploaded_picture_of_a_label_binds_the_import(node: NodeProcess) -> None:
    new_order(node, "LB10", "BN-LB10")
    picture = fetch(node, "/api/orders/LB10/label.png")[2]
    answer = requests.post(f"{node.url}/api/import", files={"file": ("nhan.png", picture)},
                           timeout=60)  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.json()["accession"] == "LB10"
    blank = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(blank, "PNG")
    refused = requests.post(f"{node.url}/api/import", files={"file": ("x.png", blank.getvalue())},
                            timeout=60)  # fmt: skip
    assert refused.status_code == 404 and "accession" in refused.json()["error"]


def test_a_label_shown_to_the_camera_binds_the_capture_session(
    node: NodeProcess, tmp_path: Path
) -> None:
    new_order(node, "LB11", "BN-LB11")
    label = Image.open(io.BytesIO(fetch(node, "/api/orders/LB11/label.png")[2])).convert("RGB")
    scene = Image.new("RGB", (640, 480), (40, 60, 40))  # a label held up in front of the scope
    scene.paste(label.resize((300, 180)), (170, 150))
    scene.save(tmp_path / "scene.png")
    video = tmp_path / "label.mp4"
    made = subprocess.run(["ffmpeg", "-v", "error", "-loop", "1", "-i", str(tmp_path / "scene.png"),
                           "-t", "3", "-r", "10", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                           str(video)], capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    status, body = call(node, "PUT", "/api/capture/cam-label",
                        {"source": str(video), "kind": "endoscopy"})  # fmt: skip
    assert status == 200, body
    status, snap = call(node, "POST", "/api/capture/cam-label/snapshot", {})
    assert status == 201, snap
    assert snap["accession"] == "LB11"
    status, started = call(node, "POST", "/api/capture/cam-label/start", {"seconds": 1})
    assert status == 202, started
    status, clip = call(node, "POST", "/api/capture/cam-label/stop")
    assert status == 200 and clip["stored"] and clip["accession"] == "LB11", clip
