"""Operators (运作主体): the list with the sites each runs and its latest reinvestment ratio,
and an operator's page: its facts (the contact person only to those who may read personal
data, and that read is in the access log), the sites it runs with each site's sanitation
trend, its yearly reports with the reinvestment ratio, and short forms for the roles the API
allows: register an operator, assign and release a site, file a yearly report, record an
inspection, change or erase the contact person. The same use cases as ``/operators``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route, reading_as
from api.present import Presenter
from api.routes.operators import InspectionCreate, OperatorCreate, SiteRelease
from api.schemas import ErasureCreate
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
    uuid_or_none,
)
from api.web.pages.residents import _area_name, _areas, _required, _sites, _status
from application.audit import record_access
from application.store import NotFound
from domain.common import ERASED, Role
from domain.operators import Operator, report_document
from domain.residents import LegalBasis
from domain.sites import HousingSite, OperatorType
from projections.operators import OperatorFilter, list_operators, sanitation_trend
from projections.pages import BadCursor

router = APIRouter()
READERS = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.FINANCE})
TYPES = [t.value for t in OperatorType]
PAGE_SIZE = 50
FIGURES = ("income_from_site", "reinvested_management", "reinvested_sanitation", "reinvested_facilities")
# The most characters each form's fields take: the API's bodies' (api/routes/operators.py; a field of
# one name takes as much in every form of the page). Amounts are typed with separators the API's have not.
MOST = (api_limits(OperatorCreate, "name", "contact", "area") | api_limits(SiteRelease, "reason")
        | api_limits(ErasureCreate, "note") | api_limits(InspectionCreate, "findings"))


# -- the list ------------------------------------------------------------------
@router.get("/ui/operators")
async def operators(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    query = request.query_params
    after = query.get("after", "")
    if is_digits(after):
        await page.wait_for("operators", int(after))
    areas = _areas(page)
    values = {k: query.get(k, "").strip() for k in ("area", "type")}
    flt = OperatorFilter(area=values["area"] if values["area"] in dict(areas) else None,
                         operator_type=values["type"] if values["type"] in TYPES else None,
                         areas=page.principal.area_filter())
    cursor = query.get("cursor") or None
    notice = None
    with page.services.pool.connection() as conn:
        try:
            result = list_operators(conn, flt, PAGE_SIZE, cursor)
        except BadCursor:
            cursor, notice = None, page._("That page link is not valid (any more); here is the first page.")
            page.dropped.add("cursor")
            result = list_operators(conn, flt, PAGE_SIZE, None)
    rows = [{**r, "area_name": _area_name(page, r["area"]), "latest": r["reports"][-1] if r["reports"] else None}
            for r in result.items]
    kept = {k: v for k, v in values.items() if v}
    return page.render(
        "operators.html", operators=rows, values=values, areas=areas, notice=notice,
        types=[(t, page.label("operator_type", t)) for t in TYPES], total=result.total,
        may_register=page.may(SUPERVISOR_ROLES),
        next_url=f"/ui/operators?{urlencode({**kept, 'cursor': result.next_cursor})}" if result.next_cursor else None,
        first_url=f"/ui/operators?{urlencode(kept)}" if cursor else None)


# -- registering one -----------------------------------------------------------
def _render_new(page: Page, values: dict[str, str], outcome: CommandOutcome | None, status: int = 200) -> Response:
    return page.render("operator_new.html", status=status, values=values, outcome=outcome, areas=_areas(page),
                       types=[(t, page.label("operator_type", t)) for t in TYPES])


@router.get("/ui/operators/new")
def new_operator(request: Request) -> Response:
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    return _render_new(page, {}, None)


@router.post("/ui/operators/new")
async def register_operator(request: Request) -> Response:
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    outcome = _required(page, form, ["type", "name", "contact", "area"]) or page.too_long(form, MOST)
    if outcome is None and form["type"] not in TYPES:
        outcome = page.refused("operator_type_unknown", "choose a kind of operator from the list", "type")
    if outcome is None:
        outcome = page.run(lambda stamp: page.services.app.register_operator(
            operator_type=form["type"], name=form["name"], contact=form["contact"], area=form["area"], stamp=stamp))
    if not outcome.ok:
        return _render_new(page, values, outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/operators/{outcome.result.id}?after={outcome.result.position}")


# -- one operator ----------------------------------------------------------------
def _operator_page(page: Page, operator_id: UUID, *, form: str | None = None, values: dict[str, str] | None = None,
                   outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            operator = page.services.app.load(Operator, operator_id)
            runs = sorted(operator.sites.values(), key=lambda s: (s.assigned_on, s.site_id.hex))
            sites = {s.site_id: page.services.app.load(HousingSite, s.site_id) for s in runs}
    except NotFound:
        return page.render("notfound.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    contact = presenter.text(operator.contact)
    areas = page.principal.area_filter()
    with page.services.pool.connection() as conn:
        trends = {s.site_id: sanitation_trend(conn, s.site_id, areas) for s in runs}
        if page.principal.sees_personal_data:  # the contact person is shown: who read it is recorded
            record_access(conn, page.principal, None, read_route(page.request), detail=str(operator_id))
    run_sites = [{"id": str(s.site_id), "name": sites[s.site_id].name, "area_name": _area_name(page, s.site_area),
                  "assigned_on": s.assigned_on, "trend": trends[s.site_id]} for s in runs]
    site_choices = [(r["id"], r["name"]) for r in run_sites]
    may_supervise, may_work = page.may(SUPERVISOR_ROLES), page.may(STAFF_ROLES)
    # The sites it could take over: read only for those who may hand one over.
    assignable = [(str(s["id"]), f'{s["name"]} ({_area_name(page, s["area"])})')
                  for s in _sites(page, closed=False) if s["id"] not in sites] if may_supervise else []
    actions = {
        "assign": may_supervise and bool(assignable), "release": may_supervise and bool(run_sites),
        "report": may_work, "inspect": may_work and bool(run_sites), "contact": may_supervise,
        "erase": may_supervise and operator.contact_erased_on is None,
    }
    today = page.services.today().isoformat()
    defaults = {"assign": {"assigned_on": today}, "release": {"released_on": today},
                "inspect": {"inspected_on": today}, "contact": {"changed_on": today},
                "report": {"year": str(page.services.today().year - 1)}}
    return page.render(
        "operator.html", status=status, operator=operator, area_name=_area_name(page, operator.area),
        contact=contact, contact_erased=operator.contact == ERASED, run_sites=run_sites, site_choices=site_choices,
        assignable=assignable, reports=[report_document(r) for _, r in sorted(operator.reports.items())],
        actions=actions, bases=[(b.value, page.label("legal_basis", b.value)) for b in LegalBasis],
        form=form, outcome=outcome, values=defaults | ({form: values} if form and values is not None else {}))


@router.get("/ui/operators/{operator_id}")
async def operator(operator_id: UUID, request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("operators", int(after))
    return _operator_page(page, operator_id)


Act = Callable[[Page, dict[str, str], "Parsed"], CommandOutcome]


@dataclass(frozen=True)
class Parsed:
    """What a form's fields say once checked: its date (the required field ending in _on) and its site."""

    day: date | None = None
    site_id: UUID | None = None

    def on(self) -> date:
        assert self.day is not None, "the form's date is required"
        return self.day

    def site(self) -> UUID:
        assert self.site_id is not None, "the form's site is required"
        return self.site_id


