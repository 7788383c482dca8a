"""A person's records keep to the days they were here and stop at an erasure; a meeting takes up a
dispute not before it happened; nothing happens at a closed site. Each found by a review, over
HTTP: a school's answer after an erasure or in an absence, a permit applied for on a day before a
departure recorded since, an erased person coming back or moving into a site, an erased active
member trained and appointed, a seat and a candidate erased or dated in an absence, a meeting of
months before the incident deciding it, a dispute logged at a closed site after it closed. Every
refusal names its rule and stores nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.factories import resident_body, site_body, unique, unique_area

ERASURE = {"legal_basis": "data_subject_request", "note": "request 2026-77"}


def ok(answer: Any) -> Any:
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def refused(answer: Any, status: int, rule: str, field: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["rule"] == rule, body
    if field is not None:
        assert body.get("field") == field or any(e.get("field") == field for e in body.get("errors", [])), body


def a_resident(api: Api, area: str, **overrides: Any) -> str:
    return str(ok(api.post("/residents", resident_body(area=area, registered_on="2026-01-05", **overrides)))["id"])


def away_and_back(api: Api, resident: str, left: str = "2026-05-01", back: str = "2026-07-01") -> None:
    ok(api.post(f"/residents/{resident}/departure", {"effective_date": left, "reason": "home"}))
    ok(api.post(f"/residents/{resident}/return", {"area": "xinqi", "effective_date": back}))


def test_a_schools_answer_is_refused_after_an_erasure_and_for_a_day_they_were_away(
        caseworker: Api, supervisor: Api, stored: Any) -> None:
    area = unique_area("School")
    erased, travelled = a_resident(caseworker, area), a_resident(caseworker, area)
    children = {}
    for resident in (erased, travelled):
        child = ok(caseworker.post(f"/residents/{resident}/dependants",
                                   {"name": "Xiao Ming", "birth_year": 2016, "relation": "child"}))
        children[resident] = child["dependant_id"]
        ok(caseworker.post(f"/residents/{resident}/school-requests", {
            "dependant_id": children[resident], "school": "Ginkgo School", "requested_on": "2026-03-01"}))
    ok(supervisor.post(f"/residents/{erased}/erasure", ERASURE))
    away_and_back(caseworker, travelled)
    before = stored()
    refused(caseworker.post(f"/residents/{erased}/school-placements", {
        "dependant_id": children[erased], "school": "Ginkgo School", "placed_on": "2026-11-20"}), 409, "already_erased")
    refused(caseworker.post(f"/residents/{travelled}/school-refusals", {
        "dependant_id": children[travelled], "school": "Ginkgo School", "refused_on": "2026-06-01",
        "reason": "full"}), 409, "resident_away_then", "refused_on")
    assert before.unchanged()
    ok(caseworker.post(f"/residents/{travelled}/school-placements", {  # back, the answer is taken
        "dependant_id": children[travelled], "school": "Ginkgo School", "placed_on": "2026-08-01"}))


def test_a_permit_is_not_applied_for_on_a_day_before_their_latest_arrival(caseworker: Api, stored: Any) -> None:
    resident = a_resident(caseworker, "xinqi")
    ok(caseworker.post(f"/residents/{resident}/moves", {
        "area": "xinqi", "effective_date": "2026-01-10",
        "housing": {"kind": "rented", "address": "12 Ginkgo Lane", "landlord": "Wang"}}))
    away_and_back(caseworker, resident, "2026-08-01", "2026-09-01")
    before = stored()
    refused(caseworker.post(f"/residents/{resident}/permit", {"applied_on": "2026-07-20"}), 409,
            "applied_before_arrival", "applied_on")
    assert before.unchanged()
    # on the day they came back they have not lived six months here since: the rule of eligibility says so
    refused(caseworker.post(f"/residents/{resident}/permit", {"applied_on": "2026-09-01"}), 409,
            "permit_not_eligible")


def test_an_erased_person_does_not_come_back_nor_move_in_but_still_frees_a_bed(
        caseworker: Api, supervisor: Api, stored: Any) -> None:
    site = str(ok(supervisor.post("/sites", site_body(name=unique("Ginkgo"), capacity=5)))["id"])
    gone, housed, rented = (a_resident(caseworker, "xinqi") for _ in range(3))
    ok(caseworker.post(f"/residents/{gone}/departure", {"effective_date": "2026-10-01", "reason": "home"}))
    ok(caseworker.post(f"/residents/{housed}/moves", {"site_id": site, "effective_date": "2026-02-01"}))
    for resident in (gone, housed, rented):
        ok(supervisor.post(f"/residents/{resident}/erasure", ERASURE))
    before = stored()
    refused(caseworker.post(f"/residents/{gone}/return", {"area": "xinqi", "effective_date": "2026-11-01"}),
            409, "already_erased")
    refused(caseworker.post(f"/residents/{rented}/moves", {"site_id": site, "effective_date": "2026-11-01"}),
            409, "already_erased")
    refused(caseworker.post(f"/residents/{rented}/moves", {
        "area": "xinqi", "effective_date": "2026-11-01",
        "housing": {"kind": "rented", "address": "3 Lane", "landlord": "Zhao"}}), 409, "already_erased")
    refused(caseworker.post("/disputes", {"category": "housing", "description": "a leaking roof", "area": "xinqi",
                                          "parties": [{"resident_id": rented}], "occurred_on": "2026-11-20"}),
            409, "already_erased")
    assert before.unchanged()
    ok(caseworker.post(f"/residents/{housed}/moves", {"area": "xinqi", "effective_date": "2026-11-01"}))
    assert supervisor.get(f"/sites/{site}").json()["occupants"] == 0


def test_an_erased_active_member_is_not_trained_nor_appointed_and_may_still_be_lost(
        caseworker: Api, supervisor: Api, stored: Any) -> None:
    area = unique_area("Active")
    resident = a_resident(caseworker, area)
    member = ok(caseworker.post("/active-members", {"resident_id": resident, "identified_on": "2026-10-01"}))["id"]
    ok(supervisor.post(f"/residents/{resident}/erasure", ERASURE))
    before = stored()
    refused(caseworker.post(f"/active-members/{member}/trainings", {"course": "mediation", "trained_on": "2026-11-01"}),
            409, "already_erased")
    refused(caseworker.post(f"/active-members/{member}/appointments", {"role": "group_leader",
                                                                        "appointed_on": "2026-11-01"}),
            409, "already_erased")
    refused(caseworker.post(f"/active-members/{member}/employer-liaisons", {
        "employer": "Hengli", "agreed_on": "2026-11-01", "note": "night shifts off"}), 409, "already_erased")
    assert before.unchanged()
    ok(caseworker.post(f"/active-members/{member}/loss", {"lost_on": "2026-11-02", "reason": "resigned"}))


def test_a_seat_and_a_candidate_are_refused_to_an_erased_person_and_for_a_day_they_were_away(
        caseworker: Api, supervisor: Api, stored: Any) -> None:
    area = unique_area("Seats")
    erased, travelled = a_resident(caseworker, area), a_resident(caseworker, area)
    ok(supervisor.post(f"/residents/{erased}/erasure", ERASURE))
    away_and_back(caseworker, travelled)
    committee = ok(supervisor.post("/committees", {"name": unique("Committee"), "area": area,
                                                   "established_on": "2026-02-01", "members": [{"name": "Wang"}]}))
    site = str(ok(supervisor.post("/sites", site_body(name=unique("Ginkgo"), area=area)))["id"])
    before = stored()
    refused(supervisor.post("/committees", {"name": unique("Committee"), "area": area, "established_on": "2026-08-01",
                                            "members": [{"name": "Qian", "resident_id": erased}]}),
            409, "already_erased")
    refused(supervisor.post(f"/committees/{committee['id']}/members", {
        "name": "Sun", "resident_id": travelled, "joined_on": "2026-06-01"}), 409, "resident_away_then", "joined_on")
    refused(supervisor.post(f"/sites/{site}/preparation", {
        "approved_on": "2026-06-01", "group": [{"name": "Sun", "resident_id": travelled}]}),
        409, "resident_away_then", "approved_on")
    assert before.unchanged()
    ok(supervisor.post(f"/committees/{committee['id']}/members", {  # back, they take the seat
        "name": "Sun", "resident_id": travelled, "joined_on": "2026-08-01"}))


def test_a_meeting_takes_up_a_dispute_not_before_it_happened(caseworker: Api, supervisor: Api, stored: Any) -> None:
    area = unique_area("Meeting")
    committee = ok(supervisor.post("/committees", {"name": unique("Committee"), "area": area,
                                                   "established_on": "2026-01-01", "members": [{"name": "Wang"}]}))
    case = ok(caseworker.post("/disputes", {"category": "housing", "description": "a leaking roof", "area": area,
                                            "parties": [{"name": "Zhao", "kind": "landlord"}],
                                            "occurred_on": "2026-11-20"}))["id"]
    before = stored()
    refused(supervisor.post(f"/committees/{committee['id']}/meetings", {
        "scheduled_on": "2026-05-01", "agenda": [{"title": "the roof", "dispute_id": case}]}),
        409, "meeting_before_incident", "agenda.0.dispute_id")
    assert before.unchanged()
    early = ok(supervisor.post(f"/committees/{committee['id']}/meetings", {
        "scheduled_on": "2026-05-01", "agenda": [{"title": "bins"}]}))["meeting_id"]
    before = stored()
    refused(supervisor.post(f"/committees/{committee['id']}/meetings/{early}/agenda", {
        "items": [{"title": "the roof", "dispute_id": case}]}), 409, "meeting_before_incident", "items.0.dispute_id")
    assert before.unchanged()
    # scheduled after it, the minutes of a meeting held before it do not decide it
    meeting = ok(supervisor.post(f"/committees/{committee['id']}/meetings", {
        "scheduled_on": "2026-11-21", "agenda": [{"title": "the roof", "dispute_id": case}]}))
    members = [m["member_id"] for m in supervisor.get(f"/committees/{committee['id']}").json()["members"]]
    before = stored()
    minutes = supervisor.post(f"/committees/{committee['id']}/meetings/{meeting['meeting_id']}/minutes", {
        "held_on": "2026-11-19", "attendees": members,
        "decisions": [{"item_id": "1", "decision": "the landlord repairs the roof"}]})
    refused(minutes, 409, "meeting_before_incident", "held_on")
    assert before.unchanged()


def test_a_dispute_is_not_logged_at_a_site_after_it_closed(caseworker: Api, supervisor: Api, stored: Any) -> None:
    site = str(ok(supervisor.post("/sites", site_body(name=unique("Ginkgo"))))["id"])
    ok(supervisor.post(f"/sites/{site}/closure", {"closed_on": "2026-10-01", "reason": "demolished"}))
    body = {"category": "housing", "description": "a leaking roof", "site_id": site,
            "parties": [{"name": "Zhao", "kind": "landlord"}], "occurred_on": "2026-11-20"}
    before = stored()
    refused(caseworker.post("/disputes", body), 409, "site_closed", "occurred_on")
    assert before.unchanged()
    ok(caseworker.post("/disputes", {**body, "occurred_on": "2026-09-20"}))  # told late, of a day it still ran
