"""The node process: health, runtime log level, graceful SIGTERM, per-AE fuzzy C-FIND."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from tests.conftest import dcmtk
from tests.nodeproc import AE_TITLE, NodeProcess, peer_env
from tools import gendata

REPO = Path(__file__).resolve().parents[1]


def _request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_health_reports_mode_components_disk_and_counts(node: NodeProcess) -> None:
    health = node.health()
    assert health["mode"] == "edge"
    assert set(health["components"]) == {
        "audit",
        "http",
        "hl7",
        "hl7-out",
        "reconciler",
        "dimse",
        "dimse-qr",
        "dimse-workers",
        "capture",  # edge mode: video capture and watch folders
        "imports",
    }
    assert set(health["components"].values()) == {"running"}
    assert health["disk"]["free_bytes"] > 0
    assert health["index"] == {"patients": 0, "studies": 0, "series": 0, "instances": 0}
    assert health["server"]["memory_total_bytes"] > 0


def test_hub_mode_starts(node_factory) -> None:  # type: ignore[no-untyped-def]
    hub = node_factory("hub", mode="hub").start()
    assert hub.health()["mode"] == "hub"


def test_log_level_changes_at_runtime(node: NodeProcess) -> None:
    status, body = _request(f"{node.url}/api/admin/log-level", "PUT", {"level": "debug"})
    assert (status, body) == (200, {"level": "DEBUG"})
    assert _request(f"{node.url}/api/admin/log-level")[1] == {"level": "DEBUG"}
    status, body = _request(f"{node.url}/api/admin/log-level", "PUT", {"level": "LOUD"})
    assert status == 400 and "level" in body["error"]


def test_openapi_lists_the_routes(node: NodeProcess) -> None:
    status, spec = _request(f"{node.url}/api/openapi.json")
    assert status == 200
    assert {"/api/health", "/api/admin/log-level", "/api/auth/login"} <= set(spec["paths"])
    login = spec["paths"]["/api/auth/login"]["post"]
    assert login["x-permission"] == "public" and "requestBody" in login
    users = spec["paths"]["/api/users"]["get"]
    assert users["x-permission"] == "users.manage" and "403" in users["responses"]


def test_sigterm_finishes_inflight_associations(node: NodeProcess, tmp_path: Path) -> None:
    files = gendata.ct_series(tmp_path / "ct", count=40, rows=256, cols=256)
    sender = subprocess.Popen(
        ["/usr/bin/storescu", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port),
         *map(str, files)],
        env=peer_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_instances(node, 1)
    assert node.stop() == 0
    _, errors = sender.communicate(timeout=60)
    assert sender.returncode == 0, errors  # the association was allowed to finish
    restarted = NodeProcess(node.data_dir).start()
    try:
        assert restarted.health()["index"]["instances"] == 40
    finally:
        restarted.stop()


def test_fuzzy_find_for_an_ae_configured_so(node: NodeProcess, tmp_path: Path) -> None:
    [vietnamese] = gendata.vietnamese_patient(tmp_path / "vn")
    assert dcmtk("storescu", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port),
                 str(vietnamese)).returncode == 0  # fmt: skip
    query = ("-S", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port), "-k",
             "QueryRetrieveLevel=STUDY", "-k", "PatientName=nguyen hong")  # fmt: skip

    plain = dcmtk("findscu", "-aet", "OLDCT", *query)
    assert "Nguy" not in plain.stderr  # standard matching: no hit
    subprocess.run(
        [sys.executable, "-m", "mekong.shared.cli", "ae", "add", "OLDCT", "--host", "127.0.0.1",
         "--port", "104", "--fuzzy", "--data", str(node.data_dir)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    time.sleep(1.5)
    fuzzy = dcmtk("findscu", "-v", "-aet", "OLDCT", *query)
    assert "Nguyễn^Thị Hồng Nhung" in fuzzy.stderr


def test_every_code_folder_is_packaged() -> None:
    packages = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    roots = {"shared": "mekong.shared", "edge": "mekong.edge", "central": "mekong.central"}
    for folder, name in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            assert ".".join([name, *relative]) in packages, init


def _wait_for_instances(node: NodeProcess, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while node.health()["index"]["instances"] < count:
        assert time.monotonic() < deadline, "no instance arrived"
        time.sleep(0.05)


def test_garbage_on_the_dicom_port_is_dropped_and_the_node_goes_on(node: NodeProcess) -> None:
    import socket

    for junk in (
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x01\x00\xff\xff\xff\xff",
        b"\x04\x00\x00\x00\x00\x02ab",
    ):
        with socket.create_connection(("127.0.0.1", node.dicom_port), timeout=10) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(64)  # an A-ABORT or nothing; the connection closes either way
    assert dcmtk("echoscu", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port)).returncode == 0
