"""Active members (骨干), "migrants managing migrants" (以外管外): identified, trained,
appointed, their employer's agreement, and their loss; per site, who is left and which roles
nobody holds; by month, what was gained and lost."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from api.access import READERS, STAFF, AreaRule, access
from api.deps import (
    RECORDED,
    Command,
    PrincipalDep,
    ServicesDep,
    after,
    command_dependency,
    created,
    read_route,
    reading_as,
    respond,
)
from api.deps import STAFF as STAFF_ROLES
from api.problems import Problem
from api.schemas import MONTH_PATTERN, AreaName, Body, IsoDate, Name, Public
from application.audit import record_access
from domain.active_members import ActiveMember, ActiveMemberRole, LossReason
from domain.common import OFFICE_TZ
from domain.residents import add_months
from projections.active_members import list_active_members, monthly, site_summaries

router = APIRouter(prefix="/active-members", tags=["active members"])

Work = Annotated[Command, command_dependency(*STAFF_ROLES)]
Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="a month, YYYY-MM")]
MAX_MONTHS = 60


class ActiveMemberCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "resident_id": "1704080f-817d-40a4-aeda-8b7ab0fba005", "identified_on": "2026-03-01"}]})
    resident_id: UUID
    site_id: UUID | None = Field(default=None, description="the site they serve; default: the one they live in")
    area: AreaName | None = Field(default=None, description="or the area they serve (no site)")
    identified_on: date


class TrainingCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"course": "Mediation basics",
                                                               "trained_on": "2026-04-12"}]})
    course: Name
    trained_on: date


class AppointmentCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "group_leader", "appointed_on": "2026-05-01"}]})
    role: ActiveMemberRole
    appointed_on: date


class RoleEndingCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "group_leader", "ended_on": "2026-10-31"}]})
    role: ActiveMemberRole
    ended_on: date


class EmployerLiaisonCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "employer": "Hengli Textiles", "agreed_on": "2026-04-01",
        "note": "day shifts on the committee's meeting Saturdays"}]})
    employer: Name
    agreed_on: date
    note: Annotated[str, Field(min_length=1, max_length=500, description=(
        "how the shifts allow the work; sealed as personal data"))]


class LossCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"lost_on": "2026-11-01", "reason": "resigned"}]})
    lost_on: date
    reason: LossReason


class RolePublic(Public):
    role: str
    appointed_on: date


class TrainingPublic(Public):
    course: str
    trained_on: date


class LiaisonPublic(Public):
    employer: str
    agreed_on: date
    note: str | None


class ActiveMemberPublic(Public):
    id: UUID
    version: int
    resident_id: UUID
    site_id: UUID | None
    area: str
    identified_on: date
    status: Literal["active", "lost"]
    trainings: list[TrainingPublic]
    roles: list[RolePublic]
    employer_liaisons: list[LiaisonPublic]
    lost_on: date | None
    lost_reason: str | None


class ActiveMemberListItem(Public):
    id: UUID
    version: int
    resident_id: UUID
    site_id: UUID | None
    area: str
    identified_on: date
    status: str
    trainings: int
    last_trained_on: date | None
    employer: str | None
    roles: list[str]
    lost_on: date | None
    lost_reason: str | None


class ActiveMemberList(Public):
    items: list[ActiveMemberListItem]
    total: int
    next: str | None = Field(default=None, description="the cursor of the next page; null on the last")
    total_estimated: bool = False


class SiteSummary(Public):
    site_id: UUID | None = Field(description="null: the members of an area who serve no one site")
    area: str
    active_members: int
    lost_last_12_months: int
    roles_held: list[str]
    succession_gaps: list[str] = Field(description="roles no active member of the site holds")


class SiteSummaries(Public):
    on: date
    items: list[SiteSummary]


class MonthRow(Public):
    month: str
    area: str
    identified: int
    trained: int
    appointed: int
    lost: int
    active_at_start: int
    loss_rate: float | None = Field(description="lost in the month / active at its start; null with none active")


class MonthlyStatistics(Public):
    items: list[MonthRow]


def _today(services: ServicesDep) -> date:
    return services.clock().astimezone(OFFICE_TZ).date()


def _month(value: str) -> date:
    return date.fromisoformat(value + "-01")


@router.post("", status_code=201, responses=created("active member"))
@access(STAFF, AreaRule.REFERENCE)
def identify(body: ActiveMemberCreate, cmd: Work) -> JSONResponse:
    """Identify a resident present in the district as an active member (骨干) of a site or an area (default: where
    they live). One record per resident: a second identification is refused (409 already_identified)."""
    if body.site_id is not None and body.area is not None:
        raise Problem(422, "Invalid request", "give the site_id or the area they serve, not both",
                      rule="site_or_area", errors=[{"field": "area", "rule": "site_or_area",
                                                    "message": "site_id or area"}])
    return cmd.run(lambda stamp, claim: cmd.app.identify_active_member(
        resident_id=body.resident_id, site_id=body.site_id, area=body.area, identified_on=body.identified_on,
        stamp=stamp, idempotency=claim), status=201, location=lambda r: f"/active-members/{r.id}")


@router.get("", response_model=ActiveMemberList)
@access(READERS, AreaRule.LIST)
def list_members(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("active_members")],
    site_id: UUID | None = None, area: Annotated[AreaName | None, Query()] = None,
    status: Literal["active", "lost"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="members per page")] = 1000,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """Active members of a site or an area (the active_members view), with their roles, 1,000 a page
    by default; ``next`` names the following page."""
    code = services.app.areas.resolve(area) if area else None
    with services.pool.connection() as conn:
        page = list_active_members(conn, site_id=site_id, area=code, status=status, areas=principal.area_filter(),
                                   limit=limit, cursor=cursor)
    return respond(ActiveMemberList(items=[ActiveMemberListItem.model_validate(i) for i in page.items],
                                    total=page.total, next=page.next_cursor, total_estimated=page.total_estimated),
                   headers)


@router.get("/sites", response_model=SiteSummaries)
@access(READERS, AreaRule.LIST)
def sites_summary(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("active_members")],
    site_id: UUID | None = None, area: Annotated[AreaName | None, Query()] = None,
    on: Annotated[IsoDate | None, Query(description="losses counted in the twelve months up to this day "
                                                 "(default today)")] = None,
) -> JSONResponse:
    """Per site: active members, losses in the last twelve months, and the roles nobody holds (succession gaps)."""
    code = services.app.areas.resolve(area) if area else None
    day = on or _today(services)
    with services.pool.connection() as conn:
        items = site_summaries(conn, on=day, site_id=site_id, area=code, areas=principal.area_filter())
    return respond(SiteSummaries(on=day, items=[SiteSummary.model_validate(i) for i in items]), headers)


@router.get("/monthly", response_model=MonthlyStatistics)
@access(READERS, AreaRule.LIST)
def monthly_statistics(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("active_members")],
    area: Annotated[AreaName | None, Query()] = None, start: Annotated[Month | None, Query(alias="from")] = None,
    end: Annotated[Month | None, Query(alias="to")] = None,
) -> JSONResponse:
    """Per month and area: active members identified, trained, appointed and lost, active at the month's start,
    and the loss rate. Default: the last twelve months."""
    last = _month(end) if end else _today(services).replace(day=1)
    first = _month(start) if start else add_months(last, -11)
    if first > last or add_months(first, MAX_MONTHS) <= last:
        raise Problem(422, "Invalid request", f"from must not be after to, and at most {MAX_MONTHS} months apart",
                      rule="month_range", errors=[{"field": "from", "rule": "month_range", "message": "range"}])
    code = services.app.areas.resolve(area) if area else None
    with services.pool.connection() as conn:
        items = monthly(conn, first=first, last=last, area=code, areas=principal.area_filter())
    return respond(MonthlyStatistics(items=[MonthRow.model_validate(i) for i in items]), headers)


@router.get("/{member_id}", response_model=ActiveMemberPublic)
@access(READERS, AreaRule.OBJECT)
def get_member(member_id: UUID, services: ServicesDep, principal: PrincipalDep, request: Request) -> JSONResponse:
    """One active member, current as of their last event (ETag: the version). The employer liaison's note is
    personal data: shown to staff and the pii scope only. Every read is in the access log, under the resident."""
    with reading_as(principal):
        member = services.app.load(ActiveMember, member_id)
    with services.pool.connection() as conn:
        record_access(conn, principal, member.resident_id, read_route(request), detail=str(member_id))
    doc = member.summary()
    if not principal.sees_personal_data:
        doc["employer_liaisons"] = [{**liaison, "note": None} for liaison in doc["employer_liaisons"]]
    return respond(ActiveMemberPublic.model_validate(doc), {"ETag": f'"{member.version}"'})


@router.post("/{member_id}/trainings", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_training(member_id: UUID, body: TrainingCreate, cmd: Work) -> JSONResponse:
    """Record a course the active member completed."""
    return cmd.run(lambda stamp, claim: cmd.app.record_active_member_training(
        member_id, course=body.course, trained_on=body.trained_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{member_id}/appointments", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def appoint(member_id: UUID, body: AppointmentCreate, cmd: Work) -> JSONResponse:
    """Appoint the active member group_leader, representative or committee_member; not after they were lost (409
    active_member_lost), nor to a role they hold (409 role_already_held)."""
    return cmd.run(lambda stamp, claim: cmd.app.appoint_active_member(
        member_id, role=body.role.value, appointed_on=body.appointed_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{member_id}/role-endings", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def end_role(member_id: UUID, body: RoleEndingCreate, cmd: Work) -> JSONResponse:
    """End a role the active member holds (409 role_not_held otherwise); they stay an active member."""
    return cmd.run(lambda stamp, claim: cmd.app.end_active_member_role(
        member_id, role=body.role.value, ended_on=body.ended_on, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{member_id}/employer-liaisons", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def agree_employer_liaison(member_id: UUID, body: EmployerLiaisonCreate, cmd: Work) -> JSONResponse:
    """Record that the member's employer agreed their shifts allow the work (the note is sealed)."""
    return cmd.run(lambda stamp, claim: cmd.app.agree_employer_liaison(
        member_id, employer=body.employer, agreed_on=body.agreed_on, note=body.note, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{member_id}/loss", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_loss(member_id: UUID, body: LossCreate, cmd: Work) -> JSONResponse:
    """Record that the active member was lost (moved_away, resigned; a departure from the district records it
    itself); the roles they held end."""
    return cmd.run(lambda stamp, claim: cmd.app.record_active_member_loss(
        member_id, lost_on=body.lost_on, reason=body.reason.value, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))
