"""``committee_agendas``: committees, their members (with the vacancies the
committee's seat events record), and their meetings upcoming and past."""

from __future__ import annotations

import json
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.committees import ManagementCommittee
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.pages import Page, page_of
from projections.sorting import pinyin_key


class CommitteeAgendasView(ViewRecorder):
    # Version 2: vacancies come from the committee's SeatVacated/SeatResumed events, not
    # from residents' departures (which never came back after a return).
    # Version 3: action items and months without a meeting. Version 4: minutes without a quorum
    # do not take their month off the months missed (found by a review).
    version = 4
    tables = ["committees", "committee_members", "committee_meetings", "committee_actions",
              "committee_missed_months"]
    ddl = [
        "CREATE TABLE IF NOT EXISTS committees ("
        " id uuid PRIMARY KEY, name text NOT NULL, area text NOT NULL, site_id uuid,"
        " established_on date NOT NULL, version integer NOT NULL)",
        "CREATE TABLE IF NOT EXISTS committee_members ("
        " committee_id uuid NOT NULL, member_id text NOT NULL, name text NOT NULL, role text,"
        " resident_id uuid, joined_on date, status text NOT NULL DEFAULT 'active',"
        " left_on date, left_reason text, PRIMARY KEY (committee_id, member_id))",
        "CREATE INDEX IF NOT EXISTS committee_members_resident_idx ON committee_members (resident_id)",
        "CREATE TABLE IF NOT EXISTS committee_meetings ("
        " committee_id uuid NOT NULL, meeting_id text NOT NULL, scheduled_on date NOT NULL,"
        " agenda jsonb NOT NULL, held_on date, attendees jsonb, quorum boolean, decisions jsonb,"
        " PRIMARY KEY (committee_id, meeting_id))",
        "CREATE TABLE IF NOT EXISTS committee_actions ("
        " committee_id uuid NOT NULL, action_id text NOT NULL, meeting_id text NOT NULL, item_id text NOT NULL,"
        " topic text, description text NOT NULL, owner text NOT NULL, due_on date NOT NULL, done_on date,"
        " PRIMARY KEY (committee_id, action_id))",
        "CREATE TABLE IF NOT EXISTS committee_missed_months ("
        " committee_id uuid NOT NULL, month text NOT NULL, PRIMARY KEY (committee_id, month))",
    ]


