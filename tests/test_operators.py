"""Operators over real HTTP and PostgreSQL: registration with a sealed contact, the sites an
operator runs (one operator per site, also when two race for it), an employer's employees,
yearly reports and their corrections with the reinvestment ratio, sanitation inspections and
the site's trend, support per bed and per resident by operator type, bad input that stores
nothing, and the operators view equal to a fold of the events."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import psycopg.rows
import pytest

from application.services import Services
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber
from domain.operators import Operator
from tests.conftest import NOW, Api, issue_key
from tests.factories import id_number, resident_body, site_body, unique, unique_area
from tests.test_bad_input import assert_problem

SUPERVISOR = Stamp(Actor("ops-supervisor", Role.SUPERVISOR), NOW)
REPORT = {"year": 2025, "income_from_site": "200000.00", "reinvested_management": "20000.00",
          "reinvested_sanitation": "10000.00", "reinvested_facilities": "30000.00"}


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def done(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def operator_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "village_cooperative", "name": unique("Yanhai Cooperative"),
                            "contact": "Chen Jie 13800000000", "area": "xinqi"}
    body.update(overrides)
    return body


def register(api: Api, **overrides: Any) -> str:
    return created(api.post("/operators", operator_body(**overrides)))


def a_site(api: Api, **overrides: Any) -> str:
    return created(api.post("/sites", site_body(**overrides)))


def assign(api: Api, operator: str, site: str, assigned_on: str = "2026-01-01") -> httpx.Response:
    return api.post(f"/operators/{operator}/sites", {"site_id": site, "assigned_on": assigned_on})


# -- operators and their sites --------------------------------------------------------------
def test_an_operator_runs_sites_one_at_a_time_and_shows_its_contact_only_to_those_who_may_read_it(
    supervisor: Api, as_role: Any, services: Services
) -> None:
    operator = register(supervisor)
    site = a_site(supervisor)
    done(assign(supervisor, operator, site))
    doc = supervisor.get(f"/operators/{operator}")
    assert doc.headers["ETag"] == f'"{doc.json()["version"]}"'
    body = doc.json()
    assert (body["type"], body["contact"], body["area"]) == ("village_cooperative", "Chen Jie 13800000000", "xinqi")
    assert [s["site_id"] for s in body["sites"]] == [site]
    assert as_role("api_consumer").get(f"/operators/{operator}").json()["contact"] is None
    with services.pool.connection() as conn:  # the contact is sealed in the store
        row = conn.execute("SELECT state FROM liudong_events WHERE originator_id = %s AND originator_version = 1",
                           (UUID(operator),)).fetchone()
    assert row is not None and b"Chen Jie" not in bytes(row["state"])

    other = register(supervisor, type="employer")
    taken = assign(supervisor, other, site, "2026-02-01")
    assert_problem(taken, 409, rule="site_run_by_another_operator")
    assert taken.json()["operator_id"] == operator
    done(supervisor.post(f"/operators/{operator}/site-releases",
                         {"site_id": site, "released_on": "2026-06-30", "reason": "lease ended"}))
    last = done(assign(supervisor, other, site, "2026-07-01"))
    assert supervisor.get(f"/operators/{operator}").json()["sites"] == []
    listed = supervisor.get("/operators", params={"after": last["position"], "limit": 500, "type": "employer"})
    assert listed.headers["X-Read-Consistent"] == "true"
    (row_other,) = [o for o in listed.json()["items"] if o["id"] == other]
    assert [s["site_id"] for s in row_other["sites"]] == [site]


def test_a_contact_change_is_sealed_an_erasure_destroys_every_contact_and_reads_are_logged(
    supervisor: Api, caseworker: Api, as_role: Any, services: Services
) -> None:
    operator = register(supervisor)
    done(supervisor.post(f"/operators/{operator}/contact", {"contact": "Wang Li 13900000001",
                                                            "changed_on": "2026-11-01"}))
    assert supervisor.get(f"/operators/{operator}").json()["contact"] == "Wang Li 13900000001"
    assert caseworker.post(f"/operators/{operator}/contact-erasure",
                           {"legal_basis": "data_subject_request", "note": "x"}).status_code == 403
    as_role("api_consumer").get(f"/operators/{operator}")  # sees no contact: not a read of personal data
    with services.pool.connection() as conn:
        reads = conn.execute("SELECT role FROM access_log WHERE detail = %s", (operator,)).fetchall()
        changed = conn.execute("SELECT state FROM liudong_events WHERE originator_id = %s AND originator_version = 2",
                               (UUID(operator),)).fetchone()
    assert [r["role"] for r in reads] == ["supervisor"]
    assert changed is not None and b"Wang Li" not in bytes(changed["state"])

    # The note outlives the erasure: it must not spell out what it erases (found by a review).
    for note in ("Wang Li asked for it", "caller 13900000001", "wang  li"):
        naming = supervisor.post(f"/operators/{operator}/contact-erasure",
                                 {"legal_basis": "data_subject_request", "note": note})
        assert_problem(naming, 422, rule="note_names_the_contact")
    erased = done(supervisor.post(f"/operators/{operator}/contact-erasure",
                                  {"legal_basis": "data_subject_request", "note": "request 2026-117"}))
    body = supervisor.get(f"/operators/{operator}", headers={"Accept-Language": "en"}).json()
    assert (body["contact"], body["contact_erased_on"]) == ("[erased]", NOW.date().isoformat())
    contact_keys = [UUID(operator), *services.app.load(Operator, UUID(operator)).contact_keys]
    with services.pool.connection() as conn:
        keys = conn.execute("SELECT wrapped FROM pii_keys WHERE kind = 'operator' AND key_id = ANY(%s)",
                            (contact_keys,)).fetchall()
    assert len(keys) == 2 and all(k["wrapped"] is None for k in keys)
    history = supervisor.get(f"/operators/{operator}/history", headers={"Accept-Language": "en"}).json()["items"]
    assert [e["event"] for e in history] == ["Operator.Registered", "Operator.ContactChanged",
                                             "Operator.ContactErased"]
    assert history[-1]["position"] == erased["position"]
    assert_problem(supervisor.post(f"/operators/{operator}/contact-erasure",
                                   {"legal_basis": "retention_expired", "note": "again"}), 409, rule="already_erased")
    # A new contact person afterwards is sealed under a key of its own, and readable.
    done(supervisor.post(f"/operators/{operator}/contact", {"contact": "Zhao Min 13700000002",
                                                            "changed_on": "2026-11-20"}))
    body = supervisor.get(f"/operators/{operator}").json()
    assert (body["contact"], body["contact_erased_on"]) == ("Zhao Min 13700000002", None)


def test_former_contacts_are_erased_when_their_retention_ends_and_the_current_one_stays(
    supervisor: Api, services: Services, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = register(supervisor, contact="Li Na 13900000009")
    done(supervisor.post(f"/operators/{operator}/contact", {"contact": "Wang Li 13900000001",
                                                            "changed_on": "2026-01-10"}))
    done(supervisor.post(f"/operators/{operator}/contact", {"contact": "Zhao Min 13700000002",
                                                            "changed_on": "2026-11-01"}))
    first_key, second_key, current_key = UUID(operator), *services.app.load(Operator, UUID(operator)).contact_keys

    def wrapped() -> dict[UUID, bool]:
        with services.pool.connection() as conn:
            rows = conn.execute("SELECT key_id, wrapped IS NOT NULL AS kept FROM pii_keys WHERE key_id = ANY(%s)",
                                ([first_key, second_key, current_key],)).fetchall()
        return {r["key_id"]: r["kept"] for r in rows}

    def contacts() -> list[str]:
        """The contacts as the stored events read now (a destroyed key reads as erased)."""
        services.app.vault.forget([first_key, second_key, current_key])  # no process-local memory of keys
        return [e.contact for e in services.app.events.get(UUID(operator)) if hasattr(e, "contact")]

    # The sweep finds the operators in their view: a view behind the store leaves one for the next sweep.
    assert services.wait_for("operators", services.head(), 30)
    services.contact_retention_sweep()  # three years from each replacement: nothing is due
    assert wrapped() == {first_key: True, second_key: True, current_key: True}
    monkeypatch.setattr(clock, "now", NOW.replace(year=2029, month=6))  # the first was replaced 2026-01-10
    assert services.contact_retention_sweep() >= 1
    assert wrapped() == {first_key: False, second_key: True, current_key: True}
    assert contacts() == ["[erased]", "Wang Li 13900000001", "Zhao Min 13700000002"]
    history = supervisor.get(f"/operators/{operator}/history", headers={"Accept-Language": "en"}).json()["items"]
    assert history[-1]["summary"] == "Former contact persons replaced before 2026-06-25 erased (retention)"
    last = list(services.app.events.get(UUID(operator)))[-1]
    assert (type(last).__name__, last.legal_basis, last.actor_id) == ("FormerContactsErased", "retention_expired",
                                                                      "system")
    version = services.app.load(Operator, UUID(operator)).version
    services.contact_retention_sweep()
    assert services.app.load(Operator, UUID(operator)).version == version  # once
    monkeypatch.setattr(clock, "now", NOW.replace(year=2030))
    services.contact_retention_sweep()
    assert wrapped() == {first_key: False, second_key: False, current_key: True}
    assert contacts() == ["[erased]", "[erased]", "Zhao Min 13700000002"]
    assert supervisor.get(f"/operators/{operator}").json()["contact"] == "Zhao Min 13700000002"
    # An erasure on request afterwards takes the current one too.
    done(supervisor.post(f"/operators/{operator}/contact-erasure",
                         {"legal_basis": "data_subject_request", "note": "request 2030-1"}))
    assert wrapped() == {first_key: False, second_key: False, current_key: False}


def test_two_operators_racing_for_one_site_one_wins(base_url: str, keys: dict[str, str], supervisor: Api) -> None:
    site = a_site(supervisor)
    racers = [register(supervisor) for _ in range(6)]

    def take(operator: str) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:  # separate connections: truly concurrent
            return client.post(f"/operators/{operator}/sites", json={"site_id": site, "assigned_on": "2026-03-01"},
                               headers={"Authorization": f"Bearer {keys['supervisor']}"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(take, racers))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 5, [r.text for r in responses]
    assert {r.json()["rule"] for r in responses if r.status_code == 409} == {"site_run_by_another_operator"}
    winners = [o for o in racers
               if any(s["site_id"] == site for s in supervisor.get(f"/operators/{o}").json()["sites"])]
    assert len(winners) == 1


def test_a_site_as_of_a_date_names_the_operator_that_ran_it_then(supervisor: Api) -> None:
    """Found by a review: the take-over counted from the day it was recorded, and the site as of
    any date named the operator record that runs it today, beside the old operator's name."""
    site = a_site(supervisor)
    registered = supervisor.get(f"/sites/{site}").json()["operator"]
    operator = register(supervisor, type="employer", name=unique("Shenzhou"))
    done(assign(supervisor, operator, site, assigned_on="2026-01-01"))
    before = supervisor.get(f"/sites/{site}", params={"effective_at": "2025-12-31"}).json()["operator"]
    assert before == {**registered, "id": None}
    after = supervisor.get(f"/sites/{site}", params={"effective_at": "2026-06-01"}).json()["operator"]
    assert (after["type"], after["id"]) == ("employer", operator)
    assert supervisor.get(f"/sites/{site}").json()["operator"]["id"] == operator
    changed = [e for e in supervisor.get(f"/sites/{site}/history").json()["items"]
               if e["event"] == "HousingSite.OperatorChanged"]
    assert [e["effective_date"] for e in changed] == ["2026-01-01"]
    # Let go, the site is run by the operator before it again (found by a review: a released site
    # went on naming the operator that let it go).
    done(supervisor.post(f"/operators/{operator}/site-releases", {"site_id": site, "released_on": "2026-11-01",
                                                                  "reason": "lease ended"}))
    assert supervisor.get(f"/sites/{site}").json()["operator"] == {**registered, "id": None}
    during = supervisor.get(f"/sites/{site}", params={"effective_at": "2026-06-01"}).json()["operator"]
    assert (during["type"], during["id"]) == ("employer", operator)
    changed = [e for e in supervisor.get(f"/sites/{site}/history").json()["items"]
               if e["event"] == "HousingSite.OperatorChanged"]
    assert [e["effective_date"] for e in changed] == ["2026-01-01", "2026-11-01"]
    # another record takes it over and lets it go: the one before is back
    second = register(supervisor, type="employer", name=unique("Youngor"))
    done(assign(supervisor, second, site, assigned_on="2026-11-10"))
    done(supervisor.post(f"/operators/{second}/site-releases", {"site_id": site, "released_on": "2026-11-20",
                                                                "reason": "moved out"}))
    assert supervisor.get(f"/sites/{site}").json()["operator"] == {**registered, "id": None}


