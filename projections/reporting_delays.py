"""``reporting_delays``: how late the office records where residents live.

One row per registration, move, departure and return: the delay is the office date the
event was recorded (Asia/Shanghai) minus the date it took effect, in days. Figures are
grouped by the month of *recording*: a month's figures are final once it has passed,
whereas by effective month they would keep changing as late reports of it arrive (the
very thing an auditor looks for). The area is where the change happened: the new area
of a registration, move or return, the area left by a departure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.common import OFFICE_TZ
from domain.residents import Resident
from projections.base import SqlProjection, View, event_class, handles
from projections.pages import BadCursor, Page, decode_cursor, encode_cursor

KINDS = ("registration", "move", "departure", "return")
# Histogram buckets of the delay in days: (name, lowest, highest or None).
BUCKETS = (("same_day", 0, 0), ("days_1_to_3", 1, 3), ("days_4_to_7", 4, 7), ("days_8_to_30", 8, 30),
           ("over_30_days", 31, None))


class ReportingDelaysView(View):
    tables = ["reporting_delays"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS reporting_delays ("
        " resident_id uuid NOT NULL,"
        " version integer NOT NULL,"
        " kind text NOT NULL,"
        " area text NOT NULL,"
        " actor_id text NOT NULL,"
        " effective_date date NOT NULL,"
        " recorded_at timestamptz NOT NULL,"
        " recorded_month date NOT NULL,"  # the first day of the office month it was recorded in
        " delay_days integer NOT NULL,"
        " PRIMARY KEY (resident_id, version))",
        "CREATE INDEX IF NOT EXISTS reporting_delays_month_idx ON reporting_delays"
        " (recorded_month, area, actor_id) INCLUDE (delay_days, kind)",
    ]


class ReportingDelaysProjection(SqlProjection):
    name = "reporting_delays"
    view_class = ReportingDelaysView

    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._record(cursor, e, "registration", e.area, e.registered_on)

    @handles(event_class(Resident, "MovedIntoSite"), event_class(Resident, "MovedToPrivateHousing"))
    def moved(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._record(cursor, e, "move", e.area, e.effective_date)

    @handles(event_class(Resident, "DepartedDistrict"))
    def departed(self, cursor: Cursor[DictRow], e: Any) -> None:
        row = cursor.execute(
            "SELECT area FROM reporting_delays WHERE resident_id = %s ORDER BY version DESC LIMIT 1",
            (e.originator_id,),
        ).fetchone()
        if row is None:
            raise LookupError(f"resident {e.originator_id} v{e.originator_version}: departed before registering")
        self._record(cursor, e, "departure", row["area"], e.effective_date)

    @handles(event_class(Resident, "Returned"))
    def returned(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._record(cursor, e, "return", e.area, e.effective_date)

    @staticmethod
    def _record(cursor: Cursor[DictRow], e: Any, kind: str, area: str, effective: date) -> None:
        recorded_on = e.recorded_at.astimezone(OFFICE_TZ).date()
        cursor.execute(
            "INSERT INTO reporting_delays (resident_id, version, kind, area, actor_id, effective_date, recorded_at,"
            " recorded_month, delay_days) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.originator_version, kind, area, e.actor_id, effective, e.recorded_at,
             recorded_on.replace(day=1), (recorded_on - effective).days),
        )


@dataclass(frozen=True)
class DelayFilter:
    area: str | None = None
    month: str | None = None  # YYYY-MM, of recording
    actor: str | None = None
    kind: str | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district


def reporting_delays(conn: Connection[DictRow], flt: DelayFilter, limit: int, cursor: str | None) -> Page:
    """One item per month of recording, area and caseworker, in that order: how many
    changes were recorded, the mean, median, 90th percentile and largest delay in days,
    and how many fell in each bucket (``BUCKETS``)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("area", flt.area), ("actor_id", flt.actor), ("kind", flt.kind)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if flt.month is not None:
        where.append("recorded_month = %s")
        params.append(date.fromisoformat(f"{flt.month}-01"))
    if flt.areas is not None:
        where.append("area = ANY(%s)")
        params.append(flt.areas)
    clause = " WHERE " + " AND ".join(where) if where else ""
    total_row = conn.execute(
        "SELECT count(*) AS n FROM (SELECT DISTINCT recorded_month, area, actor_id FROM reporting_delays"
        + clause + ") AS groups", params).fetchone()
    page_where, page_params = list(where), list(params)
    if cursor:
        page_where.append("(recorded_month, area, actor_id) > (%s, %s, %s)")
        page_params.extend(_decode(cursor))
    buckets = ", ".join(
        f"count(*) FILTER (WHERE delay_days >= {low}" + (f" AND delay_days <= {high}" if high is not None else "")
        + f") AS {name}" for name, low, high in BUCKETS)
    rows = conn.execute(
        "SELECT recorded_month, area, actor_id, count(*) AS reports, avg(delay_days)::float AS mean_days,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY delay_days) AS p50_days,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY delay_days) AS p90_days,"
        f" max(delay_days) AS max_days, {buckets} FROM reporting_delays"
        + (" WHERE " + " AND ".join(page_where) if page_where else "")
        + " GROUP BY recorded_month, area, actor_id ORDER BY recorded_month, area, actor_id LIMIT %s",
        [*page_params, limit + 1],
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    items = [{
        "month": r["recorded_month"].strftime("%Y-%m"),
        "area": r["area"],
        "actor_id": r["actor_id"],
        "reports": int(r["reports"]),
        "mean_days": round(float(r["mean_days"]), 2),
        "p50_days": float(r["p50_days"]),
        "p90_days": float(r["p90_days"]),
        "max_days": int(r["max_days"]),
        "histogram": {name: int(r[name]) for name, _, _ in BUCKETS},
    } for r in rows]
    last = rows[-1] if rows else None
    next_cursor = (encode_cursor(last["recorded_month"].isoformat(), last["area"], last["actor_id"])
                   if has_more and last is not None else None)
    return Page(items=items, total=int(total_row["n"]) if total_row else 0, next_cursor=next_cursor)


def _decode(cursor: str) -> list[Any]:
    try:
        month, area, actor = decode_cursor(cursor)
        if "\x00" in area + actor:
            raise ValueError("NUL")
        return [date.fromisoformat(month), area, actor]
    except ValueError:
        raise BadCursor("cursor is not one this service issued") from None

