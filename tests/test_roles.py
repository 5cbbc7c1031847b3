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

from mekong.central import route_modules as hub_route_modules
from mekong.edge import route_modules
from mekong.shared.auth.roles import ASSIGNABLE_ROLES, PUBLIC, Permission, allowed, permission_of
from mekong.shared.http.server import ROUTE_MODULES
from tests.authn import add_token
from tests.nodeproc import NodeProcess, free_port

SAMPLE = {  # a harmless value for each path parameter
    "study": "1.2.3", "series": "1.2.3.4", "instance": "1.2.3.4.5", "frames": "1",
    "tag": "7FE00010", "username": "nobody", "name": "nobody", "path": "x",
    "accession": "ACC-NONE", "patient_id": "NOBODY", "id": "1", "title": "NOBODY",
    "device": "nobody", "sop_uid": "1.2.3.4.5", "digest": "0000",
}  # fmt: skip


def routes(modules: list | None = None) -> list[tuple[str, str, object]]:
    found = []
    for module in modules or (*ROUTE_MODULES, *route_modules()):  # the edge's routes too
        for route in module.routes:
            found.append((route.method, route.path, route.handler))  # type: ignore[attr-defined]
    return found


def test_every_route_declares_a_permission() -> None:
    every = routes() + routes(hub_route_modules())
    missing = [f"{m} {p}" for m, p, h in every if permission_of(h) is None]  # type: ignore[arg-type]
    assert not missing, f"routes without @requires/@public: {missing}"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, dict]]:
    node = NodeProcess(tmp_path_factory.mktemp("roles") / "data", trusted_loopback=False).start()
    yield node, _tokens(node)
    node.stop()


def _tokens(node: NodeProcess) -> dict:
    # "site" is not assignable: a site is known by its client certificate (test_hub_enroll)
    return {role: add_token(node, f"matrix_{role.value}", role.value) for role in ASSIGNABLE_ROLES}


@pytest.fixture(scope="module")
def hub_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, dict]]:
    folder = tmp_path_factory.mktemp("roles_hub")
    config = folder / "hub.toml"
    config.write_text(f"[hub]\nmtls_port = {free_port()}\n")
    node = NodeProcess(folder / "data", mode="hub", trusted_loopback=False,
                       extra_args=["--config", str(config)]).start()  # fmt: skip
    yield node, _tokens(node)
    node.stop()


def _url(node: NodeProcess, path: str) -> str:
    filled = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: SAMPLE[m.group(1)], path)
    return f"http://127.0.0.1:{node.http_port}{filled}"


@pytest.mark.parametrize("method,path,handler", routes(), ids=lambda v: str(v)[:60])
def test_role_matrix(tokens, method: str, path: str, handler) -> None:  # type: ignore[no-untyped-def]
    _check_matrix(tokens, method, path, handler)


@pytest.mark.parametrize(
    "method,path,handler", routes(hub_route_modules()), ids=lambda v: str(v)[:60]
)
def test_hub_role_matrix(hub_tokens, method: str, path: str, handler) -> None:  # type: ignore[no-untyped-def]
    _check_matrix(hub_tokens, method, path, handler)


def _check_matrix(tokens, method: str, path: str, handler) -> None:  # type: ignore[no-untyped-def]
    node, by_role = tokens
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
