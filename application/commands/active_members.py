"""Use cases: active members (骨干), identified, trained, appointed, liaised with their
employer, and lost."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.active_members import ActiveMember, active_member_id
from domain.common import RuleViolated, Stamp
from domain.residents import ResidenceStatus, Resident
from domain.sites import HousingSite


def already_identified(member_id: UUID) -> RuleViolated:
    return RuleViolated(f"this resident is an active member already: {member_id}", rule="already_identified",
                        existing_active_member_id=str(member_id))


def active_member_of(app: OfficeApplication, resident_id: UUID) -> ActiveMember | None:
    """The resident's active-member record, if they were ever identified (no scope check:
    a change of the resident, such as their departure, reaches it wherever it is kept)."""
    return app.find(ActiveMember, active_member_id(resident_id))


class ActiveMemberCommands(OfficeApplication):

    def identify_active_member(
        self, *, resident_id: UUID, site_id: UUID | None, area: str | None, identified_on: date, stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Identify a resident as an active member of a site (given, or the one they live
        in) or an area (given, or where they live). Two identifications of one resident
        race for the same record id: the loser is decided again and refused."""
        code = self.place(area) if area else None

        def decide() -> tuple[Aggregate, list[Aggregate]]:
            resident = self.load_in_scope(Resident, resident_id, field_name="resident_id")
            existing = active_member_of(self, resident.id)
            if existing is not None:
                raise already_identified(existing.id)
            where_site, where = site_id, code
            if site_id is not None:
                site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
                site.check_open()  # found by a review: a closed site took new active members
                where = site.area
            elif code is None:
                where_site, where = resident.site_id, resident.area
            assert where is not None
            member = ActiveMember.identify(resident=resident, site_id=where_site, area=where,
                                           identified_on=identified_on, stamp=stamp)
            resident.mark_active_member(member_id=member.id, identified_on=identified_on, stamp=stamp)
            return member, [member, resident]

        return self._execute(decide, idempotency=idempotency)

    def _member_command(
        self, member_id: UUID, act: Callable[[ActiveMember], None], expected_version: int | None,
        idempotency: IdempotencyClaim | None, records: tuple[date, str] | None = None,
    ) -> CommandResult:
        """``records``: the day and field of a command that records more of the member (a
        training, a role, a liaison): not for a resident whose data was erased, nor at their
        site after it closed (found by a review: both were taken). Ending a role or losing
        them winds the record down and is taken."""
        def decide() -> tuple[Aggregate, list[Aggregate]]:
            member = self.load_current(ActiveMember, member_id, expected_version)
            if records is not None:
                self.load(Resident, UUID(str(member.resident_id)), field_name="resident_id").check_not_erased()
                if member.site_id is not None:
                    self.load(HousingSite, UUID(str(member.site_id)), field_name="site_id").check_open_on(*records)
            act(member)
            return member, [member]

        return self._execute(decide, idempotency=idempotency)

    def lose_departed_active_members(self, member_ids: Iterable[UUID], stamp: Stamp) -> int:
        """The reconciling sweep: an active member whose resident has departed (a departure
        recorded by an import, or racing the identification) is lost, dated by the
        departure. Returns how many were lost."""
        lost = 0
        for member_id in member_ids:
            def act(member: ActiveMember) -> None:
                resident = self.load(Resident, UUID(str(member.resident_id)), field_name="resident_id")
                if resident.status == ResidenceStatus.DEPARTED:  # not dated before the member's last record
                    member.lose_by_departure(departed_on=max(resident.since, member.latest_on), stamp=stamp)

            lost += 1 if self._member_command(member_id, act, None, None).position else 0
        return lost

    def record_active_member_training(
        self, member_id: UUID, *, course: str, trained_on: date, stamp: Stamp, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._member_command(
            member_id, lambda m: m.record_training(course=course, trained_on=trained_on, stamp=stamp),
            expected_version, idempotency, (trained_on, "trained_on"))

    def appoint_active_member(
        self, member_id: UUID, *, role: str, appointed_on: date, stamp: Stamp, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._member_command(
            member_id, lambda m: m.appoint(role=role, appointed_on=appointed_on, stamp=stamp),
            expected_version, idempotency, (appointed_on, "appointed_on"))

    def end_active_member_role(
        self, member_id: UUID, *, role: str, ended_on: date, stamp: Stamp, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._member_command(
            member_id, lambda m: m.end_role(role=role, ended_on=ended_on, stamp=stamp), expected_version, idempotency)

    def agree_employer_liaison(
        self, member_id: UUID, *, employer: str, agreed_on: date, note: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._member_command(
            member_id,
            lambda m: m.agree_employer_liaison(employer=employer, agreed_on=agreed_on, note=note, stamp=stamp),
            expected_version, idempotency, (agreed_on, "agreed_on"))

    def record_active_member_loss(
        self, member_id: UUID, *, lost_on: date, reason: str, stamp: Stamp, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._member_command(
            member_id, lambda m: m.lose(lost_on=lost_on, reason=reason, stamp=stamp), expected_version, idempotency)
