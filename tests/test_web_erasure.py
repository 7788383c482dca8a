"""A supervisor erases a resident's personal data in the browser (PIPL Art. 47), through the same
use case as the API's POST /residents/{id}/erasure: a legal basis, a request reference that never
names the person, and the box "I understand this cannot be undone" ticked; a refusal stores nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.factories import resident_body, site_body
from tests.test_web_sites import Html, web

__all__ = ["web"]

ERASED_ZH = "[\u5df2\u5220\u9664]"  # [已删除]


def test_a_supervisor_erases_a_resident_and_a_refusal_stores_nothing(
        web: Any, caseworker: Api, supervisor: Api, stored: Any) -> None:
    body = resident_body()
    made = caseworker.post("/residents", body)
    resident = made.json()["id"]
    boss = web("supervisor")
    page = boss.page(f"/ui/residents/{resident}?after={made.json()['position']}&lang=zh-CN")
    assert "erase-form" in page.post_forms()
    request = {"legal_basis": "data_subject_request", "note": "REQ-2026-117"}
    before = stored()
    unticked = boss.post(f"/ui/residents/{resident}/erasure?lang=en", request)
    assert unticked.status_code == 422
    shown = Html(unticked.text)
    assert shown.problems[0][0] == "confirmation_required" and shown.value("erase-note") == "REQ-2026-117"
    naming = boss.post(f"/ui/residents/{resident}/erasure?lang=zh-CN",
                       {**request, "note": f"{body['name']} asked", "confirm": "yes"})
    assert naming.status_code == 422
    shown = Html(naming.text)
    assert shown.problems[0] == ("note_names_the_resident", "\u7533\u8bf7\u7f16\u53f7\u6216\u8bf4\u660e\u4e0d\u5f97"
                                 "\u5199\u51fa\u672c\u4eba\u6216\u5176\u5bb6\u5c5e\u7684\u59d3\u540d\u3001\u8eab\u4efd"
                                 "\u8bc1\u53f7\u7801\u6216\u7535\u8bdd\u53f7\u7801\uff1a\u5220\u9664\u4e4b\u540e\u5b83"
                                 "\u4ecd\u4f1a\u4fdd\u7559\u3002")
    assert shown.by_id["erase-note"].get("aria-invalid") == "true" and not shown.untied_errors()
    unknown = boss.post(f"/ui/residents/{resident}/erasure", {**request, "legal_basis": "whim", "confirm": "yes"})
    assert unknown.status_code == 422 and Html(unknown.text).problems[0][0] == "legal_basis"
    assert before.unchanged()
    done = boss.post(f"/ui/residents/{resident}/erasure", {**request, "confirm": "yes"})
    assert done.status_code == 303, done.text[:2000]
    after = boss.client.get(done.headers["location"] + "&lang=zh-CN")
    assert ERASED_ZH in Html(after.text).text("resident-name") and "resident-erased" in Html(after.text).by_id
    assert "erase-form" not in Html(after.text).post_forms()  # once is all there is
    record = supervisor.get(f"/residents/{resident}").json()
    assert record["name"] == ERASED_ZH and record["erased_on"]
    history = supervisor.get(f"/residents/{resident}/history").json()["items"]
    assert history[-1]["event"] == "Resident.PersonalDataErased" and history[-1]["actor_role"] == "supervisor"


def test_only_supervisors_and_admins_may_erase(web: Any, caseworker: Api, stored: Any) -> None:
    made = caseworker.post("/residents", resident_body())
    resident = made.json()["id"]
    for role in ("caseworker", "auditor"):
        session = web(role)
        page = session.page(f"/ui/residents/{resident}?after={made.json()['position']}")
        assert "erase-form" not in page.post_forms()
        before = stored()
        refused = session.post(f"/ui/residents/{resident}/erasure", {
            "legal_basis": "data_subject_request", "note": "REQ-1", "confirm": "yes"})
        assert refused.status_code == 403 and before.unchanged()


def test_an_erased_resident_still_moves_and_departs_and_what_names_them_stays_erased(
        web: Any, caseworker: Api, supervisor: Api) -> None:
    """Found by a review: a departure or a move of an erased resident answered 500 (their key is
    gone), and the page hid those forms, so the person held their bed for good."""
    site = supervisor.post("/sites", site_body(capacity=1)).json()["id"]
    made = caseworker.post("/residents", resident_body(site_id=site))
    assert made.status_code == 201, made.text
    resident = made.json()["id"]
    assert supervisor.post(f"/residents/{resident}/erasure", {"legal_basis": "data_subject_request",
                                                              "note": "REQ-2026-7"}).status_code == 200
    # in the site: the page offers the move out and the departure, nothing that records more of them
    # (found by a review: a move in, a return and a dispute naming them were offered, then refused)
    page = web("caseworker").page(f"/ui/residents/{resident}")
    assert {"move-out-form", "departure-form"} <= page.post_forms()
    assert not page.post_forms() & {"move-in-form", "return-form"} and "log-dispute" not in page.by_id
    moved = caseworker.post(f"/residents/{resident}/moves", {"area": "xinqi", "effective_date": "2026-11-20",
                                                             "housing": {"kind": "rented", "landlord": "Chen Jianguo"}})
    assert moved.status_code == 200, moved.text
    record = caseworker.get(f"/residents/{resident}", params={"after": moved.json()["position"]}).json()
    assert record["housing"] == {"kind": "rented", "address": None, "landlord": ERASED_ZH}
    assert supervisor.get(f"/sites/{site}").json()["free_beds"] == 1  # the bed is free again
    page = web("caseworker").page(f"/ui/residents/{resident}?after={moved.json()['position']}")
    assert "departure-form" in page.post_forms() and "dependant-form" not in page.post_forms()
    assert "move-out-form" not in page.post_forms()  # out of sites now: a move would only record more
    left = caseworker.post(f"/residents/{resident}/departure", {"effective_date": "2026-11-24", "reason": "went home"})
    assert left.status_code == 200, left.text
    record = caseworker.get(f"/residents/{resident}", params={"after": left.json()["position"]}).json()
    assert (record["status"], record["departure_reason"]) == ("departed", ERASED_ZH)
