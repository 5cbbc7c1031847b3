"""OpenAPI details of the RIS routes (orders, patients, HL7 message log): request bodies and
answers, merged into the document :mod:`mekong.shared.http.openapi` builds from the routes."""

from __future__ import annotations

from typing import Any


def _strings(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_STATUSES = ["SCHEDULED", "ARRIVED", "IN_PROGRESS", "COMPLETED", "DISCONTINUED", "CANCELLED"]
_RIS_ERROR = _json(_ref("RisError"), "Invalid input; `field` names it, nothing was written")

SCHEMAS: dict[str, Any] = {
    "RisError": {
        "type": "object",
        "required": ["error", "status"],
        "properties": {
            "error": {"type": "string"},
            "status": {"type": "integer"},
            "code": {
                "enum": [
                    "INVALID_VALUE",
                    "REQUIRED_FIELD_MISSING",
                    "UNKNOWN_CODE",
                    "NOT_FOUND",
                    "DUPLICATE_KEY",
                    "ILLEGAL_TRANSITION",
                ]
            },
            "field": {"type": "string", "description": "e.g. patient.id, steps[0].modality"},
        },
    },  # fmt: skip
    "Patient": {
        **_strings("id", "issuer", "name", "birth_date", "sex", "address", "phone"),
        "description": "name: DICOM PN (Family^Given^Middle^Prefix^Suffix), UTF-8 kept byte "
        "for byte; birth_date YYYYMMDD (YYYY-MM-DD accepted); sex M, F, O, U",
    },
    "Visit": _strings(
        "number", "patient_class", "location", "department", "referring_physician"
    ),  # fmt: skip
    "OrderFields": {
        **_strings(
            "accession",
            "placer_number",
            "filler_number",
            "priority",
            "ordering_physician",
            "reason",
        ),  # fmt: skip
        "description": "priority STAT, HIGH, ROUTINE (default), MEDIUM, LOW; accession at most "
        "16 characters, assigned (MK + 8 digits) when absent",
    },
    "Procedure": _strings("id", "service_code", "description", "study_uid"),
    "Step": {
        **_strings(
            "sps_id",
            "station_ae",
            "modality",
            "start_date",
            "start_time",
            "room",
            "performing_physician",
            "description",
            "status",
        ),  # fmt: skip
        "description": "start_date YYYYMMDD, start_time HHMM[SS] (dashes, colons accepted); "
        "modality from the service catalogue, station_ae from the room's device, start now, "
        "when absent; status is read-only",
    },
    "OrderInput": {
        "type": "object",
        "properties": {
            "patient": _ref("Patient"),
            "visit": _ref("Visit"),
            "order": _ref("OrderFields"),
            "procedure": _ref("Procedure"),
            "steps": {"type": "array", "items": _ref("Step")},
        },
    },
    "Order": {
        "type": "object",
        "properties": {
            **_strings(
                "accession",
                "placer_number",
                "filler_number",
                "priority",
                "ordering_physician",
                "reason",
                "source",
            )["properties"],
            "status": {"enum": _STATUSES},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "patient": _ref("Patient"),
            "visit": _ref("Visit"),
            "procedure": _ref("Procedure"),
            "steps": {"type": "array", "items": _ref("Step")},
            "studies": {"type": "array", "items": _ref("LinkedStudy")},
        },
    },  # fmt: skip
    "OrderList": {
        "type": "object",
        "properties": {
            "orders": {"type": "array", "items": _ref("Order")},
            "count": {"type": "integer"},
        },
    },  # fmt: skip
    "Hl7Message": {
        "type": "object",
        "properties": {
            **_strings(
                "control_id",
                "sending_app",
                "sending_facility",
                "type",
                "version",
                "charset",
                "error_code",
                "error",
                "raw",
                "ack",
            )["properties"],
            "id": {"type": "integer"},
            "received_at": {"type": "number"},
            "outcome": {"enum": ["AA", "AE", "AR"]},
            "changes": {"type": "array", "items": {"type": "string"}},
            "duplicate_of": {"type": ["integer", "null"]},
        },
    },  # fmt: skip
    "Hl7MessageList": {
        "type": "object",
        "properties": {
            "messages": {"type": "array", "items": _ref("Hl7Message")},
            "count": {"type": "integer"},
        },
    },  # fmt: skip
}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]


_ORDER_BODY = {"required": True, "content": {"application/json": {"schema": _ref("OrderInput")}}}
_ORDER = _json(_ref("Order"))
_CHANGE_ERRORS = {"400": _RIS_ERROR, "404": _json(_ref("RisError"), "Unknown order"),
                  "409": _json(_ref("RisError"), "Illegal status transition")}  # fmt: skip

DETAILS: dict[str, dict[str, Any]] = {
    "POST /api/orders": {
        "requestBody": _ORDER_BODY,
        "responses_extra": {
            "201": _json(_ref("Order"), "Created"),
            "400": _RIS_ERROR,
            "409": _json(_ref("RisError"), "Accession, SPS ID or placer number already used"),
        },
    },  # fmt: skip
    "GET /api/orders": {
        "parameters_extra": _query("status", "date", "modality", "station_ae", "limit"),
        "responses_extra": {"200": _json(_ref("OrderList"))},
    },
    "GET /api/orders/{accession}": {"responses_extra": {"200": _ORDER}},
    "PUT /api/orders/{accession}": {
        "requestBody": _ORDER_BODY,
        "responses_extra": {"200": _ORDER, **_CHANGE_ERRORS},
    },
    "POST /api/orders/{accession}/cancel": {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"reason": {"type": "string", "maxLength": 256}},
                    }
                }
            },
        },
        "responses_extra": {"200": _ORDER, **_CHANGE_ERRORS},
    },  # fmt: skip
    "POST /api/orders/{accession}/room": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["room"],
                        "properties": {"room": {"type": "string", "maxLength": 256}},
                    }
                }
            },
        },
        "responses_extra": {"200": _ORDER, **_CHANGE_ERRORS},
    },  # fmt: skip
    "POST /api/orders/{accession}/status": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"enum": _STATUSES}},
                    }
                }
            },
        },
        "responses_extra": {"200": _ORDER, **_CHANGE_ERRORS},
    },  # fmt: skip
    "GET /api/patients/{patient_id}": {
        "parameters_extra": _query("issuer"),
        "responses_extra": {"200": _json(_ref("Patient"))},
    },
    "PUT /api/patients/{patient_id}": {
        "parameters_extra": _query("issuer"),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("Patient")}},
        },
        "responses_extra": {
            "200": _json(_ref("Patient")),
            "400": _RIS_ERROR,
            "404": _json(_ref("RisError"), "Unknown patient"),
        },
    },  # fmt: skip
    "GET /api/hl7/messages": {
        "parameters_extra": _query(
            "control_id", "type", "outcome", "since", "until", "text", "limit"
        ),
        "responses_extra": {"200": _json(_ref("Hl7MessageList"))},
    },  # fmt: skip
    "GET /api/hl7/messages/{id}": {"responses_extra": {"200": _json(_ref("Hl7Message"))}},
}
