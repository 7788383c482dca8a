"""The work queue and dispute cases: open cases overdue first with filters, logging a
dispute, and a case's page with its timeline and only the actions its state and the
user's role allow. Every command is the API's own use case (same events, same actor)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route, reading_as
from api.present import Presenter
from api.routes.disputes import (
    AssignmentCreate,
    DisputeCreate,
    EscalationCreate,
    MediationCreate,
    NoteCreate,
    Party,
    ReopeningCreate,
)
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
from api.web.pages.residents import READERS as PEOPLE_READERS
from api.web.pages.residents import resident_names, resident_options_page, resident_picked, site_options
from application import keys as auth
from application.audit import record_case_access
from application.events import EventCatalogue, plain
from application.history import effective_on, history
from application.store import CommandResult, NotFound
from domain.common import DomainError, Role, Stamp
from domain.disputes import ALLOWED, Action, Agency, CaseStatus, DisputeCase, DisputeCategory, Outcome, Priority
from domain.money import parse_money
from domain.residents import Resident
from projections.disputes import CaseFilter, list_cases
from projections.pages import BadCursor
from projections.site_occupancy import SiteFilter, list_sites

router = APIRouter()
CATALOGUE = EventCatalogue.of_domain()
PARTY_ROWS = 3
PARTY_KINDS = ("employer", "landlord", "site_operator", "other")
ESCALATION_TARGETS = ("management_committee", "public_security", "labour_inspection", "family_planning",
                      "sanitation", "street_office")
READERS = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
# Who may take each action (as the API's @access decorators say); the state decides the rest.
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.ASSIGN: SUPERVISOR_ROLES, Action.NOTE: STAFF_ROLES, Action.MEDIATION: STAFF_ROLES,
    Action.ESCALATE: STAFF_ROLES, Action.RESOLVE: STAFF_ROLES, Action.CLOSE: SUPERVISOR_ROLES,
    Action.REOPEN: SUPERVISOR_ROLES,
}
FORM_ORDER = (Action.ASSIGN, Action.NOTE, Action.MEDIATION, Action.ESCALATE, Action.RESOLVE, Action.CLOSE,
              Action.REOPEN)
PAGE_SIZE = 50  # cases per page of the work queue
SITE_BATCH = 500
QUEUE_FILTERS = ("category", "area", "assignee", "overdue")
# the filters' labels (msgids of the queue's form)
FILTER_WORDS = {"category": "Category", "area": "Area", "assignee": "Assignee", "overdue": "Overdue only"}
# The most characters each form's fields take: the API's bodies' (api/routes/disputes.py).
NEW_CASE_MOST = {**api_limits(DisputeCreate, "description"),
                 **{f"party_name_{n}": api_limits(Party, "name")["name"] for n in range(1, PARTY_ROWS + 1)}}
PARTICIPANT_MOST = api_limits(MediationCreate, "participants")["participants"]  # each one's name
ACTION_MOST: dict[Action, dict[str, int]] = {
    Action.ASSIGN: api_limits(AssignmentCreate, "assignee"), Action.NOTE: api_limits(NoteCreate, "text"),
    Action.MEDIATION: api_limits(MediationCreate, mediation_outcome="outcome"),
    Action.ESCALATE: api_limits(EscalationCreate, "reason"), Action.REOPEN: api_limits(ReopeningCreate, "reason"),
}


def refused(page: Page, rule: str, message: str, field: str | None = None) -> CommandOutcome:
    """A refusal found by the page itself (before any use case ran), in words."""
    return CommandOutcome(error=page.error_text(rule, message), rule=rule, field=field)


def options(page: Page, kind: str, values: Any) -> list[tuple[str, str]]:
    return [(str(v), page.label(kind, str(v))) for v in values]


def area_name(page: Page, code: str | None) -> str:
    if not code:
        return ""
    area = page.services.app.areas.get(code)
    if area is None:
        return code
    return area.name_en if page.lang == "en" else area.name_zh


def area_options(page: Page) -> list[tuple[str, str]]:
    visible = page.principal.visible
    rows = [{"code": code, "name": area_name(page, code)} for code in page.services.app.areas.refresh()
            if visible is None or code in visible]  # read afresh: an area defined a moment ago is offered
    return [(r["code"], r["name"]) for r in page.sorted_by_name(rows)]


def site_rows(page: Page) -> list[dict[str, Any]]:
    """The open sites of the user's areas, every one of them (the view's pages followed)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    with page.services.pool.connection() as conn:
        while True:
            found = list_sites(conn, SiteFilter(areas=page.principal.area_filter()), SITE_BATCH, cursor)
            rows.extend(found.items)
            if found.next_cursor is None:
                break
            cursor = found.next_cursor
    return page.sorted_by_name([r for r in rows if not r.get("closed")])


