"""Co-building (结对共建): pairings between housing sites and enterprises, units or schools,
the contributions they deliver, and per site the contributions beside the government's
subsidies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from api.access import READERS, STAFF, SUPERVISORS, AreaRule, access
from api.deps import (
    RECORDED,
    Command,
    Limit,
    PrincipalDep,
    ServicesDep,
    after,
    command_dependency,
    created,
    page_response,
    reading_as,
    respond,
)
from api.deps import STAFF as STAFF_ROLES
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.routes.operators import consistent
from api.schemas import (
    Body,
    CobuildingBySitePublic,
    IsoDate,
    Money,
    Name,
    PageOut,
    PairingListItem,
    PairingPublic,
    Reason,
)
from domain.cobuilding import ContributionKind, Pairing, PartnerType
from domain.money import format_money
from projections.cobuilding import PairingFilter, by_site, list_pairings

router = APIRouter(prefix="/pairings", tags=["co-building"])

SupervisorCommand = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]
StaffCommand = Annotated[Command, command_dependency(*STAFF_ROLES)]


class PairingCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "partner_type": "enterprise",
         "partner_name": "Shenzhou Knitting Co.", "agreed_on": "2026-03-01"}]})
    site_id: UUID
    partner_type: PartnerType = Field(description="enterprise, unit or school")
    partner_name: Name
    agreed_on: date


class ContributionCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"delivered_on": "2026-04-10", "kind": "goods", "description": "300 books for the reading room",
         "value_yuan": "6000.00"},
        {"delivered_on": "2026-05-01", "kind": "labour", "description": "volunteers cleared the drains"}]})
    delivered_on: date
    kind: ContributionKind = Field(description="money, goods, labour or training")
    description: Annotated[str, Field(max_length=1000, description="what was delivered; not about people")] = ""
    value_yuan: Money | None = Field(default=None, description="required for money; for the others where known")


class PairingEnding(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ended_on": "2026-12-31", "reason": "the company moved out of the district"}]})
    ended_on: date
    reason: Reason


@router.post("", status_code=201, responses=created("pairing"))
@access(SUPERVISORS, AreaRule.REFERENCE)
def agree_pairing(body: PairingCreate, cmd: SupervisorCommand) -> JSONResponse:
    """Record a pairing (结对共建) of a housing site with an enterprise, unit or school."""
    return cmd.run(lambda stamp, claim: cmd.app.agree_pairing(
        site_id=body.site_id, partner_type=body.partner_type.value, partner_name=body.partner_name,
        agreed_on=body.agreed_on, stamp=stamp, idempotency=claim), status=201,
        location=lambda r: f"/pairings/{r.id}")


@router.post("/{pairing_id}/contributions", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_contribution(pairing_id: UUID, body: ContributionCreate, cmd: StaffCommand) -> JSONResponse:
    """Record what the partner delivered: money (with its value), goods, labour or training; never after the
    pairing's end (409 pairing_ended)."""
    return cmd.run(lambda stamp, claim: cmd.app.record_contribution(
        pairing_id, delivered_on=body.delivered_on, kind=body.kind.value, description=body.description,
        value_yuan=body.value_yuan, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{pairing_id}/ending", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def end_pairing(pairing_id: UUID, body: PairingEnding, cmd: SupervisorCommand) -> JSONResponse:
    """End the pairing, not before its last contribution."""
    return cmd.run(lambda stamp, claim: cmd.app.end_pairing(
        pairing_id, ended_on=body.ended_on, reason=body.reason, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.get("/by-site", response_model=CobuildingBySitePublic)
@access(READERS, AreaRule.LIST)
def get_cobuilding_by_site(
    services: ServicesDep, principal: PrincipalDep,
    pairings_read: Annotated[dict[str, str], after("cobuilding")],
    ledger_read: Annotated[dict[str, str], after("subsidy_ledger")],
    fiscal_year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    site_id: UUID | None = None,
) -> JSONResponse:
    """Per site: the government's subsidies paid and committed beside the partners' contributions (count and value,
    in total and by kind); with fiscal_year, the subsidies of that year and the contributions delivered in it."""
    with services.pool.connection() as conn:
        rows = by_site(conn, fiscal_year, site_id, principal.area_filter())
    return respond(CobuildingBySitePublic.model_validate({"fiscal_year": fiscal_year, "sites": rows}),
                   consistent(pairings_read, ledger_read))


@router.get("", response_model=PageOut[PairingListItem])
@access(READERS, AreaRule.LIST)
def list_all_pairings(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("cobuilding")],
    limit: Limit, site_id: UUID | None = None, active_on: IsoDate | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """Pairings in the order agreed, with their contributions' count and total value (the cobuilding view)."""
    flt = PairingFilter(site_id=site_id, active_on=active_on, areas=principal.area_filter())
    with services.pool.connection() as conn:
        page = list_pairings(conn, flt, limit, cursor)
    return page_response(page, headers, item_model=PairingListItem)


def pairing_document(pairing: Pairing) -> dict[str, Any]:
    values = [c.value_yuan for c in pairing.contributions if c.value_yuan is not None]
    return {
        "id": pairing.id, "version": pairing.version, "site_id": pairing.site_id, "site_area": pairing.site_area,
        "partner_type": pairing.partner_type, "partner_name": pairing.partner_name, "agreed_on": pairing.agreed_on,
        "ended_on": pairing.ended_on,
        "contributions": [{"delivered_on": c.delivered_on, "kind": c.kind, "description": c.description,
                           "value_yuan": None if c.value_yuan is None else format_money(c.value_yuan)}
                          for c in pairing.contributions],
        "total_value": format_money(sum(values, Decimal("0.00"))),
    }


@router.get("/{pairing_id}", response_model=PairingPublic)
@access(READERS, AreaRule.OBJECT)
def get_pairing(pairing_id: UUID, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """One pairing with its contributions, as of its last event (ETag: its version)."""
    with reading_as(principal):
        pairing = services.app.load(Pairing, pairing_id)
    return respond(PairingPublic.model_validate(pairing_document(pairing)), {"ETag": f'"{pairing.version}"'})
