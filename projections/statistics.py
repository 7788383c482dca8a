"""``statistics``: per area and month, arrivals, departures, moves, population at
month end and turnover; disputes opened and resolved by category and the median
days to resolve. Months follow effective dates, so a late report lands in the
month it happened."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.disputes import DisputeCase
from domain.residents import Resident
from projections.base import SqlProjection, ViewRecorder, event_class, handles


class StatisticsView(ViewRecorder):
    # Version 2: residents by kind of housing (concentrated in sites, scattered in rented rooms).
    version = 2
    tables = ["stat_residents", "stat_movements", "stat_disputes", "stat_housing"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS stat_residents (resident_id uuid PRIMARY KEY, area text NOT NULL)",
        # kind: arrival / departure (the district's border), moved_in / moved_out (between
        # areas), move (any move, counted in the destination area); delta: population change.
        "CREATE TABLE IF NOT EXISTS stat_movements ("
        " id bigserial PRIMARY KEY, resident_id uuid NOT NULL, area text NOT NULL, effective_date date NOT NULL,"
        " kind text NOT NULL, delta integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS stat_movements_area_idx ON stat_movements (area, effective_date)",
        # occurred_on dates the dispute's month; days to resolve run from logging (the office's part).
        "CREATE TABLE IF NOT EXISTS stat_disputes ("
        " case_id uuid PRIMARY KEY, area text NOT NULL, category text NOT NULL, occurred_on date NOT NULL,"
        " opened_on date NOT NULL, resolved_on date)",
        # Each change of a resident's kind of housing: -1 in the old (area, kind), +1 in the new.
        "ALTER TABLE stat_residents ADD COLUMN IF NOT EXISTS housing_kind text",
        # No serial id: a row is its content, so a rebuild writes the same rows in any order.
        "CREATE TABLE IF NOT EXISTS stat_housing ("
        " area text NOT NULL, kind text NOT NULL, effective_date date NOT NULL, delta integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS stat_housing_area_idx ON stat_housing (area, effective_date)",
    ]


class StatisticsProjection(SqlProjection):
    name = "statistics"
    view_class = StatisticsView

    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO stat_residents (resident_id, area, housing_kind) VALUES (%s, %s, 'other')",
                       (e.originator_id, e.area))
        self._movement(cursor, e.originator_id, e.area, e.registered_on, "arrival", 1)
        self._housing(cursor, e.area, "other", e.registered_on, 1)

    @handles(event_class(Resident, "Returned"))
    def returned(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE stat_residents SET area = %s, housing_kind = 'other' WHERE resident_id = %s",
                       (e.area, e.originator_id))
        self._movement(cursor, e.originator_id, e.area, e.effective_date, "arrival", 1)
        self._housing(cursor, e.area, "other", e.effective_date, 1)

    @handles(event_class(Resident, "DepartedDistrict"))
    def departed(self, cursor: Cursor[DictRow], e: Any) -> None:
        area, kind = self._place_of(cursor, e.originator_id)
        self._movement(cursor, e.originator_id, area, e.effective_date, "departure", -1)
        if kind is not None:
            self._housing(cursor, area, kind, e.effective_date, -1)
        cursor.execute("UPDATE stat_residents SET housing_kind = NULL WHERE resident_id = %s", (e.originator_id,))

    @handles(event_class(Resident, "MovedIntoSite"), event_class(Resident, "MovedToPrivateHousing"))
    def moved(self, cursor: Cursor[DictRow], e: Any) -> None:
        previous, previous_kind = self._place_of(cursor, e.originator_id)
        kind = getattr(e, "housing_kind", "site")
        if previous != e.area:
            self._movement(cursor, e.originator_id, previous, e.effective_date, "moved_out", -1)
            self._movement(cursor, e.originator_id, e.area, e.effective_date, "moved_in", 1)
        if (previous, previous_kind) != (e.area, kind):
            if previous_kind is not None:
                self._housing(cursor, previous, previous_kind, e.effective_date, -1)
            self._housing(cursor, e.area, kind, e.effective_date, 1)
            cursor.execute("UPDATE stat_residents SET area = %s, housing_kind = %s WHERE resident_id = %s",
                           (e.area, kind, e.originator_id))
        self._movement(cursor, e.originator_id, e.area, e.effective_date, "move", 0)

    @handles(event_class(DisputeCase, "Logged"))
    def dispute_logged(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO stat_disputes (case_id, area, category, occurred_on, opened_on) VALUES (%s, %s, %s, %s, %s)",
            (e.originator_id, e.area, e.category, e.occurred_on, e.logged_on),
        )

    @handles(event_class(DisputeCase, "Resolved"))
    def dispute_resolved(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE stat_disputes SET resolved_on = %s WHERE case_id = %s",
                       (e.resolved_on, e.originator_id))

    @handles(event_class(DisputeCase, "Reopened"))
    def dispute_reopened(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE stat_disputes SET resolved_on = NULL WHERE case_id = %s", (e.originator_id,))

    @staticmethod
    def _place_of(cursor: Cursor[DictRow], resident_id: Any) -> tuple[str, str | None]:
        row = cursor.execute("SELECT area, housing_kind FROM stat_residents WHERE resident_id = %s",
                             (resident_id,)).fetchone()
        return (str(row["area"]), row["housing_kind"]) if row else ("", None)

    @staticmethod
    def _housing(cursor: Cursor[DictRow], area: str, kind: str, on: date, delta: int) -> None:
        cursor.execute("INSERT INTO stat_housing (area, kind, effective_date, delta) VALUES (%s, %s, %s, %s)",
                       (area, kind, on, delta))

    @staticmethod
    def _movement(cursor: Cursor[DictRow], resident_id: Any, area: str, on: date, kind: str, delta: int) -> None:
        cursor.execute(
            "INSERT INTO stat_movements (resident_id, area, effective_date, kind, delta) VALUES (%s, %s, %s, %s, %s)",
            (resident_id, area, on, kind, delta),
        )


HOUSING_KINDS = ("site", "rented", "employer_dormitory", "other")


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    result = []
    while f"{year:04d}-{month:02d}" <= last:
        result.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result


def monthly_statistics(
    conn: Connection[DictRow], *, area: str | None, from_month: str | None, to_month: str | None,
    areas: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per area and month. ``turnover_rate`` is departures (from the district
    or to another area) divided by the population at the start of the month. ``areas``
    keeps only those areas (a caller bound to them)."""
    conditions: list[str] = []
    params: list[Any] = []
    if area:
        conditions.append("area = %s")
        params.append(area)
    if areas is not None:
        conditions.append("area = ANY(%s)")
        params.append(areas)
    area_clause = " WHERE " + " AND ".join(conditions) if conditions else ""
    movements = conn.execute(
        "SELECT area, to_char(effective_date, 'YYYY-MM') AS month, kind, count(*) AS n, sum(delta) AS delta"
        " FROM stat_movements" + area_clause + " GROUP BY 1, 2, 3",
        params,
    ).fetchall()
    disputes = conn.execute(
        "SELECT area, category, to_char(occurred_on, 'YYYY-MM') AS month, count(*) AS n FROM stat_disputes"
        + area_clause + " GROUP BY 1, 2, 3",
        params,
    ).fetchall()
    housing = conn.execute(
        "SELECT area, to_char(effective_date, 'YYYY-MM') AS month, kind, sum(delta) AS delta FROM stat_housing"
        + area_clause + " GROUP BY 1, 2, 3",
        params,
    ).fetchall()
    resolved = conn.execute(
        "SELECT area, category, to_char(resolved_on, 'YYYY-MM') AS month, count(*) AS n,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY resolved_on - opened_on) AS median_days"
        " FROM stat_disputes WHERE resolved_on IS NOT NULL" + "".join(" AND " + c for c in conditions)
        + " GROUP BY 1, 2, 3",
        params,
    ).fetchall()

    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    case_counts: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in movements:
        bucket = counts[(row["area"], row["month"])]
        bucket[row["kind"]] += int(row["n"])
        bucket["delta"] += int(row["delta"])
    housing_changes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in housing:
        housing_changes[(row["area"], row["month"])][row["kind"]] += int(row["delta"])
    for row in disputes:
        case_counts[(row["area"], row["month"])].setdefault(
            row["category"], {"opened": 0, "resolved": 0, "median_days_to_resolve": None})["opened"] = int(row["n"])
    for row in resolved:
        entry = case_counts[(row["area"], row["month"])].setdefault(
            row["category"], {"opened": 0, "resolved": 0, "median_days_to_resolve": None})
        entry["resolved"] = int(row["n"])
        entry["median_days_to_resolve"] = float(row["median_days"])

    keys = set(counts) | set(case_counts) | set(housing_changes)
    if not keys:
        return []
    last = max(to_month or max(m for _, m in keys), max(m for _, m in keys))
    result = []
    for each_area in sorted({a for a, _ in keys}):
        first = min(m for a, m in keys if a == each_area)
        population = 0
        housed: dict[str, int] = {k: 0 for k in HOUSING_KINDS}
        for month in _months(first, last):
            bucket = counts.get((each_area, month), {})
            start = population
            population += bucket.get("delta", 0)
            for kind, delta in housing_changes.get((each_area, month), {}).items():
                housed[kind] = housed.get(kind, 0) + delta
            departures = bucket.get("departure", 0) + bucket.get("moved_out", 0)
            if (from_month and month < from_month) or (to_month and month > to_month):
                continue
            result.append({
                "area": each_area,
                "month": month,
                "arrivals": bucket.get("arrival", 0) + bucket.get("moved_in", 0),
                "departures": departures,
                "moves": bucket.get("move", 0),
                "population_at_month_end": population,
                "turnover_rate": round(departures / start, 4) if start else None,
                "housing_at_month_end": dict(housed),
                "concentrated": housed["site"],
                "scattered": housed["rented"],
                "elsewhere": housed["employer_dormitory"] + housed["other"],
                "concentrated_share": round(housed["site"] / population, 4) if population else None,
                "disputes": case_counts.get((each_area, month), {}),
            })
    return result
