"""GET /api/openapi.json: the REST API description (OpenAPI 3.1), kept beside the routes."""

from __future__ import annotations

from aiohttp import web

from mekong.shared import __version__
from mekong.shared.auth.roles import public

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


def _json(schema: dict | str, description: str = "OK") -> dict:
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": ref}}}


SPEC: dict = {
    "openapi": "3.1.0",
    "info": {"title": "Mekong RIS-PACS API", "version": __version__},
    "paths": {
        "/api/health": {
            "get": {
                "summary": "Node status: mode, version, components, disk, counts (RIS-2.1/2.6)",
                "responses": {"200": _json("Health")},
            }
        },
        "/api/admin/log-level": {
            "get": {
                "summary": "Current log level (RIS-2.4); loopback callers only",
                "responses": {"200": _json("LogLevel"), "403": _json("Error", "Not local")},
            },
            "put": {
                "summary": "Change the log level of the running node (RIS-2.4); loopback only",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _LEVEL}},
                },
                "responses": {
                    "200": _json("LogLevel"),
                    "400": _json("Error", "Bad level"),
                    "403": _json("Error", "Not local"),
                },
            },
        },
        "/api/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "OK"}}}
        },
    },
    "components": {
        "schemas": {
            "Error": _ERROR,
            "LogLevel": _LEVEL,
            "Health": {
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
            },
        }
    },
}


@routes.get("/api/openapi.json")
@public
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(SPEC)
