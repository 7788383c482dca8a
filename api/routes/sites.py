"""Housing sites: register them, change them, see their occupancy."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

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
from api.routes.history import EffectiveAt, KnownAt, record_at
from api.schemas import (
    AreaName,
    CapacityChange,
    CommunityCommitteeCreate,
    CommunityMembersChange,
    ElectionCreate,
    FacilitiesChange,
    PageOut,
    PreparationCreate,
    SiteAssessmentCreate,
    SiteClosure,
    SiteCreate,
    SiteListItem,
    SitePipelinePublic,
    SitePublic,
    TermEnd,
)
from application.audit import record_names_read
from application.services import Services
from domain.operators import SiteOperatorClaim, site_claim_id
from domain.sites import ASSESSMENT_VALID_DAYS, HousingSite, OperatorStatus, OperatorType
from projections.site_occupancy import SiteFilter, list_sites, site_pipeline

router = APIRouter(prefix="/sites", tags=["housing sites"])

SiteCommand = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]
SiteWork = Annotated[Command, command_dependency(*STAFF_ROLES)]
Band = Literal["over_1000", "500_to_1000", "under_500"]
Stage = Literal["unassessed", "assessed", "preparation", "community", "term_ended"]


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
    band: Annotated[Band | None, Query(description="the seed's census band, by headcount")] = None,
    operator_status: OperatorStatus | None = None,
    stage: Stage | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """List housing sites with capacity, occupants and free beds, their size band, the latest assessment and the
    community's stage (the site_occupancy view)."""
    flt = SiteFilter(area=services.app.areas.resolve(area) if area else None,
                     operator_type=operator_type.value if operator_type else None,
                     has_free_beds=has_free_beds, closed=closed, band=band,
                     operator_status=operator_status.value if operator_status else None, stage=stage,
                     areas=principal.area_filter())
    with services.pool.connection() as conn:
        page = list_sites(conn, flt, limit, cursor)
    return page_response(page, headers, item_model=SiteListItem)


@router.get("/pipeline", response_model=SitePipelinePublic)
@access(READERS, AreaRule.LIST)
def pipeline(services: ServicesDep, principal: PrincipalDep,
             headers: Annotated[dict[str, str], after("site_occupancy")]) -> JSONResponse:
    """Open sites by stage on the way to a community (成熟一个发展一个: unassessed, assessed, preparation,
    community, term_ended), each with what it lacks for the next step (``assessment``, ``fresh_assessment``:
    the latest is older than 90 days, the conditions the latest assessment lists, ``election``) and ``ready``."""
    with services.pool.connection() as conn:
        stages = site_pipeline(conn, services.today(), ASSESSMENT_VALID_DAYS, principal.area_filter())
    flat = [site for stage in stages for site in stage["sites"]]
    return respond(SitePipelinePublic.model_validate({"stages": stages, "sites": flat}), headers)


def operator_record(services: Services, site_id: UUID) -> UUID | None:
    """The operator record (GET /operators/{id}) that runs the site now, if one does."""
    try:
        claim: SiteOperatorClaim = services.app.repository.get(site_claim_id(site_id))
    except AggregateNotFoundError:
        return None
    operator_id: UUID | None = claim.operator_id
    return operator_id


def site_document(site: HousingSite, presenter: Presenter, area_name: str | None,
                  operator_id: UUID | None = None) -> SitePublic:
    committee = site.community_committee
    return SitePublic.model_validate({
        "id": site.id,
        "version": site.version,
        "name": site.name,
        "area": site.area,
        "area_name": area_name,
        "address": site.address,
        "operator": {"type": site.operator_type, "name": site.operator_name, "id": operator_id},
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
        "stage": site.stage,
        "assessment": site.assessment,
        "preparation": ({**site.preparation, "group": presenter.members(site.preparation["group"])}
                        if site.preparation else None),
        "elected_committee": ({**{k: v for k, v in site.community.items() if k != "next_member"},
                               "members": presenter.members(list(site.community["members"].values()))}
                              if site.community else None),
    })


