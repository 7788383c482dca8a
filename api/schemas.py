"""Request and response bodies. Field names are a contract other offices code
against: change them only by adding."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.common import FIRST_YEAR, ISO_DAY, LAST_YEAR
from domain.residents import HouseholdRelation, LegalBasis
from domain.sites import Facility, OperatorType

# Characters no text field accepts: NUL and the other C0 controls except tab and line breaks,
# DEL, the C1 controls, the bidirectional embeddings, overrides and isolates (which make a name
# read differently from what is stored), and lone surrogates (which cannot be stored as UTF-8).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CONTROL_CHARACTERS = _CONTROL  # what no text field takes (tabs and line breaks it does)
_LINE_BREAKS = re.compile(r"[\t\n\r]")


def check_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (NUL and the like) and bidirectional overrides are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def check_line(value: str) -> str:
    check_text(value)
    if _LINE_BREAKS.search(value):
        raise ValueError("a single line: no tabs or line breaks")
    return value


Line = AfterValidator(check_line)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Line]
AreaName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), Line,
                     Field(description="an area's code, Chinese or English name (GET /areas)")]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Line]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 -]{4,19}$")]
# A JSON string, never a number: the domain checks it has at most two decimals and is positive.
Money = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20),
    Field(description='yuan as a decimal string with at most two decimals, e.g. "1200.50"', examples=["1200.50"]),
]
IdNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=18), Line]

# Dates and moments are ISO 8601 text (found by a review: pydantic read a JSON number, or digits
# such as "20260501" or ?effective_at=0, as seconds since 1970, and the dates it made were stored).
_ISO_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?")


def _year_in_range(text: str) -> None:
    if not FIRST_YEAR <= int(text[:4]) <= LAST_YEAR:
        raise PydanticCustomError("date_out_of_range", "a year from {first} to {last}",
                                  {"first": FIRST_YEAR, "last": LAST_YEAR})


def iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and ISO_DAY.fullmatch(value):
        _year_in_range(value)
        return value
    raise PydanticCustomError("date_format", "a date as text YYYY-MM-DD, e.g. 2026-11-01")


def iso_moment(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_MOMENT.fullmatch(value):
        _year_in_range(value)
        return value
    raise PydanticCustomError("datetime_format", "a moment as ISO 8601 text with its UTC offset, "
                                                 "e.g. 2026-06-01T12:00:00+08:00")


IsoDate = Annotated[date, BeforeValidator(iso_date)]
# A month as a query parameter: YYYY-MM, from 1900-01 to 2999-12.
MONTH_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"
IsoMoment = Annotated[datetime, BeforeValidator(iso_moment)]


def _temporal_check(annotation: Any) -> Any:
    """The check for a field of type date or datetime (or either or None), else None."""
    if annotation is datetime:
        return iso_moment
    if annotation is date:
        return iso_date
    if get_origin(annotation) in (Union, type(date | None)):
        checks = {_temporal_check(a) for a in get_args(annotation) if a is not type(None)}
        return checks.pop() if len(checks) == 1 else None
    return None


class Body(BaseModel):
    """Every request body: unknown fields (ids, versions, status, ... which the service
    sets) are refused, and no text may carry control characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or info.field_name is None:
            return value
        check = _temporal_check(cls.model_fields[info.field_name].annotation)
        return check(value) if check is not None else value

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        for text in _strings(value):
            check_text(text)
        return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


class Operator(Body):
    type: OperatorType = Field(description="village_cooperative, employer or government_entrusted")
    name: Name = Field(description="who runs the site, e.g. the cooperative's or company's name")


class SiteCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Ginkgo Community",
                    "area": "Xinqi Subdistrict",
                    "address": "1 Ginkgo Road",
                    "operator": {"type": "village_cooperative", "name": "Ginkgo Village Shareholding Cooperative"},
                    "capacity": 3000,
                    "facilities": ["kindergarten", "school", "police_post", "canteen"],
                }
            ]
        }
    )
    name: Name
    area: AreaName = Field(description="the street office, town or township the site lies in")
    address: Address
    operator: Operator
    capacity: int = Field(gt=0, le=100_000, strict=True, description="number of beds")
    facilities: list[Facility] = Field(default_factory=list, max_length=len(Facility))


class CapacityChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"capacity": 3200, "effective_date": "2026-09-01"}]})
    capacity: int = Field(gt=0, le=100_000, strict=True)
    effective_date: date | None = Field(
        default=None, description="the first day with this many beds (default today); not before the site's "
                                  "latest change of beds, never in the future")


class FacilitiesChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"facilities": ["clinic", "bank"]}]})
    facilities: list[Facility] = Field(max_length=len(Facility))


class CommitteeMember(Body):
    name: Name
    role: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = "member"
    resident_id: UUID | None = None


class CommunityCommitteeCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"established_on": "2006-07-15", "members": [{"name": "Wang Fang", "role": "chair"}]}]
        }
    )
    established_on: date
    members: list[CommitteeMember] = Field(min_length=1, max_length=50)


class SiteAssessmentCreate(Body):
    """What the site is on the day (成熟一个发展一个): the answer names what it lacks."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "assessed_on": "2005-11-30", "headcount": 3100, "operator_status": "clear", "villages": ["银杏村"],
        "facilities_present": ["kindergarten", "school", "police_post", "clinic", "canteen", "activity_room"]}]})
    assessed_on: date
    headcount: int = Field(ge=0, le=1_000_000, strict=True, description="people counted at the site on the day")
    facilities_present: list[Facility] = Field(default_factory=list, max_length=len(Facility))
    operator_status: Literal["clear", "disputed", "none"]
    villages: list[Name] = Field(min_length=1, max_length=10, description="the village(s) the site stands in")
    note: Reason | None = None


class PreparationCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "approved_on": "2005-12-19", "group": [{"name": "Wang Fang", "role": "head"}]}]})
    approved_on: date
    group: list[CommitteeMember] = Field(default_factory=list, max_length=30,
                                         description="the preparatory group (筹备组)")
    note: Reason | None = None


class Candidate(CommitteeMember):
    votes: int = Field(ge=0, le=1_000_000, strict=True)


class ElectionCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "held_on": "2006-07-15", "seats": 5, "ballots": 900,
        "candidates": [{"name": f"Candidate {n}", "votes": 800 - 40 * n} for n in range(1, 7)]}]})
    held_on: date
    seats: int = Field(ge=1, le=50, strict=True, description="5 to 9 (城市居民委员会组织法 art. 7)")
    candidates: list[Candidate] = Field(min_length=1, max_length=60)
    ballots: int | None = Field(default=None, ge=0, le=1_000_000, strict=True,
                                description="ballots cast; if given, each elected candidate needs more than half")


class CommunityMembersChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "changed_on": "2007-03-01", "left": ["m3"], "joined": [{"name": "Zhou Li", "role": "member"}],
        "reason": "moved away; co-opted until the next election"}]})
    changed_on: date
    joined: list[CommitteeMember] = Field(default_factory=list, max_length=9)
    left: list[Annotated[str, StringConstraints(min_length=1, max_length=16)]] = Field(default_factory=list,
                                                                                      max_length=9)
    reason: Reason


class TermEnd(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ended_on": "2009-07-15"}]})
    ended_on: date


class SiteClosure(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"closed_on": "2026-11-01", "reason": "demolished"}]})
    closed_on: date
    reason: Reason


class ResidentCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id_number": "11010519491231002X",
                    "name": "Li Wei",
                    "phone": "13800138000",
                    "hometown": "Anhui",
                    "employer": "Hengli Textiles",
                    "area": "Xinqi Subdistrict",
                    "registered_on": "2026-03-01",
                    "household_relation": "head",
                }
            ]
        }
    )
    id_number: IdNumber = Field(description="18-character PRC identity number; a lowercase x is accepted")
    name: Name
    phone: Phone
    hometown: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = Field(
        description="home province"
    )
    employer: Name | None = None
    area: AreaName | None = Field(
        default=None,
        description="the area where the resident lives when registered; a key bound to one area may leave it out",
    )
    registered_on: date
    household_relation: HouseholdRelation | None = Field(
        default=None,
        description="relation to the head of the household the resident lives with (户主); leave it out when "
        "not recorded. Personal data: sealed like the name",
    )
    site_id: UUID | None = Field(
        default=None, description="the housing site the resident lives in from registered_on (a move into it is "
        "recorded with the registration); without an area, the site's area")
    housing: HousingIn | None = Field(
        default=None, description="where the resident lives from registered_on if not in a site: rented (with the "
        "landlord or the address), employer_dormitory or other (the default)")


class HousingIn(Body):
    """Where a resident moving out of sites lives: ``rented`` (with the landlord or the
    address), ``employer_dormitory`` or ``other``. A housing site is a move with site_id."""

    kind: Literal["site", "rented", "employer_dormitory", "other"]
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    landlord: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None


class MoveCreate(Body):
    """Either a move into a housing site (``site_id``) or out of sites into housing in an
    ``area`` (``housing``: its kind, and for a rented room the landlord or address; without
    it the kind is ``other``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "effective_date": "2026-03-02"},
                         {"area": "xinqi", "housing": {"kind": "rented", "address": "12 Lane 3, Yanhai Village",
                                                         "landlord": "Chen Jianguo"}, "effective_date": "2026-03-02"}]
        }
    )
    site_id: UUID | None = None
    area: AreaName | None = Field(default=None, description="for a move out of sites: the area")
    housing: HousingIn | None = Field(default=None, description="for a move out of sites: the kind of housing")
    effective_date: date


class StudyChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"school": "Xinqi Vocational School",
                                                               "effective_date": "2026-09-01"}]})
    school: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = Field(
        description="where the resident studies from effective_date; null: no longer studying")
    effective_date: date


class DepartureCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"effective_date": "2026-10-01", "reason": "returned to hometown"}]}
    )
    effective_date: date
    reason: Reason


class ReturnCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"effective_date": "2026-11-01", "area": "Xinqi Subdistrict"}]}
    )
    effective_date: date
    area: AreaName


class EmployerChange(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"employer": "Hengli Textiles", "effective_date": "2026-05-01"}]}
    )
    employer: Name | None
    effective_date: date


# -- responses: what clients receive ------------------------------------------------------
# Personal fields may be masked (an api_consumer without the pii scope) or read "[已删除]" /
# "[erased]" once erased; "area" is the area's code, "area_name" its name.
T = TypeVar("T")


class Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandAccepted(Public):
    id: UUID
    version: int = Field(description="the aggregate's version after the command (its ETag)")
    position: int = Field(description="global event position; pass as ?after= to read your write")
    member_id: str | None = Field(default=None, description="the new member (POST .../members)")
    meeting_id: str | None = Field(default=None, description="the new meeting (POST .../meetings)")
    cases_erased: int | None = Field(default=None, description="disputes whose text was erased with the resident")
    texts_erased: int | None = Field(default=None, description="committee texts (agenda, minutes, actions) naming "
                                     "the resident, erased with them")
    dependant_id: str | None = Field(default=None, description="the new dependant (POST .../dependants)")
    missing_conditions: list[str] | None = Field(default=None, description="what the assessed site lacks to "
                                                 "become a community (POST /sites/{id}/assessments)")
    elected: list[str] | None = Field(default=None, description="member ids elected (POST /sites/{id}/elections)")
    joined: list[str] | None = Field(default=None, description="new members' ids (POST .../community-members)")
    item_ids: list[str] | None = Field(default=None, description="the new agenda items (POST .../meetings/{id}/agenda)")


class PageOut(Public, Generic[T]):
    items: list[T]
    total: int = Field(description="how many items match: exact where the view keeps counts (residents and "
                                   "permits by area, site, status, housing, permit status), else counted exactly "
                                   "up to 1,000 and above that PostgreSQL's estimate (total_estimated: true)")
    next: str | None = Field(description="cursor for the next page, or null")
    total_estimated: bool = Field(default=False, description="true: total is an estimate (a large result)")


class OperatorPublic(Public):
    type: str
    name: str
    id: UUID | None = Field(default=None, description="the operator record that runs the site now (GET "
                            "/operators/{id}); null when no record is assigned")


class CommitteeMemberPublic(Public):
    name: str | None
    role: str | None = None
    resident_id: UUID | None = None
    member_id: str | None = None
    joined_on: date | None = None


class CommunityCommitteePublic(Public):
    established_on: date
    members: list[CommitteeMemberPublic]


