"""Housing sites (集中居住点): who runs them, how many beds, who lives there."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.common import InvalidValue, RuleViolated, Stamp, check_effective_date


class OperatorType(StrEnum):
    """运作主体: the three kinds of operator the office recognises."""

    VILLAGE_COOPERATIVE = "village_cooperative"
    EMPLOYER = "employer"
    GOVERNMENT_ENTRUSTED = "government_entrusted"


class Facility(StrEnum):
    KINDERGARTEN = "kindergarten"
    SCHOOL = "school"
    POLICE_POST = "police_post"
    CLINIC = "clinic"
    POST_OFFICE = "post_office"
    BANK = "bank"
    CANTEEN = "canteen"
    BATHHOUSE = "bathhouse"
    MARKET = "market"
    ACTIVITY_ROOM = "activity_room"
    LIBRARY = "library"
    SPORTS_GROUND = "sports_ground"
    LAUNDRY = "laundry"
    TRAINING_CENTRE = "training_centre"


def parse_facilities(values: Iterable[str]) -> list[str]:
    """Facilities from the fixed vocabulary, de-duplicated and sorted."""
    result: set[str] = set()
    allowed = {f.value for f in Facility}
    for value in values:
        if value not in allowed:
            raise InvalidValue(
                "facilities",
                f"unknown facility {value!r}; allowed: {', '.join(sorted(allowed))}",
                rule="facility_unknown",
            )
        result.add(value)
    return sorted(result)


def check_capacity(capacity: int) -> None:
    if capacity <= 0:
        raise InvalidValue("capacity", "capacity must be a positive number of beds", rule="capacity_not_positive")


class HousingSite(Aggregate):
    """A concentrated housing site. It counts its own occupants, so a move into it
    and the capacity check are one atomic write of this aggregate: two moves racing
    for the last bed cannot both be saved."""

    @classmethod
    def register(
        cls,
        *,
        name: str,
        area: str,
        address: str,
        operator_type: str,
        operator_name: str,
        capacity: int,
        facilities: Iterable[str],
        stamp: Stamp,
        site_id: UUID | None = None,
    ) -> HousingSite:
        """A new site; ``site_id`` is given where the site's identity comes from outside
        (an import names sites by the office's own codes), otherwise a new one is made."""
        check_capacity(capacity)
        try:
            operator = OperatorType(operator_type)
        except ValueError:
            raise InvalidValue(
                "operator.type",
                f"unknown operator type {operator_type!r}; allowed: "
                + ", ".join(t.value for t in OperatorType),
                rule="operator_type_unknown",
            ) from None
        fields = {
            "name": name,
            "area": area,
            "address": address,
            "operator_type": operator.value,
            "operator_name": operator_name,
            "capacity": capacity,
            "facilities": parse_facilities(facilities),
            **stamp.event_fields(),
        }
        if site_id is not None:
            given: HousingSite = cls._create(cls.Registered, id=site_id, **fields)  # type: ignore[attr-defined]
            return given
        site: HousingSite = cls(**fields)
        return site

    @event("Registered")
    def __init__(
        self,
        *,
        name: str,
        area: str,
        address: str,
        operator_type: str,
        operator_name: str,
        capacity: int,
        facilities: list[str],
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A housing site was registered: its operator, address, area, beds and facilities."""
        self.name = name
        self.area = area
        self.address = address
        self.operator_type = operator_type
        self.operator_name = operator_name
        self.capacity = capacity
        self.facilities = list(facilities)
        # resident id (hex) -> date moved in; a dict so snapshots stay JSON.
        self.occupants: dict[str, str] = {}
        self.community_committee: dict[str, Any] | None = None
        self.closed_on: date | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> HousingSite:
        """The application's aggregate cache hands out deep copies. The occupants map holds
        only strings, so a plain copy of it is as deep as it needs to be, and a site of
        3,000 occupants is copied in microseconds rather than milliseconds."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for name, value in vars(self).items():
            clone.__dict__[name] = dict(value) if name == "occupants" else copy.deepcopy(value, memo)
        return clone

    # -- queries ------------------------------------------------------------
    @property
    def is_closed(self) -> bool:
        return self.closed_on is not None

    @property
    def free_beds(self) -> int:
        return self.capacity - len(self.occupants)

    def houses(self, resident_id: UUID) -> bool:
        return resident_id.hex in self.occupants

    # -- guards -------------------------------------------------------------
    def check_open(self) -> None:
        if self.is_closed:
            raise RuleViolated(
                f"housing site {self.id} is closed",
                rule="site_closed",
                site_id=str(self.id),
            )

    # -- commands -----------------------------------------------------------
    def change_capacity(self, capacity: int, stamp: Stamp) -> None:
        check_capacity(capacity)
        self.check_open()
        if capacity < len(self.occupants):
            raise RuleViolated(
                f"capacity {capacity} is below the {len(self.occupants)} current occupants",
                rule="capacity_below_occupants",
                occupants=len(self.occupants),
            )
        if capacity == self.capacity:
            return
        self._capacity_changed(capacity=capacity, **stamp.event_fields())

    @event("CapacityChanged")
    def _capacity_changed(self, *, capacity: int, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The site's number of beds changed."""
        self.capacity = capacity

    def change_facilities(self, facilities: Iterable[str], stamp: Stamp) -> None:
        self.check_open()
        parsed = parse_facilities(facilities)
        if parsed == self.facilities:
            return
        self._facilities_changed(facilities=parsed, **stamp.event_fields())

    @event("FacilitiesChanged")
    def _facilities_changed(
        self, *, facilities: list[str], actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The site's facilities changed (the whole new list)."""
        self.facilities = list(facilities)

    def establish_community_committee(
        self, *, established_on: date, members: list[dict[str, Any]], stamp: Stamp
    ) -> None:
        self.check_open()
        check_effective_date(established_on, stamp, field_name="established_on")
        if self.community_committee is not None:
            raise RuleViolated(
                f"housing site {self.id} already has a community committee",
                rule="community_committee_exists",
                established_on=self.community_committee["established_on"].isoformat(),
            )
        if not members:
            raise InvalidValue(
                "members", "a community committee needs at least one member", rule="committee_without_members"
            )
        self._community_committee_established(
            established_on=established_on, members=members, **stamp.event_fields()
        )

    @event("CommunityCommitteeEstablished")
    def _community_committee_established(
        self,
        *,
        established_on: date,
        members: list[dict[str, Any]],
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A community committee (社区居委会) was set up at the site with its first members."""
        self.community_committee = {"established_on": established_on, "members": members}

    def close(self, *, closed_on: date, reason: str, stamp: Stamp) -> None:
        self.check_open()
        check_effective_date(closed_on, stamp, field_name="closed_on")
        if self.occupants:
            raise RuleViolated(
                f"housing site {self.id} still houses {len(self.occupants)} residents; move them out first",
                rule="site_has_occupants",
                occupants=len(self.occupants),
            )
        self._closed(closed_on=closed_on, reason=reason, **stamp.event_fields())

    @event("Closed")
    def _closed(self, *, closed_on: date, reason: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The site closed on closed_on, for the reason given; nobody moves in after."""
        self.closed_on = closed_on

    # Occupancy changes are recorded on the site as well as on the resident, and
    # saved with the resident's event in one transaction.
    def admit(self, resident_id: UUID, effective_date: date, stamp: Stamp) -> None:
        self.check_admission(resident_id)
        self._resident_moved_in(resident_id=resident_id, effective_date=effective_date, **stamp.event_fields())

    def check_admission(self, resident_id: UUID) -> None:
        """Refuse a resident the site cannot take (closed, full, living here already),
        without changing anything: a move checks it before the resident leaves a site."""
        self.check_open()
        if self.houses(resident_id):
            raise RuleViolated(
                f"resident {resident_id} already lives in housing site {self.id}",
                rule="already_in_site",
            )
        if self.free_beds <= 0:
            raise RuleViolated(
                f"housing site {self.id} is full ({self.capacity} beds, all taken)",
                rule="site_full",
                capacity=self.capacity,
                site_id=str(self.id),
            )

    @event("ResidentMovedIn")
    def _resident_moved_in(
        self,
        *,
        resident_id: UUID,
        effective_date: date,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A resident moved into the site on the effective date, taking a bed."""
        self.occupants[resident_id.hex] = effective_date.isoformat()

    def release(self, resident_id: UUID, effective_date: date, reason: str, stamp: Stamp) -> None:
        if not self.houses(resident_id):
            return
        self._resident_moved_out(
            resident_id=resident_id, effective_date=effective_date, reason=reason, **stamp.event_fields()
        )

    @event("ResidentMovedOut")
    def _resident_moved_out(
        self,
        *,
        resident_id: UUID,
        effective_date: date,
        reason: str,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A resident moved out of the site (moved elsewhere or departed), freeing a bed."""
        self.occupants.pop(resident_id.hex, None)