class CommitteeAgendasProjection(SqlProjection):
    name = "committee_agendas"
    view_class = CommitteeAgendasView

    @handles(event_class(ManagementCommittee, "Established"))
    def established(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO committees (id, name, area, site_id, established_on, version) VALUES (%s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.name, e.area, e.site_id, e.established_on, e.originator_version),
        )
        for member in e.members:
            self._add_member(cursor, e.originator_id, member)

    @handles(event_class(ManagementCommittee, "MemberAdded"))
    def member_added(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._add_member(cursor, e.originator_id, e.member)
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "MemberRemoved"))
    def member_removed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE committee_members SET status = 'left', left_on = %s, left_reason = %s"
            " WHERE committee_id = %s AND member_id = %s",
            (e.left_on, e.reason, e.originator_id, e.member_id),
        )
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "MeetingScheduled"))
    def meeting_scheduled(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO committee_meetings (committee_id, meeting_id, scheduled_on, agenda) VALUES (%s, %s, %s, %s)",
            (e.originator_id, e.meeting_id, e.scheduled_on, json.dumps(e.agenda, default=str)),
        )
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "AgendaItemsAdded"))
    def agenda_items_added(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE committee_meetings SET agenda = agenda || %s::jsonb"
                       " WHERE committee_id = %s AND meeting_id = %s",
                       (json.dumps(e.items, default=str), e.originator_id, e.meeting_id))
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "MinutesRecorded"))
    def minutes(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE committee_meetings SET held_on = %s, attendees = %s, quorum = %s, decisions = %s"
            " WHERE committee_id = %s AND meeting_id = %s",
            (e.held_on, json.dumps(e.attendees), e.quorum, json.dumps(e.decisions, default=str), e.originator_id,
             e.meeting_id),
        )
        if e.quorum:  # a meeting without a quorum is not the month's meeting
            cursor.execute("DELETE FROM committee_missed_months WHERE committee_id = %s AND month = %s",
                           (e.originator_id, f"{e.held_on.year:04d}-{e.held_on.month:02d}"))
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "ActionAssigned"))
    def action_assigned(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "INSERT INTO committee_actions (committee_id, action_id, meeting_id, item_id, topic, description, owner,"
            " due_on) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (e.originator_id, e.action_id, e.meeting_id, e.item_id, e.topic, e.description, e.owner, e.due_on),
        )
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "ActionCompleted"))
    def action_completed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE committee_actions SET done_on = %s WHERE committee_id = %s AND action_id = %s",
                       (e.done_on, e.originator_id, e.action_id))
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "MeetingMissed"))
    def meeting_missed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("INSERT INTO committee_missed_months (committee_id, month) VALUES (%s, %s)",
                       (e.originator_id, e.month))
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "SeatVacated"))
    def seat_vacated(self, cursor: Cursor[DictRow], e: Any) -> None:
        """A member who leaves the district leaves a vacancy (the seed's lost 骨干)."""
        cursor.execute(
            "UPDATE committee_members SET status = 'vacant', left_on = %s, left_reason = %s"
            " WHERE committee_id = %s AND member_id = %s",
            (e.vacated_on, e.reason, e.originator_id, e.member_id),
        )
        self._bump(cursor, e)

    @handles(event_class(ManagementCommittee, "SeatResumed"))
    def seat_resumed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE committee_members SET status = 'active', left_on = NULL, left_reason = NULL"
            " WHERE committee_id = %s AND member_id = %s",
            (e.originator_id, e.member_id),
        )
        self._bump(cursor, e)

    @staticmethod
    def _add_member(cursor: Cursor[DictRow], committee_id: Any, member: dict[str, Any]) -> None:
        cursor.execute(
            "INSERT INTO committee_members (committee_id, member_id, name, role, resident_id, joined_on)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (committee_id, member["member_id"], member["name"], member.get("role"), member.get("resident_id"),
             member.get("joined_on")),
        )

    @staticmethod
    def _bump(cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute("UPDATE committees SET version = %s WHERE id = %s", (e.originator_version, e.originator_id))


def list_committees(conn: Connection[DictRow], area: str | None,
                    areas: list[str] | None = None, today: Any = None, site_id: Any = None) -> list[dict[str, Any]]:
    """Committees (of one housing site, with ``site_id``) with member turnover (active
    members, vacancies left by departures, leavers), months without a meeting, and action
    items open and overdue on ``today``."""
    where: list[str] = []
    params: list[Any] = [today]
    if area:
        where.append("c.area = %s")
        params.append(area)
    if site_id is not None:
        where.append("c.site_id = %s")
        params.append(site_id)
    if areas is not None:
        where.append("c.area = ANY(%s)")
        params.append(areas)
    rows = conn.execute(
        "SELECT c.id, c.name, c.area, c.site_id, c.established_on, c.version,"
        " count(*) FILTER (WHERE m.status = 'active') AS active_members,"
        " count(*) FILTER (WHERE m.status = 'vacant') AS vacancies,"
        " count(*) FILTER (WHERE m.status = 'left') AS members_left,"
        " count(*) FILTER (WHERE m.status <> 'active') AS turnover,"
        " (SELECT count(*) FROM committee_missed_months x WHERE x.committee_id = c.id) AS months_missed,"
        " (SELECT max(held_on) FROM committee_meetings g WHERE g.committee_id = c.id) AS last_meeting_on,"
        " (SELECT count(*) FROM committee_actions a WHERE a.committee_id = c.id AND a.done_on IS NULL)"
        " AS open_actions,"
        " (SELECT count(*) FROM committee_actions a WHERE a.committee_id = c.id AND a.done_on IS NULL"
        " AND a.due_on < %s) AS overdue_actions"
        " FROM committees c LEFT JOIN committee_members m ON m.committee_id = c.id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " GROUP BY c.id ORDER BY c.name, c.id",
        params,
    ).fetchall()
    return sorted((dict(r) for r in rows), key=lambda r: (pinyin_key(r["name"]), str(r["id"])))


def page_committees(conn: Connection[DictRow], area: str | None, areas: list[str] | None, today: Any,
                    limit: int, cursor: str | None) -> Page:
    """``list_committees`` a page at a time, in the same (pinyin) order; ``next`` names the
    last committee shown. A district has tens of committees, not thousands: each page sorts
    them all."""
    return page_of(list_committees(conn, area, areas, today), lambda r: (pinyin_key(r["name"]), str(r["id"])),
                   limit, cursor)


def _member(row: Any) -> dict[str, Any]:
    """A member as ``GET /committees/{id}`` gives them: a vacant seat (its holder away from the
    district) is ``departed`` since ``vacated_on``, not a member who left (found by a review: the
    agenda gave the vacancy's day and reason as ``left_on`` and ``left_reason``)."""
    member = dict(row)
    if member.get("status") == "vacant":
        member.update(departed=True, vacated_on=member.pop("left_on"), vacancy_reason=member.pop("left_reason"),
                      left_on=None, left_reason=None)
    return member


def committee_agenda(conn: Connection[DictRow], committee_id: Any) -> dict[str, Any]:
    members = conn.execute(
        "SELECT member_id, name, role, resident_id, joined_on, status, left_on, left_reason"
        " FROM committee_members WHERE committee_id = %s ORDER BY joined_on, member_id",
        (committee_id,),
    ).fetchall()
    meetings = conn.execute(
        "SELECT meeting_id, scheduled_on, agenda, held_on, attendees, quorum, decisions"
        " FROM committee_meetings WHERE committee_id = %s ORDER BY scheduled_on, meeting_id",
        (committee_id,),
    ).fetchall()
    actions = conn.execute(
        "SELECT action_id, meeting_id, item_id, topic, description, owner, due_on, done_on"
        " FROM committee_actions WHERE committee_id = %s ORDER BY due_on, action_id",
        (committee_id,),
    ).fetchall()
    missed = conn.execute("SELECT month FROM committee_missed_months WHERE committee_id = %s ORDER BY month",
                          (committee_id,)).fetchall()
    return {
        "members": [_member(m) for m in members],
        "upcoming": [dict(m) for m in meetings if m["held_on"] is None],
        "past": [dict(m) for m in meetings if m["held_on"] is not None],
        "actions": [dict(a) for a in actions],
        "months_missed": [m["month"] for m in missed],
    }
