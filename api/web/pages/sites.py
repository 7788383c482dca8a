"""Housing sites: the list with occupancy bars, operator and stage (filters by area, stage and
band), registering a site, and a site's page with its facts, facilities, residents, committees,
the latest assessment and what the site lacks, and its open cases. Supervisors change the beds.
The pipeline (``/ui/sites/pipeline``) shows the open sites by stage on the way to a community,
each with what it lacks, from the same query as ``GET /sites/pipeline``.

A site's page also carries the forms of its way to a community (成熟一个发展一个), each the API's
own use case (same events, same actor), shown only to the roles the API lets run it and only at
the stage that leads to it: an assessment (staff; before a preparation), approving the
preparatory group (supervisors; once assessed), an election (supervisors; after a preparation or
a term's end) and a term's end (supervisors; a community with an elected committee)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route, reading_as
from api.present import Presenter
from api.routes.sites import operator_record
from api.schemas import (
    Candidate,
    CommitteeMember,
    Operator,
    PreparationCreate,
    SiteAssessmentCreate,
    SiteClosure,
    SiteCreate,
)
from api.web.core import (
    STAFF_ROLES,
    SUPERVISOR_ROLES,
    CommandOutcome,
    Page,
    api_limits,
    current_page,
    is_digits,
    redirect,
)
from api.web.pages.cases import READERS as CASE_READERS
from api.web.pages.committees import READERS as COMMITTEE_READERS
from api.web.pages.residents import READERS as PEOPLE_READERS
from api.web.pages.residents import _area_name, _areas, _day, _fail, _required, _sites, _status
from api.web.pages.subsidies import money
from application.audit import record_names_read
from application.store import CommandResult, NotFound
from domain.common import Role, RuleViolated, Stamp
from domain.sites import (
    ASSESSMENT_VALID_DAYS,
    SEATS_MIN,
    CommunityStage,
    Facility,
    HousingSite,
    OperatorStatus,
    OperatorType,
)
from projections.cobuilding import PairingFilter, list_pairings
from projections.committees import list_committees
from projections.disputes import CaseFilter, list_cases
from projections.residents import ResidentFilter, list_residents
from projections.site_occupancy import site_pipeline

router = APIRouter()
STAGES = [s.value for s in CommunityStage]
BANDS = ["over_1000", "500_to_1000", "under_500"]
FACILITIES = [f.value for f in Facility]
OPERATOR_TYPES = [t.value for t in OperatorType]
OPERATOR_STATUSES = [s.value for s in OperatorStatus]
# Who may run each of the site's forms, as the API's @access rules say (api/routes/sites.py).
REGISTER_ROLES = SUPERVISOR_ROLES
ASSESS_ROLES = STAFF_ROLES
COMMUNITY_ROLES = SUPERVISOR_ROLES  # preparation, election, term end
CANDIDATE_ROWS = 12  # an election of five to nine seats, with more candidates than seats
GROUP_ROWS = 5  # the preparatory group's members typed on the form
LIST_SEPARATORS = re.compile(r"[、,\uff0c;\uff1b\n]+")  # villages typed in one field, ASCII or full-width
# The most characters each form's fields take: the API's bodies' (api/schemas.py).
REGISTER_MOST = api_limits(SiteCreate, "name", "address", "area") | api_limits(Operator, operator_name="name")
ASSESS_MOST = api_limits(SiteAssessmentCreate, "note")
VILLAGE_MOST = api_limits(SiteAssessmentCreate, "villages")["villages"]  # each village's name
VILLAGES_MOST = int(SiteAssessmentCreate.model_json_schema()["properties"]["villages"]["maxItems"])
MEMBER_MOST = api_limits(CommitteeMember, "name", "role")
PREPARATION_MOST = api_limits(PreparationCreate, "note")
CANDIDATE_MOST = api_limits(Candidate, "name")["name"]
CLOSURE_MOST = api_limits(SiteClosure, "reason")


def _lacks(site: HousingSite, page: Page) -> list[str]:
    """What the site lacks for its next step (as GET /sites/pipeline names it)."""
    stage = site.stage
    if stage == CommunityStage.UNASSESSED:
        return ["assessment"]
    if stage == CommunityStage.ASSESSED:
        return list(site.preparation_missing(page.services.today()))
    if stage in (CommunityStage.PREPARATION, CommunityStage.TERM_ENDED):
        return ["election"]
    return []


def lack_label(page: Page, lack: str) -> str:
    """``facility:clinic`` reads as the missing facility; the others are named in the catalogue."""
    if lack.startswith("facility:"):
        return page._("Facility missing: %(facility)s") % {"facility": page.label("facility", lack.split(":", 1)[1])}
    return page.label("lacks", lack)


def _options(page: Page, kind: str, values: Iterable[str]) -> list[tuple[str, str]]:
    return [(v, page.label(kind, v)) for v in values]


@router.get("/ui/sites")
def sites(request: Request) -> Response:
    page = current_page(request)
    query = request.query_params
    values = {k: query.get(k, "").strip() for k in ("area", "stage", "band")}
    areas = _areas(page)
    rows = _sites(page, area=values["area"] if values["area"] in dict(areas) else None,
                  stage=values["stage"] if values["stage"] in STAGES else None,
                  band=values["band"] if values["band"] in BANDS else None)
    for row in rows:
        row["area_name"] = _area_name(page, row["area"])
    return page.render("sites.html", sites=rows, values=values, areas=areas,
                       stages=[(s, page.label("stage", s)) for s in STAGES],
                       bands=[(b, page.label("band", b)) for b in BANDS], may_register=page.may(REGISTER_ROLES))


# Declared before /ui/sites/{site_id}, which would take "pipeline" for a site's id.
@router.get("/ui/sites/pipeline")
async def pipeline(request: Request) -> Response:
    """Open sites by stage on the way to a community (成熟一个发展一个), each with what it lacks
    for its next step in words and a link to its page: ``GET /sites/pipeline``'s query, within
    the user's areas, as the API's LIST rule has it."""
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("site_occupancy", int(after))
    with page.services.pool.connection() as conn:
        stages = site_pipeline(conn, page.services.today(), ASSESSMENT_VALID_DAYS, page.principal.area_filter())
    for stage in stages:
        for site in stage["sites"]:
            site["area_name"] = _area_name(page, site["area"])
            site["lacks_in_words"] = [lack_label(page, lack) for lack in site["lacks"]]
            site["since"] = _reached_on(site)
    return page.render("site_pipeline.html", stages=stages, total=sum(s["count"] for s in stages),
                       valid_days=ASSESSMENT_VALID_DAYS)


def _reached_on(site: dict[str, Any]) -> date | None:
    """The day the site reached its stage, where the stage has one."""
    return {"assessed": site.get("assessed_on"), "preparation": site.get("preparation_approved_on"),
            "community": site.get("elected_on"), "term_ended": site.get("term_ended_on")}.get(site["stage"])


# -- checks a form makes before the use case runs ----------------------------------------------
def _whole(page: Page, form: dict[str, str], name: str, low: int, high: int,
           rule: str = "whole_number") -> tuple[int | None, CommandOutcome | None]:
    """A whole number between ``low`` and ``high`` typed in ``name``."""
    raw = form.get(name, "")
    if not is_digits(raw) or not low <= int(raw) <= high:
        return None, _fail(page, rule, name, f"a whole number from {low} to {high}")
    return int(raw), None


# -- register a site ---------------------------------------------------------------------------
def _render_new(page: Page, values: dict[str, Any], outcome: CommandOutcome | None, status: int = 200) -> Response:
    return page.render("site_new.html", status=status, values=values, outcome=outcome, areas=_areas(page),
                       operator_types=_options(page, "operator_type", OPERATOR_TYPES),
                       facilities=_options(page, "facility", FACILITIES))


@router.get("/ui/sites/new")
def new_site(request: Request) -> Response:
    page = current_page(request)
    page.require(REGISTER_ROLES)
    return _render_new(page, {"facilities": []}, None)


@router.post("/ui/sites/new")
async def register_site(request: Request) -> Response:
    page = current_page(request)
    page.require(REGISTER_ROLES)
    form = await page.form()
    facilities = [f for f in (await page.form_lists()).get("facility", []) if f]
    values: dict[str, Any] = {k: v for k, v in form.items() if k not in ("csrf", "facility")}
    values["facilities"] = facilities
    capacity = None
    outcome = _required(page, form, ["name", "area", "address", "operator_type", "operator_name", "capacity"])
    if outcome is None:
        outcome = page.too_long(form, REGISTER_MOST)
    if outcome is None:
        capacity, outcome = _whole(page, form, "capacity", 1, 100_000, "capacity_not_positive")
    if outcome is None:
        assert capacity is not None
        beds = capacity
        outcome = page.run(lambda stamp: page.services.app.register_site(
            name=form["name"], area=form["area"], address=form["address"], operator_type=form["operator_type"],
            operator_name=form["operator_name"], capacity=beds, facilities=facilities, stamp=stamp))
        if outcome.field and outcome.field.startswith("operator."):  # the form's fields: operator_type, _name
            outcome.field = "operator_" + outcome.field.split(".", 1)[1]
    if not outcome.ok:
        return _render_new(page, values, outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/sites/{outcome.result.id}?after={outcome.result.position}")


# -- one site ----------------------------------------------------------------------------------
def _actions(page: Page, site: HousingSite) -> dict[str, bool]:
    """The community's forms this user may run at this site's stage."""
    stage, open_ = site.stage, site.closed_on is None
    preparing = page.may(COMMUNITY_ROLES) and open_ and stage == CommunityStage.ASSESSED
    missing = site.preparation_missing(page.services.today())
    # An assessment over 90 days old today still carries a preparation approved within 90 days of
    # it (reported late; the domain checks approved_on against the assessment's day), so that alone
    # hides no form: the form says the window instead.
    lacking = [m for m in missing if m != "fresh_assessment"]
    not_ready = preparing and bool(lacking)
    return {
        "assess": page.may(ASSESS_ROLES) and open_ and stage in (CommunityStage.UNASSESSED, CommunityStage.ASSESSED),
        # a site that lacks anything else today gets no approval form, only what it lacks (found by a review:
        # the form was offered and then refused)
        "preparation": preparing and not not_ready,
        "preparation_late": preparing and not not_ready and "fresh_assessment" in missing,
        "preparation_blocked": not_ready,
        "election": page.may(COMMUNITY_ROLES) and open_ and stage in (CommunityStage.PREPARATION,
                                                                         CommunityStage.TERM_ENDED),
        "term_end": page.may(COMMUNITY_ROLES) and stage == CommunityStage.COMMUNITY and site.community is not None,
    }


def _site_actions(page: Page, site: HousingSite) -> dict[str, bool]:
    """A supervisor's changes to an open site. Only an empty site closes: while residents live
    there the close form is not offered, only why (found by a review: it was offered, then refused)."""
    changing = page.may(SUPERVISOR_ROLES) and site.closed_on is None
    return {"facilities": changing, "close": changing and not site.occupants,
            "close_blocked": changing and bool(site.occupants)}


def _last_approval_day(site: HousingSite) -> date | None:
    """The last day a preparation may be approved on the latest assessment."""
    if site.assessment is None:
        return None
    return date.fromisoformat(site.assessment["assessed_on"]) + timedelta(days=ASSESSMENT_VALID_DAYS)


def _defaults(page: Page, site: HousingSite) -> dict[str, dict[str, Any]]:
    """What each form shows before anything is typed: today, the site's facilities, the latest
    assessment's operator and villages, five seats."""
    today = page.services.today().isoformat()
    latest = site.assessment or {}
    return {
        "assess": {"assessed_on": today, "facilities": list(latest.get("facilities_present", site.facilities)),
                   "operator_status": latest.get("operator_status", ""),
                   "villages": "、".join(latest.get("villages", []))},
        # an assessment too old today for a preparation approved today: the day is the one typed
        "preparation": {"approved_on": "" if "fresh_assessment" in site.preparation_missing(page.services.today())
                        else today},
        "election": {"held_on": today, "seats": str(SEATS_MIN)},
        "term_end": {"ended_on": today},
        "facilities": {"facilities": list(site.facilities)},
        "close": {"closed_on": today},
    }


