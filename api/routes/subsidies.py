"""Subsidies (补助): programs with a budget, applications approved by four eyes,
payments by finance, and the ledger that shows where the money went."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StringConstraints

from api.access import FINANCE, READERS, STAFF, SUPERVISORS, VERIFIERS, AreaRule, access
from api.deps import (
    RECORDED,
    Command,
    Language,
    Limit,
    PrincipalDep,
    ServicesDep,
    after,
    after_all,
    command_dependency,
    created,
    page_response,
    reading_as,
    respond,
)
from api.deps import STAFF as STAFF_ROLES
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.present import Presenter
from api.schemas import (
    ApplicationListItem,
    ApplicationPublic,
    Body,
    IsoDate,
    LedgerPublic,
    Money,
    Name,
    PageOut,
    ProgramPublic,
    Reason,
)
from domain.common import Role
from domain.money import format_money
from domain.subsidies import (
    ApplicationStatus,
    Instalment,
    PaymentMode,
    SubsidyApplication,
    SubsidyProgram,
    SubsidyPurpose,
)
from projections.cobuilding import by_site as contributions_by_site
from projections.operators import support_by_type
from projections.subsidy_ledger import ApplicationFilter, ledger, list_applications, list_programs

router = APIRouter(tags=["subsidies"])

DecisionCommand = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]
SubmissionCommand = Annotated[Command, command_dependency(*STAFF_ROLES)]
PaymentCommand = Annotated[Command, command_dependency(Role.FINANCE)]
VerificationCommand = Annotated[Command, command_dependency(Role.SUPERVISOR)]

Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
FiscalYear = Annotated[int, Field(ge=2000, le=2100)]
FiscalYearInBody = Annotated[int, Field(ge=2000, le=2100, strict=True)]  # a number, not "2026" nor true


class SubsidyProgramCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Community facilities 2026", "purpose": "facilities", "fiscal_year": 2026,
                          "budget": "2000000.00", "modes": ["one_off", "phased", "reward_in_lieu"]}]
        }
    )
    name: Name
    purpose: SubsidyPurpose
    fiscal_year: FiscalYearInBody
    budget: Money
    modes: list[PaymentMode] = Field(min_length=1, max_length=len(PaymentMode),
                                     description="一步到位 one_off, 分步到位 phased, 以奖代补 reward_in_lieu")


class InstalmentCreate(Body):
    amount: Money
    due_on: date


class SubsidyApplicationCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"program_id": "0c4f8a9e-7d1b-4c55-9a61-3f2b8f1d2e10",
                          "site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "amount": "120000.00", "mode": "phased",
                          "justification": "kindergarten classrooms for 90 children",
                          "instalments": [{"amount": "60000.00", "due_on": "2026-12-01"},
                                          {"amount": "60000.00", "due_on": "2027-03-01"}]}]
        }
    )
    program_id: UUID
    site_id: UUID
    amount: Money
    mode: PaymentMode
    justification: Reason
    instalments: list[InstalmentCreate] | None = Field(
        default=None, max_length=24, description="phased only: at least two, adding up to amount"
    )


class SubsidyApproval(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {}, {"note": "site visit on 2026-11-20"},
        {"target": "canteen open to all residents", "target_due": "2027-06-30", "note": "reward in lieu"}]})
    note: Reason | None = None
    target: Reason | None = Field(default=None, description="a reward in lieu (以奖代补): the outcome it rewards; "
                                  "required, with target_due, by the approval that makes it take effect")
    target_due: date | None = Field(default=None, description="the day the outcome must be verified by; after it, "
                                    "an unverified reward lapses and its budget is released")


class SubsidyRejection(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "the site has no operator yet"}]})
    reason: Reason


class SubsidyPaymentCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount": "60000.00", "reference": "FIN-2026-0412", "paid_on": "2026-12-02"}]}
    )
    amount: Money
    reference: Reference = Field(description="the finance office's payment reference; unique per application")
    paid_on: date


class OutcomeVerificationCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"verified_on": "2026-11-20", "note": "canteen open, inspected"}]}
    )
    verified_on: date
    note: Reason


class SubsidyRevocation(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "the classrooms were never built", "claw_back": "60000.00"}]}
    )
    reason: Reason
    claw_back: Money = Field(description='what the operator must pay back, at most what was paid; may be "0.00"')


# -- programs -----------------------------------------------------------------
@router.post("/subsidy-programs", status_code=201, responses=created("record"))
@access(SUPERVISORS, AreaRule.DISTRICT)
def open_subsidy_program(body: SubsidyProgramCreate, cmd: DecisionCommand) -> JSONResponse:
    """Open a subsidy program: a budget for one purpose and fiscal year, and the payment modes it allows."""
    return cmd.run(
        lambda stamp, claim: cmd.app.open_subsidy_program(
            name=body.name, purpose=body.purpose.value, fiscal_year=body.fiscal_year, budget=body.budget,
            modes=[m.value for m in body.modes], stamp=stamp, idempotency=claim,
        ),
        status=201,
        location=lambda r: f"/subsidy-programs/{r.id}",
    )


@router.get("/subsidy-programs", response_model=PageOut[ProgramPublic])
@access(READERS, AreaRule.NONE)
def list_subsidy_programs(
    services: ServicesDep,
    _: PrincipalDep,
    headers: Annotated[dict[str, str], after("subsidy_ledger")],
    limit: Limit,
    fiscal_year: FiscalYear | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """List subsidy programs with budget, committed, paid and remaining (the subsidy_ledger view)."""
    with services.pool.connection() as conn:
        page = list_programs(conn, fiscal_year, limit, cursor)
    return page_response(page, headers, item_model=ProgramPublic)


def program_document(program: SubsidyProgram) -> dict[str, Any]:
    return {
        "id": str(program.id),
        "version": program.version,
        "name": program.name,
        "purpose": program.purpose,
        "fiscal_year": program.fiscal_year,
        "modes": program.modes,
        "budget": format_money(program.budget),
        "committed": format_money(program.committed),
        "paid": format_money(program.paid),
        "remaining": format_money(program.remaining),
        "opened_at": program.created_on.isoformat(),
    }


@router.get("/subsidy-programs/{program_id}", response_model=ProgramPublic)
@access(READERS, AreaRule.NONE)
def get_subsidy_program(program_id: UUID, services: ServicesDep, _: PrincipalDep) -> JSONResponse:
    """One subsidy program, current as of its last event; ETag is its version."""
    program = services.app.load(SubsidyProgram, program_id)
    return respond(ProgramPublic.model_validate(program_document(program)), {"ETag": f'"{program.version}"'})


# -- applications -------------------------------------------------------------
@router.post("/subsidy-applications", status_code=201, responses=created("record"))
@access(STAFF, AreaRule.REFERENCE)
def submit_subsidy_application(body: SubsidyApplicationCreate, cmd: SubmissionCommand) -> JSONResponse:
    """Apply for a subsidy on a housing site's behalf; phased subsidies list their instalments."""
    instalments = None if body.instalments is None else [(i.amount, i.due_on) for i in body.instalments]
    return cmd.run(
        lambda stamp, claim: cmd.app.submit_subsidy_application(
            program_id=body.program_id, site_id=body.site_id, amount=body.amount, mode=body.mode.value,
            justification=body.justification, instalments=instalments, stamp=stamp, idempotency=claim,
        ),
        status=201,
        location=lambda r: f"/subsidy-applications/{r.id}",
    )


