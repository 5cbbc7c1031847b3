"""REST order API for a HIS that does not speak HL7 (RIS-6.1, RIS-3.7, FLOW-1.1/1.2).

Same validation and same domain functions as HL7 (``mekong.shared.ris``), one durable
transaction per request. Permissions (SEC-6): ``orders.read`` to read, ``orders.write`` to
create or change (a HIS integration uses an API token with such a role); every change is
written to the audit trail (GEN-4).

    POST /api/orders                       create: patient + visit + order + procedure + steps
    GET  /api/orders?status=&date=&modality=&station_ae=&limit=
    GET  /api/orders/{accession}
    PUT  /api/orders/{accession}           change what is given (like HL7 ORC-1 XO)
    POST /api/orders/{accession}/cancel    (like ORC-1 CA); {"reason": "..."} is audited
    POST /api/orders/{accession}/room      {"room": "P12"} (a room of the catalogue, RIS-3.6)
    POST /api/orders/{accession}/status    {"status": "ARRIVED"} (status machine)
    GET  /api/patients/{id}?issuer=
    PUT  /api/patients/{id}?issuer=        update demographics (like ADT^A08)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response
from mekong.shared.ris import orders, patients, workflow
from mekong.shared.ris.errors import DomainError, Invalid, NotFound
from mekong.shared.ris.model import (
    OrderData,
    OrderKey,
    OrderRequest,
    PatientData,
    ProcedureData,
    StepData,
    VisitData,
)
from mekong.shared.ris.status import Status, parse_status

routes = web.RouteTableDef()
SOURCE = "REST"
MAX_LIMIT = 1000


def domain_error(exc: DomainError) -> web.Response:
    """The error JSON plus Mekong's error ``code`` and the ``field`` it is about."""
    body: dict[str, Any] = {"error": exc.message, "status": exc.http_status, "code": exc.app_code}
    if exc.field:
        body["field"] = exc.field
    return web.json_response(body, status=exc.http_status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Invalid("the request body must be JSON (Content-Type: application/json)") from None
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    return body


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise Invalid(f"{key} must be a JSON object", key)
    return value


def _strings(obj: dict[str, Any] | None, prefix: str, names: dict[str, str]) -> dict[str, Any]:
    """{attribute: str or None} for the JSON keys given; anything but a string is refused."""
    obj = obj or {}
    unknown = set(obj) - set(names)
    if unknown:
        raise Invalid(f"{prefix} has no field {sorted(unknown)[0]!r}; known: "
                      f"{', '.join(names)}", f"{prefix}.{sorted(unknown)[0]}")  # fmt: skip
    out: dict[str, Any] = {}
    for key, attribute in names.items():
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise Invalid(f"{prefix}.{key} must be a string", f"{prefix}.{key}")
        out[attribute] = value
    return out


_PATIENT = {k: k for k in ("issuer", "name", "birth_date", "sex", "address", "phone")}
_VISIT = {"number": "visit_number", "patient_class": "patient_class", "location": "location",
          "department": "department", "referring_physician": "referring_physician"}  # fmt: skip
_ORDER = {k: k for k in ("accession", "placer_number", "filler_number", "priority",
                         "ordering_physician", "reason")}  # fmt: skip
_PROCEDURE = {"id": "procedure_id", "service_code": "service_code",
              "description": "description", "study_uid": "study_uid"}  # fmt: skip
_STEP = {k: k for k in ("sps_id", "station_ae", "modality", "start_date", "start_time", "room",
                        "performing_physician", "description")}  # fmt: skip


def patient_data(obj: dict[str, Any] | None, patient_id: str | None = None) -> PatientData:
    obj = dict(obj or {})
    given_id = obj.pop("id", None)
    if given_id is not None and not isinstance(given_id, str):
        raise Invalid("patient.id must be a string", "patient.id")
    values = _strings(obj, "patient", _PATIENT)
    values["issuer"] = values["issuer"] or ""
    if values["birth_date"]:
        values["birth_date"] = values["birth_date"].replace("-", "")
    return PatientData(patient_id if patient_id is not None else (given_id or ""), **values)


def order_request(body: dict[str, Any]) -> OrderRequest:
    unknown = set(body) - {"patient", "visit", "order", "procedure", "steps"}
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}; send patient, visit, order, "
                      "procedure, steps", sorted(unknown)[0])  # fmt: skip
    steps = body.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise Invalid("steps must be a list of JSON objects", "steps")
    visit = _object(body, "visit")
    return OrderRequest(
        patient=patient_data(_object(body, "patient")),
        order=OrderData(**_strings(_object(body, "order"), "order", _ORDER)),
        procedure=ProcedureData(**_strings(_object(body, "procedure"), "procedure", _PROCEDURE)),
        steps=[_step(s, n) for n, s in enumerate(steps)],
        visit=None if visit is None else VisitData(**_strings(visit, "visit", _VISIT)),
        source=SOURCE,
    )