def test_only_an_employer_operator_links_employees(supervisor: Api, caseworker: Api) -> None:
    resident = created(caseworker.post("/residents", resident_body()))
    cooperative = register(supervisor)
    refused = caseworker.post(f"/operators/{cooperative}/employees",
                              {"resident_id": resident, "linked_on": "2026-04-01"})
    assert_problem(refused, 409, rule="employees_only_for_employer_operator")
    employer = register(supervisor, type="employer", name=unique("Shenzhou Knitting"))
    done(caseworker.post(f"/operators/{employer}/employees", {"resident_id": resident, "linked_on": "2026-04-01"}))
    again = caseworker.post(f"/operators/{employer}/employees", {"resident_id": resident, "linked_on": "2026-04-02"})
    assert_problem(again, 409, rule="employee_already_linked")
    assert supervisor.get(f"/operators/{employer}").json()["employees"] == [
        {"resident_id": resident, "linked_on": "2026-04-01"}]
    done(caseworker.post(f"/operators/{employer}/employee-removals",
                         {"resident_id": resident, "unlinked_on": "2026-09-01"}))
    assert supervisor.get(f"/operators/{employer}").json()["employees"] == []


def test_yearly_reports_give_the_reinvestment_ratio_and_a_correction_replaces_the_figures(
    supervisor: Api, caseworker: Api
) -> None:
    operator = register(supervisor)
    done(caseworker.post(f"/operators/{operator}/reports", REPORT))
    done(caseworker.post(f"/operators/{operator}/reports", {**REPORT, "year": 2024, "income_from_site": "0.00"}))
    twice = caseworker.post(f"/operators/{operator}/reports", REPORT)
    assert_problem(twice, 409, rule="report_already_filed")
    last = done(supervisor.post(f"/operators/{operator}/report-corrections",
                                {**REPORT, "reinvested_sanitation": "30000.00", "reason": "late receipts"}))
    reports = supervisor.get(f"/operators/{operator}").json()["reports"]
    assert [(r["year"], r["reinvestment_ratio"], r["corrected"]) for r in reports] == [
        (2024, None, False), (2025, "0.4000", True)]
    listed = supervisor.get("/operators", params={"after": last["position"], "area": "xinqi", "limit": 500})
    (row,) = [o for o in listed.json()["items"] if o["id"] == operator]
    assert [(r["year"], r["reinvested"], r["reinvestment_ratio"]) for r in row["reports"]] == [
        (2024, "60000.00", None), (2025, "80000.00", "0.4000")]


