"""The worked example over real HTTP: sites, residents, moves, occupancy, and the
API conventions (Location, ETag, If-Match, Idempotency-Key, ?after=)."""

from typing import Any

from tests.conftest import Api
from tests.factories import resident_body, site_body, unique, unique_area


def register_site(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.post("/sites", site_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def register_resident(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.post("/residents", resident_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_register_a_site_and_two_residents_move_them_in_and_see_occupancy(caseworker: Api, supervisor: Api) -> None:
    area = unique_area("Area")
    site = register_site(supervisor, area=area, capacity=3)
    assert site["version"] == 1 and site["position"] > 0
    first = register_resident(caseworker, area=area)
    second = register_resident(caseworker, area=area)
    for resident in (first, second):
        moved = caseworker.post(f"/residents/{resident['id']}/moves",
                                {"site_id": site["id"], "effective_date": "2026-03-05"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["version"] == 2
    position = moved.json()["position"]

    sites = supervisor.get("/sites", params={"area": area, "after": position})
    assert sites.headers["X-Read-Consistent"] == "true"
    (row,) = sites.json()["items"]
    assert (row["capacity"], row["occupants"], row["free_beds"]) == (3, 2, 1)

    listed = caseworker.get("/residents", params={"site_id": site["id"], "after": position}).json()
    assert listed["total"] == 2
    assert {r["status"] for r in listed["items"]} == {"in_site"}
    assert all("*" in r["id_number_masked"] for r in listed["items"])


def test_creating_returns_location_and_the_aggregate_has_an_etag(caseworker: Api, supervisor: Api) -> None:
    created = supervisor.post("/sites", site_body())
    assert created.headers["Location"] == f"/sites/{created.json()['id']}"
    fetched = caseworker.get(created.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.headers["ETag"] == '"1"'
    assert fetched.json()["operator"]["type"] == "village_cooperative"


def test_a_stale_if_match_gets_412_and_changes_nothing(supervisor: Api, stored: Any) -> None:
    site = register_site(supervisor)
    ok = supervisor.post(f"/sites/{site['id']}/capacity", {"capacity": 20}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    snapshot = stored()
    stale = supervisor.post(f"/sites/{site['id']}/capacity", {"capacity": 30}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["current_version"] == 2
    assert snapshot.unchanged()
    assert supervisor.get(f"/sites/{site['id']}").json()["capacity"] == 20


def test_an_idempotent_retry_returns_the_first_response_and_stores_nothing_new(
    caseworker: Api, stored: Any
) -> None:
    key = unique("key")
    body = resident_body()
    first = caseworker.post("/residents", body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    snapshot = stored()
    retry = caseworker.post("/residents", body, headers={"Idempotency-Key": key})
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert snapshot.unchanged()


def test_the_same_idempotency_key_with_another_body_gets_422(caseworker: Api, stored: Any) -> None:
    key = unique("key")
    assert caseworker.post("/residents", resident_body(), headers={"Idempotency-Key": key}).status_code == 201
    snapshot = stored()
    reused = caseworker.post("/residents", resident_body(), headers={"Idempotency-Key": key})
    assert reused.status_code == 422
    assert reused.json()["rule"] == "idempotency_key_reused"
    assert snapshot.unchanged()


def test_read_your_writes_waits_for_the_projection(caseworker: Api) -> None:
    name = unique("Zhao")
    created = register_resident(caseworker, name=name)
    listed = caseworker.get("/residents", params={"name": name, "after": created["position"]})
    assert listed.headers["X-Read-Consistent"] == "true"
    assert [r["id"] for r in listed.json()["items"]] == [created["id"]]


def test_departure_frees_the_bed_and_return_allows_moving_again(caseworker: Api, supervisor: Api) -> None:
    site = register_site(supervisor, capacity=1)
    resident = register_resident(caseworker)
    path = f"/residents/{resident['id']}"
    assert caseworker.post(f"{path}/moves", {"site_id": site["id"], "effective_date": "2026-04-01"}).status_code == 200
    departed = caseworker.post(f"{path}/departure", {"effective_date": "2026-05-01", "reason": "went home"})
    assert departed.status_code == 200
    refused = caseworker.post(f"{path}/moves", {"site_id": site["id"], "effective_date": "2026-05-02"})
    assert refused.status_code == 409 and refused.json()["rule"] == "resident_departed"
    assert supervisor.get(f"/sites/{site['id']}").json()["free_beds"] == 1
    back = caseworker.post(f"{path}/return", {"effective_date": "2026-06-01", "area": "xinqi"})
    assert back.status_code == 200
    again = caseworker.post(f"{path}/moves", {"site_id": site["id"], "effective_date": "2026-06-02"})
    assert again.status_code == 200
    assert caseworker.get(path).json()["status"] == "in_site"


def test_moving_to_private_housing_and_changing_employer(caseworker: Api, supervisor: Api) -> None:
    site = register_site(supervisor)
    resident = register_resident(caseworker)
    path = f"/residents/{resident['id']}"
    caseworker.post(f"{path}/moves", {"site_id": site["id"], "effective_date": "2026-04-01"})
    out = caseworker.post(f"{path}/moves", {"area": "daqi", "effective_date": "2026-04-10"})
    assert out.status_code == 200
    changed = caseworker.post(f"{path}/employer", {"employer": "Yuanda Dyeing", "effective_date": "2026-04-11"})
    assert changed.status_code == 200
    doc = caseworker.get(path).json()
    assert (doc["status"], doc["area"], doc["employer"], doc["site_id"]) == (
        "private_housing", "daqi", "Yuanda Dyeing", None)
    assert supervisor.get(f"/sites/{site['id']}").json()["occupants"] == 0


def test_site_facilities_committee_and_closure(supervisor: Api) -> None:
    site = register_site(supervisor)
    path = f"/sites/{site['id']}"
    assert supervisor.post(f"{path}/facilities", {"facilities": ["clinic", "bank"]}).status_code == 200
    committee = supervisor.post(f"{path}/community-committee", {
        "established_on": "2026-07-15", "members": [{"name": "Wang Fang", "role": "chair"}]})
    assert committee.status_code == 200
    twice = supervisor.post(f"{path}/community-committee", {
        "established_on": "2026-07-16", "members": [{"name": "Wang Fang"}]})
    assert twice.status_code == 409 and twice.json()["rule"] == "community_committee_exists"
    closed = supervisor.post(f"{path}/closure", {"closed_on": "2026-11-01", "reason": "demolished"})
    assert closed.status_code == 200
    doc = supervisor.get(path).json()
    assert doc["facilities"] == ["bank", "clinic"]
    assert doc["community_committee"]["members"][0]["name"] == "Wang Fang"
    assert doc["closed_on"] == "2026-11-01"
    listed = supervisor.get("/sites", params={"area": doc["area"], "closed": "true",
                                              "after": closed.json()["position"]}).json()
    row = next(item for item in listed["items"] if item["id"] == site["id"])
    assert row["community_committee"] is True and row["closed"] is True


def test_lists_are_paginated_with_a_cursor(caseworker: Api) -> None:
    area = unique_area("Paged")
    created = [register_resident(caseworker, area=area) for _ in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"area": area, "limit": 2, "after": created[-1]["position"]}
    while True:
        page = caseworker.get("/residents", params=params).json()
        assert page["total"] == 5
        seen.extend(item["id"] for item in page["items"])
        if page["next"] is None:
            break
        params["cursor"] = page["next"]
    assert sorted(seen) == sorted(r["id"] for r in created)


def test_health_and_readiness(caseworker: Api) -> None:
    assert caseworker.client.get("/healthz").json() == {"status": "ok"}
    ready = caseworker.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert {"residents", "site_occupancy", "open_cases", "case_details", "committee_agendas", "statistics"} <= set(
        ready["projections"])
    assert all(p["lag"] >= 0 for p in ready["projections"].values())


def test_the_openapi_schema_documents_the_contract(caseworker: Api) -> None:
    schema = caseworker.client.get("/openapi.json").json()
    site = schema["components"]["schemas"]["SiteCreate"]
    assert {"name", "area", "address", "operator", "capacity", "facilities"} <= set(site["properties"])
    assert site["examples"]
    assert "/residents/{resident_id}/moves" in schema["paths"]


def test_expired_idempotency_keys_are_purged(caseworker: Api, services: Any) -> None:
    key = unique("old-key")
    assert caseworker.post("/residents", resident_body(), headers={"Idempotency-Key": key}).status_code == 201
    with services.pool.connection() as conn:
        conn.execute("UPDATE liudong_idempotency SET created_at = now() - interval '25 hours' WHERE key = %s", (key,))
    assert services.purge_expired_idempotency_keys() >= 1
    with services.pool.connection() as conn:
        assert conn.execute("SELECT 1 FROM liudong_idempotency WHERE key = %s", (key,)).fetchone() is None
