"""Master files a HIS keeps in sync (RIS-9.6): services, departments, rooms, devices, staff.

``station_for`` picks the DICOM station (device AE title) of a step when the order names none.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from mekong.shared.db.ris_schema import (
    ris_department,
    ris_device,
    ris_room,
    ris_service,
    ris_staff,
)
from mekong.shared.dicom.names import folded_words
from mekong.shared.ris import validate
from mekong.shared.ris.errors import Invalid

TABLES = {
    "service": ris_service,
    "department": ris_department,
    "room": ris_room,
    "device": ris_device,
    "staff": ris_staff,
}


def clean_entry(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """Validated column values of one master-file entry."""
    table = TABLES[kind]
    key = table.primary_key.columns.values()[0].name
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in table.c or name in ("updated_at", "name_folded"):
            raise Invalid(f"{kind} has no field {name!r}", f"{kind}.{name}")
        out[name] = _clean_value(kind, name, value)
    validate.required(str(out.get(key, "")), f"{kind}.{key}")
    if kind == "staff" and "name" in out:
        out["name_folded"] = folded_words(out["name"])
    return out


def _clean_value(kind: str, name: str, value: Any) -> Any:
    field = f"{kind}.{name}"
    if name == "bhyt_min_minutes":
        if value in (None, ""):
            return None
        if not str(value).isdigit():
            raise Invalid(f"{field} must be a whole number of minutes", field)
        return int(value)
    value = str(value)
    if name in ("modality", "body_part"):
        return validate.code_string(value, field)
    if name == "ae_title":
        return validate.ae_title(value, field)
    if name == "name" and kind == "staff":
        return validate.person_name(value, field)
    return validate.text(value, field, 256)


def upsert_entry(conn: Connection, kind: str, values: dict[str, Any]) -> str:
    """Add or update one entry; returns "added" or "updated"."""
    table = TABLES[kind]
    key_column = table.primary_key.columns.values()[0]
    values = {**clean_entry(kind, values), "updated_at": time.time()}
    key = values[key_column.name]
    result = conn.execute(update(table).where(key_column == key).values(**values))
    if result.rowcount:
        return "updated"
    conn.execute(table.insert().values(**values))
    return "added"


def replace_entries(conn: Connection, kind: str, entries: list[dict[str, Any]]) -> None:
    """The whole master file ``kind`` becomes ``entries`` (a configuration bundle)."""
    conn.execute(delete(TABLES[kind]))
    for entry in entries:
        upsert_entry(conn, kind, entry)


def delete_entry(conn: Connection, kind: str, key: str) -> bool:
    table = TABLES[kind]
    key_column = table.primary_key.columns.values()[0]
    result = conn.execute(delete(table).where(key_column == key))
    return bool(result.rowcount)


def entries(conn: Connection, kind: str) -> list[dict[str, Any]]:
    table = TABLES[kind]
    rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()
    return [{k: v for k, v in row.items() if k != "name_folded"} for row in rows]


_SERVICE = select(ris_service).where(ris_service.c.code == bindparam("code"))
_ROOM_OF = select(ris_device.c.room).where(ris_device.c.ae_title == bindparam("ae_title"))


def service(conn: Connection, code: str) -> Any | None:
    return conn.execute(_SERVICE, {"code": code}).first()


def room(conn: Connection, code: str) -> Any | None:
    return conn.execute(select(ris_room).where(ris_room.c.code == code)).first()


def station_for(conn: Connection, room: str, modality: str) -> tuple[str, str]:
    """(station AE, room) for a step with no AE: the device of that modality in the room, else
    the only device of that modality anywhere; ("", room) when neither is unambiguous."""
    query = select(ris_device.c.ae_title, ris_device.c.room).where(
        ris_device.c.modality == modality
    )
    if room:
        rows = conn.execute(query.where(ris_device.c.room == room)).all()
    else:
        rows = conn.execute(query).all()
    if len(rows) == 1:
        return rows[0].ae_title, rows[0].room
    return "", room


def room_of(conn: Connection, ae_title: str) -> str:
    """The room of the device with this AE title ('' if unknown)."""
    return str(conn.execute(_ROOM_OF, {"ae_title": ae_title}).scalar_one_or_none() or "")
