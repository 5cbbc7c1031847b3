"""One inbound HL7 message → one ACK (RIS-6.1, RIS-9.4–9.6, PACS-16.5).

Decode by MSH-18, parse, check MSH, then in ONE transaction: look for an earlier message with
the same sender (MSH-3/MSH-4) and control ID (MSH-10) — if there is one, answer its ACK again
and apply nothing — else apply the message through the RIS domain and write the message-log
row. The ACK leaves only after that commit (durable: WAL fsync'd). Any error rolls the
changes back; the message is then logged with its AE/AR outcome in a transaction of its own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from sqlalchemy import Connection

from mekong.shared.audit.trail import FAILURE, SUCCESS, AuditEvent
from mekong.shared.db.index import Index
from mekong.shared.hl7 import adt, charset, mfn, msglog
from mekong.shared.hl7 import orders as hl7_orders
from mekong.shared.hl7.ack import build_ack
from mekong.shared.hl7.errors import Hl7Error
from mekong.shared.hl7.message import Header, Message, check_header, parse, raw_header
from mekong.shared.ris import orders
from mekong.shared.ris.errors import DomainError
from mekong.shared.ris.status import Status

log = logging.getLogger(__name__)

Apply = Callable[[Connection, list[str]], None]
# A handler reads the message (outside the transaction: parsing holds no database lock) and
# returns what applies it inside the transaction.
Prepare = Callable[[Message, Header], Apply]

# Where a domain field comes from in a message, for ERR-2 (docs/hl7.md).
LOCATIONS = {
    "patient.id": "PID-3", "patient.issuer": "PID-3.4", "patient.name": "PID-5",
    "patient.birth_date": "PID-7", "patient.sex": "PID-8", "patient.address": "PID-11",
    "patient.phone": "PID-13", "prior_patient.id": "MRG-1", "MRG-1": "MRG-1",
    "order": "ORC-2", "order.accession": "OBR-18", "order.placer_number": "ORC-2",
    "order.filler_number": "ORC-3", "order.priority": "OBR-27.6",
    "order.ordering_physician": "ORC-12", "order.reason": "OBR-31", "procedure.id": "OBR-19",
    "procedure.service_code": "OBR-4", "procedure.description": "OBR-4.2",
    "procedure.study_uid": "IPC-3", "steps": "OBR-24", "steps.modality": "OBR-24",
    "steps.station_ae": "OBR-21", "steps.sps_id": "OBR-20", "steps.start_date": "OBR-27.4",
    "steps.start_time": "OBR-27.4", "steps.room": "IPC-8", "steps.description": "IPC-6",
    "visit.number": "PV1-19", "visit.patient_class": "PV1-2", "visit.location": "PV1-3",
    "visit.department": "PV1-3", "visit.referring_physician": "PV1-8",
}  # fmt: skip
_INDEX = re.compile(r"\[\d+\]")


def _orders(msg: Message, header: Header) -> Apply:
    source = f"{header.sending_app}^{header.sending_facility}"
    groups = hl7_orders.order_groups(msg, source)
    return lambda conn, changes: _apply_orders(conn, groups, changes)


def _apply_orders(
    conn: Connection, groups: list[hl7_orders.OrderGroup], changes: list[str]
) -> None:
    for group in groups:
        if group.control == "NW":
            orders.create_order(conn, group.request, changes)
        elif group.control == "XO":
            orders.change_order(conn, group.key, group.request, changes)
        elif group.control == "CA":
            orders.set_order_status(conn, group.key, Status.CANCELLED, changes)
        elif group.control == "DC":
            orders.set_order_status(conn, group.key, Status.DISCONTINUED, changes)
        elif orders.find_order(conn, group.key).status == group.status:
            changes.append(f"order already {group.status}: no change")
        else:
            orders.set_order_status(conn, group.key, Status(group.status), changes)


def _adt_update(msg: Message, _header: Header) -> Apply:
    return lambda conn, changes: adt.update(conn, msg, changes)


def _adt_merge(msg: Message, _header: Header) -> Apply:
    return lambda conn, changes: adt.merge(conn, msg, changes)


def _mfn(msg: Message, header: Header) -> Apply:
    return lambda conn, changes: mfn.apply(conn, msg, header.event, changes)


HANDLERS: dict[str, dict[str, Prepare]] = {
    "ORM": {"O01": _orders},
    "OMI": {"O23": _orders},
    "ADT": {"A08": _adt_update, "A31": _adt_update, "A40": _adt_merge},
    "MFN": {"M02": _mfn, "M05": _mfn, "M08": _mfn},
}


class Receiver:
    """Turns MLLP blocks into ACKs. ``application`` / ``facility`` fill the ACK's MSH-3/4 when
    the message did not address us by name (MSH-5/6). ``audit`` gets one event per message
    (actor: the sending application, GEN-4)."""

    def __init__(
        self,
        index: Index,
        application: str = "MEKONG",
        facility: str = "",
        audit: Callable[[AuditEvent], None] | None = None,
    ) -> None:
        self.index = index
        self.application = application
        self.facility = facility
        self.audit = audit

    async def handle(self, block: bytes) -> bytes:
        received_at = time.time()
        header = raw_header(block.decode("latin-1"))
        raw = block.decode("utf-8", errors="replace")
        try:
            text, _ = charset.decode(block)
            raw = text
            msg = parse(text)
            header = msg.header()
            check_header(header)
            apply = _handler(header)(msg, header)
            return await self._apply(apply, msg, header, raw, received_at)
        except Hl7Error as error:
            return await self._refuse(header, raw, received_at, error)
        except DomainError as exc:
            return await self._refuse(header, raw, received_at, _from_domain(exc))
        except Exception:
            log.exception("HL7 message %r from %s failed", header.control_id, header.sending_app)
            error = Hl7Error("AE", "207", "internal error; resend later (the node log has the "
                             "details)", "", "INTERNAL")  # fmt: skip
            return await self._refuse(header, raw, received_at, error)

    async def _apply(
        self, apply: Apply, msg: Message, header: Header, raw: str, received_at: float
    ) -> bytes:
        def work(conn: Connection) -> tuple[str, list[str]]:
            return self._apply_in(conn, apply, header, raw, received_at)

        ack, changes = await self.index.transaction(work)
        log.info("HL7 %s %s from %s: %s", header.message_type, header.control_id,
                 header.sending_app, "; ".join(changes))  # fmt: skip
        self._audit(header, SUCCESS, {"changes": changes}, msg)
        return self._encode(ack, header)

    def _apply_in(
        self, conn: Connection, apply: Apply, header: Header, raw: str, received_at: float
    ) -> tuple[str, list[str]]:
        """(ACK, changes), on the RIS thread inside the transaction."""
        original = msglog.original(conn, header)
        if original is not None:
            note = f"resent: answered as message #{original.id}, not applied again"
            entry = msglog.Entry(header, received_at, raw, original.outcome, original.ack,
                                 changes=(note,), duplicate_of=original.id)  # fmt: skip
            msglog.insert(conn, entry)
            return original.ack, [note]
        changes: list[str] = []
        apply(conn, changes)
        ack = self._ack(header, None)
        msglog.insert(conn, msglog.Entry(header, received_at, raw, "AA", ack,
                                         changes=tuple(changes)))  # fmt: skip
        return ack, changes

    async def _refuse(self, header: Header, raw: str, received_at: float, error: Hl7Error) -> bytes:
        log.warning("HL7 %s %r from %s refused: %s", header.message_type or "?",
                    header.control_id, header.sending_app or "?", error)  # fmt: skip
        ack = self._ack(header, error)
        self._audit(header, FAILURE, {"ack": error.ack, "error": error.code})
        entry = msglog.Entry(header, received_at, raw, error.ack, ack, error.code, error.message)
        try:
            await self.index.transaction(lambda conn: msglog.insert(conn, entry))
        except Exception:
            log.exception("could not log HL7 message %r", header.control_id)
        return self._encode(ack, header)

    def _audit(
        self, header: Header, outcome: str, detail: dict, msg: Message | None = None
    ) -> None:
        if self.audit is None:
            return
        patient = msg.get("PID", 3) if msg is not None else ""
        actor = f"{header.sending_app}^{header.sending_facility}"
        self.audit(AuditEvent(actor[:128], "hl7", f"hl7.{header.message_type or 'unknown'}",
                              outcome, object=header.control_id, patient_id=patient[:64],
                              detail=detail))  # fmt: skip

    def _ack(self, header: Header, error: Hl7Error | None) -> str:
        application = header.receiving_app or self.application
        facility = header.receiving_facility or self.facility
        return build_ack(header, error, application, facility)

    @staticmethod
    def _encode(ack: str, header: Header) -> bytes:
        return ack.encode(charset.codec_for(header.charset), errors="replace")


def _handler(header: Header) -> Prepare:
    kind, _, event = header.message_type.partition("^")
    events = HANDLERS.get(kind)
    if events is None:
        raise Hl7Error("AR", "200", f"message type {kind!r} is not supported; Mekong takes "
                       f"{', '.join(HANDLERS)}", "MSH-9", "UNSUPPORTED_MESSAGE")  # fmt: skip
    if event not in events:
        raise Hl7Error("AR", "201", f"{kind} event {event!r} is not supported; Mekong takes "
                       f"{', '.join(events)}", "MSH-9.2", "UNSUPPORTED_EVENT")  # fmt: skip
    return events[event]


def _from_domain(exc: DomainError) -> Hl7Error:
    location = LOCATIONS.get(_INDEX.sub("", exc.field), "")
    message = f"{location}: {exc.message}" if location else exc.message
    return Hl7Error("AE", exc.hl7_code, message, location, exc.app_code)
