"""Active members (骨干): the residents who lead or represent others, "migrants managing
migrants" (以外管外). The seed's problem is that the office keeps losing them; each one's
record says when they were found, trained, appointed, what their employer agreed to, and
when and why they were lost."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.common import ERASED, InvalidValue, RuleViolated, Stamp, check_effective_date
from domain.residents import Resident

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:liudong:active-member")


def active_member_id(resident_id: UUID) -> UUID:
    """One active member per resident: the id is derived from the resident's, so two
    identifications of the same resident race for the same record and one is stored."""
    return uuid5(_NAMESPACE, str(resident_id))


class ActiveMemberRole(StrEnum):
    GROUP_LEADER = "group_leader"  # 楼组长 / 组长
    REPRESENTATIVE = "representative"  # 居民代表
    COMMITTEE_MEMBER = "committee_member"  # 委员


class LossReason(StrEnum):
    DEPARTED = "departed"  # left the district (recorded with the resident's departure)
    MOVED_AWAY = "moved_away"  # moved within the district, too far to serve their site
    RESIGNED = "resigned"  # gave the work up


class ActiveMember(Aggregate):
    """A resident identified as an active member of a site or an area."""

    @staticmethod
    def create_id(resident_id: UUID) -> UUID:
        return active_member_id(resident_id)

    @classmethod
    def identify(cls, *, resident: Resident, site_id: UUID | None, area: str, identified_on: date,
                 stamp: Stamp) -> ActiveMember:
        """Only a resident present in the district (``resident_departed``), on or after
        their registration (``identified_before_registration``)."""
        resident.check_present()
        resident.check_not_erased()
        check_effective_date(identified_on, stamp, earliest=resident.registered_on,
                             earliest_rule="identified_before_registration", field_name="identified_on")
        # Nor on a day they were away (found by a review): since their latest arrival.
        check_effective_date(identified_on, stamp, earliest=resident.arrived_on,
                             earliest_rule="identified_before_arrival", field_name="identified_on")
        member: ActiveMember = cls(resident_id=resident.id, site_id=site_id, area=area, identified_on=identified_on,
                                   **stamp.event_fields())
        return member

    @event("Identified")
    def __init__(self, *, resident_id: UUID, site_id: UUID | None, area: str, identified_on: date, actor_id: str,
                 actor_role: str, recorded_at: datetime) -> None:
        """A resident was identified as an active member (骨干) of a site or an area by actor_id."""
        self.resident_id = resident_id
        self.site_id = site_id
        self.area = area
        self.identified_on = identified_on
        self.trainings: list[dict[str, str]] = []
        self.roles: dict[str, str] = {}  # role -> appointed_on (ISO), the roles held now
        self.liaisons: list[dict[str, str]] = []
        self.lost_on: date | None = None
        self.lost_reason: str | None = None
        self.latest_on = identified_on  # the latest day anything recorded about them happened

    # -- guards -------------------------------------------------------------
    @property
    def lost(self) -> bool:
        return self.lost_on is not None

    def check_not_lost(self) -> None:
        if self.lost_on is not None:
            raise RuleViolated(f"active member {self.id} was lost on {self.lost_on.isoformat()} ({self.lost_reason})",
                               rule="active_member_lost", lost_on=self.lost_on.isoformat())

    def _check_date(self, day: date, stamp: Stamp, field_name: str) -> None:
        check_effective_date(day, stamp, earliest=self.identified_on, earliest_rule="date_before_identification",
                             field_name=field_name)

    @staticmethod
    def _role(role: str) -> ActiveMemberRole:
        try:
            return ActiveMemberRole(role)
        except ValueError:
            raise InvalidValue("role", f"unknown role {role!r}; one of: "
                               + ", ".join(r.value for r in ActiveMemberRole), rule="active_member_role") from None

    # -- training -----------------------------------------------------------
    def record_training(self, *, course: str, trained_on: date, stamp: Stamp) -> None:
        if not course.strip():
            raise InvalidValue("course", "name the course", rule="course_missing")
        self.check_not_lost()
        self._check_date(trained_on, stamp, "trained_on")
        self._trained(course=course, trained_on=trained_on, **stamp.event_fields())

    @event("Trained")
    def _trained(self, *, course: str, trained_on: date, actor_id: str, actor_role: str,
                 recorded_at: datetime) -> None:
        """The active member completed a course on trained_on."""
        self.trainings = [*self.trainings, {"course": course, "trained_on": trained_on.isoformat()}]
        self.latest_on = max(self.latest_on, trained_on)

    # -- roles --------------------------------------------------------------
    def appoint(self, *, role: str, appointed_on: date, stamp: Stamp) -> None:
        """No appointment after the member was lost (``active_member_lost``); a role is
        held once at a time (``role_already_held``)."""
        kind = self._role(role)
        self.check_not_lost()
        self._check_date(appointed_on, stamp, "appointed_on")
        if kind.value in self.roles:
            raise RuleViolated(f"already {kind.value} since {self.roles[kind.value]}", rule="role_already_held",
                               role=kind.value, appointed_on=self.roles[kind.value])
        self._appointed(role=kind.value, appointed_on=appointed_on, **stamp.event_fields())

    @event("Appointed")
    def _appointed(self, *, role: str, appointed_on: date, actor_id: str, actor_role: str,
                   recorded_at: datetime) -> None:
        """The active member was appointed group_leader, representative or committee_member on appointed_on."""
        self.roles = {**self.roles, role: appointed_on.isoformat()}
        self.latest_on = max(self.latest_on, appointed_on)

    def end_role(self, *, role: str, ended_on: date, stamp: Stamp) -> None:
        kind = self._role(role)
        self.check_not_lost()
        if kind.value not in self.roles:
            raise RuleViolated(f"active member {self.id} does not hold the role {kind.value}", rule="role_not_held",
                               role=kind.value)
        check_effective_date(ended_on, stamp, earliest=date.fromisoformat(self.roles[kind.value]),
                             earliest_rule="role_ended_before_appointment", field_name="ended_on")
        self._role_ended(role=kind.value, ended_on=ended_on, **stamp.event_fields())

    @event("RoleEnded")
    def _role_ended(self, *, role: str, ended_on: date, actor_id: str, actor_role: str,
                    recorded_at: datetime) -> None:
        """The active member's role ended on ended_on; they stay an active member."""
        self.roles = {k: v for k, v in self.roles.items() if k != role}
        self.latest_on = max(self.latest_on, ended_on)

    # -- the employer -------------------------------------------------------
    def agree_employer_liaison(self, *, employer: str, agreed_on: date, note: str, stamp: Stamp) -> None:
        """The employer agreed that the member's shifts allow the work."""
        if not employer.strip():
            raise InvalidValue("employer", "name the employer", rule="employer_missing")
        self.check_not_lost()
        self._check_date(agreed_on, stamp, "agreed_on")
        self._employer_liaison_agreed(resident_id=self.resident_id, employer=employer, agreed_on=agreed_on, note=note,
                                      **stamp.event_fields())

    @event("EmployerLiaisonAgreed")
    def _employer_liaison_agreed(self, *, resident_id: UUID, employer: str, agreed_on: date, note: str,
                                 actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The member's employer agreed on agreed_on that their shifts allow the work (the note, sealed under
        the resident's key, says how)."""
        self.liaisons = [*self.liaisons, {"employer": employer, "agreed_on": agreed_on.isoformat(), "note": note}]
        # which event recorded each (its note has a key of its own: erased one by one)
        self.liaison_versions = [*getattr(self, "liaison_versions", []), self.version + 1]
        self.latest_on = max(self.latest_on, agreed_on)

    def erase_personal_data(self, *, legal_basis: str, stamp: Stamp) -> None:
        """The member's resident was erased: the notes of their employers' agreements (sealed
        under the resident's key, destroyed in the same transaction) read as erased here too,
        and in every cached copy (found by a review: a cached member showed a note after the
        erasure)."""
        self._personal_data_erased(legal_basis=legal_basis, **stamp.event_fields())

    @event("PersonalDataErased")
    def _personal_data_erased(self, *, legal_basis: str, actor_id: str, actor_role: str,
                              recorded_at: datetime) -> None:
        """The member's resident was erased: the notes of the employers' agreements read as erased."""
        self.liaisons = [{**liaison, "note": ERASED} for liaison in self.liaisons]

    def erase_liaison_notes(self, *, versions: list[int], legal_basis: str, stamp: Stamp) -> None:
        """Another resident that some of the notes spell out was erased: those notes' keys are
        destroyed in the same transaction, and they read as erased here, and in every cached
        copy (found by a review: a note naming a colleague outlived the colleague).
        ``versions``: the events that recorded them."""
        self._liaison_notes_erased(versions=sorted(versions), legal_basis=legal_basis, **stamp.event_fields())

    @event("LiaisonNotesErased")
    def _liaison_notes_erased(self, *, versions: list[int], legal_basis: str, actor_id: str, actor_role: str,
                              recorded_at: datetime) -> None:
        """A resident some of the employers' notes spelled out was erased: the notes the events of these versions
        recorded read as erased."""
        recorded = getattr(self, "liaison_versions", [])
        self.liaisons = [{**liaison, "note": ERASED} if n < len(recorded) and recorded[n] in versions else liaison
                         for n, liaison in enumerate(self.liaisons)]

    # -- loss ---------------------------------------------------------------
    def lose(self, *, lost_on: date, reason: str, stamp: Stamp) -> None:
        try:
            why = LossReason(reason)
        except ValueError:
            raise InvalidValue("reason", f"unknown reason {reason!r}; one of: "
                               + ", ".join(r.value for r in LossReason), rule="loss_reason") from None
        if why == LossReason.DEPARTED:  # found by a review: staff could record a departure that was not
            raise InvalidValue("reason", "a member is lost as departed with the resident's recorded departure; "
                               "record that, or give moved_away or resigned", rule="loss_reason_departed")
        if self.lost_on is not None:
            raise RuleViolated(f"active member {self.id} was lost already on {self.lost_on.isoformat()}",
                               rule="already_lost", lost_on=self.lost_on.isoformat())
        self._check_date(lost_on, stamp, "lost_on")
        # Not before what was recorded of them since (found by a review: lost in April, then
        # trained in June and appointed in July).
        check_effective_date(lost_on, stamp, earliest=self.latest_on, earliest_rule="lost_before_last_record",
                             field_name="lost_on")
        self._lost(lost_on=lost_on, reason=why.value, roles=sorted(self.roles), **stamp.event_fields())

    def lose_by_departure(self, *, departed_on: date, stamp: Stamp) -> bool:
        """The resident left the district: the member is lost the same day (or, for a
        departure dated before the identification, on the identification's day). Returns
        False if they were lost already."""
        if self.lost_on is not None:
            return False
        if self.latest_on > self.identified_on and departed_on < self.latest_on:
            # trained, appointed or liaised after the day given for the departure (found by a review)
            raise RuleViolated(f"active member {self.id} has a record dated {self.latest_on.isoformat()}: the "
                               f"departure cannot be dated before it", rule="lost_before_last_record",
                               earliest=self.latest_on.isoformat(), field="effective_date")
        self._lost(lost_on=max(departed_on, self.identified_on), reason=LossReason.DEPARTED.value,
                   roles=sorted(self.roles), **stamp.event_fields())
        return True

    @event("Lost")
    def _lost(self, *, lost_on: date, reason: str, roles: list[str], actor_id: str, actor_role: str,
              recorded_at: datetime) -> None:
        """The active member was lost on lost_on (departed, moved_away or resigned); the roles they held end."""
        self.lost_on = lost_on
        self.lost_reason = reason
        self.roles = {}

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id, "version": self.version, "resident_id": self.resident_id, "site_id": self.site_id,
            "area": self.area, "identified_on": self.identified_on, "status": "lost" if self.lost else "active",
            "trainings": self.trainings, "roles": [{"role": r, "appointed_on": d} for r, d in self.roles.items()],
            "employer_liaisons": self.liaisons, "lost_on": self.lost_on, "lost_reason": self.lost_reason,
        }