def assignees(page: Page, *, leavers: bool = False, area: str | None = None) -> list[tuple[str, str]]:
    """Caseworkers and supervisors with web accounts not disabled, by user id (found by a review:
    a leaver's disabled account was offered, and taken, as a case's assignee). ``leavers``: the
    disabled ones too, for the queue's filter, so the cases a leaver still holds can be found
    and handed on. ``area``: only those whose areas reach it (the use case refuses the others,
    so a case's page does not offer them)."""
    areas = page.services.app.areas
    rows = [u for u in page.services.users.list()
            if u["role"] in (Role.CASEWORKER.value, Role.SUPERVISOR.value) and (leavers or u["disabled_at"] is None)
            and (area is None or not u["areas"] or area in areas.within(list(u["areas"])))]
    return [(u["user_id"], f"{u['user_id']} · {page.label('role', u['role'])}")
            for u in sorted(rows, key=lambda u: str(u["user_id"]))]


# -- the work queue ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueuePage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int
    estimated: bool  # the total is the view's estimate (a long queue), not a count


# The queue reads the view in parts, overdue cases first, each part oldest first; a page's
# cursor names the part it goes on in and the view's own cursor within it ("o." starts the
# overdue part, "r.<view cursor>" goes on in the rest).
QUEUE_PARTS = {"o": True, "r": False}


def queue_page(conn: Any, flt: CaseFilter, today: date, cursor: str | None, size: int = PAGE_SIZE) -> QueuePage:
    """One page of open cases, overdue first; raises BadCursor for a cursor this page did not issue."""
    parts = ["o"] if flt.overdue else ["o", "r"]
    start, inner = 0, None
    if cursor:
        part, dot, inner = cursor.partition(".")
        if not dot or part not in parts:
            raise BadCursor("cursor is not one this page issued")
        start, inner = parts.index(part), inner or None
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    total, estimated = 0, False
    for i, part in enumerate(parts):
        want = size - len(rows) if i >= start else 0  # a part before the page's is only counted
        found = list_cases(conn, dataclasses.replace(flt, overdue=QUEUE_PARTS[part]), today, want,
                           inner if i == start else None, view="open_cases")
        rows.extend(found.items)
        total, estimated = total + found.total, estimated or found.total_estimated
        if next_cursor is None and i >= start:
            if found.next_cursor:
                next_cursor = f"{part}.{found.next_cursor}"
            elif want == 0 and found.total > 0:  # the page is full; this part starts the next one
                next_cursor = f"{part}."
    return QueuePage(rows=rows, next_cursor=next_cursor, total=total, estimated=estimated)


def queue_url(filters: dict[str, str], cursor: str | None = None) -> str:
    """The queue's address with the filters in use (and the page's cursor)."""
    query = {k: v for k, v in filters.items() if v}
    if cursor:
        query["cursor"] = cursor
    return "/ui/cases" + (f"?{urlencode(query)}" if query else "")


