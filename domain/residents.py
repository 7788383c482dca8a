"""Migrant residents (外来人口): registration, moves, departures and returns."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.common import RuleViolated, Stamp, check_effective_date
from domain.identity import IdentityNumber
from domain.sites import HousingSite


class ResidenceStatus(StrEnum):
    IN_SITE = "in_site"
    PRIVATE_HOUSING = "private_housing"
    DEPARTED = "departed"


class Resident(Aggregate):
    """A person registered with the office. Every change carries the date it took
    effect, which the caseworker gives and which may lie in the past."""

    @classmethod
    def register(
        cls,
        *,
        id_number: IdentityNumber,
        name: str,
        phone: str,
        hometown: str,
        employer: str | None,
        area: str,
        registered_on: date,
        stamp: Stamp,
    ) -> Resident:
        check_effective_date(registered_on, stamp, field_name="registered_on")
        resident: Resident = cls(
            id_number=id_number.value,
            name=name,
            sex=id_number.sex,
            birth_date=id_number.birth_date,
            phone=phone,
            hometown=hometown,
            employer=employer,
            area=area,
            registered_on=registered_on,
            **stamp.event_fields(),
        )
        return resident

    @event("Registered")
    def __init__(
        self,
        *,
        id_number: str,
        name: str,
        sex: str,
        birth_date: date,
        phone: str,
        hometown: str,
        employer: str | None,
        area: str,
        registered_on: date,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        self.id_number = id_number
        self.name = name
        self.sex = sex
        self.birth_date = birth_date
        self.phone = phone
        self.hometown = hometown
        self.employer = employer
        self.registered_on = registered_on
        self.status = ResidenceStatus.PRIVATE_HOUSING.value
        self.site_id: UUID | None = None
        self.area = area
        self.since = registered_on
        self.departure_reason: str | None = None

    # -- guards -------------------------------------------------------------
    def check_present(self) -> None:
        if self.status == ResidenceStatus.DEPARTED:
            raise RuleViolated(
                f"resident {self.id} departed the district on {self.since.isoformat()}; "
                "record their return first",
                rule="resident_departed",
                departed_on=self.since.isoformat(),
            )

    def check_effective(self, effective_date: date, stamp: Stamp) -> None:
        check_effective_date(effective_date, stamp, earliest=self.registered_on)
        # History is kept in order: a change cannot take effect before the last one.
        check_effective_date(
            effective_date, stamp, earliest=self.since, earliest_rule="effective_date_before_last_change"
        )

    # -- commands -----------------------------------------------------------
    def move_into_site(
        self,
        site: HousingSite,
        effective_date: date,
        stamp: Stamp,
        previous_site: HousingSite | None = None,
    ) -> None:
        """Move into ``site``; the caller saves this resident, ``site`` and
        ``previous_site`` (the site they leave, if any) together."""
        self.check_present()
        self.check_effective(effective_date, stamp)
        if self.site_id == site.id:
            raise RuleViolated(f"resident {self.id} already lives in housing site {site.id}", rule="already_in_site")
        if previous_site is not None:
            if previous_site.id != self.site_id:
                raise ValueError("previous_site is not the resident's current site")
            previous_site.release(self.id, effective_date, "moved", stamp)
        site.admit(self.id, effective_date, stamp)
        self._moved_into_site(site_id=site.id, area=site.area, effective_date=effective_date, **stamp.event_fields())

    @event("MovedIntoSite")
    def _moved_into_site(
        self,
        *,
        site_id: UUID,
        area: str,
        effective_date: date,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        self.status = ResidenceStatus.IN_SITE.value
        self.site_id = site_id
        self.area = area
        self.since = effective_date

    def move_to_private_housing(
        self,
        *,
        area: str,
        effective_date: date,
        stamp: Stamp,
        previous_site: HousingSite | None = None,
    ) -> None:
        self.check_present()
        self.check_effective(effective_date, stamp)
        self._leave_site(previous_site, effective_date, "moved", stamp)
        self._moved_to_private_housing(area=area, effective_date=effective_date, **stamp.event_fields())

    @event("MovedToPrivateHousing")
    def _moved_to_private_housing(
        self, *, area: str, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        self.status = ResidenceStatus.PRIVATE_HOUSING.value
        self.site_id = None
        self.area = area
        self.since = effective_date

    def depart(
        self,
        *,
        effective_date: date,
        reason: str,
        stamp: Stamp,
        previous_site: HousingSite | None = None,
    ) -> None:
        self.check_present()
        self.check_effective(effective_date, stamp)
        self._leave_site(previous_site, effective_date, "departed", stamp)
        self._departed(effective_date=effective_date, reason=reason, **stamp.event_fields())

    @event("DepartedDistrict")
    def _departed(
        self, *, effective_date: date, reason: str, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        self.status = ResidenceStatus.DEPARTED.value
        self.site_id = None
        self.since = effective_date
        self.departure_reason = reason

    def return_to_district(self, *, area: str, effective_date: date, stamp: Stamp) -> None:
        if self.status != ResidenceStatus.DEPARTED:
            raise RuleViolated(
                f"resident {self.id} has not departed the district", rule="resident_not_departed"
            )
        check_effective_date(
            effective_date, stamp, earliest=self.since, earliest_rule="effective_date_before_last_change"
        )
        self._returned(area=area, effective_date=effective_date, **stamp.event_fields())

    @event("Returned")
    def _returned(
        self, *, area: str, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        self.status = ResidenceStatus.PRIVATE_HOUSING.value
        self.area = area
        self.since = effective_date
        self.departure_reason = None

    def change_employer(self, *, employer: str | None, effective_date: date, stamp: Stamp) -> None:
        self.check_present()
        check_effective_date(effective_date, stamp, earliest=self.registered_on)
        if employer == self.employer:
            return
        self._employer_changed(employer=employer, effective_date=effective_date, **stamp.event_fields())

    @event("EmployerChanged")
    def _employer_changed(
        self, *, employer: str | None, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        self.employer = employer

    def _leave_site(self, site: HousingSite | None, effective_date: date, reason: str, stamp: Stamp) -> None:
        if (site.id if site is not None else None) != self.site_id:
            raise ValueError("the resident's current site must be passed as previous_site")
        if site is not None:
            site.release(self.id, effective_date, reason, stamp)


class IdentityNumberClaim(Aggregate):
    """One per identity number: its id is derived from the number, so two
    registrations of the same person race for the same aggregate and only one
    can be saved. Holds the resident's id so the refusal can name it."""

    @staticmethod
    def create_id(id_number: str) -> UUID:
        return claim_id(id_number)

    @event("Claimed")
    def __init__(self, *, id_number: str, resident_id: UUID, recorded_at: datetime) -> None:
        self.resident_id = resident_id


_CLAIM_NAMESPACE = uuid5(NAMESPACE_URL, "urn:liudong:identity-number")


def claim_id(id_number: str) -> UUID:
    return uuid5(_CLAIM_NAMESPACE, id_number)


def duplicate_identity_number(existing_resident_id: UUID) -> RuleViolated:
    return RuleViolated(
        f"a resident with this identity number is already registered: {existing_resident_id}",
        rule="identity_number_registered",
        existing_resident_id=str(existing_resident_id),
    )
