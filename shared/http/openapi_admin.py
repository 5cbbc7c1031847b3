"""OpenAPI details of the administration routes the console uses: known AEs with C-ECHO
(PACS-18.3) and the recent log lines (RIS-2.4). Merged into the document
:mod:`mekong.shared.http.openapi` builds from the routes."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _object(required: list[str] | None = None, **properties: dict) -> dict[str, Any]:
    return {"type": "object", "required": required or [], "properties": properties}


_STRING, _INTEGER, _BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_SERVICES = {"type": "array", "items": {"enum": ["echo", "store", "find", "get", "move"]}}
_LEVELS = {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]}
_ASCII_WORKLIST = {
    "type": "boolean",
    "description": "Modality Worklist answers folded to ASCII, default character set; "
    "left out of a PUT: unchanged",
}
_NO_AE = {"404": _json(_ref("Error"), "No AE with this title")}

SCHEMAS: dict[str, Any] = {
    "RemoteAE": _object(
        ["title", "host", "port"],
        title=_STRING,
        host=_STRING,
        port=_INTEGER,
        allow=_SERVICES,
        fuzzy_find=_BOOLEAN,
        description=_STRING,
        ascii_worklist=_ASCII_WORKLIST,
    ),  # fmt: skip
    "EchoResult": _object(
        ["ok", "status", "ms", "error"],
        ok=_BOOLEAN,
        status={"type": ["integer", "null"], "description": "C-ECHO-RSP status; null: none"},
        ms={"type": "number"},
        error={"type": "string", "description": "why not; '' when ok"},
    ),  # fmt: skip
    "LogLine": _object(at={"type": "number"}, level=_STRING, logger=_STRING, text=_STRING),
}

DETAILS: dict[str, dict[str, Any]] = {
    "GET /api/admin/aes": {
        "responses_extra": {"200": _json({"type": "array", "items": _ref("RemoteAE")})}
    },
    "PUT /api/admin/aes/{title}": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _object(
                        ["host", "port"],
                        host=_STRING,
                        port=_INTEGER,
                        allow=_SERVICES,
                        fuzzy_find=_BOOLEAN,
                        description=_STRING,
                        ascii_worklist=_ASCII_WORKLIST,
                    )  # fmt: skip
                }
            },
        },
        "responses_extra": {"200": _json(_ref("RemoteAE"))},
    },
    "DELETE /api/admin/aes/{title}": {"responses_extra": _NO_AE},
    "POST /api/admin/aes/{title}/echo": {
        "responses_extra": {"200": _json(_ref("EchoResult")), **_NO_AE}
    },
    "GET /api/admin/logs": {
        "parameters_extra": [
            {"name": "level", "in": "query", "schema": _LEVELS, "description": "lowest level"},
            {"name": "q", "in": "query", "schema": _STRING, "description": "text in the line"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 2000}},
        ],
        "responses_extra": {"200": _json({"type": "array", "items": _ref("LogLine")})},
    },
}
