"""Community work: "migrants managing migrants" (以外管外) through active members (骨干), and
"services first" (服务为先). The active members' page: per site how many are left, who was
lost in the last twelve months and which roles nobody holds (succession gaps), the list of
members and the form to identify a resident as one; a member's page with their roles,
trainings, employer liaison and loss, and short forms for what their state allows. The
services page: children of school age without a school place per site, and the services
delivered per month. The resident's page carries their family and services card; its forms
post here. The same use cases as ``/active-members`` and the services routes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route, reading_as
from api.present import Presenter
from api.routes.active_members import ActiveMemberCreate, EmployerLiaisonCreate, TrainingCreate
from api.routes.services import DependantCreate, SchoolRefusalCreate, SchoolRequestCreate, ServiceCreate
from api.web.core import (
    STAFF_ROLES,
    CommandOutcome,
    Page,
    api_limits,
    current_page,
    day_or_none,
    is_digits,
    redirect,
    uuid_or_none,
)
from api.web.pages.residents import (
    SUFFIX,
    _area_name,
    _areas,
    _required,
    _resident_page,
    _search,
    _sites,
    _status,
    resident_names,
    site_options,
)
from api.web.pages.residents import _timeline as _record_timeline
from application.audit import record_access, record_names_read
from application.store import NotFound
from domain.active_members import ActiveMember, ActiveMemberRole, LossReason
from domain.common import Role
from domain.residents import MIN_BIRTH_YEAR, DependantRelation, ResidenceStatus, Resident, ServiceKind, add_months
from projections.active_members import list_active_members, monthly, site_summaries
from projections.residents import ResidentFilter
from projections.services import SCHOOL_AGE, school_gaps, services_by_month

router = APIRouter()
# Active members are shown by name: the roles that read residents. The services' figures
# are counts without names: finance reads them too.
READERS = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
FIGURE_READERS = READERS | {Role.FINANCE}
ROLES = [r.value for r in ActiveMemberRole]
# A departure from the district records the loss itself (with the resident's departure).
LOSS_REASONS = [r.value for r in LossReason if r is not LossReason.DEPARTED]
STATUSES = ["active", "lost"]
PAGE_SIZE = 50
FOUND = 20  # residents offered by the identify form's search
# The most characters each form's fields take: the API's bodies' (api/routes/active_members.py and
# services.py; a field of one name takes as much in every form of the pages).
MOST = (api_limits(ActiveMemberCreate, "area") | api_limits(TrainingCreate, "course")
        | api_limits(EmployerLiaisonCreate, "employer", "note") | api_limits(DependantCreate, "name")
        | api_limits(SchoolRequestCreate, "school") | api_limits(SchoolRefusalCreate, "reason")
        | api_limits(ServiceCreate, "provider"))


# -- shared helpers ------------------------------------------------------------
def _dates(page: Page, form: dict[str, str], names: list[str]) -> tuple[dict[str, date], CommandOutcome | None]:
    days: dict[str, date] = {}
    for name in names:
        day = day_or_none(form.get(name))
        if day is None:
            return days, page.refused("date_invalid", "a date, e.g. 2026-11-01", name)
        days[name] = day
    return days, None


def _check(page: Page, form: dict[str, str], required: list[str], dates: list[str]
           ) -> tuple[dict[str, date], CommandOutcome | None]:
    """The form's own checks before the use case: filled in, not too long, dates that are dates."""
    outcome = _required(page, form, required) or page.too_long(form, MOST)
    if outcome is not None:
        return {}, outcome
    return _dates(page, form, dates)


def _site_names(page: Page) -> dict[str, str]:
    return {str(s["id"]): s["name"] for s in _sites(page)}


def _place(page: Page, site_names: dict[str, str], site_id: Any, area: str) -> str:
    """Where a row counts: its site (in its area), or the area alone (residents outside sites)."""
    if site_id is None:
        return _area_name(page, area)
    return site_names.get(str(site_id), str(site_id))


