"""Configuration bundles hub → edge (issue 6 item 3, PACS-13): signed on the hub, checked and
applied atomically by the edge, refused when the signature or a setting is wrong (the old
configuration stays), rolled back on request. Hub and edge run as two processes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mekong.shared import bundles
from tests.authn import add_token
from tests.conftest import mekong_cli
from tests.nodeproc import NodeProcess
from tests.test_uplink import wait_for

AE_1 = {"title": "CT_PHONG1", "host": "10.0.0.5", "port": 104, "allow": ["store", "find"],
        "description": "CT phòng 1 — tầng trệt"}  # fmt: skip
AE_2 = {"title": "DX_PHONG2", "host": "10.0.0.6", "port": 11112, "ascii_worklist": True}


# --- the format, without a node ---------------------------------------------------------------


def test_a_sealed_bundle_opens_with_the_hub_key_only() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = bundles.seal(key, 3, "2026-11-26T06:00:00Z", "quantri", {"aes": [AE_1]})
    bundle = bundles.open_envelope(envelope, key.public_key())
    assert bundle.version == 3 and bundle.aes is not None
    assert bundle.aes[0].description == "CT phòng 1 — tầng trệt"
    with pytest.raises(bundles.BundleError, match="signature"):
        bundles.open_envelope(envelope, Ed25519PrivateKey.generate().public_key())


def test_a_changed_body_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = bundles.seal(key, 1, "t", "quantri", {"log_level": "INFO"})
    body = json.loads(base64.b64decode(envelope["body"]))
    body["settings"]["log_level"] = "DEBUG"
    forged = {**envelope, "body": base64.b64encode(json.dumps(body).encode()).decode()}
    with pytest.raises(bundles.BundleError, match="signature"):
        bundles.open_envelope(forged, key.public_key())
    with pytest.raises(bundles.BundleError, match="base64"):
        bundles.open_envelope({**envelope, "signature": "%%%"}, key.public_key())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour": "blue"}, "unknown setting"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"uplink_bandwidth": -1}, "uplink_bandwidth"),
        ({"aes": {"title": "X"}}, "aes must be a list"),
        ({"aes": [{**AE_1, "port": 0}]}, r"aes\[0\]: port"),
        ({"aes": [AE_1, AE_1]}, "twice"),
        ({"catalogue": {"printer": []}}, "unknown master file"),
        ({"catalogue": {"service": [{"code": "SA01", "colour": "x"}]}}, r"catalogue.service\[0\]"),
        ({"catalogue": {"device": [{"ae_title": "BAD\\AE"}]}}, r"catalogue.device\[0\]"),
    ],
)
def test_wrong_settings_are_named(settings: dict, message: str) -> None:
    with pytest.raises(bundles.BundleError, match=message):
        bundles.seal(Ed25519PrivateKey.generate(), 1, "t", "x", settings)


# --- hub and edge -------------------------------------------------------------------------------


def _edge_config(path: Path, hub: NodeProcess, token: str, key: str) -> list[str]:
    path.write_text(
        "[uplink]\n"
        f'url = "http://127.0.0.1:{hub.http_port}/dicom-web"\n'
        f'token = "{token}"\nbundle_key = "{key}"\nbundle_interval = 0.3\n'
    )
    return ["--config", str(path)]


def _issue(hub: NodeProcess, tmp_path: Path, settings: dict) -> int:
    file = tmp_path / "bundle.json"
    file.write_text(json.dumps({"settings": settings}, ensure_ascii=False), encoding="utf-8")
    result = mekong_cli("bundle", "issue", str(file), "--data", str(hub.data_dir))
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


def _aes(edge: NodeProcess) -> dict[str, dict]:
    reply = requests.get(f"http://127.0.0.1:{edge.http_port}/api/admin/aes", timeout=10)
    return {ae["title"]: ae for ae in reply.json()}


def _bundles(edge: NodeProcess) -> dict:
    return edge.health()["config_bundles"]


def _log_level(edge: NodeProcess) -> str:
    reply = requests.get(f"http://127.0.0.1:{edge.http_port}/api/admin/log-level", timeout=10)
    return reply.json()["level"]


def test_bundles_reach_the_edge_forgeries_do_not_and_rollback_holds(
    node_factory, tmp_path: Path
) -> None:
    hub = node_factory("hub", mode="hub", trusted_loopback=False).start()
    key = mekong_cli("bundle", "key", "--data", str(hub.data_dir)).stdout.strip()
    token = add_token(hub, "edge_q7", "admin")
    edge_args = _edge_config(tmp_path / "edge.toml", hub, token, key)
    edge = node_factory("edge", extra_args=edge_args).start()

    # 1. issued on the hub → in force at the edge: AE table, log level
    assert _issue(hub, tmp_path, {"aes": [AE_1], "log_level": "DEBUG"}) == 1
    wait_for(lambda: _bundles(edge)["version"] == 1, 30, "bundle 1 at the edge")
    assert set(_aes(edge)) == {"CT_PHONG1"}
    assert _aes(edge)["CT_PHONG1"]["description"] == "CT phòng 1 — tầng trệt"
    assert _log_level(edge) == "DEBUG"

    # 2. issued over REST by an admin: the whole AE table replaced
    reply = requests.put(
        f"http://127.0.0.1:{hub.http_port}/api/hub/config-bundle",
        json={"settings": {"aes": [AE_2], "log_level": "INFO", "uplink_bandwidth": 2_000_000}},
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )  # fmt: skip
    assert reply.status_code == 201 and reply.json() == {"version": 2}, reply.text
    wait_for(lambda: _bundles(edge)["version"] == 2, 30, "bundle 2 at the edge")
    assert set(_aes(edge)) == {"DX_PHONG2"} and _aes(edge)["DX_PHONG2"]["ascii_worklist"]
    assert _log_level(edge) == "INFO"

    # 3. a forged bundle on the hub (body changed after signing) is refused; nothing changes
    good = json.loads((hub.data_dir / "hub/bundles/000002.json").read_text())
    body = json.loads(base64.b64decode(good["body"]))
    body.update(version=3, settings={"aes": [], "log_level": "DEBUG"})
    forged = {**good, "body": base64.b64encode(json.dumps(body).encode()).decode()}
    (hub.data_dir / "hub/bundles/000003.json").write_text(json.dumps(forged))
    wait_for(lambda: "signature" in _bundles(edge)["last_error"], 30, "the forgery refused")
    assert _bundles(edge)["version"] == 2 and set(_aes(edge)) == {"DX_PHONG2"}
    assert _log_level(edge) == "INFO"

    # 4. a bad setting never leaves the hub
    reply = requests.put(
        f"http://127.0.0.1:{hub.http_port}/api/hub/config-bundle",
        json={"settings": {"aes": [{**AE_1, "port": 70000}]}},
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )  # fmt: skip
    assert reply.status_code == 400 and "port" in reply.json()["error"]

    # 5. the next genuine bundle goes past the forgery; a rollback returns to the one before
    assert _issue(hub, tmp_path, {"aes": [AE_1, AE_2]}) == 4
    wait_for(lambda: _bundles(edge)["version"] == 4, 30, "bundle 4 at the edge")
    assert set(_aes(edge)) == {"CT_PHONG1", "DX_PHONG2"} and not _bundles(edge)["last_error"]
    reply = requests.post(
        f"http://127.0.0.1:{edge.http_port}/api/downlink/config-bundle/rollback", timeout=10
    )
    assert reply.status_code == 200 and reply.json() == {"version": 2}, reply.text
    assert set(_aes(edge)) == {"DX_PHONG2"}
    state = _bundles(edge)
    wait_for(lambda: _bundles(edge)["last_check"] > state["last_check"] + 0.5, 30, "two looks")
    assert _bundles(edge)["version"] == 2  # bundle 4 is not taken again

    # 6. the hub's master files as they are now ("catalogue": "current") replace the edge's
    for entry in (
        ("service", "code=SA01", "name=Siêu âm bụng tổng quát", "modality=US"),
        ("device", "ae_title=US1", "modality=US", "room=P1", "site=clinic1"),
    ):
        added = mekong_cli("ris", "add", *entry, "--data", str(hub.data_dir))
        assert added.returncode == 0, added.stderr
    reply = requests.put(
        f"http://127.0.0.1:{hub.http_port}/api/hub/config-bundle",
        json={"settings": {"catalogue": "current"}},
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    version = reply.json()["version"]
    wait_for(lambda: _bundles(edge)["version"] == version, 30, "the catalogue bundle")
    services = mekong_cli("ris", "list", "service", "--data", str(edge.data_dir)).stdout
    assert "SA01" in services and "Siêu âm bụng tổng quát" in services
    assert "US1" in mekong_cli("ris", "list", "device", "--data", str(edge.data_dir)).stdout

    # 7. after a restart the bundle in force still holds (log level lives in memory)
    edge.stop()
    edge.start()
    assert _bundles(edge)["version"] == version and _log_level(edge) == "INFO"


def test_an_edge_without_the_permission_gets_no_bundle(node_factory, tmp_path: Path) -> None:
    hub = node_factory("hub", mode="hub", trusted_loopback=False).start()
    _issue(hub, tmp_path, {"log_level": "INFO"})
    url = f"http://127.0.0.1:{hub.http_port}/api/hub/config-bundle"
    assert requests.get(url, timeout=10).status_code == 401
    technician = add_token(hub, "not_an_edge", "technician")
    reply = requests.get(url, headers={"Authorization": f"Bearer {technician}"}, timeout=10)
    assert reply.status_code == 403
