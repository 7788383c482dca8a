"""Residents: search (name, identity-number suffix, site, area), register (the identity
number checked as it is typed, and again by the use case), and a resident's page with their
facts, housing, permit, history and the moves their status allows."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route, reading_as, shown
from api.present import Presenter
from api.routes.history import CATALOGUE
from api.schemas import DepartureCreate, ErasureCreate, HousingIn, MoveCreate, ResidentCreate, ReturnCreate
from api.summaries import site_namer, summary
from api.web.core import (
    STAFF_ROLES,
    SUPERVISOR_ROLES,
    CommandOutcome,
    Page,
    api_limits,
    current_page,
    day_or_none,
    is_digits,
    redirect,
    refusal_status,
    uuid_or_none,
)
from application.audit import record_access, record_names_read, search_detail
from application.history import effective_on, history
from application.store import NotFound
from domain.common import ERASED, Role
from domain.identity import IdentityNumber
from domain.residents import (
    DependantRelation,
    HouseholdRelation,
    HousingKind,
    LegalBasis,
    PermitStatus,
    ResidenceStatus,
    Resident,
    ServiceKind,
)
from domain.sites import HousingSite
from projections.pages import BadCursor
from projections.residents import ResidentFilter, list_residents
from projections.services import SCHOOL_AGE
from projections.site_occupancy import SiteFilter, list_sites

router = APIRouter()
READERS = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")
SUFFIX = re.compile(r"^[0-9]{3,5}[0-9X]$")
SHOWN = 200  # residents shown on one search page
MOVE_OUT_KINDS = [k.value for k in HousingKind if k is not HousingKind.SITE]
# The most characters each form's fields take: the API's bodies' (api/schemas.py).
HOUSING_MOST = api_limits(HousingIn, "landlord", "address")
REGISTER_MOST = api_limits(ResidentCreate, "id_number", "name", "hometown", "employer", "area") | HOUSING_MOST
MOVE_OUT_MOST = api_limits(MoveCreate, "area") | HOUSING_MOST
DEPARTURE_MOST = api_limits(DepartureCreate, "reason")
RETURN_MOST = api_limits(ReturnCreate, "area")
ERASURE_MOST = api_limits(ErasureCreate, "note")


# -- helpers -------------------------------------------------------------------
def _area_name(page: Page, code: str | None) -> str:
    if not code:
        return ""
    area = page.services.app.areas.get(code)
    if area is None:
        return code
    return area.name_en if page.lang == "en" else area.name_zh


def _areas(page: Page) -> list[tuple[str, str]]:
    """The areas the user may act in, as (code, name) in the page's order."""
    visible = page.principal.visible
    # all() answers its cache for a few seconds from its start, empty before the first read (a
    # monotonic clock may start near zero): read the register then.
    register = page.services.app.areas.all() or page.services.app.areas.refresh()
    areas = [a for a in register.values() if visible is None or a.code in visible]
    rows = page.sorted_by_name([{"code": a.code, "name": a.name_en if page.lang == "en" else a.name_zh}
                                for a in areas])
    return [(r["code"], r["name"]) for r in rows]


def _sites(page: Page, **filters: Any) -> list[dict[str, Any]]:
    flt = SiteFilter(areas=page.principal.area_filter(), **filters)
    with page.services.pool.connection() as conn:
        items = list_sites(conn, flt, 1000, None).items
    return page.sorted_by_name(items)


SHORT_ID = 8  # the characters of a record's id that tell it apart in a list


