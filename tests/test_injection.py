"""SQL injection and path traversal (issue 7, OWASP): every path parameter of every route, and
the text query parameters of every GET route, get injection and traversal attempts. Each
answer is a clear 4xx or a harmless 2xx/3xx (never a 500, never a file outside the node or
an SQL error), and afterwards the node's data is exactly as before: the sentinel study,
order, AE, user and token are untouched. Generated from the route table like the role matrix,
so a new route is attacked too."""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pydicom
import pytest

from mekong.shared.auth.roles import (
    ASSIGNABLE_ROLES,
    PUBLIC,
    Permission,
    Role,
    allowed,
    permission_of,
)
from tests.authn import STRONG, add_token, browser, db, signed_in
from tests.conftest import storescu
from tests.nodeproc import NodeProcess
from tests.test_roles import SAMPLE, routes
from tools import gendata
from tools.hl7send import MllpClient, ack_fields, orm

SQL = ["' OR '1'='1", "1' OR 1=1--", 'x"; DROP TABLE patient;--',
       "*' UNION SELECT name FROM sqlite_master--"]  # fmt: skip
TRAVERSAL = ["../../../../etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
             "....//....//....//etc/passwd", "%2e%2e/%2e%2e/index.db", "/etc/passwd"]  # fmt: skip
QUERY_NAMES = [
    "name", "patient_id", "accession", "modality", "date", "date_from", "date_to", "room",
    "status", "patient_class", "text", "control_id", "type", "outcome", "since", "until",
    "user", "action", "next", "set", "page", "limit", "offset", "PatientName", "PatientID",
    "AccessionNumber", "StudyDate", "StudyInstanceUID", "ModalitiesInStudy", "includefield",
]  # fmt: skip
LEAKS = re.compile(r"root:x:0:0|SQLite format 3|sqlite3\.|OperationalError|Traceback|"
                   r"syntax error|no such (table|column)", re.I)  # fmt: skip
BODIES = {  # enough of a body to reach the lookup by the path parameter
    "cancel": {"reason": "kiểm tra"}, "status": {"status": "ARRIVED"}, "room": {"room": "P1"},
    "link": {"accession": "INJ1"}, "echo": {},
}  # fmt: skip
STATE_ROUTES = [(m, p, h) for m, p, h in routes() if m in ("POST", "PUT", "DELETE") and "{" in p]
PARAMETER = re.compile(r"\{(\w+)(:[^}]*)?\}")
GET_ROUTES = [(m, p, h) for m, p, h in routes() if m == "GET" and "/events" not in p]


@dataclass
class Target:
    node: NodeProcess
    tokens: dict[Role, str]
    study_uid: str
    counts: dict[str, int]


def _counts(node: NodeProcess) -> dict[str, int]:
    tables = ("patient", "study", "instance", "ris_order", "app_user", "remote_ae")
    with db(node) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("injection")
    node = NodeProcess(root / "data", trusted_loopback=False).start()
    try:
        yield _prepare(node, root)
    finally:  # also when the preparation fails: no node left running
        node.stop()


def _prepare(node: NodeProcess, root: Path) -> Target:
    """The sentinels: a stored study, an order, tokens, an AE, a user; the row counts."""
    files = gendata.vietnamese_patient(root / "vn")
    assert storescu(node, *files).returncode == 0
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        assert ack_fields(client.send(orm("INJ-1", "INJ1").encode()))["code"] == "AA"
    tokens = {role: add_token(node, f"inj_{role.value}", role.value) for role in ASSIGNABLE_ROLES}
    ae = {"host": "127.0.0.1", "port": 11112}
    reply = _call(node, "PUT", "/api/admin/aes/SENTINEL", tokens[Role.ADMIN], ae)
    assert reply[0] == 200, reply
    signed_in(node, "sentinel_user", "technician")
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    return Target(node, tokens, study_uid, _counts(node))


