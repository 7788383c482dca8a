"""``site_occupancy``: beds, occupants and free beds per housing site."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.sites import HousingSite
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, decode_keyset, encode_cursor


class SiteOccupancyView(ViewRecorder):
    tables = ["site_occupancy"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS site_occupancy ("
        " site_id uuid PRIMARY KEY,"
        " name text NOT NULL,"
        " area text NOT NULL,"
        " address text NOT NULL,"
        " operator_type text NOT NULL,"
        " operator_name text NOT NULL,"
        " capacity integer NOT NULL,"
        " occupants integer NOT NULL DEFAULT 0,"
        " free_beds integer GENERATED ALWAYS AS (capacity - occupants) STORED,"
        " facilities text[] NOT NULL,"
        " community_committee boolean NOT NULL DEFAULT false,"
        " community_committee_established_on date,"
        " closed boolean NOT NULL DEFAULT false,"
        " version integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS site_occupancy_area_idx ON site_occupancy (area, name)",
    ]


class SiteOccupancyProjection(SqlProjection):
    name = "site_occupancy"
    view_class = SiteOccupancyView

    @handles(event_class(HousingSite, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO site_occupancy (site_id, name, area, address, operator_type, operator_name,"
            " capacity, facilities, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.originator_id,
                e.name,
                e.area,
                e.address,
                e.operator_type,
                e.operator_name,
                e.capacity,
                list(e.facilities),
                e.originator_version,
            ),
        )

    @handles(event_class(HousingSite, "CapacityChanged"))
    def capacity_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "capacity = %s", e.capacity)

    @handles(event_class(HousingSite, "FacilitiesChanged"))
    def facilities_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "facilities = %s", list(e.facilities))

    @handles(event_class(HousingSite, "CommunityCommitteeEstablished"))
    def committee(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "community_committee = true, community_committee_established_on = %s", e.established_on)

    @handles(event_class(HousingSite, "Closed"))
    def closed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "closed = true")

    @handles(event_class(HousingSite, "ResidentMovedIn"))
    def moved_in(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "occupants = occupants + 1")

    @handles(event_class(HousingSite, "ResidentMovedOut"))
    def moved_out(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "occupants = occupants - 1")

    @staticmethod
    def _set(cursor: Cursor[DictRow], e: Any, assignments: str, *values: Any) -> None:
        cursor.execute(
            f"UPDATE site_occupancy SET {assignments}, version = %s WHERE site_id = %s",
            (*values, e.originator_version, e.originator_id),
        )


@dataclass(frozen=True)
class SiteFilter:
    area: str | None = None
    operator_type: str | None = None
    has_free_beds: bool | None = None
    closed: bool | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district


COLUMNS = (
    "site_id AS id, name, area, address, operator_type, operator_name, capacity, occupants, free_beds,"
    " facilities, community_committee, community_committee_established_on, closed, version"
)


def list_sites(conn: Connection[DictRow], flt: SiteFilter, limit: int, cursor: str | None) -> Page:
    where: list[str] = []
    params: list[Any] = []
    if flt.area:
        where.append("area = %s")
        params.append(flt.area)
    if flt.operator_type:
        where.append("operator_type = %s")
        params.append(flt.operator_type)
    if flt.has_free_beds is not None:
        where.append("free_beds > 0" if flt.has_free_beds else "free_beds <= 0")
    if flt.closed is not None:
        where.append("closed = %s")
        params.append(flt.closed)
    if flt.areas is not None:
        where.append("area = ANY(%s)")
        params.append(flt.areas)
    total_row = conn.execute(
        "SELECT count(*) AS n FROM site_occupancy" + (" WHERE " + " AND ".join(where) if where else ""), params
    ).fetchone()
    total = int(total_row["n"]) if total_row else 0
    if cursor:
        last_name, last_id = decode_keyset(cursor)
        where.append("(name, site_id) > (%s, %s)")
        params.extend([last_name, last_id])
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM site_occupancy"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY name, site_id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["name"], str(rows[-1]["id"])) if has_more and rows else None
    return Page(items=[dict(r) for r in rows], total=total, next_cursor=next_cursor)
