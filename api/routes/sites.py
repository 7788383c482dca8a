"""Housing sites: register them, change them, see their occupancy."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.access import READERS, SUPERVISORS, AreaRule, access
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
    respond,
)
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.present import Presenter
from api.routes.history import EffectiveAt, KnownAt, record_at
from api.schemas import (
    AreaName,
    CapacityChange,
    CommunityCommitteeCreate,
    FacilitiesChange,
    PageOut,
    SiteClosure,
    SiteCreate,
    SiteListItem,
    SitePublic,
)
from domain.sites import HousingSite, OperatorType
from projections.site_occupancy import SiteFilter, list_sites

router = APIRouter(prefix="/sites", tags=["housing sites"])

SiteCommand = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]


@router.post("", status_code=201, responses=created("site"))
@access(SUPERVISORS, AreaRule.CREATE)
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


@router.get("", response_model=PageOut[SiteListItem])
@access(READERS, AreaRule.LIST)
def list_housing_sites(
    services: ServicesDep,
    principal: PrincipalDep,
    headers: Annotated[dict[str, str], after("site_occupancy")],
    limit: Limit,
    area: Annotated[AreaName | None, Query()] = None,
    operator_type: OperatorType | None = None,
    has_free_beds: bool | None = None,
    closed: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """List housing sites with capacity, occupants and free beds (the site_occupancy view)."""
    flt = SiteFilter(area=services.app.areas.resolve(area) if area else None,
                     operator_type=operator_type.value if operator_type else None,
                     has_free_beds=has_free_beds, closed=closed, areas=principal.area_filter())
    with services.pool.connection() as conn:
        page = list_sites(conn, flt, limit, cursor)
    return page_response(page, headers, item_model=SiteListItem)


def site_document(site: HousingSite, presenter: Presenter, area_name: str | None) -> SitePublic:
    committee = site.community_committee
    return SitePublic.model_validate({
        "id": site.id,
        "version": site.version,
        "name": site.name,
        "area": site.area,
        "area_name": area_name,
        "address": site.address,
        "operator": {"type": site.operator_type, "name": site.operator_name},
        "capacity": site.capacity,
        "occupants": len(site.occupants),
        "free_beds": site.free_beds,
        "facilities": site.facilities,
        "community_committee": (
            {"established_on": committee["established_on"], "members": presenter.members(committee["members"])}
            if committee else None
        ),
        "closed_on": site.closed_on,
        "registered_at": site.created_on,
    })


@router.get("/{site_id}", response_model=SitePublic)
@access(READERS, AreaRule.OBJECT)
def get_site(site_id: UUID, services: ServicesDep, principal: PrincipalDep, lang: Language,
             known_at: KnownAt = None, effective_at: EffectiveAt = None) -> JSONResponse:
    """One housing site, current as of its last event (ETag: its version), or as known at a moment and/or as true
    on a date."""
    site = record_at(services, principal, HousingSite, site_id, known_at, effective_at)
    area = services.app.areas.get(site.area)
    name = (area.name_en if lang == "en" else area.name_zh) if area else None
    return respond(site_document(site, Presenter(services.app.vault, principal, lang), name),
                   {"ETag": f'"{site.version}"'})


@router.post("/{site_id}/capacity", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def change_capacity(site_id: UUID, body: CapacityChange, cmd: SiteCommand) -> JSONResponse:
    """Change the number of beds; never below the current occupants."""
    return cmd.run(lambda stamp, claim: cmd.app.change_site_capacity(
        site_id, body.capacity, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/facilities", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def change_facilities(site_id: UUID, body: FacilitiesChange, cmd: SiteCommand) -> JSONResponse:
    """Replace the site's facilities with the given list."""
    return cmd.run(lambda stamp, claim: cmd.app.change_site_facilities(
        site_id, [f.value for f in body.facilities], stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{site_id}/community-committee", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def establish_community_committee(site_id: UUID, body: CommunityCommitteeCreate, cmd: SiteCommand) -> JSONResponse:
    """Record that a community (residents') committee was established at the site."""
    members = [m.model_dump(mode="json") for m in body.members]
    return cmd.run(lambda stamp, claim: cmd.app.establish_community_committee(
        site_id, body.established_on, members, stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/closure", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def close_site(site_id: UUID, body: SiteClosure, cmd: SiteCommand) -> JSONResponse:
    """Close an empty site; nobody can move in afterwards."""
    return cmd.run(lambda stamp, claim: cmd.app.close_site(
        site_id, body.closed_on, body.reason, stamp, expected_version=cmd.expected_version, idempotency=claim))
