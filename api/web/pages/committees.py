"""Management committees: the list with member turnover and open actions, founding a
committee with its members, and a committee's page with its members (role, since when, a
seat left vacant by a departure from the district), its upcoming meeting and agenda (open
cases of its area among the items), minutes with attendance and the quorum shown, past
meetings and action items. Commands are the API's own use cases (establish_committee,
add_committee_member, remove_committee_member, schedule_meeting, record_minutes,
complete_committee_action), offered to the roles the API's @access rules allow."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route, reading_as
from api.present import Presenter
from api.routes.committees import (
    ActionCompletion,
    ActionCreate,
    AgendaItem,
    CommitteeCreate,
    Decision,
    Member,
    MemberRemoval,
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
from api.web.pages.cases import area_name, area_options, refused, site_rows
from api.web.pages.residents import (
    SHORT_ID,
    _sites,
    resident_options_page,
    resident_picked,
    site_names,
    site_options,
)
from application.audit import record_names_read
from application.store import NotFound
from domain.committees import TOPICS, ManagementCommittee
from domain.common import ERASED, Role
from domain.disputes import UNRESOLVED_STATUSES
from domain.residents import Resident
from projections.committees import list_committees
from projections.disputes import CaseFilter, list_cases

router = APIRouter()
READERS = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
# Founding a committee and changing its members: POST /committees, /members and
# /member-removals are @access(SUPERVISORS) in api/routes/committees.py.
MANAGERS = SUPERVISOR_ROLES
TITLED_ROWS = 3
MEMBER_ROWS = 5  # rows of the founding form's members table (empty rows are skipped)
# The roles the forms offer (the API takes any title; these read well in both languages).
MEMBER_ROLES = ("chair", "deputy_chair", "secretary", "group_leader", "member")
# The most characters each form's fields take: the API's bodies' (api/routes/committees.py).
NAME_MOST, ROLE_MOST = api_limits(Member, "name")["name"], api_limits(Member, "role")["role"]
FOUNDING_MOST = api_limits(CommitteeCreate, "name")
TITLE_MOST = api_limits(AgendaItem, "title")["title"]
DECISION_MOST = api_limits(Decision, "decision")["decision"]
ACTION_MOST = api_limits(ActionCreate, "description")["description"]
COMPLETION_MOST = api_limits(ActionCompletion, "note")
REMOVAL_MOST = api_limits(MemberRemoval, "reason")


@router.get("/ui/committees")
async def committees(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("committee_agendas", int(after))
    with page.services.pool.connection() as conn:
        rows = list_committees(conn, None, page.principal.area_filter(), page.services.today())
    rows = [{**r, "area_name": area_name(page, r["area"])} for r in rows]
    return page.render("committees.html", committees=page.sorted_by_name(rows), may_found=page.may(MANAGERS))


# -- members: who they are, picked from the register or named -------------------------------------

def role_options(page: Page) -> list[tuple[str, str]]:
    return [(r, page.label("committee_role", r)) for r in MEMBER_ROLES]


def _member(page: Page, name: str, role: str, picked: str, fields: tuple[str, str, str]
            ) -> tuple[dict[str, Any] | None, CommandOutcome | None]:
    """One member for the use case from a form's row: a name and a role, and a registered
    resident picked by id (from the list) or by their full name. A resident's name is the
    register's when the row leaves it empty. ``fields`` names the row's name, role and
    resident fields for a refusal."""
    name_field, role_field, resident_field = fields
    resident_id: UUID | None = None
    if picked:
        resident_id, refusal = resident_picked(page, picked, resident_field)
        if resident_id is None:
            return None, refusal
        if not name:
            presenter = Presenter(page.services.app.vault, page.principal, page.lang)
            try:
                with reading_as(page.principal):
                    resident = page.services.app.load(Resident, resident_id)
            except NotFound:
                return None, refused(page, "resident_unknown", "no resident of your areas has that id",
                                     resident_field)
            opened = page.services.app.vault.open(resident.name)
            name = presenter.name(resident.name) if presenter.full and opened != ERASED else ""
    if not name:
        return None, refused(page, "committee_member_name",
                             "each member needs a name (at most 100 characters) or a resident picked", name_field)
    if len(name) > NAME_MOST:
        return None, page.longer_than(name_field, NAME_MOST)
    if len(role) > ROLE_MOST:
        return None, page.longer_than(role_field, ROLE_MOST)
    member: dict[str, Any] = {"name": name, "role": role or "member"}
    if resident_id is not None:
        member["resident_id"] = str(resident_id)  # as the API passes it (JSON)
    return member, None


def _resident_refusal(page: Page, outcome: CommandOutcome, field_name: str | None) -> CommandOutcome:
    """A use case's refusal on the form's field; a resident it did not find (an id of no
    resident, or of one outside the user's areas) in the form's words."""
    if outcome.rule == "not_found" and field_name and "resident" in field_name:
        return refused(page, "resident_unknown", "no resident of your areas has that id", field_name)
    outcome.field = field_name
    return outcome


@router.get("/ui/committees/resident-options")
def resident_options(request: Request) -> Response:
    """A member's resident field's options."""
    return resident_options_page(request, MANAGERS)


# -- founding a committee ----------------------------------------------------------------------------

def _found_form(page: Page, values: dict[str, str], outcome: CommandOutcome | None, status: int = 200) -> Response:
    sites = site_options(site_rows(page), lambda s: f" · {area_name(page, s['area'])}")
    return page.render("committee_new.html", status=status, values=values, outcome=outcome,
                       areas=area_options(page), sites=sites, roles=role_options(page),
                       member_rows=range(1, MEMBER_ROWS + 1))


@router.get("/ui/committees/new")
def new_committee(request: Request) -> Response:
    page = current_page(request)
    page.require(MANAGERS)
    values = {"established_on": page.services.today().isoformat(), "member_role_1": "chair"}
    return _found_form(page, values, None)


def _row_field(field_name: str | None, rows: list[int]) -> str | None:
    """The use case's ``members.N.resident_id`` is the form's row of the Nth member given."""
    parts = (field_name or "").split(".")
    if parts[0] == "members" and len(parts) > 1 and is_digits(parts[1]) and int(parts[1]) < len(rows):
        return f"member_resident_{rows[int(parts[1])]}"
    return field_name


@router.post("/ui/committees/new")
async def found_committee(request: Request) -> Response:
    page = current_page(request)
    page.require(MANAGERS)
    form = await page.form()
    problem: CommandOutcome | None = None
    name = form.get("name", "")
    if not name:
        problem = refused(page, "committee_name", "give the committee a name (at most 100 characters)", "name")
    problem = problem or page.too_long(form, FOUNDING_MOST)
    area, site_id = form.get("area") or None, uuid_or_none(form.get("site_id"))
    if area and site_id:
        problem = problem or refused(page, "committee_area_or_site",
                                     "a committee is for an area or for a site: choose one", "site_id")
    elif not area and not site_id:
        problem = problem or refused(page, "committee_area_missing", "give the site or the area the committee serves",
                                     "area")
    established_on = day_or_none(form.get("established_on"))
    if established_on is None:
        problem = problem or refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "established_on")
    members: list[dict[str, Any]] = []
    rows: list[int] = []  # the form's row of each member given
    for n in range(1, MEMBER_ROWS + 1):
        typed = [form.get(f"member_{k}_{n}", "") for k in ("name", "resident")]
        if not any(typed):
            continue  # an empty row (its role alone is the form's default)
        member, refusal = _member(page, typed[0], form.get(f"member_role_{n}", ""), typed[1],
                                  (f"member_name_{n}", f"member_role_{n}", f"member_resident_{n}"))
        problem = problem or refusal
        if member is not None:
            members.append(member)
            rows.append(n)
    if not members:
        problem = problem or refused(page, "committee_without_members", "a committee needs at least one member",
                                     "member_name_1")
    if problem is None:
        outcome = page.run(lambda stamp: page.services.app.establish_committee(
            name=name, area=None if site_id else area, site_id=site_id, members=members,
            established_on=established_on or date.min, stamp=stamp))
        if outcome.ok and outcome.result is not None:
            return redirect(f"/ui/committees/{outcome.result.id}?after={outcome.result.position}&done=founded")
        problem = _resident_refusal(page, outcome, _row_field(outcome.field, rows))
    return _found_form(page, form, problem, status=refusal_status(problem))


# -- a committee's page ------------------------------------------------------------------------------

def _open_cases(page: Page, area: str) -> list[dict[str, Any]]:
    """The committee's area's cases it may still decide on (not resolved or closed)."""
    with page.services.pool.connection() as conn:
        found = list_cases(conn, CaseFilter(area=area, areas=page.principal.area_filter()), page.services.today(),
                           200, None, view="open_cases")
    return [c for c in found.items if c["status"] in {s.value for s in UNRESOLVED_STATUSES}]


def _case_shown(page: Page, case: dict[str, Any], sites: dict[str, str]) -> dict[str, Any]:
    """A case's row with what tells it from the others in a list: its site's name (else its
    area's) and its reference, the start of its id."""
    site = sites.get(str(case["site_id"])) if case.get("site_id") else None
    return {**case, "site_name": site, "area_name": area_name(page, case["area"]),
            "ref": str(case["id"])[:SHORT_ID]}


def _committee_page(page: Page, committee_id: UUID, values: dict[str, Any] | None = None,
                    outcome: CommandOutcome | None = None, form_name: str | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            committee = page.services.app.load(ManagementCommittee, committee_id)
    except NotFound:
        return page.render("notfound.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, "zh" if page.lang == "zh-CN" else "en")
    active = committee.active_members()
    members = presenter.members([{**m, "member_id": k, "sitting": k in active} for k, m in committee.members.items()])
    names = {m["member_id"]: m["name"] for m in members}
    sites = site_names(_sites(page))
    open_cases = [_case_shown(page, c, sites) for c in _open_cases(page, committee.area)]
    with page.services.pool.connection() as conn:  # every case of the area, to name agenda items
        # the members' full names, each linked to the resident: a read of them (as GET /committees/{id})
        record_names_read(conn, page.principal, [m.get("resident_id") for m in committee.members.values()],
                          read_route(page.request), detail=str(committee_id))
        cases = {str(c["id"]): _case_shown(page, c, sites) for c in list_cases(
            conn, CaseFilter(area=committee.area), page.services.today(), 500, None).items}
    meetings = []
    for meeting_id, m in committee.meetings.items():
        minutes = m.get("minutes")
        decisions = {str(d.get("item_id")): presenter.text(d.get("decision")) for d in (minutes or {}).get(
            "decisions", [])}
        agenda = [{**item, "case": cases.get(str(item.get("dispute_id"))) if item.get("dispute_id") else None,
                   "title": presenter.text(item.get("title")) if item.get("title") else None,
                   "decision": decisions.get(str(item.get("item_id")))} for item in m["agenda"]]
        meetings.append({"meeting_id": meeting_id, "scheduled_on": m["scheduled_on"], "agenda": agenda,
                         "minutes": minutes, "attendees": [names.get(a, a) for a in (minutes or {}).get(
                             "attendees", [])]})
    meetings.sort(key=lambda m: (m["scheduled_on"], m["meeting_id"]))
    upcoming = [m for m in meetings if m["minutes"] is None]
    for m in upcoming:  # the open cases not on its agenda yet, to add (issue 11)
        listed = {str(item.get("dispute_id")) for item in m["agenda"] if item.get("dispute_id")}
        m["addable"] = [c for c in open_cases if str(c["id"]) not in listed]
    past = [m for m in meetings if m["minutes"] is not None]
    past.reverse()
    actions = sorted(({**a, "owner_name": names.get(a["owner"], a["owner"]),
                       "description": presenter.text(a.get("description"))} for a in committee.actions.values()),
                     key=lambda a: (a.get("done_on") is not None, str(a["due_on"])))
    today = page.services.today()
    return page.render(
        "committee.html", status=status, committee=committee, area_name=area_name(page, committee.area),
        members=members, sitting=[m for m in members if m["sitting"]], quorum=committee.quorum(),
        upcoming=upcoming, past=past, actions=actions, open_cases=open_cases,
        topics=[(t, page.label("topic", t)) for t in TOPICS], titled_rows=range(1, TITLED_ROWS + 1),
        months_missed=committee.months_missed, may_act=page.may(STAFF_ROLES), today=today.isoformat(),
        may_manage=page.may(MANAGERS), roles=role_options(page),
        values=values or {}, outcome=outcome, form_name=form_name, done=page.request.query_params.get("done"))


@router.get("/ui/committees/{committee_id}")
async def committee_page(request: Request, committee_id: str) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("committee_agendas", int(after))
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    return _committee_page(page, parsed)


async def _posted(page: Page) -> tuple[dict[str, str], dict[str, list[str]]]:
    form = await page.form()  # checks the CSRF token
    return form, await page.form_lists()


def _done(committee_id: UUID, outcome: CommandOutcome, what: str) -> Response:
    assert outcome.result is not None
    return redirect(f"/ui/committees/{committee_id}?after={outcome.result.position}&done={what}")


@router.post("/ui/committees/{committee_id}/meetings")
async def schedule(request: Request, committee_id: str) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form, lists = await _posted(page)
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    agenda: list[dict[str, Any]] = [{"dispute_id": UUID(d)} for d in lists.get("dispute_id", []) if uuid_or_none(d)]
    problem: CommandOutcome | None = None
    for n in range(1, TITLED_ROWS + 1):
        title, topic = form.get(f"title_{n}", ""), form.get(f"topic_{n}", "")
        if len(title) > TITLE_MOST:
            problem = problem or page.longer_than(f"title_{n}", TITLE_MOST)
        elif title:
            agenda.append({"title": title, **({"topic": topic} if topic else {})})
        elif topic:
            problem = problem or refused(page, "agenda_title_missing", "give the item a title", f"title_{n}")
    scheduled_on = day_or_none(form.get("scheduled_on"))
    if scheduled_on is None:
        problem = problem or refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "scheduled_on")
    if problem is None:
        outcome = page.run(lambda stamp: page.services.app.schedule_meeting(
            parsed, scheduled_on=scheduled_on or date.min, agenda=agenda, stamp=stamp))
        if outcome.ok:
            return _done(parsed, outcome, "schedule")
        problem = outcome
    values: dict[str, Any] = {**form, "dispute_ids": lists.get("dispute_id", [])}
    return _committee_page(page, parsed, values, problem, "schedule", refusal_status(problem))


@router.post("/ui/committees/{committee_id}/meetings/{meeting_id}/agenda")
async def add_to_agenda(request: Request, committee_id: str, meeting_id: str) -> Response:
    """Open cases logged since the meeting was scheduled, added to its agenda (issue 11)."""
    page = current_page(request)
    page.require(STAFF_ROLES)
    form, lists = await _posted(page)
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    items: list[dict[str, Any]] = [{"dispute_id": UUID(d)} for d in lists.get("dispute_id", []) if uuid_or_none(d)]
    if not items:
        problem = refused(page, "agenda_empty", "tick at least one case", "items")
    else:
        outcome = page.run(lambda stamp: page.services.app.add_agenda_items(
            parsed, meeting_id, items=items, stamp=stamp))
        if outcome.ok:
            return _done(parsed, outcome, "agenda")
        problem = outcome
    values: dict[str, Any] = {**form, "meeting_id": meeting_id}
    return _committee_page(page, parsed, values, problem, "agenda", refusal_status(problem))


@router.post("/ui/committees/{committee_id}/meetings/{meeting_id}/minutes")
async def minutes(request: Request, committee_id: str, meeting_id: str) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form, lists = await _posted(page)
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    held_on = day_or_none(form.get("held_on"))
    problem: CommandOutcome | None = None
    decisions: list[dict[str, Any]] = []
    for key, what in form.items():
        # an action item typed under an item left undecided was dropped without a word (found by a review)
        if key.startswith("action_") and what and not form.get(f"decision_{key.removeprefix('action_')}"):
            problem = problem or refused(page, "action_without_decision", "an action needs a decision on its item",
                                         key)
    for key, text in form.items():
        if key.startswith("decision_") and text:
            item_id = key.removeprefix("decision_")
            decision: dict[str, Any] = {"item_id": item_id, "decision": text, "actions": []}
            what, owner = form.get(f"action_{item_id}", ""), form.get(f"owner_{item_id}", "")
            if len(text) > DECISION_MOST:
                problem = problem or page.longer_than(key, DECISION_MOST)
            if len(what) > ACTION_MOST:
                problem = problem or page.longer_than(f"action_{item_id}", ACTION_MOST)
            elif what:
                due_on = day_or_none(form.get(f"due_{item_id}"))
                if not owner or due_on is None:
                    problem = problem or refused(page, "action_incomplete",
                                                 "an action needs who does it and by when", f"due_{item_id}")
                else:
                    decision["actions"].append({"description": what, "owner": owner, "due_on": due_on})
            decisions.append(decision)
    if held_on is None:
        problem = problem or refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "held_on")
    if problem is None:
        outcome = page.run(lambda stamp: page.services.app.record_minutes(
            parsed, meeting_id=meeting_id, held_on=held_on or date.min, attendees=lists.get("attendee", []),
            decisions=decisions, stamp=stamp))
        if outcome.ok:
            return _done(parsed, outcome, "minutes")
        problem = outcome
    values: dict[str, Any] = {**form, "attendees": lists.get("attendee", []), "meeting_id": meeting_id}
    return _committee_page(page, parsed, values, problem, "minutes", refusal_status(problem))


@router.post("/ui/committees/{committee_id}/actions/{action_id}/done")
async def action_done(request: Request, committee_id: str, action_id: str) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form, _ = await _posted(page)
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    done_on = day_or_none(form.get("done_on"))
    if done_on is None:
        problem = refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "done_on")
    elif (too_long := page.too_long(form, COMPLETION_MOST)) is not None:
        problem = too_long
    else:
        problem = page.run(lambda stamp: page.services.app.complete_committee_action(
            parsed, action_id=action_id, done_on=done_on, note=form.get("note") or None, stamp=stamp))
        if problem.ok:
            return _done(parsed, problem, "action")
    return _committee_page(page, parsed, {**form, "action_id": action_id}, problem, "action",
                           refusal_status(problem))


# -- changing the members ----------------------------------------------------------------------------

@router.post("/ui/committees/{committee_id}/members")
async def add_member(request: Request, committee_id: str) -> Response:
    page = current_page(request)
    page.require(MANAGERS)
    form = await page.form()
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    member, problem = _member(page, form.get("name", ""), form.get("role", ""), form.get("resident", ""),
                              ("name", "role", "resident"))
    joined_on = day_or_none(form.get("joined_on"))
    if joined_on is None:
        problem = problem or refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "joined_on")
    if problem is None and member is not None:
        outcome = page.run(lambda stamp: page.services.app.add_committee_member(
            parsed, member=member, joined_on=joined_on or date.min, stamp=stamp))
        if outcome.ok:
            return _done(parsed, outcome, "member_added")
        problem = _resident_refusal(page, outcome, "resident" if outcome.field == "member.resident_id"
                                    else outcome.field)
    assert problem is not None
    return _committee_page(page, parsed, form, problem, "add_member", refusal_status(problem))


@router.post("/ui/committees/{committee_id}/member-removals")
async def remove_member(request: Request, committee_id: str) -> Response:
    page = current_page(request)
    page.require(MANAGERS)
    form = await page.form()
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("notfound.html", status=404)
    reason, left_on = form.get("reason", ""), day_or_none(form.get("left_on"))
    problem: CommandOutcome | None = None
    if left_on is None:
        problem = refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "left_on")
    elif not reason:
        problem = refused(page, "committee_removal_reason", "give the reason (at most 500 characters)", "reason")
    elif (too_long := page.too_long(form, REMOVAL_MOST)) is not None:
        problem = too_long
    elif (unconfirmed := page.unconfirmed(form)) is not None:
        problem = unconfirmed
    else:
        problem = page.run(lambda stamp: page.services.app.remove_committee_member(
            parsed, member_id=form.get("member_id", ""), reason=reason, left_on=left_on, stamp=stamp))
        if problem.ok:
            return _done(parsed, problem, "member_removed")
    return _committee_page(page, parsed, form, problem, "remove_member", refusal_status(problem))