def _parse(page: Page, form: dict[str, str], required: list[str]) -> Parsed | CommandOutcome:
    day_field = next((name for name in required if name.endswith("_on")), None)
    day = day_or_none(form[day_field]) if day_field else None
    if day_field and day is None:
        return page.refused("date_invalid", "a date, e.g. 2026-11-01", day_field)
    site_id = uuid_or_none(form.get("site_id"))
    if "site_id" in required and site_id is None:
        return page.refused("not_found", "choose a site from the list", "site_id")
    return Parsed(day=day, site_id=site_id)


async def _act(request: Request, operator_id: UUID, form_name: str, roles: frozenset[Role], required: list[str],
               act: Act) -> Response:
    """One of the operator's forms: the API's use case, or the form again with the rule in words."""
    page = current_page(request)
    page.require(roles)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    outcome = _required(page, form, required) or page.too_long(form, MOST)
    if outcome is None:
        parsed = _parse(page, form, required)
        outcome = parsed if isinstance(parsed, CommandOutcome) else act(page, form, parsed)
    if not outcome.ok:
        return _operator_page(page, operator_id, form=form_name, values=values, outcome=outcome,
                              status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/operators/{operator_id}?after={outcome.result.position}")


@router.post("/ui/operators/{operator_id}/sites")
async def assign_site(operator_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], got: Parsed) -> CommandOutcome:
        site_id, on = got.site(), got.on()
        return page.run(lambda stamp: page.services.app.assign_site_to_operator(
            operator_id, site_id=site_id, assigned_on=on, stamp=stamp))

    return await _act(request, operator_id, "assign", SUPERVISOR_ROLES, ["site_id", "assigned_on"], act)


