"""Co-building (结对共建): the pairings of housing sites with enterprises, units and schools,
and what each partner delivered. The list (filtered by site, or to the pairings in force on a
day) with each pairing's contributions counted and valued; a pairing's page with its
contributions; and short forms for the roles the API allows: supervisors agree and end a
pairing, staff record a contribution. The same use cases as ``/pairings`` (same events, same
actor). The ledger page shows the contributions per site beside the government's subsidies."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import reading_as
from api.routes.cobuilding import ContributionCreate, PairingCreate, PairingEnding
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
from api.web.pages.operators import READERS
from api.web.pages.residents import _area_name, _required, _sites, _status, site_options
from api.web.pages.sites import _options
from api.web.pages.subsidies import money
from application.store import NotFound
from domain.cobuilding import ContributionKind, Pairing, PartnerType
from domain.common import Role
from projections.cobuilding import PairingFilter, list_pairings
from projections.pages import BadCursor

router = APIRouter()
PARTNER_TYPES = [t.value for t in PartnerType]
KINDS = [k.value for k in ContributionKind]
PAGE_SIZE = 50
# The most characters each form's fields take: the API's bodies' (api/routes/cobuilding.py).
MOST = (api_limits(PairingCreate, "partner_name") | api_limits(ContributionCreate, "description")
        | api_limits(PairingEnding, "reason"))


def _site_names(page: Page) -> dict[str, dict[str, Any]]:
    """The sites the user may see, by id (name, area, whether closed), in pinyin order."""
    return {str(s["id"]): s for s in _sites(page)}


# -- the list ------------------------------------------------------------------
def _list_page(page: Page, *, values: dict[str, str] | None = None, outcome: CommandOutcome | None = None,
               status: int = 200) -> Response:
    query = page.request.query_params if page.request.method == "GET" else {}
    sites = _site_names(page)
    wanted = {"site_id": str(query.get("site_id", "")).strip(), "active_on": str(query.get("active_on", "")).strip()}
    site_id = uuid_or_none(wanted["site_id"]) if wanted["site_id"] in sites else None
    active_on = day_or_none(wanted["active_on"])
    flt = PairingFilter(site_id=site_id, active_on=active_on, areas=page.principal.area_filter())
    cursor = str(query.get("cursor", "")) or None
    notice = None
    with page.services.pool.connection() as conn:
        try:
            result = list_pairings(conn, flt, PAGE_SIZE, cursor)
        except BadCursor:
            cursor, notice = None, page._("That page link is not valid (any more); here is the first page.")
            page.dropped.add("cursor")
            result = list_pairings(conn, flt, PAGE_SIZE, None)
    rows = [{**r, "site_name": sites.get(str(r["site_id"]), {}).get("name", ""),
             "area_name": _area_name(page, r["site_area"])} for r in result.items]
    filters = {"site_id": str(site_id or ""), "active_on": active_on.isoformat() if active_on else ""}
    kept = {k: v for k, v in filters.items() if v}
    open_sites = [(sid, f'{s["name"]} ({_area_name(page, s["area"])})') for sid, s in sites.items()
                  if not s.get("closed_on")]
    defaults = {"agreed_on": page.services.today().isoformat(), "site_id": str(site_id or "")}
    return page.render(
        "pairings.html", status=status, pairings=rows, total=result.total, notice=notice,
        filters=filters,
        site_choices=site_options(list(sites.values())), open_sites=open_sites,
        partner_types=_options(page, "partner_type", PARTNER_TYPES), may_agree=page.may(SUPERVISOR_ROLES),
        values=values if values is not None else defaults, outcome=outcome, money=money,
        next_url=f"/ui/pairings?{urlencode({**kept, 'cursor': result.next_cursor})}" if result.next_cursor else None,
        first_url=f"/ui/pairings?{urlencode(kept)}" if cursor else None)


@router.get("/ui/pairings")
async def pairings(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("cobuilding", int(after))
    return _list_page(page)


@router.post("/ui/pairings/new")
async def agree_pairing(request: Request) -> Response:
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    outcome = (_required(page, form, ["site_id", "partner_type", "partner_name", "agreed_on"])
               or page.too_long(form, MOST))
    site_id, agreed_on = uuid_or_none(form.get("site_id")), day_or_none(form.get("agreed_on"))
    if outcome is None and site_id is None:
        outcome = page.refused("not_found", "choose a site from the list", "site_id")
    if outcome is None and agreed_on is None:
        outcome = page.refused("date_invalid", "a date, e.g. 2026-11-01", "agreed_on")
    if outcome is None:
        assert site_id is not None and agreed_on is not None
        site, day = site_id, agreed_on
        outcome = page.run(lambda stamp: page.services.app.agree_pairing(
            site_id=site, partner_type=form["partner_type"], partner_name=form["partner_name"], agreed_on=day,
            stamp=stamp))
    if not outcome.ok:
        return _list_page(page, values=values, outcome=outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/pairings/{outcome.result.id}?after={outcome.result.position}")


# -- one pairing ---------------------------------------------------------------
def _pairing_page(page: Page, pairing_id: UUID, *, form: str | None = None, values: dict[str, str] | None = None,
                  outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            pairing = page.services.app.load(Pairing, pairing_id)
    except NotFound:
        return page.render("notfound.html", status=404)
    site = _site_names(page).get(str(pairing.site_id), {})
    contributions = sorted(pairing.contributions, key=lambda c: c.delivered_on)
    valued = [c.value_yuan for c in contributions if c.value_yuan is not None]
    by_kind: dict[str, dict[str, Any]] = {}
    for c in contributions:
        entry = by_kind.setdefault(c.kind, {"count": 0, "value": 0})
        entry["count"] += 1
        entry["value"] += c.value_yuan or 0
    open_ = pairing.ended_on is None
    actions = {"contribute": page.may(STAFF_ROLES) and open_, "end": page.may(SUPERVISOR_ROLES) and open_}
    today = page.services.today().isoformat()
    defaults = {"contribute": {"delivered_on": today}, "end": {"ended_on": today}}
    return page.render(
        "pairing.html", status=status, pairing=pairing, site_name=site.get("name", ""),
        area_name=_area_name(page, pairing.site_area), contributions=contributions, total=sum(valued),
        by_kind=[(kind, by_kind[kind]) for kind in KINDS if kind in by_kind], money=money, actions=actions,
        kinds=_options(page, "contribution_kind", KINDS), form=form, outcome=outcome,
        values=defaults | ({form: values} if form and values is not None else {}))


@router.get("/ui/pairings/{pairing_id}")
async def pairing(pairing_id: UUID, request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("cobuilding", int(after))
    return _pairing_page(page, pairing_id)


async def _act(request: Request, pairing_id: UUID, form_name: str, roles: frozenset[Role], day_field: str,
               required: list[str], act: Any) -> Response:
    """One of the pairing's forms: the API's use case, or the page again with the form as it
    was typed and the rule in words (nothing stored)."""
    page = current_page(request)
    page.require(roles)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    outcome = _required(page, form, [day_field, *required]) or page.too_long(form, MOST)
    day = day_or_none(form.get(day_field))
    if outcome is None and day is None:
        outcome = page.refused("date_invalid", "a date, e.g. 2026-11-01", day_field)
    if outcome is None:
        outcome = act(page, form, day)
    if not outcome.ok:
        return _pairing_page(page, pairing_id, form=form_name, values=values, outcome=outcome,
                             status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/pairings/{pairing_id}?after={outcome.result.position}")


@router.post("/ui/pairings/{pairing_id}/contributions")
async def record_contribution(pairing_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: Any) -> CommandOutcome:
        # 3,000 typed with an ASCII or a full-width comma
        value = form.get("value_yuan", "").replace(",", "").replace("\uff0c", "") or None
        return page.run(lambda stamp: page.services.app.record_contribution(
            pairing_id, delivered_on=day, kind=form["kind"], description=form.get("description", ""),
            value_yuan=value, stamp=stamp))

    return await _act(request, pairing_id, "contribute", STAFF_ROLES, "delivered_on", ["kind"], act)


@router.post("/ui/pairings/{pairing_id}/ending")
async def end_pairing(pairing_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], day: Any) -> CommandOutcome:
        return page.unconfirmed(form) or page.run(lambda stamp: page.services.app.end_pairing(
            pairing_id, ended_on=day, reason=form["reason"], stamp=stamp))

    return await _act(request, pairing_id, "end", SUPERVISOR_ROLES, "ended_on", ["reason"], act)
