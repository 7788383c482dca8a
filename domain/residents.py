"""Migrant residents (外来人口): registration, moves, departures and returns."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from domain.common import ERASED, OFFICE_TZ, InvalidValue, RuleViolated, Stamp, check_effective_date, mentions
from domain.identity import IdentityNumber
from domain.sites import HousingSite


class PermitStatus(StrEnum):
    APPLIED = "applied"
    ISSUED = "issued"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later; the month's last day when it has fewer days."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# State Council Order 663: six months' residence, and stable work or housing.
PERMIT_RESIDENCE_MONTHS = 6
ENDORSEMENT_MONTHS = 12
# An endorsement can be recorded at most this long before it falls due (so once a year).
ENDORSEMENT_WINDOW_DAYS = 60


class LegalBasis(StrEnum):
    """Why personal data is erased (PIPL Art. 47)."""

    DATA_SUBJECT_REQUEST = "data_subject_request"
    RETENTION_EXPIRED = "retention_expired"
    PURPOSE_FULFILLED = "purpose_fulfilled"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    UNLAWFUL_PROCESSING = "unlawful_processing"


class HouseholdRelation(StrEnum):
    """A resident's relation to the head of the household they live with (户主), as the
    caseworker records it; sites house families and workmates sharing a room alike."""

    HEAD = "head"  # 户主: the head of the household
    SPOUSE = "spouse"  # 配偶
    CHILD = "child"  # 子女: a son or daughter (of the head or the spouse)
    PARENT = "parent"  # 父母: a parent of the head or the spouse
    OTHER_RELATIVE = "other_relative"  # 其他亲属: a sibling, grandchild, in-law
    UNRELATED = "unrelated"  # 非亲属: a workmate or lodger sharing the home


class HousingKind(StrEnum):
    """Where a resident lives (Order 663 accepts lawful rented housing as a stable home)."""

    SITE = "site"  # a housing site (集中居住点): recorded by a move into the site
    RENTED = "rented"  # a room rented, usually from a villager (with the landlord or address)
    EMPLOYER_DORMITORY = "employer_dormitory"
    OTHER = "other"  # anything else, and every move recorded without a kind


# Housing that counts as a lawful stable home for a residence permit.
STABLE_HOUSING = frozenset({HousingKind.SITE, HousingKind.RENTED, HousingKind.EMPLOYER_DORMITORY})
DEPARTED_KIND = "departed"  # in the housing timeline: not in the district


class DependantRelation(StrEnum):
    """Who a dependant is to the resident (for services: a child needs a school place)."""

    CHILD = "child"
    SPOUSE = "spouse"
    PARENT = "parent"
    OTHER = "other"


class SchoolStatus(StrEnum):
    REQUESTED = "requested"
    PLACED = "placed"
    REFUSED = "refused"


class ServiceKind(StrEnum):
    """Services delivered to residents (the seed's "service first"); family planning (计划生育) is a service."""

    HEALTH_CHECK = "health_check"
    TRAINING = "training"
    LEGAL_AID = "legal_aid"
    FAMILY_PLANNING = "family_planning"


MIN_BIRTH_YEAR = 1900


class ResidenceStatus(StrEnum):
    IN_SITE = "in_site"
    PRIVATE_HOUSING = "private_housing"
    DEPARTED = "departed"


class Resident(Aggregate):
    """A person registered with the office. Every change carries the date it took
    effect, which the caseworker gives and which may lie in the past."""

    # Version 2 holds household_relation, version 3 committee_seats, version 4 housing and
    # the timelines permit eligibility reads, version 5 dependants, version 6 active_member_id.
    # Residents are not snapshotted today; the version keeps a future snapshot of an older
    # version readable, as eventsourcing asks of an aggregate whose state gains a field.
    class_version = 6

    @staticmethod
    def upcast_v1_v2(state: dict[str, object]) -> None:
        """A resident of version 1 had no household relation: not recorded."""
        state["household_relation"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, object]) -> None:
        """A resident of version 2 had no committee seats recorded on them."""
        state["committee_seats"] = {}

    @staticmethod
    def upcast_v3_v4(state: dict[str, object]) -> None:
        """A resident of version 3 had no housing kind nor timelines: read from the status."""
        status, since = str(state["status"]), str(state["since"])
        kind = {"in_site": "site", "departed": DEPARTED_KIND}.get(status, "other")
        state["housing"] = {"kind": kind if kind != DEPARTED_KIND else "other", "address": None, "landlord": None}
        state["housing_timeline"] = [[since, kind]]
        state["employment_timeline"] = [[str(state["employer_since"]), bool(state.get("employer"))]]
        state["study_timeline"] = []
        state["school"] = None
        state["arrivals"] = [str(state["arrived_on"])]

    @staticmethod
    def upcast_v4_v5(state: dict[str, object]) -> None:
        """A resident of version 4 had no dependants recorded."""
        state["dependants"] = {}

    @staticmethod
    def upcast_v5_v6(state: dict[str, object]) -> None:
        """A resident of version 5 carried no active-member record id (found by its uuid5)."""
        state["active_member_id"] = None

    class Registered(Aggregate.Created):
        """A migrant resident was registered with the office (登记): who they are, where
        they live and work, and since when."""

        class_version = 2
        id_number: str
        name: str
        sex: str
        birth_date: date
        phone: str
        hometown: str
        employer: str | None
        area: str
        registered_on: date
        household_relation: str | None  # a HouseholdRelation value; None: not recorded
        actor_id: str
        actor_role: str
        recorded_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Registrations before version 2 did not record household_relation: read as
            None (not recorded)."""
            state["household_relation"] = None

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
        household_relation: HouseholdRelation | str | None = None,
    ) -> Resident:
        check_effective_date(registered_on, stamp, field_name="registered_on")
        relation = _household_relation(household_relation)
        if id_number.birth_date > stamp.today:
            raise InvalidValue("id_number", f"identity number holds a birth date in the future "
                               f"({id_number.birth_date.isoformat()})", rule="id_number_birth_date")
        if registered_on < id_number.birth_date:
            raise InvalidValue("registered_on", "registered_on is before the resident's birth date",
                               rule="registered_before_birth")
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
            household_relation=relation,
            **stamp.event_fields(),
        )
        return resident

    @event(Registered)
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
        household_relation: str | None,
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
        self.employer_since = registered_on
        self.registered_on = registered_on
        self.household_relation = household_relation
        self.status = ResidenceStatus.PRIVATE_HOUSING.value
        self.site_id: UUID | None = None
        self.area = area
        self.since = registered_on
        self.arrived_on = registered_on
        self.departure_reason: str | None = None
        self.permit: dict[str, str] | None = None
        self.erased_on: str | None = None
        # committee id (str) -> member id: the management committees this resident sits on
        self.committee_seats: dict[str, str] = {}
        self.active_member_id: str | None = None  # the ActiveMember record, once identified as one
        self.housing: dict[str, str | None] = {"kind": HousingKind.OTHER.value, "address": None, "landlord": None}
        self.school: str | None = None
        # [effective date (ISO), value] in effective order, so eligibility can be read as of a date
        self.housing_timeline: list[list[str]] = [[registered_on.isoformat(), HousingKind.OTHER.value]]
        self.employment_timeline: list[list[object]] = [[registered_on.isoformat(), bool(employer)]]
        self.study_timeline: list[list[object]] = []
        self.arrivals: list[str] = [registered_on.isoformat()]
        # dependant id -> name, birth_year, relation and school placement (services, issue 10)
        self.dependants: dict[str, dict[str, Any]] = {}

    # -- guards -------------------------------------------------------------
    def check_present(self) -> None:
        if self.status == ResidenceStatus.DEPARTED:
            raise RuleViolated(
                f"resident {self.id} departed the district on {self.since.isoformat()}; "
                "record their return first",
                rule="resident_departed",
                departed_on=self.since.isoformat(),
            )

    def check_not_erased(self) -> None:
        """Nothing new is recorded about a person whose data was erased (found by a review: a permit
        was issued and services recorded for one); a move or a departure still frees a bed."""
        if self.erased_on is not None:
            raise RuleViolated(f"resident {self.id}'s personal data was erased on {self.erased_on}; a person "
                               "who came back is registered anew", rule="already_erased")

    def check_present_on(self, day: date, field_name: str) -> None:
        """Refuse what is dated on a day the resident was away from the district (found by a review:
        a service and an employer were recorded for months they were gone)."""
        if _as_of(self.housing_timeline, day) == DEPARTED_KIND:
            raise RuleViolated(f"resident {self.id} was away from the district on {day.isoformat()}",
                               rule="resident_away_then", field=field_name)

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
        self.check_not_erased()  # nothing new of them: a person who comes back is registered anew
        self.check_effective(effective_date, stamp)
        if self.site_id == site.id:
            raise RuleViolated(f"resident {self.id} already lives in housing site {site.id}", rule="already_in_site")
        site.check_admission(self.id)  # before leaving the previous site: a refusal changes nothing
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
        """The resident moved into a housing site (and its area) on the effective date."""
        self.status = ResidenceStatus.IN_SITE.value
        self.site_id = site_id
        self.area = area
        self.since = effective_date
        self._housed(effective_date, {"kind": HousingKind.SITE.value, "address": None, "landlord": None})

    def move_to_private_housing(
        self,
        *,
        area: str,
        effective_date: date,
        stamp: Stamp,
        previous_site: HousingSite | None = None,
        housing_kind: HousingKind | str = HousingKind.OTHER,
        address: str | None = None,
        landlord: str | None = None,
    ) -> None:
        """Move out of sites into housing of ``housing_kind`` (rented: with the landlord
        or the address) in ``area``."""
        try:
            kind = HousingKind(housing_kind)
        except ValueError:
            raise InvalidValue("housing.kind", f"unknown housing kind {housing_kind!r}; one of: "
                               + ", ".join(k.value for k in HousingKind), rule="housing_kind") from None
        if kind == HousingKind.SITE:
            raise InvalidValue("housing.kind", "a move into a housing site gives the site_id, not an area",
                               rule="housing_site_needs_site_id")
        if kind == HousingKind.RENTED and not (address or landlord):
            raise InvalidValue("housing.landlord", "rented housing is recorded with its landlord or its address",
                               rule="rented_housing_unidentified")
        self.check_present()
        if self.site_id is None:  # a move out of a site frees its bed; any other move only records more of them
            self.check_not_erased()
        self.check_effective(effective_date, stamp)
        self._leave_site(previous_site, effective_date, "moved", stamp)
        self._moved_to_private_housing(area=area, effective_date=effective_date, housing_kind=kind.value,
                                       address=address, landlord=landlord, **stamp.event_fields())

    class MovedToPrivateHousing(Aggregate.Event):
        """The resident moved out of sites, into housing of housing_kind (rented: a room,
        with its landlord or address; employer_dormitory; other) in an area on the
        effective date."""

        class_version = 2
        area: str
        effective_date: date
        housing_kind: str  # a HousingKind value other than site
        address: str | None
        landlord: str | None
        actor_id: str
        actor_role: str
        recorded_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Moves before version 2 recorded no kind of housing: other."""
            state["housing_kind"] = HousingKind.OTHER.value
            state["address"] = None
            state["landlord"] = None

    @event(MovedToPrivateHousing)
    def _moved_to_private_housing(
        self, *, area: str, effective_date: date, housing_kind: str, address: str | None, landlord: str | None,
        actor_id: str, actor_role: str, recorded_at: datetime,
    ) -> None:
        self.status = ResidenceStatus.PRIVATE_HOUSING.value
        self.site_id = None
        self.area = area
        self.since = effective_date
        self._housed(effective_date, {"kind": housing_kind, "address": address, "landlord": landlord})

    def _housed(self, effective_date: date, housing: dict[str, str | None], kind: str | None = None) -> None:
        self.housing = housing
        self.housing_timeline = [*self.housing_timeline, [effective_date.isoformat(), kind or housing["kind"] or ""]]

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
        if self.permit is not None and self.permit["status"] != PermitStatus.CANCELLED:
            self._permit_cancelled(reason="departed the district", effective_date=effective_date,
                                   **stamp.event_fields())

    @event("DepartedDistrict")
    def _departed(
        self, *, effective_date: date, reason: str, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The resident left the district on the effective date, for the reason given."""
        self.status = ResidenceStatus.DEPARTED.value
        self.site_id = None
        self.since = effective_date
        self.departure_reason = reason
        self._housed(effective_date, {"kind": HousingKind.OTHER.value, "address": None, "landlord": None},
                     kind=DEPARTED_KIND)

    def return_to_district(self, *, area: str, effective_date: date, stamp: Stamp) -> None:
        if self.status != ResidenceStatus.DEPARTED:
            raise RuleViolated(
                f"resident {self.id} has not departed the district", rule="resident_not_departed"
            )
        self.check_not_erased()  # found by a review: an erased person came back; they are registered anew
        check_effective_date(
            effective_date, stamp, earliest=self.since, earliest_rule="effective_date_before_last_change"
        )
        self._returned(area=area, effective_date=effective_date, **stamp.event_fields())

    @event("Returned")
    def _returned(
        self, *, area: str, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """A resident who had departed came back to live in an area of the district."""
        self.status = ResidenceStatus.PRIVATE_HOUSING.value
        self.area = area
        self.since = effective_date
        self.arrived_on = effective_date
        self.departure_reason = None
        self.arrivals = [*self.arrivals, effective_date.isoformat()]
        self._housed(effective_date, {"kind": HousingKind.OTHER.value, "address": None, "landlord": None})

    def change_employer(self, *, employer: str | None, effective_date: date, stamp: Stamp) -> None:
        # Not check_present: a change of a day before a departure, told late, is taken (found by
        # a review); a day they were away is refused (check_present_on).
        self.check_not_erased()
        check_effective_date(effective_date, stamp, earliest=self.registered_on)
        self.check_present_on(effective_date, "effective_date")
        check_effective_date(effective_date, stamp, earliest=self.employer_since,
                             earliest_rule="effective_date_before_last_change")
        if employer == self.employer:
            return
        self._employer_changed(employer=employer, effective_date=effective_date, **stamp.event_fields())

    @event("EmployerChanged")
    def _employer_changed(
        self, *, employer: str | None, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The resident's employer changed (None: no employer) on the effective date."""
        self.employer = employer
        self.employer_since = effective_date
        self.employment_timeline = [*self.employment_timeline, [effective_date.isoformat(), bool(employer)]]

    def record_study(self, *, school: str | None, effective_date: date, stamp: Stamp) -> None:
        """Continuous study (连续就读), Order 663's third route to a permit: ``school`` is
        where the resident studies from the effective date (None: no longer studying)."""
        self.check_present()
        self.check_not_erased()
        check_effective_date(effective_date, stamp, earliest=self.registered_on)
        self.check_present_on(effective_date, "effective_date")
        if self.study_timeline:
            last = date.fromisoformat(str(self.study_timeline[-1][0]))
            check_effective_date(effective_date, stamp, earliest=last,
                                 earliest_rule="effective_date_before_last_change")
        if school == self.school:
            return
        self._study_recorded(school=school, effective_date=effective_date, **stamp.event_fields())

    @event("StudyRecorded")
    def _study_recorded(
        self, *, school: str | None, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The resident studies at school from the effective date (None: stopped studying)."""
        self.school = school
        self.study_timeline = [*self.study_timeline, [effective_date.isoformat(), school]]

    # -- committee seats (以外管外: migrants managing migrants) --------------------
    def join_committee(self, *, committee_id: UUID, member_id: str, joined_on: date, stamp: Stamp) -> None:
        """Record on the resident that they sit on a committee, so that their departure
        and return reach the committee in the same transaction."""
        self.check_present()
        if str(committee_id) in self.committee_seats:
            return
        self._joined_committee(committee_id=committee_id, member_id=member_id, joined_on=joined_on,
                               **stamp.event_fields())

    @event("JoinedCommittee")
    def _joined_committee(self, *, committee_id: UUID, member_id: str, joined_on: date, actor_id: str,
                          actor_role: str, recorded_at: datetime) -> None:
        """The resident took a seat on a management committee on joined_on."""
        self.committee_seats = {**self.committee_seats, str(committee_id): member_id}

    def mark_active_member(self, *, member_id: UUID, identified_on: date, stamp: Stamp) -> None:
        """Record on the resident that they were identified as an active member (骨干), so that
        an identification and a departure racing each other conflict on the resident and the
        one decided again sees the other."""
        self.check_present()
        if self.active_member_id == str(member_id):
            return
        self._identified_as_active_member(member_id=member_id, identified_on=identified_on, **stamp.event_fields())

    @event("IdentifiedAsActiveMember")
    def _identified_as_active_member(self, *, member_id: UUID, identified_on: date, actor_id: str, actor_role: str,
                                     recorded_at: datetime) -> None:
        """The resident was identified as an active member (骨干) on identified_on (the record is member_id)."""
        self.active_member_id = str(member_id)

    def leave_committee(self, *, committee_id: UUID, left_on: date, stamp: Stamp) -> None:
        if str(committee_id) not in self.committee_seats:
            return
        self._left_committee(committee_id=committee_id, left_on=left_on, **stamp.event_fields())

    @event("LeftCommittee")
    def _left_committee(self, *, committee_id: UUID, left_on: date, actor_id: str, actor_role: str,
                        recorded_at: datetime) -> None:
        """The resident gave up their seat on a management committee on left_on."""
        self.committee_seats = {k: v for k, v in self.committee_seats.items() if k != str(committee_id)}

    # -- residence permits (居住证) ------------------------------------------
    def permit_eligibility(self, on: date) -> tuple[list[str], date]:
        """The conditions not met on ``on`` (as the record stood on that day, not today)
        and the date residence will have lasted six months, counted from the latest arrival
        on or before ``on``. Order 663: six months' residence and one of lawful stable work,
        a lawful stable home (a site, a rented room, an employer's dormitory) or
        continuous study."""
        arrival = date.fromisoformat(str(_as_of(self.arrivals_timeline(), on) or self.registered_on.isoformat()))
        eligible_from = add_months(arrival, PERMIT_RESIDENCE_MONTHS)
        missing = []
        if _as_of(self.housing_timeline, on) == DEPARTED_KIND:
            missing.append("present_in_district")
        if on < eligible_from:
            missing.append("six_months_residence")
        employed = bool(_as_of(self.employment_timeline, on))
        housed = _as_of(self.housing_timeline, on) in STABLE_HOUSING
        studying = bool(_as_of(self.study_timeline, on))
        if not (employed or housed or studying):
            missing.append("stable_work_or_housing")
        return missing, eligible_from

    def arrivals_timeline(self) -> list[list[object]]:
        return [[day, day] for day in self.arrivals]

    def apply_for_permit(self, *, applied_on: date, stamp: Stamp) -> None:
        self.check_present()
        self.check_not_erased()
        # Not before their latest arrival (found by a review: an application dated before a
        # departure recorded since was judged on the days before it, and issued).
        check_effective_date(applied_on, stamp, earliest=date.fromisoformat(self.arrivals[-1]),
                             earliest_rule="applied_before_arrival" if len(self.arrivals) > 1
                             else "effective_date_before_registration", field_name="applied_on")
        if self.permit is not None and self.permit["status"] != PermitStatus.CANCELLED:
            raise RuleViolated(f"resident {self.id} already has a permit ({self.permit['status']})",
                               rule="permit_exists", permit_status=self.permit["status"])
        missing, eligible_from = self.permit_eligibility(applied_on)
        if missing:
            raise RuleViolated(
                f"not eligible for a residence permit on {applied_on.isoformat()}: missing {', '.join(missing)}",
                rule="permit_not_eligible",
                missing_conditions=missing,
                eligible_from=eligible_from.isoformat() if "six_months_residence" in missing else None,
            )
        self._permit_applied(applied_on=applied_on, **stamp.event_fields())

    @event("PermitApplied")
    def _permit_applied(self, *, applied_on: date, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The resident applied for a residence permit (居住证)."""
        self.permit = {"status": PermitStatus.APPLIED.value, "applied_on": applied_on.isoformat()}

    def _check_permit(self, *statuses: PermitStatus) -> dict[str, str]:
        if self.permit is None or self.permit["status"] not in statuses:
            current = self.permit["status"] if self.permit else "none"
            raise RuleViolated(
                f"the permit is {current}; this needs it {' or '.join(s.value for s in statuses)}",
                rule="permit_state", permit_status=current,
            )
        return self.permit

    def issue_permit(self, *, number: str, issued_on: date, stamp: Stamp) -> None:
        self.check_present()
        self.check_not_erased()
        permit = self._check_permit(PermitStatus.APPLIED)
        check_effective_date(issued_on, stamp, earliest=date.fromisoformat(permit["applied_on"]),
                             earliest_rule="issued_before_application", field_name="issued_on")
        self._permit_issued(number=number, issued_on=issued_on,
                            endorsement_due=add_months(issued_on, ENDORSEMENT_MONTHS), **stamp.event_fields())

    @event("PermitIssued")
    def _permit_issued(
        self, *, number: str, issued_on: date, endorsement_due: date, actor_id: str, actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """The residence permit was issued with its number; the first endorsement falls due a year on."""
        assert self.permit is not None
        self.permit.update(status=PermitStatus.ISSUED.value, number=number, issued_on=issued_on.isoformat(),
                           endorsement_due=endorsement_due.isoformat())
        # every number they held (a permit applied for again forgets the last): erased with them
        self.permit_numbers = [*getattr(self, "permit_numbers", []), number]

    def endorse_permit(self, *, endorsed_on: date, stamp: Stamp) -> None:
        """The yearly endorsement (签注); a late one reinstates a suspended permit."""
        self.check_present()
        self.check_not_erased()
        permit = self._check_permit(PermitStatus.ISSUED, PermitStatus.SUSPENDED)
        check_effective_date(endorsed_on, stamp, earliest=date.fromisoformat(permit["issued_on"]),
                             earliest_rule="endorsed_before_issue", field_name="endorsed_on")
        due = date.fromisoformat(permit["endorsement_due"])
        opens = due - timedelta(days=ENDORSEMENT_WINDOW_DAYS)
        if endorsed_on < opens:
            raise RuleViolated(
                f"the endorsement due on {due.isoformat()} can be recorded from {opens.isoformat()}",
                rule="endorsement_too_early", endorsement_due=due.isoformat(), window_opens=opens.isoformat(),
            )
        # On time: the next year runs from the due date; late: from the endorsement.
        next_due = add_months(due if endorsed_on <= due else endorsed_on, ENDORSEMENT_MONTHS)
        self._permit_endorsed(endorsed_on=endorsed_on, endorsement_due=next_due, **stamp.event_fields())
        if permit["status"] == PermitStatus.SUSPENDED:
            self._permit_reinstated(endorsed_on=endorsed_on, **stamp.event_fields())

    @event("PermitEndorsed")
    def _permit_endorsed(
        self, *, endorsed_on: date, endorsement_due: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The permit's yearly endorsement (签注) was recorded; the next falls due on endorsement_due."""
        assert self.permit is not None
        self.permit.update(endorsement_due=endorsement_due.isoformat(), last_endorsed_on=endorsed_on.isoformat())

    @event("PermitReinstated")
    def _permit_reinstated(self, *, endorsed_on: date, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A suspended permit was reinstated by a late endorsement."""
        assert self.permit is not None
        self.permit["status"] = PermitStatus.ISSUED.value

    def suspend_lapsed_permit(self, stamp: Stamp) -> None:
        """The sweep's command: suspend once when the endorsement due date has passed."""
        if self.permit is None or self.permit["status"] != PermitStatus.ISSUED:
            return
        due = date.fromisoformat(self.permit["endorsement_due"])
        if stamp.today > due:
            self._permit_suspended(lapsed_on=due, **stamp.event_fields())

    @event("PermitSuspended")
    def _permit_suspended(self, *, lapsed_on: date, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The permit was suspended: its endorsement lapsed on lapsed_on (recorded by the sweep)."""
        assert self.permit is not None
        self.permit["status"] = PermitStatus.SUSPENDED.value

    @event("PermitCancelled")
    def _permit_cancelled(
        self, *, reason: str, effective_date: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The permit was cancelled (the resident departed the district)."""
        assert self.permit is not None
        self.permit["status"] = PermitStatus.CANCELLED.value

    # -- services (服务): dependants, school places, services delivered -----------------
    def record_dependant(self, *, name: str, birth_year: int, relation: str, stamp: Stamp) -> str:
        """A dependant living with the resident (a child, for a school place); returns the
        new dependant's id."""
        self.check_present()
        self.check_not_erased()
        try:
            kind = DependantRelation(relation)
        except ValueError:
            raise InvalidValue("relation", f"unknown relation {relation!r}; one of: "
                               + ", ".join(r.value for r in DependantRelation), rule="dependant_relation") from None
        if not MIN_BIRTH_YEAR <= birth_year <= stamp.today.year:
            raise InvalidValue("birth_year", f"birth_year {birth_year} is not between {MIN_BIRTH_YEAR} and this "
                               f"year ({stamp.today.year})", rule="birth_year_out_of_range")
        dependant_id = uuid4().hex[:12]
        self._dependant_recorded(dependant_id=dependant_id, name=name, birth_year=birth_year, relation=kind.value,
                                 **stamp.event_fields())
        return dependant_id

    @event("DependantRecorded")
    def _dependant_recorded(self, *, dependant_id: str, name: str, birth_year: int, relation: str, actor_id: str,
                            actor_role: str, recorded_at: datetime) -> None:
        """A dependant (child, spouse, parent, other) born in birth_year lives with the resident; the name is
        sealed."""
        self.dependants = {**self.dependants, dependant_id: {
            "name": name, "birth_year": birth_year, "relation": relation, "school_status": None, "school": None}}

    def _dependant(self, dependant_id: str) -> dict[str, Any]:
        dependant = self.dependants.get(dependant_id)
        if dependant is None:
            raise InvalidValue("dependant_id", f"resident {self.id} has no dependant {dependant_id}",
                               rule="unknown_dependant")
        return dependant

    def _check_service_date(self, day: date, stamp: Stamp, field_name: str) -> None:
        self.check_not_erased()
        check_effective_date(day, stamp, earliest=self.registered_on, field_name=field_name)
        self.check_present_on(day, field_name)

    def request_school_place(self, *, dependant_id: str, school: str, requested_on: date, stamp: Stamp) -> None:
        """A school place asked for a dependant; not while one is pending
        (``school_placement_pending``) or held (``already_placed``)."""
        dependant = self._dependant(dependant_id)
        self.check_present()
        self._check_service_date(requested_on, stamp, "requested_on")
        if dependant["school_status"] == SchoolStatus.REQUESTED:
            raise RuleViolated(f"a place at {dependant['school']} is requested already and not decided",
                               rule="school_placement_pending", school=dependant["school"])
        if dependant["school_status"] == SchoolStatus.PLACED:
            raise RuleViolated(f"the dependant has a place at {dependant['school']} already", rule="already_placed",
                               school=dependant["school"])
        self._school_placement_requested(dependant_id=dependant_id, school=school, requested_on=requested_on,
                                         **stamp.event_fields())

    @event("SchoolPlacementRequested")
    def _school_placement_requested(self, *, dependant_id: str, school: str, requested_on: date, actor_id: str,
                                    actor_role: str, recorded_at: datetime) -> None:
        """A place at school was requested for the resident's dependant on requested_on."""
        self._school(dependant_id, status=SchoolStatus.REQUESTED.value, school=school,
                     requested_on=requested_on.isoformat())

    def _pending_request(self, dependant_id: str, day: date, stamp: Stamp, field_name: str) -> dict[str, Any]:
        dependant = self._dependant(dependant_id)
        if dependant["school_status"] != SchoolStatus.REQUESTED:
            raise RuleViolated("no school place is requested for this dependant; record the request first",
                               rule="no_school_request", school_status=dependant["school_status"])
        check_effective_date(day, stamp, earliest=date.fromisoformat(dependant["requested_on"]),
                             earliest_rule="decided_before_request", field_name=field_name)
        self._check_service_date(day, stamp, field_name)  # found by a review: decided after an erasure, or while away
        return dependant

    def place_at_school(self, *, dependant_id: str, school: str, placed_on: date, stamp: Stamp) -> None:
        """The pending request is granted (``no_school_request`` without one), at the
        school asked or another."""
        self._pending_request(dependant_id, placed_on, stamp, "placed_on")
        self._school_placed(dependant_id=dependant_id, school=school, placed_on=placed_on, **stamp.event_fields())

    @event("SchoolPlaced")
    def _school_placed(self, *, dependant_id: str, school: str, placed_on: date, actor_id: str, actor_role: str,
                       recorded_at: datetime) -> None:
        """The resident's dependant was given a place at school on placed_on."""
        self._school(dependant_id, status=SchoolStatus.PLACED.value, school=school)

    def refuse_school_place(self, *, dependant_id: str, school: str, refused_on: date, reason: str,
                            stamp: Stamp) -> None:
        self._pending_request(dependant_id, refused_on, stamp, "refused_on")
        self._school_placement_refused(dependant_id=dependant_id, school=school, refused_on=refused_on,
                                       reason=reason, **stamp.event_fields())

    @event("SchoolPlacementRefused")
    def _school_placement_refused(self, *, dependant_id: str, school: str, refused_on: date, reason: str,
                                  actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The school refused the dependant a place on refused_on, for the reason given; a new request may follow."""
        self._school(dependant_id, status=SchoolStatus.REFUSED.value, school=school)

    def _school(self, dependant_id: str, *, status: str, school: str, **more: str) -> None:
        dependant = self.dependants.get(dependant_id, {})
        self.dependants = {**self.dependants, dependant_id: {**dependant, "school_status": status, "school": school,
                                                             **more}}

    def deliver_service(self, *, kind: str, delivered_on: date, provider: str, stamp: Stamp) -> None:
        """A service delivered to the resident (family planning is a service here, not a
        dispute); the event keeps the site and area they lived in when it was recorded."""
        try:
            service = ServiceKind(kind)
        except ValueError:
            raise InvalidValue("kind", f"unknown service {kind!r}; one of: "
                               + ", ".join(k.value for k in ServiceKind), rule="service_kind") from None
        # A clinic reports late: a service of a day before a departure is taken after it (found by
        # a review); one dated while they were away is not (_check_service_date).
        self._check_service_date(delivered_on, stamp, "delivered_on")
        self._service_delivered(kind=service.value, delivered_on=delivered_on, provider=provider,
                                site_id=self.site_id, area=self.area, **stamp.event_fields())

    @event("ServiceDelivered")
    def _service_delivered(self, *, kind: str, delivered_on: date, provider: str, site_id: UUID | None, area: str,
                           actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A service (health_check, training, legal_aid, family_planning) was delivered to the resident on
        delivered_on by provider, where they lived (site_id, area)."""

    # -- personal data ---------------------------------------------------------
    def identifying_numbers(self) -> list[str]:
        """What names this resident and nobody else: their identity, phone and permit numbers
        (a name may be another resident's too)."""
        return [n for n in self.identifying_texts() if n not in (self.name, *(
            str(d.get("name") or "") for d in self.dependants.values()))]

    def identifying_texts(self) -> list[str]:
        """What names this resident in free text: their name, identity number, phone number,
        the numbers of every residence permit issued to them (found by a review: an erasure's
        note, or a committee's minutes, quoting one kept it readable) and their dependants'
        names (erased ones name nobody)."""
        numbers = [*getattr(self, "permit_numbers", []), *([str(self.permit["number"])]
                                                           if self.permit and self.permit.get("number") else [])]
        return [self.name, self.id_number, self.phone, *dict.fromkeys(n for n in numbers if n != ERASED),
                *(str(d.get("name") or "") for d in self.dependants.values())]

    def erase_personal_data(self, *, legal_basis: str, note: str, stamp: Stamp) -> None:
        """Record the erasure; the application destroys the key that encrypts this
        resident's personal fields in the same transaction. Everything else stays."""
        try:
            basis = LegalBasis(legal_basis)
        except ValueError:
            raise InvalidValue("legal_basis", f"unknown legal basis {legal_basis!r}; one of: "
                               + ", ".join(b.value for b in LegalBasis), rule="legal_basis") from None
        if self.erased_on is not None:
            raise RuleViolated(f"resident {self.id}'s personal data was erased on {self.erased_on}",
                               rule="already_erased")
        # The note is kept after the key is gone (it says why the data went): it must not
        # spell out what it erases.
        phone_digits = "".join(c for c in self.phone if c.isdigit()) if self.phone != ERASED else ""
        if mentions(note, self.identifying_texts()) or (
                len(phone_digits) >= 7 and phone_digits in "".join(c for c in note if c.isdigit())):
            raise InvalidValue("note", "the note must not name the resident, their dependants, their identity "
                               "number or their phone number: it outlives the erasure", rule="note_names_the_resident")
        self._personal_data_erased(legal_basis=basis.value, note=note, **stamp.event_fields())

    @event("PersonalDataErased")
    def _personal_data_erased(self, *, legal_basis: str, note: str, actor_id: str, actor_role: str,
                              recorded_at: datetime) -> None:
        """The resident's personal data was erased (PIPL Art. 47): their key destroyed, the rest kept."""
        self.name = ERASED
        self.id_number = ERASED
        self.phone = ERASED
        # Where they come from and who employs them, beside a birth date, point at one person
        # (found by a review): erased too on the record; the birth date is not shown.
        self.hometown = ERASED
        self.employer = None
        # Optional, so blanked rather than marked: read back from the sealed event it is
        # [erased], which readers show as not recorded too.
        self.household_relation = None
        self.housing = {**self.housing, "address": None, "landlord": None}
        self.erased_on = recorded_at.astimezone(OFFICE_TZ).date().isoformat()  # the office's day
        if self.permit is not None and self.permit.get("number") is not None:  # sealed under their key
            self.permit = {**self.permit, "number": ERASED}
        self.permit_numbers = []
        self.dependants = {k: {**v, "name": ERASED} for k, v in self.dependants.items()}
        if self.departure_reason is not None:  # sealed under their key: read back, it is [erased] too
            self.departure_reason = ERASED

    def _leave_site(self, site: HousingSite | None, effective_date: date, reason: str, stamp: Stamp) -> None:
        if (site.id if site is not None else None) != self.site_id:
            raise ValueError("the resident's current site must be passed as previous_site")
        if site is not None:
            site.release(self.id, effective_date, reason, stamp)


def _as_of(timeline: list[list[object]] | list[list[str]], on: date) -> object:
    """The value of the last entry of ``timeline`` that took effect on or before ``on``."""
    value: object = None
    day = on.isoformat()
    for since, entry in timeline:
        if str(since) > day:
            break
        value = entry
    return value


def _household_relation(value: HouseholdRelation | str | None) -> str | None:
    if value is None:
        return None
    try:
        return HouseholdRelation(value).value
    except ValueError:
        raise InvalidValue("household_relation", f"unknown household relation {value!r}; one of: "
                           + ", ".join(r.value for r in HouseholdRelation), rule="household_relation") from None


class IdentityNumberClaim(Aggregate):
    """One per identity number, so two registrations of the same person race for the
    same aggregate and only one can be saved. Holds the resident's id so the refusal can
    name it. Its id is a keyed hash of the number, computed by the application (the key
    is a secret of the office): nobody can enumerate numbers from it, and the claim
    itself does not record the number."""

    class Claimed(Aggregate.Created):
        """An identity number was claimed for a resident at their registration, by whom registered them."""

        class_version = 3
        resident_id: UUID | str  # stored sealed under the resident's key (a string)
        actor_id: str | None
        actor_role: str | None
        recorded_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Claims before version 2 recorded the number; it is dropped when read."""
            state.pop("id_number", None)

        @staticmethod
        def upcast_v2_v3(state: dict[str, object]) -> None:
            """Claims before version 3 named no actor (found by a review): none is known."""
            state.setdefault("actor_id", None)
            state.setdefault("actor_role", None)

    @classmethod
    def claim(cls, claim_id: UUID, *, resident_id: UUID, stamp: Stamp) -> IdentityNumberClaim:
        """The claim with the id the application derived from the number."""
        claim: IdentityNumberClaim = cls._create(cls.Claimed, id=claim_id, resident_id=resident_id,
                                                 **stamp.event_fields())
        return claim

    @event(Claimed)
    def __init__(self, *, resident_id: UUID | str, actor_id: str | None, actor_role: str | None,
                 recorded_at: datetime) -> None:
        # Sealed under the resident's key (a string when read): erasing them breaks the link
        # from the number to the record, and reads [erased].
        self.resident_id = resident_id

    def holder(self) -> UUID | None:
        """The resident who holds the number; None once their personal data was erased."""
        if self.resident_id is None or str(self.resident_id) == ERASED:
            return None
        return UUID(str(self.resident_id))

    def reclaim(self, *, resident_id: UUID, stamp: Stamp, holder_erased: bool = False) -> None:
        """The number is registered again after its holder's personal data was erased (the
        erased record knows no number any more). ``holder_erased``: the caller read the
        holder's record and found it erased (a claim read before the erasure still names them)."""
        if self.holder() is not None and not holder_erased:
            raise duplicate_identity_number(self.holder())
        self._reclaimed(resident_id=resident_id, **stamp.event_fields())

    @event("Reclaimed")
    def _reclaimed(self, *, resident_id: UUID | str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """An identity number whose holder was erased was claimed for a newly registered resident."""
        self.resident_id = resident_id


class PermitNumberClaim(Aggregate):
    """One per residence-permit number, so one number is never issued to two residents (found
    by a review: the same number was recorded for two). As the identity number's claim: its id
    is a keyed hash of the number (the application's), it records no number, and it names its
    holder under their key, so erasing them frees the number."""

    class Claimed(Aggregate.Created):
        """A residence-permit number was claimed for the resident it was issued to."""

        resident_id: UUID | str  # sealed under the resident's key (a string)
        actor_id: str
        actor_role: str
        recorded_at: datetime

    @classmethod
    def claim(cls, claim_id: UUID, *, resident_id: UUID, stamp: Stamp) -> PermitNumberClaim:
        claim: PermitNumberClaim = cls._create(cls.Claimed, id=claim_id, resident_id=resident_id,
                                               **stamp.event_fields())
        return claim

    @event(Claimed)
    def __init__(self, *, resident_id: UUID | str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        self.resident_id = resident_id

    def holder(self) -> UUID | None:
        """The resident the number was issued to; None once their personal data was erased."""
        if self.resident_id is None or str(self.resident_id) == ERASED:
            return None
        return UUID(str(self.resident_id))

    def check_free_for(self, resident_id: UUID, holder_erased: bool) -> None:
        """Refuse the number if another resident, not erased, holds it (``holder_erased``: the
        caller read the holder's record and found it erased)."""
        holder = self.holder()
        if holder is not None and holder != resident_id and not holder_erased:
            raise RuleViolated("this residence-permit number was issued to another resident; check the number "
                               "on the permit", rule="permit_number_issued", field="number")

    def reclaim(self, *, resident_id: UUID, stamp: Stamp) -> None:
        """The number is recorded for a resident again (its holder's data was erased)."""
        self._reclaimed(resident_id=resident_id, **stamp.event_fields())

    @event("Reclaimed")
    def _reclaimed(self, *, resident_id: UUID | str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A residence-permit number whose holder was erased was recorded for another resident."""
        self.resident_id = resident_id


_CLAIM_NAMESPACE = uuid5(NAMESPACE_URL, "urn:liudong:identity-number")


def legacy_claim_id(id_number: str) -> UUID:
    """How claims were identified before version 2 (a plain UUIDv5 of the number), still
    checked so a resident registered then is not registered twice."""
    return uuid5(_CLAIM_NAMESPACE, id_number)


def duplicate_identity_number(existing_resident_id: UUID | None) -> RuleViolated:
    """The refusal names the resident holding the number only to whom may read them (None:
    they are registered outside the caller's areas)."""
    if existing_resident_id is None:
        return RuleViolated("a resident with this identity number is already registered, outside your areas: "
                            "the office of the resident's area can tell who", rule="identity_number_registered")
    return RuleViolated(
        f"a resident with this identity number is already registered: {existing_resident_id}",
        rule="identity_number_registered",
        existing_resident_id=str(existing_resident_id),
    )
