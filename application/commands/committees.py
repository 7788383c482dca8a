"""Use cases: management committees, their members, meetings and minutes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.committees import ManagementCommittee
from domain.common import InvalidValue, Stamp
from domain.disputes import DisputeCase
from domain.residents import ResidenceStatus, Resident
from domain.sites import HousingSite


class CommitteeCommands(OfficeApplication):
    def establish_committee(
        self, *, name: str, area: str | None, site_id: UUID | None, members: list[dict[str, Any]],
        established_on: date, stamp: Stamp, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            residents = self._member_residents(members, "members", established_on, "established_on")
            if site_id is not None:
                site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
                site.check_open()  # found by a review: a closed site took a new committee
                where = site.area
            elif area:
                where = self.place(area)
            else:
                raise InvalidValue("area", "give the site_id or the area the committee serves", rule="area_missing")
            committee = ManagementCommittee.establish(
                name=name, area=where, site_id=site_id, members=members, established_on=established_on,
                stamp=stamp,
            )
            for member_id, member in committee.members.items():
                resident = residents.get(str(member.get("resident_id")))
                if resident is not None:
                    resident.join_committee(committee_id=committee.id, member_id=member_id,
                                            joined_on=established_on, stamp=stamp)
            return committee, [committee, *residents.values()]

        return self._execute(decide, idempotency=idempotency)

    def _member_residents(self, members: list[dict[str, Any]], field_name: str, day: date,
                          day_field: str) -> dict[str, Resident]:
        """The residents among new members, by id; each must exist, live in the district (a
        departed resident cannot take a seat: ``resident_departed``), have lived here on the
        day they join (``resident_away_then``) and not be erased (``already_erased``; found
        by a review: a seat dated in an absence, and an erased member, were taken)."""
        residents: dict[str, Resident] = {}
        for n, member in enumerate(members):
            if member.get("resident_id") is not None:
                resident = self.load_in_scope(Resident, member["resident_id"],
                                              field_name=f"{field_name}.{n}.resident_id")
                resident.check_present()
                resident.check_not_erased()
                resident.check_present_on(day, day_field)
                residents[str(resident.id)] = resident
        return residents

    def _committee_command(
        self,
        committee_id: UUID,
        act: Callable[[ManagementCommittee], Sequence[Aggregate]],
        expected_version: int | None,
        idempotency: IdempotencyClaim | None,
        details: Callable[[], dict[str, Any]] | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            committee = self.load_current(ManagementCommittee, committee_id, expected_version)
            others = act(committee)
            return committee, [committee, *others]

        return self._execute(decide, idempotency=idempotency, details=details)

    def add_committee_member(
        self, committee_id: UUID, *, member: dict[str, Any], joined_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        added: dict[str, Any] = {}

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            residents = list(self._member_residents([member], "member", joined_on, "joined_on").values())
            added["member_id"] = committee.add_member(member=member, joined_on=joined_on, stamp=stamp)
            for resident in residents:
                resident.join_committee(committee_id=committee.id, member_id=added["member_id"], joined_on=joined_on,
                                        stamp=stamp)
            return residents

        return self._committee_command(committee_id, act, expected_version, idempotency, details=lambda: added)

    def remove_committee_member(
        self, committee_id: UUID, *, member_id: str, reason: str, left_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            resident_id = committee.members.get(member_id, {}).get("resident_id")
            committee.remove_member(member_id=member_id, reason=reason, left_on=left_on, stamp=stamp)
            if resident_id is None:
                return []
            resident = self.load(Resident, UUID(str(resident_id)), field_name="member_id")
            resident.leave_committee(committee_id=committee.id, left_on=left_on, stamp=stamp)
            return [resident]

        return self._committee_command(committee_id, act, expected_version, idempotency)

    def schedule_meeting(
        self, committee_id: UUID, *, scheduled_on: date, agenda: list[dict[str, Any]], stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        scheduled: dict[str, Any] = {}

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            self._check_agenda_cases(agenda, "agenda", scheduled_on)
            scheduled["meeting_id"] = committee.schedule_meeting(scheduled_on=scheduled_on, agenda=agenda,
                                                                 stamp=stamp)
            return []

        return self._committee_command(committee_id, act, expected_version, idempotency, details=lambda: scheduled)

    def add_agenda_items(
        self, committee_id: UUID, meeting_id: str, *, items: list[dict[str, Any]], stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        added: dict[str, Any] = {}

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            meeting = committee.meetings.get(meeting_id)  # an unknown one: the committee's own refusal below
            if meeting is not None:
                self._check_agenda_cases(items, "items", date.fromisoformat(meeting["scheduled_on"]))
            added["item_ids"] = committee.add_agenda_items(meeting_id=meeting_id, items=items, stamp=stamp)
            return []

        return self._committee_command(committee_id, act, expected_version, idempotency, details=lambda: added)

    def _check_agenda_cases(self, items: list[dict[str, Any]], field_name: str, scheduled_on: date) -> None:
        """Each case an agenda names exists in the acting scope and occurred by the meeting's day."""
        for n, item in enumerate(items):
            if item.get("dispute_id") is not None:
                field = f"{field_name}.{n}.dispute_id"
                case = self.load_in_scope(DisputeCase, item["dispute_id"], field_name=field)
                case.check_discussed_on(scheduled_on, field)  # the item the body names

    def reconcile_seats(self, committee: ManagementCommittee, stamp: Stamp) -> list[Resident]:
        """Bring the committee's seats in line with its members' residence, for members
        whose departure or return was recorded before seats were events (or by an import):
        a departed member's seat falls vacant, a returned member's is taken again, and the
        resident records the seat. Returns the residents changed."""
        changed: list[Resident] = []
        for member_id, member in committee.members.items():
            if member.get("resident_id") is None:
                continue
            resident = self.load(Resident, UUID(str(member["resident_id"])), field_name="members")
            joined_on = date.fromisoformat(member["joined_on"]) if member.get("joined_on") else resident.since
            if resident.status == ResidenceStatus.DEPARTED:
                # not before a meeting they attended: a departure recorded before seats were events
                # may be dated so, and the sweep must not stop at it
                attended = committee.last_attended(member_id)
                vacated_on = max(resident.since, joined_on, date.fromisoformat(attended) if attended else joined_on)
                committee.vacate_seat(member_id=member_id, vacated_on=vacated_on, reason="departed the district",
                                      stamp=stamp)
                continue
            committee.resume_seat(member_id=member_id, resumed_on=max(resident.arrived_on, joined_on), stamp=stamp)
            if str(committee.id) not in resident.committee_seats:
                resident.join_committee(committee_id=committee.id, member_id=member_id, joined_on=joined_on,
                                        stamp=stamp)
                changed.append(resident)
        return changed

    def reconcile_committee_seats(self, committee_ids: Iterable[UUID], stamp: Stamp) -> int:
        """The seat sweep: reconcile each committee's seats; returns how many committees
        changed."""
        changed = 0
        for committee_id in committee_ids:
            result = self._committee_command(committee_id, lambda c: self.reconcile_seats(c, stamp), None, None)
            changed += 1 if result.position else 0
        return changed

    def record_minutes(
        self, committee_id: UUID, *, meeting_id: str, held_on: date, attendees: list[str],
        decisions: list[dict[str, Any]], stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Minutes and every decision on a dispute are saved in one transaction."""

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            residents = self.reconcile_seats(committee, stamp)
            decided = committee.record_minutes(meeting_id=meeting_id, held_on=held_on, attendees=attendees,
                                               decisions=decisions, stamp=stamp)
            cases: dict[UUID, DisputeCase] = {}  # one copy per dispute, however many items name it
            for item in decided:
                if item.get("dispute_id") is not None:
                    case_id = UUID(str(item["dispute_id"]))
                    case = cases.setdefault(case_id, self.load_in_scope(DisputeCase, case_id, field_name="decisions"))
                    case.check_discussed_on(held_on, "held_on")
                    case.record_committee_decision(committee_id=committee.id, meeting_id=meeting_id,
                                                   decision=item["decision"], stamp=stamp)
            return [*residents, *cases.values()]

        return self._committee_command(committee_id, act, expected_version, idempotency)

    def complete_committee_action(
        self, committee_id: UUID, *, action_id: str, done_on: date, note: str | None, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            committee.complete_action(action_id=action_id, done_on=done_on, note=note, stamp=stamp)
            return []

        return self._committee_command(committee_id, act, expected_version, idempotency)

    def record_missed_meetings(self, committee_ids: Iterable[UUID], stamp: Stamp) -> int:
        """The monthly-meeting sweep: each committee records each past month without a
        meeting once (at most a year back); returns how many months were recorded."""
        found: list[str] = []

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            found[:] = committee.record_missed_months(stamp.today, stamp)
            return []

        recorded = 0
        for committee_id in committee_ids:
            self._committee_command(committee_id, act, None, None)
            recorded += len(found)
        return recorded
