"""``operators``: operators with the sites they run, their employees' count and their
yearly reports with the reinvestment ratio ((management + sanitation + facilities) /
income, null without income); the sanitation inspections of each site as a trend; and
the support per bed and per resident by operator type, read from the subsidy ledger's
and the site occupancy's tables.

The seed: operators "注重经济效益,轻视收益返还于社区建设" (problem 4), and "在政府扶持政策上,
不能因运作主体不同而区别对待" (equal treatment): both in numbers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.money import format_money
from domain.operators import Operator
from domain.sites import OperatorType
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, decode_keyset, encode_cursor
from projections.sorting import pinyin_key


class OperatorsView(ViewRecorder):
    # Version 2: name_sort, so the list sorts by pinyin as the sites and residents do (issue 11).
    version = 2
    tables = ["operators", "operator_sites", "operator_reports", "sanitation_inspections"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS operators ("
        " operator_id uuid PRIMARY KEY, name text NOT NULL, operator_type text NOT NULL, area text NOT NULL,"
        " employees integer NOT NULL DEFAULT 0, registered_at timestamptz NOT NULL, version integer NOT NULL,"
        " name_sort text COLLATE \"C\" NOT NULL DEFAULT '')",
        "CREATE INDEX IF NOT EXISTS operators_sort_idx ON operators (name_sort, operator_id)",
        "CREATE TABLE IF NOT EXISTS operator_sites ("
        " operator_id uuid NOT NULL, site_id uuid NOT NULL, site_area text NOT NULL, assigned_on date NOT NULL,"
        " PRIMARY KEY (operator_id, site_id))",
        "CREATE TABLE IF NOT EXISTS operator_reports ("
        " operator_id uuid NOT NULL, year integer NOT NULL,"
        " income_from_site numeric(15, 2) NOT NULL, reinvested_management numeric(15, 2) NOT NULL,"
        " reinvested_sanitation numeric(15, 2) NOT NULL, reinvested_facilities numeric(15, 2) NOT NULL,"
        " corrected boolean NOT NULL DEFAULT false, PRIMARY KEY (operator_id, year))",
        # One row per inspection: the operator's event version names it.
        "CREATE TABLE IF NOT EXISTS sanitation_inspections ("
        " operator_id uuid NOT NULL, version integer NOT NULL, site_id uuid NOT NULL, site_area text NOT NULL,"
        " inspected_on date NOT NULL, score integer NOT NULL, findings text NOT NULL,"
        " recorded_at timestamptz NOT NULL, PRIMARY KEY (operator_id, version))",
        "CREATE INDEX IF NOT EXISTS sanitation_inspections_site_idx"
        " ON sanitation_inspections (site_id, inspected_on, recorded_at)",
    ]


REPORT_COLUMNS = ("income_from_site", "reinvested_management", "reinvested_sanitation", "reinvested_facilities")


class OperatorsProjection(SqlProjection):
    name = "operators"
    view_class = OperatorsView

    @handles(event_class(Operator, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO operators (operator_id, name, operator_type, area, registered_at, version, name_sort)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.name, e.operator_type, e.area, e.recorded_at, e.originator_version,
             pinyin_key(e.name)),
        )

    @handles(event_class(Operator, "SiteAssigned"))
    def site_assigned(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO operator_sites (operator_id, site_id, site_area, assigned_on)"
                       " VALUES (%s, %s, %s, %s)", (e.originator_id, e.site_id, e.site_area, e.assigned_on))
        self._bump(cursor, e)

    @handles(event_class(Operator, "SiteReleased"))
    def site_released(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("DELETE FROM operator_sites WHERE operator_id = %s AND site_id = %s",
                       (e.originator_id, e.site_id))
        self._bump(cursor, e)

    @handles(event_class(Operator, "EmployeeLinked"))
    def employee_linked(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._bump(cursor, e, "employees = employees + 1")

    @handles(event_class(Operator, "EmployeeUnlinked"))
    def employee_unlinked(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._bump(cursor, e, "employees = employees - 1")

    @handles(event_class(Operator, "YearlyReportFiled"))
    def report_filed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO operator_reports (operator_id, year, income_from_site, reinvested_management,"
            " reinvested_sanitation, reinvested_facilities) VALUES (%s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.year, *(getattr(e, c) for c in REPORT_COLUMNS)),
        )
        self._bump(cursor, e)

    @handles(event_class(Operator, "YearlyReportCorrected"))
    def report_corrected(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE operator_reports SET income_from_site = %s, reinvested_management = %s,"
            " reinvested_sanitation = %s, reinvested_facilities = %s, corrected = true"
            " WHERE operator_id = %s AND year = %s",
            (*(getattr(e, c) for c in REPORT_COLUMNS), e.originator_id, e.year),
        )
        self._bump(cursor, e)

    @handles(event_class(Operator, "SanitationInspected"))
    def inspected(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO sanitation_inspections (operator_id, version, site_id, site_area, inspected_on, score,"
            " findings, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.originator_version, e.site_id, e.site_area, e.inspected_on, e.score, e.findings,
             e.recorded_at),
        )
        self._bump(cursor, e)

    @staticmethod
    def _bump(cursor: Cursor[DictRow], e: Any, assignments: str = "") -> None:
        cursor.execute(f"UPDATE operators SET {assignments + ', ' if assignments else ''}version = %s"
                       " WHERE operator_id = %s", (e.originator_version, e.originator_id))


# -- reading ------------------------------------------------------------------
def reinvestment_ratio(income: Decimal, reinvested: Decimal) -> str | None:
    """Reinvested over income to four places; None when there was no income."""
    return None if income == 0 else str((reinvested / income).quantize(Decimal("0.0001")))


def _report(row: DictRow) -> dict[str, Any]:
    reinvested = row["reinvested_management"] + row["reinvested_sanitation"] + row["reinvested_facilities"]
    return {"year": row["year"], **{c: format_money(row[c]) for c in REPORT_COLUMNS},
            "reinvested": format_money(reinvested), "corrected": row["corrected"],
            "reinvestment_ratio": reinvestment_ratio(row["income_from_site"], reinvested)}


@dataclass(frozen=True)
class OperatorFilter:
    area: str | None = None
    operator_type: str | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district


def list_operators(conn: Connection[DictRow], flt: OperatorFilter, limit: int, cursor: str | None) -> Page:
    """Operators by name, each with the sites it runs and its yearly reports (reinvestment ratio per year)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("area", flt.area), ("operator_type", flt.operator_type)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if flt.areas is not None:
        where.append("area = ANY(%s)")
        params.append(flt.areas)
    clause = " WHERE " + " AND ".join(where) if where else ""
    total_row = conn.execute(f"SELECT count(*) AS n FROM operators{clause}", params).fetchone()
    total = int(total_row["n"]) if total_row else 0
    if cursor:
        where.append("(name_sort, operator_id) > (%s, %s)")
        params.extend(decode_keyset(cursor))
        clause = " WHERE " + " AND ".join(where)
    rows = conn.execute(
        "SELECT operator_id AS id, name, operator_type AS type, area, employees, registered_at, version, name_sort"
        f" FROM operators{clause} ORDER BY name_sort, operator_id LIMIT %s", [*params, limit + 1]).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    ids = [r["id"] for r in rows]
    sites: dict[UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    reports: dict[UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    for site in conn.execute("SELECT operator_id, site_id, site_area, assigned_on FROM operator_sites"
                             " WHERE operator_id = ANY(%s) ORDER BY assigned_on, site_id", (ids,)).fetchall():
        sites[site["operator_id"]].append({k: site[k] for k in ("site_id", "site_area", "assigned_on")})
    for report in conn.execute("SELECT * FROM operator_reports WHERE operator_id = ANY(%s) ORDER BY year",
                               (ids,)).fetchall():
        reports[report["operator_id"]].append(_report(report))
    items = [{**{k: v for k, v in r.items() if k != "name_sort"}, "sites": sites[r["id"]],
              "reports": reports[r["id"]]} for r in rows]
    next_cursor = encode_cursor(rows[-1]["name_sort"], str(rows[-1]["id"])) if has_more and rows else None
    return Page(items=items, total=total, next_cursor=next_cursor)


def sanitation_trend(conn: Connection[DictRow], site_id: UUID, areas: list[str] | None) -> list[dict[str, Any]]:
    """A site's inspections in date order (by whichever operator ran it), each with the
    change of score from the one before (null for the first)."""
    where: list[str] = ["site_id = %s"]
    params: list[Any] = [site_id]
    if areas is not None:
        where.append("site_area = ANY(%s)")
        params.append(areas)
    rows = conn.execute(
        "SELECT operator_id, inspected_on, score, score - lag(score) OVER w AS change, findings, recorded_at"
        f" FROM sanitation_inspections WHERE {' AND '.join(where)}"
        " WINDOW w AS (ORDER BY inspected_on, recorded_at, operator_id, version)"
        " ORDER BY inspected_on, recorded_at, operator_id, version", params).fetchall()
    return [dict(r) for r in rows]


def _per(amount: Decimal, count: int) -> str | None:
    return None if not count else format_money(amount / count)


def support_by_type(conn: Connection[DictRow], fiscal_year: int | None,
                    areas: list[str] | None) -> dict[str, list[dict[str, Any]]]:
    """Subsidies paid and committed (the subsidy ledger's applications, by the operator type
    recorded on each) over the beds and residents of the open sites of that type (the site
    occupancy view), per operator type and per type and area, in one query. Every type has a
    row: a type without sites or subsidies shows zeros."""
    applications, sites = ["true"], ["NOT closed"]
    app_params: list[Any] = []
    site_params: list[Any] = []
    if fiscal_year is not None:
        applications.append("fiscal_year = %s")
        app_params.append(fiscal_year)
    if areas is not None:
        applications.append("site_area = ANY(%s)")
        app_params.append(areas)
        sites.append("area = ANY(%s)")
        site_params.append(areas)
    rows = conn.execute(
        "WITH support AS (SELECT operator_type, site_area AS area, sum(paid) AS paid, sum(committed) AS committed"
        f"  FROM subsidy_applications WHERE {' AND '.join(applications)} GROUP BY 1, 2),"
        " beds AS (SELECT operator_type, area, count(*) AS sites, sum(capacity) AS beds, sum(occupants) AS residents"
        f"  FROM site_occupancy WHERE {' AND '.join(sites)} GROUP BY 1, 2)"
        " SELECT coalesce(s.operator_type, b.operator_type) AS operator_type, coalesce(s.area, b.area) AS area,"
        " GROUPING(coalesce(s.area, b.area)) = 1 AS all_areas,"
        " coalesce(sum(b.sites), 0)::int AS sites, coalesce(sum(b.beds), 0)::int AS beds,"
        " coalesce(sum(b.residents), 0)::int AS residents,"
        " coalesce(sum(s.paid), 0) AS paid, coalesce(sum(s.committed), 0) AS committed"
        " FROM support s FULL OUTER JOIN beds b ON b.operator_type = s.operator_type AND b.area = s.area"
        " GROUP BY GROUPING SETS ((coalesce(s.operator_type, b.operator_type)),"
        "  (coalesce(s.operator_type, b.operator_type), coalesce(s.area, b.area)))"
        " ORDER BY 1, 2", [*app_params, *site_params]).fetchall()

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "paid": format_money(row["paid"]), "committed": format_money(row["committed"]),
                "paid_per_bed": _per(row["paid"], row["beds"]),
                "committed_per_bed": _per(row["committed"], row["beds"]),
                "paid_per_resident": _per(row["paid"], row["residents"]),
                "committed_per_resident": _per(row["committed"], row["residents"])}

    by_type = {r["operator_type"]: r for r in rows if r["all_areas"]}
    zero = {"sites": 0, "beds": 0, "residents": 0, "paid": Decimal("0"), "committed": Decimal("0")}
    totals = [shown({"operator_type": t.value, **{k: by_type.get(t.value, zero)[k] for k in zero}})
              for t in OperatorType]
    totals += [shown({"operator_type": t, **{k: r[k] for k in zero}}) for t, r in sorted(by_type.items())
               if t not in {o.value for o in OperatorType}]
    by_area = [shown({"operator_type": r["operator_type"], "area": r["area"], **{k: r[k] for k in zero}})
               for r in rows if not r["all_areas"]]
    return {"by_operator_type": totals, "by_area": by_area}
