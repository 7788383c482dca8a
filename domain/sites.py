"""Housing sites (集中居住点): who runs them, how many beds, who lives there."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.common import InvalidValue, RuleViolated, Stamp, check_distinct_residents, check_effective_date


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


class OperatorStatus(StrEnum):
    """Who runs the site, as an assessment found it: one clear operator, an operator in
    dispute (a site straddling villages, an owner and a tenant at odds), or none."""

    CLEAR = "clear"
    DISPUTED = "disputed"
    NONE = "none"


class CommunityStage(StrEnum):
    """成熟一个发展一个: a site becomes a community one step at a time."""

    UNASSESSED = "unassessed"  # never assessed
    ASSESSED = "assessed"  # assessed; ready or not (the assessment lists what is missing)
    PREPARATION = "preparation"  # preparatory group (筹备组) approved
    COMMUNITY = "community"  # a committee elected (or established before stages were recorded)
    TERM_ENDED = "term_ended"  # the committee's term ended; the next election is due


# The seed's census bands (30 sites over 1,000 people, 19 of 500 to 1,000, the rest under 500).
BANDS = ("over_1000", "500_to_1000", "under_500")
ASSESSMENT_VALID_DAYS = 90
SEATS_MIN, SEATS_MAX = 5, 9  # 城市居民委员会组织法 art. 7: a committee of five to nine


def size_band(headcount: int) -> str:
    if headcount > 1000:
        return "over_1000"
    return "500_to_1000" if headcount >= 500 else "under_500"


def readiness_conditions(*, headcount: int, facilities_present: Iterable[str], operator_status: str,
                         checklist: Iterable[str], min_headcount: int) -> list[str]:
    """What the site lacks to become a community (population, facilities, a clear
    operator), each named: ``headcount``, ``facility:<name>``, ``operator_clear``."""
    missing = []
    if headcount < min_headcount:
        missing.append("headcount")
    present = set(facilities_present)
    missing.extend(f"facility:{f}" for f in sorted(set(checklist)) if f not in present)
    if operator_status != OperatorStatus.CLEAR:
        missing.append("operator_clear")
    return missing


def check_capacity(capacity: int) -> None:
    if capacity <= 0:
        raise InvalidValue("capacity", "capacity must be a positive number of beds", rule="capacity_not_positive")


class HousingSite(Aggregate):
    """A concentrated housing site. It counts its own occupants, so a move into it
    and the capacity check are one atomic write of this aggregate: two moves racing
    for the last bed cannot both be saved."""

    # Version 2 holds the community's stage, the latest assessment, the preparation and
    # the elected committee. Sites are snapshotted: a snapshot of version 1 reads with the
    # stage its community committee implies. Version 3 keeps the stays that ended, so that a
    # move recorded late is checked against the beds taken on its own date. Version 4 keeps
    # the beds the site had from each date on, so that such a move counts the beds of its days,
    # and the operator record that runs it, so that the site as of a date names that record.
    # Version 5 keeps the day its operator last changed: no other can take it over before then.
    class_version = 5

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A site of version 1 had no stages: a community if it had a committee."""
        state["stage"] = (CommunityStage.COMMUNITY if state.get("community_committee")
                          else CommunityStage.UNASSESSED).value
        state["assessment"] = None
        state["preparation"] = None
        state["community"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot of version 2 did not keep the stays that ended: a move recorded later
        with a date before the snapshot is checked against the occupants since (the next
        snapshot, 100 events on, keeps them all from there)."""
        state["ended_stays"] = []
        state["latest_change"] = max(state.get("occupants", {}).values(), default="")

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        """A snapshot of version 3 knew only today's beds (they count on every date, as then) and
        not the operator record that runs the site (read from the site's claim, as then)."""
        state["capacity_from"] = [["", state["capacity"]]]
        state["operator_id"] = None
        state["operators_before"] = []

    @staticmethod
    def upcast_v4_v5(state: dict[str, Any]) -> None:
        """A snapshot of version 4 did not keep the day its operator last changed: a take-over
        is checked against changes after the snapshot only."""
        state["operator_since"] = ""

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
        self.operator_id: UUID | None = None  # the operator record running the site, once one took it over
        # [type, name, record id (hex) or None] of the operators before the current one, latest last:
        # when the current one lets the site go, the one before runs it again.
        self.operators_before: list[list[Any]] = []
        self.operator_since = ""  # the day (ISO) the current operator took over or the last let go
        self.capacity = capacity
        # [first day (ISO; "" for always), beds] in date order: the beds the site had from each
        # date on, so that a move recorded late is checked against the beds of its own days.
        self.capacity_from: list[list[Any]] = [["", capacity]]
        self.facilities = list(facilities)
        # resident id (hex) -> date moved in; a dict so snapshots stay JSON.
        self.occupants: dict[str, str] = {}
        # [moved in, moved out] of the stays that ended (ISO dates), and the latest date any
        # stay began or ended: a move dated before it is checked against each day since.
        self.ended_stays: list[list[str]] = []
        self.latest_change = ""
        self.community_committee: dict[str, Any] | None = None
        self.closed_on: date | None = None
        self.stage = CommunityStage.UNASSESSED.value
        self.assessment: dict[str, Any] | None = None  # the latest, dates as ISO text
        self.preparation: dict[str, Any] | None = None
        self.community: dict[str, Any] | None = None  # the elected committee: members, seats, term

    def __deepcopy__(self, memo: dict[int, Any]) -> HousingSite:
        """The application's aggregate cache hands out deep copies. The occupants map holds
        only strings, so a plain copy of it is as deep as it needs to be, and a site of
        3,000 occupants is copied in microseconds rather than milliseconds."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for name, value in vars(self).items():
            clone.__dict__[name] = (dict(value) if name == "occupants"
                                    else list(value) if name in ("ended_stays", "capacity_from")
                                    else copy.deepcopy(value, memo))
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

    def check_open_on(self, day: date, field_name: str) -> None:
        """Refuse what happened at the site after the day it closed (found by a review: work
        dated after a closure was recorded as if the site still ran); late records of days
        before it are taken."""
        if self.closed_on is not None and day > self.closed_on:
            raise RuleViolated(
                f"housing site {self.id} closed on {self.closed_on.isoformat()}: nothing happens there on "
                f"{day.isoformat()}",
                rule="site_closed",
                site_id=str(self.id),
                closed_on=self.closed_on.isoformat(),
                field=field_name,
            )

    # -- commands -----------------------------------------------------------
    def _last_dated_change(self) -> str:
        """The latest day (ISO; "" for none) a stay began or ended or the beds changed."""
        return max(self.latest_change, str(self.capacity_from[-1][0]))

    def _last_own_record(self) -> str:
        """The latest day (ISO; "" for none) of the site's own dated records: its assessment,
        preparation, election, change of members or end of term, and its last change of operator."""
        community = self.community or {}
        days = [(self.assessment or {}).get("assessed_on"), (self.preparation or {}).get("approved_on"),
                community.get("elected_on"), community.get("members_changed_on"), community.get("term_ended_on"),
                self.operator_since]
        return max((str(d) for d in days if d), default="")

    def capacity_on(self, day: str) -> int:
        """The beds the site had on ``day`` (an ISO date), as known now."""
        beds = int(self.capacity_from[0][1])
        for since, count in self.capacity_from:
            if since > day:
                break
            beds = int(count)
        return beds

    def change_capacity(self, capacity: int, stamp: Stamp, effective_date: date | None = None) -> None:
        """The site has ``capacity`` beds from ``effective_date`` on (today if not given): not
        before the site's latest change of beds, and never fewer than the residents who lived
        there on any day since (found by a review: capacity changes had no date, so a move
        recorded late was counted against beds the site did not have yet)."""
        check_capacity(capacity)
        self.check_open()
        day = effective_date if effective_date is not None else stamp.today
        latest = str(self.capacity_from[-1][0])
        check_effective_date(day, stamp, earliest=date.fromisoformat(latest) if latest else None,
                             earliest_rule="capacity_change_before_latest")
        if capacity < len(self.occupants):
            raise RuleViolated(
                f"capacity {capacity} is below the {len(self.occupants)} current occupants",
                rule="capacity_below_occupants",
                occupants=len(self.occupants),
            )
        crowded = self._fullest_from(day.isoformat())
        if crowded is not None and crowded[1] > capacity:
            raise RuleViolated(
                f"capacity {capacity} from {day.isoformat()} is below the {crowded[1]} residents who lived "
                f"at the site on {crowded[0]}",
                rule="capacity_below_occupants",
                occupants=crowded[1],
                on=crowded[0],
                field="capacity",
            )
        if capacity == self.capacity:
            return
        self._capacity_changed(capacity=capacity, effective_date=day, **stamp.event_fields())

    class CapacityChanged(Aggregate.Event):
        """The site has a number of beds from the effective date on."""

        class_version = 2
        capacity: int
        effective_date: date | None  # None: recorded before changes were dated; counts on every date
        actor_id: str
        actor_role: str
        recorded_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Changes before version 2 had no date: the beds count on every date, as they did."""
            state["effective_date"] = None

    @event(CapacityChanged)
    def _capacity_changed(self, *, capacity: int, effective_date: date | None, actor_id: str, actor_role: str,
                          recorded_at: datetime) -> None:
        self.capacity = capacity
        if effective_date is None:
            self.capacity_from = [["", capacity]]
            return
        day = effective_date.isoformat()
        self.capacity_from = [*(c for c in self.capacity_from if c[0] < day), [day, capacity]]

    def change_operator(self, *, operator_type: str, operator_name: str, changed_on: date, stamp: Stamp,
                        operator_id: UUID | None = None, field_name: str = "changed_on") -> None:
        """An operator record took the site over: the site names it from ``changed_on`` (found by a
        review: the site went on naming the operator it was registered with)."""
        if (operator_type, operator_name, operator_id) == (self.operator_type, self.operator_name, self.operator_id):
            return
        # Not before the last change (found by a review: a second operator took a site over for
        # months another had run it, and both ran it then).
        check_effective_date(changed_on, stamp,
                             earliest=date.fromisoformat(self.operator_since) if self.operator_since else None,
                             earliest_rule="operator_change_before_latest", field_name=field_name)
        self._operator_changed(operator_type=operator_type, operator_name=operator_name, changed_on=changed_on,
                               operator_id=operator_id, returned=False, **stamp.event_fields())

    def return_to_previous_operator(self, *, operator_id: UUID, released_on: date, stamp: Stamp) -> None:
        """The operator record running the site let it go on ``released_on``: the operator before it
        runs the site again (the one it was registered with, or an earlier record), as a lease ends
        (found by a review: a released site went on naming the operator that let it go). A site that
        record does not run is left as it is, and so is a site closed before the release (found by a
        review: a closed site recorded an operator change dated after its closure)."""
        if self.operator_id != operator_id or (self.closed_on is not None and released_on > self.closed_on):
            return
        before_type, before_name, before_id = (self.operators_before[-1] if self.operators_before
                                               else [self.operator_type, self.operator_name, None])
        self._operator_changed(operator_type=str(before_type), operator_name=str(before_name), changed_on=released_on,
                               operator_id=UUID(before_id) if before_id else None, returned=True,
                               **stamp.event_fields())

    class OperatorChanged(Aggregate.Event):
        """Another operator runs the site from changed_on (an operator record took it over)."""

        class_version = 2
        operator_type: str
        operator_name: str
        changed_on: date
        operator_id: UUID | None  # the operator record; None before version 2
        returned: bool  # the operator before runs the site again (the current one let it go)
        actor_id: str
        actor_role: str
        recorded_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Changes before version 2 did not name the operator record (found by a review: the site
            as of a date named the record that runs it today)."""
            state["operator_id"] = None
            state["returned"] = False

    @event(OperatorChanged)
    def _operator_changed(self, *, operator_type: str, operator_name: str, changed_on: date,
                          operator_id: UUID | None, returned: bool, actor_id: str, actor_role: str,
                          recorded_at: datetime) -> None:
        if returned:
            self.operators_before = self.operators_before[:-1]
        else:
            self.operators_before = [*self.operators_before, [self.operator_type, self.operator_name,
                                                              self.operator_id.hex if self.operator_id else None]]
        self.operator_type = operator_type
        self.operator_name = operator_name
        self.operator_id = operator_id
        self.operator_since = max(self.operator_since, changed_on.isoformat())

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
        self.stage = CommunityStage.COMMUNITY.value

    # -- readiness and the community's stages (成熟一个发展一个) -------------------
    def assess(self, *, assessed_on: date, headcount: int, facilities_present: Iterable[str], operator_status: str,
               villages: list[str], checklist: list[str], min_headcount: int, note: str | None,
               stamp: Stamp) -> list[str]:
        """Record what the site is on the day (headcount counted, facilities present and
        missing against ``checklist``, the operator, the villages it straddles); returns
        the conditions it lacks to become a community."""
        self.check_open()
        check_effective_date(assessed_on, stamp, field_name="assessed_on")
        if headcount < 0:
            raise InvalidValue("headcount", "headcount is a number of people, not negative", rule="headcount_negative")
        try:
            status = OperatorStatus(operator_status)
        except ValueError:
            raise InvalidValue("operator_status", f"unknown operator status {operator_status!r}; one of: "
                               + ", ".join(o.value for o in OperatorStatus), rule="operator_status") from None
        present = parse_facilities(facilities_present)
        if not villages:
            raise InvalidValue("villages", "name the village (or villages) the site stands in", rule="villages_empty")
        if self.assessment is not None and assessed_on < date.fromisoformat(self.assessment["assessed_on"]):
            raise RuleViolated(f"an assessment of {self.assessment['assessed_on']} is recorded already; a later "
                               "one cannot predate it", rule="assessment_before_latest",
                               latest=self.assessment["assessed_on"])
        checked = sorted(set(checklist))
        missing = readiness_conditions(headcount=headcount, facilities_present=present, operator_status=status,
                                       checklist=checked, min_headcount=min_headcount)
        self._assessed(assessed_on=assessed_on, headcount=headcount, facilities_present=present,
                       facilities_missing=[f for f in checked if f not in present], operator_status=status.value,
                       villages=sorted(set(villages)), checklist=checked, min_headcount=min_headcount,
                       missing_conditions=missing, note=note, **stamp.event_fields())
        return missing

    @event("SiteAssessed")
    def _assessed(
        self, *, assessed_on: date, headcount: int, facilities_present: list[str], facilities_missing: list[str],
        operator_status: str, villages: list[str], checklist: list[str], min_headcount: int,
        missing_conditions: list[str], note: str | None, actor_id: str, actor_role: str, recorded_at: datetime,
    ) -> None:
        """The site was assessed on assessed_on: headcount counted on the day, facilities present and missing
        against the checklist of the day, the operator clear / disputed / none, the villages it straddles, and
        the conditions it lacks to become a community."""
        self.assessment = {
            "assessed_on": assessed_on.isoformat(), "headcount": headcount,
            "facilities_present": list(facilities_present), "facilities_missing": list(facilities_missing),
            "operator_status": operator_status, "villages": list(villages),
            "missing_conditions": list(missing_conditions),
        }
        if self.stage == CommunityStage.UNASSESSED:
            self.stage = CommunityStage.ASSESSED.value

    def preparation_missing(self, on: date) -> list[str]:
        """The conditions a preparation approved on ``on`` lacks: an assessment at all
        (``assessment``), one not older than 90 days (``fresh_assessment``), and the
        conditions the latest assessment lists."""
        if self.assessment is None:
            return ["assessment"]
        missing = []
        if (on - date.fromisoformat(self.assessment["assessed_on"])).days > ASSESSMENT_VALID_DAYS:
            missing.append("fresh_assessment")
        return missing + list(self.assessment["missing_conditions"])

    def approve_preparation(self, *, approved_on: date, group: list[dict[str, Any]], note: str | None,
                            stamp: Stamp) -> None:
        """Approve the preparatory group (筹备组): only for a site assessed as ready within
        the last 90 days, and not already on its way or a community."""
        self.check_open()
        check_effective_date(approved_on, stamp, field_name="approved_on")
        check_distinct_residents(group, "group", rule="member_named_twice")
        if self.stage not in (CommunityStage.UNASSESSED, CommunityStage.ASSESSED):
            raise RuleViolated(f"housing site {self.id} is at stage {self.stage}; a preparation comes after an "
                               "assessment and before an election", rule="stage_order", stage=self.stage)
        missing = self.preparation_missing(approved_on)
        if missing:
            raise RuleViolated(
                f"housing site {self.id} is not ready to become a community: missing {', '.join(missing)}",
                rule="site_not_ready", missing_conditions=missing,
                assessed_on=self.assessment["assessed_on"] if self.assessment else None,
            )
        if approved_on < date.fromisoformat(self.assessment["assessed_on"]):  # type: ignore[index]
            raise RuleViolated("a preparation cannot be approved before the assessment it rests on",
                               rule="approved_before_assessment")
        self._preparation_approved(approved_on=approved_on, group=group, note=note, **stamp.event_fields())

    @event("PreparationApproved")
    def _preparation_approved(self, *, approved_on: date, group: list[dict[str, Any]], note: str | None,
                              actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The preparatory group (筹备组) for a community at the site was approved on approved_on."""
        self.preparation = {"approved_on": approved_on.isoformat(), "group": list(group)}
        self.stage = CommunityStage.PREPARATION.value

    def hold_election(self, *, held_on: date, seats: int, candidates: list[dict[str, Any]], ballots: int | None,
                      stamp: Stamp) -> list[dict[str, Any]]:
        """Record an election: the ``seats`` candidates with the most votes are elected
        (a tie for the last seat needs a run-off; with ``ballots`` given, each elected
        candidate needs more than half of them). Returns the elected members."""
        self.check_open()
        check_effective_date(held_on, stamp, field_name="held_on")
        if self.stage not in (CommunityStage.PREPARATION, CommunityStage.TERM_ENDED):
            raise RuleViolated(f"housing site {self.id} is at stage {self.stage}; an election follows an approved "
                               "preparation or the end of a term", rule="election_not_prepared", stage=self.stage)
        since = (self.preparation or {}).get("approved_on") if self.stage == CommunityStage.PREPARATION else (
            self.community or {}).get("term_ended_on")
        if since and held_on < date.fromisoformat(since):
            raise RuleViolated(f"held_on {held_on.isoformat()} is before {since}", rule="election_before_preparation",
                               earliest=since)
        if not SEATS_MIN <= seats <= SEATS_MAX:
            raise InvalidValue("seats", f"a community committee has {SEATS_MIN} to {SEATS_MAX} members",
                               rule="seats_out_of_range")
        if len(candidates) < seats:
            raise InvalidValue("candidates", f"{len(candidates)} candidates for {seats} seats",
                               rule="too_few_candidates")
        check_distinct_residents(candidates, "candidates", rule="candidate_named_twice")
        if any(int(c["votes"]) < 0 for c in candidates):
            raise InvalidValue("candidates", "votes are not negative", rule="votes_negative")
        ranked = sorted(candidates, key=lambda c: -int(c["votes"]))
        if len(ranked) > seats and ranked[seats - 1]["votes"] == ranked[seats]["votes"]:
            raise RuleViolated(f"candidates tie for the last seat with {ranked[seats]['votes']} votes: hold a run-off",
                               rule="tie_for_last_seat", votes=int(ranked[seats]["votes"]))
        if ballots is not None:
            if any(int(c["votes"]) > ballots for c in candidates):
                raise InvalidValue("candidates", "a candidate has more votes than ballots cast",
                                   rule="votes_exceed_ballots")
            short = [c for c in ranked[:seats] if int(c["votes"]) * 2 <= ballots]
            if short:
                raise RuleViolated(f"{len(short)} of the top {seats} candidates have no more than half of the "
                                   f"{ballots} ballots: another round is needed", rule="elected_without_majority")
        elected = [{**c, "member_id": f"m{n}"} for n, c in enumerate(ranked[:seats], start=1)]
        self._election_held(held_on=held_on, seats=seats, candidates=list(candidates), ballots=ballots,
                            elected=elected, **stamp.event_fields())
        return elected

    @event("ElectionHeld")
    def _election_held(self, *, held_on: date, seats: int, candidates: list[dict[str, Any]], ballots: int | None,
                       elected: list[dict[str, Any]], actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The site's community committee was elected on held_on: seats, candidates with their votes, ballots
        cast, and the members elected."""
        self.community = {"elected_on": held_on.isoformat(), "seats": seats,
                          "members": {m["member_id"]: dict(m) for m in elected}, "term_ended_on": None,
                          "next_member": len(elected) + 1}
        self.stage = CommunityStage.COMMUNITY.value

    def _check_elected(self) -> None:
        if self.stage != CommunityStage.COMMUNITY or self.community is None:
            raise RuleViolated(f"housing site {self.id} has no elected community committee",
                               rule="no_elected_committee", stage=self.stage)

    def change_community_members(self, *, changed_on: date, joined: list[dict[str, Any]], left: list[str],
                                 reason: str, stamp: Stamp) -> list[str]:
        """Members leave (by member id) and join between elections; returns the new
        members' ids."""
        check_effective_date(changed_on, stamp, field_name="changed_on")
        self.check_open_on(changed_on, "changed_on")  # found by a review: a closed site's committee changed
        self._check_elected()
        assert self.community is not None
        if changed_on < date.fromisoformat(self.community["elected_on"]):
            raise RuleViolated("a change cannot predate the election", rule="changed_before_election",
                               earliest=self.community["elected_on"])
        if not joined and not left:
            raise InvalidValue("joined", "name who joins or who leaves", rule="no_change")
        unknown = sorted(set(left) - set(self.community["members"]))
        if unknown:
            raise InvalidValue("left", f"not members: {', '.join(unknown)}", rule="unknown_member")
        check_distinct_residents(joined, "joined", rule="member_named_twice")
        sitting = {str(m.get("resident_id")) for k, m in self.community["members"].items()
                   if k not in left and m.get("resident_id")}
        for n, member in enumerate(joined):
            if member.get("resident_id") is not None and str(member["resident_id"]) in sitting:
                raise RuleViolated(f"resident {member['resident_id']} already sits on the committee",
                                   rule="already_a_member", field=f"joined.{n}.resident_id")
        start = int(self.community["next_member"])
        added = [{**m, "member_id": f"m{start + n}"} for n, m in enumerate(joined)]
        remaining = len(self.community["members"]) - len(set(left)) + len(added)
        if remaining > SEATS_MAX:
            raise RuleViolated(f"a community committee has at most {SEATS_MAX} members", rule="seats_out_of_range")
        if remaining == 0:  # found by a review: a community of no committee still counted as one
            raise RuleViolated("every member cannot leave the community committee: elect anew or name who joins",
                               rule="community_without_members")
        self._community_members_changed(changed_on=changed_on, joined=added, left=sorted(set(left)), reason=reason,
                                        **stamp.event_fields())
        return [m["member_id"] for m in added]

    @event("CommunityMembersChanged")
    def _community_members_changed(self, *, changed_on: date, joined: list[dict[str, Any]], left: list[str],
                                   reason: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """Members left and joined the elected community committee between elections, for the reason given."""
        assert self.community is not None
        members = {k: v for k, v in self.community["members"].items() if k not in left}
        members.update({m["member_id"]: dict(m) for m in joined})
        self.community = {**self.community, "members": members,
                          "next_member": int(self.community["next_member"]) + len(joined),
                          "members_changed_on": max(str(self.community.get("members_changed_on") or ""),
                                                    changed_on.isoformat())}

    def end_term(self, *, ended_on: date, stamp: Stamp) -> None:
        check_effective_date(ended_on, stamp, field_name="ended_on")
        self.check_open_on(ended_on, "ended_on")
        self._check_elected()
        assert self.community is not None
        if ended_on < date.fromisoformat(self.community["elected_on"]):
            raise RuleViolated("a term cannot end before its election", rule="term_ended_before_election",
                               earliest=self.community["elected_on"])
        changed = self.community.get("members_changed_on")
        if changed and ended_on.isoformat() < changed:  # found by a review: a change to a term already over
            raise RuleViolated(f"the committee's members changed on {changed}: its term cannot end before",
                               rule="term_ended_before_members_changed", earliest=changed, field="ended_on")
        self._term_ended(ended_on=ended_on, **stamp.event_fields())

    @event("TermEnded")
    def _term_ended(self, *, ended_on: date, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The elected community committee's term ended on ended_on; the next election is due."""
        assert self.community is not None
        self.community = {**self.community, "term_ended_on": ended_on.isoformat()}
        self.stage = CommunityStage.TERM_ENDED.value

    def close(self, *, closed_on: date, reason: str, stamp: Stamp) -> None:
        self.check_open()
        # Not before the last move out (found by a review: a site dated closed in April showed
        # a resident living there in May) nor before its latest change of beds.
        latest = self._last_dated_change()
        check_effective_date(closed_on, stamp, earliest=date.fromisoformat(latest) if latest else None,
                             earliest_rule="closed_before_last_move", field_name="closed_on")
        # Nor before what the site itself recorded since (found by a review: an assessment, an
        # election or a take-over dated after the closure).
        recorded = self._last_own_record()
        if recorded:
            check_effective_date(closed_on, stamp, earliest=date.fromisoformat(recorded),
                                 earliest_rule="closed_before_last_record", field_name="closed_on")
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
        self.check_admission(resident_id, effective_date)
        self._resident_moved_in(resident_id=resident_id, effective_date=effective_date, **stamp.event_fields())

    def check_admission(self, resident_id: UUID, effective_date: date | None = None) -> None:
        """Refuse a resident the site cannot take (closed, full, living here already, or, for
        a move dated before the site's latest move, full on some day since that date),
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
        if effective_date is not None and effective_date.isoformat() < self._last_dated_change():
            full_on = self._full_on_or_after(effective_date.isoformat())
            if full_on is not None:
                raise RuleViolated(
                    f"housing site {self.id} was full on {full_on} ({self.capacity_on(full_on)} beds, all taken): "
                    f"a move on {effective_date.isoformat()} would have put someone in a bed that was not free",
                    rule="site_full",
                    capacity=self.capacity_on(full_on),
                    site_id=str(self.id),
                    full_on=full_on,
                )

    def _taken_by_day(self, day: str) -> list[tuple[str, int]]:
        """The beds taken at the end of ``day`` and of each later day on which a stay began or
        ended or the beds changed, in date order (a bed freed on a day is free that day)."""
        changes: dict[str, int] = {day: 0}
        for moved_in, moved_out in self.ended_stays:
            if moved_out > day:
                start = max(moved_in, day)
                changes[start] = changes.get(start, 0) + 1
                changes[moved_out] = changes.get(moved_out, 0) - 1
        for moved_in in self.occupants.values():
            start = max(moved_in, day)
            changes[start] = changes.get(start, 0) + 1
        for since, _beds in self.capacity_from:
            if since > day:
                changes.setdefault(since, 0)
        taken, days = 0, []
        for when in sorted(changes):
            taken += changes[when]
            days.append((when, taken))
        return days

    def _full_on_or_after(self, day: str) -> str | None:
        """The first day from ``day`` on when every bed was taken (found by a review: a move
        recorded late overfilled the site on its own date), counting the beds of each day, or None."""
        for when, taken in self._taken_by_day(day):
            if taken >= self.capacity_on(when):
                return when
        return None

    def _fullest_from(self, day: str) -> tuple[str, int] | None:
        """The first day from ``day`` on with the most residents, and how many, or None."""
        days = self._taken_by_day(day)
        most = max((taken for _when, taken in days), default=0)
        return next(((when, taken) for when, taken in days if taken == most), None) if most else None

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
        self.latest_change = max(self.latest_change, effective_date.isoformat())

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
        moved_in = self.occupants.pop(resident_id.hex, None)
        if moved_in is not None and moved_in < effective_date.isoformat():
            self.ended_stays.append([moved_in, effective_date.isoformat()])
        self.latest_change = max(self.latest_change, effective_date.isoformat())