def test_why_a_report_was_corrected_is_sealed_and_erased_with_a_resident_it_names(
        supervisor: Api, caseworker: Api, services: Services) -> None:
    """Found by a review: the reason for a correction, free text that may name who misreported,
    was the one operator text stored in plain."""
    from application.store import EVENTS_TABLE

    operator = register(supervisor)
    done(caseworker.post(f"/operators/{operator}/reports", REPORT))
    done(supervisor.post(f"/operators/{operator}/report-corrections",
                         {**REPORT, "reinvested_sanitation": "30000.00", "reason": "Qin Hai misread the receipts"}))
    with services.pool.connection() as conn:
        rows = conn.execute(f"SELECT state FROM {EVENTS_TABLE} WHERE originator_id = %s", (UUID(operator),)).fetchall()
    assert not any(b"Qin Hai" in bytes(r["state"]) for r in rows)
    resident = caseworker.post("/residents", resident_body(name="Qin Hai")).json()["id"]
    erased = done(supervisor.post(f"/residents/{resident}/erasure", {"legal_basis": "data_subject_request",
                                                                     "note": "request 2026-318"}))
    assert erased["texts_erased"] >= 1
    reasons = [e.get("reason") for e in supervisor.get(f"/operators/{operator}/history").json()["items"]]
    assert not any(r and "Qin Hai" in r for r in reasons)