class Detail(BaseModel):
    """A part of a record the service builds from its events: the fields named here are
    always of these types; a record may carry more (``additionalProperties``), so a client
    should ignore the keys it does not know."""

    model_config = ConfigDict(extra="allow")


class SiteMemberPublic(Detail):
    name: str | None = Field(default=None, description="masked (李*) for an api_consumer without the pii scope")
    role: str | None = None
    resident_id: UUID | None = Field(default=None, description="set when the member is a registered resident")
    member_id: str | None = Field(default=None, description="an elected member's id (m1, m2, ...)")
    votes: int | None = Field(default=None, description="an elected member's votes")


class SiteAssessmentPublic(Detail):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "assessed_on": "2005-11-30", "headcount": 3100,
        "facilities_present": ["kindergarten", "school", "police_post", "clinic", "canteen", "activity_room"],
        "facilities_missing": [], "operator_status": "clear", "villages": ["银杏村"], "missing_conditions": []}]})
    assessed_on: date | None = None
    headcount: int | None = Field(default=None, description="people counted at the site on the day")
    facilities_present: list[str] | None = None
    facilities_missing: list[str] | None = Field(default=None, description="of the checklist of the day")
    operator_status: str | None = Field(default=None, description="clear, disputed or none")
    villages: list[str] | None = None
    missing_conditions: list[str] | None = Field(default=None, description="what the site lacked to become a "
                                                 "community on the day")


class SitePreparationPublic(Detail):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "approved_on": "2005-12-19", "group": [{"name": "Wang Fang", "role": "head"}]}]})
    approved_on: date | None = None
    group: list[SiteMemberPublic] = Field(default_factory=list, description="the preparatory group (筹备组)")


class ElectedCommitteePublic(Detail):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "elected_on": "2006-07-15", "seats": 5, "term_ended_on": None, "members_changed_on": "2007-03-01",
        "members": [{"name": "Candidate 1", "role": "member", "votes": 760, "member_id": "m1"}]}]})
    elected_on: date | None = None
    seats: int | None = None
    members: list[SiteMemberPublic] = Field(default_factory=list, description="the sitting members")
    term_ended_on: date | None = None
    members_changed_on: date | None = Field(default=None, description="the latest change of members between "
                                            "elections")


class SitePublic(Public):
    id: UUID
    version: int
    name: str
    area: str
    area_name: str | None = None
    address: str
    operator: OperatorPublic
    capacity: int
    occupants: int
    free_beds: int
    facilities: list[str]
    community_committee: CommunityCommitteePublic | None
    closed_on: date | None
    registered_at: datetime
    stage: str | None = Field(default=None, description="unassessed, assessed, preparation, community, term_ended")
    assessment: SiteAssessmentPublic | None = Field(default=None, description="the latest assessment")
    preparation: SitePreparationPublic | None = None
    elected_committee: ElectedCommitteePublic | None = Field(default=None,
                                                             description="the elected community committee")


class SiteListItem(Public):
    id: UUID
    name: str
    area: str
    address: str
    operator_type: str
    operator_name: str
    capacity: int
    occupants: int
    free_beds: int
    facilities: list[str]
    community_committee: bool
    community_committee_established_on: date | None
    closed: bool
    version: int
    stage: str | None = None
    band: str | None = Field(default=None, description="over_1000, 500_to_1000, under_500: by the latest assessed "
                             "headcount, else by registered occupants")
    headcount: int | None = Field(default=None, description="the latest assessment's headcount")
    operator_status: str | None = None
    assessed_on: date | None = None
    missing_conditions: list[str] | None = None


class PipelineSite(Public):
    id: UUID
    name: str
    area: str
    stage: str
    band: str
    headcount: int | None
    occupants: int
    operator_status: str | None
    assessed_on: date | None
    missing_conditions: list[str] | None
    preparation_approved_on: date | None
    elected_on: date | None
    term_ended_on: date | None
    lacks: list[str] = Field(description="what the site lacks for its next step")
    ready: bool = Field(description="assessed, fresh, and nothing missing: a preparation may be approved")


class PipelineStage(Public):
    stage: str
    count: int
    sites: list[PipelineSite]


class SitePipelinePublic(Public):
    stages: list[PipelineStage]
    sites: list[PipelineSite] = Field(default_factory=list, description="every site of the stages, flat")


