"""The access matrix: every route of the app x every role x three area scenarios, checked
against the route's own ``@access`` rule (api/access.py).

The routes come from ``api_routes(create_app(...))``, so a new route without a rule, or
without a sample request in ``SAMPLES`` below, fails here. For each route and role:

* ``own``: a key bound to area A, the record in A;
* ``foreign``: a key bound to area A, the record in area B;
* ``none``: a district-wide key, the record in A.

A role outside the rule's roles gets 403 ``role_not_allowed`` whatever the area. An allowed
role is let through for its own area and district-wide (a 409 or a business-rule 422 still
means access control let the request through); outside its area the rule's area aspect
decides: OBJECT 404, LIST filtered, CREATE 403 ``area_not_allowed``, REFERENCE 422 naming the
field, DISTRICT 403 ``area_not_allowed`` for any area-bound key, NONE as in its own area.
Auditors read every area (their binding is ignored for reads) and write nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from api.access import AreaRule, Rule, rule_of
from api.app import RouteInfo, api_routes, create_app
from application.keys import HUMAN_ROLES
from application.services import Services
from application.settings import Settings
from domain.committees import ManagementCommittee
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber
from tests.conftest import NOW, define_area, issue_key
from tests.factories import id_number, resident_body, site_body, unique

SCENARIOS = ("own", "foreign", "none")
FISCAL_YEAR = 2077  # the matrix's subsidy program: a year no other test uses, so the ledger query is narrow
PERMIT_DUE = date(2019, 8, 2)  # the listed permits' endorsement due date: older than any other test's
SHOWN_BODY = 400  # characters of a response body quoted in a failure


MATRIX_REPORT_FIGURES = {"income_from_site": "1000.00", "reinvested_management": "100.00",
                         "reinvested_sanitation": "100.00", "reinvested_facilities": "100.00"}


# -- the records a sample request needs ------------------------------------------------------
class World:
    """Two fresh areas (A: the keys' own area, B: another), a key bound to A and a
    district-wide key per role, and helpers that create records directly through the
    application (faster than HTTP). ``pos`` is the latest position they stored."""

    def __init__(self, services: Services, http: httpx.Client) -> None:
        self.services = services
        self.app = services.app
        self.http = http
        self.a = define_area(services, "MatrixA")
        self.b = define_area(services, "MatrixB")
        run = uuid.uuid4().hex[:8]
        self.user_ids = {(role, bound): f"matrix-{role.value}-{bound}-{run}"
                         for role in HUMAN_ROLES for bound in ("area", "district")}
        self.keys = {(role, bound): issue_key(services, user, role, areas=[self.a] if bound == "area" else [])
                     for (role, bound), user in self.user_ids.items()}
        # an existing caseworker who sees every area, for assignments (one bound elsewhere cannot take a case)
        self.caseworker = self.user_ids[(Role.CASEWORKER, "district")]
        self.setup = Stamp(Actor(f"matrix-setup-{run}", Role.SUPERVISOR), NOW)
        self.submitter = Stamp(Actor(f"matrix-submitter-{run}", Role.CASEWORKER), NOW)
        self.approver = Stamp(Actor(f"matrix-approver-{run}", Role.SUPERVISOR), NOW)
        self.resolver = Stamp(Actor(f"matrix-resolver-{run}", Role.CASEWORKER), NOW)
        self.admin = Stamp(Actor(f"matrix-admin-{run}", Role.ADMIN), NOW)
        self.pos = 0
        self.requests = 0
        self._home_site: str | None = None
        self._program: str | None = None

    def import_job(self) -> str:
        """A finished import job (nothing to import), for the job's route."""
        from application.import_jobs import create_job

        job = uuid.uuid4()
        with self.services.pool.connection() as conn:
            create_job(conn, job, "residents", "matrix", 0)
        return str(job)

    def _stored(self, result: Any) -> str:
        self.pos = max(self.pos, result.position)
        return str(result.id)

    # -- requests -------------------------------------------------------------------------
    def key(self, role: Role, scenario: str) -> str:
        return self.keys[(role, "district" if scenario == "none" else "area")]

    def call(self, method: str, req: Req, key: str | None) -> httpx.Response:
        self.requests += 1
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if method == "GET":
            return self.http.get(req.path, headers=headers)
        return self.http.post(req.path, json=req.body, headers=headers)

    def listed(self, req: Req, sample: Sample, first: httpx.Response, key: str | None) -> tuple[set[str], str]:
        """The records a list answer names (following ``next`` across pages), and whether
        every page read its writes (X-Read-Consistent)."""
        found: set[str] = set()
        consistent = [first.headers.get("X-Read-Consistent", "absent")]
        body = first.json()
        for _ in range(50):
            found |= {str(item.get(sample.key)) for item in body.get(sample.part, [])}
            cursor = body.get("next") if sample.part == "items" else None
            if not cursor:
                break
            page = self.http.get(req.path, params={"cursor": cursor}, headers={"Authorization": f"Bearer {key}"})
            self.requests += 1
            assert page.status_code == 200, page.text
            consistent.append(page.headers.get("X-Read-Consistent", "absent"))
            body = page.json()
        return found, ",".join(sorted(set(consistent)))

    def caught_up(self, path: str) -> str:
        """``path``, once every view has dealt with every stored event: readiness is about
        the views, and a session's first seconds are their start."""
        head = self.services.head()
        for view in self.services.projections:
            assert self.services.wait_for(view, head, 20), f"view {view} did not reach position {head}"
        return path

    # -- areas, keys ----------------------------------------------------------------------
    def target_key(self, area: str) -> tuple[str, str]:
        """A key (id, user id) bound to ``area``: the target of key management."""
        user = unique("matrix-target")
        result, _ = self.app.issue_key(user_id=user, role=Role.CASEWORKER.value, areas=[area], scopes=[],
                                       stamp=self.admin)
        return self._stored(result), user

    # -- sites, residents -----------------------------------------------------------------
    def site(self, area: str, capacity: int = 10) -> str:
        return self._stored(self.app.register_site(
            name=unique("Matrix"), area=area, address="1 Matrix Road", operator_type="village_cooperative",
            operator_name="Matrix Cooperative", capacity=capacity, facilities=["canteen"], stamp=self.setup))

    def home_site(self) -> str:
        """A roomy site in A: where residents of every scenario move to (a place the caller may name)."""
        if self._home_site is None:
            self._home_site = self.site(self.a, capacity=500)
        return self._home_site

    def assessed_site(self, area: str) -> str:
        """A site assessed as ready on 2026-11-01 (the default checklist all present)."""
        sid = self.site(area)
        self._stored(self.app.assess_site(
            UUID(sid), assessed_on=date(2026, 11, 1), headcount=800, facilities_present=["canteen"],
            operator_status="clear", villages=["Matrix"], note=None, checklist=["canteen"], min_headcount=500,
            stamp=self.setup))
        return sid

    def prepared_site(self, area: str) -> str:
        sid = self.assessed_site(area)
        self._stored(self.app.approve_preparation(UUID(sid), approved_on=date(2026, 11, 5), group=[], note=None,
                                                  stamp=self.setup))
        return sid

    def elected_site(self, area: str) -> str:
        sid = self.prepared_site(area)
        self._stored(self.app.hold_election(
            UUID(sid), held_on=date(2026, 11, 10), seats=5, ballots=None, stamp=self.setup,
            candidates=[{"name": f"Matrix {n}", "votes": 10 - n} for n in range(5)]))
        return sid

    def resident(self, area: str, registered_on: date = date(2026, 3, 1)) -> str:
        return self._stored(self.app.register_resident(
            id_number=IdentityNumber.parse(id_number()), name=unique("Li"), phone="13800138000", hometown="Anhui",
            employer="Hengli Textiles", area=area, registered_on=registered_on, stamp=self.setup))

    def departed(self, area: str) -> str:
        rid = self.resident(area)
        self._stored(self.app.record_departure(UUID(rid), date(2026, 11, 20), "returned home", self.setup))
        return rid

    def permit_applied(self, area: str) -> str:
        rid = self.resident(area, registered_on=date(2025, 1, 1))
        self._stored(self.app.apply_for_permit(UUID(rid), applied_on=date(2025, 8, 1), stamp=self.setup))
        return rid

    def permit_issued(self, area: str, issued_on: date = date(2025, 12, 1)) -> str:
        """A permit whose endorsement window is open on NOW (due a year after ``issued_on``)."""
        rid = self.resident(area, registered_on=date(issued_on.year - 1, 1, 2))
        self._stored(self.app.apply_for_permit(UUID(rid), applied_on=date(issued_on.year - 1, 8, 1),
                                               stamp=self.setup))
        self._stored(self.app.issue_permit(UUID(rid), number=unique("JZZ"), issued_on=issued_on, stamp=self.setup))
        return rid

    # -- disputes ---------------------------------------------------------------------------
    def case(self, area: str) -> str:
        return self._stored(self.app.log_dispute(
            category="other", parties=[{"name": "Matrix Landlord", "kind": "landlord"}], site_id=None, area=area,
            description="matrix case", priority="normal", occurred_on=date(2026, 11, 1), stamp=self.setup))

    def assigned_case(self, area: str) -> str:
        cid = self.case(area)
        self._stored(self.app.assign_dispute(UUID(cid), assignee=self.caseworker, agency=None, stamp=self.setup))
        return cid

    def resolved_case(self, area: str) -> str:
        """Resolved by someone who is none of the callers, so any supervisor may close it."""
        cid = self.case(area)
        self._stored(self.app.resolve_dispute(UUID(cid), outcome="withdrawn", amount_recovered=None,
                                              stamp=self.resolver))
        return cid

    # -- committees -------------------------------------------------------------------------
    def committee(self, area: str) -> str:
        return self._stored(self.app.establish_committee(
            name=unique("Matrix Committee"), area=area, site_id=None, members=[{"name": "Wang Fang", "role": "chair"}],
            established_on=date(2026, 1, 10), stamp=self.setup))

    def member_of(self, committee_id: str) -> str:
        committee = self.app.load(ManagementCommittee, UUID(committee_id))
        return str(next(iter(committee.members)))

    def meeting(self, committee_id: str) -> str:
        result = self.app.schedule_meeting(UUID(committee_id), scheduled_on=date(2026, 11, 24),
                                           agenda=[{"title": "sanitation rota"}], stamp=self.setup)
        self._stored(result)
        return str(result.details["meeting_id"])

    def action(self, area: str) -> str:
        """A committee with an open action item: the path to complete it."""
        cid = self.committee(area)
        member = self.member_of(cid)
        meeting = self.meeting(cid)
        self._stored(self.app.record_minutes(
            UUID(cid), meeting_id=meeting, held_on=date(2026, 11, 24), attendees=[member], stamp=self.setup,
            decisions=[{"item_id": "1", "decision": "clean up", "actions": [
                {"description": "hire a cleaner", "owner": member, "due_on": date(2026, 12, 1)}]}]))
        return f"/committees/{cid}/actions/{meeting}-1-1/completion"

    # -- active members and services to residents ------------------------------------------
    def active_member(self, area: str) -> str:
        return self._stored(self.app.identify_active_member(
            resident_id=UUID(self.resident(area)), site_id=None, area=None, identified_on=date(2026, 11, 20),
            stamp=self.setup))

    def appointed_member(self, area: str) -> str:
        mid = self.active_member(area)
        self._stored(self.app.appoint_active_member(UUID(mid), role="group_leader", appointed_on=date(2026, 11, 21),
                                                    stamp=self.setup))
        return mid

    def dependant(self, area: str, *, requested: bool = False) -> tuple[str, str]:
        """A resident in ``area`` with a child of school age (a place requested, if asked)."""
        rid = self.resident(area)
        result = self.app.record_dependant(UUID(rid), name="Xiao Li", birth_year=2018, relation="child",
                                           stamp=self.setup)
        self._stored(result)
        child = str(result.details["dependant_id"])
        if requested:
            self._stored(self.app.request_school_place(UUID(rid), dependant_id=child, school="Ginkgo School",
                                                       requested_on=date(2026, 11, 20), stamp=self.setup))
        return rid, child

    def service(self, area: str) -> str:
        self._stored(self.app.deliver_service(UUID(self.resident(area)), kind="health_check",
                                              delivered_on=date(2026, 11, 20), provider="Matrix Clinic",
                                              stamp=self.setup))
        return area

    # -- subsidies --------------------------------------------------------------------------
    def program(self) -> str:
        if self._program is None:
            self._program = self._stored(self.app.open_subsidy_program(
                name=unique("Matrix Program"), purpose="facilities", fiscal_year=FISCAL_YEAR,
                budget="100000000.00", modes=["one_off", "reward_in_lieu"], stamp=self.setup))
        return self._program

    def application(self, area: str, *, mode: str = "one_off", approved: bool = False,
                    site: str | None = None) -> str:
        """Submitted by someone who is none of the callers (so they may approve it)."""
        aid = self._stored(self.app.submit_subsidy_application(
            program_id=UUID(self.program()), site_id=UUID(site or self.site(area)), amount="1000.00", mode=mode,
            justification="matrix", instalments=None, stamp=self.submitter))
        if approved:
            goal = {"target": "matrix", "target_due": date(2027, 6, 30)} if mode == "reward_in_lieu" else {}
            self._stored(self.app.approve_subsidy_application(UUID(aid), None, self.approver,
                                                              **goal))  # type: ignore[arg-type]
        return aid

    # -- operators and co-building ------------------------------------------------------------
    def operator(self, area: str, operator_type: str = "village_cooperative") -> str:
        return self._stored(self.app.register_operator(operator_type=operator_type, name=unique("Matrix Operator"),
                                                       contact="Matrix Contact", area=area, stamp=self.setup))

    def running(self, area: str) -> tuple[str, str]:
        """An operator of ``area`` running a new site there: (operator, site)."""
        operator, site = self.operator(area), self.site(area)
        self._stored(self.app.assign_site_to_operator(UUID(operator), site_id=UUID(site),
                                                      assigned_on=date(2026, 1, 1), stamp=self.setup))
        return operator, site

    def inspected(self, area: str) -> tuple[str, str]:
        operator, site = self.running(area)
        self._stored(self.app.record_sanitation_inspection(UUID(operator), site_id=UUID(site),
                                                           inspected_on=date(2026, 5, 1), score=70, findings="ok",
                                                           stamp=self.setup))
        return operator, site

    def employer_with(self, area: str) -> tuple[str, str]:
        employer, resident = self.operator(area, "employer"), self.resident(area)
        self._stored(self.app.link_operator_employee(UUID(employer), resident_id=UUID(resident),
                                                     linked_on=date(2026, 3, 2), stamp=self.setup))
        return employer, resident

    def reported(self, area: str) -> str:
        operator = self.operator(area)
        self._stored(self.app.file_operator_report(UUID(operator), year=2025, figures=MATRIX_REPORT_FIGURES,
                                                   stamp=self.setup))
        return operator

    def pairing(self, area: str, site: str | None = None) -> str:
        return self._stored(self.app.agree_pairing(site_id=UUID(site or self.site(area)), partner_type="school",
                                                   partner_name=unique("Matrix School"),
                                                   agreed_on=date(2026, 3, 1), stamp=self.setup))


# -- the sample request of every route ----------------------------------------------------------
@dataclass(frozen=True)
class Req:
    path: str
    body: dict[str, Any] | None = None
    listed: str | None = None  # LIST: the target record's id, looked for in the answer


@dataclass(frozen=True)
class Sample:
    """How to make a valid request on a route for a target in area ``t`` (the caller's own
    area is always ``w.a``). ``fresh``: the command changes its target, so every request
    that may go through gets new records. ``part``/``key``: where a list answer names its
    records; ``field``: the body field a REFERENCE route names when it refuses."""

    build: Callable[[World, str], Req]
    fresh: bool = False
    part: str = "items"
    key: str = "id"
    field: str | None = None


def _after(w: World) -> str:
    return f"after={w.pos}"


def _get(path: Callable[[World, str], str]) -> Sample:
    return Sample(lambda w, t: Req(path(w, t)))


def _list(make: Callable[[World, str], str], path: Callable[[World, str], str], *, part: str = "items",
          key: str = "id") -> Sample:
    """A list whose query is narrowed to the target's area (or record): ``make`` creates the
    record the list should (own area) or should not (another area) show."""

    def build(w: World, t: str) -> Req:
        record = make(w, t)
        return Req(path(w, t) + ("&" if "?" in path(w, t) else "?") + _after(w), listed=record)

    return Sample(build, part=part, key=key)


def _command(build: Callable[[World, str], Req], **kwargs: Any) -> Sample:
    return Sample(build, fresh=True, **kwargs)


def _keys(w: World, t: str) -> Req:
    key_id, user = w.target_key(t)
    return Req(f"/keys?user_id={user}", listed=key_id)


def _application_list(w: World, t: str) -> Req:
    site = w.site(t)
    record = w.application(t, site=site)
    return Req(f"/subsidy-applications?site_id={site}&{_after(w)}", listed=record)


def _ledger(w: World, t: str) -> Req:
    site = w.site(t)
    w.application(t, site=site)
    return Req(f"/subsidy-ledger?fiscal_year={FISCAL_YEAR}&{_after(w)}", listed=site)


def _site_release(w: World, t: str) -> Req:
    operator, site = w.running(t)
    return Req(f"/operators/{operator}/site-releases", {"site_id": site, "released_on": "2026-11-20",
                                                        "reason": "matrix"})


def _employee_removal(w: World, t: str) -> Req:
    employer, resident = w.employer_with(t)
    return Req(f"/operators/{employer}/employee-removals", {"resident_id": resident, "unlinked_on": "2026-11-20"})


def _inspection(w: World, t: str) -> Req:
    operator, site = w.running(t)
    return Req(f"/operators/{operator}/inspections", {"site_id": site, "inspected_on": "2026-11-20", "score": 80})


def _sanitation(w: World, t: str) -> Req:
    operator, site = w.inspected(t)
    return Req(f"/operators/sanitation?site_id={site}&{_after(w)}", listed=operator)


def _support(w: World, t: str) -> Req:
    w.application(t)
    return Req(f"/operators/support-by-type?fiscal_year={FISCAL_YEAR}&{_after(w)}", listed=t)


def _pairings(w: World, t: str) -> Req:
    site = w.site(t)
    pairing = w.pairing(t, site)
    return Req(f"/pairings?site_id={site}&{_after(w)}", listed=pairing)


def _cobuilding(w: World, t: str) -> Req:
    site = w.site(t)
    w._stored(w.app.record_contribution(UUID(w.pairing(t, site)), delivered_on=date(2026, 4, 1), kind="money",
                                        description="matrix", value_yuan="100.00", stamp=w.setup))
    return Req(f"/pairings/by-site?site_id={site}&{_after(w)}", listed=site)


def _statistics(w: World, t: str) -> Req:
    w.resident(t)
    w.case(t)
    return Req(f"/statistics?area={t}&{_after(w)}", listed=t)


def _minutes(w: World, t: str) -> Req:
    committee = w.committee(t)
    meeting = w.meeting(committee)
    return Req(f"/committees/{committee}/meetings/{meeting}/minutes",
               {"held_on": "2026-11-24", "attendees": [w.member_of(committee)], "decisions": []})


def _agenda_items(w: World, t: str) -> Req:
    committee = w.committee(t)
    return Req(f"/committees/{committee}/meetings/{w.meeting(committee)}/agenda", {"items": [{"title": "bins"}]})


def _member_removal(w: World, t: str) -> Req:
    committee = w.committee(t)
    return Req(f"/committees/{committee}/member-removals",
               {"member_id": w.member_of(committee), "reason": "moved away", "left_on": "2026-11-20"})


def _school(w: World, t: str, path: str, body: dict[str, Any], *, requested: bool) -> Req:
    rid, child = w.dependant(t, requested=requested)
    return Req(f"/residents/{rid}/{path}", {"dependant_id": child, "school": "Ginkgo School", **body})


SAMPLES: dict[tuple[str, str], Sample] = {
    # health: public
    ("GET", "/healthz"): _get(lambda w, t: "/healthz"),
    ("GET", "/readyz"): _get(lambda w, t: w.caught_up("/readyz")),
    ("GET", "/metrics"): _get(lambda w, t: "/metrics"),
    # areas and keys
    ("GET", "/areas"): _get(lambda w, t: "/areas"),
    ("POST", "/areas"): _command(lambda w, t: Req("/areas", {
        "code": f"m{uuid.uuid4().hex[:12]}", "name_zh": unique("矩阵村"), "name_en": unique("Matrix Village"),
        "level": "village", "parent": t})),
    ("POST", "/areas/{code}/names"): _command(lambda w, t: Req(f"/areas/{t}/names", {
        "name_zh": unique("矩阵街道"), "name_en": unique("Matrix Street Office")})),
    ("GET", "/keys"): Sample(_keys, key="key_id"),
    ("POST", "/keys"): _command(lambda w, t: Req("/keys", {
        "user_id": unique("matrix-issued"), "role": "caseworker", "areas": [t]})),
    ("POST", "/keys/{key_id}/rotation"): _command(lambda w, t: Req(f"/keys/{w.target_key(t)[0]}/rotation", {})),
    ("POST", "/keys/{key_id}/revocation"): _command(lambda w, t: Req(
        f"/keys/{w.target_key(t)[0]}/revocation", {"reason": "access matrix"})),
    # housing sites
    ("POST", "/sites"): _command(lambda w, t: Req("/sites", site_body(area=t))),
    ("GET", "/sites"): _list(lambda w, t: w.site(t), lambda w, t: f"/sites?area={t}&limit=500"),
    ("GET", "/sites/{site_id}"): _get(lambda w, t: f"/sites/{w.site(t)}"),
    ("POST", "/sites/{site_id}/capacity"): _command(lambda w, t: Req(f"/sites/{w.site(t)}/capacity",
                                                                     {"capacity": 20})),
    ("POST", "/sites/{site_id}/facilities"): _command(lambda w, t: Req(
        f"/sites/{w.site(t)}/facilities", {"facilities": ["clinic", "library"]})),
    ("POST", "/sites/{site_id}/community-committee"): _command(lambda w, t: Req(
        f"/sites/{w.site(t)}/community-committee",
        {"established_on": "2026-01-10", "members": [{"name": "Wang Fang", "role": "chair"}]})),
    ("GET", "/sites/pipeline"): _list(lambda w, t: w.site(t), lambda w, t: "/sites/pipeline", part="sites"),
    ("POST", "/sites/{site_id}/assessments"): _command(lambda w, t: Req(f"/sites/{w.site(t)}/assessments", {
        "assessed_on": "2026-11-01", "headcount": 800, "operator_status": "clear", "villages": ["Matrix"]})),
    ("POST", "/sites/{site_id}/preparation"): _command(lambda w, t: Req(
        f"/sites/{w.assessed_site(t)}/preparation", {"approved_on": "2026-11-10"})),
    ("POST", "/sites/{site_id}/elections"): _command(lambda w, t: Req(f"/sites/{w.prepared_site(t)}/elections", {
        "held_on": "2026-11-20", "seats": 5, "candidates": [{"name": f"C{n}", "votes": 9 - n} for n in range(5)]})),
    ("POST", "/sites/{site_id}/community-members"): _command(lambda w, t: Req(
        f"/sites/{w.elected_site(t)}/community-members", {"changed_on": "2026-11-20", "left": ["m1"],
                                                          "reason": "moved away"})),
    ("POST", "/sites/{site_id}/term-end"): _command(lambda w, t: Req(
        f"/sites/{w.elected_site(t)}/term-end", {"ended_on": "2026-11-20"})),
    ("POST", "/sites/{site_id}/closure"): _command(lambda w, t: Req(
        f"/sites/{w.site(t)}/closure", {"closed_on": "2026-11-20", "reason": "demolished"})),
    # residents and permits
    ("POST", "/residents"): _command(lambda w, t: Req("/residents", resident_body(area=t))),
    ("GET", "/residents"): _list(lambda w, t: w.resident(t), lambda w, t: f"/residents?area={t}&limit=500"),
    ("GET", "/residents/{resident_id}"): _get(lambda w, t: f"/residents/{w.resident(t)}"),
    ("POST", "/residents/{resident_id}/moves"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/moves", {"site_id": w.home_site(), "effective_date": "2026-11-20"})),
    ("POST", "/residents/{resident_id}/departure"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/departure", {"effective_date": "2026-11-20", "reason": "returned home"})),
    ("POST", "/residents/{resident_id}/return"): _command(lambda w, t: Req(
        f"/residents/{w.departed(t)}/return", {"effective_date": "2026-11-24", "area": w.a})),
    ("POST", "/residents/{resident_id}/employer"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/employer", {"employer": "Yuanda Dyeing", "effective_date": "2026-11-20"})),
    ("POST", "/residents/{resident_id}/study"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/study", {"school": "Xinqi Vocational School", "effective_date": "2026-11-20"})),
    ("POST", "/residents/{resident_id}/erasure"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/erasure", {"legal_basis": "data_subject_request", "note": "request MX-1"})),
    ("POST", "/residents/{resident_id}/permit"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t, registered_on=date(2025, 1, 1))}/permit", {"applied_on": "2026-11-20"})),
    ("POST", "/residents/{resident_id}/permit/issuance"): _command(lambda w, t: Req(
        f"/residents/{w.permit_applied(t)}/permit/issuance", {"number": unique("JZZ"), "issued_on": "2025-08-05"})),
    ("POST", "/residents/{resident_id}/permit/endorsements"): _command(lambda w, t: Req(
        f"/residents/{w.permit_issued(t)}/permit/endorsements", {"endorsed_on": "2026-11-20"})),
    ("GET", "/permits"): _list(
        lambda w, t: w.permit_issued(t, issued_on=PERMIT_DUE.replace(year=PERMIT_DUE.year - 1)),
        lambda w, t: f"/permits?due_before={PERMIT_DUE + timedelta(days=1)}&limit=500",
        key="resident_id"),
    # disputes
    ("POST", "/disputes"): _command(lambda w, t: Req("/disputes", {
        "category": "other", "description": "matrix", "parties": [{"name": "Matrix Landlord", "kind": "landlord"}],
        "area": t, "occurred_on": "2026-11-01"})),
    ("GET", "/disputes"): _list(lambda w, t: w.case(t), lambda w, t: f"/disputes?area={t}&limit=500"),
    ("GET", "/open-cases"): _list(lambda w, t: w.case(t), lambda w, t: f"/open-cases?area={t}&limit=500"),
    ("GET", "/disputes/{case_id}"): _get(lambda w, t: f"/disputes/{w.case(t)}"),
    ("POST", "/disputes/{case_id}/assignment"): _command(lambda w, t: Req(
        f"/disputes/{w.case(t)}/assignment", {"assignee": w.caseworker})),
    ("POST", "/disputes/{case_id}/notes"): _command(lambda w, t: Req(f"/disputes/{w.case(t)}/notes",
                                                                     {"text": "called the landlord"})),
    ("POST", "/disputes/{case_id}/mediations"): _command(lambda w, t: Req(
        f"/disputes/{w.assigned_case(t)}/mediations",
        {"held_on": "2026-11-02", "participants": ["Li Wei"], "outcome": "agreed"})),
    ("POST", "/disputes/{case_id}/escalation"): _command(lambda w, t: Req(
        f"/disputes/{w.case(t)}/escalation", {"to": "management_committee", "reason": "no agreement"})),
    ("POST", "/disputes/{case_id}/resolution"): _command(lambda w, t: Req(
        f"/disputes/{w.case(t)}/resolution", {"outcome": "withdrawn"})),
    ("POST", "/disputes/{case_id}/closure"): _command(lambda w, t: Req(f"/disputes/{w.resolved_case(t)}/closure",
                                                                       {})),
    ("POST", "/disputes/{case_id}/reopening"): _command(lambda w, t: Req(
        f"/disputes/{w.resolved_case(t)}/reopening", {"reason": "the landlord did not keep the agreement"})),
    # committees
    ("POST", "/committees"): _command(lambda w, t: Req("/committees", {
        "name": unique("Matrix Committee"), "area": t, "established_on": "2026-01-10",
        "members": [{"name": "Wang Fang", "role": "chair"}]})),
    ("GET", "/committees"): _list(lambda w, t: w.committee(t), lambda w, t: f"/committees?area={t}"),
    ("GET", "/committees/{committee_id}"): _get(lambda w, t: f"/committees/{w.committee(t)}"),
    ("GET", "/committees/{committee_id}/agenda"): _get(
        lambda w, t: f"/committees/{w.committee(t)}/agenda?{_after(w)}"),
    ("POST", "/committees/{committee_id}/members"): _command(lambda w, t: Req(
        f"/committees/{w.committee(t)}/members", {"name": "Zhao Lei", "joined_on": "2026-11-20"})),
    ("POST", "/committees/{committee_id}/member-removals"): _command(_member_removal),
    ("POST", "/committees/{committee_id}/meetings"): _command(lambda w, t: Req(
        f"/committees/{w.committee(t)}/meetings", {"scheduled_on": "2026-11-24", "agenda": [{"title": "rota"}]})),
    ("POST", "/committees/{committee_id}/meetings/{meeting_id}/minutes"): _command(_minutes),
    ("POST", "/committees/{committee_id}/meetings/{meeting_id}/agenda"): _command(_agenda_items),
    ("POST", "/committees/{committee_id}/actions/{action_id}/completion"): _command(lambda w, t: Req(
        w.action(t), {"done_on": "2026-11-25"})),
    # active members
    ("POST", "/active-members"): _command(lambda w, t: Req("/active-members", {
        "resident_id": w.resident(t), "identified_on": "2026-11-20"}), field="resident_id"),
    ("GET", "/active-members"): _list(lambda w, t: w.active_member(t), lambda w, t: f"/active-members?area={t}"),
    ("GET", "/active-members/sites"): _list(lambda w, t: w.active_member(t) and t,
                                            lambda w, t: f"/active-members/sites?area={t}", key="area"),
    ("GET", "/active-members/monthly"): _list(lambda w, t: w.active_member(t) and t,
                                              lambda w, t: f"/active-members/monthly?area={t}", key="area"),
    ("GET", "/active-members/{member_id}"): _get(lambda w, t: f"/active-members/{w.active_member(t)}"),
    ("POST", "/active-members/{member_id}/trainings"): _command(lambda w, t: Req(
        f"/active-members/{w.active_member(t)}/trainings", {"course": "mediation", "trained_on": "2026-11-21"})),
    ("POST", "/active-members/{member_id}/appointments"): _command(lambda w, t: Req(
        f"/active-members/{w.active_member(t)}/appointments", {"role": "representative",
                                                               "appointed_on": "2026-11-21"})),
    ("POST", "/active-members/{member_id}/role-endings"): _command(lambda w, t: Req(
        f"/active-members/{w.appointed_member(t)}/role-endings", {"role": "group_leader", "ended_on": "2026-11-22"})),
    ("POST", "/active-members/{member_id}/employer-liaisons"): _command(lambda w, t: Req(
        f"/active-members/{w.active_member(t)}/employer-liaisons",
        {"employer": "Hengli Textiles", "agreed_on": "2026-11-21", "note": "day shifts on meeting days"})),
    ("POST", "/active-members/{member_id}/loss"): _command(lambda w, t: Req(
        f"/active-members/{w.active_member(t)}/loss", {"lost_on": "2026-11-22", "reason": "resigned"})),
    # services to residents
    ("POST", "/residents/{resident_id}/dependants"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/dependants", {"name": "Xiao Li", "birth_year": 2018, "relation": "child"})),
    ("POST", "/residents/{resident_id}/school-requests"): _command(lambda w, t: _school(
        w, t, "school-requests", {"requested_on": "2026-11-21"}, requested=False)),
    ("POST", "/residents/{resident_id}/school-placements"): _command(lambda w, t: _school(
        w, t, "school-placements", {"placed_on": "2026-11-21"}, requested=True)),
    ("POST", "/residents/{resident_id}/school-refusals"): _command(lambda w, t: _school(
        w, t, "school-refusals", {"refused_on": "2026-11-21", "reason": "no places"}, requested=True)),
    ("POST", "/residents/{resident_id}/services"): _command(lambda w, t: Req(
        f"/residents/{w.resident(t)}/services", {"kind": "family_planning", "delivered_on": "2026-11-20",
                                                 "provider": "Matrix Clinic"})),
    ("GET", "/services/school-gaps"): _list(lambda w, t: w.dependant(t) and t,
                                            lambda w, t: f"/services/school-gaps?area={t}", key="area"),
    ("GET", "/services/monthly"): _list(lambda w, t: w.service(t), lambda w, t: f"/services/monthly?area={t}",
                                        key="area"),
    # subsidies
    ("POST", "/subsidy-programs"): _command(lambda w, t: Req("/subsidy-programs", {
        "name": unique("Matrix Program"), "purpose": "facilities", "fiscal_year": FISCAL_YEAR,
        "budget": "1000.00", "modes": ["one_off"]})),
    ("GET", "/subsidy-programs"): _get(lambda w, t: f"/subsidy-programs?fiscal_year={FISCAL_YEAR}&{_after(w)}"),
    ("GET", "/subsidy-programs/{program_id}"): _get(lambda w, t: f"/subsidy-programs/{w.program()}"),
    ("POST", "/subsidy-applications"): _command(lambda w, t: Req("/subsidy-applications", {
        "program_id": w.program(), "site_id": w.site(t), "amount": "1000.00", "mode": "one_off",
        "justification": "a canteen"}), field="site_id"),
    ("GET", "/subsidy-applications"): Sample(_application_list),
    ("GET", "/subsidy-applications/{application_id}"): _get(
        lambda w, t: f"/subsidy-applications/{w.application(t)}"),
    ("POST", "/subsidy-applications/{application_id}/approvals"): _command(lambda w, t: Req(
        f"/subsidy-applications/{w.application(t)}/approvals", {"note": "site visited"})),
    ("POST", "/subsidy-applications/{application_id}/rejection"): _command(lambda w, t: Req(
        f"/subsidy-applications/{w.application(t)}/rejection", {"reason": "no operator yet"})),
    ("POST", "/subsidy-applications/{application_id}/payments"): _command(lambda w, t: Req(
        f"/subsidy-applications/{w.application(t, approved=True)}/payments",
        {"amount": "1000.00", "reference": unique("FIN"), "paid_on": "2026-11-25"})),
    ("POST", "/subsidy-applications/{application_id}/outcome-verification"): _command(lambda w, t: Req(
        f"/subsidy-applications/{w.application(t, mode='reward_in_lieu', approved=True)}/outcome-verification",
        {"verified_on": "2026-11-25", "note": "canteen open"})),
    ("POST", "/subsidy-applications/{application_id}/revocation"): _command(lambda w, t: Req(
        f"/subsidy-applications/{w.application(t, approved=True)}/revocation",
        {"reason": "never built", "claw_back": "0.00"})),
    ("GET", "/subsidy-ledger"): Sample(_ledger, part="by_site", key="site_id"),
    # operators
    ("POST", "/operators"): _command(lambda w, t: Req("/operators", {
        "type": "employer", "name": unique("Matrix Operator"), "contact": "Matrix Contact", "area": t})),
    ("GET", "/operators"): _list(lambda w, t: w.operator(t), lambda w, t: f"/operators?area={t}&limit=500"),
    ("GET", "/operators/{operator_id}"): _get(lambda w, t: f"/operators/{w.operator(t)}"),
    ("POST", "/operators/{operator_id}/sites"): _command(lambda w, t: Req(
        f"/operators/{w.operator(t)}/sites", {"site_id": w.site(t), "assigned_on": "2026-01-01"})),
    ("POST", "/operators/{operator_id}/site-releases"): _command(_site_release),
    ("POST", "/operators/{operator_id}/contact"): _command(lambda w, t: Req(
        f"/operators/{w.operator(t)}/contact", {"contact": "Matrix Contact Two", "changed_on": "2026-11-01"})),
    ("POST", "/operators/{operator_id}/contact-erasure"): _command(lambda w, t: Req(
        f"/operators/{w.operator(t)}/contact-erasure", {"legal_basis": "data_subject_request", "note": "MX-2"})),
    ("POST", "/operators/{operator_id}/employees"): _command(lambda w, t: Req(
        f"/operators/{w.operator(t, 'employer')}/employees",
        {"resident_id": w.resident(t), "linked_on": "2026-03-02"})),
    ("POST", "/operators/{operator_id}/employee-removals"): _command(_employee_removal),
    ("POST", "/operators/{operator_id}/reports"): _command(lambda w, t: Req(
        f"/operators/{w.operator(t)}/reports", {"year": 2025, **MATRIX_REPORT_FIGURES})),
    ("POST", "/operators/{operator_id}/report-corrections"): _command(lambda w, t: Req(
        f"/operators/{w.reported(t)}/report-corrections",
        {"year": 2025, **MATRIX_REPORT_FIGURES, "income_from_site": "2000.00", "reason": "matrix"})),
    ("POST", "/operators/{operator_id}/inspections"): _command(_inspection),
    ("GET", "/operators/sanitation"): Sample(_sanitation, part="inspections", key="operator_id"),
    ("GET", "/operators/support-by-type"): Sample(_support, part="by_area", key="area"),
    # co-building
    ("POST", "/pairings"): _command(lambda w, t: Req("/pairings", {
        "site_id": w.site(t), "partner_type": "enterprise", "partner_name": unique("Matrix Co"),
        "agreed_on": "2026-03-01"}), field="site_id"),
    ("GET", "/pairings"): Sample(_pairings),
    ("GET", "/pairings/{pairing_id}"): _get(lambda w, t: f"/pairings/{w.pairing(t)}"),
    ("GET", "/pairings/by-site"): Sample(_cobuilding, part="sites", key="site_id"),
    ("POST", "/pairings/{pairing_id}/contributions"): _command(lambda w, t: Req(
        f"/pairings/{w.pairing(t)}/contributions", {"delivered_on": "2026-04-01", "kind": "labour"})),
    ("POST", "/pairings/{pairing_id}/ending"): _command(lambda w, t: Req(
        f"/pairings/{w.pairing(t)}/ending", {"ended_on": "2026-11-20", "reason": "matrix"})),
    # statistics
    ("GET", "/statistics"): Sample(_statistics, key="area"),
    # the area's row lists the target area once a resident registers there
    ("GET", "/statistics/population"): _list(lambda w, t: w.resident(t) and t,
                                             lambda w, t: f"/statistics/population?area={t}", key="area"),
    ("GET", "/statistics/seed"): _list(lambda w, t: w.resident(t) and t, lambda w, t: f"/statistics/seed?area={t}",
                                       part="housing", key="area"),
    ("GET", "/statistics/reporting-delays"): _list(lambda w, t: w.resident(t) and t,
                                                   lambda w, t: f"/statistics/reporting-delays?area={t}", key="area"),
    # history and audit
    ("GET", "/residents/{aggregate_id}/history"): _get(lambda w, t: f"/residents/{w.resident(t)}/history"),
    ("GET", "/sites/{aggregate_id}/history"): _get(lambda w, t: f"/sites/{w.site(t)}/history"),
    ("GET", "/disputes/{aggregate_id}/history"): _get(lambda w, t: f"/disputes/{w.case(t)}/history"),
    ("GET", "/committees/{aggregate_id}/history"): _get(lambda w, t: f"/committees/{w.committee(t)}/history"),
    ("GET", "/subsidy-programs/{aggregate_id}/history"): _get(
        lambda w, t: f"/subsidy-programs/{w.program()}/history"),
    ("GET", "/subsidy-applications/{aggregate_id}/history"): _get(
        lambda w, t: f"/subsidy-applications/{w.application(t)}/history"),
    ("GET", "/operators/{aggregate_id}/history"): _get(lambda w, t: f"/operators/{w.operator(t)}/history"),
    ("GET", "/pairings/{aggregate_id}/history"): _get(lambda w, t: f"/pairings/{w.pairing(t)}/history"),
    ("GET", "/active-members/{aggregate_id}/history"): _get(
        lambda w, t: f"/active-members/{w.active_member(t)}/history"),
    ("GET", "/audit/access-log"): _get(lambda w, t: "/audit/access-log?limit=5"),
    ("GET", "/audit/checkpoints"): _get(lambda w, t: "/audit/checkpoints?limit=5"),
    # Sent as JSON here: those allowed are refused for the media type (415), after the role and area.
    ("POST", "/imports"): _command(lambda w, t: Req("/imports", {})),
    ("GET", "/imports/{job_id}"): _get(lambda w, t: f"/imports/{w.import_job()}"),
}


# -- the routes, from the app itself --------------------------------------------------------------
def _routes() -> list[RouteInfo]:
    return api_routes(create_app(Settings()))


ROUTES = _routes()


def _route_id(route: RouteInfo) -> str:
    return f"{route.method} {route.path}"


# -- what each request should get -----------------------------------------------------------------
def _text(response: httpx.Response) -> str:
    body = response.text
    return body if len(body) <= SHOWN_BODY else body[:SHOWN_BODY] + "..."


def _problem_rule(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("rule") if isinstance(body, dict) else None


def _names_field(response: httpx.Response, field: str | None) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(e, dict) and e.get("field") == field for e in errors)


def expectation(rule: Rule, method: str, role: Role, scenario: str) -> str:
    """What the rule says this role gets in this scenario, as one of:
    ``role_not_allowed``, ``area_not_allowed``, ``not_found``, ``unknown_reference``,
    ``listed`` (200, the target record shown), ``filtered`` (200, the target record not
    shown), ``authorised``."""
    if role not in rule.roles:
        return "role_not_allowed"
    area_bound = scenario != "none"
    reads_everywhere = role is Role.AUDITOR and method == "GET"  # an auditor's binding is ignored for reads
    if rule.area is AreaRule.DISTRICT and area_bound:
        return "area_not_allowed"
    if scenario == "foreign" and not reads_everywhere:
        outside = {AreaRule.OBJECT: "not_found", AreaRule.LIST: "filtered", AreaRule.CREATE: "area_not_allowed",
                   AreaRule.REFERENCE: "unknown_reference"}
        if rule.area in outside:
            return outside[rule.area]
    return "listed" if rule.area is AreaRule.LIST else "authorised"


DESCRIBED = {
    "role_not_allowed": "403 rule=role_not_allowed",
    "area_not_allowed": "403 rule=area_not_allowed",
    "not_found": "404",
    "unknown_reference": "422 naming {field}",
    "listed": "200 listing the target record",
    "filtered": "200 without the target record",
    "authorised": "authorised (GET: 200; POST: not 401/403/404, no 5xx, no request validation error)",
}


def judge(expected: str, method: str, response: httpx.Response, sample: Sample,
          listing: tuple[set[str], str] | None, req: Req) -> str | None:
    """None when the response is what was expected, else why not."""
    status = response.status_code
    if expected in ("role_not_allowed", "area_not_allowed"):
        ok = status == 403 and _problem_rule(response) == expected
    elif expected == "not_found":
        ok = status == 404
    elif expected == "unknown_reference":
        ok = status == 422 and _names_field(response, sample.field)
    elif expected in ("listed", "filtered"):
        if status != 200 or listing is None:
            return None if status == 200 else "status"
        found, consistent = listing
        shown = req.listed in found
        if shown != (expected == "listed"):
            return (f"record {req.listed} {'missing from' if expected == 'listed' else 'shown in'} the list "
                    f"({len(found)} records; X-Read-Consistent: {consistent})")
        ok = True
    elif method == "GET":
        ok = status == 200
    else:
        ok = status not in (401, 403, 404) and status < 500 and _problem_rule(response) != "validation"
    return None if ok else "status"


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(services: Services, http: httpx.Client) -> Iterator[World]:
    started = time.monotonic()
    w = World(services, http)
    yield w
    print(f"\naccess matrix: {w.requests} requests in {time.monotonic() - started:.1f}s")


# -- the tests -----------------------------------------------------------------------------------
def test_every_route_has_a_rule_and_a_sample(settings: Settings, services: Services) -> None:
    routes = api_routes(create_app(settings, services))
    assert routes, "api_routes found no routes"
    problems = [f"{_route_id(r)}: no @access rule" for r in routes if rule_of(r.endpoint) is None]
    problems += [f"{_route_id(r)}: no sample request in SAMPLES (tests/test_access_matrix.py)"
                 for r in routes if (r.method, r.path) not in SAMPLES]
    known = {(r.method, r.path) for r in routes}
    problems += [f"{method} {path}: a sample for a route the app does not have" for method, path in SAMPLES
                 if (method, path) not in known]
    for route in routes:
        rule = rule_of(route.endpoint)
        if rule is None:
            continue
        if route.method != "GET" and Role.AUDITOR in rule.roles:
            problems.append(f"{_route_id(route)}: auditors write nothing, yet the rule lets them")
        if rule.public and route.method != "GET":
            problems.append(f"{_route_id(route)}: a public route that changes something")
        if Role.SYSTEM in rule.roles:
            problems.append(f"{_route_id(route)}: the system role has no keys")
    assert {(r.method, r.path) for r in routes} == {(r.method, r.path) for r in ROUTES}, \
        "the routes at collection differ from the app's"
    assert not problems, "routes without access rule or sample:\n" + "\n".join(problems)


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
def test_access_matrix(route: RouteInfo, world: World) -> None:
    rule = rule_of(route.endpoint)
    if rule is None:
        pytest.fail(f"{_route_id(route)} has no @access rule (api/access.py): every route declares who may call it")
    sample = SAMPLES.get((route.method, route.path))
    if sample is None:
        pytest.fail(f"{_route_id(route)} has no sample request in SAMPLES (tests/test_access_matrix.py): add one")

    shared: dict[str, Req] = {}

    def request_for(area: str, allowed: bool) -> Req:
        if sample.fresh and allowed:
            return sample.build(world, area)
        if area not in shared:
            shared[area] = sample.build(world, area)
        return shared[area]

    mismatches: list[str] = []
    if rule.public:
        req = request_for(world.a, False)
        response = world.call(route.method, req, None)
        if response.status_code != 200:
            mismatches.append(f"{'(no key)':<12} {'-':<7} {route.method} {req.path}: expected 200; "
                              f"got {response.status_code} {_text(response)}")
    for role in HUMAN_ROLES:
        for scenario in SCENARIOS:
            area = world.b if scenario == "foreign" else world.a
            expected = expectation(rule, route.method, role, scenario)
            req = request_for(area, expected != "role_not_allowed")
            key = world.key(role, scenario)
            response = world.call(route.method, req, key)
            listing = None
            if expected in ("listed", "filtered") and response.status_code == 200:
                listing = world.listed(req, sample, response, key)
            why = judge(expected, route.method, response, sample, listing, req)
            if why is not None:
                wanted = DESCRIBED[expected].format(field=sample.field)
                detail = "" if why == "status" else f" ({why})"
                body = f" body={json.dumps(req.body, ensure_ascii=False)}" if req.body is not None else ""
                mismatches.append(f"{role.value:<12} {scenario:<7} {route.method} {req.path}{body}: expected "
                                  f"{wanted}; got {response.status_code}{detail} {_text(response)}")
    assert not mismatches, (
        f"{_route_id(route)} (rule: roles={sorted(r.value for r in rule.roles)}, area={rule.area.value}, "
        f"public={rule.public}) answered {len(mismatches)} requests against its rule:\n" + "\n".join(mismatches))
