"""``subsidy_ledger``: what each subsidy program has committed and paid against its
budget, every application with its amounts, and the totals per site and per
operator type and fiscal year, so an auditor can compare how operators are treated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.money import format_money
from domain.subsidies import ApplicationStatus, SubsidyApplication, SubsidyProgram
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, decode_keyset, encode_cursor


class SubsidyLedgerView(ViewRecorder):
    # 2: rewards' target and target_due (a view built before is built again from the events).
    # 3: an index by submitter, for "my applications" newest first.
    # 4: each application's schedule, so that what may be paid by a day is the view's query.
    # 5: who approved each application, so a supervisor's queue leaves out what they approved.
    version = 5
    tables = ["subsidy_programs", "subsidy_applications"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS subsidy_programs ("
        " program_id uuid PRIMARY KEY,"
        " name text NOT NULL,"
        " purpose text NOT NULL,"
        " fiscal_year integer NOT NULL,"
        " modes text[] NOT NULL,"
        " budget numeric(15, 2) NOT NULL,"
        " committed numeric(15, 2) NOT NULL DEFAULT 0,"
        " paid numeric(15, 2) NOT NULL DEFAULT 0,"
        " remaining numeric(15, 2) GENERATED ALWAYS AS (budget - committed) STORED,"
        " version integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS subsidy_programs_year_idx ON subsidy_programs (fiscal_year, name)",
        # ``committed`` is what the application holds of its program's budget now:
        # its amount once it took effect, what was paid once it is revoked.
        "CREATE TABLE IF NOT EXISTS subsidy_applications ("
        " application_id uuid PRIMARY KEY,"
        " program_id uuid NOT NULL,"
        " fiscal_year integer NOT NULL,"
        " site_id uuid NOT NULL,"
        " site_area text NOT NULL,"
        " operator_type text NOT NULL,"
        " mode text NOT NULL,"
        " status text NOT NULL,"
        " amount numeric(15, 2) NOT NULL,"
        " approvals integer NOT NULL DEFAULT 0,"
        " approved_by text[] NOT NULL DEFAULT '{}',"
        " approvals_required integer NOT NULL,"
        " approved_on date,"
        " committed numeric(15, 2) NOT NULL DEFAULT 0,"
        " paid numeric(15, 2) NOT NULL DEFAULT 0,"
        " claw_back numeric(15, 2) NOT NULL DEFAULT 0,"
        " outcome_verified_on date,"
        " target text,"
        " target_due date,"
        # The instalments once approved: [{"amount": "1000.00", "due_on": "2026-12-01" | null}].
        " schedule jsonb NOT NULL DEFAULT '[]',"
        " submitted_by text NOT NULL,"
        " submitted_at timestamptz NOT NULL,"
        " version integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS subsidy_applications_program_idx ON subsidy_applications (program_id)",
        "CREATE INDEX IF NOT EXISTS subsidy_applications_site_idx ON subsidy_applications (site_id)",
        "CREATE INDEX IF NOT EXISTS subsidy_applications_order_idx"
        " ON subsidy_applications (submitted_at, application_id)",
        "CREATE INDEX IF NOT EXISTS subsidy_applications_submitter_idx"
        " ON subsidy_applications (submitted_by, submitted_at, application_id)",
        "CREATE INDEX IF NOT EXISTS subsidy_applications_target_due_idx ON subsidy_applications (target_due)"
        " WHERE status = 'approved' AND outcome_verified_on IS NULL AND target_due IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS subsidy_applications_approved_idx"
        " ON subsidy_applications (submitted_at, application_id) WHERE status = 'approved'",
    ]


class SubsidyLedgerProjection(SqlProjection):
    name = "subsidy_ledger"
    view_class = SubsidyLedgerView

    # -- programs -----------------------------------------------------------
    @handles(event_class(SubsidyProgram, "Opened"))
    def program_opened(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO subsidy_programs (program_id, name, purpose, fiscal_year, modes, budget, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.name, e.purpose, e.fiscal_year, list(e.modes), e.budget, e.originator_version),
        )

    @handles(event_class(SubsidyProgram, "BudgetCommitted"))
    def budget_committed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._program(cursor, e, "committed = committed + %s", e.amount)

    @handles(event_class(SubsidyProgram, "CommitmentReleased"))
    def commitment_released(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._program(cursor, e, "committed = committed - %s", e.amount)

    @handles(event_class(SubsidyProgram, "PaymentRecorded"))
    def program_paid(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._program(cursor, e, "paid = paid + %s", e.amount)

    @staticmethod
    def _program(cursor: Cursor[DictRow], e: Any, assignments: str, *values: Any) -> None:
        cursor.execute(
            f"UPDATE subsidy_programs SET {assignments}, version = %s WHERE program_id = %s",
            (*values, e.originator_version, e.originator_id),
        )

    # -- applications -------------------------------------------------------
    @handles(event_class(SubsidyApplication, "Submitted"))
    def submitted(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO subsidy_applications (application_id, program_id, fiscal_year, site_id, site_area,"
            " operator_type, mode, status, amount, approvals_required, submitted_by, submitted_at, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.originator_id,
                e.program_id,
                e.fiscal_year,
                e.site_id,
                e.site_area,
                e.operator_type,
                e.mode,
                ApplicationStatus.SUBMITTED.value,
                e.amount,
                e.approvals_required,
                e.actor_id,
                e.recorded_at,
                e.originator_version,
            ),
        )

    @handles(event_class(SubsidyApplication, "ApprovalGiven"))
    def approval_given(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._application(cursor, e, "approvals = approvals + 1, approved_by = array_append(approved_by, %s)",
                          e.actor_id)

    @handles(event_class(SubsidyApplication, "PaymentScheduled"))
    def payment_scheduled(self, cursor: Cursor[DictRow], e: Any) -> None:
        # (The projector's decoding leaves dates nested in a list as their ISO text.)
        schedule = [{"amount": format_money(Decimal(i["amount"])),
                     "due_on": None if i["due_on"] is None else str(i["due_on"])} for i in e.instalments]
        self._application(cursor, e, "status = %s, approved_on = %s, committed = amount, target = %s,"
                          " target_due = %s, schedule = %s", ApplicationStatus.APPROVED.value, e.approved_on,
                          getattr(e, "target", None), getattr(e, "target_due", None), Jsonb(schedule))

    @handles(event_class(SubsidyApplication, "RewardLapsed"))
    def reward_lapsed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._application(cursor, e, "status = %s, committed = committed - %s", ApplicationStatus.LAPSED.value,
                          e.released)

    @handles(event_class(SubsidyApplication, "Rejected"))
    def rejected(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._application(cursor, e, "status = %s", ApplicationStatus.REJECTED.value)

    @handles(event_class(SubsidyApplication, "PaymentRecorded"))
    def application_paid(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._application(
            cursor, e, "paid = paid + %s, status = CASE WHEN paid + %s = amount THEN %s ELSE status END",
            e.amount, e.amount, ApplicationStatus.PAID.value,
        )

    @handles(event_class(SubsidyApplication, "OutcomeVerified"))
    def outcome_verified(self, cursor: Cursor[DictRow], e: Any) -> None:
        # A reward in lieu falls due on the day its outcome was verified.
        self._application(
            cursor, e, "outcome_verified_on = %s, schedule = (SELECT coalesce(jsonb_agg(jsonb_set(i, '{due_on}',"
            " to_jsonb(%s::text)) ORDER BY n), '[]') FROM jsonb_array_elements(schedule) WITH ORDINALITY AS s(i, n))",
            e.verified_on, e.verified_on.isoformat())

    @handles(event_class(SubsidyApplication, "JustificationErased"), event_class(SubsidyApplication, "TextsErased"))
    def texts_erased(self, cursor: Cursor[DictRow], e: Any) -> None:
        # The ledger holds no justification, note or reason: the row only keeps the application's version.
        self._application(cursor, e, "status = status")

    @handles(event_class(SubsidyApplication, "Revoked"))
    def revoked(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._application(cursor, e, "status = %s, committed = committed - %s, claw_back = %s",
                          ApplicationStatus.REVOKED.value, e.released, e.claw_back)

    @staticmethod
    def _application(cursor: Cursor[DictRow], e: Any, assignments: str, *values: Any) -> None:
        cursor.execute(
            f"UPDATE subsidy_applications SET {assignments}, version = %s WHERE application_id = %s",
            (*values, e.originator_version, e.originator_id),
        )


# -- reading ------------------------------------------------------------------
MONEY_COLUMNS = frozenset({"budget", "committed", "paid", "remaining", "amount", "approved", "claw_back", "due"})


def _public(row: DictRow) -> dict[str, Any]:
    """A row as the API shows it: money as strings with two decimals."""
    return {k: format_money(v) if k in MONEY_COLUMNS and isinstance(v, Decimal) else v for k, v in row.items()}


def _filters(**equal_to: Any) -> tuple[list[str], list[Any]]:
    """``column = %s`` conditions for the given values, skipping None; the column
    names are this module's own keywords, the values are parameters."""
    given = {column: value for column, value in equal_to.items() if value is not None}
    return [f"{column} = %s" for column in given], list(given.values())


