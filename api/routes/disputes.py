"""Dispute cases (矛盾纠纷): log, assign, work, resolve, close, reopen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, model_validator

from api.access import READERS, STAFF, SUPERVISORS, AreaRule, access
from api.deps import (
    RECORDED,
    Command,
    Language,
    Limit,
    PrincipalDep,
    ServicesDep,
    after,
    command_dependency,
    created,
    page_response,
    read_route,
    respond,
)
from api.deps import STAFF as STAFF_ROLES
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.present import Presenter
from api.problems import Problem
from api.routes.history import EffectiveAt, KnownAt, record_at
from api.schemas import AreaName, Body, CaseListItem, DisputePublic, IsoDate, Money, Name, PageOut, Reason
from application import keys as auth
from application.access import Principal
from application.audit import record_case_access
from application.events import EventCatalogue, plain
from application.services import Services
from domain.disputes import Agency, DisputeCase, DisputeCategory, Outcome, Priority
from domain.money import format_money, parse_money
from projections.disputes import CaseFilter, list_cases

router = APIRouter(prefix="/disputes", tags=["disputes"])
open_cases_router = APIRouter()

Work = Annotated[Command, command_dependency(*STAFF_ROLES)]
Supervise = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
# Event fields that may name people: hidden from an api_consumer without the pii scope.
PERSONAL_FACTS = frozenset({"description", "parties", "text", "participants", "outcome", "reason", "decision"})
# Fields of those names that are not free text in the event carrying them, so every reader
# sees them: a resolution's outcome is one of the Outcome values (mediated_agreement, ...),
# which the dispute shows at its top level anyway; a mediation's outcome is free text.
# An event not named here keeps every field of those names hidden.
PLAIN_FACTS: dict[str, frozenset[str]] = {"Resolved": frozenset({"outcome"})}


class Party(Body):
    """A resident on the register (``resident_id``) or an outside party (``name`` and ``kind``)."""

    resident_id: UUID | None = None
    name: Name | None = None
    kind: Literal["employer", "landlord", "site_operator", "other"] | None = None

    @model_validator(mode="after")
    def one_kind_of_party(self) -> Party:
        if (self.resident_id is None) == (self.name is None):
            raise ValueError("a party is either {resident_id} or {name, kind}")
        if self.name is not None and self.kind is None:
            raise ValueError("an outside party needs a kind")
        return self


class DisputeCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "category": "wages_and_labour", "description": "Three months of wages unpaid by the dyeing works",
        "parties": [{"resident_id": "1704080f-817d-40a4-aeda-8b7ab0fba005"},
                    {"name": "Yuanda Dyeing Co.", "kind": "employer"}],
        "site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "priority": "high", "occurred_on": "2026-11-20"}]})
    category: DisputeCategory
    description: Text
    parties: list[Party] = Field(min_length=1, max_length=20)
    site_id: UUID | None = None
    area: AreaName | None = None
    priority: Priority = Priority.NORMAL
    occurred_on: date


class AssignmentCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"assignee": "zhang.caseworker"},
                                                              {"agency": "labour_inspection"}]})
    assignee: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    agency: Agency | None = None


class NoteCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Called the employer; meeting on Friday."}]})
    text: Text


class MediationCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "held_on": "2026-11-22", "participants": ["Li Wei", "Yuanda Dyeing Co."],
        "outcome": "employer agrees to pay by 30 November"}]})
    held_on: date
    participants: list[Name] = Field(min_length=1, max_length=50)
    outcome: Text


class EscalationCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"to": "management_committee",
                                                               "reason": "employer refuses mediation"}]})
    to: Literal["management_committee", "public_security", "labour_inspection", "family_planning", "sanitation",
                "street_office"]
    reason: Reason


class ResolutionCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"outcome": "mediated_agreement",
                                                               "amount_recovered": "12000.00"}]})
    outcome: Outcome
    amount_recovered: Money | None = None


class ReopeningCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "employer did not pay as agreed"}]})
    reason: Reason


class Empty(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{}]})


@router.post("", status_code=201, responses=created("dispute"))
@access(STAFF, AreaRule.CREATE)
def log_dispute(body: DisputeCreate, cmd: Work) -> JSONResponse:
    """Log a dispute; its response and resolution due dates follow the category's service level."""
    parties = [p.model_dump(mode="json", exclude_none=True) for p in body.parties]
    return cmd.run(
        lambda stamp, claim: cmd.app.log_dispute(
            category=body.category.value, parties=parties, site_id=body.site_id, area=body.area,
            description=body.description, priority=body.priority.value, occurred_on=body.occurred_on,
            stamp=stamp, idempotency=claim,
        ),
        status=201,
        location=lambda r: f"/disputes/{r.id}",
    )


