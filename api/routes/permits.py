"""Residence permits (居住证): application, issue, yearly endorsement (签注)."""

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
    Language,
    Limit,
    PrincipalDep,
    ServicesDep,
    after,
    command_dependency,
    page_response,
    read_route,
)
from api.deps import STAFF as STAFF_ROLES
from api.present import Presenter
from api.schemas import Body, IsoDate, PageOut, PermitListItem
from application.audit import record_names_read
from projections.residents import list_permits

router = APIRouter(tags=["residence permits"])

Staff = Annotated[Command, command_dependency(*STAFF_ROLES)]


class PermitApplication(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"applied_on": "2026-11-20"}]})
    applied_on: date


class PermitIssue(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"number": "JZZ-330206-2026-000123",
                                                               "issued_on": "2026-11-24"}]})
    number: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")]
    issued_on: date


class Endorsement(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"endorsed_on": "2027-11-20"}]})
    endorsed_on: date


@router.post("/residents/{resident_id}/permit", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def apply(resident_id: UUID, body: PermitApplication, cmd: Staff) -> JSONResponse:
    """Apply for a permit: six months' residence and stable work or housing, else 409 naming what is missing."""
    return cmd.run(lambda stamp, claim: cmd.app.apply_for_permit(
        resident_id, applied_on=body.applied_on, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/residents/{resident_id}/permit/issuance", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def issue(resident_id: UUID, body: PermitIssue, cmd: Staff) -> JSONResponse:
    """Record the permit's issue; the first endorsement falls due a year later."""
    return cmd.run(lambda stamp, claim: cmd.app.issue_permit(
        resident_id, number=body.number, issued_on=body.issued_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/residents/{resident_id}/permit/endorsements", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def endorse(resident_id: UUID, body: Endorsement, cmd: Staff) -> JSONResponse:
    """Record the yearly endorsement; a late one reinstates a suspended permit."""
    return cmd.run(lambda stamp, claim: cmd.app.endorse_permit(
        resident_id, endorsed_on=body.endorsed_on, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.get("/permits", response_model=PageOut[PermitListItem])
@access(READERS, AreaRule.LIST)
def permits(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    lang: Language,
    headers: Annotated[dict[str, str], after("residents")],
    limit: Limit,
    status: Literal["applied", "issued", "suspended", "cancelled"] | None = None,
    due_before: IsoDate | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """Permits by status and endorsement due date (the residents view)."""
    with services.pool.connection() as conn:
        page = list_permits(conn, status, due_before, limit, cursor,
                            principal.area_filter())
        record_names_read(conn, principal, [r["resident_id"] for r in page.items],
                          read_route(request))
    presenter = Presenter(services.app.vault, principal, lang)
    items = [{k: v for k, v in {**r, "name": presenter.name(r["name"], r.get("name_masked")),
                                "number": presenter.permit_number(r.get("number"))}.items()
              if k != "name_masked"} for r in page.items]
    return page_response(page, headers, items, PermitListItem)