@router.get("/subsidy-applications", response_model=PageOut[ApplicationListItem])
@access(READERS, AreaRule.LIST)
def list_subsidy_applications(
    services: ServicesDep,
    principal: PrincipalDep,
    headers: Annotated[dict[str, str], after("subsidy_ledger")],
    limit: Limit,
    program_id: UUID | None = None,
    site_id: UUID | None = None,
    status: ApplicationStatus | None = None,
    submitted_by: Annotated[str | None, Query(max_length=100, description="the user id of the submitter")] = None,
    payable_on: Annotated[IsoDate | None, Query(
        description="only approved applications with money fallen due by this day and not yet paid (finance's "
                    "list to pay); each then shows `due`, what may be paid with this day as the payment date")] = None,
    order: Annotated[Literal["submitted", "newest"], Query(
        description="submitted: in the order submitted (the default); newest: newest first. A cursor pages on "
                    "in the order it was made for")] = "submitted",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """List subsidy applications in the order they were submitted (or newest first), with their amounts."""
    flt = ApplicationFilter(program_id=program_id, site_id=site_id, status=status.value if status else None,
                            areas=principal.area_filter(), submitted_by=submitted_by, newest_first=order == "newest",
                            payable_on=payable_on)
    with services.pool.connection() as conn:
        page = list_applications(conn, flt, limit, cursor)
    return page_response(page, headers, item_model=ApplicationListItem)


def _instalments(schedule: Iterable[Instalment]) -> list[dict[str, Any]]:
    return [{"amount": format_money(i.amount), "due_on": i.due_on.isoformat() if i.due_on else None}
            for i in schedule]


def application_document(application: SubsidyApplication, today: date, presenter: Presenter) -> dict[str, Any]:
    """The application as of its last event; ``due_today`` is what finance may pay today. The
    justification, an approval's note and why it was rejected or revoked are free text that may
    name people: hidden (null) from an api_consumer without the pii scope, and erased with a
    resident they name."""
    return {
        "id": str(application.id),
        "version": application.version,
        "program_id": str(application.program_id),
        "fiscal_year": application.fiscal_year,
        "site_id": str(application.site_id),
        "site_area": application.site_area,
        "operator_type": application.operator_type,
        "amount": format_money(application.amount),
        "mode": application.mode,
        "justification": presenter.text(application.justification),
        "instalments": _instalments(application.instalments),
        "status": application.status,
        "submitted_by": application.submitted_by,
        "submitted_at": application.created_on.isoformat(),
        "approvals_required": application.approvals_required,
        "approvals": [{"approved_by": a.approved_by, "note": presenter.text(a.note),
                       "recorded_at": a.recorded_at.isoformat()} for a in application.approvals],
        "approved_on": application.approved_on.isoformat() if application.approved_on else None,
        "schedule": _instalments(application.schedule),
        "target": application.target,
        "target_due": application.target_due.isoformat() if application.target_due else None,
        "outcome_verified_on": (
            application.outcome_verified_on.isoformat() if application.outcome_verified_on else None
        ),
        "payments": [{"amount": format_money(p.amount), "reference": p.reference, "paid_on": p.paid_on.isoformat()}
                     for p in application.payments],
        "paid": format_money(application.paid),
        "due_today": format_money(application.due_by(today)),
        "rejection_reason": presenter.text(application.rejection_reason),
        "revocation": (
            {"reason": presenter.text(application.revocation_reason), "claw_back": format_money(application.claw_back)}
            if application.claw_back is not None else None
        ),
    }


@router.get("/subsidy-applications/{application_id}", response_model=ApplicationPublic)
@access(READERS, AreaRule.OBJECT)
def get_subsidy_application(application_id: UUID, services: ServicesDep, principal: PrincipalDep,
                            lang: Language) -> JSONResponse:
    """One subsidy application with its approvals, schedule and payments; ETag is its version."""
    with reading_as(principal):
        application = services.app.load(SubsidyApplication, application_id)
    today = services.today()
    presenter = Presenter(services.app.vault, principal, lang)
    return respond(ApplicationPublic.model_validate(application_document(application, today, presenter)),
                   {"ETag": f'"{application.version}"'})


@router.post("/subsidy-applications/{application_id}/approvals", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def approve_subsidy_application(application_id: UUID, body: SubsidyApproval, cmd: DecisionCommand) -> JSONResponse:
    """Approve, never one's own submission; the last required approval commits the budget and schedules payment.
    A reward in lieu takes effect only with its target and the day it must be verified by."""
    return cmd.run(lambda stamp, claim: cmd.app.approve_subsidy_application(
        application_id, body.note, stamp, expected_version=cmd.expected_version, idempotency=claim,
        target=body.target, target_due=body.target_due))


@router.post("/subsidy-applications/{application_id}/rejection", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def reject_subsidy_application(application_id: UUID, body: SubsidyRejection, cmd: DecisionCommand) -> JSONResponse:
    """Reject an application that has not taken effect."""
    return cmd.run(lambda stamp, claim: cmd.app.reject_subsidy_application(
        application_id, body.reason, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/subsidy-applications/{application_id}/payments", responses=RECORDED)
@access(FINANCE, AreaRule.OBJECT)
def record_subsidy_payment(application_id: UUID, body: SubsidyPaymentCreate, cmd: PaymentCommand) -> JSONResponse:
    """Record a payment (finance only); never more than has fallen due by paid_on."""
    return cmd.run(lambda stamp, claim: cmd.app.record_subsidy_payment(
        application_id, body.amount, body.reference, body.paid_on, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/subsidy-applications/{application_id}/outcome-verification", responses=RECORDED)
@access(VERIFIERS, AreaRule.OBJECT)
def verify_subsidy_outcome(
    application_id: UUID, body: OutcomeVerificationCreate, cmd: VerificationCommand
) -> JSONResponse:
    """Verify the outcome of a reward in lieu (以奖代补), which makes it payable: by a supervisor who neither
    submitted nor approved it, by its target's deadline."""
    return cmd.run(lambda stamp, claim: cmd.app.verify_subsidy_outcome(
        application_id, body.verified_on, body.note, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/subsidy-applications/{application_id}/revocation", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def revoke_subsidy_application(application_id: UUID, body: SubsidyRevocation, cmd: DecisionCommand) -> JSONResponse:
    """Revoke a subsidy that took effect; its unpaid part goes back to the program's budget."""
    return cmd.run(lambda stamp, claim: cmd.app.revoke_subsidy_application(
        application_id, body.reason, body.claw_back, stamp, expected_version=cmd.expected_version, idempotency=claim))


# -- ledger -------------------------------------------------------------------
@router.get("/subsidy-ledger", response_model=LedgerPublic)
@access(READERS, AreaRule.LIST)
def get_subsidy_ledger(
    services: ServicesDep, principal: PrincipalDep,
    headers: Annotated[dict[str, str], after_all("subsidy_ledger", "site_occupancy", "cobuilding")],
    fiscal_year: FiscalYear | None = None,
) -> JSONResponse:
    """Budget, committed, paid and remaining per program; approved, committed and paid per operator type and per
    site, by fiscal year, so support can be compared across operator types; support per bed and per resident by
    operator type; and per site, co-building partners' contributions beside the government's subsidies. A key
    bound to areas sees the applications of its areas' sites."""
    areas = principal.area_filter()
    with services.pool.connection() as conn:
        body = ledger(conn, fiscal_year, areas)
        body["support_per_bed_by_operator_type"] = support_by_type(conn, fiscal_year, areas)["by_operator_type"]
        body["contributions_by_site"] = contributions_by_site(conn, fiscal_year, None, areas)
    return respond(LedgerPublic.model_validate(jsonable_encoder({"fiscal_year": fiscal_year, **body})), headers)