def site_names(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each site's name as a list offers it: its name, and where another site of ``rows`` has the
    same name, its address too (and the start of its id, where the address is the same as well),
    so two sites of one name can be told apart (found by a review: the forms' site lists
    offered two identical entries)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault(str(row["name"]), []).append(row)
    names: dict[str, str] = {}
    for name, same in by_name.items():
        addresses = [str(r.get("address") or "") for r in same]
        for row, address in zip(same, addresses, strict=True):
            shown = name
            if len(same) > 1:
                shown = f"{name} · {address}" if address else name
                if not address or addresses.count(address) > 1:
                    shown += f" · #{str(row['id'])[:SHORT_ID]}"
            names[str(row["id"])] = shown
    return names


def site_options(rows: list[dict[str, Any]], suffix: Callable[[dict[str, Any]], str] | None = None
                 ) -> list[tuple[str, str]]:
    """``(id, label)`` for each of ``rows`` in their order: the name as ``site_names`` tells it,
    then what ``suffix`` says of the site (its area, its free beds)."""
    names = site_names(rows)
    return [(str(s["id"]), names[str(s["id"])] + (suffix(s) if suffix else "")) for s in rows]


def _fail(page: Page, rule: str, field_name: str, fallback: str) -> CommandOutcome:
    return page.refused(rule, fallback, field_name)


_status = refusal_status  # the name the page modules importing it from here use


def _required(page: Page, form: dict[str, str], names: list[str]) -> CommandOutcome | None:
    for name in names:
        if not form.get(name):
            return _fail(page, "required", name, "required")
    return None


def _day(page: Page, form: dict[str, str], name: str) -> tuple[date | None, CommandOutcome | None]:
    value = day_or_none(form.get(name))
    if value is None:
        return None, _fail(page, "date_invalid", name, "a date, e.g. 2026-11-01")
    return value, None


# -- search --------------------------------------------------------------------
def _search(page: Page, flt: ResidentFilter, suffix: str | None, cursor: str | None = None,
            route: str = "GET /ui/residents") -> tuple[list[dict[str, Any]], int, str | None]:
    """A page of the residents found (by the view's keyed suffix tokens for an identity-number
    suffix), the total and the next page's cursor. An old or edited cursor: the first page."""
    if suffix:
        flt = dataclasses.replace(flt, id_suffix_token=page.services.app.vault.id_suffix_token(suffix))
    with page.services.pool.connection() as conn:
        try:
            result = list_residents(conn, flt, SHOWN, cursor)
        except BadCursor:
            page.dropped.add("cursor")
            result = list_residents(conn, flt, SHOWN, None)
        # Each resident shown in full is a read of their data, as an API list's is (found by a
        # review: searches by name or number left no trace); the words searched are not kept.
        record_names_read(conn, page.principal, [r["id"] for r in result.items], route,
                          detail=search_detail(flt.name_token, suffix))
    return result.items, result.total, result.next_cursor


# -- a resident picked in another page's form (a committee's member, a case's party) ------------------
RESIDENT_CHOICES = 20  # residents offered for a name typed in a resident field


def resident_matches(page: Page, text: str) -> list[dict[str, Any]]:
    """Residents of the user's areas still in the district whose name starts with ``text``
    (the view's keyed name-prefix tokens), as shown to this user."""
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    if not text or not presenter.full:
        return []
    flt = ResidentFilter(name_token=page.services.app.vault.name_token(text), areas=page.principal.area_filter())
    with page.services.pool.connection() as conn:
        rows = list_residents(conn, flt, RESIDENT_CHOICES, None).items
        shown = [{**presenter.resident_row(r), "area_name": _area_name(page, r.get("area"))} for r in rows
                 if r.get("status") != ResidenceStatus.DEPARTED.value]
        # the names offered are a search's read (found by a review: a picker left no trace)
        record_names_read(conn, page.principal, [r["id"] for r in shown],
                          read_route(page.request), detail=search_detail(flt.name_token, None))
    return page.sorted_by_name(shown, person=True)


def resident_names(page: Page, presenter: Presenter, resident_ids: list[UUID]) -> dict[UUID, str | None]:
    """Each resident's name as the Presenter shows it (None: not in the user's areas); the
    names shown are a read of their data, logged as a list's are (found by a review: the active
    members' list and page named residents and left no trace)."""
    names: dict[UUID, str | None] = {}
    with reading_as(page.principal):
        for resident_id in resident_ids:
            try:
                names[resident_id] = presenter.name(page.services.app.load(Resident, resident_id).name)
            except NotFound:
                names[resident_id] = None
    shown = [r for r, name in names.items() if name is not None]
    if shown:
        with page.services.pool.connection() as conn:
            record_names_read(conn, page.principal, shown, read_route(page.request))
    return names


def resident_options_page(request: Request, roles: frozenset[Role]) -> Response:
    """The ``<option>``s of residents whose name starts with what was typed in a form's resident
    field (htmx fills the field's datalist as one types), for users of ``roles``."""
    page = current_page(request)
    page.require(roles)
    typed = next((v.strip() for k, v in request.query_params.items() if "resident" in k), "")
    found = [] if uuid_or_none(typed) else resident_matches(page, typed)
    return page.render("committee_resident_options.html", residents=found)


def resident_picked(page: Page, picked: str, field_name: str) -> tuple[UUID | None, CommandOutcome | None]:
    """The resident a form's resident field names: an id (as the list offers it) or a full name
    only one resident of the user's areas has; else a refusal on ``field_name``. Whether an id
    names a resident the user may see is the use case's to say."""
    resident_id = uuid_or_none(picked)
    if resident_id is not None:
        return resident_id, None
    exact = [r for r in resident_matches(page, picked) if r["name"] == picked]
    if len(exact) != 1:
        rule, why = (("resident_ambiguous", "several residents have that name; pick one from the list")
                     if exact else ("resident_unknown", "no resident of your areas has that name"))
        return None, page.refused(rule, why, field_name)
    return UUID(str(exact[0]["id"])), None


@router.get("/ui/residents")
def residents(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    query = request.query_params
    values = {k: query.get(k, "").strip() for k in ("name", "id_suffix", "site_id", "area", "status")}
    problem = None
    suffix = values["id_suffix"].upper() or None
    if suffix and not SUFFIX.match(suffix):
        problem = _fail(page, "id_suffix", "id_suffix", "the last 4 to 6 characters of an identity number")
        suffix = None
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    token = page.services.app.vault.name_token(values["name"]) if values["name"] and presenter.full else None
    site_id = uuid_or_none(values["site_id"])
    area = values["area"] if values["area"] in dict(_areas(page)) else None
    status = values["status"] if values["status"] in {s.value for s in ResidenceStatus} else None
    flt = ResidentFilter(site_id=str(site_id) if site_id else None, area=area, status=status, name_token=token,
                         areas=page.principal.area_filter())
    cursor = query.get("cursor") or None
    rows, total, next_cursor = ([], 0, None) if problem else _search(page, flt, suffix, cursor)
    sites = _sites(page)
    names_of_sites = {str(s["id"]): s["name"] for s in sites}
    shown = []
    for row in rows:
        item = presenter.resident_row(row)
        item["site_name"] = names_of_sites.get(str(row.get("site_id")), "") if row.get("site_id") else ""
        item["area_name"] = _area_name(page, row.get("area"))
        shown.append(item)
    def search_url(cursor: str | None = None) -> str:
        kept = {k: v for k, v in values.items() if v} | ({"cursor": cursor} if cursor else {})
        return "/ui/residents" + (f"?{urlencode(kept)}" if kept else "")

    return page.render("residents.html", residents=page.sorted_by_name(shown, person=True), total=total,
                       next_url=search_url(next_cursor) if next_cursor else None,
                       first_url=search_url() if cursor and "cursor" not in page.dropped else None,
                       bad_cursor="cursor" in page.dropped, values=values, outcome=problem, areas=_areas(page),
                       sites=site_options(sites),
                       statuses=[(s.value, page.label("status", s.value)) for s in ResidenceStatus],
                       may_register=page.may(STAFF_ROLES), status=422 if problem else 200)


# -- register ------------------------------------------------------------------
def _site_choices(page: Page, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return site_options(rows, lambda s: f' ({_area_name(page, s["area"])}, '
                        + page._("%(n)s free beds") % {"n": s["free_beds"]} + ")")


def _render_new(page: Page, values: dict[str, str], outcome: CommandOutcome | None, status: int = 200) -> Response:
    relations = [(r.value, page.label("household_relation", r.value)) for r in HouseholdRelation]
    return page.render("resident_new.html", status=status, values=values, outcome=outcome, areas=_areas(page),
                       relations=relations, kinds=[(k, page.label("housing", k)) for k in MOVE_OUT_KINDS],
                       open_sites=_site_choices(page, _sites(page, has_free_beds=True, closed=False)))


def _housing_field(outcome: CommandOutcome) -> CommandOutcome:
    """The API's ``housing.kind`` / ``housing.landlord`` are the form's housing_kind / landlord."""
    if outcome.field and outcome.field.startswith("housing."):
        outcome.field = "housing_kind" if outcome.field == "housing.kind" else outcome.field.split(".", 1)[1]
    return outcome


@router.get("/ui/residents/new")
def new_resident(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    return _render_new(page, {"registered_on": page.services.today().isoformat()}, None)


@router.post("/ui/residents/new")
async def register_resident(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    outcome = _required(page, form, ["id_number", "name", "phone", "hometown", "area", "registered_on"])
    registered_on = None
    if outcome is None:
        registered_on, outcome = _day(page, form, "registered_on")
    if outcome is None and not PHONE.match(form["phone"]):
        outcome = _fail(page, "phone_format", "phone", "a phone number: digits, spaces or dashes")
    if outcome is None:
        outcome = page.too_long(form, REGISTER_MOST)
    relation = form.get("household_relation") or None
    if outcome is None and relation is not None and relation not in {r.value for r in HouseholdRelation}:
        outcome = _fail(page, "household_relation", "household_relation", "unknown household relation")
    # Where they live from the day registered: a site, or housing of a kind (other by default).
    site_id = uuid_or_none(form.get("site_id"))
    kind = form.get("housing_kind") or None
    landlord, address = form.get("landlord") or None, form.get("address") or None
    if outcome is None and form.get("site_id") and site_id is None:
        outcome = _fail(page, "not_found", "site_id", "choose a site from the list")
    if outcome is None and site_id is not None and (kind not in (None, "other") or landlord or address):
        outcome = _fail(page, "site_or_housing", "site_id", "choose a site or housing outside sites, not both")
    if outcome is None and kind is not None and kind not in MOVE_OUT_KINDS:
        outcome = _fail(page, "housing_kind", "housing_kind", "choose a housing kind from the list")
    if outcome is None:
        assert registered_on is not None
        day = registered_on
        outcome = _housing_field(page.run(lambda stamp: page.services.app.register_resident(
            id_number=IdentityNumber.parse(form["id_number"]), name=form["name"], phone=form["phone"],
            hometown=form["hometown"], employer=form.get("employer") or None, area=form["area"],
            registered_on=day, stamp=stamp,
            household_relation=HouseholdRelation(relation) if relation else None,
            site_id=site_id, housing_kind=None if site_id else kind, address=address, landlord=landlord)))
    if not outcome.ok:
        return _render_new(page, values, outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/residents/{outcome.result.id}?after={outcome.result.position}")


# -- one resident --------------------------------------------------------------
def _timeline(page: Page, resident_id: UUID) -> list[dict[str, Any]]:
    """Every event of the record: what happened, by whom, recorded when and effective when."""
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    site_name = site_namer(page.services.app)
    entries = []
    for entry in history(page.services.app, resident_id, CATALOGUE):
        event = entry.event
        reason = getattr(event, "reason", None)
        entries.append({
            "version": entry.version, "event": entry.name, "actor_id": getattr(event, "actor_id", None),
            "actor_role": getattr(event, "actor_role", None), "recorded_at": entry.recorded_at,
            "effective_on": effective_on(event, CATALOGUE),
            "summary": summary(entry.name, event, page.lang, lambda code: _area_name(page, code), site_name),
            "reason": presenter.text(reason) if reason is not None else None,
        })
    return entries


def _resident_page(page: Page, resident_id: UUID, *, form: str | None = None, values: dict[str, str] | None = None,
                   outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            resident = page.services.app.load(Resident, resident_id)
            site = page.services.app.load(HousingSite, resident.site_id) if resident.site_id else None
    except NotFound:
        return page.render("resident_missing.html", status=404)
    with page.services.pool.connection() as conn:
        record_access(conn, page.principal, resident_id, read_route(page.request))
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    number = resident.id_number
    facts = {
        "name": presenter.name(resident.name),
        "id_number_masked": presenter.name(number) if number == ERASED else IdentityNumber(number).masked,
        "sex": resident.sex, "birth_date": shown(ERASED, page.lang) if number == ERASED else resident.birth_date,
        "hometown": shown(ERASED if number == ERASED else resident.hometown, page.lang),
        "employer": None if number == ERASED else resident.employer, "phone": presenter.text(resident.phone),
        "household_relation": presenter.text(resident.household_relation),
        "registered_on": resident.registered_on, "area_name": _area_name(page, resident.area),
        "since": resident.since, "departure_reason": presenter.text(resident.departure_reason),
        "school": resident.school,
    }
    housing = {"kind": resident.housing.get("kind"), "address": presenter.text(resident.housing.get("address")),
               "landlord": presenter.text(resident.housing.get("landlord"))}
    departed = resident.status == ResidenceStatus.DEPARTED
    acts = page.may(STAFF_ROLES) and resident.erased_on is None
    # An erased resident still lives somewhere and may leave, freeing a bed: a move out of a site
    # and a departure stay; what only records more about them (a move in, between rented rooms, a
    # return, a dispute naming them) does not: the use cases refuse it (already_erased).
    moves = page.may(STAFF_ROLES)
    open_sites = []
    if acts and not departed:
        open_sites = [s for s in _sites(page, has_free_beds=True, closed=False) if s["id"] != resident.site_id]
    actions = {
        "move_in": acts and not departed and bool(open_sites),
        "move_out": moves and not departed and (acts or resident.site_id is not None),
        "departure": moves and not departed,
        "return": acts and departed,
        "erase": page.may(SUPERVISOR_ROLES) and resident.erased_on is None,
        "log_dispute": acts,  # with them as the first party (a party's name stays the register's)
    }
    permit_status = resident.permit["status"] if resident.permit else None
    permit_forms = {  # the permit's next step, as its state allows
        "apply": acts and not departed and permit_status in (None, PermitStatus.CANCELLED),
        "issue": acts and not departed and permit_status == PermitStatus.APPLIED,
        "endorse": acts and not departed and permit_status in (PermitStatus.ISSUED, PermitStatus.SUSPENDED),
    }
    return page.render(
        "resident.html", status=status, resident=resident, facts=facts, housing=housing, site=site,
        # its number too (found by a review: the pages showed it nowhere), [erased] with its holder
        permit={**resident.permit, "number": shown(resident.permit.get("number"), page.lang)} if resident.permit
        else None, permit_forms=permit_forms, timeline=_timeline(page, resident_id), actions=actions,
        open_sites=_site_choices(page, open_sites),
        areas=_areas(page), kinds=[(k, page.label("housing", k)) for k in MOVE_OUT_KINDS],
        form=form, values=values or {}, outcome=outcome, today=page.services.today().isoformat(),
        bases=[(b.value, page.label("legal_basis", b.value)) for b in LegalBasis],
        family=_family(page, resident, presenter))


def _family(page: Page, resident: Resident, presenter: Presenter) -> dict[str, Any]:
    """The family and services card: dependants (the name as the Presenter shows it, the
    birth year, whether a child of school age has a place), the forms their state allows, and
    the resident's active-member record or the link to identify them as one."""
    year = page.services.today().year
    dependants = []
    for dependant_id, d in sorted(resident.dependants.items(), key=lambda kv: (kv[1]["birth_year"], kv[0])):
        age = year - int(d["birth_year"])
        dependants.append({
            "id": dependant_id, "name": presenter.name(d["name"]), "birth_year": d["birth_year"],
            "relation": d["relation"], "school_status": d.get("school_status"), "school": d.get("school"),
            "school_age": d["relation"] == DependantRelation.CHILD and SCHOOL_AGE[0] <= age <= SCHOOL_AGE[1],
        })
    choice = [(d["id"], f'{d["name"]} ({d["birth_year"]})') for d in dependants]
    may = page.may(STAFF_ROLES) and resident.erased_on is None and resident.status != ResidenceStatus.DEPARTED
    requestable = [c for c, d in zip(choice, dependants, strict=True) if d["school_status"] in (None, "refused")]
    pending = [c for c, d in zip(choice, dependants, strict=True) if d["school_status"] == "requested"]
    return {
        "dependants": dependants, "requestable": requestable, "pending": pending,
        "relations": [(r.value, page.label("dependant_relation", r.value)) for r in DependantRelation],
        "service_kinds": [(k.value, page.label("service_kind", k.value)) for k in ServiceKind],
        "answers": [(a, page.label("school_status", a)) for a in ("placed", "refused")],
        "actions": {"dependant": may, "school_request": may and bool(requestable),
                    "school_answer": may and bool(pending), "service": may},
        "active_member_id": resident.active_member_id,
        "may_identify": may and resident.active_member_id is None,
    }


@router.get("/ui/residents/{resident_id}")
async def resident(resident_id: UUID, request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("residents", int(after))
    return _resident_page(page, resident_id)


async def _act(request: Request, resident_id: UUID, form_name: str, required: list[str],
               act: Any, day_field: str = "effective_date", most: dict[str, int] | None = None) -> Response:
    """Run one of the resident's forms (its date in ``day_field``, its texts at ``most`` the API's
    limits): the use case the API calls, or the form again with the rule."""
    page = current_page(request)
    page.require(STAFF_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    outcome = _required(page, form, required) or page.too_long(form, most or {})
    day = None
    if outcome is None:
        day, outcome = _day(page, form, day_field)
    if outcome is None:
        assert day is not None
        outcome = act(page, form, day)
    if not outcome.ok:
        return _resident_page(page, resident_id, form=form_name, values=values, outcome=outcome,
                              status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/residents/{resident_id}?after={outcome.result.position}")


@router.post("/ui/residents/{resident_id}/move-in")
async def move_in(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        site_id = uuid_or_none(form.get("site_id"))
        if site_id is None:
            return _fail(page, "required", "site_id", "required")
        return page.run(lambda stamp: page.services.app.move_resident_into_site(resident_id, site_id, day, stamp))

    return await _act(request, resident_id, "move-in", ["site_id", "effective_date"], act)


@router.post("/ui/residents/{resident_id}/move-out")
async def move_out(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        kind = form.get("housing_kind") or "other"
        return _housing_field(page.run(lambda stamp: page.services.app.move_resident_to_private_housing(
            resident_id, form["area"], day, stamp, housing_kind=kind, address=form.get("address") or None,
            landlord=form.get("landlord") or None)))

    return await _act(request, resident_id, "move-out", ["area", "effective_date"], act, most=MOVE_OUT_MOST)


@router.post("/ui/residents/{resident_id}/departure")
async def departure(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        return page.unconfirmed(form) or page.run(lambda stamp: page.services.app.record_departure(
            resident_id, day, form["reason"], stamp))

    return await _act(request, resident_id, "departure", ["effective_date", "reason"], act, most=DEPARTURE_MOST)


@router.post("/ui/residents/{resident_id}/return")
async def return_(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.record_return(resident_id, form["area"], day, stamp))

    return await _act(request, resident_id, "return", ["area", "effective_date"], act, most=RETURN_MOST)


@router.post("/ui/residents/{resident_id}/erasure")
async def erasure(resident_id: UUID, request: Request) -> Response:
    """Erase the resident's personal data (PIPL Art. 47), as the API's POST /residents/{id}/erasure:
    a supervisor, a legal basis, a request reference that never names them, and the box ticked."""
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k not in ("csrf", "confirm")}
    outcome = _required(page, form, ["legal_basis", "note"]) or page.too_long(form, ERASURE_MOST) \
        or page.unconfirmed(form) or page.run(lambda stamp: page.services.app.erase_resident(
            resident_id, legal_basis=form["legal_basis"], note=form["note"], stamp=stamp))
    if not outcome.ok:
        return _resident_page(page, resident_id, form="erase", values=values, outcome=outcome,
                              status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/residents/{resident_id}?after={outcome.result.position}")


# -- the residence permit (居住证): apply, issue, endorse, as the API's /residents/{id}/permit routes --
PERMIT_NUMBER = re.compile(r"[A-Za-z0-9-]{1,40}")


@router.post("/ui/residents/{resident_id}/permit")
async def apply_for_permit(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.apply_for_permit(resident_id, applied_on=day, stamp=stamp))

    return await _act(request, resident_id, "permit-apply", ["applied_on"], act, day_field="applied_on")


@router.post("/ui/residents/{resident_id}/permit/issuance")
async def issue_permit(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        number = form.get("number", "")
        if not PERMIT_NUMBER.fullmatch(number):
            return _fail(page, "permit_number", "number", "letters, digits and hyphens, at most 40")
        return page.run(lambda stamp: page.services.app.issue_permit(
            resident_id, number=number, issued_on=day, stamp=stamp))

    return await _act(request, resident_id, "permit-issue", ["issued_on"], act, day_field="issued_on")


@router.post("/ui/residents/{resident_id}/permit/endorsement")
async def endorse_permit(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: date) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.endorse_permit(resident_id, endorsed_on=day, stamp=stamp))

    return await _act(request, resident_id, "permit-endorse", ["endorsed_on"], act, day_field="endorsed_on")
