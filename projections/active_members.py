"""``active_members``: the active members (骨干) of each site and area, the roles they hold,
and what happened to them by month: identified, trained, appointed, lost. The seed's
problem 5 in numbers: losses in the last twelve months, roles nobody holds any more
(succession gaps), and the monthly loss rate."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.active_members import ActiveMember, ActiveMemberRole
from domain.residents import add_months
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import BadCursor, Page, count_rows, decode_cursor, encode_cursor, place_clauses

ROLES = [role.value for role in ActiveMemberRole]


class ActiveMembersView(ViewRecorder):
    version = 1
    tables = ["active_members", "active_member_roles", "active_member_activity"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS active_members ("
        " id uuid PRIMARY KEY, resident_id uuid NOT NULL, site_id uuid, area text NOT NULL,"
        " identified_on date NOT NULL, identified_by text NOT NULL, status text NOT NULL,"
        " trainings integer NOT NULL DEFAULT 0, last_trained_on date, employer text,"
        " lost_on date, lost_reason text, version integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS active_members_site_idx ON active_members (area, site_id, status)",
        # The roles held now (ended roles and those of lost members are deleted).
        "CREATE TABLE IF NOT EXISTS active_member_roles ("
        " member_id uuid NOT NULL, role text NOT NULL, appointed_on date NOT NULL, PRIMARY KEY (member_id, role))",
        # One row per identification, training, appointment and loss, by its effective date.
        "CREATE TABLE IF NOT EXISTS active_member_activity ("
        " member_id uuid NOT NULL, version integer NOT NULL, kind text NOT NULL, on_date date NOT NULL,"
        " area text NOT NULL, site_id uuid, PRIMARY KEY (member_id, version))",
        "CREATE INDEX IF NOT EXISTS active_member_activity_month_idx ON active_member_activity (area, on_date)",
    ]


class ActiveMembersProjection(SqlProjection):
    name = "active_members"
    view_class = ActiveMembersView

    @handles(event_class(ActiveMember, "Identified"))
    def identified(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO active_members (id, resident_id, site_id, area, identified_on, identified_by, status,"
            " version) VALUES (%s, %s, %s, %s, %s, %s, 'active', %s)",
            (e.originator_id, e.resident_id, e.site_id, e.area, e.identified_on, e.actor_id, e.originator_version))
        self._activity(cursor, e, "identified", e.identified_on)

    @handles(event_class(ActiveMember, "Trained"))
    def trained(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE active_members SET trainings = trainings + 1,"
            " last_trained_on = greatest(last_trained_on, %s), version = %s WHERE id = %s",
            (e.trained_on, e.originator_version, e.originator_id))
        self._activity(cursor, e, "trained", e.trained_on)

    @handles(event_class(ActiveMember, "Appointed"))
    def appointed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO active_member_roles (member_id, role, appointed_on) VALUES (%s, %s, %s)",
                       (e.originator_id, e.role, e.appointed_on))
        self._bump(cursor, e)
        self._activity(cursor, e, "appointed", e.appointed_on)

    @handles(event_class(ActiveMember, "RoleEnded"))
    def role_ended(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("DELETE FROM active_member_roles WHERE member_id = %s AND role = %s",
                       (e.originator_id, e.role))
        self._bump(cursor, e)

    @handles(event_class(ActiveMember, "EmployerLiaisonAgreed"))
    def employer_liaison(self, cursor: Cursor[DictRow], e: Any) -> None:
        """The employer's name only; the note is sealed personal data, kept in the events."""
        cursor.execute("UPDATE active_members SET employer = %s, version = %s WHERE id = %s",
                       (e.employer, e.originator_version, e.originator_id))

    @handles(event_class(ActiveMember, "Lost"))
    def lost(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE active_members SET status = 'lost', lost_on = %s, lost_reason = %s, version = %s"
                       " WHERE id = %s", (e.lost_on, e.reason, e.originator_version, e.originator_id))
        cursor.execute("DELETE FROM active_member_roles WHERE member_id = %s", (e.originator_id,))
        self._activity(cursor, e, "lost", e.lost_on)

    @handles(event_class(ActiveMember, "PersonalDataErased"), event_class(ActiveMember, "LiaisonNotesErased"))
    def personal_data_erased(self, cursor: Cursor[DictRow], e: Any) -> None:
        """Nothing the view keeps was personal (the notes stay in the events): its version moves on,
        so a list's version is a write's If-Match still (found by a review: it went stale)."""
        self._bump(cursor, e)

    @staticmethod
    def _bump(cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE active_members SET version = %s WHERE id = %s", (e.originator_version, e.originator_id))

    @staticmethod
    def _activity(cursor: Cursor[DictRow], e: Any, kind: str, on: date) -> None:
        cursor.execute(
            "INSERT INTO active_member_activity (member_id, version, kind, on_date, area, site_id)"
            " SELECT id, %s, %s, %s, area, site_id FROM active_members WHERE id = %s",
            (e.originator_version, kind, on, e.originator_id))


def _where(site_id: UUID | None, area: str | None, areas: list[str] | None, alias: str = "m") -> tuple[str, list[Any]]:
    clauses, params = place_clauses(site_id, area, areas, alias)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# Members serving an area but no one site sort after the area's sites.
NO_SITE = "ffffffff-ffff-ffff-ffff-ffffffffffff"
MEMBER_ORDER = f"m.area, coalesce(m.site_id, '{NO_SITE}'::uuid), m.identified_on, m.id"


def list_active_members(conn: Connection[DictRow], *, site_id: UUID | None, area: str | None, status: str | None,
                        areas: list[str] | None, limit: int = 1000, cursor: str | None = None) -> Page:
    """A page of members by area, site, day identified and id (keyset: found by a review, the
    list stopped at 1,000 rows and counted only those)."""
    where, params = _where(site_id, area, areas)
    if status is not None:
        where += (" AND " if where else " WHERE ") + "m.status = %s"
        params.append(status)
    total, estimated = count_rows(conn, f"active_members m{where}", params)
    page_where, page_params = where, list(params)
    if cursor:
        try:
            last_area, last_site, last_day, last_id = decode_cursor(cursor)
            after = [last_area, UUID(last_site), date.fromisoformat(last_day), UUID(last_id)]
        except ValueError:
            raise BadCursor("cursor is not one this service issued") from None
        page_where += (" AND " if page_where else " WHERE ") + f"({MEMBER_ORDER}) > (%s, %s, %s, %s)"
        page_params += after
    rows = conn.execute(
        "SELECT m.id, m.resident_id, m.site_id, m.area, m.identified_on, m.status, m.trainings, m.last_trained_on,"
        " m.employer, m.lost_on, m.lost_reason, m.version,"
        " coalesce(array(SELECT r.role FROM active_member_roles r WHERE r.member_id = m.id ORDER BY r.role),"
        " '{}') AS roles"
        f" FROM active_members m{page_where} ORDER BY {MEMBER_ORDER} LIMIT %s",
        [*page_params, limit + 1]).fetchall()
    items = [dict(r) for r in rows[:limit]]
    following = None
    if len(rows) > limit:
        last = items[-1]
        following = encode_cursor(last["area"], str(last["site_id"] or NO_SITE), last["identified_on"].isoformat(),
                                  str(last["id"]))
    return Page(items=items, total=total, next_cursor=following, total_estimated=estimated)


def site_summaries(conn: Connection[DictRow], *, on: date, site_id: UUID | None, area: str | None,
                   areas: list[str] | None) -> list[dict[str, Any]]:
    """Per site (or, for members of an area without a site, per area): active members,
    losses in the twelve months up to ``on``, and the roles no active member holds."""
    where, params = _where(site_id, area, areas)
    rows = conn.execute(
        "SELECT m.site_id, m.area,"
        " count(*) FILTER (WHERE m.status = 'active') AS active_members,"
        " count(*) FILTER (WHERE m.lost_on > %s AND m.lost_on <= %s) AS lost_last_12_months,"
        " coalesce((SELECT array_agg(DISTINCT r.role) FROM active_member_roles r JOIN active_members a"
        "  ON a.id = r.member_id WHERE a.status = 'active' AND a.area = m.area"
        "  AND a.site_id IS NOT DISTINCT FROM m.site_id), '{}') AS roles_held"
        f" FROM active_members m{where} GROUP BY m.site_id, m.area ORDER BY m.area, m.site_id NULLS LAST",
        [add_months(on, -12), on, *params]).fetchall()
    out = []
    for row in rows:
        held = sorted(row["roles_held"])
        out.append({**dict(row), "roles_held": held, "succession_gaps": [r for r in ROLES if r not in held]})
    return out


def monthly(conn: Connection[DictRow], *, first: date, last: date, area: str | None,
            areas: list[str] | None) -> list[dict[str, Any]]:
    """Every month from ``first`` to ``last`` (first days) for every area with active
    members: identified, trained, appointed and lost in the month, active at its start,
    and the loss rate (lost in the month / active at its start; null with none active)."""
    where, params = _where(None, area, areas, alias="a")
    rows = conn.execute(
        "WITH months AS (SELECT generate_series(%s::date, %s::date, interval '1 month')::date AS month),"
        f" places AS (SELECT DISTINCT a.area FROM active_members a{where})"
        " SELECT to_char(mo.month, 'YYYY-MM') AS month, p.area,"
        " (SELECT count(*) FROM active_member_activity x WHERE x.area = p.area AND x.kind = 'identified'"
        "  AND date_trunc('month', x.on_date) = mo.month) AS identified,"
        " (SELECT count(*) FROM active_member_activity x WHERE x.area = p.area AND x.kind = 'trained'"
        "  AND date_trunc('month', x.on_date) = mo.month) AS trained,"
        " (SELECT count(*) FROM active_member_activity x WHERE x.area = p.area AND x.kind = 'appointed'"
        "  AND date_trunc('month', x.on_date) = mo.month) AS appointed,"
        " (SELECT count(*) FROM active_member_activity x WHERE x.area = p.area AND x.kind = 'lost'"
        "  AND date_trunc('month', x.on_date) = mo.month) AS lost,"
        " (SELECT count(*) FROM active_members a WHERE a.area = p.area AND a.identified_on < mo.month"
        "  AND (a.lost_on IS NULL OR a.lost_on >= mo.month)) AS active_at_start"
        " FROM months mo CROSS JOIN places p ORDER BY p.area, mo.month",
        [first, last, *params]).fetchall()
    out = []
    for row in rows:
        item = dict(row)
        start = item["active_at_start"]
        item["loss_rate"] = round(item["lost"] / start, 4) if start else None
        out.append(item)
    return out
