"""OpenAPI details of the hub's resumable upload routes (:mod:`mekong.central.uploads`), merged
into the document :mod:`mekong.shared.http.openapi` builds from the route table."""

from __future__ import annotations

from typing import Any

_S, _I, _B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_ERR = {"$ref": "#/components/schemas/Error"}


def _answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": _S,
            "description": description}  # fmt: skip


_UPLOAD = {"type": "object", "properties": {
    "id": _S, "sha256": _S, "size": _I, "created_at": {"type": "number"},
    "offset": {**_I, "description": "bytes the hub holds durably: the next chunk starts here"},
}}  # fmt: skip
_WITH_OFFSET = {"allOf": [_ERR, {"type": "object", "properties": {"offset": _I}}]}
_STORED = {"type": "object", "properties": {
    "stored": _B, "digest": {**_S, "description": "SHA-256 of the bytes the hub now holds"},
    "sop_uid": _S, "outcome": _S,
}}  # fmt: skip
_DIGEST = _header("Content-Digest", "RFC 9530 `sha-256=:base64:` of the chunk; a chunk that "
                  "does not match is refused with 400 and nothing is written")  # fmt: skip

DETAILS: dict[str, dict[str, Any]] = {
    "GET /api/hub/uploads": {
        "description": "The edge's probe: a hub answers `resumable: true` and the largest chunk "
        "it takes; also the caller's uploads in progress.",
        "responses_extra": {
            "200": _answer(
                {
                    "type": "object",
                    "properties": {
                        "resumable": _B,
                        "chunk_max": _I,
                        "uploads": {"type": "array", "items": _UPLOAD},
                    },
                },
                "The hub takes resumable uploads",
            )
        },  # fmt: skip
    },
    "POST /api/hub/uploads": {
        "description": "Start the resumable upload of one object of `size` bytes with SHA-256 "
        "`sha256`. Idempotent: the same sender, digest and size find the same upload and its "
        "current offset again (an edge that lost its upload id resumes). When an instance with "
        "exactly these bytes is already stored the answer is 200 `stored: true`: send nothing.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["sha256", "size"],
                        "properties": {"sha256": {**_S, "pattern": "^[0-9a-f]{64}$"}, "size": _I},
                    }
                }
            },
        },  # fmt: skip
        "responses_extra": {
            "200": _answer(_STORED, "Already stored (deduplicated by digest)"),
            "201": _answer(_UPLOAD, "The upload, new or in progress, with its offset"),
            "507": _answer(_ERR, "Out of resources: try again later"),
        },
    },
    "GET /api/hub/uploads/{id}": {
        "description": "Bytes received so far (also `HEAD`, with the `Upload-Offset` header).",
        "responses_extra": {
            "200": _answer(_UPLOAD, "The upload"),
            "404": _answer(_ERR, "Finished, or deleted as stale"),
        },  # fmt: skip
    },
    "PATCH /api/hub/uploads/{id}": {
        "description": "Append one chunk (at most 64 MiB) at `Upload-Offset` (or the start of "
        "`Content-Range: bytes N-M/size`), which must equal the bytes received. The chunk is "
        "written and fsync'd before the answer; a failed write leaves nothing behind.",
        "parameters_extra": [_header("Upload-Offset", "where the chunk starts"), _DIGEST],
        "requestBody": {
            "required": True,
            "content": {
                "application/offset+octet-stream": {
                    "schema": {"type": "string", "format": "binary"}
                }
            },
        },  # fmt: skip
        "responses_extra": {
            "200": _answer(
                {"type": "object", "properties": {"id": _S, "offset": _I}},
                "Written durably; the new offset",
            ),  # fmt: skip
            "404": _answer(_ERR, "No such upload"),
            "409": _answer(
                _WITH_OFFSET, "The offset is not where the received bytes end; `offset` says where"
            ),  # fmt: skip
            "413": _answer(_ERR, "Chunk larger than 64 MiB"),
            "507": _answer(_WITH_OFFSET, "Disk full: nothing written, retry later"),
        },
    },
    "POST /api/hub/uploads/{id}/complete": {
        "description": "Check the SHA-256 of all received bytes, then store the object through "
        "the archive (the validation of C-STORE and STOW-RS). The edge marks the object sent "
        "only when `digest` equals its own.",
        "responses_extra": {
            "200": _answer(_STORED, "Stored; `digest` of the stored bytes"),
            "404": _answer(_ERR, "No such upload"),
            "409": _answer(_WITH_OFFSET, "Not all bytes received yet"),
            "422": _answer(_ERR, "SHA-256 differs (upload discarded) or not valid DICOM"),
            "507": _answer(_ERR, "Out of resources: try again later"),
        },
    },
}
