"""Statistics per area and month follow effective dates, so late reports land where they belong."""

from typing import Any

from tests.conftest import Api
from tests.factories import resident_body, unique_area


def test_arrivals_departures_moves_population_and_disputes_by_month(caseworker: Api, supervisor: Api) -> None:
    area, elsewhere = unique_area("Stat"), unique_area("Other")
    ids = [caseworker.post("/residents", resident_body(area=area, registered_on="2026-01-10")).json()["id"]
           for _ in range(4)]
    caseworker.post(f"/residents/{ids[0]}/departure", {"effective_date": "2026-02-03", "reason": "home"})
    caseworker.post(f"/residents/{ids[1]}/moves", {"area": elsewhere, "effective_date": "2026-02-20"})
    case = caseworker.post("/disputes", {"category": "housing", "description": "leaking roof",
                                         "parties": [{"name": "L", "kind": "landlord"}], "area": area,
                                         "occurred_on": "2026-11-01"}).json()
    resolved = caseworker.post(f"/disputes/{case['id']}/resolution", {"outcome": "mediated_agreement"})
    rows = caseworker.get("/statistics", params={"area": area, "after": resolved.json()["position"]}).json()["items"]
    by_month: dict[str, Any] = {r["month"]: r for r in rows}
    assert (by_month["2026-01"]["arrivals"], by_month["2026-01"]["population_at_month_end"]) == (4, 4)
    february = by_month["2026-02"]
    assert (february["departures"], february["population_at_month_end"]) == (2, 2)
    assert february["turnover_rate"] == 0.5
    assert by_month["2026-03"]["population_at_month_end"] == 2  # months without events are listed too
    assert by_month["2026-11"]["disputes"]["housing"] == {"opened": 1, "resolved": 1, "median_days_to_resolve": 0.0}
    other = caseworker.get("/statistics", params={"area": elsewhere}).json()["items"]
    assert other[0]["arrivals"] == 1 and other[0]["moves"] == 1


def test_bad_months_are_refused(caseworker: Api) -> None:
    response = caseworker.get("/statistics", params={"from_month": "2026-13"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "from_month"


def test_a_dispute_counts_in_the_month_it_happened_not_when_it_was_logged(caseworker: Api) -> None:
    area = unique_area("Late")
    logged = caseworker.post("/disputes", {"category": "sanitation", "description": "rubbish",
                                           "parties": [{"name": "S", "kind": "site_operator"}], "area": area,
                                           "occurred_on": "2026-10-28"}).json()
    rows = caseworker.get("/statistics", params={"area": area, "after": logged["position"]}).json()["items"]
    assert {r["month"]: r["disputes"] for r in rows}["2026-10"]["sanitation"]["opened"] == 1
