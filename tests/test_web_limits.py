"""The web forms take no more text than the API does (found by a review: a case's description of
20,000 characters, a party's name of 5,000, a payment reference of 300 were stored, which the
API refuses above 4000, 100 and 64). Each field one character over the API's limit is refused
422 on that field with the limit in words, in both languages, keeps what was typed and stores
nothing; the limits are read from the API's own bodies."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.routes.disputes import DisputeCreate
from api.routes.subsidies import SubsidyPaymentCreate
from api.web.core import api_limits
from tests.conftest import Api
from tests.factories import resident_body, unique
from tests.test_web_money import created, program_and_site
from tests.test_web_sites import Html, Staff, new_site, web

__all__ = ["web"]
WORDS = {"en": "At most {n} characters.", "zh-CN": "\u6700\u591a {n} \u4e2a\u5b57\u3002"}  # 最多 N 个字。


def refused_as_too_long(session: Staff, path: str, data: dict[str, Any], field: str, most: int, stored: Any,
                        lang: str = "en", words: str | None = None) -> Html:
    """``data`` posted with ``field`` one character longer than ``most``: refused on the field."""
    long_text = "\u957f" * (most + 1)  # 长: a character, as a person counts it
    before = stored()
    answer = session.post(f"{path}?lang={lang}", {**data, field: long_text})
    assert answer.status_code == 422, (path, field, answer.status_code, answer.text[:1000])
    shown = Html(answer.text)
    expected = words or WORDS[lang].format(n=most)
    assert shown.errors.get(field) == expected, (path, field, shown.errors, shown.problems)
    assert [rule for rule, _ in shown.problems] == ["too_long"], shown.problems
    assert not shown.untied_errors(), (path, field, shown.untied_errors())
    assert long_text in answer.text, (path, field)  # what was typed is kept
    assert before.unchanged(), (path, field)
    return shown


def open_case(caseworker: Api, area: str = "xinqi", **body: Any) -> str:
    return created(caseworker.post("/disputes", {
        "category": "neighbours", "description": "noise at night", "area": area, "occurred_on": "2026-11-01",
        "parties": [{"name": "Room 12", "kind": "other"}], **body}))


def test_the_limits_are_the_api_bodies_own() -> None:
    assert api_limits(DisputeCreate, "description") == {"description": 4000}
    assert api_limits(SubsidyPaymentCreate, ref="reference") == {"ref": 64}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_case_form_refuses_a_description_or_a_party_name_longer_than_the_api_takes(
        web: Any, stored: Any, lang: str) -> None:
    worker = web("caseworker")
    typed = {"category": "neighbours", "priority": "normal", "occurred_on": "2026-11-20", "area": "xinqi",
             "description": "noise at night", "party_name_1": "Room 12", "party_kind_1": "other",
             "party_kind_2": "employer"}
    refused_as_too_long(worker, "/ui/cases/new", typed, "description", 4000, stored, lang)
    refused_as_too_long(worker, "/ui/cases/new", typed, "party_name_1", 100, stored, lang)
    refused_as_too_long(worker, "/ui/cases/new", typed, "party_name_2", 100, stored, lang)


def test_a_case_s_forms_refuse_a_note_a_reason_or_a_participant_longer_than_the_api_takes(
        web: Any, caseworker: Api, supervisor: Api, stored: Any) -> None:
    case = open_case(caseworker)
    worker = web("caseworker")
    assigned = supervisor.post(f"/disputes/{case}/assignment", {"assignee": "test-caseworker"})
    assert assigned.status_code == 200, assigned.text  # mediation is for an assigned case
    refused_as_too_long(worker, f"/ui/cases/{case}/note", {}, "text", 4000, stored)
    refused_as_too_long(worker, f"/ui/cases/{case}/escalate", {"to": "management_committee"}, "reason", 500,
                        stored)
    mediation = {"held_on": "2026-11-20", "participants": "Li Wei", "mediation_outcome": "agreed"}
    refused_as_too_long(worker, f"/ui/cases/{case}/mediation", mediation, "mediation_outcome", 4000, stored)
    refused_as_too_long(worker, f"/ui/cases/{case}/mediation", mediation, "participants", 100, stored,
                        words="Each name has at most 100 characters.")
    assert caseworker.get(f"/disputes/{case}").json()["status"] == "assigned"


def test_the_subsidy_forms_refuse_text_longer_than_the_api_takes(
        web: Any, supervisor: Api, caseworker: Api, stored: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.web.pages import subsidies as page_module

    # One row a page: the row refused from the queue is shown with its error wherever it falls in the
    # list (found when the suite's other applications pushed it off the first page).
    monkeypatch.setattr(page_module, "PAGE_SIZE", 1)
    program, site, _ = program_and_site(supervisor)
    earlier = created(caseworker.post("/subsidy-applications", {
        "program_id": program, "site_id": site, "amount": "10.00", "mode": "one_off", "justification": "paint"}))
    assert supervisor.post(f"/subsidy-applications/{earlier}/approvals", {}).status_code == 200
    staff = web("caseworker")
    typed = {"program_id": program, "site_id": site, "amount": "1000.00", "mode": "one_off",
             "justification": "a canteen"}
    refused_as_too_long(staff, "/ui/subsidies/new", typed, "justification", 500, stored)
    application = created(caseworker.post("/subsidy-applications", typed))
    boss = web("supervisor")
    refused_as_too_long(boss, f"/ui/subsidies/{application}/approve", {}, "note", 500, stored)
    refused_as_too_long(boss, f"/ui/subsidies/{application}/reject", {}, "reason", 500, stored)
    assert supervisor.post(f"/subsidy-applications/{application}/approvals", {}).status_code == 200
    finance = web("finance")
    paying = {"amount": "100.00", "reference": "FIN-1", "paid_on": "2026-11-25"}
    refused_as_too_long(finance, f"/ui/subsidies/{application}/pay", paying, "reference", 64, stored)
    # from the queue's row too, where the error stands beside the row's field
    refused_as_too_long(finance, f"/ui/subsidies/{application}/pay", {**paying, "back": "queue"}, "reference", 64,
                        stored, "zh-CN")
    assert caseworker.get(f"/subsidy-applications/{application}").json()["paid"] == "0.00"


def test_the_subsidy_forms_refuse_blank_texts_too_many_instalments_and_tie_an_overpayment_to_its_amount(
        web: Any, supervisor: Api, caseworker: Api, stored: Any) -> None:
    """Found by a review: a rejection without a reason, a payment without a reference and an
    outcome verified without a note were stored from the pages (the API refuses them), 25
    instalments were taken (the API takes 24), and a payment over what is due was said in the
    banner only."""
    program, site, _ = program_and_site(supervisor)
    typed = {"program_id": program, "site_id": site, "amount": "1000.00", "mode": "one_off",
             "justification": "a canteen"}
    application = created(caseworker.post("/subsidy-applications", typed))
    boss, finance, staff = web("supervisor"), web("finance"), web("caseworker")

    def refused(session: Staff, path: str, data: dict[str, Any], field: str, status: int = 422) -> None:
        before = stored()
        answer = session.post(f"{path}?lang=en", data)
        assert answer.status_code == status, (path, answer.status_code, answer.text[:800])
        shown = Html(answer.text)
        assert field in shown.errors and not shown.untied_errors(), (path, shown.errors, shown.problems)
        assert before.unchanged(), path

    refused(boss, f"/ui/subsidies/{application}/reject", {"reason": "   "}, "reason")
    assert supervisor.post(f"/subsidy-applications/{application}/approvals", {}).status_code == 200
    refused(finance, f"/ui/subsidies/{application}/pay", {"amount": "100.00", "reference": " ",
                                                          "paid_on": "2026-11-25"}, "reference")
    refused(finance, f"/ui/subsidies/{application}/pay", {"amount": "5000.00", "reference": "FIN-9",
                                                          "paid_on": "2026-11-25"}, "amount", status=409)
    lines = "\n".join(f"40.00 2027-01-{day:02d}" for day in range(1, 26))
    refused(staff, "/ui/subsidies/new", {**typed, "mode": "phased", "instalments": lines}, "instalments")


def committee_with_a_meeting(supervisor: Api, caseworker: Api) -> tuple[str, str, list[str]]:
    area = "xinqi"
    committee = created(supervisor.post("/committees", {
        "name": unique("\u94f6\u674f\u7ba1\u59d4\u4f1a"), "area": area, "established_on": "2026-06-01",
        "members": [{"name": n} for n in ("Wang", "Li", "Zhao")]}))
    members = [m["member_id"] for m in supervisor.get(f"/committees/{committee}").json()["members"]]
    meeting = caseworker.post(f"/committees/{committee}/meetings", {
        "scheduled_on": "2026-11-24", "agenda": [{"title": "Sanitation rota"}, {"title": "Wages"}]})
    assert meeting.status_code == 200, meeting.text
    return committee, meeting.json()["meeting_id"], members


def test_the_committee_forms_refuse_text_longer_than_the_api_takes(
        web: Any, supervisor: Api, caseworker: Api, stored: Any) -> None:
    committee, meeting, members = committee_with_a_meeting(supervisor, caseworker)
    worker = web("caseworker")
    refused_as_too_long(worker, f"/ui/committees/{committee}/meetings", {"scheduled_on": "2026-12-05"},
                        "title_1", 200, stored)
    minutes = f"/ui/committees/{committee}/meetings/{meeting}/minutes"
    typed = {"held_on": "2026-11-24", "attendee": members[:2], "decision_1": "a rota",
             "action_1": "draw up the rota", "owner_1": members[0], "due_1": "2026-12-10"}
    refused_as_too_long(worker, minutes, typed, "decision_1", 2000, stored)
    refused_as_too_long(worker, minutes, typed, "action_1", 500, stored)
    assert worker.post(minutes, typed).status_code == 303
    page = worker.client.get(f"/ui/committees/{committee}?lang=en").text
    action = re.search(r'data-action-id="([^"]+)"', page)
    assert action, page[:2000]
    refused_as_too_long(worker, f"/ui/committees/{committee}/actions/{action.group(1)}/done",
                        {"done_on": "2026-11-25"}, "note", 500, stored)
    boss = web("supervisor")
    refused_as_too_long(boss, f"/ui/committees/{committee}/members", {"joined_on": "2026-11-01"}, "name", 100,
                        stored)
    refused_as_too_long(boss, f"/ui/committees/{committee}/member-removals",
                        {"member_id": members[2], "left_on": "2026-11-20", "confirm": "yes"}, "reason", 500, stored)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_resident_forms_refuse_text_longer_than_the_api_takes(
        web: Any, caseworker: Api, stored: Any, lang: str) -> None:
    worker = web("caseworker")
    typed = {k: str(v) for k, v in resident_body().items() if isinstance(v, str)}
    typed["registered_on"] = "2026-11-01"
    refused_as_too_long(worker, "/ui/residents/new", typed, "name", 100, stored, lang)  # the limit named (item 9)
    refused_as_too_long(worker, "/ui/residents/new", typed, "landlord", 100, stored, lang)
    resident = created(caseworker.post("/residents", resident_body()))
    moving = {"area": "xinqi", "housing_kind": "rented", "effective_date": "2026-11-20"}
    refused_as_too_long(worker, f"/ui/residents/{resident}/move-out", moving, "landlord", 100, stored, lang)
    refused_as_too_long(worker, f"/ui/residents/{resident}/move-out", moving, "address", 200, stored, lang)
    refused_as_too_long(worker, f"/ui/residents/{resident}/departure",
                        {"effective_date": "2026-11-20", "confirm": "yes"}, "reason", 500, stored, lang)
    refused_as_too_long(worker, f"/ui/residents/{resident}/dependants",
                        {"birth_year": "2018", "relation": "child"}, "name", 100, stored, lang)


def test_the_site_operator_and_pairing_forms_refuse_text_longer_than_the_api_takes(
        web: Any, supervisor: Api, stored: Any) -> None:
    site = new_site(supervisor)
    boss = web("supervisor")
    refused_as_too_long(boss, f"/ui/sites/{site}/closure", {"closed_on": "2026-11-20", "confirm": "yes"}, "reason",
                        500, stored)
    refused_as_too_long(boss, f"/ui/sites/{site}/assessment",
                        {"assessed_on": "2026-11-20", "headcount": "600", "operator_status": "clear",
                         "villages": "Yanhai"}, "note", 500, stored)
    refused_as_too_long(boss, "/ui/operators/new", {"type": "employer", "contact": "Chen", "area": "xinqi"},
                        "name", 100, stored)
    refused_as_too_long(boss, "/ui/pairings/new", {"site_id": site, "partner_type": "enterprise",
                                                   "agreed_on": "2026-11-01"}, "partner_name", 100, stored)