def _step(obj: dict[str, Any], index: int) -> StepData:
    values = _strings(obj, f"steps[{index}]", _STEP)
    if values["start_date"]:
        values["start_date"] = values["start_date"].replace("-", "")
    if values["start_time"]:
        values["start_time"] = values["start_time"].replace(":", "")
    return StepData(**values)


def _audit(
    request: web.Request, action: str, order: dict[str, Any], detail: dict | None = None
) -> None:
    record(request, action, object=order["accession"], patient_id=order["patient"]["id"],
           detail=detail)  # fmt: skip


@routes.post("/api/orders")
@requires(Permission.ORDERS_WRITE)
async def create(request: web.Request) -> web.Response:
    """Create an order: patient, visit, order, procedure and steps in one JSON (RIS-6.1)."""
    index = keys.node(request).index
    assert index is not None
    try:
        req = order_request(await _body(request))

        def work(conn: Connection) -> dict[str, Any]:
            return orders.get_order(conn, orders.create_order(conn, req, []))

        order = await index.transaction(work)
    except DomainError as exc:
        return domain_error(exc)
    _audit(request, "order.create", order)
    location = f"/api/orders/{order['accession']}"
    return web.json_response(order, status=201, headers={"Location": location})


@routes.get("/api/orders")
@requires(Permission.ORDERS_READ)
async def search(request: web.Request) -> web.Response:
    """Orders with a step matching every filter (status, date, modality, station_ae)."""
    query = request.query
    try:
        limit = min(int(query.get("limit", "100")), MAX_LIMIT)
        status = parse_status(query["status"]).value if query.get("status") else ""
    except ValueError:
        return error_response(400, f"limit must be a whole number up to {MAX_LIMIT}")
    except DomainError as exc:
        return domain_error(exc)
    index = keys.node(request).index
    assert index is not None
    found = await index.reading(lambda conn: orders.list_orders(
        conn, status, query.get("date", "").replace("-", ""), query.get("modality", ""),
        query.get("station_ae", ""), max(limit, 1),
    ))  # fmt: skip
    return web.json_response({"orders": found, "count": len(found)})


@routes.get("/api/orders/{accession}")
@requires(Permission.ORDERS_READ)
async def get(request: web.Request) -> web.Response:
    """One order with its patient, visit, procedure and steps."""
    index = keys.node(request).index
    assert index is not None
    accession = request.match_info["accession"]
    try:
        return web.json_response(
            await index.reading(lambda conn: orders.get_order(conn, accession))
        )
    except DomainError as exc:
        return domain_error(exc)


@routes.put("/api/orders/{accession}")
@requires(Permission.ORDERS_WRITE)
async def change(request: web.Request) -> web.Response:
    """Change what is given (like HL7 ORC-1 XO); SCHEDULED or ARRIVED orders only."""
    accession = request.match_info["accession"]
    index = keys.node(request).index
    assert index is not None
    try:
        req = order_request(await _body(request))

        def work(conn: Connection) -> dict[str, Any]:
            orders.change_order(conn, OrderKey(accession=accession), req, [])
            return orders.get_order(conn, accession)

        order = await index.transaction(work)
    except DomainError as exc:
        return domain_error(exc)
    _audit(request, "order.change", order)
    return web.json_response(order)


