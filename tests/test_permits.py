"""Residence permits: eligibility, issue, yearly endorsement, suspension by the sweep."""

from datetime import timedelta
from typing import Any
from uuid import UUID

from application.services import Services
from tests.conftest import NOW, Api, Clock
from tests.factories import id_number, resident_body, site_body


def test_an_ineligible_application_names_the_missing_condition_and_the_date(caseworker: Api, stored: Any) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2026-08-31", employer=None)).json()
    snapshot = stored()
    refused = caseworker.post(f"/residents/{resident['id']}/permit", {"applied_on": "2026-11-20"})
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["rule"] == "permit_not_eligible"
    assert problem["missing_conditions"] == ["six_months_residence", "stable_work_or_housing"]
    assert problem["eligible_from"] == "2027-02-28"
    assert snapshot.unchanged()


def test_late_reports_count_towards_six_months(caseworker: Api) -> None:
    # Registered today, but the caseworker reports that residence began in January.
    resident = caseworker.post("/residents", resident_body(registered_on="2026-01-15")).json()
    applied = caseworker.post(f"/residents/{resident['id']}/permit", {"applied_on": "2026-11-20"})
    assert applied.status_code == 200, applied.text


def test_a_permit_is_issued_endorsed_suspended_by_the_sweep_and_reinstated_late(
    caseworker: Api, supervisor: Api, services: Services, clock: Clock
) -> None:
    site = supervisor.post("/sites", site_body()).json()
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-01", employer=None)).json()
    path = f"/residents/{resident['id']}"
    caseworker.post(f"{path}/moves", {"site_id": site["id"], "effective_date": "2025-02-01"})  # stable housing
    assert caseworker.post(f"{path}/permit", {"applied_on": "2025-09-01"}).status_code == 200
    issued = caseworker.post(f"{path}/permit/issuance", {"number": "JZZ-2025-0001", "issued_on": "2025-09-10"})
    assert issued.status_code == 200
    listed = caseworker.get("/permits", params={"status": "issued", "due_before": "2026-10-01",
                                                "after": issued.json()["position"]}).json()
    row = next(r for r in listed["items"] if r["resident_id"] == resident["id"])
    assert row["endorsement_due"] == "2026-09-10"  # lapsed already on the tests' clock (2026-11-25)

    assert services.permit_sweep() >= 1
    assert services.permit_sweep() == 0  # once only
    events = [type(e).__name__ for e in services.app.events.get(UUID(resident["id"]))]
    assert events.count("PermitSuspended") == 1

    late = caseworker.post(f"{path}/permit/endorsements", {"endorsed_on": "2026-11-20"})
    assert late.status_code == 200
    suspended = caseworker.get("/permits", params={"status": "issued", "after": late.json()["position"]}).json()
    row = next(r for r in suspended["items"] if r["resident_id"] == resident["id"])
    assert row["endorsement_due"] == "2027-11-20"

    clock.now = NOW + timedelta(days=400)
    try:
        assert services.permit_sweep() >= 1
    finally:
        clock.now = NOW


def test_departure_cancels_the_permit(caseworker: Api) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-01")).json()
    path = f"/residents/{resident['id']}"
    caseworker.post(f"{path}/permit", {"applied_on": "2025-08-01"})
    caseworker.post(f"{path}/permit/issuance", {"number": "JZZ-2025-0002", "issued_on": "2025-08-05"})
    departed = caseworker.post(f"{path}/departure", {"effective_date": "2026-10-01", "reason": "went home"})
    listed = caseworker.get("/permits", params={"status": "cancelled", "after": departed.json()["position"]}).json()
    assert resident["id"] in [r["resident_id"] for r in listed["items"]]


def test_permit_commands_in_the_wrong_state_are_refused(caseworker: Api, stored: Any) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-01")).json()
    snapshot = stored()
    endorse = caseworker.post(f"/residents/{resident['id']}/permit/endorsements", {"endorsed_on": "2026-11-01"})
    assert endorse.status_code == 409 and endorse.json()["rule"] == "permit_state"
    bad_number = caseworker.post(f"/residents/{resident['id']}/permit/issuance",
                                 {"number": "no spaces!", "issued_on": "2026-11-01"})
    assert bad_number.status_code == 422
    assert snapshot.unchanged()