@router.post("/ui/operators/{operator_id}/site-releases")
async def release_site(operator_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], got: Parsed) -> CommandOutcome:
        site_id, on = got.site(), got.on()
        return page.run(lambda stamp: page.services.app.release_site_from_operator(
            operator_id, site_id=site_id, released_on=on, reason=form["reason"], stamp=stamp))

    return await _act(request, operator_id, "release", SUPERVISOR_ROLES, ["site_id", "released_on", "reason"], act)


@router.post("/ui/operators/{operator_id}/reports")
async def file_report(operator_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], got: Parsed) -> CommandOutcome:
        if not is_digits(form["year"]) or not 2000 <= int(form["year"]) <= 2100:
            return page.refused("report_year_out_of_range", "a year such as 2025", "year")
        figures = {name: form[name].replace(",", "") for name in FIGURES}
        return page.run(lambda stamp: page.services.app.file_operator_report(
            operator_id, year=int(form["year"]), figures=figures, stamp=stamp))

    return await _act(request, operator_id, "report", STAFF_ROLES, ["year", *FIGURES], act)


@router.post("/ui/operators/{operator_id}/inspections")
async def record_inspection(operator_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], got: Parsed) -> CommandOutcome:
        site_id, on = got.site(), got.on()
        if not is_digits(form["score"]):
            return page.refused("score_out_of_range", "a score from 0 to 100", "score")
        return page.run(lambda stamp: page.services.app.record_sanitation_inspection(
            operator_id, site_id=site_id, inspected_on=on, score=int(form["score"]),
            findings=form.get("findings", ""), stamp=stamp))

    return await _act(request, operator_id, "inspect", STAFF_ROLES, ["site_id", "inspected_on", "score"], act)


@router.post("/ui/operators/{operator_id}/contact")
async def change_contact(operator_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], got: Parsed) -> CommandOutcome:
        on = got.on()
        return page.run(lambda stamp: page.services.app.change_operator_contact(
            operator_id, contact=form["contact"], changed_on=on, stamp=stamp))

    return await _act(request, operator_id, "contact", SUPERVISOR_ROLES, ["contact", "changed_on"], act)


@router.post("/ui/operators/{operator_id}/contact-erasure")
async def erase_contact(operator_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], got: Parsed) -> CommandOutcome:
        return page.unconfirmed(form) or page.run(lambda stamp: page.services.app.erase_operator_contact(
            operator_id, legal_basis=form["legal_basis"], note=form["note"], stamp=stamp))

    return await _act(request, operator_id, "erase", SUPERVISOR_ROLES, ["legal_basis", "note"], act)

