"""Disputes from first report to closure, the state machine, service levels and races."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from application.services import Services
from tests.conftest import NOW, Api, Clock
from tests.factories import resident_body, site_body, unique_area


def log_dispute(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {
        "category": "wages_and_labour",
        "description": "Three months of wages unpaid",
        "parties": [{"name": "Yuanda Dyeing Co.", "kind": "employer"}],
        "area": unique_area("Area"),
        "priority": "high",
        "occurred_on": "2026-11-20",
    }
    body.update(overrides)
    response = api.post("/disputes", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_wage_dispute_from_logging_to_closure(caseworker: Api, supervisor: Api, as_role: Any) -> None:
    resident = caseworker.post("/residents", resident_body()).json()
    site = supervisor.post("/sites", site_body()).json()
    case = log_dispute(caseworker, parties=[{"resident_id": resident["id"]},
                                            {"name": "Yuanda Dyeing Co.", "kind": "employer"}],
                       site_id=site["id"], area=None)
    path = f"/disputes/{case['id']}"
    steps = [
        (supervisor, "assignment", {"assignee": "test-caseworker"}),
        (caseworker, "notes", {"text": "Called the employer"}),
        (caseworker, "mediations", {"held_on": "2026-11-22", "participants": ["Li", "Yuanda"],
                                    "outcome": "employer will pay by the 30th"}),
        (caseworker, "resolution", {"outcome": "mediated_agreement", "amount_recovered": "12000.50"}),
        (supervisor, "closure", {}),
    ]
    for api, action, body in steps:
        response = api.post(f"{path}/{action}", body)
        assert response.status_code == 200, (action, response.text)
    doc = caseworker.get(path).json()
    assert doc["status"] == "closed"
    assert doc["amount_recovered"] == "12000.50"
    assert doc["area"] == site_body()["area"]
    assert [e["event"] for e in doc["timeline"]] == [
        "Logged", "Assigned", "NoteAdded", "MediationHeld", "Resolved", "Closed"]
    assert doc["timeline"][1]["actor_id"] == "test-supervisor"
    listed = caseworker.get("/disputes", params={"status": "closed", "after": response.json()["position"]}).json()
    assert case["id"] in [item["id"] for item in listed["items"]]


def test_a_command_not_allowed_in_the_state_names_state_and_allowed_actions(
    caseworker: Api, supervisor: Api, stored: Any
) -> None:
    case = log_dispute(caseworker)
    snapshot = stored()
    refused = supervisor.post(f"/disputes/{case['id']}/closure", {})
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["rule"] == "action_not_allowed_in_state"
    assert problem["state"] == "logged"
    assert "assign" in problem["allowed_actions"] and "close" not in problem["allowed_actions"]
    assert snapshot.unchanged()


def test_the_caseworker_who_resolved_cannot_close_and_a_supervisor_who_resolved_neither(
    caseworker: Api, supervisor: Api, as_role: Any
) -> None:
    case = log_dispute(caseworker, category="neighbours")
    path = f"/disputes/{case['id']}"
    assert caseworker.post(f"{path}/closure", {}).status_code == 403  # caseworkers never close
    assert supervisor.post(f"{path}/resolution", {"outcome": "withdrawn"}).status_code == 200
    own = supervisor.post(f"{path}/closure", {})
    assert own.status_code == 409 and own.json()["rule"] == "closer_is_resolver"
    assert as_role("admin").post(f"{path}/closure", {}).status_code == 200


def test_reopening_starts_a_new_resolution_deadline(caseworker: Api, supervisor: Api) -> None:
    case = log_dispute(caseworker, category="housing")
    path = f"/disputes/{case['id']}"
    caseworker.post(f"{path}/resolution", {"outcome": "mediated_agreement"})
    supervisor.post(f"{path}/closure", {})  # resolved by the caseworker, closed by the supervisor
    reopened = supervisor.post(f"{path}/reopening", {"reason": "landlord broke the agreement"})
    assert reopened.status_code == 200, reopened.text
    doc = caseworker.get(path).json()
    assert doc["status"] == "logged" and doc["outcome"] is None
    open_list = caseworker.get("/disputes", params={"status": "logged", "area": case and doc["area"],
                                                    "after": reopened.json()["position"]}).json()
    assert [i["id"] for i in open_list["items"]] == [case["id"]]


def test_amount_recovered_only_for_wage_cases(caseworker: Api, stored: Any) -> None:
    case = log_dispute(caseworker, category="sanitation")
    snapshot = stored()
    refused = caseworker.post(f"/disputes/{case['id']}/resolution",
                              {"outcome": "mediated_agreement", "amount_recovered": "10.00"})
    assert refused.status_code == 422 and refused.json()["rule"] == "amount_recovered_not_wage_case"
    assert snapshot.unchanged()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"category": "gossip"}, "category"),
        ({"priority": "whenever"}, "priority"),
        ({"parties": []}, "parties"),
        ({"parties": [{"name": "X"}]}, "parties.0"),
        ({"occurred_on": "2026-12-31"}, "occurred_on"),
        ({"description": "x" * 4001}, "description"),
        ({"parties": [{"resident_id": "00000000-0000-0000-0000-000000000001"}]}, "parties.0.resident_id"),
        ({"site_id": "00000000-0000-0000-0000-000000000001", "area": None}, "site_id"),
        ({"area": None}, "area"),
    ],
)
def test_bad_dispute_bodies_are_refused(caseworker: Api, stored: Any, overrides: dict[str, Any], field: str) -> None:
    snapshot = stored()
    body = {"category": "housing", "description": "d", "parties": [{"name": "L", "kind": "landlord"}],
            "area": "xinqi", "occurred_on": "2026-11-01", **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    response = caseworker.post("/disputes", body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert snapshot.unchanged()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("resolution", {"outcome": "forgotten"}, "outcome"),
        ("resolution", {"outcome": "mediated_agreement", "amount_recovered": "-5"}, "amount_recovered"),
        ("resolution", {"outcome": "mediated_agreement", "amount_recovered": "1.005"}, "amount_recovered"),
        ("resolution", {"outcome": "mediated_agreement", "amount_recovered": 12.5}, "amount_recovered"),
        ("assignment", {"assignee": "nobody-we-know"}, "assignee"),
        ("assignment", {"agency": "the_press"}, "agency"),
        ("escalation", {"to": "the_press", "reason": "x"}, "to"),
    ],
)
def test_bad_case_commands_are_refused(
    caseworker: Api, supervisor: Api, stored: Any, path: str, body: dict[str, Any], field: str
) -> None:
    case = log_dispute(caseworker)
    snapshot = stored()
    api = supervisor if path == "assignment" else caseworker
    response = api.post(f"/disputes/{case['id']}/{path}", body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert snapshot.unchanged()


def test_two_caseworkers_resolving_at_once_one_wins(
    base_url: str, keys: dict[str, str], caseworker: Api, services: Services
) -> None:
    case = log_dispute(caseworker)

    def resolve(outcome: str) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post(f"/disputes/{case['id']}/resolution", json={"outcome": outcome},
                               headers={"Authorization": f"Bearer {keys['caseworker']}", "If-Match": '"1"'})

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(resolve, ["mediated_agreement", "withdrawn"]))
    assert sorted(r.status_code for r in responses)[0] == 200
    assert sorted(r.status_code for r in responses)[1] in (409, 412)
    events = [type(e).__name__ for e in services.app.events.get(UUID(case["id"]))]
    assert events.count("Resolved") == 1


def breaches(services: Services, case_id: str) -> list[tuple[str, str, str]]:
    return [(e.breach, e.actor_id, e.actor_role) for e in services.app.events.get(UUID(case_id))
            if type(e).__name__ == "EscalatedForBreach"]


def test_sla_sweep_escalates_each_breach_once_even_when_two_run_at_once(
    caseworker: Api, services: Services, clock: Clock
) -> None:
    case = log_dispute(caseworker, category="public_order")  # respond within 1 day, resolve within 10
    assert services.wait_for("open_cases", services.head(), 10)
    clock.now = NOW + timedelta(days=3)  # the response deadline has passed, the resolution one not yet
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda _: services.sla_sweep(), range(2)))
        assert breaches(services, case["id"]) == [("response", "system", "system")]
        services.sla_sweep()
        assert breaches(services, case["id"]) == [("response", "system", "system")]

        clock.now = NOW + timedelta(days=12)  # now the resolution deadline has passed too
        assert services.wait_for("open_cases", services.head(), 10)
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda _: services.sla_sweep(), range(2)))
        assert [b for b, _, _ in breaches(services, case["id"])] == ["response", "resolution"]
        area = caseworker.get(f"/disputes/{case['id']}").json()["area"]
        listed = caseworker.get("/disputes", params={"overdue": "true", "area": area, "after": services.head()})
        (item,) = listed.json()["items"]
        assert item["overdue"] is True
        assert [b.split(":")[0] for b in item["breaches"]] == ["response", "resolution"]
        assert caseworker.get(f"/disputes/{case['id']}").json()["breaches"] == item["breaches"]
    finally:
        clock.now = NOW


def test_service_levels_come_from_a_settings_file(tmp_path: Any) -> None:
    from application.settings import Settings

    sla = tmp_path / "sla.toml"
    sla.write_text("[wages_and_labour]\nresponse_days = 2\nresolution_days = 7\n")
    policy = Settings(sla_file=sla).sla_policy()
    assert policy.level("wages_and_labour").resolution_days == 7
    assert policy.level("housing").resolution_days == 30


def test_a_case_resolved_before_any_assignment_never_breaches_its_response_deadline(
    caseworker: Api, services: Services, clock: Clock
) -> None:
    case = log_dispute(caseworker, category="public_order")
    caseworker.post(f"/disputes/{case['id']}/resolution", {"outcome": "withdrawn"})
    assert services.wait_for("open_cases", services.head(), 10)
    clock.now = NOW + timedelta(days=30)
    try:
        services.sla_sweep()
        assert breaches(services, case["id"]) == []
        assert caseworker.get(f"/disputes/{case['id']}").json()["overdue"] is False
        area = caseworker.get(f"/disputes/{case['id']}").json()["area"]
        assert caseworker.get("/disputes", params={"overdue": "true", "area": area}).json()["total"] == 0
    finally:
        clock.now = NOW


def test_the_open_cases_queue_holds_every_case_not_closed(caseworker: Api, supervisor: Api) -> None:
    area = unique_area("Queue")
    kept = log_dispute(caseworker, area=area)
    gone = log_dispute(caseworker, area=area)
    caseworker.post(f"/disputes/{gone['id']}/resolution", {"outcome": "withdrawn"})
    closed = supervisor.post(f"/disputes/{gone['id']}/closure", {})
    queue = caseworker.get("/open-cases", params={"area": area, "after": closed.json()["position"]}).json()
    assert [item["id"] for item in queue["items"]] == [kept["id"]]
    assert queue["items"][0]["age_days"] == 0 and queue["items"][0]["overdue"] is False
    assert caseworker.get("/disputes", params={"area": area}).json()["total"] == 2


def test_a_case_is_not_assigned_to_someone_whose_areas_do_not_reach_it(
    caseworker: Api, supervisor: Api, services: Services, stored: Any
) -> None:
    """Found by a review: a case of one street office was assigned to a caseworker of another,
    who then could not open it."""
    from domain.common import Role
    from tests.conftest import issue_key

    case = log_dispute(caseworker)  # in xinqi
    elsewhere, district = f"daqi-worker-{case['id'][:8]}", f"district-worker-{case['id'][:8]}"
    issue_key(services, elsewhere, Role.CASEWORKER, areas=["daqi"])
    issue_key(services, district, Role.CASEWORKER)
    snapshot = stored()
    refused = supervisor.post(f"/disputes/{case['id']}/assignment", {"assignee": elsewhere})
    assert refused.status_code == 422 and refused.json()["rule"] == "assignee_outside_area", refused.text
    assert refused.json()["errors"][0]["field"] == "assignee"
    assert snapshot.unchanged()
    assert supervisor.post(f"/disputes/{case['id']}/assignment", {"assignee": district}).status_code == 200