@routes.post("/api/orders/{accession}/cancel")
@requires(Permission.ORDERS_WRITE)
async def cancel(request: web.Request) -> web.Response:
    """Cancel or reject (like HL7 ORC-1 CA, RIS-3.9): every open step becomes CANCELLED; the
    optional {"reason": "..."} goes to the audit trail."""
    try:
        body = await _body(request) if request.can_read_body else {}
        reason = _text(body, "reason")
    except DomainError as exc:
        return domain_error(exc)
    return await _move(request, Status.CANCELLED, {"reason": reason} if reason else {})


@routes.post("/api/orders/{accession}/room")
@requires(Permission.ORDERS_WRITE)
async def room(request: web.Request) -> web.Response:
    """Send the open steps to a room of the catalogue (RIS-3.6): {"room": "P12"}."""
    accession = request.match_info["accession"]
    index = keys.node(request).index
    assert index is not None
    try:
        chosen = _text(await _body(request), "room")

        def work(conn: Connection) -> dict[str, Any]:
            orders.assign_room(conn, OrderKey(accession=accession), chosen, [])
            return orders.get_order(conn, accession)

        order = await index.transaction(work)
    except DomainError as exc:
        return domain_error(exc)
    _audit(request, "order.room", order, {"room": chosen})
    return web.json_response(order)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or len(value) > 256:
        raise Invalid(f"{key} must be a string of at most 256 characters", key)
    return value.strip()


@routes.post("/api/orders/{accession}/status")
@requires(Permission.ORDERS_WRITE)
async def status(request: web.Request) -> web.Response:
    """Move every open step through the status machine, e.g. {"status": "ARRIVED"}."""
    try:
        body = await _body(request)
        new = parse_status(str(body.get("status", "")), "status")
    except DomainError as exc:
        return domain_error(exc)
    return await _move(request, new)


async def _move(request: web.Request, new: Status, detail: dict | None = None) -> web.Response:
    accession = request.match_info["accession"]
    index = keys.node(request).index
    assert index is not None
    try:

        def work(conn: Connection) -> dict[str, Any]:  # the HIS hears of it (RIS-6.2)
            workflow.record_order_status(conn, OrderKey(accession=accession), new, [])
            return orders.get_order(conn, accession)

        order = await index.transaction(work)
    except DomainError as exc:
        return domain_error(exc)
    _audit(request, "order.status", order, {"status": order["status"], **(detail or {})})
    return web.json_response(order)


@routes.get("/api/patients/{patient_id}")
@requires(Permission.ORDERS_READ)
async def get_patient(request: web.Request) -> web.Response:
    """One RIS patient (?issuer=); a merged identifier leads to the survivor."""
    patient_id, issuer = request.match_info["patient_id"], request.query.get("issuer", "")
    index = keys.node(request).index
    assert index is not None
    row = await index.reading(lambda conn: patients.find_patient(conn, patient_id, issuer))
    if row is None:
        return domain_error(NotFound(f"no patient {patient_id!r} (issuer {issuer!r})", "id"))
    return web.json_response(patients.patient_json(row))


@routes.put("/api/patients/{patient_id}")
@requires(Permission.ORDERS_WRITE)
async def put_patient(request: web.Request) -> web.Response:
    """Update demographics (like HL7 ADT^A08); fields not sent are kept."""
    patient_id = request.match_info["patient_id"]
    index = keys.node(request).index
    assert index is not None
    try:
        body = await _body(request)
        body.setdefault("issuer", request.query.get("issuer", ""))
        body.pop("id", None)
        data = patient_data(body, patient_id)

        def work(conn: Connection) -> dict[str, str]:
            row = patients.patient_by_row(conn, patients.update_patient(conn, data, []))
            return patients.patient_json(row)

        patient = await index.transaction(work)
    except DomainError as exc:
        return domain_error(exc)
    record(request, "patient.update", object=patient["id"], patient_id=patient["id"],
           detail={"fields": sorted(k for k in body if k != "issuer")})  # fmt: skip
    return web.json_response(patient)