def test_sanitation_inspections_of_a_site_show_their_trend_across_operators(
    supervisor: Api, caseworker: Api, as_role: Any
) -> None:
    site = a_site(supervisor)
    first, second = register(supervisor), register(supervisor, type="government_entrusted")
    done(assign(supervisor, first, site, "2026-01-01"))
    for inspected_on, score in (("2026-03-01", 60), ("2026-02-01", 55)):
        done(caseworker.post(f"/operators/{first}/inspections",
                             {"site_id": site, "inspected_on": inspected_on, "score": score, "findings": "bins full"}))
    done(supervisor.post(f"/operators/{first}/site-releases",
                         {"site_id": site, "released_on": "2026-04-30", "reason": "handed over"}))
    done(assign(supervisor, second, site, "2026-05-01"))
    last = done(caseworker.post(f"/operators/{second}/inspections",
                                {"site_id": site, "inspected_on": "2026-06-01", "score": 82}))
    trend = as_role("auditor").get("/operators/sanitation", params={"site_id": site, "after": last["position"]})
    assert trend.headers["X-Read-Consistent"] == "true"
    assert [(i["inspected_on"], i["score"], i["change"], i["operator_id"]) for i in trend.json()["inspections"]] == [
        ("2026-02-01", 55, None, first), ("2026-03-01", 60, 5, first), ("2026-06-01", 82, 22, second)]
    not_run = caseworker.post(f"/operators/{first}/inspections",
                              {"site_id": site, "inspected_on": "2026-06-02", "score": 50})
    assert_problem(not_run, 409, rule="site_not_run_by_operator")


