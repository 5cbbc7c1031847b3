"""Hub mode, enrollment and mutual TLS (issue 6): a hub and an edge as two real processes on
loopback. The edge enrolls once with the token of ``mekong site add``, DCMTK storescu stores
to it, the instances reach the hub over mutual TLS with equal digests; the token cannot be
used twice; no certificate, a certificate of another CA, or a revoked site's certificate is
refused (curl with explicit certificates); the hub's sites API and console page show the
edge's health report."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from mekong.central.ca import HubCA, key_pem
from tests.authn import add_token, cli
from tests.conftest import ct_instances, index_digests, storescu
from tests.edge_support import call, multipart, new_order
from tests.nodeproc import NodeProcess
from tests.test_uplink import wait_for
from tools import gendata


def _csr() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")]))
        .sign(key, hashes.SHA256())
    )
    return key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def curl(url: str, *args: str) -> tuple[int, str]:
    """(curl exit status, HTTP status or ''): 0 and a status when TLS let the request through."""
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", *args, url],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return result.returncode, result.stdout.strip() if result.returncode == 0 else ""


@pytest.fixture
def hub_and_edge(node_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    return start_hub_and_edge(node_factory, tmp_path)


def start_hub_and_edge(
    node_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    edge_toml_extra: str = "",
    hub_toml_extra: str = "",
):
    """A hub, site clinic1 added, an edge enrolled with its token (two processes)."""
    hub_toml = tmp_path / "hub.toml"
    hub_toml.write_text(hub_toml_extra)
    hub = node_factory("hub", mode="hub", trusted_loopback=False,
                       extra_args=["--config", str(hub_toml)]).start()  # fmt: skip
    added = cli("site", "add", "clinic1", "--data", str(hub.data_dir))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    edge_toml = tmp_path / "edge.toml"
    edge_toml.write_text(
        "[uplink]\nbackoff_base = 0.2\nbackoff_max = 1.0\npoll_interval = 0.2\nmax_attempts = 2\n"
        "bundle_interval = 0.5\norders_interval = 0.5\n"
        "[hub]\nreport_interval = 0.5\n" + edge_toml_extra
    )
    edge = node_factory("edge", extra_args=[
        "--config", str(edge_toml), "--hub-url", hub.url, "--enroll-token", token,
    ]).start()  # fmt: skip
    admin = add_token(hub, "hub_admin", "admin")
    return hub, edge, token, hub.mtls_port, admin


def _sites(hub: NodeProcess, admin: str) -> dict[str, dict]:
    reply = requests.get(f"{hub.url}/api/hub/sites", headers={"Authorization": f"Bearer {admin}"},
                         timeout=10)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return {site["name"]: site for site in reply.json()["sites"]}


def test_enrolled_edge_replicates_over_mutual_tls_and_revocation_stops_it(
    hub_and_edge, tmp_path: Path
) -> None:
    hub, edge, token, mtls_port, admin = hub_and_edge
    folder = edge.data_dir / "hub"
    assert stat.S_IMODE(os.stat(folder / "key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(hub.data_dir / "hub" / "ca.key").st_mode) == 0o600
    site = json.loads((folder / "site.json").read_text())
    assert site["site"] == "clinic1" and site["mtls_url"] == f"https://127.0.0.1:{mtls_port}"
    assert edge.health()["hub"]["enrolled"] is True

    # instances stored at the edge arrive at the hub over mutual TLS, digests equal
    files = ct_instances(tmp_path / "ct", 1, 5, size=64)
    assert storescu(edge, *files).returncode == 0
    wait_for(lambda: index_digests(hub.data_dir) == index_digests(edge.data_dir) != {},
             what="the series at the hub")  # fmt: skip
    queue = requests.get(f"{edge.url}/api/uplink/queue?state=sent", timeout=10).json()
    assert len(queue["items"]) == 5 and all(row["verified"] for row in queue["items"])

    # the token was used once: a second enrollment with it is refused
    _, csr = _csr()
    again = requests.post(f"{hub.url}/api/hub/enroll",
                          json={"token": token, "csr": csr.decode()}, timeout=10)  # fmt: skip
    assert again.status_code == 403, again.text

    # the health report reached the hub: REST and console page
    wait_for(lambda: _sites(hub, admin)["clinic1"]["report_at"] is not None, what="a report")
    wait_for(lambda: _sites(hub, admin)["clinic1"]["queue_depth"] == 0, what="queue 0 reported")
    shown = _sites(hub, admin)["clinic1"]
    assert shown["state"] == "enrolled" and shown["last_seen_at"] and shown["studies"] == 1
    assert shown["version"] == edge.health()["version"] and shown["disk_free_bytes"] > 0
    bearer = {"Authorization": f"Bearer {admin}", "Cookie": "lang=en"}
    page = requests.get(f"{hub.url}/admin/sites", headers=bearer, timeout=10)
    assert page.status_code == 200 and 'data-site="clinic1"' in page.text
    assert f'data-version="{shown["version"]}"' in page.text and 'data-queue="0"' in page.text
    detail = requests.get(f"{hub.url}/admin/sites/clinic1", headers=bearer, timeout=10)
    study_uid = _study(files[0])
    assert detail.status_code == 200 and f'data-study="{study_uid}"' in detail.text

    # the edge's audit trail is kept at the hub too (its C-STOREs among it), once each
    auditor = {"Authorization": f"Bearer {add_token(hub, 'kiem_toan', 'auditor')}"}

    def site_events() -> list[dict]:
        reply = requests.get(f"{hub.url}/api/audit", headers=auditor, timeout=10,
                             params={"source": "site:clinic1", "limit": "1000"})  # fmt: skip
        return reply.json()

    wait_for(lambda: any(e["action"] == "images.store" for e in site_events()), what="audit")
    ids = [json.loads(e["detail"])["site_event_id"] for e in site_events()]
    assert len(ids) == len(set(ids)) and edge.health()["audit_upstream"]["sent"] >= len(ids)

    # a configuration bundle issued on the hub reaches the enrolled edge over mutual TLS; the
    # hub's bundle key was fetched once over that pinned channel and kept
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps(
            {
                "settings": {
                    "aes": [
                        {
                            "title": "US_SIEU_AM",
                            "host": "10.1.1.9",
                            "port": 104,
                            "description": "Siêu âm 2",
                        }
                    ]
                }
            }
        )
    )
    issued = cli("bundle", "issue", str(bundle), "--data", str(hub.data_dir))
    assert issued.returncode == 0 and issued.stdout.split()[-1] == "1", issued.stderr
    wait_for(lambda: edge.health()["config_bundles"]["version"] == 1, what="bundle 1 applied")
    aes = requests.get(f"{edge.url}/api/admin/aes", timeout=10).json()
    assert [(ae["title"], ae["description"]) for ae in aes] == [("US_SIEU_AM", "Siêu âm 2")]
    hub_key = cli("bundle", "key", "--data", str(hub.data_dir)).stdout.strip()
    assert (folder / "bundle-key.pub").read_text().strip() == hub_key

    mtls = f"https://127.0.0.1:{mtls_port}"
    ca = str(hub.data_dir / "hub" / "ca.pem")
    edge_cert = ["--cacert", ca, "--cert", str(folder / "cert.pem"),
                 "--key", str(folder / "key.pem")]  # fmt: skip
    stow = ["-X", "POST", "-H", 'Content-Type: multipart/related; type="application/dicom"']
    # the edge's own certificate may store and report, not read
    assert curl(f"{mtls}/dicom-web/studies", *edge_cert)[1] == "403"
    assert curl(f"{mtls}/api/hub/sites", *edge_cert)[1] == "403"

    # no client certificate, or one of another CA: the handshake fails, nothing is served
    other = HubCA(tmp_path / "other-ca")
    key, csr = _csr()
    foreign = other.sign_client(csr, "clinic1", 30, x509.random_serial_number())
    (tmp_path / "foreign.pem").write_bytes(foreign.pem)
    (tmp_path / "foreign.key").write_bytes(key)
    foreign_cert = ["--cacert", ca, "--cert", str(tmp_path / "foreign.pem"),
                    "--key", str(tmp_path / "foreign.key")]  # fmt: skip
    for credentials in (["--cacert", ca], foreign_cert):
        for path, extra in (("/dicom-web/studies", stow), ("/dicom-web/studies", []),
                            (f"/dicom-web/studies/{study_uid}", [])):  # fmt: skip
            code, status = curl(f"{mtls}{path}", *credentials, *extra)
            assert code != 0 and status == "", (credentials, path, code)
    # nor on the ordinary listener without credentials
    for method, path in (("POST", "/dicom-web/studies"), ("GET", "/dicom-web/studies"),
                         ("GET", f"/dicom-web/studies/{study_uid}")):  # fmt: skip
        assert requests.request(method, f"{hub.url}{path}", timeout=10).status_code == 401

    # revoked: the edge's certificate is refused from the next request on; uploads queue up
    revoked = cli("site", "revoke", "clinic1", "--data", str(hub.data_dir))
    assert revoked.returncode == 0, revoked.stderr
    assert curl(f"{mtls}/api/hub/report", *edge_cert, "-X", "POST", "--json", "{}")[1] == "403"
    held = len(index_digests(hub.data_dir))
    more = gendata.ct_series(tmp_path / "more", 3, 48, 48, patient_id="HUB02", seed=11)
    assert storescu(edge, *more).returncode == 0
    wait_for(lambda: "403" in edge.health()["uplink"]["last_error"], what="the refusal")
    wait_for(lambda: edge.health()["uplink"]["counts"]["queued"] >= 1, what="rows queued")
    health = edge.health()["uplink"]
    assert health["counts"]["dead"] == 0, "a revoked site's uploads must wait, not be dropped"
    assert len(index_digests(hub.data_dir)) == held
    assert _sites(hub, admin)["clinic1"]["state"] == "revoked"


def test_site_add_refuses_a_taken_name_and_a_bad_token_is_refused(hub_and_edge) -> None:
    hub, _edge, token, _port, _admin = hub_and_edge
    taken = cli("site", "add", "clinic1", "--data", str(hub.data_dir))
    assert taken.returncode == 1 and "already exists" in taken.stderr
    _, csr = _csr()
    secret, _, fingerprint = token.partition(".")
    forged = f"{secret[:-2]}xy.{fingerprint}"
    reply = requests.post(f"{hub.url}/api/hub/enroll", json={"token": forged, "csr": csr.decode()},
                          timeout=10)  # fmt: skip
    assert reply.status_code == 403
    bad = requests.post(f"{hub.url}/api/hub/enroll", json={"token": token, "csr": "nonsense"},
                        timeout=10)  # fmt: skip
    assert bad.status_code == 400


def _study(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def test_an_imported_original_follows_its_instance_to_the_hub(hub_and_edge, tmp_path: Path) -> None:
    """A JPEG uploaded at the edge becomes DICOM; both reach the hub, the original byte for
    byte (PACS-5.4 at the hub), once."""
    hub, edge, _token, _port, admin = hub_and_edge
    new_order(edge, "ORIG1")
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(jpeg, "JPEG")
    body, headers = multipart({"accession": "ORIG1", "device": "ecg"}, "điện tim.jpg",
                              jpeg.getvalue())  # fmt: skip
    status, result = call(edge, "POST", "/api/import", data=body, headers=headers)
    assert status == 201, result
    [sop_uid] = result["sop_uids"]
    bearer = {"Authorization": f"Bearer {admin}"}
    url = f"{hub.url}/api/import/originals/{sop_uid}"
    wait_for(lambda: requests.get(url, headers=bearer, timeout=10).ok, what="the original")
    reply = requests.get(url, headers=bearer, timeout=10)
    assert reply.content == jpeg.getvalue() and reply.headers["Content-Type"] == "image/jpeg"
    assert "%C4%91i%E1%BB%87n%20tim.jpg" in reply.headers["Content-Disposition"]
    assert edge.health()["originals_upstream"]["sent"] == 1
