"""Patient Information Reconciliation hooks (IHE PIR, RAD-12): where RIS patient changes reach
the stored DICOM images.

Today they change nothing in the archive and say so in the message log; the reconciliation
step of issue 4 (coerce stored headers, relink studies) fills them in. Called inside the same
transaction as the RIS change, so whatever they do commits or rolls back with it.
"""

from __future__ import annotations

from sqlalchemy import Connection


def patient_updated(conn: Connection, patient_fk: int, changed: dict[str, str]) -> list[str]:
    """ADT^A08 / PUT patient: apply ``changed`` demographics to the patient's stored studies."""
    return []


def patients_merged(conn: Connection, prior_fk: int, survivor_fk: int) -> list[str]:
    """ADT^A40: move the prior patient's stored studies to the survivor."""
    return []