@router.get("/{site_id}", response_model=SitePublic)
@access(READERS, AreaRule.OBJECT)
def get_site(site_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep, lang: Language,
             known_at: KnownAt = None, effective_at: EffectiveAt = None) -> JSONResponse:
    """One housing site, current as of its last event (ETag: its version), or as known at a moment and/or as true
    on a date."""
    site = record_at(services, principal, HousingSite, site_id, known_at, effective_at)
    area = services.app.areas.get(site.area)
    name = (area.name_en if lang == "en" else area.name_zh) if area else None
    # As of another time, the record that ran the site then, as the site's events say (found by a
    # review: the site as of a date named the record that runs it today).
    operator_id = operator_record(services, site_id) if known_at is None and effective_at is None else site.operator_id
    # The residents its committees and preparatory group name in full are read (found by a review:
    # the web page logged them, this route did not).
    named = [*(site.community_committee or {}).get("members", []), *(site.preparation or {}).get("group", []),
             *((site.community or {}).get("members") or {}).values()]
    with services.pool.connection() as conn:
        record_names_read(conn, principal, [m.get("resident_id") for m in named if isinstance(m, dict)],
                          read_route(request), detail=str(site_id))
    return respond(site_document(site, Presenter(services.app.vault, principal, lang), name, operator_id),
                   {"ETag": f'"{site.version}"'})


@router.post("/{site_id}/capacity", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def change_capacity(site_id: UUID, body: CapacityChange, cmd: SiteCommand) -> JSONResponse:
    """Change the number of beds from a date on (default today); never below the residents who lived
    there on any day since."""
    return cmd.run(lambda stamp, claim: cmd.app.change_site_capacity(
        site_id, body.capacity, stamp, effective_date=body.effective_date, expected_version=cmd.expected_version,
        idempotency=claim))


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


@router.post("/{site_id}/assessments", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def assess_site(site_id: UUID, body: SiteAssessmentCreate, cmd: SiteWork, services: ServicesDep) -> JSONResponse:
    """Record a readiness assessment: headcount counted on the day, facilities present (missing ones are found
    against the office's checklist), operator clear / disputed / none, the villages the site straddles. The answer's
    ``missing_conditions`` names what the site lacks to become a community."""
    settings = services.settings
    return cmd.run(lambda stamp, claim: cmd.app.assess_site(
        site_id, assessed_on=body.assessed_on, headcount=body.headcount,
        facilities_present=[f.value for f in body.facilities_present], operator_status=body.operator_status,
        villages=list(body.villages), note=body.note, checklist=list(settings.community_facility_checklist),
        min_headcount=settings.community_min_headcount, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{site_id}/preparation", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def approve_preparation(site_id: UUID, body: PreparationCreate, cmd: SiteCommand) -> JSONResponse:
    """Approve the preparatory group (筹备组). Refused (409 ``site_not_ready`` with ``missing_conditions``) while
    the latest assessment is missing, older than 90 days on ``approved_on``, or lists a missing condition."""
    group = [m.model_dump(mode="json", exclude_none=True) for m in body.group]
    return cmd.run(lambda stamp, claim: cmd.app.approve_preparation(
        site_id, approved_on=body.approved_on, group=group, note=body.note, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/elections", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def hold_election(site_id: UUID, body: ElectionCreate, cmd: SiteCommand) -> JSONResponse:
    """Record the community committee's election after an approved preparation (or a term's end): the ``seats``
    candidates with the most votes are elected; the answer's ``elected`` lists their member ids."""
    candidates = [c.model_dump(mode="json", exclude_none=True) for c in body.candidates]
    return cmd.run(lambda stamp, claim: cmd.app.hold_election(
        site_id, held_on=body.held_on, seats=body.seats, candidates=candidates, ballots=body.ballots, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/community-members", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def change_community_members(site_id: UUID, body: CommunityMembersChange, cmd: SiteCommand) -> JSONResponse:
    """Members of the elected committee leave (by member id) or join between elections."""
    joined = [m.model_dump(mode="json", exclude_none=True) for m in body.joined]
    return cmd.run(lambda stamp, claim: cmd.app.change_community_members(
        site_id, changed_on=body.changed_on, joined=joined, left=list(body.left), reason=body.reason, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/term-end", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def end_term(site_id: UUID, body: TermEnd, cmd: SiteCommand) -> JSONResponse:
    """Record that the elected committee's term ended; the next election may then be held."""
    return cmd.run(lambda stamp, claim: cmd.app.end_community_term(
        site_id, ended_on=body.ended_on, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{site_id}/closure", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def close_site(site_id: UUID, body: SiteClosure, cmd: SiteCommand) -> JSONResponse:
    """Close an empty site; nobody can move in afterwards."""
    return cmd.run(lambda stamp, claim: cmd.app.close_site(
        site_id, body.closed_on, body.reason, stamp, expected_version=cmd.expected_version, idempotency=claim))
