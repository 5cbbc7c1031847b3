"""Audit forwarding to syslog over TLS (GEN-3, PACS-16; RFC 5424 over RFC 5425) against a real
rsyslog (Debian ``rsyslog`` + ``rsyslog-gnutls``: imtcp with the gtls driver) run in the
foreground, writing each received message as it came (``%rawmsg%``) to a file."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from mekong.shared.audit.syslog import BOM, format_event, frame, sd_escape
from mekong.shared.tls import self_signed
from tests.authn import browser, db
from tests.conftest import dcmtk
from tests.nodeproc import AE_TITLE, NodeProcess, free_port

_CONF = """\
global(workDirectory="{root}/work" defaultNetstreamDriverCAFile="{cert}"
       defaultNetstreamDriverCertFile="{cert}" defaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{out}" template="raw")
"""


@dataclass
class Rsyslog:
    """rsyslogd -n (foreground) with a TLS listener on a free loopback port."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def configure(self) -> Rsyslog:
        self.cert, key = self_signed(self.root / "tls", ["127.0.0.1", "localhost"])
        (self.root / "work").mkdir(parents=True, exist_ok=True)
        conf = _CONF.format(root=self.root, cert=self.cert, key=key, port=self.port, out=self.out)
        (self.root / "rsyslog.conf").write_text(conf)
        return self

    @property
    def out(self) -> Path:
        return self.root / "received.log"

    def start(self) -> Rsyslog:
        log = open(self.root / "rsyslogd.log", "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(self.root / "rsyslog.conf"),
             "-i", str(self.root / "rsyslogd.pid")],
            stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "rsyslogd.log").read_text(errors="replace"))
            probe = subprocess.run(["ss", "-Hltn", f"sport = :{self.port}"],
                                   capture_output=True, text=True)  # fmt: skip
            if str(self.port) in probe.stdout:
                return self
            time.sleep(0.1)
        raise RuntimeError("rsyslogd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def messages(self) -> list[str]:
        if not self.out.exists():
            return []
        return [line for line in self.out.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Rsyslog]]:
    root = tmp_path_factory.mktemp("syslog")
    collector = Rsyslog(root / "rsyslog").configure().start()
    try:
        config = root / "mekong.toml"
        config.write_text(f'[audit]\nsyslog_url = "tls://127.0.0.1:{collector.port}"\n'
                          f'syslog_ca_file = "{collector.cert}"\n')  # fmt: skip
        node = NodeProcess(root / "data", trusted_loopback=False,
                           extra_args=["--config", str(config)])  # fmt: skip
        yield node.start(), collector
        node.stop()
    finally:
        collector.stop()


def _ids(lines: list[str]) -> list[int]:
    return [int(re.search(r' id="(\d+)"', line).group(1)) for line in lines]  # type: ignore[union-attr]


def _wait_for(collector: Rsyslog, *needles: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = collector.messages()
        if all(any(n in line for line in lines) for n in needles):
            return lines
        time.sleep(0.2)
    raise AssertionError(f"not received: {needles}; got {collector.messages()}")


def test_a_login_failure_and_a_c_find_reach_the_collector(forwarding) -> None:  # type: ignore[no-untyped-def]
    node, collector = forwarding
    assert browser(node).login("bác_sĩ_Nguyễn_Văn_An", "Sai-mật-khẩu-1").status_code == 401
    found = dcmtk("findscu", "-S", "-aet", "FINDER", "-aec", AE_TITLE, "127.0.0.1",
                  str(node.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                  "-k", "PatientID=BN_0042", "-k", "StudyInstanceUID")  # fmt: skip
    assert found.returncode == 0, found.stderr
    lines = _wait_for(collector, 'actor="bác_sĩ_Nguyễn_Văn_An"', 'patientId="BN_0042"')
    login = next(line for line in lines if 'actor="bác_sĩ_Nguyễn_Văn_An"' in line)
    assert login.startswith("<84>1 ")  # authpriv (10) × 8 + warning (4): a failure
    assert " mekong - login [mekong@32473 " in login and 'outcome="failure"' in login
    assert f"] {BOM}bác_sĩ_Nguyễn_Văn_An login " in login  # MSG: BOM, then UTF-8 text intact
    query = next(line for line in lines if 'patientId="BN_0042"' in line)
    assert query.startswith("<85>1 ") and " images.query [" in query
    assert 'actor="FINDER"' in query and 'actorKind="ae"' in query
    ids = _ids(lines)
    assert ids == sorted(ids) and len(ids) == len(set(ids))  # in id order, once each
    with db(node) as conn:
        digest = conn.execute("SELECT hash FROM audit_event WHERE id = ?", (ids[-1],)).fetchone()
    assert f'hash="{digest[0]}"' in lines[-1]


def test_events_queue_while_the_collector_is_down_and_arrive_once(forwarding) -> None:  # type: ignore[no-untyped-def]
    node, collector = forwarding
    collector.stop()
    names = [f"vắng_mặt_{n}" for n in range(3)]
    for name in names:
        assert browser(node).login(name, "Sai-mật-khẩu-1").status_code == 401
    health = _syslog_health(node, lambda h: h["waiting"] >= 3 and not h["connected"])
    assert health["last_error"]
    assert not any(n in line for n in names for line in collector.messages())
    collector.start()
    lines = _wait_for(collector, *(f'actor="{n}"' for n in names))
    ids = _ids(lines)
    assert len(ids) == len(set(ids)), "an event was sent twice"
    assert ids == list(range(ids[0], ids[0] + len(ids))), "an event is missing"
    assert _syslog_health(node, lambda h: h["waiting"] == 0 and h["connected"])


def _syslog_health(node: NodeProcess, ready, timeout: float = 30) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        section = requests.get(f"{node.url}/api/health", timeout=10).json()["audit_syslog"]
        if ready(section) or time.monotonic() > deadline:
            assert ready(section), section
            return section
        time.sleep(0.2)


def test_messages_follow_rfc_5424_and_5425() -> None:
    row = {"id": 7, "at": 1764140400.25, "actor": 'Trần "Bình"', "actor_kind": "user",
           "source": "10.0.0.9", "action": "study.view", "object": "1.2.3]x",
           "patient_id": "BN\\1", "outcome": "success", "detail": '{"via":"ldap"}',
           "hash": "ab" * 32}  # fmt: skip
    message = format_event(row, facility=20, hostname="pacs hub")  # local4
    assert message.startswith(b"<165>1 2025-11-26T07:00:00.250000Z pacshub mekong - study.view ")
    assert b'actor="Tr\xe1\xba\xa7n \\"B\xc3\xacnh\\""' in message
    assert b'object="1.2.3\\]x"' in message and b'patientId="BN\\\\1"' in message
    assert message.count(BOM.encode()) == 1 and BOM.encode() + "Trần".encode() in message
    framed = frame(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(message)  # octets, not characters
    assert sd_escape('a"b\\c]') == 'a\\"b\\\\c\\]'
