"""OpenAPI details of the edge routes (capture, import): request bodies and answers, merged
into the document :mod:`mekong.shared.http.openapi` builds from the route table."""

from __future__ import annotations

from typing import Any

_S, _N, _I = {"type": "string"}, {"type": "number"}, {"type": "integer"}


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


def _answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_STORED = {"type": "object", "properties": {
    "sop_uid": _S, "sop_class_uid": _S, "study_uid": _S, "series_uid": _S, "frames": _I,
    "accession": _S, "dropped": _I, "duplicated": _I, "stored": {"type": "boolean"},
    "store_seconds": _N, "error": _S,
}}  # fmt: skip
_DEVICE = {"type": "object", "required": ["source"], "properties": {
    "source": _S, "kind": {"enum": ["endoscopy", "ultrasound", "other"]}, "label": _S,
    "width": _I, "height": _I, "fps": _N, "crop": {"type": "array", "items": _I},
    "modality": _S, "anatomic_region": _S, "preset": _S, "crf": _I,
}}  # fmt: skip
_UPLOAD = {"type": "object", "required": ["file", "accession"], "properties": {
    "file": {"type": "string", "format": "binary"}, "accession": _S, "device": _S,
    "kind": {"enum": ["endoscopy", "ultrasound", "other"]},
}}  # fmt: skip
_IMPORTED = {"type": "object", "properties": {
    "sop_uids": {"type": "array", "items": _S}, "media_type": _S, "accession": _S,
    "duplicate": {"type": "boolean"}, "transcoded": {"type": "boolean"},
}}  # fmt: skip
_NO_ORDER = {"404": _answer({"$ref": "#/components/schemas/Error"}, "No such device or order")}

DETAILS: dict[str, dict[str, Any]] = {
    "PUT /api/capture/{device}": {"requestBody": _body(_DEVICE)},
    "POST /api/capture/{device}/start": {
        "requestBody": _body(
            {
                "type": "object",
                "required": ["accession"],
                "properties": {"accession": _S, "seconds": _N},
            }
        ),  # fmt: skip
        "responses_extra": {"202": _answer({"type": "object"}, "Recording"), **_NO_ORDER},
    },
    "POST /api/capture/{device}/stop": {
        "responses_extra": {"200": _answer(_STORED, "The clip, stored (or why not)")},
    },
    "POST /api/capture/{device}/snapshot": {
        "requestBody": _body({"type": "object", "properties": {"accession": _S}}),
        "responses_extra": {"201": _answer(_STORED, "Stored"), **_NO_ORDER},
    },
    "POST /api/import": {
        "requestBody": _body(_UPLOAD, "multipart/form-data"),
        "responses_extra": {
            "201": _answer(_IMPORTED, "Stored"),
            "200": _answer(_IMPORTED, "Already imported (same content, same accession)"),
            "415": _answer({"$ref": "#/components/schemas/Error"}, "Not JPEG/PNG/PDF/MP4"),
            **_NO_ORDER,
        },
    },
    "GET /api/import/originals/{sop_uid}": {
        "responses_extra": {
            "200": {"description": "The original file, byte for byte", "content": {"*/*": {}}}
        },  # fmt: skip
    },
    "GET /api/orders/{accession}/label.png": {
        "responses_extra": {
            "200": {
                "description": "The label, 600 × 360 px at 304.8 dpi (50 × 30 mm)",
                "content": {"image/png": {}},
            },
            "404": _answer({"$ref": "#/components/schemas/Error"}, "No such order"),
        },
    },  # fmt: skip
    "GET /api/orders/{accession}/label.pdf": {
        "responses_extra": {
            "200": {
                "description": "The label, one 50 × 30 mm page",
                "content": {"application/pdf": {}},
            },
            "404": _answer({"$ref": "#/components/schemas/Error"}, "No such order"),
        },
    },  # fmt: skip
    "GET /api/capture/{device}/preview": {
        "responses_extra": {
            "200": {"description": "MJPEG", "content": {"multipart/x-mixed-replace": {}}}
        },  # fmt: skip
    },
}