def test_no_second_operator_runs_a_site_on_days_another_ran_it(supervisor: Api, stored: Any) -> None:
    """Found by a review: a second operator took a site over dated before the first let it go,
    and both ran it on the same days."""
    site = a_site(supervisor)
    first, second = register(supervisor), register(supervisor)
    done(assign(supervisor, first, site, "2026-03-01"))
    done(supervisor.post(f"/operators/{first}/site-releases",
                         {"site_id": site, "released_on": "2026-06-01", "reason": "lease ended"}))
    snapshot = stored()
    overlapping = assign(supervisor, second, site, "2026-01-01")
    assert_problem(overlapping, 409, rule="operator_change_before_latest")
    assert overlapping.json()["field"] == "assigned_on" and overlapping.json()["earliest"] == "2026-06-01"
    assert snapshot.unchanged()
    done(assign(supervisor, second, site, "2026-06-01"))


def test_a_closed_site_takes_no_new_work_and_nothing_dated_after_its_closure(
    supervisor: Api, caseworker: Api, stored: Any
) -> None:
    """Found by a review: a closed site took new active members and committees, and an
    inspection or a partner's contribution dated after the closure."""
    site = a_site(supervisor)
    operator = register(supervisor)
    done(assign(supervisor, operator, site, "2026-01-01"))
    pairing = created(supervisor.post("/pairings", {"site_id": site, "partner_type": "enterprise",
                                                    "partner_name": unique("Shenzhou"), "agreed_on": "2026-03-01"}))
    resident = created(caseworker.post("/residents", resident_body()))
    done(supervisor.post(f"/sites/{site}/closure", {"closed_on": "2026-10-01", "reason": "demolished"}))
    snapshot = stored()
    refusals = [
        caseworker.post("/active-members", {"resident_id": resident, "site_id": site, "identified_on": "2026-09-01"}),
        supervisor.post("/committees", {"name": unique("Committee"), "site_id": site, "established_on": "2026-09-01",
                                        "members": [{"name": "Wang"}]}),
        caseworker.post(f"/pairings/{pairing}/contributions",
                        {"delivered_on": "2026-10-06", "kind": "labour", "description": "drains"}),
        caseworker.post(f"/operators/{operator}/inspections",
                        {"site_id": site, "inspected_on": "2026-10-07", "score": 70}),
    ]
    for refused in refusals:
        assert_problem(refused, 409, rule="site_closed")
    assert [r.json().get("field") for r in refusals[2:]] == ["delivered_on", "inspected_on"]
    assert snapshot.unchanged()
    # What happened before the closure, recorded late, is taken.
    done(caseworker.post(f"/pairings/{pairing}/contributions",
                         {"delivered_on": "2026-09-30", "kind": "labour", "description": "drains"}))
    done(caseworker.post(f"/operators/{operator}/inspections",
                         {"site_id": site, "inspected_on": "2026-10-01", "score": 70}))


