"""Services to residents over HTTP (服务为先): dependants, school placement, services
delivered (family planning among them); children of school age without a place per site and
services per month, equal to a fold of the residents' events."""

from datetime import date
from typing import Any
from uuid import UUID

import httpx

from application.services import Services
from tests.conftest import Api
from tests.factories import resident_body, site_body, unique_area

NOBODY = "00000000-0000-0000-0000-000000000001"


def problem_names(response: httpx.Response, status: int, rule: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert rule in [body.get("rule")] + [e.get("rule") for e in body.get("errors", [])], body
    if field is not None:
        assert field in [e.get("field") for e in body.get("errors", [])], body


def family(caseworker: Api, area: str, site: str | None, births: list[int]) -> tuple[str, list[str]]:
    rid = str(caseworker.post("/residents", resident_body(area=area, registered_on="2025-06-01")).json()["id"])
    if site is not None:
        assert caseworker.post(f"/residents/{rid}/moves", {"site_id": site, "effective_date": "2025-07-01"}
                               ).status_code == 200
    children = []
    for year in births:
        response = caseworker.post(f"/residents/{rid}/dependants", {"name": "Xiao Li", "birth_year": year})
        assert response.status_code == 200, response.text
        children.append(str(response.json()["dependant_id"]))
    return rid, children


def test_school_age_children_without_a_place_are_counted_per_site(caseworker: Api, supervisor: Api) -> None:
    area = unique_area("Svc")
    site = supervisor.post("/sites", site_body(area=area)).json()["id"]
    rid, (placed, waiting, refused, toddler, teen) = family(caseworker, area, site, [2018, 2017, 2016, 2023, 2008])
    scattered, (alone,) = family(caseworker, area, None, [2015])
    gone, _ = family(caseworker, area, None, [2014])
    for child in (placed, waiting, refused):
        r = caseworker.post(f"/residents/{rid}/school-requests",
                            {"dependant_id": child, "school": "Ginkgo School", "requested_on": "2026-08-20"})
        assert r.status_code == 200, r.text
    assert caseworker.post(f"/residents/{rid}/school-placements",
                           {"dependant_id": placed, "school": "Ginkgo School", "placed_on": "2026-09-01"}
                           ).status_code == 200
    assert caseworker.post(f"/residents/{rid}/school-refusals", {
        "dependant_id": refused, "school": "Ginkgo School", "refused_on": "2026-09-01", "reason": "no places"}
    ).status_code == 200
    last = caseworker.post(f"/residents/{gone}/departure", {"effective_date": "2026-09-01", "reason": "home"})
    gaps = caseworker.get("/services/school-gaps", params={"area": area, "year": 2026,
                                                           "after": last.json()["position"]}).json()
    assert gaps["year"] == 2026 and gaps["school_age"] == [6, 15]
    rows = {(i["site_id"]): (i["children_without_place"], i["not_requested"], i["requested"], i["refused"])
            for i in gaps["items"]}
    # at the site: waiting and refused (the toddler is 3, the teenager 18, one child placed); outside sites: one
    assert rows == {site: (2, 0, 1, 1), None: (1, 1, 0, 0)}
    only_site = caseworker.get("/services/school-gaps", params={"site_id": site, "year": 2026}).json()["items"]
    assert [i["site_id"] for i in only_site] == [site]
    assert scattered and alone and toddler and teen


def test_services_are_counted_per_month_kind_and_site(caseworker: Api, supervisor: Api) -> None:
    area = unique_area("Svc")
    site = supervisor.post("/sites", site_body(area=area)).json()["id"]
    in_site, _ = family(caseworker, area, site, [])
    outside, _ = family(caseworker, area, None, [])
    for rid, kind, day in ((in_site, "health_check", "2026-03-02"), (in_site, "family_planning", "2026-03-20"),
                           (outside, "health_check", "2026-03-05"), (in_site, "health_check", "2026-04-01"),
                           (outside, "legal_aid", "2026-05-01")):
        last = caseworker.post(f"/residents/{rid}/services", {"kind": kind, "delivered_on": day,
                                                              "provider": "Xinqiao Health Centre"})
        assert last.status_code == 200, last.text
    monthly = caseworker.get("/services/monthly", params={"area": area, "from": "2026-03", "to": "2026-04",
                                                          "after": last.json()["position"]}).json()["items"]
    assert [(m["month"], m["kind"], m["site_id"], m["delivered"]) for m in monthly] == [
        ("2026-03", "family_planning", site, 1), ("2026-03", "health_check", site, 1),
        ("2026-03", "health_check", None, 1), ("2026-04", "health_check", site, 1)]
    planning = caseworker.get("/services/monthly", params={"area": area, "kind": "family_planning",
                                                           "from": "2026-01", "to": "2026-12"}).json()["items"]
    assert [(m["month"], m["delivered"]) for m in planning] == [("2026-03", 1)]


def test_refused_service_commands_name_their_rule_and_store_nothing(caseworker: Api, stored: Any) -> None:
    area = unique_area("Svc")
    rid, (child,) = family(caseworker, area, None, [2018])
    gone, _ = family(caseworker, area, None, [])
    caseworker.post(f"/residents/{gone}/departure", {"effective_date": "2026-01-01", "reason": "home"})
    caseworker.post(f"/residents/{rid}/school-requests",
                    {"dependant_id": child, "school": "S", "requested_on": "2026-08-20"})
    snapshot = stored()
    cases = [
        (caseworker.post(f"/residents/{rid}/dependants", {"name": "X", "birth_year": 2018, "relation": "cousin"}),
         422, "validation", "relation"),
        (caseworker.post(f"/residents/{rid}/dependants", {"name": "X", "birth_year": 2030}),
         422, "birth_year_out_of_range", "birth_year"),
        (caseworker.post(f"/residents/{gone}/dependants", {"name": "X", "birth_year": 2018}),
         409, "resident_departed", None),
        (caseworker.post(f"/residents/{rid}/school-requests",
                         {"dependant_id": "nobody", "school": "S", "requested_on": "2026-08-20"}),
         422, "unknown_dependant", "dependant_id"),
        (caseworker.post(f"/residents/{rid}/school-requests",
                         {"dependant_id": child, "school": "S", "requested_on": "2026-08-21"}),
         409, "school_placement_pending", None),
        (caseworker.post(f"/residents/{rid}/school-placements",
                         {"dependant_id": child, "school": "S", "placed_on": "2026-08-01"}),
         409, "decided_before_request", None),
        (caseworker.post(f"/residents/{rid}/school-refusals",
                         {"dependant_id": child, "school": "S", "refused_on": "2099-01-01", "reason": "full"}),
         422, "effective_date_in_future", "refused_on"),
        (caseworker.post(f"/residents/{rid}/services", {"kind": "haircut", "delivered_on": "2026-03-01",
                                                        "provider": "P"}), 422, "validation", "kind"),
        (caseworker.post(f"/residents/{rid}/services", {"kind": "legal_aid", "delivered_on": "2025-01-01",
                                                        "provider": "P"}),
         409, "effective_date_before_registration", None),
        (caseworker.post(f"/residents/{gone}/services", {"kind": "legal_aid", "delivered_on": "2026-03-01",
                                                         "provider": "P"}), 409, "resident_away_then", None),
        (caseworker.get("/services/monthly", params={"from": "2026-05", "to": "2026-01"}),
         422, "month_range", "from"),
    ]
    for response, status, rule, field in cases:
        problem_names(response, status, rule, field)
    assert caseworker.post(f"/residents/{NOBODY}/services", {"kind": "legal_aid", "delivered_on": "2026-03-01",
                                                             "provider": "P"}).status_code == 404
    assert snapshot.unchanged()


def test_a_dependants_name_is_sealed_in_the_store(caseworker: Api, services: Services) -> None:
    rid, _ = family(caseworker, unique_area("Svc"), None, [2018])
    with services.pool.connection() as conn:
        (row,) = conn.execute("SELECT state FROM liudong_events WHERE originator_id = %s AND topic LIKE %s",
                              (UUID(rid), "%DependantRecorded")).fetchall()
    assert b"Xiao Li" not in bytes(row["state"])


def fold_gaps(services: Services, residents: list[str], year: int) -> dict[Any, int]:
    """Children of school age without a place per site, from each resident's events alone."""
    counts: dict[Any, int] = {}
    for rid in residents:
        site: Any = None
        present = True
        children: dict[str, dict[str, Any]] = {}
        for e in services.app.events.get(UUID(rid)):
            kind = type(e).__name__
            if kind == "MovedIntoSite":
                site = str(e.site_id)
            elif kind in ("MovedToPrivateHousing", "Returned"):
                site, present = None, True
            elif kind == "DepartedDistrict":
                site, present = None, False
            elif kind == "DependantRecorded":
                children[e.dependant_id] = {"year": e.birth_year, "relation": e.relation, "status": None}
            elif kind in ("SchoolPlacementRequested", "SchoolPlaced", "SchoolPlacementRefused"):
                children[e.dependant_id]["status"] = kind
        if not present:
            continue
        for child in children.values():
            if child["relation"] == "child" and 6 <= year - child["year"] <= 15 and child["status"] != "SchoolPlaced":
                counts[site] = counts.get(site, 0) + 1
    return counts


def test_the_school_gaps_view_equals_a_fold_of_the_events(caseworker: Api, supervisor: Api,
                                                          services: Services) -> None:
    area = unique_area("Svc")
    sites = [supervisor.post("/sites", site_body(area=area)).json()["id"] for _ in range(2)]
    residents = []
    for n, births in enumerate(([2015, 2019], [2012], [2020, 2010, 2001], [2016])):
        rid, children = family(caseworker, area, sites[n % 2] if n < 3 else None, births)
        residents.append(rid)
        if n == 0:
            caseworker.post(f"/residents/{rid}/school-requests",
                            {"dependant_id": children[0], "school": "S", "requested_on": "2026-08-01"})
            caseworker.post(f"/residents/{rid}/school-placements",
                            {"dependant_id": children[0], "school": "S", "placed_on": "2026-08-15"})
        if n == 1:
            caseworker.post(f"/residents/{rid}/moves", {"area": area, "effective_date": "2026-02-01"})
        if n == 2:
            caseworker.post(f"/residents/{rid}/departure", {"effective_date": "2026-03-01", "reason": "home"})
    assert services.wait_for("services", services.head(), 20)
    year = date(2026, 1, 1).year
    gaps = caseworker.get("/services/school-gaps", params={"area": area, "year": year}).json()["items"]
    assert {i["site_id"]: i["children_without_place"] for i in gaps} == fold_gaps(services, residents, year)


def test_a_service_or_an_employer_of_a_day_before_a_departure_told_late_is_taken(caseworker: Api) -> None:
    """Found by a review: a clinic's late report of a health check was refused once the resident had
    left, though the check was on a day they lived here."""
    rid, _ = family(caseworker, unique_area("Late"), None, [])
    assert caseworker.post(f"/residents/{rid}/departure", {"effective_date": "2026-06-01", "reason": "home"}
                           ).status_code == 200
    told = caseworker.post(f"/residents/{rid}/services", {"kind": "health_check", "delivered_on": "2026-05-01",
                                                          "provider": "Clinic"})
    assert told.status_code == 200, told.text
    job = caseworker.post(f"/residents/{rid}/employer", {"employer": "Ningbo Port", "effective_date": "2026-05-10"})
    assert job.status_code == 200, job.text
    away = caseworker.post(f"/residents/{rid}/services", {"kind": "health_check", "delivered_on": "2026-07-01",
                                                          "provider": "Clinic"})
    assert away.status_code == 409 and away.json()["rule"] == "resident_away_then"