def _clause(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


def _count(conn: Connection[DictRow], table: str, where: list[str], params: list[Any]) -> int:
    row = conn.execute(f"SELECT count(*) AS n FROM {table}{_clause(where)}", params).fetchone()
    return int(row["n"]) if row else 0


def _page(rows: list[DictRow], limit: int, total: int, sort_key: Callable[[DictRow], str]) -> Page:
    shown = rows[:limit]
    next_cursor = encode_cursor(sort_key(shown[-1]), str(shown[-1]["id"])) if len(rows) > limit else None
    return Page(items=[_public(r) for r in shown], total=total, next_cursor=next_cursor)


PROGRAM_COLUMNS = "program_id AS id, name, purpose, fiscal_year, modes, budget, committed, paid, remaining, version"


def list_programs(conn: Connection[DictRow], fiscal_year: int | None, limit: int, cursor: str | None) -> Page:
    """Programs by name, with budget, committed, paid and remaining."""
    where, params = _filters(fiscal_year=fiscal_year)
    total = _count(conn, "subsidy_programs", where, params)
    if cursor:
        where.append("(name, program_id) > (%s, %s)")
        params.extend(decode_keyset(cursor))
    rows = conn.execute(
        f"SELECT {PROGRAM_COLUMNS} FROM subsidy_programs{_clause(where)} ORDER BY name, program_id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    return _page(rows, limit, total, lambda r: str(r["name"]))


@dataclass(frozen=True)
class ApplicationFilter:
    program_id: UUID | None = None
    site_id: UUID | None = None
    status: str | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district
    submitted_by: str | None = None  # the user who submitted them
    not_submitted_by: str | None = None  # leaves out this user's own (a supervisor's approval queue)
    not_approved_by: str | None = None  # leaves out those this user approved already (the same queue)
    # Approved ones with money fallen due by this day still unpaid (finance's list to pay);
    # their rows carry ``due``, what may be paid with that day as the payment date.
    payable_on: date | None = None
    newest_first: bool = False  # a cursor pages on in the order it was made for
    application_id: UUID | None = None  # this one only (a page showing a row it was refused on)


APPLICATION_COLUMNS = (
    "application_id AS id, program_id, fiscal_year, site_id, site_area, operator_type, mode, status, amount,"
    " approvals, approvals_required, approved_on, committed, paid, claw_back, outcome_verified_on, target_due,"
    " submitted_by, submitted_at, version"
)


# What of an application's schedule has fallen due by a day (the parameter), paid or not.
FALLEN_DUE = ("(SELECT coalesce(sum((i->>'amount')::numeric), 0) FROM jsonb_array_elements(schedule) AS i"
              " WHERE (i->>'due_on')::date <= %s)")


def list_applications(conn: Connection[DictRow], flt: ApplicationFilter, limit: int, cursor: str | None) -> Page:
    """Applications in the order they were submitted (or newest first)."""
    where, params = _filters(program_id=flt.program_id, site_id=flt.site_id, status=flt.status,
                             submitted_by=flt.submitted_by, application_id=flt.application_id)
    columns, column_params = APPLICATION_COLUMNS, []
    if flt.payable_on is not None:
        where.extend(["status = %s", f"{FALLEN_DUE} > paid"])
        params.extend([ApplicationStatus.APPROVED.value, flt.payable_on])
        columns, column_params = f"{APPLICATION_COLUMNS}, {FALLEN_DUE} - paid AS due", [flt.payable_on]
    if flt.areas is not None:
        where.append("site_area = ANY(%s)")
        params.append(flt.areas)
    if flt.not_submitted_by is not None:
        where.append("submitted_by <> %s")
        params.append(flt.not_submitted_by)
    if flt.not_approved_by is not None:
        where.append("NOT (%s = ANY(approved_by))")
        params.append(flt.not_approved_by)
    total = _count(conn, "subsidy_applications", where, params)
    if cursor:
        where.append(f"(submitted_at, application_id) {'<' if flt.newest_first else '>'} (%s, %s)")
        params.extend(decode_keyset(cursor, datetime.fromisoformat))
    direction = " DESC" if flt.newest_first else ""
    rows = conn.execute(
        f"SELECT {columns} FROM subsidy_applications{_clause(where)}"
        f" ORDER BY submitted_at{direction}, application_id{direction} LIMIT %s",
        [*column_params, *params, limit + 1],
    ).fetchall()
    return _page(rows, limit, total, lambda r: str(r["submitted_at"].isoformat()))


# ``approved`` counts every amount that took effect, also those revoked later;
# ``committed`` is what the applications hold of their programs' budgets now.
TOTALS = (
    "count(*) AS applications,"
    " coalesce(sum(amount) FILTER (WHERE approved_on IS NOT NULL), 0) AS approved,"
    " sum(committed) AS committed, sum(paid) AS paid, sum(claw_back) AS claw_back"
)


def ledger(conn: Connection[DictRow], fiscal_year: int | None,
           areas: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Programs with budget, committed, paid and remaining; and the applications'
    totals by operator type and by site, per fiscal year (of the given areas' sites)."""
    where, params = _filters(fiscal_year=fiscal_year)
    applications, application_params = list(where), list(params)
    if areas is not None:
        applications.append("site_area = ANY(%s)")
        application_params.append(areas)
    queries = {
        "programs": (f"SELECT {PROGRAM_COLUMNS} FROM subsidy_programs{_clause(where)}"
                     " ORDER BY fiscal_year, name, program_id", params),
        "by_operator_type": (f"SELECT fiscal_year, operator_type, {TOTALS} FROM subsidy_applications"
                             f"{_clause(applications)} GROUP BY fiscal_year, operator_type"
                             " ORDER BY fiscal_year, operator_type", application_params),
        "by_site": (f"SELECT fiscal_year, site_id, site_area, operator_type, {TOTALS}"
                    f" FROM subsidy_applications{_clause(applications)}"
                    " GROUP BY fiscal_year, site_id, site_area, operator_type ORDER BY fiscal_year, site_area, site_id",
                    application_params),
    }
    return {part: [_public(r) for r in conn.execute(sql, values).fetchall()]
            for part, (sql, values) in queries.items()}
