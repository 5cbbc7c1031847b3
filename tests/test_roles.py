"""The role matrix (SEC-6): every route × every role, generated from the route table.

A route that declares no permission fails here before any request is made; every other route
is called by every role, and by nobody, and must answer 401/403 exactly when the permission
table says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from mekong import central, edge
from mekong.shared.auth.roles import PUBLIC, Permission, Role, allowed, permission_of
from mekong.shared.http.server import ROUTE_MODULES
from tests.authn import add_token
from tests.nodeproc import NodeProcess

SAMPLE = {  # a harmless value for each path parameter
    "study": "1.2.3", "series": "1.2.3.4", "instance": "1.2.3.4.5", "frames": "1",
    "tag": "7FE00010", "username": "nobody", "name": "nobody", "path": "x",
    "accession": "ACC-NONE", "patient_id": "NOBODY", "id": "1", "title": "NOBODY",
    "device": "nobody", "sop_uid": "1.2.3.4.5",
}  # fmt: skip


def routes() -> list[tuple[str, str, str, object]]:
    """(mode of the node that serves it, method, path, handler) for every route."""
    found = []
    for mode, modules in (("edge", (*ROUTE_MODULES, *edge.route_modules())),
                          ("hub", central.route_modules())):  # fmt: skip
        for module in modules:
            for route in module.routes:
                found.append((mode, route.method, route.path, route.handler))  # type: ignore[attr-defined]
    return found


def test_every_route_declares_a_permission() -> None:
    missing = [f"{m} {p}" for _, m, p, h in routes() if permission_of(h) is None]  # type: ignore[arg-type]
    assert not missing, f"routes without @requires/@public: {missing}"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An edge and, when first needed, a hub, each with a token per role."""
    started: dict[str, tuple[NodeProcess, dict]] = {}

    def node_for(mode: str) -> tuple[NodeProcess, dict]:
        if mode not in started:
            folder = tmp_path_factory.mktemp(f"roles-{mode}")
            node = NodeProcess(folder / "data", mode=mode, trusted_loopback=False).start()
            tokens = {role: add_token(node, f"matrix_{role.value}", role.value) for role in Role}
            started[mode] = (node, tokens)
        return started[mode]

    yield node_for  # type: ignore[misc]
    for node, _ in started.values():
        node.stop()


def _url(node: NodeProcess, path: str) -> str:
    filled = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: SAMPLE[m.group(1)], path)
    return f"http://127.0.0.1:{node.http_port}{filled}"


@pytest.mark.parametrize("mode,method,path,handler", routes(), ids=lambda v: str(v)[:60])
def test_role_matrix(nodes, mode: str, method: str, path: str, handler) -> None:  # type: ignore[no-untyped-def]
    node, by_role = nodes(mode)
    permission = permission_of(handler)
    anonymous = requests.request(method, _url(node, path), timeout=30)
    if permission == PUBLIC:
        assert anonymous.status_code not in (401, 403), anonymous.text
        return
    assert anonymous.status_code == 401, f"{method} {path} open to anonymous callers"
    for role, token in by_role.items():
        headers = {"Authorization": f"Bearer {token}"}
        reply = requests.request(method, _url(node, path), headers=headers, timeout=30)
        if allowed(role.value, Permission(permission)):
            assert reply.status_code not in (401, 403), f"{role} refused {method} {path}"
        else:
            assert reply.status_code == 403, f"{role} allowed {method} {path}"
            assert "may not" in reply.json()["error"]
