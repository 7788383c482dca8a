"""Migrant population management committees (外来人口管理委员会): members, monthly
meetings with an agenda, and minutes that need a quorum to decide anything."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain.common import InvalidValue, RuleViolated, Stamp, UnknownPart, check_effective_date


def _new_id() -> str:
    return uuid4().hex[:12]


class ManagementCommittee(Aggregate):
    """A committee for an area or a site. Members may be residents ("migrants
    managing migrants"); a member's ``resident_id`` links them to the register."""

    @classmethod
    def establish(
        cls,
        *,
        name: str,
        area: str,
        site_id: UUID | None,
        members: list[dict[str, Any]],
        established_on: date,
        stamp: Stamp,
    ) -> ManagementCommittee:
        check_effective_date(established_on, stamp, field_name="established_on")
        if not members:
            raise InvalidValue("members", "a committee needs at least one member", rule="committee_without_members")
        committee: ManagementCommittee = cls(
            name=name,
            area=area,
            site_id=site_id,
            members=[{**m, "member_id": _new_id(), "joined_on": established_on.isoformat()} for m in members],
            established_on=established_on,
            **stamp.event_fields(),
        )
        return committee

    @event("Established")
    def __init__(
        self,
        *,
        name: str,
        area: str,
        site_id: UUID | None,
        members: list[dict[str, Any]],
        established_on: date,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A management committee (外来人口管理委员会) was established for an area or a site."""
        self.name = name
        self.area = area
        self.site_id = site_id
        self.established_on = established_on
        self.members: dict[str, dict[str, Any]] = {m["member_id"]: dict(m) for m in members}
        self.meetings: dict[str, dict[str, Any]] = {}

    # -- members ------------------------------------------------------------
    def add_member(self, *, member: dict[str, Any], joined_on: date, stamp: Stamp) -> str:
        check_effective_date(joined_on, stamp, earliest=self.established_on,
                             earliest_rule="joined_before_establishment", field_name="joined_on")
        resident_id = member.get("resident_id")
        if resident_id is not None and any(m.get("resident_id") == resident_id for m in self.members.values()):
            raise RuleViolated("this resident is already a member", rule="already_a_member")
        member_id = _new_id()
        self._member_added(member={**member, "member_id": member_id, "joined_on": joined_on.isoformat()},
                           **stamp.event_fields())
        return member_id

    @event("MemberAdded")
    def _member_added(self, *, member: dict[str, Any], actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A member joined the committee."""
        self.members[member["member_id"]] = dict(member)

    def remove_member(self, *, member_id: str, reason: str, left_on: date, stamp: Stamp) -> None:
        if member_id not in self.members:
            raise InvalidValue("member_id", f"no member {member_id} on this committee", rule="unknown_member")
        check_effective_date(left_on, stamp, field_name="left_on")
        self._member_removed(member_id=member_id, reason=reason, left_on=left_on, **stamp.event_fields())

    # -- seats left vacant by a departure from the district ------------------
    def is_vacant(self, member_id: str) -> bool:
        return bool(self.members[member_id].get("status", "active") == "vacant")

    def active_members(self) -> set[str]:
        return {member_id for member_id in self.members if not self.is_vacant(member_id)}

    def vacate_seat(self, *, member_id: str, vacated_on: date, reason: str, stamp: Stamp) -> bool:
        """The member left the district: their seat is vacant (they stay a member, and
        the seat is theirs again if they return). Returns False if it already was."""
        if member_id not in self.members:
            raise InvalidValue("member_id", f"no member {member_id} on this committee", rule="unknown_member")
        if self.is_vacant(member_id):
            return False
        joined_on = self.members[member_id].get("joined_on")
        check_effective_date(vacated_on, stamp, earliest=date.fromisoformat(joined_on) if joined_on else None,
                             earliest_rule="departed_before_joining_committee")
        self._seat_vacated(member_id=member_id, vacated_on=vacated_on, reason=reason, **stamp.event_fields())
        return True

    @event("SeatVacated")
    def _seat_vacated(
        self, *, member_id: str, vacated_on: date, reason: str, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """A member's seat fell vacant on vacated_on because they left the district; the
        member no longer counts towards the quorum."""
        self.members[member_id] = {**self.members[member_id], "status": "vacant",
                                   "vacated_on": vacated_on.isoformat(), "vacated_reason": reason}

    def resume_seat(self, *, member_id: str, resumed_on: date, stamp: Stamp) -> bool:
        """The member came back to the district and takes their seat again. Returns
        False if the seat was not vacant."""
        if member_id not in self.members:
            raise InvalidValue("member_id", f"no member {member_id} on this committee", rule="unknown_member")
        if not self.is_vacant(member_id):
            return False
        self._seat_resumed(member_id=member_id, resumed_on=resumed_on, **stamp.event_fields())
        return True

    @event("SeatResumed")
    def _seat_resumed(
        self, *, member_id: str, resumed_on: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """A member whose seat was vacant returned to the district on resumed_on and counts
        towards the quorum again."""
        member = {k: v for k, v in self.members[member_id].items() if k not in ("vacated_on", "vacated_reason")}
        self.members[member_id] = {**member, "status": "active"}

    @event("MemberRemoved")
    def _member_removed(
        self, *, member_id: str, reason: str, left_on: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """A member left the committee on left_on, for the reason given."""
        self.members.pop(member_id, None)

    # -- meetings -----------------------------------------------------------
    def schedule_meeting(self, *, scheduled_on: date, agenda: list[dict[str, Any]], stamp: Stamp) -> str:
        if scheduled_on < self.established_on:
            raise RuleViolated("a meeting cannot be scheduled before the committee was established",
                               rule="meeting_before_establishment")
        if not agenda:
            raise InvalidValue("agenda", "a meeting has at least one agenda item", rule="agenda_empty")
        meeting_id = _new_id()
        items = [{**item, "item_id": str(n)} for n, item in enumerate(agenda, start=1)]
        self._meeting_scheduled(meeting_id=meeting_id, scheduled_on=scheduled_on, agenda=items,
                                **stamp.event_fields())
        return meeting_id

    @event("MeetingScheduled")
    def _meeting_scheduled(
        self, *, meeting_id: str, scheduled_on: date, agenda: list[dict[str, Any]], actor_id: str, actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A committee meeting was scheduled with its agenda."""
        self.meetings[meeting_id] = {"scheduled_on": scheduled_on.isoformat(), "agenda": agenda, "minutes": None}

    def quorum(self) -> int:
        """More than half of the members whose seats are not vacant."""
        return len(self.active_members()) // 2 + 1

    def record_minutes(
        self,
        *,
        meeting_id: str,
        held_on: date,
        attendees: list[str],
        decisions: list[dict[str, str]],
        stamp: Stamp,
    ) -> list[dict[str, Any]]:
        """Record a meeting's attendance and decisions; returns the decided agenda
        items (with their ``dispute_id``, if any) so the caller records them on the
        disputes in the same save."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise UnknownPart(f"no meeting {meeting_id} on committee {self.id}")
        if meeting["minutes"] is not None:
            raise RuleViolated("this meeting's minutes are already recorded", rule="minutes_recorded")
        check_effective_date(held_on, stamp, field_name="held_on")
        unknown = sorted(set(attendees) - set(self.members))
        if unknown:
            raise InvalidValue("attendees", f"not members of this committee: {', '.join(unknown)}",
                               rule="unknown_member")
        active = self.active_members()
        gone = sorted(set(attendees) - active)
        if gone:
            raise InvalidValue("attendees", f"these members' seats are vacant (they left the district): "
                               f"{', '.join(gone)}", rule="member_departed")
        present = len(set(attendees))
        quorum = self.quorum()
        has_quorum = present >= quorum
        if decisions and not has_quorum:
            raise RuleViolated(
                f"{present} of {len(active)} members attended; a quorum is {quorum}, "
                "so this meeting cannot decide anything",
                rule="no_quorum",
                present=present,
                quorum=quorum,
            )
        items = {item["item_id"]: item for item in meeting["agenda"]}
        decided: list[dict[str, Any]] = []
        for decision in decisions:
            item = items.get(decision["item_id"])
            if item is None:
                raise InvalidValue("decisions", f"no agenda item {decision['item_id']}", rule="unknown_agenda_item")
            decided.append({**item, "decision": decision["decision"]})
        self._minutes_recorded(
            meeting_id=meeting_id, held_on=held_on, attendees=sorted(set(attendees)), quorum=has_quorum,
            members=len(active), decisions=decided, **stamp.event_fields(),
        )
        return decided

    @event("MinutesRecorded")
    def _minutes_recorded(
        self,
        *,
        meeting_id: str,
        held_on: date,
        attendees: list[str],
        quorum: bool,
        members: int,
        decisions: list[dict[str, Any]],
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A meeting's minutes: who attended, whether it had a quorum, and its decisions."""
        self.meetings[meeting_id]["minutes"] = {
            "held_on": held_on.isoformat(), "attendees": attendees, "quorum": quorum, "decisions": decisions,
        }