CaseStatusFilter = Literal["logged", "assigned", "referred", "escalated", "resolved", "closed"]


@dataclass
class CaseQuery:
    """The filters both case lists take (query parameters)."""

    status: CaseStatusFilter | None = None
    category: DisputeCategory | None = None
    assignee: Annotated[str | None, Query(max_length=100)] = None
    site_id: UUID | None = None
    area: Annotated[AreaName | None, Query()] = None
    overdue: bool | None = None
    opened_from: IsoDate | None = None
    opened_to: IsoDate | None = None
    cursor: Annotated[str | None, Query(max_length=500)] = None

    def answer(self, services: Services, principal: Principal, view: str, headers: dict[str, str],
               limit: int) -> JSONResponse:
        flt = CaseFilter(status=self.status, category=self.category.value if self.category else None,
                         assignee=self.assignee, site_id=str(self.site_id) if self.site_id else None,
                         area=services.app.areas.resolve(self.area) if self.area else None, overdue=self.overdue,
                         opened_from=self.opened_from, opened_to=self.opened_to, areas=principal.area_filter())
        with services.pool.connection() as conn:
            page = list_cases(conn, flt, services.today(), limit, self.cursor, view=view)
        items = [{**item, "amount_recovered": _money(item.get("amount_recovered"))} for item in page.items]
        if view == "open_cases":
            items = [{k: v for k, v in item.items() if k != "amount_recovered"} for item in items]
        return page_response(page, headers, items, CaseListItem)


@router.get("", response_model=PageOut[CaseListItem])
@access(READERS, AreaRule.LIST)
def list_disputes(services: ServicesDep, principal: PrincipalDep, query: Annotated[CaseQuery, Depends()],
                  headers: Annotated[dict[str, str], after("case_details")], limit: Limit) -> JSONResponse:
    """Every dispute with status, assignee, age in days, due dates and an overdue flag (case_details)."""
    return query.answer(services, principal, "case_details", headers, limit)


@open_cases_router.get("/open-cases", response_model=PageOut[CaseListItem], tags=["disputes"])
@access(READERS, AreaRule.LIST)
def list_open_cases(services: ServicesDep, principal: PrincipalDep, query: Annotated[CaseQuery, Depends()],
                    headers: Annotated[dict[str, str], after("open_cases")], limit: Limit) -> JSONResponse:
    """The work queue: every dispute not closed, oldest first, with age, due dates and an overdue flag."""
    return query.answer(services, principal, "open_cases", headers, limit)


def _money(value: Any) -> str | None:
    return format_money(value) if value is not None else None


def timeline_entry(e: Any, presenter: Presenter, catalogue: EventCatalogue) -> dict[str, Any]:
    """What happened, by whom and when, with the event's own facts (the personal ones only
    for those who may read them)."""
    skip = {"originator_id", "originator_version", "timestamp", "actor_id", "actor_role", "recorded_at",
            "originator_topic"}
    facts: dict[str, Any] = {}
    shown_to_all = PLAIN_FACTS.get(type(e).__name__, frozenset())
    for key, value in vars(e).items():
        if key in skip:
            continue
        if key in PERSONAL_FACTS and key not in shown_to_all:
            value = presenter.parties(value) if key == "parties" else presenter.text(value)
        facts[key] = plain(value)
    recorded = getattr(e, "recorded_at", None)
    return {
        "event": type(e).__name__, "version": e.originator_version, "actor_id": getattr(e, "actor_id", None),
        "actor_role": getattr(e, "actor_role", None), "recorded_at": recorded, "facts": facts,
    }


