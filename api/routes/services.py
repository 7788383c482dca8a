"""Services, the seed's "service first" (服务为先): a resident's dependants, school places
asked for, given and refused, and the services delivered to them (health checks, training,
legal aid, family planning); children of school age without a place per site, and services
delivered per month."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from api.access import READERS, STAFF, AreaRule, access
from api.deps import RECORDED, Command, PrincipalDep, ServicesDep, after, command_dependency, respond
from api.deps import STAFF as STAFF_ROLES
from api.problems import Problem
from api.schemas import MONTH_PATTERN, AreaName, Body, Name, Public, Reason
from domain.common import OFFICE_TZ
from domain.residents import MIN_BIRTH_YEAR, DependantRelation, ServiceKind, add_months
from projections.services import SCHOOL_AGE, school_gaps, services_by_month

router = APIRouter(tags=["services"])

ResidentCommand = Annotated[Command, command_dependency(*STAFF_ROLES)]
DependantId = Annotated[str, Field(min_length=1, max_length=40)]
Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="a month, YYYY-MM")]
MAX_MONTHS = 60


class DependantCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Li Xiaoming", "birth_year": 2017, "relation": "child"}]})
    name: Name = Field(description="personal data: sealed")
    birth_year: int = Field(ge=MIN_BIRTH_YEAR, le=2200, strict=True)
    relation: DependantRelation = DependantRelation.CHILD


class SchoolRequestCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "dependant_id": "3f2a9c1b7e40", "school": "Xinqi No. 2 Primary School", "requested_on": "2026-06-15"}]})
    dependant_id: DependantId
    school: Name
    requested_on: date


class SchoolPlacementCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "dependant_id": "3f2a9c1b7e40", "school": "Xinqi No. 2 Primary School", "placed_on": "2026-08-20"}]})
    dependant_id: DependantId
    school: Name
    placed_on: date


class SchoolRefusalCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "dependant_id": "3f2a9c1b7e40", "school": "Xinqi No. 2 Primary School", "refused_on": "2026-07-10",
        "reason": "no places left in year one"}]})
    dependant_id: DependantId
    school: Name
    refused_on: date
    reason: Reason


class ServiceCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "health_check", "delivered_on": "2026-05-12", "provider": "Xinqi Community Health Centre"}]})
    kind: ServiceKind = Field(description="family_planning (计划生育) is a service, not a dispute")
    delivered_on: date
    provider: Name


class SchoolGap(Public):
    site_id: UUID | None = Field(description="null: the children of residents living outside sites in the area")
    area: str
    children_without_place: int
    not_requested: int
    requested: int = Field(description="waiting for an answer")
    refused: int


class SchoolGaps(Public):
    year: int
    school_age: tuple[int, int]
    items: list[SchoolGap]


class ServiceMonth(Public):
    month: str
    kind: str
    site_id: UUID | None
    area: str
    delivered: int


class ServicesMonthly(Public):
    items: list[ServiceMonth]


def _today(services: ServicesDep) -> date:
    return services.clock().astimezone(OFFICE_TZ).date()


@router.post("/residents/{resident_id}/dependants", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_dependant(resident_id: UUID, body: DependantCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record a dependant living with the resident (name sealed, birth year, relation); the answer carries the
    new ``dependant_id``."""
    return cmd.run(lambda stamp, claim: cmd.app.record_dependant(
        resident_id, name=body.name, birth_year=body.birth_year, relation=body.relation.value, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/residents/{resident_id}/school-requests", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def request_school_place(resident_id: UUID, body: SchoolRequestCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record that a school place was asked for a dependant (409 school_placement_pending, already_placed)."""
    return cmd.run(lambda stamp, claim: cmd.app.request_school_place(
        resident_id, dependant_id=body.dependant_id, school=body.school, requested_on=body.requested_on,
        stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/residents/{resident_id}/school-placements", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def place_at_school(resident_id: UUID, body: SchoolPlacementCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record the school place given for a pending request (409 no_school_request without one)."""
    return cmd.run(lambda stamp, claim: cmd.app.place_at_school(
        resident_id, dependant_id=body.dependant_id, school=body.school, placed_on=body.placed_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/residents/{resident_id}/school-refusals", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def refuse_school_place(resident_id: UUID, body: SchoolRefusalCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record that a school refused the pending request, and why; a new request may follow."""
    return cmd.run(lambda stamp, claim: cmd.app.refuse_school_place(
        resident_id, dependant_id=body.dependant_id, school=body.school, refused_on=body.refused_on,
        reason=body.reason, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/residents/{resident_id}/services", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def deliver_service(resident_id: UUID, body: ServiceCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record a service delivered to the resident: health_check, training, legal_aid or family_planning; it counts
    at the site and area they live in."""
    return cmd.run(lambda stamp, claim: cmd.app.deliver_service(
        resident_id, kind=body.kind.value, delivered_on=body.delivered_on, provider=body.provider, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.get("/services/school-gaps", response_model=SchoolGaps)
@access(READERS, AreaRule.LIST)
def get_school_gaps(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("services")],
    site_id: UUID | None = None, area: Annotated[AreaName | None, Query()] = None,
    year: Annotated[int | None, Query(ge=MIN_BIRTH_YEAR, le=2200, description="default: this year")] = None,
) -> JSONResponse:
    """Per site: children of school age (6 to 15 in the year, from their birth year) living in the district without
    a school place: never asked for, waiting, or refused."""
    code = services.app.areas.resolve(area) if area else None
    asked = year or _today(services).year
    with services.pool.connection() as conn:
        items = school_gaps(conn, year=asked, site_id=site_id, area=code, areas=principal.area_filter())
    return respond(SchoolGaps(year=asked, school_age=SCHOOL_AGE, items=[SchoolGap.model_validate(i) for i in items]),
                   headers)


@router.get("/services/monthly", response_model=ServicesMonthly)
@access(READERS, AreaRule.LIST)
def get_services_monthly(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("services")],
    site_id: UUID | None = None, area: Annotated[AreaName | None, Query()] = None, kind: ServiceKind | None = None,
    start: Annotated[Month | None, Query(alias="from")] = None, end: Annotated[Month | None, Query(alias="to")] = None,
) -> JSONResponse:
    """Services delivered per month (of delivery), kind, site and area. Default: the last twelve months."""
    last = date.fromisoformat(end + "-01") if end else _today(services).replace(day=1)
    first = date.fromisoformat(start + "-01") if start else add_months(last, -11)
    if first > last or add_months(first, MAX_MONTHS) <= last:
        raise Problem(422, "Invalid request", f"from must not be after to, and at most {MAX_MONTHS} months apart",
                      rule="month_range", errors=[{"field": "from", "rule": "month_range", "message": "range"}])
    code = services.app.areas.resolve(area) if area else None
    with services.pool.connection() as conn:
        items = services_by_month(conn, first=first, last=last, kind=kind.value if kind else None, site_id=site_id,
                                  area=code, areas=principal.area_filter())
    return respond(ServicesMonthly(items=[ServiceMonth.model_validate(i) for i in items]), headers)