def _site_page(page: Page, site_id: UUID, *, form: str | None = None, values: dict[str, Any] | None = None,
               outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            site = page.services.app.load(HousingSite, site_id)
    except NotFound:
        return page.render("site_missing.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    areas = page.principal.area_filter()
    # The residents by name only to those who read people's pages (found by a review: finance, who
    # reads neither residents nor their histories, saw every resident's name, linked to pages it may not open).
    people = page.may(PEOPLE_READERS)
    with page.services.pool.connection() as conn:
        residents = [presenter.resident_row(r) for r in list_residents(
            conn, ResidentFilter(site_id=str(site_id), areas=areas), 1000, None).items] if people else []
        cases = list_cases(conn, CaseFilter(site_id=str(site_id), areas=areas), page.services.today(), 200, None,
                           view="open_cases").items
        pairings = list_pairings(conn, PairingFilter(site_id=site_id, areas=areas), 100, None).items
        committees = list_committees(conn, None, areas, page.services.today(), site_id=site_id)
    committee = site.community_committee
    elected = site.community
    preparation = site.preparation
    named = [*(committee or {}).get("members", []), *(elected or {}).get("members", {}).values(),
             *(preparation or {}).get("group", [])]
    with page.services.pool.connection() as conn:  # the residents (and members) shown by full name: a read of them
        record_names_read(conn, page.principal, [*(r["id"] for r in residents), *(m.get("resident_id") for m in named)],
                          read_route(page.request), detail=str(site_id))
    forms = _defaults(page, site)
    if form is not None and values is not None:
        forms[form] = values
    checklist = page.services.settings.community_facility_checklist
    return page.render(
        "site.html", status=status, site=site, area_name=_area_name(page, site.area),
        operator_id=operator_record(page.services, site_id), occupants=len(site.occupants),
        residents=page.sorted_by_name(residents, person=True), people=people,
        # a case or committee is linked only for those who may open its page (found by a review:
        # finance saw links that answered 403); the others read it as plain text
        opens={"cases": page.may(CASE_READERS), "committees": page.may(COMMITTEE_READERS)},
        community_committee=({**committee, "members": presenter.members(committee["members"])}
                             if committee else None),
        elected=({**elected, "members": presenter.members(list(elected["members"].values()))} if elected else None),
        preparation=({**preparation, "group": presenter.members(preparation["group"])} if preparation else None),
        assessment=site.assessment, last_approval_day=_last_approval_day(site),
        lacks=[lack_label(page, lack) for lack in _lacks(site, page)],
        valid_days=ASSESSMENT_VALID_DAYS, cases=cases, pairings=pairings, money=money, committees=committees,
        may_change=page.may(SUPERVISOR_ROLES) and not site.closed_on,
        values=values if form == "capacity" and values else {"capacity": str(site.capacity)},
        form=form, outcome=outcome, forms=forms, actions=_actions(page, site),
        site_actions=_site_actions(page, site),
        facilities=_options(page, "facility", FACILITIES),
        operator_statuses=_options(page, "operator_status", OPERATOR_STATUSES),
        checklist=[page.label("facility", f) for f in checklist],
        min_headcount=page.services.settings.community_min_headcount,
        candidate_rows=range(1, CANDIDATE_ROWS + 1), group_rows=range(1, GROUP_ROWS + 1))


@router.get("/ui/sites/{site_id}")
async def site(site_id: UUID, request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("site_occupancy", int(after))
    return _site_page(page, site_id)


@router.post("/ui/sites/{site_id}/capacity")
async def change_capacity(site_id: UUID, request: Request) -> Response:
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    raw = form.get("capacity", "")
    day: date | None = None  # empty: from today
    refusal: CommandOutcome | None = None
    if not is_digits(raw) or not 0 < int(raw) <= 100_000:
        refusal = _fail(page, "capacity_not_positive", "capacity", "a positive number of beds")
    elif form.get("effective_date"):
        day, refusal = _day(page, form, "effective_date")
    outcome = refusal or page.run(lambda stamp: page.services.app.change_site_capacity(
        site_id, int(raw), stamp, effective_date=day))
    if not outcome.ok:
        return _site_page(page, site_id, form="capacity", values=values, outcome=outcome,
                          status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/sites/{site_id}?after={outcome.result.position}")


Act = Callable[[Page, dict[str, str], dict[str, list[str]], date], CommandOutcome]


async def _act(request: Request, site_id: UUID, form_name: str, roles: frozenset[Role], day_field: str,
               act: Act) -> Response:
    """Run one of the site's forms: the use case the API calls, or the page again with the form
    as it was typed and the rule in words."""
    page = current_page(request)
    page.require(roles)
    form = await page.form()
    lists = await page.form_lists()
    values: dict[str, Any] = {k: v for k, v in form.items() if k not in ("csrf", "facility")}
    values["facilities"] = [f for f in lists.get("facility", []) if f]
    outcome = _required(page, form, [day_field])
    day = None
    if outcome is None:
        day, outcome = _day(page, form, day_field)
    if outcome is None:
        assert day is not None
        outcome = act(page, form, lists, day)
    if not outcome.ok:
        return _site_page(page, site_id, form=form_name, values=values, outcome=outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/sites/{site_id}?after={outcome.result.position}")


@router.post("/ui/sites/{site_id}/assessment")
async def assess(site_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], lists: dict[str, list[str]], day: date) -> CommandOutcome:
        villages = [v.strip() for v in LIST_SEPARATORS.split(form.get("villages", "")) if v.strip()]
        refusal = _required(page, form, ["headcount", "operator_status", "villages"])
        headcount = None
        if refusal is None:
            headcount, refusal = _whole(page, form, "headcount", 0, 1_000_000)
        if refusal is None:
            refusal = page.too_long(form, ASSESS_MOST)
        if refusal is None and (len(villages) > VILLAGES_MOST or any(len(v) > VILLAGE_MOST for v in villages)):
            refusal = CommandOutcome(error=page._("At most %(count)s villages of %(n)s characters each.") % {
                "count": VILLAGES_MOST, "n": VILLAGE_MOST}, rule="too_long", field="villages")
        if refusal is not None:
            return refusal
        assert headcount is not None
        counted = headcount
        settings = page.services.settings
        return page.run(lambda stamp: page.services.app.assess_site(
            site_id, assessed_on=day, headcount=counted, facilities_present=[f for f in lists.get("facility", []) if f],
            operator_status=form["operator_status"], villages=villages, note=form.get("note") or None,
            checklist=list(settings.community_facility_checklist), min_headcount=settings.community_min_headcount,
            stamp=stamp))

    return await _act(request, site_id, "assess", ASSESS_ROLES, "assessed_on", act)


def _rows(form: dict[str, str], prefix: str, second: str, rows: int) -> list[tuple[int, str, str]]:
    """The rows typed on a form (``<prefix>_name_N`` beside ``<prefix>_<second>_N``) as
    (N, name, second), empty rows skipped."""
    typed = [(n, form.get(f"{prefix}_name_{n}", ""), form.get(f"{prefix}_{second}_{n}", ""))
             for n in range(1, rows + 1)]
    return [row for row in typed if row[1] or row[2]]


@router.post("/ui/sites/{site_id}/preparation")
async def approve_preparation(site_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], lists: dict[str, list[str]], day: date) -> CommandOutcome:
        group = []
        for n, name, role in _rows(form, "member", "role", GROUP_ROWS):
            if not name:
                return _fail(page, "member_name", f"member_name_{n}",
                             "each member needs a name (at most 100 characters)")
            refusal = page.too_long({f"member_name_{n}": name, f"member_role_{n}": role},
                                    {f"member_{k}_{n}": most for k, most in MEMBER_MOST.items()})
            if refusal is not None:
                return refusal
            group.append({"name": name, "role": role or "member"})
        refusal = page.too_long(form, PREPARATION_MOST)
        if refusal is not None:
            return refusal
        details: dict[str, Any] = {}

        def approve(stamp: Stamp) -> CommandResult:
            try:
                return page.services.app.approve_preparation(site_id, approved_on=day, group=group,
                                                             note=form.get("note") or None, stamp=stamp)
            except RuleViolated as error:
                details.update(error.details)
                raise

        outcome = page.run(approve)
        if outcome.rule == "site_not_ready":
            missing = [lack_label(page, lack) for lack in details.get("missing_conditions", [])]
            outcome.error = page._("The site is not ready for a preparatory group; it lacks: %(missing)s") % {
                "missing": ("\uff1b" if page.lang == "zh-CN" else "; ").join(missing)}
        return outcome

    return await _act(request, site_id, "preparation", COMMUNITY_ROLES, "approved_on", act)


@router.post("/ui/sites/{site_id}/election")
async def hold_election(site_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], lists: dict[str, list[str]], day: date) -> CommandOutcome:
        seats, refusal = _whole(page, form, "seats", 1, 50, "seats_out_of_range")
        if refusal is not None:
            return refusal
        ballots = None
        if form.get("ballots"):
            ballots, refusal = _whole(page, form, "ballots", 0, 1_000_000)
            if refusal is not None:
                return refusal
        candidates = []
        for n, name, votes in _rows(form, "candidate", "votes", CANDIDATE_ROWS):
            if not name:
                return _fail(page, "candidate_name", f"candidate_name_{n}",
                             "each candidate needs a name (at most 100 characters)")
            if len(name) > CANDIDATE_MOST:
                return page.longer_than(f"candidate_name_{n}", CANDIDATE_MOST)
            if not is_digits(votes) or int(votes) > 1_000_000:
                return _fail(page, "votes_number", f"candidate_votes_{n}", "votes are a whole number")
            candidates.append({"name": name, "role": "member", "votes": int(votes)})
        assert seats is not None
        return page.run(lambda stamp: page.services.app.hold_election(
            site_id, held_on=day, seats=seats, candidates=candidates, ballots=ballots, stamp=stamp))

    return await _act(request, site_id, "election", COMMUNITY_ROLES, "held_on", act)


@router.post("/ui/sites/{site_id}/term-end")
async def end_term(site_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], lists: dict[str, list[str]], day: date) -> CommandOutcome:
        return page.run(lambda stamp: page.services.app.end_community_term(site_id, ended_on=day, stamp=stamp))

    return await _act(request, site_id, "term_end", COMMUNITY_ROLES, "ended_on", act)


@router.post("/ui/sites/{site_id}/facilities")
async def change_facilities(site_id: UUID, request: Request) -> Response:
    """The site's facilities as ticked (the whole list, as the API takes it)."""
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    await page.form()  # the CSRF token checked
    chosen = [f for f in (await page.form_lists()).get("facility", []) if f]
    outcome = page.run(lambda stamp: page.services.app.change_site_facilities(site_id, chosen, stamp))
    if not outcome.ok:
        return _site_page(page, site_id, form="facilities", values={"facilities": chosen}, outcome=outcome,
                          status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/sites/{site_id}?after={outcome.result.position}")


@router.post("/ui/sites/{site_id}/closure")
async def close_site(site_id: UUID, request: Request) -> Response:
    def act(page: Page, form: dict[str, str], lists: dict[str, list[str]], day: date) -> CommandOutcome:
        refusal = _required(page, form, ["reason"]) or page.too_long(form, CLOSURE_MOST) or page.unconfirmed(form)
        if refusal is not None:
            return refusal
        return page.run(lambda stamp: page.services.app.close_site(site_id, day, form["reason"], stamp))

    return await _act(request, site_id, "close", SUPERVISOR_ROLES, "closed_on", act)