def test_an_endorsement_is_recorded_once_a_year(caseworker: Api, stored: Any) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-01")).json()
    path = f"/residents/{resident['id']}"
    caseworker.post(f"{path}/permit", {"applied_on": "2025-08-01"})
    caseworker.post(f"{path}/permit/issuance", {"number": "JZZ-2025-0003", "issued_on": "2025-08-10"})
    early = caseworker.post(f"{path}/permit/endorsements", {"endorsed_on": "2025-08-11"})
    assert early.status_code == 409 and early.json()["window_opens"] == "2026-06-11"
    assert caseworker.post(f"{path}/permit/endorsements", {"endorsed_on": "2026-08-01"}).status_code == 200
    snapshot = stored()
    twice = caseworker.post(f"{path}/permit/endorsements", {"endorsed_on": "2026-08-01"})
    assert twice.status_code == 409 and twice.json()["rule"] == "endorsement_too_early"
    assert snapshot.unchanged()


def test_a_rented_room_counts_as_stable_housing(caseworker: Api, stored: Any) -> None:
    """Regression (issue 10, wrong rule 1): only a housing site counted as stable housing,
    though most migrants rent rooms from villagers and Order 663 accepts rented housing."""
    resident = caseworker.post("/residents", resident_body(registered_on="2026-01-05", employer=None)).json()
    path = f"/residents/{resident['id']}"
    area = resident_body()["area"]
    moved = caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2026-02-01", "housing": {
        "kind": "rented", "address": "12 Lane 3, Xinqiao Village", "landlord": "Chen Jianguo"}})
    assert moved.status_code == 200, moved.text
    doc = caseworker.get(path).json()
    assert doc["housing"] == {"kind": "rented", "address": "12 Lane 3, Xinqiao Village", "landlord": "Chen Jianguo"}
    # every page of the list (the suite's other tests rent rooms in this area too)
    query: dict[str, Any] = {"housing_kind": "rented", "area": area, "after": moved.json()["position"], "limit": 500}
    found: set[str] = set()
    while True:
        page = caseworker.get("/residents", params=query).json()
        found |= {r["id"] for r in page["items"]}
        if not page["next"] or resident["id"] in found:
            break
        query["cursor"] = page["next"]
    assert resident["id"] in found
    assert caseworker.post(f"{path}/permit", {"applied_on": "2026-11-20"}).status_code == 200


def test_eligibility_is_judged_as_of_the_application_date_not_today(caseworker: Api) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-05", employer=None)).json()
    path = f"/residents/{resident['id']}"
    area = resident_body()["area"]
    caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2025-02-01",
                                      "housing": {"kind": "employer_dormitory"}})
    # Today they live in "other" housing; on the application's date they lived in a dormitory.
    caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2025-11-01"})
    assert caseworker.get(path).json()["housing"]["kind"] == "other"
    backdated = caseworker.post(f"{path}/permit", {"applied_on": "2025-09-01"})
    assert backdated.status_code == 200, backdated.text


def test_on_the_application_date_other_housing_and_no_work_are_not_enough(caseworker: Api, stored: Any) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-05", employer=None)).json()
    path = f"/residents/{resident['id']}"
    area = resident_body()["area"]
    caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2025-02-01"})  # the old body: other
    caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2026-10-01",
                                      "housing": {"kind": "rented", "landlord": "Chen"}})
    snapshot = stored()
    refused = caseworker.post(f"{path}/permit", {"applied_on": "2026-09-01"})  # before the rented room
    assert refused.status_code == 409 and refused.json()["missing_conditions"] == ["stable_work_or_housing"]
    assert snapshot.unchanged()
    assert caseworker.post(f"{path}/permit", {"applied_on": "2026-10-02"}).status_code == 200


def test_continuous_study_is_the_third_route(caseworker: Api) -> None:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-05", employer=None)).json()
    path = f"/residents/{resident['id']}"
    studying = caseworker.post(f"{path}/study", {"school": "Xinqiao Vocational School",
                                                 "effective_date": "2025-09-01"})
    assert studying.status_code == 200, studying.text
    assert caseworker.get(path).json()["school"] == "Xinqiao Vocational School"
    assert caseworker.post(f"{path}/permit", {"applied_on": "2025-10-01"}).status_code == 200


