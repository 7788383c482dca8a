"""Use cases: management committees, their members, meetings and minutes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
            self._check_members_exist(members, "members")
            if site_id is not None:
                where = self.load_in_scope(HousingSite, site_id, field_name="site_id").area
            elif area:
                where = self.place(area)
            else:
                raise InvalidValue("area", "give the site_id or the area the committee serves", rule="area_missing")
            committee = ManagementCommittee.establish(
                name=name, area=where, site_id=site_id, members=members, established_on=established_on,
                stamp=stamp,
            )
            return committee, [committee]

        return self._execute(decide, idempotency=idempotency)

    def _check_members_exist(self, members: list[dict[str, Any]], field_name: str) -> None:
        for n, member in enumerate(members):
            if member.get("resident_id") is not None:
                self.load(Resident, member["resident_id"], field_name=f"{field_name}.{n}.resident_id")

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
            self._check_members_exist([member], "member")
            added["member_id"] = committee.add_member(member=member, joined_on=joined_on, stamp=stamp)
            return []

        return self._committee_command(committee_id, act, expected_version, idempotency, details=lambda: added)

    def remove_committee_member(
        self, committee_id: UUID, *, member_id: str, reason: str, left_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            committee.remove_member(member_id=member_id, reason=reason, left_on=left_on, stamp=stamp)
            return []

        return self._committee_command(committee_id, act, expected_version, idempotency)

    def schedule_meeting(
        self, committee_id: UUID, *, scheduled_on: date, agenda: list[dict[str, Any]], stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        scheduled: dict[str, Any] = {}

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            for n, item in enumerate(agenda):
                if item.get("dispute_id") is not None:
                    self.load_in_scope(DisputeCase, item["dispute_id"], field_name=f"agenda.{n}.dispute_id")
            scheduled["meeting_id"] = committee.schedule_meeting(scheduled_on=scheduled_on, agenda=agenda,
                                                                 stamp=stamp)
            return []

        return self._committee_command(committee_id, act, expected_version, idempotency, details=lambda: scheduled)

    def departed_members(self, committee: ManagementCommittee) -> frozenset[str]:
        """Members who are residents that have since left the district."""
        return frozenset(
            member_id for member_id, member in committee.members.items()
            if member.get("resident_id") is not None
            and self.load(Resident, UUID(str(member["resident_id"])), field_name="members").status
            == ResidenceStatus.DEPARTED
        )

    def record_minutes(
        self, committee_id: UUID, *, meeting_id: str, held_on: date, attendees: list[str],
        decisions: list[dict[str, str]], stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Minutes and every decision on a dispute are saved in one transaction."""

        def act(committee: ManagementCommittee) -> Sequence[Aggregate]:
            decided = committee.record_minutes(meeting_id=meeting_id, held_on=held_on, attendees=attendees,
                                               decisions=decisions, departed=self.departed_members(committee),
                                               stamp=stamp)
            cases: dict[UUID, DisputeCase] = {}  # one copy per dispute, however many items name it
            for item in decided:
                if item.get("dispute_id") is not None:
                    case_id = UUID(str(item["dispute_id"]))
                    case = cases.setdefault(case_id, self.load_in_scope(DisputeCase, case_id, field_name="decisions"))
                    case.record_committee_decision(committee_id=committee.id, meeting_id=meeting_id,
                                                   decision=item["decision"], stamp=stamp)
            return list(cases.values())

        return self._committee_command(committee_id, act, expected_version, idempotency)