# -- active members: the list, the per-site summary and identifying one ---------------------
def _members_page(page: Page, query: dict[str, str], *, values: dict[str, str] | None = None,
                  outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    areas = _areas(page)
    sites = _sites(page)
    site_names = {str(s["id"]): s["name"] for s in sites}
    area = query.get("area") if query.get("area") in dict(areas) else None
    site_id = uuid_or_none(query.get("site_id"))
    site_id = site_id if site_id is not None and str(site_id) in site_names else None
    member_status = query.get("status") if query.get("status") in STATUSES else None
    shown_page = int(query["page"]) if is_digits(query.get("page", "")) and int(query["page"]) > 0 else 1
    today = page.services.today()
    first_month = add_months(today.replace(day=1), -11)
    visible = page.principal.area_filter()
    with page.services.pool.connection() as conn:
        summaries = site_summaries(conn, on=today, site_id=site_id, area=area, areas=visible)
        members = list_active_members(conn, site_id=site_id, area=area, status=member_status, areas=visible).items
        months = monthly(conn, first=first_month, last=today.replace(day=1), area=area, areas=visible)
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    start = (shown_page - 1) * PAGE_SIZE
    on_page = members[start:start + PAGE_SIZE]
    names = resident_names(page, presenter, [UUID(str(m["resident_id"])) for m in on_page])
    rows = [{**m, "name": names[UUID(str(m["resident_id"]))], "area_name": _area_name(page, m["area"]),
             "site_name": site_names.get(str(m["site_id"]), "") if m["site_id"] else ""} for m in on_page]
    summary_rows = [{**s, "place": _place(page, site_names, s["site_id"], s["area"]),
                     "area_name": _area_name(page, s["area"])} for s in summaries]
    month_rows = [{**m, "area_name": _area_name(page, m["area"])} for m in months
                  if m["active_at_start"] or m["identified"] or m["trained"] or m["appointed"] or m["lost"]]
    kept = {k: v for k, v in (("area", area or ""), ("site_id", str(site_id or "")), ("status", member_status or ""))
            if v}
    pages = {
        "next": (f"/ui/active-members?{urlencode({**kept, 'page': shown_page + 1})}"
                 if start + PAGE_SIZE < len(members) else None),
        "first": f"/ui/active-members?{urlencode(kept)}" if shown_page > 1 else None,
    }
    may_identify = page.may(STAFF_ROLES)
    identify = _identify_context(page, query, values) if may_identify else None
    return page.render(
        "active_members.html", status=status, summaries=summary_rows, members=rows, total=len(members),
        months=month_rows, filters={"area": area or "", "site_id": str(site_id or ""), "status": member_status or ""},
        areas=areas, sites=site_options(sites, lambda s: f' ({_area_name(page, s["area"])})'),
        statuses=[(s, page.label("member_status", s)) for s in STATUSES], pages=pages, may_identify=may_identify,
        identify=identify, outcome=outcome, on=today)


def _identify_context(page: Page, query: dict[str, str], values: dict[str, str] | None) -> dict[str, Any]:
    """The identify form: the resident picked (from their page's link, or the search below it),
    where they serve (default: where they live), and the day."""
    typed = values if values is not None else {"resident_id": query.get("resident_id", ""),
                                               "identified_on": page.services.today().isoformat()}
    picked = None
    resident_id = uuid_or_none(typed.get("resident_id"))
    if resident_id is not None:
        presenter = Presenter(page.services.app.vault, page.principal, page.lang)
        try:
            with reading_as(page.principal):
                resident = page.services.app.load(Resident, resident_id)
        except NotFound:
            resident = None
        if resident is not None:
            with page.services.pool.connection() as conn:  # their name is shown (found by a review: no trace)
                record_names_read(conn, page.principal, [resident.id], read_route(page.request))
            site_name = _site_names(page).get(str(resident.site_id), "") if resident.site_id else ""
            picked = {"id": str(resident.id), "name": presenter.name(resident.name), "site_name": site_name,
                      "area_name": _area_name(page, resident.area), "member_id": resident.active_member_id,
                      "departed": resident.status == ResidenceStatus.DEPARTED}
    find = query.get("find", "").strip()
    found: list[dict[str, Any]] | None = None
    if find:
        found = _find_residents(page, find)
    return {"values": typed, "picked": picked, "find": find, "found": found,
            "sites": site_options(_sites(page, closed=False), lambda s: f' ({_area_name(page, s["area"])})')}


def _find_residents(page: Page, text: str) -> list[dict[str, Any]]:
    """Residents present in the district whose name starts with ``text``, or whose identity
    number ends with it (4 to 6 characters), as the residents' search finds them."""
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    suffix = text.upper() if SUFFIX.match(text.upper()) else None
    token = None if suffix or not presenter.full else page.services.app.vault.name_token(text)
    if suffix is None and token is None:
        return []
    rows, _, _ = _search(page, ResidentFilter(name_token=token, areas=page.principal.area_filter()), suffix,
                         route=read_route(page.request))
    found = []
    for row in rows:
        if row["status"] == ResidenceStatus.DEPARTED:
            continue
        item = presenter.resident_row(row)
        item["area_name"] = _area_name(page, row.get("area"))
        found.append(item)
    return page.sorted_by_name(found, person=True)[:FOUND]


@router.get("/ui/active-members")
async def active_members(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("active_members", int(after))
    return _members_page(page, {k: v.strip() for k, v in request.query_params.items()})


@router.post("/ui/active-members")
async def identify_active_member(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    days, outcome = _check(page, form, ["resident_id", "identified_on"], ["identified_on"])
    resident_id = uuid_or_none(form.get("resident_id"))
    site_id = uuid_or_none(form.get("site_id"))
    area = form.get("area") or None
    if outcome is None and resident_id is None:
        outcome = page.refused("choose_from_list", "choose a resident", "resident_id")
    if outcome is None and form.get("site_id") and site_id is None:
        outcome = page.refused("choose_from_list", "choose a site from the list", "site_id")
    if outcome is None and site_id is not None and area is not None:
        outcome = page.refused("site_or_area", "give the site or the area they serve, not both", "area")
    if outcome is None:
        assert resident_id is not None
        rid = resident_id
        outcome = page.run(lambda stamp: page.services.app.identify_active_member(
            resident_id=rid, site_id=site_id, area=area, identified_on=days["identified_on"], stamp=stamp))
    if not outcome.ok:
        query = {"resident_id": values.get("resident_id", "")}
        return _members_page(page, query, values=values, outcome=outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/active-members/{outcome.result.id}?after={outcome.result.position}")


# -- one active member -------------------------------------------------------------------------
def _member_page(page: Page, member_id: UUID, *, form: str | None = None, values: dict[str, str] | None = None,
                 outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            member = page.services.app.load(ActiveMember, member_id)
    except NotFound:
        return page.render("notfound.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    resident_id = UUID(str(member.resident_id))
    name = resident_names(page, presenter, [resident_id])[resident_id]
    with page.services.pool.connection() as conn:  # a person's record (and the liaison's sealed note) was read
        record_access(conn, page.principal, resident_id, read_route(page.request), detail=str(member_id))
    site_name = _site_names(page).get(str(member.site_id), "") if member.site_id else ""
    held = sorted(member.roles.items(), key=lambda kv: ROLES.index(kv[0]))
    open_roles = [r for r in ROLES if r not in member.roles]
    liaisons = [{**liaison, "note": presenter.text(liaison["note"])} for liaison in member.liaisons]
    acts = page.may(STAFF_ROLES) and not member.lost
    actions = {"training": acts, "appointment": acts and bool(open_roles), "role_end": acts and bool(held),
               "liaison": acts, "loss": acts}
    if form in actions and page.may(STAFF_ROLES):  # a refused form stays in sight with its rule, whatever the state
        actions[form] = True
    today = page.services.today().isoformat()
    defaults = {"training": {"trained_on": today}, "appointment": {"appointed_on": today},
                "role_end": {"ended_on": today}, "liaison": {"agreed_on": today}, "loss": {"lost_on": today}}
    return page.render(
        "active_member.html", status=status, member=member, name=name or page._("(outside your areas)"),
        linked=name is not None, resident_id=str(resident_id),
        site_name=site_name, area_name=_area_name(page, member.area), held=held,
        trainings=sorted(member.trainings, key=lambda t: t["trained_on"]), liaisons=liaisons,
        open_roles=[(r, page.label("active_role", r)) for r in open_roles],
        held_roles=[(r, page.label("active_role", r)) for r, _ in held],
        reasons=[(r, page.label("loss_reason", r)) for r in LOSS_REASONS],
        timeline=_record_timeline(page, member_id), actions=actions, form=form, outcome=outcome,
        values=defaults | ({form: values} if form and values is not None else {}))


@router.get("/ui/active-members/{member_id}")
async def active_member(member_id: UUID, request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("active_members", int(after))
    return _member_page(page, member_id)


FormAct = Callable[[Page, dict[str, str], dict[str, date]], CommandOutcome]


async def _form_act(request: Request, form_name: str, required: list[str], dates: list[str], act: FormAct,
                    again: Callable[..., Response], done: str) -> Response:
    """One of the pages' forms: the API's use case, then ``done`` (with ``after=``, and any
    #fragment kept last), or the page again (``again``) with the form as typed and the rule in words."""
    page = current_page(request)
    page.require(STAFF_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    days, outcome = _check(page, form, required, dates)
    if outcome is None:
        outcome = act(page, form, days)
    if not outcome.ok:
        return again(page, form=form_name, values=values, outcome=outcome, status=_status(outcome))
    assert outcome.result is not None
    path, _, fragment = done.partition("#")
    return redirect(f"{path}?after={outcome.result.position}" + (f"#{fragment}" if fragment else ""))


async def _member_act(request: Request, member_id: UUID, form_name: str, required: list[str], dates: list[str],
                      act: FormAct) -> Response:
    return await _form_act(request, form_name, required, dates, act,
                           lambda page, **kw: _member_page(page, member_id, **kw), f"/ui/active-members/{member_id}")


def _role(page: Page, form: dict[str, str]) -> CommandOutcome | None:
    if form["role"] not in ROLES:
        return page.refused("active_member_role", "choose a role from the list", "role")
    return None


@router.post("/ui/active-members/{member_id}/trainings")
async def record_training(member_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.record_active_member_training(
            member_id, course=form["course"], trained_on=days["trained_on"], stamp=stamp))

    return await _member_act(request, member_id, "training", ["course", "trained_on"], ["trained_on"], act)


@router.post("/ui/active-members/{member_id}/appointments")
async def appoint(member_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        return _role(page, form) or page.run(lambda stamp: page.services.app.appoint_active_member(
            member_id, role=form["role"], appointed_on=days["appointed_on"], stamp=stamp))

    return await _member_act(request, member_id, "appointment", ["role", "appointed_on"], ["appointed_on"], act)


@router.post("/ui/active-members/{member_id}/role-endings")
async def end_role(member_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        return _role(page, form) or page.run(lambda stamp: page.services.app.end_active_member_role(
            member_id, role=form["role"], ended_on=days["ended_on"], stamp=stamp))

    return await _member_act(request, member_id, "role_end", ["role", "ended_on"], ["ended_on"], act)


@router.post("/ui/active-members/{member_id}/employer-liaisons")
async def agree_employer_liaison(member_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.agree_employer_liaison(
            member_id, employer=form["employer"], agreed_on=days["agreed_on"], note=form["note"], stamp=stamp))

    return await _member_act(request, member_id, "liaison", ["employer", "agreed_on", "note"], ["agreed_on"], act)


@router.post("/ui/active-members/{member_id}/loss")
async def record_loss(member_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        if form["reason"] not in LOSS_REASONS:
            return page.refused("loss_reason", "choose a reason from the list", "reason")
        return page.unconfirmed(form) or page.run(lambda stamp: page.services.app.record_active_member_loss(
            member_id, lost_on=days["lost_on"], reason=form["reason"], stamp=stamp))

    return await _member_act(request, member_id, "loss", ["lost_on", "reason"], ["lost_on"], act)


# -- services: school places and services delivered -------------------------------------------
@router.get("/ui/services")
async def services_page(request: Request) -> Response:
    page = current_page(request)
    page.require(FIGURE_READERS)
    query = {k: v.strip() for k, v in request.query_params.items()}
    if is_digits(query.get("after", "")):
        await page.wait_for("services", int(query["after"]))
    areas = _areas(page)
    sites = _sites(page)
    site_names = {str(s["id"]): s["name"] for s in sites}
    area = query.get("area") if query.get("area") in dict(areas) else None
    site_id = uuid_or_none(query.get("site_id"))
    site_id = site_id if site_id is not None and str(site_id) in site_names else None
    kinds = [k.value for k in ServiceKind]
    kind = query.get("kind") if query.get("kind") in kinds else None
    today = page.services.today()
    year = today.year
    if is_digits(query.get("year", "")) and MIN_BIRTH_YEAR <= int(query["year"]) <= today.year + 1:
        year = int(query["year"])
    last = today.replace(day=1)
    visible = page.principal.area_filter()
    with page.services.pool.connection() as conn:
        gaps = school_gaps(conn, year=year, site_id=site_id, area=area, areas=visible)
        delivered = services_by_month(conn, first=add_months(last, -11), last=last, kind=kind, site_id=site_id,
                                      area=area, areas=visible)
    gap_rows = [{**g, "place": _place(page, site_names, g["site_id"], g["area"]),
                 "area_name": _area_name(page, g["area"])} for g in gaps]
    month_rows = [{**d, "place": _place(page, site_names, d["site_id"], d["area"]),
                   "area_name": _area_name(page, d["area"])} for d in delivered]
    return page.render(
        "services.html", gaps=gap_rows, delivered=month_rows, year=year, school_age=SCHOOL_AGE,
        born=(year - SCHOOL_AGE[1], year - SCHOOL_AGE[0]),
        filters={"area": area or "", "site_id": str(site_id or ""), "kind": kind or "", "year": str(year)},
        areas=areas, sites=site_options(sites, lambda s: f' ({_area_name(page, s["area"])})'),
        kinds=[(k, page.label("service_kind", k)) for k in kinds],
        totals={"without": sum(g["children_without_place"] for g in gaps),
                "delivered": sum(d["delivered"] for d in delivered)})


# -- the resident's family and services (their page's card) -----------------------------------
async def _resident_act(request: Request, resident_id: UUID, form_name: str, required: list[str], dates: list[str],
                        act: FormAct) -> Response:
    """One of the family card's forms: back to the resident's page, at the card."""
    return await _form_act(request, form_name, required, dates, act,
                           lambda page, **kw: _resident_page(page, resident_id, **kw),
                           f"/ui/residents/{resident_id}#family")


@router.post("/ui/residents/{resident_id}/dependants")
async def record_dependant(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        born = form["birth_year"]
        if not (is_digits(born) and len(born) == 4):
            return page.refused("birth_year_out_of_range", "a year such as 2017", "birth_year")
        if form["relation"] not in {r.value for r in DependantRelation}:
            return page.refused("dependant_relation", "choose a relation from the list", "relation")
        return page.run(lambda stamp: page.services.app.record_dependant(
            resident_id, name=form["name"], birth_year=int(born), relation=form["relation"], stamp=stamp))

    return await _resident_act(request, resident_id, "dependant", ["name", "birth_year", "relation"], [], act)


@router.post("/ui/residents/{resident_id}/school-requests")
async def request_school_place(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.request_school_place(
            resident_id, dependant_id=form["dependant_id"], school=form["school"],
            requested_on=days["requested_on"], stamp=stamp))

    return await _resident_act(request, resident_id, "school-request", ["dependant_id", "school", "requested_on"],
                               ["requested_on"], act)


@router.post("/ui/residents/{resident_id}/school-answers")
async def answer_school_request(resident_id: UUID, request: Request) -> Response:
    """The school's answer to the pending request: a place (placed) or a refusal with its reason."""
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        day = days["answered_on"]
        if form["answer"] == "placed":
            return page.run(lambda stamp: page.services.app.place_at_school(
                resident_id, dependant_id=form["dependant_id"], school=form["school"], placed_on=day, stamp=stamp))
        if form["answer"] != "refused":
            return page.refused("school_answer", "placed or refused", "answer")
        if not form.get("reason"):
            return page.refused("required", "required", "reason")
        return page.run(lambda stamp: page.services.app.refuse_school_place(
            resident_id, dependant_id=form["dependant_id"], school=form["school"], refused_on=day,
            reason=form["reason"], stamp=stamp))

    return await _resident_act(request, resident_id, "school-answer",
                               ["dependant_id", "answer", "school", "answered_on"], ["answered_on"], act)


@router.post("/ui/residents/{resident_id}/services")
async def deliver_service(resident_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], days: dict[str, date]) -> CommandOutcome:
        if form["kind"] not in {k.value for k in ServiceKind}:
            return page.refused("service_kind", "choose a service from the list", "kind")
        return page.run(lambda stamp: page.services.app.deliver_service(
            resident_id, kind=form["kind"], delivered_on=days["delivered_on"], provider=form["provider"],
            stamp=stamp))

    return await _resident_act(request, resident_id, "service", ["kind", "delivered_on", "provider"],
                               ["delivered_on"], act)