def test_support_per_bed_and_per_resident_by_operator_type(supervisor: Api, caseworker: Api, as_role: Any,
                                                           services: Services) -> None:
    area = unique_area("Support")
    cooperative_site = a_site(supervisor, area=area, capacity=100)
    employer_site = a_site(supervisor, area=area, capacity=50,
                           operator={"type": "employer", "name": "Shenzhou Knitting"})
    for _ in range(4):
        resident = created(caseworker.post("/residents", resident_body(area=area)))
        done(caseworker.post(f"/residents/{resident}/moves", {"site_id": cooperative_site,
                                                              "effective_date": "2026-04-01"}))
    program = created(supervisor.post("/subsidy-programs", {
        "name": unique("Support"), "purpose": "sanitation", "fiscal_year": 2078, "budget": "100000.00",
        "modes": ["one_off"]}))
    finance = as_role("finance")
    for site, amount in ((cooperative_site, "5000.00"), (employer_site, "2000.00")):
        application = created(caseworker.post("/subsidy-applications", {
            "program_id": program, "site_id": site, "amount": amount, "mode": "one_off", "justification": "bins"}))
        done(supervisor.post(f"/subsidy-applications/{application}/approvals", {}))
    last = done(finance.post(f"/subsidy-applications/{application}/payments",
                             {"amount": "2000.00", "reference": unique("FIN"), "paid_on": "2026-11-25"}))
    answer = supervisor.get("/operators/support-by-type", params={"fiscal_year": 2078, "after": last["position"]})
    assert answer.status_code == 200 and answer.headers["X-Read-Consistent"] == "true", answer.text
    rows = {r["operator_type"]: r for r in answer.json()["by_area"] if r["area"] == area}
    cooperative, employer = rows["village_cooperative"], rows["employer"]
    assert (cooperative["beds"], cooperative["residents"], cooperative["committed"], cooperative["paid"]) == (
        100, 4, "5000.00", "0.00")
    assert (cooperative["committed_per_bed"], cooperative["committed_per_resident"]) == ("50.00", "1250.00")
    assert (employer["beds"], employer["residents"], employer["paid_per_bed"], employer["paid_per_resident"]) == (
        50, 0, "40.00", None)
    assert {r["operator_type"] for r in answer.json()["by_operator_type"]} >= {
        "village_cooperative", "employer", "government_entrusted"}
    bound = Api(supervisor.client, issue_key(services, unique("ops-bound"), Role.SUPERVISOR, areas=["xinqi"]))
    assert all(r["area"] != area for r in bound.get("/operators/support-by-type",
                                                    params={"fiscal_year": 2078}).json()["by_area"])


# -- bad input: 422 or 409 naming the field or rule, and nothing stored ------------------------------
@pytest.mark.parametrize(("path", "body", "status", "field", "rule"), [
    ("/operators", {"type": "landlord", "name": "x", "contact": "y", "area": "xinqi"}, 422, "type", None),
    ("/operators", {"type": "employer", "name": "x", "contact": "y", "area": "nowhere-at-all"}, 422, "area", None),
    ("/operators", {"type": "employer", "name": "x", "area": "xinqi"}, 422, "contact", None),
    ("{op}/sites", {"site_id": "{site}", "assigned_on": "2026-12-01"}, 422, "assigned_on",
     "effective_date_in_future"),
    ("{op}/sites", {"site_id": "00000000-0000-4000-8000-000000000000", "assigned_on": "2026-01-01"}, 422, "site_id",
     None),
    ("{op}/site-releases", {"site_id": "{site}", "released_on": "2026-02-01", "reason": "x"}, 409, None,
     "site_not_run_by_operator"),
    ("{op}/reports", {**REPORT, "income_from_site": "12.345"}, 422, "income_from_site", "money_format"),
    ("{op}/reports", {**REPORT, "year": 2027}, 422, "year", "report_year_out_of_range"),
    ("{op}/report-corrections", {**REPORT, "reason": "x"}, 409, None, "report_not_filed"),
    ("{op}/inspections", {"site_id": "{site}", "inspected_on": "2026-03-01", "score": 101}, 409, None,
     "site_not_run_by_operator"),
    ("{op}/employees", {"resident_id": "00000000-0000-4000-8000-000000000000", "linked_on": "2026-03-01"}, 422,
     "resident_id", None),
    ("{op}/contact", {"contact": "Wang Li", "changed_on": "2026-12-01"}, 422, "changed_on",
     "effective_date_in_future"),
    ("{op}/contact", {"contact": "", "changed_on": "2026-11-01"}, 422, "contact", None),
    ("{op}/contact-erasure", {"legal_basis": "because", "note": "x"}, 422, "legal_basis", None),
    ("{op}/contact-erasure", {"legal_basis": "data_subject_request"}, 422, "note", None),
], ids=["unknown-type", "unknown-area", "no-contact", "future-assignment", "unknown-site", "release-not-run",
        "three-decimals", "year-not-begun", "correct-unfiled", "inspect-not-run", "unknown-employee",
        "future-contact", "empty-contact", "unknown-legal-basis", "erasure-without-note"])
