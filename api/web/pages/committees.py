"""Management committees: the list with member turnover and open actions, and a committee's
page with its upcoming meeting and agenda (open cases of its area among the items), minutes
with attendance and the quorum shown, past meetings and action items. Commands are the API's
own use cases (schedule_meeting, record_minutes, complete_committee_action)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import reading_as
from api.present import Presenter
from api.web.core import STAFF_ROLES, CommandOutcome, Page, current_page, day_or_none, redirect, uuid_or_none
from api.web.pages.cases import area_name, refusal_status, refused
from application.store import NotFound
from domain.committees import TOPICS, ManagementCommittee
from domain.common import Role
from domain.disputes import UNRESOLVED_STATUSES
from projections.committees import list_committees
from projections.disputes import CaseFilter, list_cases

router = APIRouter()
READERS = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
TITLED_ROWS = 3


@router.get("/ui/committees")
async def committees(request: Request) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if after.isdigit():
        await page.wait_for("committee_agendas", int(after))
    with page.services.pool.connection() as conn:
        rows = list_committees(conn, None, page.principal.area_filter(), page.services.today())
    rows = [{**r, "area_name": area_name(page, r["area"])} for r in rows]
    return page.render("committees.html", committees=page.sorted_by_name(rows))


def _open_cases(page: Page, area: str) -> list[dict[str, Any]]:
    """The committee's area's cases it may still decide on (not resolved or closed)."""
    with page.services.pool.connection() as conn:
        found = list_cases(conn, CaseFilter(area=area, areas=page.principal.area_filter()), page.services.today(),
                           200, None, view="open_cases")
    return [c for c in found.items if c["status"] in {s.value for s in UNRESOLVED_STATUSES}]


def _committee_page(page: Page, committee_id: UUID, values: dict[str, Any] | None = None,
                    outcome: CommandOutcome | None = None, form_name: str | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            committee = page.services.app.load(ManagementCommittee, committee_id)
    except NotFound:
        return page.render("case_missing.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, "zh" if page.lang == "zh-CN" else "en")
    active = committee.active_members()
    members = presenter.members([{**m, "member_id": k, "sitting": k in active} for k, m in committee.members.items()])
    names = {m["member_id"]: m["name"] for m in members}
    open_cases = _open_cases(page, committee.area)
    with page.services.pool.connection() as conn:  # every case of the area, to name agenda items
        cases = {str(c["id"]): c for c in list_cases(conn, CaseFilter(area=committee.area), page.services.today(),
                                                        500, None).items}
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
        values=values or {}, outcome=outcome, form_name=form_name, done=page.request.query_params.get("done"))


@router.get("/ui/committees/{committee_id}")
async def committee_page(request: Request, committee_id: str) -> Response:
    page = current_page(request)
    page.require(READERS)
    after = request.query_params.get("after", "")
    if after.isdigit():
        await page.wait_for("committee_agendas", int(after))
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("case_missing.html", status=404)
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
        return page.render("case_missing.html", status=404)
    agenda: list[dict[str, Any]] = [{"dispute_id": UUID(d)} for d in lists.get("dispute_id", []) if uuid_or_none(d)]
    problem: CommandOutcome | None = None
    for n in range(1, TITLED_ROWS + 1):
        title, topic = form.get(f"title_{n}", ""), form.get(f"topic_{n}", "")
        if title:
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


@router.post("/ui/committees/{committee_id}/meetings/{meeting_id}/minutes")
async def minutes(request: Request, committee_id: str, meeting_id: str) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form, lists = await _posted(page)
    parsed = uuid_or_none(committee_id)
    if parsed is None:
        return page.render("case_missing.html", status=404)
    held_on = day_or_none(form.get("held_on"))
    problem: CommandOutcome | None = None
    decisions: list[dict[str, Any]] = []
    for key, text in form.items():
        if key.startswith("decision_") and text:
            item_id = key.removeprefix("decision_")
            decision: dict[str, Any] = {"item_id": item_id, "decision": text, "actions": []}
            what, owner = form.get(f"action_{item_id}", ""), form.get(f"owner_{item_id}", "")
            if what:
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
        return page.render("case_missing.html", status=404)
    done_on = day_or_none(form.get("done_on"))
    if done_on is None:
        problem = refused(page, "date_invalid", "give a date (YYYY-MM-DD)", "done_on")
    else:
        problem = page.run(lambda stamp: page.services.app.complete_committee_action(
            parsed, action_id=action_id, done_on=done_on, note=form.get("note") or None, stamp=stamp))
        if problem.ok:
            return _done(parsed, problem, "action")
    return _committee_page(page, parsed, {**form, "action_id": action_id}, problem, "action",
                           refusal_status(problem))
