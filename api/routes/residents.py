"""Residents: register them, record their moves, departures and returns; erase their
personal data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

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
    shown,
)
from api.deps import STAFF as STAFF_ROLES
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.present import Presenter
from api.problems import Problem
from api.routes.history import EffectiveAt, KnownAt, record_at
from api.schemas import (
    AreaName,
    DepartureCreate,
    EmployerChange,
    ErasureCreate,
    HousingIn,
    HousingKindFilter,
    HousingPublic,
    MoveCreate,
    PageOut,
    ResidentCreate,
    ResidentListItem,
    ResidentPublic,
    ReturnCreate,
    StatusFilter,
    StudyChange,
)
from application.areas import AreaDirectory
from application.audit import record_access, record_names_read, search_detail
from domain.common import ERASED
from domain.identity import IdentityNumber
from domain.residents import HouseholdRelation, Resident
from projections.residents import ResidentFilter, list_residents

router = APIRouter(prefix="/residents", tags=["residents"])

ResidentCommand = Annotated[Command, command_dependency(*STAFF_ROLES)]
SupervisorCommand = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]


def _check_site_housing(site_id: UUID | None, housing: HousingIn | None) -> None:
    """A housing site is named by site_id; housing given beside it can only say so."""
    if site_id is not None and housing is not None and housing.kind != "site":
        raise Problem(422, "Invalid request", "a resident in a housing site (site_id) has housing kind site",
                      rule="housing_kind", errors=[{"field": "housing.kind", "rule": "housing_kind",
                                                    "message": "site with site_id"}])


@router.post("", status_code=201, responses=created("resident"))
@access(STAFF, AreaRule.CREATE)
def register_resident(body: ResidentCreate, cmd: ResidentCommand) -> JSONResponse:
    """Register a migrant resident; sex and birth date come from the identity number. Without an area,
    a key bound to exactly one area registers the resident there (with site_id: the site's area). Where they
    live from the day registered: site_id (a housing site), or housing (rented with the landlord or address,
    employer_dormitory, other); recorded as a move on registered_on, stored with the registration or not at all."""
    id_number = IdentityNumber.parse(body.id_number)
    area = body.area
    _check_site_housing(body.site_id, body.housing)
    if area is None and body.site_id is None:
        if len(cmd.principal.areas) != 1:
            raise Problem(422, "Invalid request", "give the area where the resident lives",
                          rule="area_missing", errors=[{"field": "area", "rule": "area_missing",
                                                        "message": "required for a key with no single area"}])
        area = cmd.principal.areas[0]
    return cmd.run(
        lambda stamp, claim: cmd.app.register_resident(
            id_number=id_number,
            name=body.name,
            phone=body.phone,
            hometown=body.hometown,
            employer=body.employer,
            area=area,
            registered_on=body.registered_on,
            stamp=stamp,
            household_relation=body.household_relation,
            site_id=body.site_id,
            housing_kind=body.housing.kind if body.housing else None,
            address=body.housing.address if body.housing else None,
            landlord=body.housing.landlord if body.housing else None,
            idempotency=claim,
        ),
        status=201,
        location=lambda r: f"/residents/{r.id}",
    )


@router.get("", response_model=PageOut[ResidentListItem])
@access(READERS, AreaRule.LIST)
def list_all_residents(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    lang: Language,
    headers: Annotated[dict[str, str], after("residents")],
    limit: Limit,
    site_id: UUID | None = None,
    area: Annotated[AreaName | None, Query()] = None,
    status: StatusFilter | None = None,
    housing_kind: HousingKindFilter | None = None,
    name: Annotated[str | None, Query(max_length=100, description="the start of a name (staff and the pii scope)")]
    = None,
    id_number_suffix: Annotated[str | None, Query(pattern=r"^[0-9]{3,5}[0-9Xx]$", description=(
        "the last 4 to 6 characters of the identity number (staff and the pii scope)"))] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """List residents (the residents view), filtered and paginated; identity numbers are masked."""
    presenter = Presenter(services.app.vault, principal, lang)
    token = services.app.vault.name_token(name) if name and presenter.full else None
    if (name or id_number_suffix) and not presenter.full:
        raise Problem(403, "Forbidden", "searching by name or identity number needs personal data access (the pii "
                      "scope)", rule="pii_scope_required")
    suffix_token = services.app.vault.id_suffix_token(id_number_suffix) if id_number_suffix else None
    flt = ResidentFilter(site_id=str(site_id) if site_id else None, area=_area(services.app.areas, area),
                         status=status, housing_kind=housing_kind, name_token=token, id_suffix_token=suffix_token,
                         areas=principal.area_filter())
    with services.pool.connection() as conn:
        page = list_residents(conn, flt, limit, cursor)
        # Each resident shown in full is a read of their data (found by a review: paging through
        # the register, or searching it by name, left no trace while one record's read did).
        record_names_read(conn, principal, [r["id"] for r in page.items], read_route(request),
                          detail=search_detail(name, id_number_suffix))
    return page_response(page, headers, [presenter.resident_row(r) for r in page.items], ResidentListItem)



def _area(areas: AreaDirectory, value: str | None) -> str | None:
    return areas.resolve(value) if value else None


def _household_relation(resident: Resident, presenter: Presenter) -> HouseholdRelation | None:
    """Shown to those who see personal data; an erased one reads as not recorded."""
    value = presenter.vault.open(resident.household_relation)
    if not presenter.full or value is None or value == ERASED:
        return None
    return HouseholdRelation(value)


def _as_of_detail(known_at: datetime | None, effective_at: date | None) -> str | None:
    """The moments a read asked for, as its query string gave them (``known_at=...``), only those given."""
    given = [f"{name}={value.isoformat()}" for name, value in (("known_at", known_at), ("effective_at", effective_at))
             if value is not None]
    return " ".join(given) or None


@router.get("/{resident_id}", response_model=ResidentPublic)
@access(READERS, AreaRule.OBJECT)
def get_resident(resident_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep,
                 lang: Language, known_at: KnownAt = None, effective_at: EffectiveAt = None) -> JSONResponse:
    """One resident, current as of their last event (ETag: the version), or as known at a moment and/or as true on
    a date. Personal fields are masked for an api_consumer without the pii scope. Every read is in the access log."""
    resident = record_at(services, principal, Resident, resident_id, known_at, effective_at)
    with services.pool.connection() as conn:
        record_access(conn, principal, resident_id, read_route(request), detail=_as_of_detail(known_at, effective_at))
    presenter = Presenter(services.app.vault, principal, lang)
    number = resident.id_number
    erased = number == ERASED
    birth_date, birth_year = presenter.birth(None if erased else resident.birth_date)
    area = services.app.areas.get(resident.area)
    doc = ResidentPublic(
        id=resident.id, version=resident.version, name=presenter.name(resident.name),
        id_number_masked=presenter.name(number) if erased else IdentityNumber(number).masked,
        # erased: as read now, and as known before the erasure (whose events still hold them)
        sex=resident.sex, birth_date=birth_date, birth_year=birth_year,
        hometown=shown(ERASED if erased else resident.hometown, lang),
        employer=None if erased else resident.employer, status=resident.status, site_id=resident.site_id,
        area=resident.area,
        area_name=(area.name_en if lang == "en" else area.name_zh) if area else None, since=resident.since,
        registered_on=resident.registered_on, departure_reason=presenter.text(resident.departure_reason),
        phone=presenter.text(resident.phone) if principal.sees_personal_data else None,
        household_relation=_household_relation(resident, presenter),
        erased_on=date.fromisoformat(resident.erased_on) if resident.erased_on else None,
        housing=HousingPublic(
            kind=str(resident.housing["kind"]),
            address=presenter.text(resident.housing["address"]) if principal.sees_personal_data else None,
            landlord=presenter.text(resident.housing["landlord"]) if principal.sees_personal_data else None),
        school=resident.school,
    )
    headers = {"Cache-Control": "no-store"}
    if known_at is None and effective_at is None:
        headers["ETag"] = f'"{resident.version}"'
    return respond(doc, headers)


@router.post("/{resident_id}/moves", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def move_resident(resident_id: UUID, body: MoveCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record a move into a housing site (site_id) or out of sites into housing in an area (area, and housing:
    rented with the landlord or address, employer_dormitory, or other; without housing: other)."""
    if (body.site_id is None) == (body.area is None):
        raise Problem(422, "Invalid request", "give exactly one of site_id (a housing site) or area (private housing)",
                      rule="move_destination",
                      errors=[{"field": "site_id", "rule": "move_destination", "message": "site_id or area"}])
    _check_site_housing(body.site_id, body.housing)
    if body.site_id is not None:
        site_id = body.site_id
        return cmd.run(lambda stamp, claim: cmd.app.move_resident_into_site(
            resident_id, site_id, body.effective_date, stamp, expected_version=cmd.expected_version,
            idempotency=claim))
    area = body.area or ""
    housing = body.housing
    return cmd.run(lambda stamp, claim: cmd.app.move_resident_to_private_housing(
        resident_id, area, body.effective_date, stamp, housing_kind=housing.kind if housing else "other",
        address=housing.address if housing else None, landlord=housing.landlord if housing else None,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{resident_id}/departure", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_departure(resident_id: UUID, body: DepartureCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record that the resident left the district; they free their bed."""
    return cmd.run(lambda stamp, claim: cmd.app.record_departure(
        resident_id, body.effective_date, body.reason, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{resident_id}/return", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_return(resident_id: UUID, body: ReturnCreate, cmd: ResidentCommand) -> JSONResponse:
    """Record that a departed resident came back to the district."""
    return cmd.run(lambda stamp, claim: cmd.app.record_return(
        resident_id, body.area, body.effective_date, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{resident_id}/employer", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def change_employer(resident_id: UUID, body: EmployerChange, cmd: ResidentCommand) -> JSONResponse:
    """Record the resident's new employer (or none)."""
    return cmd.run(lambda stamp, claim: cmd.app.change_employer(
        resident_id, body.employer, body.effective_date, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{resident_id}/study", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_study(resident_id: UUID, body: StudyChange, cmd: ResidentCommand) -> JSONResponse:
    """Record where the resident studies from a date (school null: stopped), Order 663's third route to a
    residence permit (continuous study)."""
    return cmd.run(lambda stamp, claim: cmd.app.record_study(
        resident_id, body.school, body.effective_date, stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{resident_id}/erasure", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def erase_resident(resident_id: UUID, body: ErasureCreate, cmd: SupervisorCommand) -> JSONResponse:
    """Erase the resident's personal data (name, identity number, phone, and the text of the disputes they are a
    party to): the request is recorded and the keys that sealed the data are destroyed. History, replays,
    exports, topics and views then read [已删除] / [erased] for those fields; everything else stays."""
    return cmd.run(lambda stamp, claim: cmd.app.erase_resident(
        resident_id, legal_basis=body.legal_basis.value, note=body.note, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))