@router.get("/ui/cases")
async def queue(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("open_cases", int(after))
    q = request.query_params
    filters = {k: q.get(k, "") for k in QUEUE_FILTERS}
    category = filters["category"] if filters["category"] in {c.value for c in DisputeCategory} else None
    area = filters["area"] if filters["area"] and page.services.app.areas.get(filters["area"]) else None
    # A filter the page does not understand is said so and left out of its links (found by a
    # review: ?category=bogus showed every case as if it had been applied).
    # found by a second review: ?overdue=maybe was taken as "overdue only". (An assignee is
    # whoever a case names: one with an API key alone, or gone, has no account to check against.)
    assignee = filters["assignee"] or None
    overdue = True if filters["overdue"] in ("1", "on", "true", "yes") else None
    not_understood = [(name, filters[name]) for name, known in (("category", category), ("area", area),
                                                                 ("overdue", overdue))
                      if filters[name] and known is None]
    for name, _ in not_understood:
        page.dropped.add(name)
        filters[name] = ""
    flt = CaseFilter(category=category, area=area, assignee=assignee, overdue=overdue,
                     areas=page.principal.area_filter())
    today = page.services.today()
    cursor = q.get("cursor") or None
    bad_cursor = False
    with page.services.pool.connection() as conn:
        try:
            found = queue_page(conn, flt, today, cursor)
        except BadCursor:  # an old or edited link: the first page, and a word about it
            bad_cursor, cursor = True, None
            page.dropped.add("cursor")
            found = queue_page(conn, flt, today, None)
    sites = {str(s["id"]): s["name"] for s in site_rows(page)}
    rows = []
    for item in found.rows:
        rows.append({**item, "site_name": sites.get(str(item["site_id"]), "") if item.get("site_id") else "",
                     "area_name": area_name(page, item["area"])})
    return page.render("cases.html", cases=rows, total=found.total, estimated=found.estimated, filters=filters,
                       next_url=queue_url(filters, found.next_cursor) if found.next_cursor else None,
                       first_url=queue_url(filters) if cursor else None, bad_cursor=bad_cursor,
                       not_understood=(", " if page.lang == "en" else "\u3001").join(
                           page._(FILTER_WORDS[name]) + (" " if page.lang == "en" else "") + f"\u201c{typed}\u201d"
                           for name, typed in not_understood),
                       categories=options(page, "category", DisputeCategory), areas=area_options(page),
                       assignees=assignees(page, leavers=True), today=today, may_log=page.may(STAFF_ROLES))


# -- logging a dispute ---------------------------------------------------------------------------------

def _new_form(page: Page, values: dict[str, str], outcome: CommandOutcome | None, status: int = 200) -> Response:
    sites = site_options(site_rows(page), lambda s: f" · {area_name(page, s['area'])}")
    return page.render("case_new.html", status=status, values=values, outcome=outcome,
                       categories=options(page, "category", DisputeCategory),
                       priorities=options(page, "priority", Priority), kinds=options(page, "party_kind", PARTY_KINDS),
                       areas=area_options(page), sites=sites, party_rows=range(1, PARTY_ROWS + 1),
                       picked=_picked_names(page, values))


def _picked_names(page: Page, values: dict[str, str]) -> dict[int, str]:
    """Who each party row's resident field names by id, as this user sees them (the id alone
    says nothing to the caseworker); the names read are logged as a list's are."""
    picked = {n: uuid_or_none(values.get(f"party_resident_{n}")) for n in range(1, PARTY_ROWS + 1)}
    ids = [r for r in picked.values() if r is not None]
    if not ids:
        return {}
    names = resident_names(page, Presenter(page.services.app.vault, page.principal, page.lang), ids)
    return {n: names[r] or "" for n, r in picked.items() if r is not None and names[r] is not None}


@router.get("/ui/cases/new")
def new_case(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    values = {"priority": Priority.NORMAL.value, "occurred_on": page.services.today().isoformat()}
    resident_id = uuid_or_none(request.query_params.get("resident"))
    if resident_id is not None:  # from a resident's page: they are the first party, where they live the place
        try:
            with reading_as(page.principal):
                resident = page.services.app.load(Resident, resident_id)
        except NotFound:
            page.dropped.add("resident")
        else:
            values["party_resident_1"] = str(resident_id)
            if resident.site_id is not None:
                values["site_id"] = str(resident.site_id)
            elif resident.area:
                values["area"] = resident.area
    return _new_form(page, values, None)


@router.post("/ui/cases/new")
async def log_case(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form = await page.form()
    parties: list[dict[str, Any]] = []
    problem: CommandOutcome | None = None
    rows: list[int] = []  # the form's row of each party, for a refusal naming parties.<i>
    for n in range(1, PARTY_ROWS + 1):
        name, kind = form.get(f"party_name_{n}", ""), form.get(f"party_kind_{n}", "")
        picked = form.get(f"party_resident_{n}", "").strip()
        if picked and (name or kind):
            problem = problem or refused(page, "party_resident_or_outside",
                                         "a party is a registered resident or an outside party with a name and "
                                         "a kind, not both", f"party_resident_{n}")
        elif picked:
            resident_id, refusal = resident_picked(page, picked, f"party_resident_{n}")
            if resident_id is None:
                problem = problem or refusal
            else:
                parties.append({"resident_id": resident_id})
                rows.append(n)
        elif name and kind not in PARTY_KINDS:
            problem = problem or refused(page, "party_kind_missing", "an outside party needs a kind",
                                         f"party_kind_{n}")
        elif name:
            parties.append({"name": name, "kind": kind})
            rows.append(n)
    occurred_on = day_or_none(form.get("occurred_on"))
    site_id = uuid_or_none(form.get("site_id"))
    if not form.get("description"):
        problem = problem or refused(page, "description_missing", "describe the dispute", "description")
    problem = problem or page.too_long(form, NEW_CASE_MOST)
    if occurred_on is None:
        problem = problem or refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "occurred_on")
    if problem is None:
        outcome = page.run(lambda stamp: page.services.app.log_dispute(
            category=form.get("category", ""), parties=parties, site_id=site_id, area=form.get("area") or None,
            description=form.get("description", ""), priority=form.get("priority", ""),
            occurred_on=occurred_on or date.min, stamp=stamp))
        if outcome.ok and outcome.result is not None:
            return redirect(f"/ui/cases/{outcome.result.id}?after={outcome.result.position}")
        problem = _party_refusal(page, outcome, rows)
    return _new_form(page, form, problem, status=refusal_status(problem))


def _party_refusal(page: Page, outcome: CommandOutcome, rows: list[int]) -> CommandOutcome:
    """The use case's refusal on the form's field: ``parties.<i>.resident_id`` is the resident
    field of the row that party came from, and a resident it did not find (no such id, or one
    outside the user's areas) is said in the form's words."""
    parts = (outcome.field or "").split(".")
    if len(parts) == 3 and parts[0] == "parties" and parts[1].isdigit() and int(parts[1]) < len(rows):
        field_name = f"party_resident_{rows[int(parts[1])]}"
        if outcome.rule == "not_found":
            return refused(page, "resident_unknown", "no resident of your areas has that id", field_name)
        return dataclasses.replace(outcome, field=field_name)
    if outcome.field == "parties" and rows:
        return dataclasses.replace(outcome, field=f"party_resident_{rows[0]}")
    return outcome


@router.get("/ui/cases/resident-options")
def resident_options(request: Request) -> Response:
    """A party's resident field's options."""
    return resident_options_page(request, STAFF_ROLES)


# -- a case's page ---------------------------------------------------------------------------------------

def allowed_forms(page: Page, case: DisputeCase) -> list[str]:
    """The actions this user may take on the case now: its state's and their role's."""
    state = ALLOWED[CaseStatus(case.status)]
    shown = []
    for action in FORM_ORDER:
        if action not in state or not page.may(ACTION_ROLES[action]):
            continue
        if action is Action.CLOSE and case.resolved_by == page.principal.actor.user_id:
            continue  # the one who resolved it may not close it
        shown.append(action.value)
    return shown


def timeline(page: Page, case_id: UUID, presenter: Presenter) -> list[dict[str, Any]]:
    entries = []
    for entry in history(page.services.app, case_id, CATALOGUE):
        e = entry.event
        kind = entry.name.split(".")[-1]
        details: list[tuple[str, str]] = []
        if kind == "Logged":
            details = [(page._("Category"), page.label("category", e.category)),
                       (page._("Priority"), page.label("priority", e.priority)),
                       (page._("Occurred on"), e.occurred_on.isoformat())]
        elif kind == "Assigned":
            details = [(page._("Assignee"), e.assignee or page.label("agency", e.agency))]
        elif kind == "NoteAdded":
            details = [(page._("Note"), str(presenter.text(e.text) or ""))]
        elif kind == "MediationHeld":
            details = [(page._("Held on"), e.held_on.isoformat()),
                       (page._("Participants"), "、".join(str(presenter.text(p) or "") for p in e.participants)),
                       (page._("Outcome"), str(presenter.text(e.outcome) or ""))]
        elif kind == "Escalated":
            details = [(page._("Escalated to"), page.label("escalation", e.to)),
                       (page._("Reason"), str(presenter.text(e.reason) or ""))]
        elif kind == "Resolved":
            details = [(page._("Outcome"), page.label("outcome", e.outcome))]
            if e.amount_recovered is not None:
                details.append((page._("Amount recovered"), str(plain(e.amount_recovered))))
        elif kind == "Reopened":
            details = [(page._("Reason"), str(presenter.text(e.reason) or "")),
                       (page._("Resolution due"), e.resolution_due.isoformat())]
        elif kind == "EscalatedForBreach":
            details = [(page._("Deadline"), f"{page.label('breach', e.breach)} {e.due_on.isoformat()}")]
        elif kind == "CommitteeDecisionRecorded":
            details = [(page._("Decision"), str(presenter.text(e.decision) or ""))]
        entries.append({"version": entry.version, "position": entry.position, "event": kind,
                        "title": page.label("case_event", kind), "actor_id": getattr(e, "actor_id", None),
                        "actor_role": getattr(e, "actor_role", None), "recorded_at": entry.recorded_at,
                        "effective": effective_on(e, CATALOGUE), "details": details})
    return entries


def parties_shown(page: Page, presenter: Presenter, parties: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The case's parties as this user sees them: an outside party's name, and a resident's name
    from the register (in full or masked, as the Presenter shows names; the read is logged with
    the case's), linked to their page for those who open it (found by a review: a resident party
    read as a bare id). A resident outside the user's areas is said to be one, unnamed."""
    shown = presenter.parties(parties)
    with reading_as(page.principal):
        for party in shown:
            resident_id = uuid_or_none(str(party.get("resident_id") or ""))
            if resident_id is None:
                continue
            try:
                party["name"] = presenter.name(page.services.app.load(Resident, resident_id).name)
            except NotFound:
                party["name"] = None
                continue
            party["href"] = f"/ui/residents/{resident_id}" if page.may(PEOPLE_READERS) else None
    return shown


def _case_page(page: Page, case_id: UUID, values: dict[str, str] | None = None, outcome: CommandOutcome | None = None,
               action: str | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            case = page.services.app.load(DisputeCase, case_id)
    except NotFound:
        return page.render("case_missing.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, "zh" if page.lang == "zh-CN" else "en")
    with page.services.pool.connection() as conn:  # a case's page shows its parties and text: a read of them
        record_case_access(conn, page.principal, case.parties, case_id, read_route(page.request))
    site = next((s for s in site_rows(page) if str(s["id"]) == str(case.site_id)), None) if case.site_id else None
    today = page.services.today()
    return page.render(
        "case.html", status=status, case=case, description=presenter.text(case.description),
        parties=parties_shown(page, presenter, case.parties), site=site, area_name=area_name(page, case.area),
        overdue=case.overdue(today), timeline=timeline(page, case_id, presenter), forms=allowed_forms(page, case),
        values=values or {"held_on": today.isoformat()}, outcome=outcome, action=action,
        assignees=assignees(page, area=case.area), agencies=options(page, "agency", Agency),
        outcomes=options(page, "outcome", Outcome),
        targets=options(page, "escalation", ESCALATION_TARGETS),
        resolved_by_me=case.resolved_by == page.principal.actor.user_id,
        is_supervisor=page.may(SUPERVISOR_ROLES), done=page.request.query_params.get("done"))


@router.get("/ui/cases/{case_id}")
async def case_page(request: Request, case_id: str) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):  # the queue shows the write too once the user goes back to it
        await page.wait_for("open_cases", int(after))
    parsed = uuid_or_none(case_id)
    if parsed is None:
        return page.render("case_missing.html", status=404)
    return _case_page(page, parsed)


def _command(page: Page, case_id: UUID, action: Action, form: dict[str, str]
             ) -> CommandOutcome | Callable[[Stamp], CommandResult]:
    """The use case a form asks for, or the page's own refusal of the form."""
    app = page.services.app
    if (too_long := page.too_long(form, ACTION_MOST.get(action, {}))) is not None:
        return too_long
    if action is Action.ASSIGN:
        assignee, agency = form.get("assignee") or None, form.get("agency") or None
        if assignee is not None and not auth.may_take_cases(page.services.pool, assignee):
            return refused(page, "unknown_assignee", "no such caseworker", "assignee")
        return lambda stamp: app.assign_dispute(case_id, assignee=assignee, agency=agency, stamp=stamp)
    if action is Action.NOTE:
        if not form.get("text"):
            return refused(page, "text_missing", "write something", "text")
        return lambda stamp: app.add_dispute_note(case_id, text=form["text"], stamp=stamp)
    if action is Action.MEDIATION:
        held_on = day_or_none(form.get("held_on"))
        participants = [p.strip() for p in form.get("participants", "").replace("、", ",").replace("\uff0c", ",")
                        .split(",") if p.strip()]
        if held_on is None:
            return refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "held_on")
        if not participants:
            return refused(page, "participants_missing", "name who took part", "participants")
        if any(len(p) > PARTICIPANT_MOST for p in participants):
            return CommandOutcome(error=page._("Each name has at most %(n)s characters.") % {"n": PARTICIPANT_MOST},
                                  rule="too_long", field="participants")
        if not form.get("mediation_outcome"):
            return refused(page, "text_missing", "write something", "mediation_outcome")
        return lambda stamp: app.hold_mediation(case_id, held_on=held_on, participants=participants,
                                                outcome=form["mediation_outcome"], stamp=stamp)
    if action is Action.ESCALATE:
        if form.get("to") not in ESCALATION_TARGETS:
            return refused(page, "escalation_target_unknown", "choose where to escalate", "to")
        if not form.get("reason"):
            return refused(page, "reason_missing", "give the reason", "reason")
        return lambda stamp: app.escalate_dispute(case_id, to=form["to"], reason=form["reason"], stamp=stamp)
    if action is Action.RESOLVE:
        raw = form.get("amount_recovered", "")
        try:
            amount = parse_money(raw, "amount_recovered", allow_zero=True) if raw else None
        except DomainError as error:
            return refused(page, error.rule, error.message, "amount_recovered")
        return lambda stamp: app.resolve_dispute(case_id, outcome=form.get("outcome", ""), amount_recovered=amount,
                                                 stamp=stamp)
    if action is Action.CLOSE:
        return lambda stamp: app.close_dispute(case_id, stamp=stamp)
    if not form.get("reason"):
        return refused(page, "reason_missing", "give the reason", "reason")
    return lambda stamp: app.reopen_dispute(case_id, reason=form["reason"], stamp=stamp)


@router.post("/ui/cases/{case_id}/{action_name}")
async def act(request: Request, case_id: str, action_name: str) -> Response:
    page = current_page(request)
    try:
        action = Action(action_name)
    except ValueError:
        return page.render("case_missing.html", status=404)
    if action not in ACTION_ROLES:
        return page.render("case_missing.html", status=404)
    page.require(ACTION_ROLES[action])
    form = await page.form()
    parsed = uuid_or_none(case_id)
    if parsed is None:
        return page.render("case_missing.html", status=404)
    command = _command(page, parsed, action, form)
    outcome = command if isinstance(command, CommandOutcome) else page.run(command)
    if outcome.ok and outcome.result is not None:
        return redirect(f"/ui/cases/{parsed}?after={outcome.result.position}&done={action.value}")
    return _case_page(page, parsed, values=form, outcome=outcome, action=action.value,
                      status=refusal_status(outcome))