@router.get("/{case_id}", response_model=DisputePublic)
@access(READERS, AreaRule.OBJECT)
def get_dispute(case_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep, lang: Language,
                known_at: KnownAt = None, effective_at: EffectiveAt = None) -> JSONResponse:
    """One dispute with its full timeline (who did what, when), current (ETag: its version) or as known at a moment
    and/or as true on a date. Every read is in the access log."""
    case = record_at(services, principal, DisputeCase, case_id, known_at, effective_at)
    with services.pool.connection() as conn:
        record_case_access(conn, principal, case.parties, case_id, read_route(request))
    today = services.today()
    presenter = Presenter(services.app.vault, principal, lang)
    catalogue = EventCatalogue.of_domain()
    timeline = [timeline_entry(e, presenter, catalogue) for e in services.app.events.get(case_id)]
    area = services.app.areas.get(case.area)
    doc = DisputePublic.model_validate({
        "id": case.id, "version": case.version, "category": case.category, "status": case.status,
        "priority": case.priority, "description": presenter.text(case.description),
        "parties": presenter.parties(case.parties),
        "site_id": case.site_id, "area": case.area,
        "area_name": (area.name_en if lang == "en" else area.name_zh) if area else None,
        "occurred_on": case.occurred_on, "logged_on": case.logged_on,
        "assignee": case.assignee, "agency": case.agency,
        "response_due": case.response_due, "resolution_due": case.resolution_due,
        "overdue": bool(case.overdue(today)),
        "outcome": case.outcome, "amount_recovered": _money(case.amount_recovered),
        "resolved_by": case.resolved_by, "breaches": case.breaches,
        "allowed_actions": case.allowed_actions, "timeline": timeline,
    })
    return respond(doc, {"ETag": f'"{case.version}"', "Cache-Control": "no-store"})


@router.post("/{case_id}/assignment", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def assign(case_id: UUID, body: AssignmentCreate, cmd: Supervise) -> JSONResponse:
    """Assign the case to a caseworker (user id) or refer it to an agency."""
    if body.assignee is not None and not auth.may_take_cases(cmd.services.pool, body.assignee):
        raise Problem(422, "Invalid value", f"{body.assignee} is not a caseworker or supervisor of this office",
                      rule="unknown_assignee",
                      errors=[{"field": "assignee", "rule": "unknown_assignee", "message": "no such caseworker"}])
    return cmd.run(lambda stamp, claim: cmd.app.assign_dispute(
        case_id, assignee=body.assignee, agency=body.agency.value if body.agency else None, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{case_id}/notes", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def add_note(case_id: UUID, body: NoteCreate, cmd: Work) -> JSONResponse:
    """Add a note to the case."""
    return cmd.run(lambda stamp, claim: cmd.app.add_dispute_note(
        case_id, text=body.text, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{case_id}/mediations", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def hold_mediation(case_id: UUID, body: MediationCreate, cmd: Work) -> JSONResponse:
    """Record a mediation meeting: when, who took part, what came of it."""
    return cmd.run(lambda stamp, claim: cmd.app.hold_mediation(
        case_id, held_on=body.held_on, participants=list(body.participants), outcome=body.outcome, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{case_id}/escalation", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def escalate(case_id: UUID, body: EscalationCreate, cmd: Work) -> JSONResponse:
    """Escalate to the management committee or an agency, with the reason."""
    return cmd.run(lambda stamp, claim: cmd.app.escalate_dispute(
        case_id, to=body.to, reason=body.reason, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{case_id}/resolution", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def resolve(case_id: UUID, body: ResolutionCreate, cmd: Work) -> JSONResponse:
    """Record the outcome; for wage cases, the amount recovered."""
    amount = parse_money(body.amount_recovered, "amount_recovered", allow_zero=True) \
        if body.amount_recovered is not None else None
    return cmd.run(lambda stamp, claim: cmd.app.resolve_dispute(
        case_id, outcome=body.outcome.value, amount_recovered=amount, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{case_id}/closure", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def close(case_id: UUID, body: Empty, cmd: Supervise) -> JSONResponse:
    """Close a resolved case: a supervisor who did not resolve it."""
    return cmd.run(lambda stamp, claim: cmd.app.close_dispute(
        case_id, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{case_id}/reopening", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def reopen(case_id: UUID, body: ReopeningCreate, cmd: Supervise) -> JSONResponse:
    """Reopen a resolved or closed case, with the reason; a new resolution deadline starts."""
    return cmd.run(lambda stamp, claim: cmd.app.reopen_dispute(
        case_id, reason=body.reason, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))
