"""The studies page: search the index (patient name fuzzy, ID, accession, dates, modality),
newest first, a page at a time; each study opens in the viewer or on the phone page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.i18n import N_
from mekong.shared.console.render import page
from mekong.shared.db.attributes import Level
from mekong.shared.db.query import Query, QueryError
from mekong.shared.http import keys
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
PAGE_SIZE = 25
FIELDS = ("name", "patient_id", "accession", "modality", "date_from", "date_to")
RETURNED = [
    "StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "StudyDate",
    "AccessionNumber", "ModalitiesInStudy", "StudyDescription", "NumberOfStudyRelatedInstances",
]  # fmt: skip
BAD_DATE = N_("Dates are written as year-month-day.")


@dataclass(frozen=True)
class Search:
    values: dict[str, str]
    page: int

    @classmethod
    def from_query(cls, query: MultiDictProxy[str]) -> Search:
        values = {name: query.get(name, "").strip()[:64] for name in FIELDS}
        number = query.get("page", "0")
        return cls(values, int(number) if number.isdigit() and int(number) < 10_000 else 0)

    def filters(self) -> dict[str, str]:
        """DICOM query keys; ``ValueError`` for a date that is not YYYY-MM-DD."""
        v = self.values
        wanted = {
            "PatientName": v["name"],
            "PatientID": v["patient_id"],
            "AccessionNumber": v["accession"],
            "ModalitiesInStudy": v["modality"].upper(),
        }
        if v["date_from"] or v["date_to"]:
            wanted["StudyDate"] = f"{_dicom_date(v['date_from'])}-{_dicom_date(v['date_to'])}"
        return {k: value for k, value in wanted.items() if value}

    def link(self, page_number: int) -> str:
        return "/studies?" + urlencode({**self.values, "page": page_number})


@routes.get("/studies")
@requires(Permission.IMAGES_READ)
async def studies(request: web.Request) -> web.Response:
    search = Search.from_query(request.query)
    rows, more, error = [], False, ""
    try:
        rows = await _find(request, search)
        more = len(rows) > PAGE_SIZE
    except ValueError:
        error = BAD_DATE
    except QueryError as exc:
        error = str(exc)
    return page(request, "studies.html", {"search": search, "rows": rows[:PAGE_SIZE],
                                          "more": more, "error": error})  # fmt: skip


async def _find(request: web.Request, search: Search) -> list[dict]:
    filters = search.filters()
    query = Query(Level.STUDY, filters, fuzzy=True, limit=PAGE_SIZE + 1,
                  offset=search.page * PAGE_SIZE, newest_first=True)  # fmt: skip
    index = keys.node(request).index
    assert index is not None
    rows = await index.find(query, RETURNED)
    record(request, "images.query", patient_id=filters.get("PatientID", ""),
           detail={"level": "STUDY", "query": filters, "via": "console"})  # fmt: skip
    return rows


def _dicom_date(text: str) -> str:
    return dt.date.fromisoformat(text).strftime("%Y%m%d") if text else ""
