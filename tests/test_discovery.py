"""DNS-SD discovery (issue 6 item 5): an edge advertises its DICOM service (AE title in TXT) and
its console; a hub lists it under GET /api/hub/discovered and drops it when the edge says
goodbye. Two processes; multicast DNS on the loopback interface they both listen on."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from mekong.shared import discovery
from mekong.shared.config import ConfigError, load_config
from tests.authn import add_token
from tests.test_uplink import wait_for


def _discovered(hub, token: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    reply = requests.get(f"{hub.url}/api/hub/discovered",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return {node["ae_title"]: node for node in reply.json()["nodes"]}


def test_an_edge_on_the_lan_is_heard_by_the_hub(node_factory, tmp_path: Path) -> None:
    on = tmp_path / "on.toml"
    on.write_text('[discovery]\nenabled = "on"\n[dicom]\nae_title = "PK_THU_DUC"\n')
    hub = node_factory("hub", mode="hub", trusted_loopback=False,
                       extra_args=["--config", str(on)]).start()  # fmt: skip
    token = add_token(hub, "it_admin", "admin")
    edge = node_factory("edge", extra_args=["--config", str(on)]).start()
    advertised = edge.health()["discovery"]["advertised"]
    assert [name.split(" on ")[0] for name in advertised] == ["PK_THU_DUC", "Mekong PK_THU_DUC"]

    wait_for(lambda: "PK_THU_DUC" in _discovered(hub, token), 30, "the edge heard by the hub")
    found = _discovered(hub, token)["PK_THU_DUC"]
    assert found["mekong"] and found["mode"] == "edge" and found["port"] == edge.dicom_port
    assert found["http_port"] == str(edge.http_port) and "127.0.0.1" in found["addresses"]

    headers = {"Authorization": f"Bearer {token}", "Cookie": "lang=vi"}
    page = requests.get(f"{hub.url}/admin/sites", headers=headers, timeout=10)
    assert 'data-discovered="PK_THU_DUC"' in page.text and "Trạm Mekong" in page.text

    edge.stop()  # goodbye packets: the hub forgets it
    wait_for(lambda: "PK_THU_DUC" not in _discovered(hub, token), 30, "the edge gone")


def test_discovery_is_off_on_loopback_unless_asked() -> None:
    assert not discovery.enabled(load_config(None, {"bind": "127.0.0.1"}))
    assert discovery.enabled(load_config(None, {"bind": "0.0.0.0"}))
    assert discovery.enabled(load_config(None, {"bind": "127.0.0.1", "discovery.enabled": "on"}))
    assert not discovery.enabled(
        load_config(None, {"bind": "10.0.0.5", "discovery.enabled": "off"})
    )
    with pytest.raises(ConfigError, match="discovery.enabled"):
        load_config(None, {"discovery.enabled": "yes"})
