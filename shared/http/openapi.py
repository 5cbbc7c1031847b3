"""GET /api/openapi.json: the REST API description (OpenAPI 3.1), made from the route table.

Every ``/api/`` route appears with its method, the first line of its handler's docstring (or
its name) as summary, the permission it needs (``x-permission``) and the JSON error answers;
request bodies and answers known in detail are described in ``DETAILS`` (``responses_extra`` /
``parameters_extra`` add to the generic ones; RIS routes in ``openapi_ris``, the console's
administration routes in ``openapi_admin``). Nothing can drift:
a new route shows up by itself. DICOMweb (``/dicom-web/``) is PS3.18, described in
docs/conformance.md.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from mekong.shared import __version__
from mekong.shared.auth.roles import PUBLIC, permission_of, public
from mekong.shared.http import openapi_admin, openapi_recon, openapi_ris

routes = web.RouteTableDef()

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    "required": ["error", "status"],
}
_LEVEL = {
    "type": "object",
    "properties": {"level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]}},
    "required": ["level"],
}
_LOGIN = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string"},
        "totp": {"type": "string", "description": "6-digit code, admins with a second factor"},
        "challenge_id": {"type": "string"},
        "challenge_answer": {"type": "string"},
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "mode", "version", "components", "disk", "index"],
    "properties": {
        "status": {"enum": ["ok", "degraded"]},
        "mode": {"enum": ["edge", "hub"]},
        "version": {"type": "string"},
        "ae_title": {"type": "string"},
        "components": {"type": "object", "additionalProperties": {"type": "string"}},
        "disk": {"type": "object"},
        "index": {"type": "object", "additionalProperties": {"type": "integer"}},
        "server": {"type": "object"},
    },
}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _object(*required: str, **properties: dict) -> dict:
    return {"type": "object", "required": list(required), "properties": properties}


_STRING = {"type": "string"}
# Request bodies (and special answers) by "METHOD path"; everything else is generic.
DETAILS: dict[str, dict[str, Any]] = {
    "POST /api/auth/login": {"requestBody": _body(_LOGIN)},
    "POST /api/auth/password": {
        "requestBody": _body(
            _object(
                "current_password", "new_password", current_password=_STRING, new_password=_STRING
            )
        )  # fmt: skip
    },
    "POST /api/auth/totp": {
        "requestBody": _body(_object("secret", "code", secret=_STRING, code=_STRING))
    },  # fmt: skip
    "POST /api/users": {
        "requestBody": _body(
            _object("username", "role", username=_STRING, role=_STRING, display_name=_STRING)
        )  # fmt: skip
    },
    "PUT /api/users/{username}": {
        "requestBody": _body(
            _object(
                role=_STRING,
                display_name=_STRING,
                disabled={"type": "boolean"},
                expires_at={"type": ["number", "null"]},
            )
        )  # fmt: skip
    },
    "POST /api/tokens": {
        "requestBody": _body(_object("name", "role", name=_STRING, role=_STRING))
    },  # fmt: skip
    "PUT /api/admin/log-level": {"requestBody": _body(_LEVEL)},
}
DETAILS.update(openapi_ris.DETAILS)
DETAILS.update(openapi_admin.DETAILS)
DETAILS.update(openapi_recon.DETAILS)
SCHEMAS = {"Error": _ERROR, "LogLevel": _LEVEL, "Health": _HEALTH, "Login": _LOGIN,
           **openapi_ris.SCHEMAS, **openapi_admin.SCHEMAS, **openapi_recon.SCHEMAS}  # fmt: skip


def build_spec(app: web.Application) -> dict:
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if not path.startswith("/api/") or route.method == "HEAD":
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, path)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mekong RIS-PACS API", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "mekong_session",
                    "description": "from POST /api/auth/login; state changes also "
                    "need the X-CSRF-Token header",
                },
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token from `mekong token create`",
                },
            },  # fmt: skip
        },
    }


def _operation(route: web.AbstractRoute, path: str) -> dict:
    handler = route.handler
    permission = permission_of(handler)
    doc = (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0]
    operation: dict[str, Any] = {
        "summary": doc,
        "operationId": handler.__name__,
        "x-permission": permission,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)", path)
        ],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {}}},
            "400": _error("The request cannot be used; the message says why"),
        },
    }
    if permission != PUBLIC:
        operation["security"] = [{"session": []}, {"token": []}]
        operation["responses"]["401"] = _error("Not signed in")
        operation["responses"]["403"] = _error("The role may not do this")
    details = dict(DETAILS.get(f"{route.method} {path}", {}))
    operation["responses"].update(details.pop("responses_extra", {}))
    operation["parameters"] += details.pop("parameters_extra", [])
    operation.update(details)
    return operation


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_built: dict[int, dict] = {}  # per application: the route table is fixed once it runs


@routes.get("/api/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    spec = _built.get(id(request.app))
    if spec is None:
        spec = _built[id(request.app)] = build_spec(request.app)
    return web.json_response(spec)