def test_bad_operator_commands_name_the_field_or_rule_and_store_nothing(
    supervisor: Api, stored: Any, path: str, body: dict[str, Any], status: int, field: str | None, rule: str | None
) -> None:
    operator, site = register(supervisor, type="employer"), a_site(supervisor)
    path = path.replace("{op}", f"/operators/{operator}")
    body = {k: (site if v == "{site}" else v) for k, v in body.items()}
    snapshot = stored()
    assert_problem(supervisor.post(path, body), status, field=field, rule=rule)
    assert snapshot.unchanged()


def test_a_score_outside_0_to_100_is_refused_and_stores_nothing(supervisor: Api, caseworker: Api, stored: Any) -> None:
    operator, site = register(supervisor), a_site(supervisor)
    done(assign(supervisor, operator, site))
    snapshot = stored()
    assert_problem(caseworker.post(f"/operators/{operator}/inspections",
                                   {"site_id": site, "inspected_on": "2026-03-01", "score": -1}),
                   422, field="score", rule="score_out_of_range")
    assert snapshot.unchanged()


def test_caseworkers_record_inspections_but_do_not_create_operators_or_assign_sites(
    supervisor: Api, caseworker: Api
) -> None:
    assert_problem(caseworker.post("/operators", operator_body()), 403, rule="role_not_allowed")
    operator, site = register(supervisor), a_site(supervisor)
    assert_problem(assign(caseworker, operator, site), 403, rule="role_not_allowed")