def test_bad_housing_is_refused_and_changes_nothing(caseworker: Api, stored: Any) -> None:
    resident = caseworker.post("/residents", resident_body()).json()
    path = f"/residents/{resident['id']}"
    area = resident_body()["area"]
    snapshot = stored()
    unidentified = caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2026-11-01",
                                                     "housing": {"kind": "rented"}})
    assert unidentified.status_code == 422 and unidentified.json()["rule"] == "rented_housing_unidentified"
    assert unidentified.json()["errors"][0]["field"] == "housing.landlord"
    unknown = caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2026-11-01",
                                                "housing": {"kind": "tent"}})
    assert unknown.status_code == 422 and "housing" in unknown.text
    site_by_area = caseworker.post(f"{path}/moves", {"area": area, "effective_date": "2026-11-01",
                                                     "housing": {"kind": "site"}})
    assert site_by_area.status_code == 422 and site_by_area.json()["rule"] == "housing_site_needs_site_id"
    assert snapshot.unchanged()


def test_a_resident_registered_into_a_rented_room_is_eligible_from_the_registration_date(caseworker: Api) -> None:
    """Registration says where the resident lives from the first day: a rented room counts as
    stable housing from then, without a separate move."""
    registered = caseworker.post("/residents", resident_body(registered_on="2026-01-05", employer=None, housing={
        "kind": "rented", "address": "8 Lane 2, Yanhai Village", "landlord": "Chen Jianguo"}))
    assert registered.status_code == 201, registered.text
    path = f"/residents/{registered.json()['id']}"
    doc = caseworker.get(path).json()
    assert (doc["status"], doc["housing"]["kind"], doc["since"]) == ("private_housing", "rented", "2026-01-05")
    history = caseworker.get(f"{path}/history").json()["items"]
    assert [(e["event"], e["effective_date"]) for e in history] == [
        ("Resident.Registered", "2026-01-05"), ("Resident.MovedToPrivateHousing", "2026-01-05")]
    assert caseworker.post(f"{path}/permit", {"applied_on": "2026-07-06"}).status_code == 200


def test_a_resident_registered_into_a_site_takes_a_bed_and_the_sites_area(
    caseworker: Api, supervisor: Api, stored: Any
) -> None:
    site = supervisor.post("/sites", site_body(capacity=1)).json()
    body = resident_body()
    del body["area"]  # a district-wide key: the site's area
    registered = caseworker.post("/residents", {**body, "site_id": site["id"]})
    assert registered.status_code == 201, registered.text
    doc = caseworker.get(f"/residents/{registered.json()['id']}").json()
    assert (doc["status"], doc["site_id"], doc["area"], doc["housing"]["kind"]) == (
        "in_site", site["id"], "xinqi", "site")
    occupancy = supervisor.get(f"/sites/{site['id']}", params={"after": registered.json()["position"]}).json()
    assert occupancy["occupants"] == 1

    # The last bed is taken: the registration is refused with the move, and nothing is stored.
    snapshot = stored()
    number = id_number()
    full = caseworker.post("/residents", resident_body(id_number=number, site_id=site["id"]))
    assert full.status_code == 409 and full.json()["rule"] == "site_full", full.text
    assert snapshot.unchanged()
    # The number was not claimed: the same person registers in private housing afterwards.
    assert caseworker.post("/residents", resident_body(id_number=number)).status_code == 201


