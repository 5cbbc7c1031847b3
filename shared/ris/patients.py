"""RIS patients: create or update from HIS demographics, look up, merge (RIS-9.5, PACS-6.1).

A merged patient keeps its row with ``merged_into`` pointing at the survivor; lookups of the old
identifier resolve to the survivor so late orders under the old ID land on the right patient.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from mekong.shared.db.ris_schema import ris_order, ris_patient, ris_visit
from mekong.shared.dicom.names import folded_words
from mekong.shared.ris import pir, validate
from mekong.shared.ris.errors import Invalid, Missing, NotFound
from mekong.shared.ris.model import PatientData

_FIELDS = ("name", "birth_date", "sex", "address", "phone")


def clean_patient(data: PatientData, prefix: str = "patient") -> dict[str, str]:
    """Validated column values for the fields given (``None`` fields left out)."""
    checks = {
        "name": lambda v: validate.person_name(v, f"{prefix}.name"),
        "birth_date": lambda v: validate.date(v, f"{prefix}.birth_date"),
        "sex": lambda v: validate.sex(v, f"{prefix}.sex"),
        "address": lambda v: validate.text(v, f"{prefix}.address", 512),
        "phone": lambda v: validate.short_string(v, f"{prefix}.phone", 64),
    }
    values = {}
    for name in _FIELDS:
        value = getattr(data, name)
        if value is not None:
            values[name] = checks[name](value)
    if "name" in values:
        values["name_folded"] = folded_words(values["name"])
    return values


def clean_identity(data: PatientData, prefix: str = "patient") -> tuple[str, str]:
    patient_id = validate.short_string(
        validate.required(data.patient_id, f"{prefix}.id"), f"{prefix}.id", 64
    )
    return patient_id, validate.short_string(data.issuer, f"{prefix}.issuer", 64)


_BY_IDENTIFIER = select(ris_patient).where(
    ris_patient.c.patient_id == bindparam("patient_id"), ris_patient.c.issuer == bindparam("issuer")
)
_BY_ID = select(ris_patient).where(ris_patient.c.id == bindparam("id"))
_INSERT = ris_patient.insert()


def find_patient(conn: Connection, patient_id: str, issuer: str) -> Any | None:
    """The patient row for an identifier, following merges to the survivor."""
    row = conn.execute(_BY_IDENTIFIER, {"patient_id": patient_id, "issuer": issuer}).first()
    seen = set()
    while row is not None and row.merged_into is not None and row.id not in seen:
        seen.add(row.id)
        row = conn.execute(_BY_ID, {"id": row.merged_into}).first()
    return row


def upsert_patient(
    conn: Connection, data: PatientData, changes: list[str], prefix: str = "patient"
) -> int:
    """Create the patient, or update the fields given; returns the row id."""
    patient_id, issuer = clean_identity(data, prefix)
    values = clean_patient(data, prefix)
    row = find_patient(conn, patient_id, issuer)
    now = time.time()
    if row is None:
        if not values.get("name"):
            raise Missing(f"{prefix}.name is required for a new patient", f"{prefix}.name")
        result = conn.execute(
            _INSERT,
            dict(
                patient_id=patient_id, issuer=issuer, created_at=now, updated_at=now, **values
            ),  # fmt: skip
        )
        changes.append(f"patient {_label(patient_id, issuer)} created")
        return int(result.inserted_primary_key[0])
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if changed:
        conn.execute(
            update(ris_patient).where(ris_patient.c.id == row.id).values(updated_at=now, **changed)
        )
        names = ", ".join(k for k in changed if k != "name_folded")
        changes.append(f"patient {_label(row.patient_id, row.issuer)} updated: {names}")
        changes.extend(pir.patient_updated(conn, row.id, changed))
    return int(row.id)


def update_patient(conn: Connection, data: PatientData, changes: list[str]) -> int:
    """Update an existing patient (REST PUT); NotFound when the identifier is unknown."""
    patient_id, issuer = clean_identity(data)
    if find_patient(conn, patient_id, issuer) is None:
        raise NotFound(f"no patient {_label(patient_id, issuer)}", "patient.id")
    return upsert_patient(conn, data, changes)


def merge_patients(
    conn: Connection, survivor: PatientData, prior: PatientData, changes: list[str]
) -> int:
    """ADT^A40: the prior patient's orders and visits move to the survivor (created if new);
    the prior row stays, marked ``merged_into``. Returns the survivor's row id."""
    prior_id, prior_issuer = clean_identity(prior, "prior_patient")
    prior_row = find_patient(conn, prior_id, prior_issuer)
    if prior_row is None:
        raise NotFound(f"no patient {_label(prior_id, prior_issuer)} to merge", "MRG-1")
    survivor_fk = upsert_patient(conn, survivor, changes)
    if survivor_fk == prior_row.id:
        raise Invalid("the prior and the surviving patient are the same", "MRG-1")
    moved = conn.execute(
        update(ris_order)
        .where(ris_order.c.patient_fk == prior_row.id)
        .values(patient_fk=survivor_fk, updated_at=time.time())
    )
    conn.execute(
        update(ris_visit)
        .where(ris_visit.c.patient_fk == prior_row.id)
        .values(patient_fk=survivor_fk)
    )
    conn.execute(
        update(ris_patient)
        .where(ris_patient.c.id == prior_row.id)
        .values(merged_into=survivor_fk, updated_at=time.time())
    )
    changes.append(
        f"patient {_label(prior_row.patient_id, prior_row.issuer)} merged into "
        f"{_label(*clean_identity(survivor))}: {moved.rowcount} order(s) moved"
    )
    changes.extend(pir.patients_merged(conn, prior_row.id, survivor_fk))
    return survivor_fk


def patient_json(row: Any) -> dict[str, str]:
    return {
        "id": row.patient_id,
        "issuer": row.issuer,
        "name": row.name,
        "birth_date": row.birth_date,
        "sex": row.sex,
        "address": row.address,
        "phone": row.phone,
    }


def _label(patient_id: str, issuer: str) -> str:
    return f"{patient_id}^^^{issuer}" if issuer else patient_id


def patient_by_row(conn: Connection, row_id: int) -> Any:
    return conn.execute(select(ris_patient).where(ris_patient.c.id == row_id)).one()
