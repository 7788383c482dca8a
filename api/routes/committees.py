"""Management committees (外来人口管理委员会): members, monthly meetings, minutes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, model_validator

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
    reading_as,
    respond,
)
from api.deps import STAFF as STAFF_ROLES
from api.deps import SUPERVISORS as SUPERVISOR_ROLES
from api.present import Presenter
from api.schemas import AgendaPublic, AreaName, Body, CommitteeListItem, CommitteePublic, Name, PageOut, Reason
from application.audit import record_names_read
from domain.committees import ManagementCommittee
from projections.committees import committee_agenda, page_committees

router = APIRouter(prefix="/committees", tags=["management committees"])

Work = Annotated[Command, command_dependency(*STAFF_ROLES)]
Supervise = Annotated[Command, command_dependency(*SUPERVISOR_ROLES)]
MemberId = Annotated[str, Field(min_length=1, max_length=40)]


class Member(Body):
    name: Name
    role: Annotated[str, Field(min_length=1, max_length=64)] = "member"
    resident_id: UUID | None = Field(default=None, description="set when the member is a registered resident")


class CommitteeCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Ginkgo Migrant Population Management Committee", "area": "Xinqi Subdistrict",
        "established_on": "2026-01-10",
        "members": [{"name": "Wang Fang", "role": "chair"},
                    {"name": "Li Wei", "role": "group leader", "resident_id": "1704080f-817d-40a4-aeda-8b7ab0fba005"}],
    }]})
    name: Name
    area: AreaName | None = None
    site_id: UUID | None = None
    established_on: date
    members: list[Member] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def area_or_site(self) -> CommitteeCreate:
        if (self.area is None) == (self.site_id is None):
            raise ValueError("a committee is for an area or for a site: give exactly one of area or site_id")
        return self


class MemberCreate(Member):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Li Wei", "role": "group leader", "resident_id": "1704080f-817d-40a4-aeda-8b7ab0fba005",
        "joined_on": "2026-02-01"}]})
    joined_on: date


class MemberRemoval(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "member_id": "a1b2c3d4e5f6", "reason": "stepped down to look after family", "left_on": "2026-06-30"}]})
    member_id: MemberId
    reason: Reason
    left_on: date


Topic = Literal["disputes", "public_order", "rights", "family_planning", "sanitation"]


class AgendaItem(Body):
    dispute_id: UUID | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    topic: Topic | None = Field(default=None, description="one of the seed's five kinds of committee work; an item "
                                "naming a dispute is about disputes")

    @model_validator(mode="after")
    def something_to_discuss(self) -> AgendaItem:
        if self.dispute_id is None and self.title is None:
            raise ValueError("an agenda item names a dispute_id or has a title")
        return self


class MeetingCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "scheduled_on": "2026-12-05",
        "agenda": [{"dispute_id": "0e5f6a9c-2f51-4f0e-9b5b-3f9a2f0c1d11"}, {"title": "Sanitation rota"}]}]})
    scheduled_on: date
    agenda: list[AgendaItem] = Field(min_length=1, max_length=50)


class ActionCreate(Body):
    description: Annotated[str, Field(min_length=1, max_length=500)]
    owner: MemberId = Field(description="the member_id of the sitting member who sees it done")
    due_on: date


class Decision(Body):
    item_id: Annotated[str, Field(min_length=1, max_length=10)]
    decision: Annotated[str, Field(min_length=1, max_length=2000)]
    actions: list[ActionCreate] = Field(default_factory=list, max_length=20,
                                        description="action items the decision assigns, followed to done")


class ActionCompletion(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"done_on": "2026-12-10", "note": "wages paid"}]})
    done_on: date
    note: Reason | None = None


class MinutesCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "held_on": "2026-12-05", "attendees": ["a1b2c3d4e5f6"],
        "decisions": [{"item_id": "1", "decision": "Refer to labour inspection if unpaid by 15 December"}]}]})
    held_on: date
    attendees: list[MemberId] = Field(max_length=50)
    decisions: list[Decision] = Field(default_factory=list, max_length=50)


@router.post("", status_code=201, responses=created("committee"))
@access(SUPERVISORS, AreaRule.CREATE)
def establish(body: CommitteeCreate, cmd: Supervise) -> JSONResponse:
    """Establish a management committee for an area or a site."""
    members = [m.model_dump(mode="json", exclude_none=True) for m in body.members]
    return cmd.run(
        lambda stamp, claim: cmd.app.establish_committee(
            name=body.name, area=body.area, site_id=body.site_id, members=members,
            established_on=body.established_on, stamp=stamp, idempotency=claim),
        status=201, location=lambda r: f"/committees/{r.id}",
    )


@router.get("", response_model=PageOut[CommitteeListItem])
@access(READERS, AreaRule.LIST)
def list_all(
    services: ServicesDep, principal: PrincipalDep, headers: Annotated[dict[str, str], after("committee_agendas")],
    limit: Limit, area: Annotated[AreaName | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """Committees with member turnover: active members, vacancies left by departures, leavers; by name (in pinyin
    order), a page at a time."""
    code = services.app.areas.resolve(area) if area else None
    with services.pool.connection() as conn:
        page = page_committees(conn, code, principal.area_filter(), services.today(), limit, cursor)
    return page_response(page, headers, item_model=CommitteeListItem)


# A committee's free text (agenda titles, decisions, actions, reasons) may name people: sealed
# under a key per event (erased with a resident it names), hidden from a reader without the
# right to personal data.
FREE_TEXT = frozenset({"title", "decision", "description", "note", "reason", "left_reason", "vacancy_reason"})


def free_text(value: Any, presenter: Presenter) -> Any:
    """``value`` with the free text in it opened, or hidden, for the reader."""
    if isinstance(value, list):
        return [free_text(v, presenter) for v in value]
    if isinstance(value, dict):
        return {k: presenter.text(v) if k in FREE_TEXT and isinstance(v, str) else free_text(v, presenter)
                for k, v in value.items()}
    return value


@router.get("/{committee_id}", response_model=CommitteePublic)
@access(READERS, AreaRule.OBJECT)
def get_committee(committee_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep,
                  lang: Language) -> JSONResponse:
    """One committee: current members (with quorum) and every meeting; ETag is its version."""
    with reading_as(principal):
        committee = services.app.load(ManagementCommittee, committee_id)
    presenter = Presenter(services.app.vault, principal, lang)
    area = services.app.areas.get(committee.area)
    doc = CommitteePublic.model_validate(_json({
        "id": str(committee.id), "version": committee.version, "name": committee.name, "area": committee.area,
        "area_name": (area.name_en if lang == "en" else area.name_zh) if area else None,
        "site_id": str(committee.site_id) if committee.site_id else None,
        "established_on": committee.established_on.isoformat(),
        "members": presenter.members([{**m, "departed": committee.is_vacant(m["member_id"]),
                                       "status": "vacant" if committee.is_vacant(m["member_id"]) else "active"}
                                      for m in committee.members.values()]),
        "quorum": committee.quorum(),
        "meetings": free_text([{"meeting_id": k, **{f: x for f, x in v.items() if f != "added_items"}}
                               for k, v in committee.meetings.items()], presenter),
    }))
    with services.pool.connection() as conn:  # the members' full names beside their resident ids: a read of them
        record_names_read(conn, principal, [m.get("resident_id") for m in committee.members.values()],
                          read_route(request), detail=str(committee_id))
    return respond(doc, {"ETag": f'"{committee.version}"'})


@router.get("/{committee_id}/agenda", response_model=AgendaPublic)
@access(READERS, AreaRule.OBJECT)
def get_agenda(
    committee_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep, lang: Language,
    headers: Annotated[dict[str, str], after("committee_agendas")],
) -> JSONResponse:
    """Upcoming and past meetings with agenda, attendance and decisions; members with vacancies."""
    with reading_as(principal):
        services.app.load(ManagementCommittee, committee_id)
    with services.pool.connection() as conn:
        doc = committee_agenda(conn, committee_id)
    presenter = Presenter(services.app.vault, principal, lang)
    members = [{**m, "left_reason": presenter.text(m["left_reason"])} for m in doc["members"]]
    doc = {**free_text({k: v for k, v in doc.items() if k != "members"}, presenter),
           "members": presenter.members(members)}
    with services.pool.connection() as conn:  # the members' full names beside their resident ids: a read of them
        record_names_read(conn, principal, [m.get("resident_id") for m in members], read_route(request),
                          detail=str(committee_id))
    return respond(AgendaPublic.model_validate(_json(doc)), headers)


@router.post("/{committee_id}/members", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def add_member(committee_id: UUID, body: MemberCreate, cmd: Supervise) -> JSONResponse:
    """Add a member; the response carries the new ``member_id``."""
    member = body.model_dump(mode="json", exclude_none=True, exclude={"joined_on"})
    return cmd.run(lambda stamp, claim: cmd.app.add_committee_member(
        committee_id, member=member, joined_on=body.joined_on, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{committee_id}/member-removals", responses=RECORDED)
@access(SUPERVISORS, AreaRule.OBJECT)
def remove_member(committee_id: UUID, body: MemberRemoval, cmd: Supervise) -> JSONResponse:
    """Record that a member left the committee."""
    return cmd.run(lambda stamp, claim: cmd.app.remove_committee_member(
        committee_id, member_id=body.member_id, reason=body.reason, left_on=body.left_on, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{committee_id}/meetings", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def schedule_meeting(committee_id: UUID, body: MeetingCreate, cmd: Work) -> JSONResponse:
    """Schedule a (monthly) meeting with its agenda; the response carries the ``meeting_id``."""
    agenda = [item.model_dump(mode="json", exclude_none=True) for item in body.agenda]
    return cmd.run(lambda stamp, claim: cmd.app.schedule_meeting(
        committee_id, scheduled_on=body.scheduled_on, agenda=agenda, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


class AgendaItemsCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"dispute_id": "0e5f6a9c-2f51-4f0e-9b5b-3f9a2f0c1d11"}]}]})
    items: list[AgendaItem] = Field(min_length=1, max_length=50)


@router.post("/{committee_id}/meetings/{meeting_id}/agenda", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def add_agenda_items(committee_id: UUID, meeting_id: MemberId, body: AgendaItemsCreate, cmd: Work) -> JSONResponse:
    """Add items (an open case logged since, a topic) to the agenda of a meeting not yet held
    (409 meeting_held after its minutes); the response's details carry the new ``item_ids``."""
    items = [item.model_dump(mode="json", exclude_none=True) for item in body.items]
    return cmd.run(lambda stamp, claim: cmd.app.add_agenda_items(
        committee_id, meeting_id, items=items, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.post("/{committee_id}/meetings/{meeting_id}/minutes", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def record_minutes(committee_id: UUID, meeting_id: MemberId, body: MinutesCreate, cmd: Work) -> JSONResponse:
    """Record attendance and decisions; without a quorum (more than half the members) no decisions (409).
    A decision on a dispute is recorded on the dispute in the same transaction."""
    decisions = [d.model_dump() for d in body.decisions]
    return cmd.run(lambda stamp, claim: cmd.app.record_minutes(
        committee_id, meeting_id=meeting_id, held_on=body.held_on, attendees=list(body.attendees),
        decisions=decisions, stamp=stamp, expected_version=cmd.expected_version, idempotency=claim))


@router.post("/{committee_id}/actions/{action_id}/completion", responses=RECORDED)
@access(STAFF, AreaRule.OBJECT)
def complete_action(committee_id: UUID, action_id: MemberId, body: ActionCompletion, cmd: Work) -> JSONResponse:
    """Record that an action item set by a meeting's decision was done."""
    return cmd.run(lambda stamp, claim: cmd.app.complete_committee_action(
        committee_id, action_id=action_id, done_on=body.done_on, note=body.note, stamp=stamp,
        expected_version=cmd.expected_version, idempotency=claim))


def _json(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