def test_bad_housing_at_registration_is_refused_and_stores_nothing(caseworker: Api, supervisor: Api,
                                                                   stored: Any) -> None:
    site = supervisor.post("/sites", site_body(area="xinqi")).json()
    other_area = supervisor.post("/sites", site_body(area="daqi")).json()
    snapshot = stored()
    for body, status, field, rule in [
        (resident_body(housing={"kind": "rented"}), 422, "housing.landlord", "rented_housing_unidentified"),
        (resident_body(housing={"kind": "site"}), 422, "housing.kind", "housing_site_needs_site_id"),
        (resident_body(site_id=site["id"], housing={"kind": "rented", "landlord": "Chen"}), 422, "housing.kind",
         "housing_kind"),
        (resident_body(area="xinqi", site_id=other_area["id"]), 422, "site_id", "site_in_another_area"),
        (resident_body(site_id="00000000-0000-4000-8000-000000000000"), 422, "site_id", None),
    ]:
        refused = caseworker.post("/residents", body)
        assert refused.status_code == status, (body, refused.text)
        problem = refused.json()
        assert field in {e["field"] for e in problem.get("errors", [])}, problem
        if rule:
            assert problem["rule"] == rule, problem
    assert snapshot.unchanged()


def test_the_permit_list_sorts_by_pinyin_across_its_pages(caseworker: Api) -> None:
    """As every list of people: 阿 before 白 before 王 before 张 before 赵, not by code point."""
    from projections.sorting import pinyin_key

    last = 0
    for name in ("张伟", "王芳", "白云", "赵敏", "阿依"):
        resident = caseworker.post("/residents", resident_body(name=name, registered_on="2026-01-15")).json()
        applied = caseworker.post(f"/residents/{resident['id']}/permit", {"applied_on": "2026-11-20"})
        assert applied.status_code == 200, applied.text
        last = applied.json()["position"]
    names: list[str] = []
    params: dict[str, Any] = {"status": "applied", "limit": 3, "after": last}
    while True:
        page = caseworker.get("/permits", params=params).json()
        names += [item["name"] for item in page["items"]]
        if not page["next"]:
            break
        params = {"status": "applied", "limit": 3, "cursor": page["next"]}
    keys = [pinyin_key(n[0]) for n in names]
    assert keys == sorted(keys), names
    ours = [n for n in names if n in ("张伟", "王芳", "白云", "赵敏", "阿依")]
    assert ours == ["阿依", "白云", "王芳", "张伟", "赵敏"]


def _applied(caseworker: Api) -> str:
    resident = caseworker.post("/residents", resident_body(registered_on="2025-01-01")).json()["id"]
    assert caseworker.post(f"/residents/{resident}/permit", {"applied_on": "2025-08-01"}).status_code == 200
    return str(resident)


def test_one_permit_number_is_issued_to_one_resident_and_is_sealed_under_their_key(
        caseworker: Api, supervisor: Api, as_role: Any, services: Services, stored: Any) -> None:
    """Found by a review: one number was issued to two residents, and it stayed in the log, the
    view and the record after its holder was erased."""
    from tests.factories import unique

    number = unique("JZZ-330206").replace("_", "-")
    first, second = _applied(caseworker), _applied(caseworker)
    issued = caseworker.post(f"/residents/{first}/permit/issuance", {"number": number, "issued_on": "2025-08-05"})
    assert issued.status_code == 200, issued.text
    snapshot = stored()
    for same in (number, f" {number.lower()} "):  # as typed, in lower case, with spaces around
        again = caseworker.post(f"/residents/{second}/permit/issuance", {"number": same, "issued_on": "2025-08-05"})
        assert again.status_code == 409 and again.json()["rule"] == "permit_number_issued", again.text
    assert snapshot.unchanged()
    with services.pool.connection() as conn:  # sealed in the store and in the view
        raw = conn.execute("SELECT count(*) AS n FROM liudong_events WHERE position(%s in convert_from(state, 'UTF8'))"
                           " > 0", (number,)).fetchone()
        assert raw["n"] == 0
    listed = caseworker.get("/permits", params={"status": "issued", "after": issued.json()["position"],
                                                "limit": 500}).json()["items"]
    assert number in [r["number"] for r in listed]
    masked = as_role("api_consumer").get("/permits", params={"status": "issued", "limit": 500}).json()["items"]
    assert number not in [r["number"] for r in masked] and ("*" * (len(number) - 4) + number[-4:]) in [
        r["number"] for r in masked]
    erased = supervisor.post(f"/residents/{first}/erasure", {"legal_basis": "data_subject_request",
                                                              "note": "request 2026-77"})
    assert erased.status_code == 200, erased.text
    freed = caseworker.post(f"/residents/{second}/permit/issuance", {"number": number, "issued_on": "2025-08-05"})
    assert freed.status_code == 200, freed.text  # the erased holder's number is free
    listed = caseworker.get("/permits", params={"status": "issued", "after": freed.json()["position"],
                                                "limit": 500, "lang": "en"}).json()["items"]
    by_resident = {r["resident_id"]: r["number"] for r in listed}
    assert by_resident.get(second) == number and by_resident.get(first) in (None, "[erased]", "[\u5df2\u5220\u9664]")


