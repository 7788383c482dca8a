"""``site_occupancy``: beds, occupants and free beds per housing site."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.sites import HousingSite
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, decode_keyset, encode_cursor
from projections.sorting import pinyin_key


class SiteOccupancyView(ViewRecorder):
    # Version 2: the community's stage and the latest assessment (issue 10). Version 3:
    # name_sort, so lists sort by pinyin (issue 11). Version 4: an elected community committee is a
    # community committee too (found by a review: a site at stage community listed none).
    version = 4
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
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS stage text NOT NULL DEFAULT 'unassessed'",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS assessed_on date",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS headcount integer",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS operator_status text",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS villages text[]",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS missing_conditions text[]",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS preparation_approved_on date",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS elected_on date",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS seats integer",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS term_ended_on date",
        "ALTER TABLE site_occupancy ADD COLUMN IF NOT EXISTS name_sort text COLLATE \"C\" NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS site_occupancy_sort_idx ON site_occupancy (name_sort, site_id)",
    ]


class SiteOccupancyProjection(SqlProjection):
    name = "site_occupancy"
    view_class = SiteOccupancyView

    @handles(event_class(HousingSite, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO site_occupancy (site_id, name, area, address, operator_type, operator_name,"
            " capacity, facilities, version, name_sort) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                pinyin_key(e.name),
            ),
        )

    @handles(event_class(HousingSite, "CapacityChanged"))
    def capacity_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "capacity = %s", e.capacity)

    @handles(event_class(HousingSite, "OperatorChanged"))
    def operator_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "operator_type = %s, operator_name = %s", e.operator_type, e.operator_name)

    @handles(event_class(HousingSite, "FacilitiesChanged"))
    def facilities_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "facilities = %s", list(e.facilities))

    @handles(event_class(HousingSite, "CommunityCommitteeEstablished"))
    def committee(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "community_committee = true, community_committee_established_on = %s,"
                  " stage = 'community'", e.established_on)

    @handles(event_class(HousingSite, "SiteAssessed"))
    def assessed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "assessed_on = %s, headcount = %s, operator_status = %s, villages = %s,"
                  " missing_conditions = %s, stage = CASE WHEN stage = 'unassessed' THEN 'assessed' ELSE stage END",
                  e.assessed_on, e.headcount, e.operator_status, list(e.villages), list(e.missing_conditions))

    @handles(event_class(HousingSite, "PreparationApproved"))
    def preparation(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "preparation_approved_on = %s, stage = 'preparation'", e.approved_on)

    @handles(event_class(HousingSite, "ElectionHeld"))
    def election(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "elected_on = %s, seats = %s, term_ended_on = NULL, stage = 'community',"
                  " community_committee = true,"
                  " community_committee_established_on = coalesce(community_committee_established_on, %s)",
                  e.held_on, e.seats, e.held_on)

    @handles(event_class(HousingSite, "CommunityMembersChanged"))
    def members_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "stage = stage")

    @handles(event_class(HousingSite, "TermEnded"))
    def term_ended(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._set(cursor, e, "term_ended_on = %s, stage = 'term_ended'", e.ended_on)

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
    band: str | None = None
    operator_status: str | None = None
    stage: str | None = None
    areas: list[str] | None = None  # the caller's areas; None: the whole district


# The seed's census bands, by the latest assessed headcount, else by registered occupants.
BAND = ("(CASE WHEN coalesce(headcount, occupants) > 1000 THEN 'over_1000'"
        " WHEN coalesce(headcount, occupants) >= 500 THEN '500_to_1000' ELSE 'under_500' END)")
COLUMNS = (
    "site_id AS id, name, area, address, operator_type, operator_name, capacity, occupants, free_beds,"
    " facilities, community_committee, community_committee_established_on, closed, version,"
    f" stage, {BAND} AS band, headcount, operator_status, assessed_on, missing_conditions"
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
    if flt.band:
        where.append(f"{BAND} = %s")
        params.append(flt.band)
    if flt.operator_status:
        where.append("operator_status = %s")
        params.append(flt.operator_status)
    if flt.stage:
        where.append("stage = %s")
        params.append(flt.stage)
    if flt.areas is not None:
        where.append("area = ANY(%s)")
        params.append(flt.areas)
    total_row = conn.execute(
        "SELECT count(*) AS n FROM site_occupancy" + (" WHERE " + " AND ".join(where) if where else ""), params
    ).fetchone()
    total = int(total_row["n"]) if total_row else 0
    if cursor:
        last_name, last_id = decode_keyset(cursor)
        where.append("(name_sort, site_id) > (%s, %s)")
        params.extend([last_name, last_id])
    rows = conn.execute(
        f"SELECT {COLUMNS}, name_sort FROM site_occupancy"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY name_sort, site_id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["name_sort"], str(rows[-1]["id"])) if has_more and rows else None
    return Page(items=[{k: v for k, v in r.items() if k != "name_sort"} for r in rows], total=total,
                next_cursor=next_cursor)


def site_pipeline(conn: Connection[DictRow], today: Any, valid_days: int,
                  areas: list[str] | None = None) -> list[dict[str, Any]]:
    """Open sites by stage (成熟一个发展一个), each with what it lacks for the next step:
    an assessment, a fresh one (older than ``valid_days`` on ``today``), the conditions the
    latest lists, or an election."""
    rows = conn.execute(
        f"SELECT site_id AS id, name, area, stage, {BAND} AS band, headcount, occupants, operator_status,"
        " assessed_on, missing_conditions, preparation_approved_on, elected_on, term_ended_on"
        " FROM site_occupancy WHERE NOT closed" + (" AND area = ANY(%s)" if areas is not None else "")
        + " ORDER BY name_sort, site_id", [areas] if areas is not None else [],
    ).fetchall()
    stages: dict[str, list[dict[str, Any]]] = {s: [] for s in
                                               ("unassessed", "assessed", "preparation", "community", "term_ended")}
    for row in rows:
        site = dict(row)
        stage = site["stage"]
        if stage == "unassessed":
            lacks = ["assessment"]
        elif stage == "assessed":
            stale = (today - site["assessed_on"]).days > valid_days
            lacks = (["fresh_assessment"] if stale else []) + list(site["missing_conditions"] or [])
        elif stage in ("preparation", "term_ended"):
            lacks = ["election"]
        else:
            lacks = []
        site["lacks"] = lacks
        site["ready"] = stage == "assessed" and not lacks
        stages.setdefault(stage, []).append(site)
    return [{"stage": stage, "count": len(sites), "sites": sites} for stage, sites in stages.items()]