def _call(node: NodeProcess, method: str, path: str, token: str, body: dict | None = None
          ) -> tuple[int, str]:  # fmt: skip
    """The exact path on the wire (no client-side normalisation of ``..``)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read(200_000).decode("utf-8", "replace")
    finally:
        conn.close()


def _role_for(handler: object) -> Role:
    """A role that passes the route's permission check, so the parameter reaches the handler
    (a route only an enrolled site may call is attacked in the site tests' setting)."""
    permission = permission_of(handler)  # type: ignore[arg-type]
    if permission == PUBLIC:
        return Role.ADMIN
    fitting = [r for r in ASSIGNABLE_ROLES if allowed(r.value, Permission(permission))]
    if not fitting:
        pytest.skip(f"no user or token role may call a {permission} route")
    return fitting[0]


def _fill(path: str, payload: str, raw: bool) -> list[str]:
    """The route's path with ``payload`` in each parameter in turn (the others harmless);
    ``raw``: ``/``, ``.`` and ``%`` left as they are, so they reach the router unencoded."""
    names = [m.group(1) for m in PARAMETER.finditer(path)]
    value = quote(payload, safe="/.%" if raw else "")
    return [PARAMETER.sub(lambda m, c=chosen: value if m.group(1) == c  # type: ignore[misc]
                          else SAMPLE.get(m.group(1), "x"), path) for chosen in names]  # fmt: skip


def _check(status: int, text: str, what: str) -> None:
    assert status < 500, f"{what}: HTTP {status} {text[:300]}"
    assert not LEAKS.search(text), f"{what}: leaks {LEAKS.search(text).group(0)!r}"  # type: ignore[union-attr]


@pytest.mark.parametrize("method,path,handler", [r for r in routes() if "{" in r[1]],
                         ids=lambda v: str(v)[:60])  # fmt: skip
def test_path_parameters(target: Target, method: str, path: str, handler: object) -> None:
    token = target.tokens[_role_for(handler)]
    body = BODIES.get(path.rsplit("/", 1)[-1], {}) if method != "GET" else None
    for payload in SQL + TRAVERSAL:
        for raw in (False, True):
            for url in _fill(path, payload, raw):
                status, text = _call(target.node, method, url, token, body)
                _check(status, text, f"{method} {url}")


@pytest.mark.parametrize("method,path,handler", GET_ROUTES, ids=lambda v: str(v)[:60])
def test_query_parameters(target: Target, method: str, path: str, handler: object) -> None:
    token = target.tokens[_role_for(handler)]
    base = _fill(path, SAMPLE.get("study", "x"), False)[0] if "{" in path else path
    for payload in SQL + TRAVERSAL:
        query = urlencode({name: payload for name in QUERY_NAMES})
        status, text = _call(target.node, "GET", f"{base}?{query}", token)
        _check(status, text, f"GET {base}?…={payload}")


def test_injected_searches_find_nothing_and_the_data_is_intact(target: Target) -> None:
    """Runs after the attacks (file order): nothing was changed, nothing matches an injection,
    the sentinel user, token and study still work."""
    node, admin = target.node, target.tokens[Role.ADMIN]
    assert _counts(node) == target.counts
    user = signed_in(node, "after_attack", "technician")
    for payload in SQL:
        page = user.get("/studies", params={"name": payload}).text
        assert target.study_uid not in page, payload
        page = user.get("/studies", params={"accession": payload}).text
        assert target.study_uid not in page, payload
    assert target.study_uid in user.get("/studies").text
    status, text = _call(node, "GET", f"/dicom-web/studies?StudyInstanceUID={target.study_uid}",
                         admin)  # fmt: skip
    assert status == 200 and target.study_uid in text
    status, text = _call(node, "GET", "/api/orders/INJ1", admin)
    assert status == 200 and json.loads(text)["status"] == "SCHEDULED"
    status, text = _call(node, "GET", "/api/admin/aes", admin)
    assert status == 200 and "SENTINEL" in text
    session = browser(node)
    assert session.login("sentinel_user", STRONG).ok  # no password was reset
    with sqlite3.connect(Path(node.data_dir) / "index.db") as conn:
        assert conn.execute("SELECT count(*) FROM app_session").fetchone()[0] > 0