class HousingPublic(Public):
    kind: str
    address: str | None = Field(default=None, description="staff and the pii scope only")
    landlord: str | None = Field(default=None, description="staff and the pii scope only")


class ResidentPublic(Public):
    id: UUID
    version: int
    name: str
    id_number_masked: str
    sex: str
    birth_date: date | None = Field(description="null for an api_consumer without the pii scope (see birth_year)")
    birth_year: int | None = None
    hometown: str
    employer: str | None
    status: str
    site_id: UUID | None
    area: str
    area_name: str | None = None
    since: date
    registered_on: date
    departure_reason: str | None
    phone: str | None = Field(default=None, description="staff and the pii scope only")
    household_relation: HouseholdRelation | None = Field(
        default=None,
        description="relation to the head of household; null when not recorded, erased, or for an api_consumer "
        "without the pii scope",
    )
    erased_on: date | None = None
    housing: HousingPublic | None = Field(default=None, description="the kind of housing (site, rented, "
                                          "employer_dormitory, other); address and landlord for staff and pii only")
    school: str | None = Field(default=None, description="where the resident studies, if recorded")


class ResidentListItem(Public):
    id: UUID
    name: str
    id_number_masked: str
    sex: str
    birth_date: date | None
    birth_year: int | None = None
    hometown: str
    employer: str | None
    status: str
    site_id: UUID | None
    area: str
    since: date
    registered_on: date
    permit_status: str | None
    permit_number: str | None
    endorsement_due: date | None
    version: int
    housing_kind: str | None = Field(default=None, description="site, rented, employer_dormitory or other; null "
                                     "while departed")


class PermitListItem(Public):
    resident_id: UUID
    name: str
    id_number_masked: str
    area: str
    site_id: UUID | None
    status: str
    number: str | None
    endorsement_due: date | None


class CaseListItem(Public):
    id: UUID
    category: str
    status: str
    priority: str
    assignee: str | None
    agency: str | None
    site_id: UUID | None
    area: str
    occurred_on: date
    logged_on: date
    response_due: date
    resolution_due: date
    first_assigned_on: date | None
    resolved_on: date | None
    outcome: str | None
    breaches: list[str]
    version: int
    overdue: bool
    age_days: int
    amount_recovered: str | None = None


class PartyPublic(Public):
    resident_id: UUID | None = None
    name: str | None = None
    kind: str | None = None


class TimelineEntry(Public):
    event: str
    version: int
    actor_id: str | None
    actor_role: str | None
    recorded_at: datetime | None
    facts: dict[str, Any] = Field(description="the event's own fields, which differ by event (docs/events.md), "
                                  "with free text and names hidden or masked as elsewhere for the reader")


class DisputePublic(Public):
    id: UUID
    version: int
    category: str
    status: str
    priority: str
    description: str | None
    parties: list[PartyPublic]
    site_id: UUID | None
    area: str
    area_name: str | None = None
    occurred_on: date
    logged_on: date
    assignee: str | None
    agency: str | None
    response_due: date
    resolution_due: date
    overdue: bool
    outcome: str | None
    amount_recovered: str | None
    resolved_by: str | None
    breaches: list[str]
    allowed_actions: list[str]
    timeline: list[TimelineEntry]


class CommitteeListItem(Public):
    id: UUID
    name: str
    area: str
    site_id: UUID | None
    established_on: date
    version: int
    active_members: int
    vacancies: int
    members_left: int
    turnover: int
    months_missed: int | None = Field(default=None, description="months recorded without a meeting (sweep)")
    last_meeting_on: date | None = None
    open_actions: int | None = None
    overdue_actions: int | None = Field(default=None, description="open action items past their due date")


class CommitteeSeatPublic(Detail):
    member_id: str | None = None
    name: str | None = Field(default=None, description="masked (李*) for an api_consumer without the pii scope")
    role: str | None = None
    resident_id: UUID | None = Field(default=None, description="set when the member is a registered resident")
    joined_on: date | None = None
    status: str | None = Field(default=None, description="active, or vacant while the member is away from the "
                               "district")
    departed: bool | None = Field(default=None, description="the seat is vacant: its member left the district")
    vacated_on: date | None = Field(default=None, description="since when the seat is vacant")
    vacancy_reason: str | None = Field(default=None, description="GET .../agenda: why the seat is vacant; null for "
                                       "an api_consumer without the pii scope")
    left_on: date | None = Field(default=None, description="GET .../agenda: the day a removed member left")
    left_reason: str | None = Field(default=None, description="GET .../agenda: why; null for an api_consumer "
                                    "without the pii scope")


