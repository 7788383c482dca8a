"""Operators (运作主体): register them, assign and release the sites they run, link an
employer's employees, file their yearly reports, record sanitation inspections; and the
views that put the seed's problems in numbers: reinvestment per operator and year, the
sanitation trend of a site, and support per bed and per resident by operator type."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

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
    reading_as,
    respond,
)
from api.deps import STAFF as STAFF_ROLES
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.present import Presenter
from api.schemas import (
    AreaName,
    Body,
    ErasureCreate,
    Money,
    Name,
    OperatorListItem,
    OperatorRecordPublic,
    PageOut,
    Reason,
    SanitationTrendPublic,
    SupportByTypePublic,
)
from application.audit import record_access
from domain.operators import Operator, report_document
from domain.sites import OperatorType
from projections.operators import OperatorFilter, list_operators, sanitation_trend, support_by_type

router = APIRouter(prefix="/operators", tags=["operators"])

SupervisorCommand = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]
StaffCommand = Annotated[Command, command_dependency(*STAFF_ROLES)]
Year = Annotated[int, Field(ge=2000, le=2100)]
YearInBody = Annotated[int, Field(ge=2000, le=2100, strict=True)]  # a number, not "2026" nor true


class OperatorCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "village_cooperative", "name": "Yanhai Village Shareholding Cooperative",
         "contact": "Chen Jie, 138 0000 0000", "area": "xinqi"}]})
    type: OperatorType = Field(description="village_cooperative, employer or government_entrusted")
    name: Name
    contact: Reason = Field(description="the contact person and how to reach them (personal data: sealed)")
    area: AreaName


class ContactChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"contact": "Wang Li, 139 0000 0000", "changed_on": "2026-11-01"}]})
    contact: Reason = Field(description="the new contact person and how to reach them (personal data: sealed)")
    changed_on: date


class SiteAssignment(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "assigned_on": "2026-01-01"}]})
    site_id: UUID
    assigned_on: date


class SiteRelease(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "released_on": "2026-06-30",
         "reason": "the lease with the village ended"}]})
    site_id: UUID
    released_on: date
    reason: Reason


class EmployeeLink(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"resident_id": "5d0b5e6c-3f51-4f0c-9d0b-1e0f1b7d2a11", "linked_on": "2026-03-01"}]})
    resident_id: UUID
    linked_on: date


class EmployeeRemoval(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"resident_id": "5d0b5e6c-3f51-4f0c-9d0b-1e0f1b7d2a11", "unlinked_on": "2026-09-30"}]})
    resident_id: UUID
    unlinked_on: date


class YearlyReportCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"year": 2025, "income_from_site": "1200000.00", "reinvested_management": "60000.00",
         "reinvested_sanitation": "30000.00", "reinvested_facilities": "90000.00"}]})
    year: YearInBody
    income_from_site: Money
    reinvested_management: Money
    reinvested_sanitation: Money
    reinvested_facilities: Money

    def figures(self) -> dict[str, str]:
        return {"income_from_site": self.income_from_site, "reinvested_management": self.reinvested_management,
                "reinvested_sanitation": self.reinvested_sanitation,
                "reinvested_facilities": self.reinvested_facilities}


class YearlyReportCorrection(YearlyReportCreate):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"year": 2025, "income_from_site": "1200000.00", "reinvested_management": "60000.00",
         "reinvested_sanitation": "45000.00", "reinvested_facilities": "90000.00",
         "reason": "receipts for the spring clean-up handed in late"}]})
    reason: Reason


class InspectionCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "inspected_on": "2026-11-20", "score": 72,
         "findings": "bins overflowing behind block 3; drains cleared"}]})
    site_id: UUID
    inspected_on: date
    score: int = Field(strict=True, description="0 to 100")
    findings: Annotated[str, Field(max_length=2000, description="about the site, not about people")] = ""


# -- commands -------------------------------------------------------------------
@router.post("", status_code=201, responses=created("operator"))
@access(SUPERVISORS, AreaRule.CREATE)
def register_operator(body: OperatorCreate, cmd: SupervisorCommand) -> JSONResponse:
    """Register an operator (运作主体): a village cooperative, an employer or a government-entrusted office."""
    return cmd.run(lambda stamp, claim: cmd.app.register_operator(
        operator_type=body.type.value, name=body.name, contact=body.contact, area=body.area, stamp=stamp,
        idempotency=claim), status=201, location=lambda r: f"/operators/{r.id}")


@router.post("/{operator_id}/contact", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def change_contact(operator_id: UUID, body: ContactChange, cmd: SupervisorCommand) -> JSONResponse:
    """A new contact person (or new way to reach them) from changed_on, sealed under a key of its own."""
    return cmd.run(lambda stamp, claim: cmd.app.change_operator_contact(
        operator_id, contact=body.contact, changed_on=body.changed_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/contact-erasure", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def erase_contact(operator_id: UUID, body: ErasureCreate, cmd: SupervisorCommand) -> JSONResponse:
    """Erase the contact person's personal data (every contact recorded so far): the request is recorded and
    the keys that sealed them destroyed; the operator's record, history and topics then read [已删除] /
    [erased] for the contact. A new contact may be recorded afterwards (409 already_erased for a second
    erasure)."""
    return cmd.run(lambda stamp, claim: cmd.app.erase_operator_contact(
        operator_id, legal_basis=body.legal_basis.value, note=body.note, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/sites", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def assign_site(operator_id: UUID, body: SiteAssignment, cmd: SupervisorCommand) -> JSONResponse:
    """The operator starts running a housing site; a site has one operator at a time (409
    site_run_by_another_operator until it is released)."""
    return cmd.run(lambda stamp, claim: cmd.app.assign_site_to_operator(
        operator_id, site_id=body.site_id, assigned_on=body.assigned_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/site-releases", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def release_site(operator_id: UUID, body: SiteRelease, cmd: SupervisorCommand) -> JSONResponse:
    """The operator stops running a site it runs; another operator may then take it."""
    return cmd.run(lambda stamp, claim: cmd.app.release_site_from_operator(
        operator_id, site_id=body.site_id, released_on=body.released_on, reason=body.reason, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/employees", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def link_employee(operator_id: UUID, body: EmployeeLink, cmd: StaffCommand) -> JSONResponse:
    """Link a resident as the operator's employee: an employer operator only (409
    employees_only_for_employer_operator)."""
    return cmd.run(lambda stamp, claim: cmd.app.link_operator_employee(
        operator_id, resident_id=body.resident_id, linked_on=body.linked_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/employee-removals", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def unlink_employee(operator_id: UUID, body: EmployeeRemoval, cmd: StaffCommand) -> JSONResponse:
    """A resident is no longer the employer operator's employee."""
    return cmd.run(lambda stamp, claim: cmd.app.unlink_operator_employee(
        operator_id, resident_id=body.resident_id, unlinked_on=body.unlinked_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/reports", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def file_report(operator_id: UUID, body: YearlyReportCreate, cmd: StaffCommand) -> JSONResponse:
    """File the operator's report for a year: income from its sites and what it reinvested in management,
    sanitation and facilities. One per year (409 report_already_filed): change it with a correction."""
    return cmd.run(lambda stamp, claim: cmd.app.file_operator_report(
        operator_id, year=body.year, figures=body.figures(), stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{operator_id}/report-corrections", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def correct_report(operator_id: UUID, body: YearlyReportCorrection, cmd: SupervisorCommand) -> JSONResponse:
    """Correct a filed yearly report (all its figures, and why); the first figures stay in the history."""
    return cmd.run(lambda stamp, claim: cmd.app.correct_operator_report(
        operator_id, year=body.year, figures=body.figures(), reason=body.reason, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{operator_id}/inspections", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_inspection(operator_id: UUID, body: InspectionCreate, cmd: StaffCommand) -> JSONResponse:
    """Record a sanitation inspection of a site the operator runs: date, score out of 100, findings."""
    return cmd.run(lambda stamp, claim: cmd.app.record_sanitation_inspection(
        operator_id, site_id=body.site_id, inspected_on=body.inspected_on, score=body.score, findings=body.findings,
        stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


# -- reads (the fixed paths before /{operator_id}) ---------------------------------------
def consistent(*headers: dict[str, str]) -> dict[str, str]:
    """One X-Read-Consistent for an answer read from several views: true only if all were."""
    values = [h["X-Read-Consistent"] for h in headers if "X-Read-Consistent" in h]
    return {"X-Read-Consistent": "true" if all(v == "true" for v in values) else "false"} if values else {}


@router.get("/sanitation", response_model=SanitationTrendPublic)
@access(READERS, AreaRule.LIST)
def get_sanitation_trend(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("operators")],
    site_id: UUID,
) -> JSONResponse:
    """A site's sanitation inspections in date order, by whichever operator ran it, each with the change of score
    from the one before (the operators view). A key bound to areas sees its areas' sites only."""
    with services.pool.connection() as conn:
        rows = sanitation_trend(conn, site_id, principal.area_filter())
    return respond(SanitationTrendPublic.model_validate({"site_id": site_id, "inspections": rows}), headers)


@router.get("/support-by-type", response_model=SupportByTypePublic)
@access(READERS, AreaRule.LIST)
def get_support_by_type(
    services: ServicesDep, principal: PrincipalDep,
    ledger_read: Annotated[dict[str, str], after("subsidy_ledger")],
    sites_read: Annotated[dict[str, str], after("site_occupancy")],
    fiscal_year: Year | None = None,
) -> JSONResponse:
    """Equal treatment in numbers: subsidies paid and committed per bed and per resident, by operator type (the
    type each application recorded; beds and residents of the open sites of that type), in total and per area."""
    with services.pool.connection() as conn:
        body = support_by_type(conn, fiscal_year, principal.area_filter())
    return respond(SupportByTypePublic.model_validate({"fiscal_year": fiscal_year, **body}),
                   consistent(ledger_read, sites_read))


@router.get("", response_model=PageOut[OperatorListItem])
@access(READERS, AreaRule.LIST)
def list_all_operators(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("operators")],
    limit: Limit, area: Annotated[AreaName | None, Query()] = None, type: OperatorType | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """Operators by name (in pinyin order), with the sites they run and their yearly reports: the reinvestment ratio
    ((management + sanitation + facilities) / income, null without income) per year."""
    flt = OperatorFilter(area=services.app.areas.resolve(area) if area else None,
                         operator_type=type.value if type else None, areas=principal.area_filter())
    with services.pool.connection() as conn:
        page = list_operators(conn, flt, limit, cursor)
    return page_response(page, headers, item_model=OperatorListItem)


def operator_document(operator: Operator, presenter: Presenter) -> dict[str, Any]:
    return {
        "id": operator.id, "version": operator.version, "type": operator.operator_type, "name": operator.name,
        "contact": presenter.text(operator.contact), "area": operator.area,
        "sites": [{"site_id": s.site_id, "site_area": s.site_area, "assigned_on": s.assigned_on}
                  for s in sorted(operator.sites.values(), key=lambda s: (s.assigned_on, s.site_id.hex))],
        "employees": [{"resident_id": UUID(hex=r), "linked_on": on} for r, on in sorted(operator.employees.items())],
        "reports": [report_document(r) for _, r in sorted(operator.reports.items())],
        "inspections": operator.inspections, "registered_at": operator.created_on,
        "contact_erased_on": operator.contact_erased_on,
    }


@router.get("/{operator_id}", response_model=OperatorRecordPublic)
@access(READERS, AreaRule.OBJECT)
def get_operator(operator_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep,
                 lang: Language) -> JSONResponse:
    """One operator as of its last event (ETag: its version): the sites it runs, its employees, its yearly reports
    with their reinvestment ratios."""
    with reading_as(principal):
        operator = services.app.load(Operator, operator_id)
    document = operator_document(operator, Presenter(services.app.vault, principal, lang))
    if principal.sees_personal_data:  # the contact person is shown: who read it is recorded
        with services.pool.connection() as conn:
            record_access(conn, principal, None, read_route(request), detail=str(operator_id))
    return respond(OperatorRecordPublic.model_validate(document), {"ETag": f'"{operator.version}"'})
