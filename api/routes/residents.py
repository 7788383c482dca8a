"""Residents: register them, record their moves, departures and returns."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import (
    RECORDED,
    STAFF,
    Command,
    PrincipalDep,
    ServicesDep,
    command_dependency,
    created,
    page_response,
    read_after,
)
from api.problems import Problem
from api.schemas import (
    DepartureCreate,
    EmployerChange,
    MoveCreate,
    PageOut,
    ResidentCreate,
    ReturnCreate,
    StatusFilter,
)
from domain.identity import IdentityNumber
from domain.residents import Resident
from projections.residents import ResidentFilter, list_residents

router = APIRouter(prefix="/residents", tags=["residents"])

ResidentCommand = Annotated[Command, command_dependency(*STAFF)]


@router.post("", status_code=201, responses=created("resident"))
def register_resident(body: ResidentCreate, cmd: ResidentCommand) -> JSONResponse:
    """Register a migrant resident; sex and birth date come from the identity number."""
    id_number = IdentityNumber.parse(body.id_number)
    return cmd.run(
        lambda stamp, claim: cmd.app.register_resident(
            id_number=id_number,
            name=body.name,
            phone=body.phone,
            hometown=body.hometown,
            employer=body.employer,
            area=body.area,
            registered_on=body.registered_on,
            stamp=stamp,
            idempotency=claim,
        ),
        status=201,
        location=lambda r: f"/residents/{r.id}",
    )


@router.get("", response_model=PageOut)
def list_all_residents(
    services: ServicesDep,
    _: PrincipalDep,
    site_id: UUID | None = None,
    area: Annotated[str | None, Query(max_length=64)] = None,
    status: StatusFilter | None = None,
    name: Annotated[str | None, Query(max_length=100, description="name prefix")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    after: Annotated[int | None, Query(ge=0, description="wait until this event position is reflected")] = None,
) -> JSONResponse:
    """List residents (the residents view), filtered and paginated; identity numbers are masked."""
    headers = read_after(services, "residents", after)
    flt = ResidentFilter(site_id=str(site_id) if site_id else None, area=area, status=status, name_prefix=name)
    with services.pool.connection() as conn:
        page = list_residents(conn, flt, limit, cursor)
    return page_response(page, headers)


def resident_document(resident: Resident, *, with_contact: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(resident.id),
        "version": resident.version,
        "name": resident.name,
        "id_number_masked": IdentityNumber(resident.id_number).masked,
        "sex": resident.sex,
        "birth_date": resident.birth_date.isoformat(),
        "hometown": resident.hometown,
        "employer": resident.employer,
        "status": resident.status,
        "site_id": str(resident.site_id) if resident.site_id else None,
        "area": resident.area,
        "since": resident.since.isoformat(),
        "registered_on": resident.registered_on.isoformat(),
        "departure_reason": resident.departure_reason,
    }
    if with_contact:
        doc["phone"] = resident.phone
    return doc


@router.get("/{resident_id}")
def get_resident(resident_id: UUID, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """One resident, current as of their last event; ETag is the version."""
    resident = services.app.load(Resident, resident_id)
    staff = principal.actor.role in STAFF
    return JSONResponse(resident_document(resident, with_contact=staff), headers={"ETag": f'"{resident.version}"'})


@router.post("/{resident_id}/moves", responses=RECORDED)
def move_resident(resident_id: UUID, body: MoveCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record a move into a housing site (site_id) or into private housing in an area (area)."""
    if (body.site_id is None) == (body.area is None):
        raise Problem(422, "Invalid request", "give exactly one of site_id (a housing site) or area (private housing)",
                      rule="move_destination",
                      errors=[{"field": "site_id", "rule": "move_destination", "message": "site_id or area"}])
    if body.site_id is not None:
        site_id = body.site_id
        return cmd.run(lambda stamp, claim: cmd.app.move_resident_into_site(
            resident_id, site_id, body.effective_date, stamp, expected_version=cmd.expected_version,
            idempotency=claim))
    area = body.area or ""
    return cmd.run(lambda stamp, claim: cmd.app.move_resident_to_private_housing(
        resident_id, area, body.effective_date, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{resident_id}/departure", responses=RECORDED)
def record_departure(resident_id: UUID, body: DepartureCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record that the resident left the district; they free their bed."""
    return cmd.run(lambda stamp, claim: cmd.app.record_departure(
        resident_id, body.effective_date, body.reason, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{resident_id}/return", responses=RECORDED)
def record_return(resident_id: UUID, body: ReturnCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record that a departed resident came back to the district."""
    return cmd.run(lambda stamp, claim: cmd.app.record_return(
        resident_id, body.area, body.effective_date, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{resident_id}/employer", responses=RECORDED)
def change_employer(resident_id: UUID, body: EmployerChange, cmd: ResidentCommand) -> JSONResponse:
    """Record the resident's new employer (or none)."""
    return cmd.run(lambda stamp, claim: cmd.app.change_employer(
        resident_id, body.employer, body.effective_date, stamp, expected_version=cmd.expected_version,
        idempotency=claim))
