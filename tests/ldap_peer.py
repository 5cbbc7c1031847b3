"""A real OpenLDAP server (Debian ``slapd``) for the directory sign-in tests (PACS-4.6).

``Slapd`` writes a slapd.conf-style configuration (mdb backend, suffix dc=benhvien,dc=vn, a
root DN, ldap:// and ldaps:// on free loopback ports with a self-signed certificate) in a
temporary folder, runs slapd in the foreground (``-d 0``) and loads entries with ``ldapadd``.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mekong.shared.tls import self_signed
from tests.nodeproc import free_port

SUFFIX = "dc=benhvien,dc=vn"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{SUFFIX}", "root-Secret-9"
SERVICE_DN = f"cn=mekong,ou=services,{SUFFIX}"
PEOPLE, GROUPS = f"ou=people,{SUFFIX}", f"ou=groups,{SUFFIX}"

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {root}/db
index objectClass eq
index uid eq
index member eq
access to attrs=userPassword by anonymous auth by * none
access to dn.subtree="ou=groups,{suffix}" by users read by * none
access to * by dn.exact="{service_dn}" read by self read by * none
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Slapd:
    root: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    cert: Path = Path()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def configure(self) -> Slapd:
        self.cert, key = self_signed(self.root / "tls", ["127.0.0.1", "localhost"])
        key.chmod(0o600)
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        conf = _CONF.format(root=self.root, cert=self.cert, key=key, suffix=SUFFIX,
                            root_dn=ROOT_DN, root_password=ROOT_PASSWORD,
                            service_dn=SERVICE_DN)  # fmt: skip
        (self.root / "slapd.conf").write_text(conf)
        return self

    def start(self) -> Slapd:
        log = open(self.root / "slapd.log", "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen(
            ["slapd", "-d", "0", "-f", str(self.root / "slapd.conf"),
             "-h", f"{self.url}/ {self.tls_url}/"],
            stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "slapd.log").read_text(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def add(self, ldif: str) -> None:
        result = subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


def person(uid: str, name: str, password: str) -> str:
    """An inetOrgPerson; non-ASCII values go base64-encoded (``attr::``) as LDIF requires."""
    return (
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
        f"cn:: {b64(name)}\nsn:: {b64(name.split()[0])}\ndisplayName:: {b64(name)}\n"
        f"userPassword:: {b64(password)}\n"
    )


def group(cn: str, *members: str) -> str:
    lines = "".join(f"member: uid={m},{PEOPLE}\n" for m in members)
    return f"dn: cn={cn},{GROUPS}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}"


def base_entries(service_password: str) -> str:
    return "\n".join([
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Benh vien\n"
        "dc: benhvien\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: mekong\nuserPassword:: {b64(service_password)}\n",
    ])  # fmt: skip
