"""OpenAPI details of the reconciliation and outbound HL7 routes (unmatched list, outbox),
merged into the document :mod:`mekong.shared.http.openapi` builds from the routes."""

from __future__ import annotations

from typing import Any

from mekong.shared.http.openapi_ris import _json, _ref, _strings

_NUMBER, _INTEGER = {"type": "number"}, {"type": "integer"}

SCHEMAS: dict[str, Any] = {
    "LinkedStudy": {
        "type": "object",
        "properties": {
            **_strings("study_uid", "matched_by", "linked_by", "study_date", "modalities")[
                "properties"
            ],
            "linked_at": _NUMBER,
            "num_series": _INTEGER,
            "num_instances": _INTEGER,
        },
        "description": "matched_by: label (QR-label key), accession, study_uid, sps_id, "
        "procedure_id or manual",
    },  # fmt: skip
    "UnmatchedStudy": {
        "type": "object",
        "properties": {
            **_strings(
                "study_uid",
                "reason",
                "patient_id",
                "issuer",
                "patient_name",
                "accession",
                "study_date",
                "study_time",
                "description",
                "modalities",
            )["properties"],
            "reason_code": {
                "enum": [
                    "NO_KEY",
                    "UNKNOWN_KEY",
                    "ORDER_CANCELLED",
                    "AMBIGUOUS",
                    "UNREADABLE",
                    "ERROR",
                    "LABEL_CHECK_DIGIT",
                    "LABEL_UNKNOWN",
                    "LABEL_OTHER_PATIENT",
                ]
            },
            "suggested_accession": {
                "type": ["string", "null"],
                "description": "same patient, modality, station and time "
                "window: confirm by linking; never linked on its own",
            },
            "num_series": _INTEGER,
            "num_instances": _INTEGER,
            "detected_at": _NUMBER,
        },
    },  # fmt: skip
    "UnmatchedList": {
        "type": "object",
        "properties": {
            "studies": {"type": "array", "items": _ref("UnmatchedStudy")},
            "count": _INTEGER,
            "total": _INTEGER,
        },
    },  # fmt: skip
    "OutboundMessage": {
        "type": "object",
        "properties": {
            **_strings(
                "destination",
                "control_id",
                "message_type",
                "event",
                "accession",
                "last_error",
                "payload",
                "ack",
            )["properties"],
            "id": _INTEGER,
            "attempts": _INTEGER,
            "state": {"enum": ["PENDING", "SENT", "DEAD"]},
            "next_attempt_at": {"type": ["number", "null"]},
            "created_at": _NUMBER,
            "sent_at": {"type": ["number", "null"]},
        },
        "description": "control_id is MSH-10, unchanged on resend; payload and ack only on "
        "GET /api/hl7/outbox/{id}",
    },  # fmt: skip
    "OutboundList": {
        "type": "object",
        "properties": {
            "messages": {"type": "array", "items": _ref("OutboundMessage")},
            "count": _INTEGER,
            "totals": {"type": "object", "additionalProperties": _INTEGER},
        },
    },  # fmt: skip
}

_QUERY = {"in": "query", "schema": {"type": "string"}}
_NOT_FOUND = _json(_ref("RisError"), "Unknown study or order")
DETAILS: dict[str, dict[str, Any]] = {
    "GET /api/unmatched": {
        "parameters_extra": [{"name": n, **_QUERY} for n in ("limit", "offset")],
        "responses_extra": {"200": _json(_ref("UnmatchedList"))},
    },
    "POST /api/unmatched/{study}/link": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["accession"],
                        "properties": {"accession": {"type": "string"}},
                    }
                }
            },
        },
        "responses_extra": {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "study_uid": {"type": "string"},
                        "order": _ref("Order"),
                        "coercion": {"enum": ["queued"]},
                    },
                }
            ),
            "400": _json(_ref("RisError"), "No accession given"),
            "404": _NOT_FOUND,
            "409": _json(_ref("RisError"), "Already linked, or the order is cancelled"),
        },
    },  # fmt: skip
    "POST /api/studies/{study}/move": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["accession"],
                        "properties": {
                            "accession": {"type": "string"},
                            "reason": {"type": "string"},
                        },
                    }
                }
            },
        },  # fmt: skip
        "responses_extra": {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "study_uid": {"type": "string"},
                        "from": {"type": "string", "description": "the accession it left"},
                        "order": _ref("Order"),
                        "coercion": {"enum": ["queued"]},
                    },
                }
            ),
            "400": _json(_ref("RisError"), "No accession given"),
            "404": _json(_ref("RisError"), "The study is not linked, or no such order"),
            "409": _json(_ref("RisError"), "Already on that order, or it is cancelled"),
        },
    },  # fmt: skip
    "GET /api/hl7/outbox": {
        "parameters_extra": [
            {"name": n, **_QUERY} for n in ("state", "destination", "accession", "limit")
        ],
        "responses_extra": {"200": _json(_ref("OutboundList"))},
    },  # fmt: skip
    "GET /api/hl7/outbox/{id}": {"responses_extra": {"200": _json(_ref("OutboundMessage"))}},
    "POST /api/hl7/outbox/{id}/resend": {
        "responses_extra": {
            "200": _json(_ref("OutboundMessage")),
            "409": _json(_ref("Error"), "Only DEAD messages are resent"),
        },
    },  # fmt: skip
}
