"""Co-building (结对共建) over real HTTP and PostgreSQL: a pairing from agreement to end with
its contributions, the contributions per site beside the government's subsidies, bad input
that stores nothing, and the cobuilding view equal to a fold of the events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import psycopg.rows
import pytest

from application.services import Services
from domain.common import Actor, Role, Stamp
from tests.conftest import NOW, Api
from tests.factories import site_body, unique, unique_area
from tests.test_bad_input import assert_problem

SUPERVISOR = Stamp(Actor("cobuilding-supervisor", Role.SUPERVISOR), NOW)


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def done(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def pair(api: Api, site: str, **overrides: Any) -> str:
    body = {"site_id": site, "partner_type": "enterprise", "partner_name": unique("Shenzhou Knitting"),
            "agreed_on": "2026-03-01", **overrides}
    return created(api.post("/pairings", body))


def test_a_pairing_from_agreement_to_end_with_its_contributions(supervisor: Api, caseworker: Api) -> None:
    site = created(supervisor.post("/sites", site_body()))
    pairing = pair(supervisor, site)
    done(caseworker.post(f"/pairings/{pairing}/contributions", {
        "delivered_on": "2026-04-10", "kind": "goods", "description": "300 books", "value_yuan": "6000.00"}))
    done(caseworker.post(f"/pairings/{pairing}/contributions", {
        "delivered_on": "2026-05-01", "kind": "labour", "description": "drains cleared"}))
    done(supervisor.post(f"/pairings/{pairing}/ending", {"ended_on": "2026-10-31", "reason": "company moved"}))
    late = caseworker.post(f"/pairings/{pairing}/contributions",
                           {"delivered_on": "2026-11-01", "kind": "training", "description": "first aid"})
    assert_problem(late, 409, rule="pairing_ended")
    doc = caseworker.get(f"/pairings/{pairing}")
    assert doc.headers["ETag"] == f'"{doc.json()["version"]}"'
    body = doc.json()
    assert (body["ended_on"], body["total_value"], [c["kind"] for c in body["contributions"]]) == (
        "2026-10-31", "6000.00", ["goods", "labour"])
    last = done(caseworker.post(f"/pairings/{pairing}/contributions", {  # delivered before the end, told late
        "delivered_on": "2026-10-30", "kind": "money", "value_yuan": "500"}))
    listed = caseworker.get("/pairings", params={"site_id": site, "after": last["position"]})
    assert listed.headers["X-Read-Consistent"] == "true"
    (row,) = listed.json()["items"]
    assert (row["id"], row["contributions"], row["total_value"]) == (pairing, 3, "6500.00")
    active = caseworker.get("/pairings", params={"site_id": site, "active_on": "2026-11-01"}).json()["items"]
    assert active == []


def test_contributions_stand_beside_the_government_subsidies_per_site(
    supervisor: Api, caseworker: Api, as_role: Any
) -> None:
    area = unique_area("Cobuild")
    site = created(supervisor.post("/sites", site_body(area=area)))
    bare = created(supervisor.post("/sites", site_body(area=area)))
    program = created(supervisor.post("/subsidy-programs", {
        "name": unique("Cobuild"), "purpose": "facilities", "fiscal_year": 2026, "budget": "900000.00",
        "modes": ["one_off"]}))
    for target, amount in ((site, "30000.00"), (bare, "8000.00")):
        application = created(caseworker.post("/subsidy-applications", {
            "program_id": program, "site_id": target, "amount": amount, "mode": "one_off",
            "justification": "a canteen"}))
        done(supervisor.post(f"/subsidy-applications/{application}/approvals", {}))
    done(as_role("finance").post(f"/subsidy-applications/{application}/payments",
                                 {"amount": "8000.00", "reference": unique("FIN"), "paid_on": "2026-11-25"}))
    school = pair(supervisor, site, partner_type="school")
    for kind, value in (("money", "2000.00"), ("money", "1000.00"), ("training", None)):
        last = done(caseworker.post(f"/pairings/{school}/contributions",
                                    {"delivered_on": "2026-06-01", "kind": kind, "value_yuan": value}))
    answer = supervisor.get("/pairings/by-site", params={"after": last["position"], "fiscal_year": 2026})
    assert answer.status_code == 200 and answer.headers["X-Read-Consistent"] == "true", answer.text
    rows = {r["site_id"]: r for r in answer.json()["sites"] if r["site_area"] == area}
    assert (rows[site]["subsidies_committed"], rows[site]["subsidies_paid"], rows[site]["contributions"],
            rows[site]["contributions_value"]) == ("30000.00", "0.00", 3, "3000.00")
    assert rows[site]["by_kind"] == {"money": {"count": 2, "value": "3000.00"},
                                     "training": {"count": 1, "value": "0.00"}}
    assert (rows[bare]["subsidies_paid"], rows[bare]["contributions"], rows[bare]["by_kind"]) == ("8000.00", 0, {})
    # The subsidy ledger shows the same beside its own figures, and support per bed by operator type.
    ledger = supervisor.get("/subsidy-ledger", params={"after": last["position"], "fiscal_year": 2026}).json()
    in_ledger = {r["site_id"]: r for r in ledger["contributions_by_site"] if r["site_area"] == area}
    assert in_ledger[site]["contributions_value"] == "3000.00" and in_ledger[bare]["subsidies_paid"] == "8000.00"
    assert {r["operator_type"] for r in ledger["support_per_bed_by_operator_type"]} == {
        "village_cooperative", "employer", "government_entrusted"}


@pytest.mark.parametrize(("body", "status", "field", "rule"), [
    ({"partner_type": "church"}, 422, "partner_type", None),
    ({"partner_name": ""}, 422, "partner_name", None),
    ({"agreed_on": "2026-12-01"}, 422, "agreed_on", "effective_date_in_future"),
    ({"site_id": "00000000-0000-4000-8000-000000000000"}, 422, "site_id", None),
], ids=["unknown-partner-type", "no-name", "future", "unknown-site"])
def test_a_bad_pairing_names_the_field_and_stores_nothing(supervisor: Api, stored: Any, body: dict[str, Any],
                                                          status: int, field: str, rule: str | None) -> None:
    site = created(supervisor.post("/sites", site_body()))
    snapshot = stored()
    request = {"site_id": site, "partner_type": "unit", "partner_name": "Bank", "agreed_on": "2026-03-01", **body}
    assert_problem(supervisor.post("/pairings", request), status, field=field, rule=rule)
    assert snapshot.unchanged()


@pytest.mark.parametrize(("path", "body", "status", "field", "rule"), [
    ("contributions", {"delivered_on": "2026-04-01", "kind": "money"}, 422, "value_yuan",
     "money_contribution_without_value"),
    ("contributions", {"delivered_on": "2026-04-01", "kind": "cake"}, 422, "kind", None),
    ("contributions", {"delivered_on": "2026-02-01", "kind": "labour"}, 409, None, "delivered_before_agreed"),
    ("contributions", {"delivered_on": "2026-04-01", "kind": "goods", "value_yuan": "1.001"}, 422, "value_yuan",
     "money_format"),
    ("ending", {"ended_on": "2026-02-01", "reason": "x"}, 409, None, "ended_before_agreed"),
    ("ending", {"ended_on": "2026-04-01"}, 422, "reason", None),
], ids=["money-without-value", "unknown-kind", "before-agreement", "three-decimals", "end-before-agreement",
        "end-without-reason"])
def test_bad_contributions_and_endings_name_the_field_or_rule_and_store_nothing(
    supervisor: Api, stored: Any, path: str, body: dict[str, Any], status: int, field: str | None, rule: str | None
) -> None:
    pairing = pair(supervisor, created(supervisor.post("/sites", site_body())))
    snapshot = stored()
    assert_problem(supervisor.post(f"/pairings/{pairing}/{path}", body), status, field=field, rule=rule)
    assert snapshot.unchanged()


def test_readers_read_pairings_but_only_supervisors_agree_them(supervisor: Api, caseworker: Api,
                                                                as_role: Any) -> None:
    site = created(supervisor.post("/sites", site_body()))
    refused = caseworker.post("/pairings", {"site_id": site, "partner_type": "unit", "partner_name": "Bank",
                                            "agreed_on": "2026-03-01"})
    assert_problem(refused, 403, rule="role_not_allowed")
    pairing = pair(supervisor, site)
    assert as_role("api_consumer").get(f"/pairings/{pairing}").status_code == 200


def test_the_cobuilding_view_equals_a_fold_of_the_events(services: Services) -> None:
    app = services.app
    site = app.register_site(name=unique("Fold"), area="xinqi", address="1 Road", operator_type="employer",
                             operator_name="E", capacity=5, facilities=[], stamp=SUPERVISOR).id
    pairing = app.agree_pairing(site_id=site, partner_type="unit", partner_name=unique("Bank"),
                                agreed_on=date(2026, 2, 1), stamp=SUPERVISOR).id
    for kind, value in (("money", "100.50"), ("goods", None), ("goods", "20.00")):
        app.record_contribution(pairing, delivered_on=date(2026, 3, 1), kind=kind, description="x", value_yuan=value,
                                stamp=SUPERVISOR)
    app.end_pairing(pairing, ended_on=date(2026, 9, 1), reason="x", stamp=SUPERVISOR)
    assert services.wait_for("cobuilding", services.head(), 10)
    expected: dict[str, Any] = {"contributions": 0, "total_value": Decimal("0"), "rows": []}
    for e in app.events.get(pairing):
        name = type(e).__name__
        if name == "Agreed":
            expected.update(site_id=e.site_id, partner_type=e.partner_type, agreed_on=e.agreed_on, ended_on=None)
        elif name == "ContributionDelivered":
            expected["contributions"] += 1
            expected["total_value"] += e.value_yuan or 0
            expected["rows"].append((e.originator_version, e.kind, e.delivered_on, e.value_yuan))
        elif name == "Ended":
            expected["ended_on"] = e.ended_on
        expected["version"] = e.originator_version
    with services.pool.connection() as conn:
        conn.row_factory = psycopg.rows.dict_row
        row = conn.execute("SELECT * FROM pairings WHERE pairing_id = %s", (pairing,)).fetchone()
        rows = [(r["version"], r["kind"], r["delivered_on"], r["value_yuan"]) for r in conn.execute(
            "SELECT * FROM pairing_contributions WHERE pairing_id = %s ORDER BY version", (pairing,)).fetchall()]
    assert row is not None
    keys = ("site_id", "partner_type", "agreed_on", "ended_on", "contributions", "total_value", "version")
    assert {k: row[k] for k in keys} == {k: expected[k] for k in keys}
    assert rows == expected["rows"]
