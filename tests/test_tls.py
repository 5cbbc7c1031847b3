"""TLS on HTTP and DICOM with a certificate from `mekong tls self-signed` (SEC: use SSL)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import requests

from tests.authn import add_user, cli
from tests.conftest import dcmtk, dimse_statuses
from tests.nodeproc import AE_TITLE, NodeProcess, free_port
from tools import gendata
from tools.hl7send import END, START, ack_fields, frame, orm


def test_https_and_dicom_tls_with_a_self_signed_pair(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = cli("tls", "self-signed", "--data", str(data))
    assert made.returncode == 0, made.stderr
    cert, key = data / "tls" / "cert.pem", data / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    tls_port, hl7_tls_port = free_port(), free_port()
    config = tmp_path / "node.toml"
    config.write_text(f'[tls]\ncert = "{cert}"\nkey = "{key}"\n[dicom]\ntls_port = {tls_port}\n'
                      f"[hl7]\ntls_port = {hl7_tls_port}\n")  # fmt: skip
    node = NodeProcess(data, extra_args=["--config", str(config)], trusted_loopback=False,
                       ca_file=cert).start()  # fmt: skip
    try:
        assert node.health()["status"] == "ok"  # over HTTPS, the certificate verified
        password = add_user(node, "tls_user", "technician")
        reply = requests.post(f"{node.url}/api/auth/login", verify=str(cert),
                              json={"username": "tls_user", "password": password})  # fmt: skip
        assert reply.ok and "Secure" in reply.headers["Set-Cookie"]

        files = gendata.ct_series(tmp_path / "ct", count=2)
        tls_args = ["+tls", str(key), str(cert), "+cf", str(cert)]
        echo = dcmtk("echoscu", *tls_args, "-aec", AE_TITLE, "127.0.0.1", str(tls_port))
        assert echo.returncode == 0, echo.stderr
        store = dcmtk("storescu", "-d", *tls_args, "-aec", AE_TITLE, "127.0.0.1",
                      str(tls_port), *map(str, files))  # fmt: skip
        assert dimse_statuses(store.stderr) == [0, 0]
        assert node.health()["index"]["instances"] == 2
        plain = dcmtk("echoscu", "-aec", AE_TITLE, "127.0.0.1", str(tls_port), timeout=30)
        assert plain.returncode != 0  # the TLS port does not speak plain DICOM

        # MLLP over TLS: an order from the HIS, the certificate verified, the ACK back
        ack = _mllp_over_tls(hl7_tls_port, cert, orm("TLS-1", "TLS0001").encode())
        assert ack_fields(ack)["code"] == "AA", ack
        clear = _clear_text_answer(hl7_tls_port, orm("TLS-2", "TLS0002").encode())
        assert b"MSA" not in clear  # nothing is accepted in clear text on that port
    finally:
        node.stop()


def _clear_text_answer(port: int, message: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(frame(message))
        try:
            return raw.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return b""


def _mllp_over_tls(port: int, cafile: Path, message: bytes) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False  # the self-signed pair names the machine, not 127.0.0.1
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:  # fmt: skip
        tls.sendall(frame(message))
        data = b""
        while END not in data:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    return data[data.find(START) + 1 : data.find(END)]


def test_half_a_tls_pair_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[tls]\ncert = "/nonexistent.pem"\n')
    result = cli("serve", "--data", str(tmp_path / "data"), "--config", str(config))
    assert result.returncode == 2 and "tls.cert and tls.key go together" in result.stderr