# -- the view equals a fold of the events ----------------------------------------------------
def fold_operator(events: list[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"sites": set(), "employees": 0, "reports": {}, "inspections": []}
    for e in events:
        name = type(e).__name__
        if name == "Registered":
            row.update(name=e.name, operator_type=e.operator_type, area=e.area)
        elif name == "SiteAssigned":
            row["sites"].add(e.site_id)
        elif name == "SiteReleased":
            row["sites"].discard(e.site_id)
        elif name == "EmployeeLinked":
            row["employees"] += 1
        elif name == "EmployeeUnlinked":
            row["employees"] -= 1
        elif name in ("YearlyReportFiled", "YearlyReportCorrected"):
            row["reports"][e.year] = (e.income_from_site, e.reinvested_management, e.reinvested_sanitation,
                                      e.reinvested_facilities, name == "YearlyReportCorrected")
        elif name == "SanitationInspected":
            row["inspections"].append((e.originator_version, e.site_id, e.inspected_on, e.score))
        row["version"] = e.originator_version
    return row


def test_the_operators_view_equals_a_fold_of_the_events(services: Services) -> None:
    app = services.app
    site = app.register_site(name=unique("Fold"), area="xinqi", address="1 Road", operator_type="employer",
                             operator_name="E", capacity=5, facilities=[], stamp=SUPERVISOR).id
    resident = app.register_resident(id_number=IdentityNumber.parse(id_number()), name=unique("Li"),
                                     phone="13800138000", hometown="Anhui", employer="Shenzhou", area="xinqi",
                                     registered_on=date(2026, 3, 1), stamp=SUPERVISOR).id
    operator = app.register_operator(operator_type="employer", name=unique("Fold"), contact="c", area="xinqi",
                                     stamp=SUPERVISOR).id
    app.assign_site_to_operator(operator, site_id=site, assigned_on=date(2026, 1, 1), stamp=SUPERVISOR)
    app.link_operator_employee(operator, resident_id=resident, linked_on=date(2026, 3, 2), stamp=SUPERVISOR)
    figures = {k: v for k, v in REPORT.items() if k != "year"}
    app.file_operator_report(operator, year=2025, figures=figures, stamp=SUPERVISOR)
    app.correct_operator_report(operator, year=2025, figures={**figures, "reinvested_facilities": "1.00"},
                                reason="x", stamp=SUPERVISOR)
    app.record_sanitation_inspection(operator, site_id=site, inspected_on=date(2026, 5, 1), score=70, findings="ok",
                                     stamp=SUPERVISOR)
    app.release_site_from_operator(operator, site_id=site, released_on=date(2026, 6, 1), reason="x", stamp=SUPERVISOR)
    assert services.wait_for("operators", services.head(), 10)
    expected = fold_operator(list(app.events.get(operator)))
    with services.pool.connection() as conn:
        conn.row_factory = psycopg.rows.dict_row
        row = conn.execute("SELECT * FROM operators WHERE operator_id = %s", (operator,)).fetchone()
        sites = {r["site_id"] for r in conn.execute("SELECT site_id FROM operator_sites WHERE operator_id = %s",
                                                   (operator,)).fetchall()}
        reports = {r["year"]: (r["income_from_site"], r["reinvested_management"], r["reinvested_sanitation"],
                               r["reinvested_facilities"], r["corrected"]) for r in conn.execute(
            "SELECT * FROM operator_reports WHERE operator_id = %s", (operator,)).fetchall()}
        inspections = [(r["version"], r["site_id"], r["inspected_on"], r["score"]) for r in conn.execute(
            "SELECT * FROM sanitation_inspections WHERE operator_id = %s ORDER BY version", (operator,)).fetchall()]
    assert row is not None
    assert {k: row[k] for k in ("name", "operator_type", "area", "employees", "version")} == {
        k: expected[k] for k in ("name", "operator_type", "area", "employees", "version")}
    assert (sites, reports, inspections) == (expected["sites"], expected["reports"], expected["inspections"])
    assert reports[2025][3] == Decimal("1.00")


def test_a_site_names_the_operator_record_that_runs_it(supervisor: Api) -> None:
    site = a_site(supervisor)
    assert supervisor.get(f"/sites/{site}").json()["operator"].get("id") is None
    operator = register(supervisor)
    assigned = supervisor.post(f"/operators/{operator}/sites", {"site_id": site, "assigned_on": "2026-02-01"})
    assert assigned.status_code == 200, assigned.text
    assert supervisor.get(f"/sites/{site}").json()["operator"]["id"] == operator


def test_operators_are_listed_in_pinyin_order(supervisor: Api, services: Services) -> None:
    """Han names sort as the office reads them (an before yin before zhang), not by code point."""
    area = unique_area("pinyin")
    names = ["银杏村股份合作社", "张家物业公司", "安居村股份合作社"]  # code point order: 安 < 张 < 银
    last = [supervisor.post("/operators", operator_body(name=name, area=area)).json() for name in names][-1]
    listed = supervisor.get("/operators", params={"area": area, "limit": 2, "after": last["position"]}).json()
    rest = supervisor.get("/operators", params={"area": area, "limit": 2, "cursor": listed["next"]}).json()
    assert [o["name"] for o in listed["items"] + rest["items"]] == [
        "安居村股份合作社", "银杏村股份合作社", "张家物业公司"]


def test_the_site_names_the_operator_that_took_it_over(supervisor: Api, caseworker: Api) -> None:
    """Found by a review: an employer took a site over, yet the site's page, the sites list and new
    subsidy applications still named the village cooperative it was registered with."""
    name = unique("Shenzhou Weaving")
    operator = register(supervisor, type="employer", name=name)
    site = a_site(supervisor)
    taken = assign(supervisor, operator, site, "2026-02-01")
    done(taken)
    after = taken.json()["position"]
    shown = supervisor.get(f"/sites/{site}", params={"after": after}).json()["operator"]
    assert (shown["type"], shown["name"]) == ("employer", name), shown
    listed = supervisor.get("/sites", params={"after": after, "operator_type": "employer", "limit": 500}).json()
    assert site in [s["id"] for s in listed["items"]]
    history = [e["event"] for e in supervisor.get(f"/sites/{site}/history").json()["items"]]
    assert history[-1] == "HousingSite.OperatorChanged"


def test_a_site_closed_before_its_operator_let_it_go_records_no_change_after_the_closure(supervisor: Api) -> None:
    """Found by a review: the release of a closed site recorded an operator change on it dated after
    the closure. The operator's release stands; the closed site is left as it closed."""
    site = a_site(supervisor)
    operator = register(supervisor, type="employer", name=unique("Shenzhou"))
    done(assign(supervisor, operator, site, assigned_on="2026-10-05"))
    done(supervisor.post(f"/sites/{site}/closure", {"closed_on": "2026-10-06", "reason": "demolished"}))
    done(supervisor.post(f"/operators/{operator}/site-releases", {"site_id": site, "released_on": "2026-11-20",
                                                                  "reason": "lease ended"}))
    changed = [e["effective_date"] for e in supervisor.get(f"/sites/{site}/history").json()["items"]
               if e["event"] == "HousingSite.OperatorChanged"]
    assert changed == ["2026-10-05"]