class AgendaItemPublic(Detail):
    item_id: str | None = None
    dispute_id: UUID | None = Field(default=None, description="the open case the item takes up")
    title: str | None = Field(default=None, description="free text; null for an api_consumer without the pii scope")
    topic: str | None = Field(default=None, description="disputes, public_order, rights, family_planning or "
                              "sanitation")


class DecisionPublic(AgendaItemPublic):
    decision: str | None = Field(default=None, description="free text; null for an api_consumer without the pii "
                                 "scope")


class MinutesPublic(Detail):
    held_on: date | None = None
    attendees: list[str] = Field(default_factory=list, description="member ids")
    quorum: bool | None = Field(default=None, description="whether the members present made a quorum")
    decisions: list[DecisionPublic] = Field(default_factory=list)


class MeetingPublic(Detail):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "meeting_id": "5f1c2a9b7d3e", "scheduled_on": "2026-12-05",
        "agenda": [{"item_id": "1", "dispute_id": "0e5f6a9c-2f51-4f0e-9b5b-3f9a2f0c1d11", "topic": "disputes"}],
        "minutes": {"held_on": "2026-12-05", "attendees": ["a1b2c3d4e5f6"], "quorum": True,
                    "decisions": [{"item_id": "1", "dispute_id": "0e5f6a9c-2f51-4f0e-9b5b-3f9a2f0c1d11",
                                   "topic": "disputes", "decision": "Refer to labour inspection"}]}}]})
    meeting_id: str | None = None
    scheduled_on: date | None = None
    agenda: list[AgendaItemPublic] = Field(default_factory=list)
    minutes: MinutesPublic | None = Field(default=None, description="null until the meeting is held")


class AgendaMeetingPublic(Detail):
    """A meeting as the agenda view keeps it: the minutes' fields beside the agenda."""

    meeting_id: str | None = None
    scheduled_on: date | None = None
    agenda: list[AgendaItemPublic] = Field(default_factory=list)
    held_on: date | None = Field(default=None, description="null for an upcoming meeting")
    attendees: list[str] | None = Field(default=None, description="member ids")
    quorum: bool | None = None
    decisions: list[DecisionPublic] | None = None


class ActionItemPublic(Detail):
    action_id: str | None = None
    meeting_id: str | None = None
    item_id: str | None = None
    topic: str | None = None
    description: str | None = Field(default=None, description="free text; null for an api_consumer without the "
                                    "pii scope")
    owner: str | None = Field(default=None, description="the member_id who sees it done")
    due_on: date | None = None
    done_on: date | None = None


class CommitteePublic(Public):
    id: UUID
    version: int
    name: str
    area: str
    area_name: str | None = None
    site_id: UUID | None
    established_on: date
    members: list[CommitteeSeatPublic]
    quorum: int
    meetings: list[MeetingPublic]


class AgendaPublic(Public):
    members: list[CommitteeSeatPublic]
    upcoming: list[AgendaMeetingPublic]
    past: list[AgendaMeetingPublic]
    actions: list[ActionItemPublic] = Field(default_factory=list, description="action items set by decisions")
    months_missed: list[str] = Field(default_factory=list, description="months (YYYY-MM) without a meeting")


class ProgramPublic(Public):
    id: UUID
    version: int
    name: str
    purpose: str
    fiscal_year: int
    modes: list[str]
    budget: str
    committed: str
    paid: str
    remaining: str
    opened_at: datetime | None = None


class InstalmentPublic(Public):
    amount: str
    due_on: date | None


class ApprovalPublic(Public):
    approved_by: str
    note: str | None
    recorded_at: datetime


class PaymentPublic(Public):
    amount: str
    reference: str
    paid_on: date


class RevocationPublic(Public):
    reason: str | None
    claw_back: str