def test_two_issues_of_one_number_racing_store_one(base_url: str, keys: dict[str, str], caseworker: Api) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.factories import unique

    number = unique("JZZ-RACE").replace("_", "-")
    residents = [_applied(caseworker) for _ in range(4)]
    start = threading.Barrier(len(residents))

    def issue(resident: str) -> int:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start.wait()
            return client.post(f"/residents/{resident}/permit/issuance", json={"number": number,
                                                                               "issued_on": "2025-08-05"},
                               headers={"Authorization": f"Bearer {keys['caseworker']}"}).status_code

    with ThreadPoolExecutor(max_workers=len(residents)) as pool:
        codes = sorted(pool.map(issue, residents))
    assert codes == [200, 409, 409, 409], codes


def test_a_text_quoting_a_permit_number_is_erased_with_its_holder(caseworker: Api, supervisor: Api) -> None:
    """Found by a review: the permit numbers were not among what names a resident, so an erasure's
    note could quote one and a committee's agenda quoting one kept it readable after the erasure."""
    from tests.factories import unique

    number = unique("JZZ-TEXT").replace("_", "-")
    holder = _applied(caseworker)
    assert caseworker.post(f"/residents/{holder}/permit/issuance",
                           {"number": number, "issued_on": "2025-08-05"}).status_code == 200
    committee = supervisor.post("/committees", {"name": unique("Committee"), "area": "xinqi",
                                                "established_on": "2026-01-10", "members": [{"name": "Wang"}]})
    assert committee.status_code == 201, committee.text
    meeting = caseworker.post(f"/committees/{committee.json()['id']}/meetings", {
        "scheduled_on": "2026-12-05", "agenda": [{"title": f"renewal of permit {number}"}]})
    assert meeting.status_code == 200, meeting.text
    quoting = supervisor.post(f"/residents/{holder}/erasure", {"legal_basis": "data_subject_request",
                                                               "note": f"holder of permit {number} asked"})
    assert quoting.status_code == 422 and quoting.json()["rule"] == "note_names_the_resident", quoting.text
    erased = supervisor.post(f"/residents/{holder}/erasure", {"legal_basis": "data_subject_request",
                                                              "note": "request 2026-91"})
    assert erased.status_code == 200, erased.text
    doc = supervisor.get(f"/committees/{committee.json()['id']}", headers={"Accept-Language": "en"}).json()
    assert [i["title"] for m in doc["meetings"] for i in m["agenda"]] == ["[erased]"]


def test_a_number_issued_before_numbers_were_claimed_is_not_issued_again(
        caseworker: Api, services: Services) -> None:
    """Found by a review: a number issued before the claims (2026-11-29) had none, so it could be
    issued again; the residents' view holds such a number as it was written then."""
    from tests.factories import unique

    number = unique("JZZ-OLD").replace("_", "-")
    holder, other = _applied(caseworker), _applied(caseworker)
    caseworker.get("/permits", params={"after": services.head()})  # the view has both applications
    with services.pool.connection() as conn:  # as a permit issued before the claims left it
        conn.execute("UPDATE residents SET permit_status = 'issued', permit_number = %s WHERE id = %s",
                     (number, holder))
    try:
        again = caseworker.post(f"/residents/{other}/permit/issuance",
                                {"number": number.lower(), "issued_on": "2025-08-05"})
        assert again.status_code == 409 and again.json()["rule"] == "permit_number_issued", again.text
    finally:  # the view as its events make it again (a rebuild of it is compared with it elsewhere)
        with services.pool.connection() as conn:
            conn.execute("UPDATE residents SET permit_status = 'applied', permit_number = NULL WHERE id = %s",
                         (holder,))
