"""``residence_periods``: where each resident lived, over both kinds of time.

Each row is one period in one place (an area, and a housing site or private housing):
``valid_from``/``valid_to`` are effective dates (``valid_to`` NULL: open), and
``recorded_from``/``recorded_to`` say from when until when the office believed the row
(``recorded_to`` NULL: believed now). A row is never changed except to set its
``recorded_to`` once, when a later event supersedes it:

* a registration or a return opens a period: one row ``[E, open)`` recorded at ``R``;
* a move or a departure recorded at ``R`` with effective date ``E`` supersedes the open
  period ``[F, open)`` (its ``recorded_to`` becomes ``R``) and records the truncated period
  ``[F, E)`` as a new row from ``R``; a move also opens ``[E, open)`` in the new place.

A late-reported move (recorded in December, effective in March) thus leaves the old
period open as known in November and closed from March as known in December. The domain
keeps a resident's effective dates in order (no change before the last one), so only the
open period is ever closed. A truncated period may be empty (``valid_from = valid_to``,
a change the same day): it matches no date and still says when its end was recorded.

"As known at ``T`` about day ``D``" is the rows with ``recorded_from <= T < recorded_to``
and ``valid_from <= D < valid_to`` (``population_from_rows``: the definition, which scans
every period). Counting 260,000 residents that way reads every row, so each row also
carries the change it records: ``changed_on`` (the event's effective date) and ``change``
(+1 for a row that opens a period, -1 for one that closes it), and ``residence_counts``
keeps the sums of those changes per place by day and by month of each axis (the recorded
office date, the effective date). A count is then a few thousand checkpoint rows plus the
changes of at most a window of days, read through the indexes (``population``):

* effective at ``D``, as known now: the effective checkpoints up to ``D``;
* known at ``T`` (about ``T``'s office day, or any later day): the recorded checkpoints
  before ``T``'s day plus that day's rows recorded up to ``T`` (an effective date never
  lies after the day it was recorded);
* known at ``T`` about an earlier day ``D``: the above minus the changes recorded by ``T``
  that took effect after ``D`` (``changed_on`` in ``(D, T's day]``), or the effective count
  at ``D`` minus the changes recorded after ``T`` that took effect by ``D``, whichever
  window is shorter.

A resident's recorded times are taken as never going backwards: a change recorded
earlier than the one before it (two servers' clocks) counts from the earlier one's time.
Checkpoint rows are shared by every resident, so their writers take one advisory lock
(workers on other partitions would otherwise deadlock on them).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.common import OFFICE_TZ
from domain.residents import Resident
from projections.base import SqlProjection, View, event_class, handles

COUNTS_LOCK = zlib.crc32(b"liudong-residence-counts")
Place = tuple[str, UUID | None]  # area, housing site (None: private housing)


class ResidencePeriodsView(View):
    tables = ["residence_periods", "residence_counts"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS residence_periods ("
        " resident_id uuid NOT NULL,"
        " version integer NOT NULL,"  # the resident's event that recorded the row
        " area text NOT NULL,"
        " site_id uuid,"
        " valid_from date NOT NULL,"
        " valid_to date,"
        " recorded_from timestamptz NOT NULL,"
        " recorded_to timestamptz,"
        " changed_on date GENERATED ALWAYS AS (coalesce(valid_to, valid_from)) STORED,"
        " change smallint GENERATED ALWAYS AS (CASE WHEN valid_to IS NULL THEN 1 ELSE -1 END) STORED,"
        " PRIMARY KEY (resident_id, version, change),"
        " CHECK (valid_to >= valid_from), CHECK (recorded_to >= recorded_from))",
        # The one open period a resident has (none once departed): what a move closes.
        "CREATE UNIQUE INDEX IF NOT EXISTS residence_periods_open_idx ON residence_periods (resident_id)"
        " WHERE valid_to IS NULL AND recorded_to IS NULL",
        # Changes by when they were recorded, and by when they took effect.
        "CREATE INDEX IF NOT EXISTS residence_periods_recorded_idx ON residence_periods (recorded_from)"
        " INCLUDE (changed_on, change, area, site_id)",
        "CREATE INDEX IF NOT EXISTS residence_periods_changed_idx ON residence_periods (changed_on)"
        " INCLUDE (recorded_from, change, area, site_id)",
        # axis: recorded (the office date of recording) or effective; span: day or month.
        "CREATE TABLE IF NOT EXISTS residence_counts ("
        " axis text NOT NULL CHECK (axis IN ('recorded', 'effective')),"
        " span text NOT NULL CHECK (span IN ('day', 'month')),"
        " starts_on date NOT NULL,"
        " area text NOT NULL,"
        " site_id uuid,"
        " change integer NOT NULL,"
        " CONSTRAINT residence_counts_key UNIQUE NULLS NOT DISTINCT (axis, span, starts_on, area, site_id))",
    ]


class ResidencePeriodsProjection(SqlProjection):
    name = "residence_periods"
    view_class = ResidencePeriodsView

    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._open(cursor, e, (e.area, None), e.registered_on, e.recorded_at)
        self._count(cursor, e.recorded_at, e.registered_on, {(e.area, None): 1})

    @handles(event_class(Resident, "MovedIntoSite"))
    def moved_into_site(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._close(cursor, e, then=(e.area, e.site_id))

    @handles(event_class(Resident, "MovedToPrivateHousing"))
    def moved_to_private_housing(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._close(cursor, e, then=(e.area, None))

    @handles(event_class(Resident, "DepartedDistrict"))
    def departed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._close(cursor, e, then=None)

    @handles(event_class(Resident, "Returned"))
    def returned(self, cursor: Cursor[DictRow], e: Any) -> None:
        row = cursor.execute("SELECT max(recorded_from) AS last FROM residence_periods WHERE resident_id = %s",
                             (e.originator_id,)).fetchone()
        last = row["last"] if row else None
        at = max(e.recorded_at, last) if last is not None else e.recorded_at
        self._open(cursor, e, (e.area, None), e.effective_date, at)
        self._count(cursor, at, e.effective_date, {(e.area, None): 1})

    @staticmethod
    def _open(cursor: Cursor[DictRow], e: Any, place: Place, on: date, at: datetime) -> None:
        cursor.execute(
            "INSERT INTO residence_periods (resident_id, version, area, site_id, valid_from, recorded_from)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.originator_version, place[0], place[1], on, at),
        )

    def _close(self, cursor: Cursor[DictRow], e: Any, *, then: Place | None) -> None:
        """Supersede the open period, record it truncated at the event's date and, for a
        move, open the next one."""
        closed = cursor.execute(
            "UPDATE residence_periods SET recorded_to = greatest(%s, recorded_from)"
            " WHERE resident_id = %s AND valid_to IS NULL AND recorded_to IS NULL"
            " RETURNING area, site_id, valid_from, recorded_to",
            (e.recorded_at, e.originator_id),
        ).fetchone()
        if closed is None:
            raise LookupError(f"resident {e.originator_id} v{e.originator_version}: no open residence period")
        at: datetime = closed["recorded_to"]
        cursor.execute(
            "INSERT INTO residence_periods (resident_id, version, area, site_id, valid_from, valid_to, recorded_from)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.originator_version, closed["area"], closed["site_id"], closed["valid_from"],
             e.effective_date, at),
        )
        changes: dict[Place, int] = defaultdict(int)
        changes[(closed["area"], closed["site_id"])] -= 1
        if then is not None:
            self._open(cursor, e, then, e.effective_date, at)
            changes[then] += 1
        self._count(cursor, at, e.effective_date, changes)

    @staticmethod
    def _count(cursor: Cursor[DictRow], at: datetime, on: date, changes: dict[Place, int]) -> None:
        """Add the changes to the day and month checkpoints of both axes."""
        changes = {place: n for place, n in changes.items() if n}
        if not changes:
            return  # e.g. from private housing to private housing in the same area
        recorded_on = at.astimezone(OFFICE_TZ).date()
        rows = [
            (axis, span, start, area, site_id, n)
            for axis, day in (("recorded", recorded_on), ("effective", on))
            for span, start in (("day", day), ("month", day.replace(day=1)))
            for (area, site_id), n in changes.items()
        ]
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (COUNTS_LOCK,))
        cursor.execute(
            "INSERT INTO residence_counts (axis, span, starts_on, area, site_id, change)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::date[], %b::text[], %b::uuid[], %b::integer[])"
            " ON CONFLICT ON CONSTRAINT residence_counts_key"
            " DO UPDATE SET change = residence_counts.change + EXCLUDED.change",
            [list(column) for column in zip(*rows, strict=True)],
        )


# -- counting ---------------------------------------------------------------------------------
# The checkpoints as the rows define them (the bench loads rows directly, then these).
COUNTS_FROM_ROWS = (
    "INSERT INTO residence_counts (axis, span, starts_on, area, site_id, change)"
    " SELECT axis, span, starts_on, area, site_id, sum(change) FROM ("
    f"  SELECT 'recorded' AS axis, (recorded_from AT TIME ZONE '{OFFICE_TZ.key}')::date AS day, area, site_id, change"
    "  FROM residence_periods"
    "  UNION ALL SELECT 'effective', changed_on, area, site_id, change FROM residence_periods) AS c,"
    " LATERAL (VALUES ('day', day), ('month', date_trunc('month', day)::date)) AS s(span, starts_on)"
    " GROUP BY axis, span, starts_on, area, site_id"
)


@dataclass(frozen=True)
class PopulationQuery:
    """Residents per area (and per site: ``by_site``) on ``effective_at`` as known at
    ``known_at`` (None: everything recorded), within ``area`` and ``areas`` (None: all)."""

    effective_at: date
    known_at: datetime | None = None
    by_site: bool = False
    area: str | None = None
    areas: list[str] | None = None

    @classmethod
    def of(cls, *, known_at: datetime | None, effective_at: date | None, today: date, by_site: bool = False,
           area: str | None = None, areas: list[str] | None = None) -> PopulationQuery:
        """Without a date: the day ``known_at`` fell on in the office, or ``today``."""
        if effective_at is None:
            effective_at = office_day(known_at) if known_at is not None else today
        return cls(effective_at, known_at, by_site, area, areas)


def office_day(moment: datetime) -> date:
    return moment.astimezone(OFFICE_TZ).date()


def population_statement(query: PopulationQuery, today: date) -> tuple[str, dict[str, Any]]:
    """The one SQL statement that counts (``today`` only picks the shorter window)."""
    d = query.effective_at
    params: dict[str, Any] = {"d": d, "e_month": d.replace(day=1), "area": query.area, "areas": query.areas}
    place = "area, site_id" if query.by_site else "area"
    scope = "".join([" AND area = %(area)s" if query.area else "", " AND area = ANY(%(areas)s)"
                     if query.areas is not None else ""])

    def checkpoints(axis: str, days: str) -> str:
        return (f"SELECT {place}, change FROM residence_counts WHERE axis = '{axis}' AND span = 'month'"
                f" AND starts_on < %({axis[0]}_month)s{scope}"
                f" UNION ALL SELECT {place}, change FROM residence_counts WHERE axis = '{axis}' AND span = 'day'"
                f" AND starts_on >= %({axis[0]}_month)s AND {days}{scope}")

    effective = checkpoints("effective", "starts_on <= %(d)s")
    if query.known_at is None:
        parts = [effective]
    else:
        t_day = office_day(query.known_at)
        params.update(t=query.known_at, t_day=t_day, r_month=t_day.replace(day=1),
                      t_day_start=datetime.combine(t_day, time.min, tzinfo=OFFICE_TZ))
        recorded = (checkpoints("recorded", "starts_on < %(t_day)s")
                    + f" UNION ALL SELECT {place}, change FROM residence_periods"
                    f" WHERE recorded_from >= %(t_day_start)s AND recorded_from <= %(t)s{scope}")
        if d >= t_day:
            parts = [recorded]
        elif (t_day - d).days <= (today - t_day).days:
            parts = [recorded, f"SELECT {place}, -change FROM residence_periods WHERE changed_on > %(d)s"
                               f" AND changed_on <= %(t_day)s AND recorded_from <= %(t)s{scope}"]
        else:
            parts = [effective, f"SELECT {place}, -change FROM residence_periods WHERE recorded_from > %(t)s"
                                f" AND changed_on <= %(d)s{scope}"]
    sql = (f"SELECT {place}, sum(change)::integer AS residents FROM ({' UNION ALL '.join(parts)}) AS changes"
           f" GROUP BY {place} HAVING sum(change) <> 0 ORDER BY {place}")
    return sql, params


def population(conn: Connection[DictRow], query: PopulationQuery, today: date) -> list[dict[str, Any]]:
    """``[{area, site_id?, residents}]``, places with nobody left out."""
    sql, params = population_statement(query, today)
    return [dict(row) for row in conn.execute(sql, params).fetchall()]


def population_from_rows(conn: Connection[DictRow], query: PopulationQuery) -> list[dict[str, Any]]:
    """The same answer from the periods themselves: the definition, which reads every row
    (for tests and the bench's comparison, not for requests)."""
    place = "area, site_id" if query.by_site else "area"
    conditions = ["valid_from <= %(d)s", "(valid_to IS NULL OR valid_to > %(d)s)"]
    if query.known_at is None:
        conditions.append("recorded_to IS NULL")
    else:
        conditions += ["recorded_from <= %(t)s", "(recorded_to IS NULL OR recorded_to > %(t)s)"]
    if query.area:
        conditions.append("area = %(area)s")
    if query.areas is not None:
        conditions.append("area = ANY(%(areas)s)")
    rows = conn.execute(
        f"SELECT {place}, count(*)::integer AS residents FROM residence_periods WHERE {' AND '.join(conditions)}"
        f" GROUP BY {place} ORDER BY {place}",
        {"d": query.effective_at, "t": query.known_at, "area": query.area, "areas": query.areas},
    ).fetchall()
    return [dict(row) for row in rows]