class ApplicationPublic(Public):
    id: UUID
    version: int
    program_id: UUID
    fiscal_year: int
    site_id: UUID
    site_area: str
    operator_type: str
    amount: str
    mode: str
    justification: str | None = Field(description="why; null for an api_consumer without the pii scope (it may "
                                      "name people)")
    instalments: list[InstalmentPublic]
    status: str
    submitted_by: str
    submitted_at: datetime
    approvals_required: int
    approvals: list[ApprovalPublic]
    approved_on: date | None
    schedule: list[InstalmentPublic]
    target: str | None = Field(default=None, description="a reward in lieu: the outcome it rewards")
    target_due: date | None = Field(default=None, description="a reward in lieu: verified by this day or it lapses")
    outcome_verified_on: date | None
    payments: list[PaymentPublic]
    paid: str
    due_today: str
    rejection_reason: str | None
    revocation: RevocationPublic | None


class ApplicationListItem(Public):
    id: UUID
    program_id: UUID
    fiscal_year: int
    site_id: UUID
    site_area: str
    operator_type: str
    mode: str
    status: str
    amount: str
    approvals: int
    approvals_required: int
    approved_on: date | None
    committed: str
    paid: str
    claw_back: str
    outcome_verified_on: date | None
    target_due: date | None = None
    submitted_by: str
    submitted_at: datetime
    version: int
    due: str | None = Field(default=None, description="with payable_on: what may be paid with that day as the "
                            "payment date (the instalments fallen due by then, less what was paid)")


# -- operators (运作主体) and co-building (结对共建) ---------------------------------------
class OperatorSitePublic(Public):
    site_id: UUID
    site_area: str
    assigned_on: date


class OperatorReportPublic(Public):
    year: int
    income_from_site: str
    reinvested_management: str
    reinvested_sanitation: str
    reinvested_facilities: str
    reinvested: str = Field(description="management + sanitation + facilities")
    reinvestment_ratio: str | None = Field(description="reinvested / income to four places; null without income")
    corrected: bool = Field(description="the figures are a correction of the report first filed")


class OperatorEmployeePublic(Public):
    resident_id: UUID
    linked_on: date


class OperatorRecordPublic(Public):
    id: UUID
    version: int
    type: str
    name: str
    contact: str | None = Field(description="the contact person; null for a reader who may not see personal data")
    area: str
    sites: list[OperatorSitePublic]
    employees: list[OperatorEmployeePublic]
    reports: list[OperatorReportPublic]
    inspections: int
    registered_at: datetime
    contact_erased_on: date | None = Field(default=None, description="when the contact person's data was erased")


class OperatorListItem(Public):
    id: UUID
    type: str
    name: str
    area: str
    employees: int
    sites: list[OperatorSitePublic]
    reports: list[OperatorReportPublic]
    registered_at: datetime
    version: int


class SanitationInspectionPublic(Public):
    operator_id: UUID
    inspected_on: date
    score: int
    change: int | None = Field(description="score minus the previous inspection's; null for the first")
    findings: str
    recorded_at: datetime


class SanitationTrendPublic(Public):
    site_id: UUID
    inspections: list[SanitationInspectionPublic]


class SupportRow(Public):
    operator_type: str
    area: str | None = None
    sites: int
    beds: int
    residents: int
    paid: str
    committed: str
    paid_per_bed: str | None
    committed_per_bed: str | None
    paid_per_resident: str | None
    committed_per_resident: str | None


class SupportByTypePublic(Public):
    fiscal_year: int | None
    by_operator_type: list[SupportRow]
    by_area: list[SupportRow]


class ContributionPublic(Public):
    delivered_on: date
    kind: str
    description: str
    value_yuan: str | None


class PairingPublic(Public):
    id: UUID
    version: int
    site_id: UUID
    site_area: str
    partner_type: str
    partner_name: str
    agreed_on: date
    ended_on: date | None
    contributions: list[ContributionPublic]
    total_value: str


class PairingListItem(Public):
    id: UUID
    site_id: UUID
    site_area: str
    partner_type: str
    partner_name: str
    agreed_on: date
    ended_on: date | None
    contributions: int
    total_value: str
    version: int


class KindTotal(Public):
    count: int
    value: str


