"""``cobuilding``: pairings (结对共建) between sites and enterprises, units or schools, their
contributions, the contributions per site by kind, and beside them the government's
subsidies per site (the subsidy ledger's applications): the government's cost in numbers
(the seed's problem 3, "政府投入压力大")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.cobuilding import Pairing
from domain.money import format_money
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, decode_keyset, encode_cursor


class CobuildingView(ViewRecorder):
    tables = ["pairings", "pairing_contributions"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS pairings ("
        " pairing_id uuid PRIMARY KEY, site_id uuid NOT NULL, site_area text NOT NULL, partner_type text NOT NULL,"
        " partner_name text NOT NULL, agreed_on date NOT NULL, ended_on date,"
        " contributions integer NOT NULL DEFAULT 0, total_value numeric(15, 2) NOT NULL DEFAULT 0,"
        " version integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pairings_site_idx ON pairings (site_id)",
        "CREATE INDEX IF NOT EXISTS pairings_order_idx ON pairings (agreed_on, pairing_id)",
        "CREATE TABLE IF NOT EXISTS pairing_contributions ("
        " pairing_id uuid NOT NULL, version integer NOT NULL, site_id uuid NOT NULL, site_area text NOT NULL,"
        " kind text NOT NULL, delivered_on date NOT NULL, value_yuan numeric(15, 2),"
        " PRIMARY KEY (pairing_id, version))",
        "CREATE INDEX IF NOT EXISTS pairing_contributions_site_idx ON pairing_contributions (site_id)",
    ]


class CobuildingProjection(SqlProjection):
    name = "cobuilding"
    view_class = CobuildingView

    @handles(event_class(Pairing, "Agreed"))
    def agreed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO pairings (pairing_id, site_id, site_area, partner_type, partner_name, agreed_on, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.site_id, e.site_area, e.partner_type, e.partner_name, e.agreed_on,
             e.originator_version),
        )

    @handles(event_class(Pairing, "ContributionDelivered"))
    def delivered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO pairing_contributions (pairing_id, version, site_id, site_area, kind, delivered_on,"
            " value_yuan) SELECT pairing_id, %s, site_id, site_area, %s, %s, %s FROM pairings WHERE pairing_id = %s",
            (e.originator_version, e.kind, e.delivered_on, e.value_yuan, e.originator_id),
        )
        cursor.execute(
            "UPDATE pairings SET contributions = contributions + 1, total_value = total_value + %s, version = %s"
            " WHERE pairing_id = %s", (e.value_yuan or Decimal("0"), e.originator_version, e.originator_id))

    @handles(event_class(Pairing, "Ended"))
    def ended(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE pairings SET ended_on = %s, version = %s WHERE pairing_id = %s",
                       (e.ended_on, e.originator_version, e.originator_id))


# -- reading ------------------------------------------------------------------
def _public(row: DictRow) -> dict[str, Any]:
    return {k: format_money(v) if isinstance(v, Decimal) else v for k, v in row.items()}


@dataclass(frozen=True)
class PairingFilter:
    site_id: UUID | None = None
    active_on: date | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district


def list_pairings(conn: Connection[DictRow], flt: PairingFilter, limit: int, cursor: str | None) -> Page:
    """Pairings in the order they were agreed, with their contributions' count and total value."""
    where: list[str] = []
    params: list[Any] = []
    if flt.site_id is not None:
        where.append("site_id = %s")
        params.append(flt.site_id)
    if flt.active_on is not None:
        where.append("agreed_on <= %s AND (ended_on IS NULL OR ended_on >= %s)")
        params.extend([flt.active_on, flt.active_on])
    if flt.areas is not None:
        where.append("site_area = ANY(%s)")
        params.append(flt.areas)
    clause = " WHERE " + " AND ".join(where) if where else ""
    total_row = conn.execute(f"SELECT count(*) AS n FROM pairings{clause}", params).fetchone()
    total = int(total_row["n"]) if total_row else 0
    if cursor:
        where.append("(agreed_on, pairing_id) > (%s, %s)")
        params.extend(decode_keyset(cursor, date.fromisoformat))
        clause = " WHERE " + " AND ".join(where)
    rows = conn.execute(
        "SELECT pairing_id AS id, site_id, site_area, partner_type, partner_name, agreed_on, ended_on,"
        f" contributions, total_value, version FROM pairings{clause} ORDER BY agreed_on, pairing_id LIMIT %s",
        [*params, limit + 1]).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["agreed_on"].isoformat(), str(rows[-1]["id"])) if has_more and rows else None
    return Page(items=[_public(r) for r in rows], total=total, next_cursor=next_cursor)


def by_site(conn: Connection[DictRow], fiscal_year: int | None, site_id: UUID | None,
            areas: list[str] | None) -> list[dict[str, Any]]:
    """Per site: the government's subsidies paid and committed (for ``fiscal_year`` if
    given) beside the partners' contributions (delivered in that calendar year), their
    total value and the value per kind, in one query over this view and the subsidy ledger."""
    subsidies, contributions = ["true"], ["true"]
    sub_params: list[Any] = []
    con_params: list[Any] = []
    if fiscal_year is not None:
        subsidies.append("fiscal_year = %s")
        sub_params.append(fiscal_year)
        contributions.append("extract(year FROM delivered_on) = %s")
        con_params.append(fiscal_year)
    for where, values, column in ((subsidies, sub_params, "site_area"), (contributions, con_params, "site_area")):
        if site_id is not None:
            where.append("site_id = %s")
            values.append(site_id)
        if areas is not None:
            where.append(f"{column} = ANY(%s)")
            values.append(areas)
    rows = conn.execute(
        "WITH support AS (SELECT site_id, min(site_area) AS site_area, sum(paid) AS subsidies_paid,"
        "  sum(committed) AS subsidies_committed FROM subsidy_applications"
        f"  WHERE {' AND '.join(subsidies)} GROUP BY site_id),"
        " given AS (SELECT site_id, min(site_area) AS site_area, sum(n)::int AS contributions,"
        "  sum(v) AS contributions_value, jsonb_object_agg(kind, jsonb_build_object('count', n, 'value', v)) AS by_kind"
        "  FROM (SELECT site_id, min(site_area) AS site_area, kind, count(*) AS n, coalesce(sum(value_yuan), 0) AS v"
        f"   FROM pairing_contributions WHERE {' AND '.join(contributions)} GROUP BY site_id, kind) c GROUP BY site_id)"
        " SELECT coalesce(s.site_id, g.site_id) AS site_id, coalesce(s.site_area, g.site_area) AS site_area,"
        " o.name AS site_name, coalesce(s.subsidies_paid, 0) AS subsidies_paid,"
        " coalesce(s.subsidies_committed, 0) AS subsidies_committed, coalesce(g.contributions, 0) AS contributions,"
        " coalesce(g.contributions_value, 0) AS contributions_value, coalesce(g.by_kind, '{}'::jsonb) AS by_kind"
        " FROM support s FULL OUTER JOIN given g ON g.site_id = s.site_id"
        " LEFT JOIN site_occupancy o ON o.site_id = coalesce(s.site_id, g.site_id)"
        " ORDER BY 2, 3, 1", [*sub_params, *con_params]).fetchall()
    result = []
    for row in rows:
        shown = _public(row)
        shown["by_kind"] = {kind: {"count": int(v["count"]), "value": format_money(Decimal(str(v["value"])))}
                            for kind, v in sorted(row["by_kind"].items())}
        result.append(shown)
    return result
