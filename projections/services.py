"""``services``: the seed's "service first" in numbers. Residents' dependants and their
school placements (children of school age without a place, per site), and the services
delivered to residents per month, kind and site. Where each resident lives comes from
their own moves, so a child is counted at the site the family lives in now."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.residents import Resident
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import place_clauses

# Compulsory education (义务教育): nine years, from the year a child turns six.
SCHOOL_AGE = (6, 15)


class ServicesView(ViewRecorder):
    version = 1
    tables = ["service_residents", "service_dependants", "services_delivered"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS service_residents ("
        " resident_id uuid PRIMARY KEY, site_id uuid, area text NOT NULL, present boolean NOT NULL)",
        "CREATE TABLE IF NOT EXISTS service_dependants ("
        " resident_id uuid NOT NULL, dependant_id text NOT NULL, birth_year integer NOT NULL,"
        " relation text NOT NULL, school_status text, school text, PRIMARY KEY (resident_id, dependant_id))",
        "CREATE TABLE IF NOT EXISTS services_delivered ("
        " resident_id uuid NOT NULL, version integer NOT NULL, kind text NOT NULL, delivered_on date NOT NULL,"
        " provider text NOT NULL, site_id uuid, area text NOT NULL, PRIMARY KEY (resident_id, version))",
        "CREATE INDEX IF NOT EXISTS services_delivered_month_idx ON services_delivered (area, delivered_on)",
    ]


class ServicesProjection(SqlProjection):
    name = "services"
    view_class = ServicesView

    # -- where residents live -------------------------------------------------
    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO service_residents (resident_id, site_id, area, present)"
                       " VALUES (%s, NULL, %s, true)", (e.originator_id, e.area))

    @handles(event_class(Resident, "MovedIntoSite"))
    def moved_into_site(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE service_residents SET site_id = %s, area = %s WHERE resident_id = %s",
                       (e.site_id, e.area, e.originator_id))

    @handles(event_class(Resident, "MovedToPrivateHousing"), event_class(Resident, "Returned"))
    def moved_out_of_sites(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE service_residents SET site_id = NULL, area = %s, present = true WHERE resident_id = %s",
                       (e.area, e.originator_id))

    @handles(event_class(Resident, "DepartedDistrict"))
    def departed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE service_residents SET site_id = NULL, present = false WHERE resident_id = %s",
                       (e.originator_id,))

    # -- dependants and school places -------------------------------------------
    @handles(event_class(Resident, "DependantRecorded"))
    def dependant(self, cursor: Cursor[DictRow], e: Any) -> None:
        """No name here: it is sealed in the event, and the view needs none."""
        cursor.execute("INSERT INTO service_dependants (resident_id, dependant_id, birth_year, relation)"
                       " VALUES (%s, %s, %s, %s)", (e.originator_id, e.dependant_id, e.birth_year, e.relation))

    @handles(event_class(Resident, "SchoolPlacementRequested"))
    def school_requested(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._school(cursor, e, "requested")

    @handles(event_class(Resident, "SchoolPlaced"))
    def school_placed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._school(cursor, e, "placed")

    @handles(event_class(Resident, "SchoolPlacementRefused"))
    def school_refused(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._school(cursor, e, "refused")

    @staticmethod
    def _school(cursor: Cursor[DictRow], e: Any, status: str) -> None:
        cursor.execute("UPDATE service_dependants SET school_status = %s, school = %s"
                       " WHERE resident_id = %s AND dependant_id = %s",
                       (status, e.school, e.originator_id, e.dependant_id))

    # -- services -----------------------------------------------------------------
    @handles(event_class(Resident, "ServiceDelivered"))
    def service(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO services_delivered (resident_id, version, kind, delivered_on, provider, site_id,"
                       " area) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                       (e.originator_id, e.originator_version, e.kind, e.delivered_on, e.provider, e.site_id, e.area))


def _filters(site_id: UUID | None, area: str | None, areas: list[str] | None, alias: str) -> tuple[str, list[Any]]:
    clauses, params = place_clauses(site_id, area, areas, alias)
    return "".join(f" AND {c}" for c in clauses), params


def school_gaps(conn: Connection[DictRow], *, year: int, site_id: UUID | None, area: str | None,
                areas: list[str] | None) -> list[dict[str, Any]]:
    """Per site (residents outside sites: per area, site_id null), the children of school
    age in ``year`` (6 to 15 that year, from their birth year) living in the district
    without a school place: never requested, waiting for an answer, or refused."""
    extra, params = _filters(site_id, area, areas, "r")
    rows = conn.execute(
        "SELECT r.site_id, r.area, count(*) AS children_without_place,"
        " count(*) FILTER (WHERE d.school_status IS NULL) AS not_requested,"
        " count(*) FILTER (WHERE d.school_status = 'requested') AS requested,"
        " count(*) FILTER (WHERE d.school_status = 'refused') AS refused"
        " FROM service_dependants d JOIN service_residents r USING (resident_id)"
        " WHERE r.present AND d.relation = 'child' AND d.school_status IS DISTINCT FROM 'placed'"
        " AND %s - d.birth_year BETWEEN %s AND %s" + extra
        + " GROUP BY r.site_id, r.area ORDER BY r.area, r.site_id NULLS LAST",
        [year, *SCHOOL_AGE, *params]).fetchall()
    return [dict(r) for r in rows]


def services_by_month(conn: Connection[DictRow], *, first: date, last: date, kind: str | None,
                      site_id: UUID | None, area: str | None, areas: list[str] | None) -> list[dict[str, Any]]:
    """Services delivered per month (of the delivery date), kind, site and area, from the
    month of ``first`` to that of ``last``."""
    extra, params = _filters(site_id, area, areas, "s")
    if kind is not None:
        extra += " AND s.kind = %s"
        params.append(kind)
    rows = conn.execute(
        "SELECT to_char(date_trunc('month', s.delivered_on), 'YYYY-MM') AS month, s.kind, s.site_id, s.area,"
        " count(*) AS delivered FROM services_delivered s"
        " WHERE s.delivered_on >= date_trunc('month', %s::date) AND s.delivered_on < date_trunc('month', %s::date)"
        " + interval '1 month'" + extra
        + " GROUP BY 1, s.kind, s.site_id, s.area ORDER BY 1, s.area, s.site_id NULLS LAST, s.kind",
        [first, last, *params]).fetchall()
    return [dict(r) for r in rows]
