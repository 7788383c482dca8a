"""The auditors' page: who read whose personal data (the access log, newest first, by user,
resident and dates), and the tamper-evident chain: how far it has come and its checkpoints.
The same readings as the API's ``/audit/access-log`` and ``/audit/checkpoints`` (auditors only),
and reading the log is logged, as it is there."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route
from api.web.core import current_page, day_or_none, uuid_or_none
from application.audit import access_log, record_access
from application.chain import chain_state, checkpoints
from domain.common import OFFICE_TZ, Role
from projections.pages import BadCursor, decode_cursor, encode_cursor

router = APIRouter()
AUDITORS = frozenset({Role.AUDITOR})
PAGE_SIZE = 50
CHECKPOINTS_SHOWN = 10


@router.get("/ui/audit")
def audit(request: Request) -> Response:
    page = current_page(request)
    page.require(AUDITORS)
    query = request.query_params
    values = {k: query.get(k, "").strip() for k in ("user", "resident", "from", "to")}
    errors: dict[str, str] = {}
    resident_id = uuid_or_none(values["resident"]) if values["resident"] else None
    if values["resident"] and resident_id is None:
        errors["resident"] = page._("A resident id, as on the resident's page")
    if len(values["user"]) > 100:
        errors["user"] = page._("At most 100 characters")
    bounds: dict[str, datetime | None] = {"from": None, "to": None}
    for name in ("from", "to"):
        day = day_or_none(values[name])
        if values[name] and day is None:
            errors[name] = page._("A date, e.g. 2026-11-01")
        elif day is not None:  # the office's day: from its first moment, to its last
            midnight = datetime.combine(day, time(), tzinfo=OFFICE_TZ)
            bounds[name] = midnight if name == "from" else midnight + timedelta(days=1, microseconds=-1)
    if bounds["from"] and bounds["to"] and bounds["from"] > bounds["to"]:
        errors["to"] = page._("The last day comes before the first")
    before_id, notice = _before(page, query.get("cursor", ""))
    rows: list[dict[str, Any]] = []
    next_id = None
    with page.services.pool.connection() as conn:
        if not errors:
            found = access_log(conn, resident_id=resident_id, user_id=values["user"] or None, since=bounds["from"],
                               until=bounds["to"], limit=PAGE_SIZE + 1, newest_first=True, before_id=before_id)
            rows, next_id = found[:PAGE_SIZE], (found[PAGE_SIZE - 1]["id"] if len(found) > PAGE_SIZE else None)
            record_access(conn, page.principal, None, read_route(request),
                          detail=f"resident_id={resident_id} user={values['user'] or None} "
                                 f"from={bounds['from']} to={bounds['to']}")
        chain = chain_state(conn)
        marks = checkpoints(conn, limit=CHECKPOINTS_SHOWN, newest_first=True)
    kept = {k: v for k, v in values.items() if v}
    for row in rows:  # what the reader asked for, without the filters left empty
        row["detail"] = " ".join(part for part in (row["detail"] or "").split() if not part.endswith("=None"))
    return page.render(
        "audit.html", status=422 if errors else 200, values=values, errors=errors, rows=rows, notice=notice,
        chain=chain,
        checkpoints=[{**m, "link": bytes(m["link"]).hex()} for m in marks],
        next_url=f"/ui/audit?{urlencode({**kept, 'cursor': encode_cursor(str(next_id))})}" if next_id else None,
        first_url=f"/ui/audit?{urlencode(kept)}" if before_id is not None else None)


def _before(page: Any, cursor: str) -> tuple[int | None, str | None]:
    """The id the page goes on below (its cursor), or None for the newest; a cursor the page did
    not issue shows the newest with a word."""
    if not cursor:
        return None, None
    try:
        (value,) = decode_cursor(cursor)
        return int(value), None
    except (BadCursor, ValueError):
        page.dropped.add("cursor")
        return None, page._("That page link is not valid (any more); here is the first page.")
