"""Housing sites: register them, change them, see their occupancy."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import (
    RECORDED,
    SUPERVISORS,
    Command,
    PrincipalDep,
    ServicesDep,
    command_dependency,
    created,
    page_response,
    read_after,
)
from api.schemas import (
    CapacityChange,
    CommunityCommitteeCreate,
    FacilitiesChange,
    PageOut,
    SiteClosure,
    SiteCreate,
)
from domain.sites import HousingSite, OperatorType
from projections.site_occupancy import SiteFilter, list_sites

router = APIRouter(prefix="/sites", tags=["housing sites"])

SiteCommand = Annotated[Command, command_dependency(*SUPERVISORS)]


@router.post("", status_code=201, responses=created("site"))
def register_site(body: SiteCreate, cmd: SiteCommand) -> JSONResponse:
    """Register a housing site (集中居住点) with its operator, beds and facilities."""
    return cmd.run(
        lambda stamp, claim: cmd.app.register_site(
            name=body.name,
            area=body.area,
            address=body.address,
            operator_type=body.operator.type.value,
            operator_name=body.operator.name,
            capacity=body.capacity,
            facilities=[f.value for f in body.facilities],
            stamp=stamp,
            idempotency=claim,
        ),
        status=201,
        location=lambda r: f"/sites/{r.id}",
    )


@router.get("", response_model=PageOut)
def list_housing_sites(
    services: ServicesDep,
    _: PrincipalDep,
    area: Annotated[str | None, Query(max_length=64)] = None,
    operator_type: OperatorType | None = None,
    has_free_beds: bool | None = None,
    closed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    after: Annotated[int | None, Query(ge=0, description="wait until this event position is reflected")] = None,
) -> JSONResponse:
    """List housing sites with capacity, occupants and free beds (the site_occupancy view)."""
    headers = read_after(services, "site_occupancy", after)
    flt = SiteFilter(area=area, operator_type=operator_type.value if operator_type else None,
                     has_free_beds=has_free_beds, closed=closed)
    with services.pool.connection() as conn:
        page = list_sites(conn, flt, limit, cursor)
    return page_response(page, headers)


def site_document(site: HousingSite) -> dict[str, Any]:
    committee = site.community_committee
    return {
        "id": str(site.id),
        "version": site.version,
        "name": site.name,
        "area": site.area,
        "address": site.address,
        "operator": {"type": site.operator_type, "name": site.operator_name},
        "capacity": site.capacity,
        "occupants": len(site.occupants),
        "free_beds": site.free_beds,
        "facilities": site.facilities,
        "community_committee": (
            {"established_on": committee["established_on"].isoformat(), "members": committee["members"]}
            if committee else None
        ),
        "closed_on": site.closed_on.isoformat() if site.closed_on else None,
        "registered_at": site.created_on.isoformat(),
    }


@router.get("/{site_id}")
def get_site(site_id: UUID, services: ServicesDep, _: PrincipalDep) -> JSONResponse:
    """One housing site, current as of its last event; ETag is its version."""
    site = services.app.load(HousingSite, site_id)
    return JSONResponse(site_document(site), headers={"ETag": f'"{site.version}"'})


@router.post("/{site_id}/capacity", responses=RECORDED)
def change_capacity(site_id: UUID, body: CapacityChange, cmd: SiteCommand) -> JSONResponse:
    """Change the number of beds; never below the current occupants."""
    return cmd.run(lambda stamp, claim: cmd.app.change_site_capacity(
        site_id, body.capacity, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/facilities", responses=RECORDED)
def change_facilities(site_id: UUID, body: FacilitiesChange, cmd: SiteCommand) -> JSONResponse:
    """Replace the site's facilities with the given list."""
    return cmd.run(lambda stamp, claim: cmd.app.change_site_facilities(
        site_id, [f.value for f in body.facilities], stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{site_id}/community-committee", responses=RECORDED)
def establish_community_committee(site_id: UUID, body: CommunityCommitteeCreate, cmd: SiteCommand) -> JSONResponse:
    """Record that a community (residents') committee was established at the site."""
    members = [m.model_dump(mode="json") for m in body.members]
    return cmd.run(lambda stamp, claim: cmd.app.establish_community_committee(
        site_id, body.established_on, members, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/closure", responses=RECORDED)
def close_site(site_id: UUID, body: SiteClosure, cmd: SiteCommand) -> JSONResponse:
    """Close an empty site; nobody can move in afterwards."""
    return cmd.run(lambda stamp, claim: cmd.app.close_site(
        site_id, body.closed_on, body.reason, stamp, expected_version=cmd.expected_version, idempotency=claim))
