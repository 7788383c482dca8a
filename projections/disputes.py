"""``open_cases`` (every dispute not closed, for work queues) and ``case_details``
(every dispute with its full timeline, for lists and audits)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.common import ERASED
from domain.disputes import DisputeCase
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, count_rows, decode_keyset, encode_cursor

CASE_COLUMNS = (
    " id uuid PRIMARY KEY,"
    " category text NOT NULL,"
    " status text NOT NULL,"
    " priority text NOT NULL,"
    " assignee text,"
    " agency text,"
    " site_id uuid,"
    " area text NOT NULL,"
    " occurred_on date NOT NULL,"
    " logged_on date NOT NULL,"
    " response_due date NOT NULL,"
    " resolution_due date NOT NULL,"
    " first_assigned_on date,"
    " resolved_on date,"
    " outcome text,"
    " breaches text[] NOT NULL DEFAULT '{}',"
    " version integer NOT NULL"
)


def breach_key(e: Any) -> str:
    """How a breach is named everywhere: ``response:2026-11-26`` (as on the aggregate)."""
    return f"{e.breach}:{e.due_on.isoformat()}"


class CaseRows:
    """What both case views record the same way, in ``table``."""

    table: str

    def _insert(self, cursor: Cursor[DictRow], e: Any, extra: dict[str, Any] | None = None) -> None:
        row = {
            "id": e.originator_id, "category": e.category, "status": "logged", "priority": e.priority,
            "site_id": e.site_id, "area": e.area, "occurred_on": e.occurred_on, "logged_on": e.logged_on,
            "response_due": e.response_due, "resolution_due": e.resolution_due, "version": e.originator_version,
            **(extra or {}),
        }
        columns = ", ".join(row)
        values = ", ".join(["%s"] * len(row))
        cursor.execute(f"INSERT INTO {self.table} ({columns}) VALUES ({values})", list(row.values()))

    def _set(self, cursor: Cursor[DictRow], e: Any, **values: Any) -> None:
        values["version"] = e.originator_version
        assignments = ", ".join(f"{k} = %s" for k in values)
        cursor.execute(f"UPDATE {self.table} SET {assignments} WHERE id = %s", [*values.values(), e.originator_id])

    @handles(event_class(DisputeCase, "Logged"))
    def logged(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._insert(cursor, e)

    @handles(event_class(DisputeCase, "Assigned"))
    def assigned(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            f"UPDATE {self.table} SET assignee = %s, agency = %s, status = %s,"
            " first_assigned_on = coalesce(first_assigned_on, %s), version = %s WHERE id = %s",
            (e.assignee, e.agency, "referred" if e.agency else "assigned", e.assigned_on, e.originator_version,
             e.originator_id),
        )

    @handles(event_class(DisputeCase, "Escalated"))
    def escalated(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, status="escalated")

    @handles(event_class(DisputeCase, "Resolved"))
    def resolved(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, status="resolved", outcome=e.outcome, resolved_on=e.resolved_on)

    @handles(event_class(DisputeCase, "Closed"))
    def closed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, status="closed")

    @handles(event_class(DisputeCase, "Reopened"))
    def reopened(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            f"UPDATE {self.table} SET status = CASE WHEN agency IS NOT NULL THEN 'referred'"
            " WHEN assignee IS NOT NULL THEN 'assigned' ELSE 'logged' END,"
            " resolution_due = %s, resolved_on = NULL, outcome = NULL, version = %s WHERE id = %s",
            (e.resolution_due, e.originator_version, e.originator_id),
        )

    @handles(event_class(DisputeCase, "EscalatedForBreach"))
    def breached(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            f"UPDATE {self.table} SET breaches = array_append(breaches, %s), version = %s WHERE id = %s",
            (breach_key(e), e.originator_version, e.originator_id),
        )

    @handles(
        event_class(DisputeCase, "NoteAdded"),
        event_class(DisputeCase, "MediationHeld"),
        event_class(DisputeCase, "CommitteeDecisionRecorded"),
        event_class(DisputeCase, "PersonalDataErased"),
    )
    def recorded(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e)


class CaseDetailsView(ViewRecorder):
    """``description`` and the parties' names as the events sealed them; the residents who
    are parties by id (for the legal hold on their data while the case is open)."""

    version = 2
    tables = ["case_details"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS case_details (" + CASE_COLUMNS + ","
        " description text NOT NULL,"
        " parties jsonb NOT NULL,"
        " party_resident_ids uuid[] NOT NULL DEFAULT '{}',"
        " amount_recovered numeric(15, 2))",
        "CREATE INDEX IF NOT EXISTS case_details_parties_idx ON case_details USING gin (party_resident_ids)",
        "CREATE INDEX IF NOT EXISTS case_details_logged_idx ON case_details (logged_on, id)",
        "CREATE INDEX IF NOT EXISTS case_details_area_idx ON case_details (area, status)",
    ]


class CaseDetailsProjection(CaseRows, SqlProjection):
    name = "case_details"
    view_class = CaseDetailsView
    table = "case_details"

    @handles(event_class(DisputeCase, "Logged"))
    def logged(self, cursor: Cursor[DictRow], e: Any) -> None:
        residents = [str(p["resident_id"]) for p in e.parties if p.get("resident_id")]
        self._insert(cursor, e, {"description": e.description, "parties": json.dumps(e.parties, default=str),
                                 "party_resident_ids": residents})

    @handles(event_class(DisputeCase, "Resolved"))
    def resolved(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, status="resolved", outcome=e.outcome, resolved_on=e.resolved_on,
                  amount_recovered=e.amount_recovered)

    @handles(event_class(DisputeCase, "Reopened"))
    def reopened(self, cursor: Cursor[DictRow], e: Any) -> None:
        super().reopened(cursor, e)
        self._set(cursor, e, amount_recovered=None)

    @handles(event_class(DisputeCase, "PersonalDataErased"))
    def erased(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE case_details SET description = %s, parties = ("
            " SELECT coalesce(jsonb_agg(CASE WHEN p ? 'name' THEN jsonb_set(p, '{name}', to_jsonb(%s::text))"
            " ELSE p END), '[]') FROM jsonb_array_elements(parties) AS p), version = %s WHERE id = %s",
            (ERASED, ERASED, e.originator_version, e.originator_id),
        )


class OpenCasesView(ViewRecorder):
    tables = ["open_cases", "closed_cases"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS open_cases (" + CASE_COLUMNS + ")",
        "CREATE INDEX IF NOT EXISTS open_cases_due_idx ON open_cases (resolution_due)",
        # Where a case's row waits while it is closed, in case it is reopened.
        "CREATE TABLE IF NOT EXISTS closed_cases (LIKE open_cases INCLUDING ALL)",
    ]


class OpenCasesProjection(CaseRows, SqlProjection):
    """A case's row moves to ``closed_cases`` when it closes and back when it reopens."""

    name = "open_cases"
    view_class = OpenCasesView
    table = "open_cases"

    @handles(event_class(DisputeCase, "Closed"))
    def closed(self, cursor: Cursor[DictRow], e: Any) -> None:
        super().closed(cursor, e)
        cursor.execute("INSERT INTO closed_cases SELECT * FROM open_cases WHERE id = %s", (e.originator_id,))
        cursor.execute("DELETE FROM open_cases WHERE id = %s", (e.originator_id,))

    @handles(event_class(DisputeCase, "Reopened"))
    def reopened(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO open_cases SELECT * FROM closed_cases WHERE id = %s", (e.originator_id,))
        cursor.execute("DELETE FROM closed_cases WHERE id = %s", (e.originator_id,))
        super().reopened(cursor, e)


# -- queries -------------------------------------------------------------------

# The same rule as DisputeCase.overdue: deadlines matter only while a case is unresolved.
OVERDUE = (
    "(status NOT IN ('resolved', 'closed') AND"
    " ((first_assigned_on IS NULL AND response_due < %(today)s) OR resolution_due < %(today)s))"
)


@dataclass(frozen=True)
class CaseFilter:
    status: str | None = None
    category: str | None = None
    assignee: str | None = None
    site_id: str | None = None
    area: str | None = None
    overdue: bool | None = None
    opened_from: date | None = None
    opened_to: date | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district


CASE_FIELDS = (
    "id, category, status, priority, assignee, agency, site_id, area, occurred_on, logged_on, response_due,"
    " resolution_due, first_assigned_on, resolved_on, outcome, breaches, version"
)
VIEWS = {"case_details": CASE_FIELDS + ", amount_recovered", "open_cases": CASE_FIELDS}


def list_cases(
    conn: Connection[DictRow], flt: CaseFilter, today: date, limit: int, cursor: str | None,
    view: str = "case_details",
) -> Page:
    """Cases from ``view`` (``case_details``: every case; ``open_cases``: the work queue)."""
    columns = VIEWS[view]
    where: list[str] = []
    params: dict[str, Any] = {"today": today}
    for column in ("status", "category", "assignee", "site_id", "area"):
        value = getattr(flt, column)
        if value is not None:
            where.append(f"{column} = %({column})s")
            params[column] = value
    if flt.overdue is not None:
        where.append(OVERDUE if flt.overdue else f"NOT {OVERDUE}")
    if flt.areas is not None:
        where.append("area = ANY(%(areas)s)")
        params["areas"] = flt.areas
    if flt.opened_from is not None:
        where.append("logged_on >= %(opened_from)s")
        params["opened_from"] = flt.opened_from
    if flt.opened_to is not None:
        where.append("logged_on <= %(opened_to)s")
        params["opened_to"] = flt.opened_to
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total, estimated = count_rows(conn, f"{view}{clause}", dict(params))
    if cursor:
        last_logged, last_id = decode_keyset(cursor, date.fromisoformat)
        where.append("(logged_on, id) > (%(last_logged)s, %(last_id)s)")
        params.update(last_logged=last_logged, last_id=last_id)
        clause = " WHERE " + " AND ".join(where)
    rows = conn.execute(
        f"SELECT {columns}, {OVERDUE} AS overdue, (%(today)s - logged_on) AS age_days"
        f" FROM {view}{clause} ORDER BY logged_on, id LIMIT %(limit)s",
        {**params, "limit": limit + 1},
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(rows[-1]["logged_on"].isoformat(), str(rows[-1]["id"])) if has_more and rows else None
    )
    return Page(items=[dict(r) for r in rows], total=total, next_cursor=next_cursor, total_estimated=estimated)


def overdue_open_cases(conn: Connection[DictRow], today: date) -> list[Any]:
    """Candidates for the SLA sweep (the aggregates decide)."""
    rows = conn.execute(f"SELECT id FROM open_cases WHERE {OVERDUE}", {"today": today}).fetchall()
    return [r["id"] for r in rows]