class SiteCobuildingRow(Public):
    site_id: UUID
    site_area: str
    site_name: str | None
    subsidies_paid: str
    subsidies_committed: str
    contributions: int
    contributions_value: str
    by_kind: dict[str, KindTotal]


class CobuildingBySitePublic(Public):
    fiscal_year: int | None
    sites: list[SiteCobuildingRow]


class LedgerTotals(Detail):
    fiscal_year: int | None = None
    operator_type: str | None = None
    applications: int | None = None
    approved: str | None = Field(default=None, description="every amount that took effect, revoked later or not")
    committed: str | None = Field(default=None, description="what the applications hold of their programs now")
    paid: str | None = None
    claw_back: str | None = None


class LedgerSiteTotals(LedgerTotals):
    site_id: UUID | None = None
    site_area: str | None = None


class LedgerPublic(Public):
    fiscal_year: int | None
    programs: list[ProgramPublic]
    by_operator_type: list[LedgerTotals]
    by_site: list[LedgerSiteTotals]
    support_per_bed_by_operator_type: list[SupportRow] | None = Field(
        default=None, description="paid and committed per bed and per resident of the open sites of each operator "
        "type (as GET /operators/support-by-type): equal treatment in numbers")
    contributions_by_site: list[SiteCobuildingRow] | None = Field(
        default=None, description="co-building partners' contributions beside the government's subsidies per site "
        "(as GET /pairings/by-site): the government-cost problem in numbers")


class DisputeCounts(Public):
    opened: int = Field(description="disputes that occurred in the month")
    resolved: int = Field(description="disputes resolved in the month")
    median_days_to_resolve: float | None = Field(description="of those resolved in the month; null for none")


class StatisticsRow(Public):
    area: str
    month: str
    arrivals: int
    departures: int
    moves: int
    population_at_month_end: int
    turnover_rate: float | None
    disputes: dict[str, DisputeCounts] = Field(description="by dispute category")
    housing_at_month_end: dict[str, int] | None = Field(default=None, description="residents by kind of housing: "
                                                        "site, rented, employer_dormitory, other")
    concentrated: int | None = Field(default=None, description="residents in housing sites (集中居住) at month end")
    scattered: int | None = Field(default=None, description="residents in rented rooms (分散居住) at month end")
    elsewhere: int | None = Field(default=None, description="residents outside sites and rented rooms (employer "
                                  "dormitories, other housing) at month end: concentrated + scattered + elsewhere "
                                  "is the population")
    concentrated_share: float | None = Field(default=None, description="concentrated / population at month end")


class AreaPublic(Public):
    code: str
    name_zh: str
    name_en: str
    level: str
    parent: str | None
    version: int


class KeyPublic(Public):
    key_id: UUID | None
    user_id: str
    role: str
    areas: list[str]
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    rotated_from: UUID | None


class HistoryEntry(Public):
    position: int = Field(description="the event's global position in the store")
    version: int = Field(description="the record's version after the event")
    event: str = Field(description="the event's stable name, e.g. Resident.MovedIntoSite")
    actor_id: str | None
    actor_role: str | None
    recorded_at: datetime | None = Field(description="when the office recorded it")
    effective_date: date | None = Field(description="when it took effect in the world (or the day recorded)")
    reason: str | None = Field(description="the reason or note given, where the reader may see it")
    summary: str


class AccessLogEntry(Public):
    id: int
    at: datetime
    user_id: str
    role: str
    resident_id: UUID | None
    route: str = Field(description="how the record was read: the method and path asked (`GET /residents/…`, "
                       "`GET /ui/cases/…`), or the command (`liudong audit export`)")
    detail: str | None


class KeyIssued(CommandAccepted):
    key: str | None = Field(default=None, description="the key itself, shown only in this answer")


StatusFilter = Literal["in_site", "private_housing", "departed"]
HousingKindFilter = Literal["site", "rented", "employer_dormitory", "other"]


class ErasureCreate(Body):
    """A request to erase a person's personal data (a resident, or an operator's contact person)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "legal_basis": "data_subject_request", "note": "request 2026-117 received by post on 2026-11-02"}]})

    legal_basis: LegalBasis = Field(description="why (PIPL Art. 47)")
    note: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="the request's reference and reason; never the person's name or numbers")
