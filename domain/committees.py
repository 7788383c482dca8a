"""Migrant population management committees (外来人口管理委员会): members, monthly
meetings with an agenda, and minutes that need a quorum to decide anything."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain.common import (
    ERASED,
    InvalidValue,
    RuleViolated,
    Stamp,
    UnknownPart,
    check_distinct_residents,
    check_effective_date,
)


def _numbered(items: list[dict[str, Any]], field_name: str, *, start: int) -> list[dict[str, Any]]:
    """Agenda items checked (a known topic) and numbered from ``start``; an item naming a
    dispute is about disputes unless it says otherwise."""
    for n, item in enumerate(items):
        if item.get("topic") is not None and item["topic"] not in TOPICS:
            raise InvalidValue(f"{field_name}.{n}.topic", f"unknown topic {item['topic']!r}; one of: "
                               f"{', '.join(TOPICS)}", rule="agenda_topic")
    return [{**item, "item_id": str(n), **({"topic": "disputes"} if item.get("dispute_id") is not None
                                            and not item.get("topic") else {})}
            for n, item in enumerate(items, start=start)]


def _new_id() -> str:
    return uuid4().hex[:12]


# The seed's five kinds of committee work: disputes (矛盾纠纷), public order (治安管理), rights
# (权益保障, e.g. unpaid wages), family planning (计划生育) and sanitation (环境卫生).
TOPICS = ("disputes", "public_order", "rights", "family_planning", "sanitation")
MISSED_LOOKBACK_MONTHS = 12  # a sweep looks back this far for months without a meeting


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_between(first: date, last: date) -> list[str]:
    """Each month from ``first``'s to ``last``'s, inclusive, as YYYY-MM."""
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


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
        check_distinct_residents(members, "members", rule="already_a_member")
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
        # Who sat on which day, for minutes recorded late (found by a review: attendance and the
        # quorum were judged by today's members): members who left, with the day, and each
        # member's spells away from the district [vacated_on, resumed_on or None].
        self.former: dict[str, dict[str, Any]] = {}
        self.away: dict[str, list[list[str | None]]] = {}
        self.meetings: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.months_missed: list[str] = []  # YYYY-MM recorded by the sweep without minutes since

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
        # Not before they joined, nor before a meeting they attended (found by a review).
        joined_on = self.members[member_id].get("joined_on") or self.established_on.isoformat()
        attended = self.last_attended(member_id)
        earliest, rule = ((attended, "left_before_meeting_attended") if attended > joined_on
                          else (joined_on, "left_before_joining"))
        check_effective_date(left_on, stamp, earliest=date.fromisoformat(earliest), earliest_rule=rule,
                             field_name="left_on")
        if not self.active_members() - {member_id}:  # a vacant seat sits no one (found by a review)
            # found by a review: a committee of none went on scheduling and minuting meetings
            raise RuleViolated("the last sitting member of a committee cannot leave it: add a member first",
                               rule="last_member")
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
        # Nor before a meeting they attended (found by a review: minutes showed them at a meeting
        # held after the day their seat fell vacant).
        attended = self.last_attended(member_id)
        if attended:
            check_effective_date(vacated_on, stamp, earliest=date.fromisoformat(attended),
                                 earliest_rule="departed_before_meeting_attended")
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
        self.away[member_id] = [*self.away.get(member_id, []), [vacated_on.isoformat(), None]]

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
        spells = self.away.get(member_id) or [[resumed_on.isoformat(), None]]
        self.away[member_id] = [*spells[:-1], [spells[-1][0], resumed_on.isoformat()]]

    @event("MemberRemoved")
    def _member_removed(
        self, *, member_id: str, reason: str, left_on: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """A member left the committee on left_on, for the reason given."""
        member = self.members.pop(member_id, None)
        if member is not None:
            self.former[member_id] = {**member, "left_on": left_on.isoformat()}

    def last_attended(self, member_id: str) -> str:
        """The day (ISO; "" for none) of the last meeting the member attended."""
        return max((m["minutes"]["held_on"] for m in self.meetings.values()
                    if m["minutes"] is not None and member_id in m["minutes"]["attendees"]), default="")

    def sitting_on(self, day: date) -> set[str]:
        """The members who sat on the committee on ``day``: joined by then, not yet left,
        and not away from the district that day."""
        when = day.isoformat()
        sitting = set()
        for member_id, member in [*self.members.items(), *self.former.items()]:
            joined_on = member.get("joined_on") or self.established_on.isoformat()
            if joined_on <= when < member.get("left_on", "9999-12-31") and not self._away_on(member_id, day):
                sitting.add(member_id)
        return sitting

    # -- meetings -----------------------------------------------------------
    def schedule_meeting(self, *, scheduled_on: date, agenda: list[dict[str, Any]], stamp: Stamp) -> str:
        if scheduled_on < self.established_on:
            raise RuleViolated("a meeting cannot be scheduled before the committee was established",
                               rule="meeting_before_establishment")
        if not agenda:
            raise InvalidValue("agenda", "a meeting has at least one agenda item", rule="agenda_empty")
        items = _numbered(agenda, "agenda", start=1)
        meeting_id = _new_id()
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

    def add_agenda_items(self, *, meeting_id: str, items: list[dict[str, Any]], stamp: Stamp) -> list[str]:
        """Add items (an open case, a topic) to the agenda of a meeting not yet held; returns
        their item ids. A dispute already on that agenda is not added twice."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise UnknownPart(f"no meeting {meeting_id} on committee {self.id}")
        if meeting["minutes"] is not None:
            raise RuleViolated(f"meeting {meeting_id} was held: its minutes are recorded", rule="meeting_held")
        if not items:
            raise InvalidValue("items", "add at least one agenda item", rule="agenda_empty")
        listed = {str(i["dispute_id"]) for i in meeting["agenda"] if i.get("dispute_id") is not None}
        for n, item in enumerate(items):
            if item.get("dispute_id") is not None and str(item["dispute_id"]) in listed:
                raise InvalidValue(f"items.{n}.dispute_id", f"dispute {item['dispute_id']} is on the agenda already",
                                   rule="already_on_agenda")
            if item.get("dispute_id") is not None:
                listed.add(str(item["dispute_id"]))
        added = _numbered(items, "items", start=len(meeting["agenda"]) + 1)
        self._agenda_items_added(meeting_id=meeting_id, items=added, **stamp.event_fields())
        return [item["item_id"] for item in added]

    @event("AgendaItemsAdded")
    def _agenda_items_added(self, *, meeting_id: str, items: list[dict[str, Any]], actor_id: str, actor_role: str,
                            recorded_at: datetime) -> None:
        """Items (open cases, topics) were added to the agenda of a meeting not yet held."""
        meeting = self.meetings[meeting_id]
        self.meetings[meeting_id] = {**meeting, "agenda": [*meeting["agenda"], *items],
                                     "added_items": [*meeting.get("added_items", []), *(i["item_id"] for i in items)]}

    def _away_on(self, member_id: str, day: date) -> bool:
        when = day.isoformat()
        return any(str(start) <= when and (end is None or when < end) for start, end in self.away.get(member_id, []))

    def quorum(self) -> int:
        """More than half of the members whose seats are not vacant."""
        return len(self.active_members()) // 2 + 1

    def record_minutes(
        self,
        *,
        meeting_id: str,
        held_on: date,
        attendees: list[str],
        decisions: list[dict[str, Any]],
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
        if held_on < self.established_on:  # found by a review: as a meeting is not scheduled before it
            raise RuleViolated("a meeting cannot be held before the committee was established",
                               rule="meeting_before_establishment", field="held_on",
                               earliest=self.established_on.isoformat())
        unknown = sorted(set(attendees) - set(self.members) - set(self.former))
        if unknown:
            raise InvalidValue("attendees", f"not members of this committee: {', '.join(unknown)}",
                               rule="unknown_member")
        # Judged on the day the meeting was held, not today (found by a review).
        active = self.sitting_on(held_on)
        away = sorted(m for m in set(attendees) - active if self._away_on(m, held_on))
        if away:
            raise InvalidValue("attendees", f"these members' seats were vacant on {held_on.isoformat()} (they had "
                               f"left the district): {', '.join(away)}", rule="member_departed", members=away)
        absent = sorted(set(attendees) - active)
        if absent:
            raise InvalidValue("attendees", f"these were not members of the committee on {held_on.isoformat()} "
                               f"(they joined later or had left): {', '.join(absent)}", rule="not_a_member_then",
                               members=absent)
        present = len(set(attendees))
        quorum = len(active) // 2 + 1
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
        actions: list[dict[str, Any]] = []
        for n, decision in enumerate(decisions):
            item = items.get(decision["item_id"])
            if item is None:
                raise InvalidValue("decisions", f"no agenda item {decision['item_id']}", rule="unknown_agenda_item")
            if any(d["item_id"] == decision["item_id"] for d in decisions[:n]):  # found by a review: both stored
                raise InvalidValue(f"decisions.{n}.item_id", f"agenda item {decision['item_id']} is decided twice",
                                   rule="item_decided_twice")
            decided.append({**item, "decision": decision["decision"]})
            for k, action in enumerate(decision.get("actions") or []):
                field = f"decisions.{n}.actions.{k}"
                if action["owner"] not in active or action["owner"] not in self.members:
                    raise InvalidValue(f"{field}.owner", f"{action['owner']} is not a sitting member of this "
                                       "committee", rule="action_owner_not_member")
                if action["due_on"] < held_on:
                    raise InvalidValue(f"{field}.due_on", "an action cannot be due before the meeting that set it",
                                       rule="action_due_before_meeting")
                actions.append({"action_id": f"{meeting_id}-{decision['item_id']}-{k + 1}", "meeting_id": meeting_id,
                                "assigned_on": held_on,
                                "item_id": decision["item_id"], "topic": item.get("topic"),
                                "description": action["description"], "owner": action["owner"],
                                "due_on": action["due_on"]})
        self._minutes_recorded(
            meeting_id=meeting_id, held_on=held_on, attendees=sorted(set(attendees)), quorum=has_quorum,
            members=len(active), decisions=decided, **stamp.event_fields(),
        )
        for assigned in actions:
            self._action_assigned(**assigned, **stamp.event_fields())
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
        if quorum and month_of(held_on) in self.months_missed:  # a meeting without one is not the month's
            self.months_missed = [m for m in self.months_missed if m != month_of(held_on)]

    @event("ActionAssigned")
    def _action_assigned(
        self, *, action_id: str, meeting_id: str, assigned_on: date, item_id: str, topic: str | None,
        description: str, owner: str, due_on: date, actor_id: str, actor_role: str, recorded_at: datetime,
    ) -> None:
        """A meeting's decision assigned an action to a member (the owner), due on due_on."""
        self.actions[action_id] = {"action_id": action_id, "meeting_id": meeting_id, "item_id": item_id,
                                   "topic": topic, "description": description, "owner": owner,
                                   "due_on": due_on.isoformat(), "done_on": None}

    def complete_action(self, *, action_id: str, done_on: date, note: str | None, stamp: Stamp) -> None:
        action = self.actions.get(action_id)
        if action is None:
            raise UnknownPart(f"no action {action_id} on committee {self.id}")
        if action["done_on"] is not None:
            raise RuleViolated(f"action {action_id} was done on {action['done_on']}", rule="action_done",
                               done_on=action["done_on"])
        meeting = self.meetings[action["meeting_id"]]["minutes"]
        check_effective_date(done_on, stamp, earliest=date.fromisoformat(meeting["held_on"]),
                             earliest_rule="done_before_meeting", field_name="done_on")
        self._action_completed(action_id=action_id, done_on=done_on, note=note, **stamp.event_fields())

    @event("ActionCompleted")
    def _action_completed(self, *, action_id: str, done_on: date, note: str | None, actor_id: str,
                          actor_role: str, recorded_at: datetime) -> None:
        """An action item was done on done_on."""
        self.actions[action_id] = {**self.actions[action_id], "done_on": done_on.isoformat()}

    # -- erasure ----------------------------------------------------------------
    def erase_texts(self, *, items: list[dict[str, str]], stamp: Stamp) -> None:
        """Free text of this committee's that named a resident whose personal data was erased:
        the keys that sealed it were destroyed in the same transaction. ``items``: each
        ``{"event": <event name>, "ref": <meeting, action or member id>}``."""
        if items:
            self._texts_erased(items=items, **stamp.event_fields())

    @event("TextsErased")
    def _texts_erased(self, *, items: list[dict[str, str]], actor_id: str, actor_role: str,
                      recorded_at: datetime) -> None:
        """Free text of the committee (agenda, minutes, actions) that named an erased resident reads as erased."""
        for item in items:
            kind, ref = item.get("event"), str(item.get("ref"))
            meeting = self.meetings.get(ref)
            if kind == "AgendaItemsAdded":  # ref: "<meeting id>:<its item ids>", those items only
                meeting_id, _, ids = ref.partition(":")
                added = self.meetings.get(meeting_id)
                if added is not None:
                    added["agenda"] = [{**i, "title": ERASED} if i.get("title") is not None
                                       and str(i.get("item_id")) in ids.split(",") else i for i in added["agenda"]]
            elif kind == "MeetingScheduled" and meeting is not None:  # the items it scheduled, not those added
                later = {str(i) for i in meeting.get("added_items", [])}
                meeting["agenda"] = [{**i, "title": ERASED} if i.get("title") is not None
                                     and str(i.get("item_id")) not in later else i for i in meeting["agenda"]]
            elif kind == "MinutesRecorded" and meeting is not None and meeting["minutes"] is not None:
                meeting["minutes"]["decisions"] = [
                    {**d, "decision": ERASED, **({"title": ERASED} if d.get("title") is not None else {})}
                    for d in meeting["minutes"]["decisions"]]
            elif kind == "ActionAssigned" and ref in self.actions:
                self.actions[ref] = {**self.actions[ref], "description": ERASED}
            elif kind == "SeatVacated" and ref in self.members and "vacated_reason" in self.members[ref]:
                self.members[ref] = {**self.members[ref], "vacated_reason": ERASED}

    # -- the monthly meeting --------------------------------------------------
    def months_without_meeting(self, today: date) -> list[str]:
        """Months before ``today``'s (the current one is not over), from the first full
        month after establishment and at most a year back, with no meeting held and not
        recorded as missed yet."""
        established = self.established_on
        after_establishment = (date(established.year + 1, 1, 1) if established.month == 12
                               else date(established.year, established.month + 1, 1))
        start = max(after_establishment, date(today.year - 1, today.month, 1))
        months = months_between(start, today)[:-1]
        # A meeting without a quorum is not the month's meeting (found by a review: minutes that no
        # member attended took the month off the list)
        held = {month_of(date.fromisoformat(m["minutes"]["held_on"])) for m in self.meetings.values()
                if m["minutes"] is not None and m["minutes"].get("quorum")}
        recorded = set(self.months_missed)
        return [m for m in months if m not in held and m not in recorded]

    def record_missed_months(self, today: date, stamp: Stamp) -> list[str]:
        """The sweep: record each month without a meeting once (MeetingMissed)."""
        missed = self.months_without_meeting(today)
        for month in missed:
            self._meeting_missed(month=month, **stamp.event_fields())
        return missed

    @event("MeetingMissed")
    def _meeting_missed(self, *, month: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The committee held no meeting in month (YYYY-MM); it meets monthly. Recorded once by the sweep."""
        self.months_missed = [*self.months_missed, month]
