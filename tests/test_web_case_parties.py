"""A dispute logged on the web names a registered resident as a party (found by a review: the form
took only outside parties' names, so a resident's dispute never held their data for the retention
rule and never showed on their page). A resident's page opens the form with them as the first
party and their site; a party's resident field offers the residents whose name starts with what
is typed; a name nobody (or several) has, an id outside the user's areas, or a row that names a
resident and an outside party at once is refused on its field, storing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from application.services import Services
from tests.conftest import WEB_PASSWORD, Api, define_area
from tests.factories import resident_body, unique
from tests.test_web_sites import Html, Staff, new_site, web

__all__ = ["web"]


def a_resident(caseworker: Api, area: str, name: str) -> str:
    made = caseworker.post("/residents", resident_body(name=name, area=area))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def case_form(resident: str = "", **fields: str) -> dict[str, str]:
    return {"category": "neighbours", "description": "noise at night", "priority": "normal",
            "occurred_on": "2026-11-01", "party_resident_1": resident, **fields}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_residents_page_logs_a_dispute_with_them_as_a_party(
        web: Any, caseworker: Api, supervisor: Api, lang: str) -> None:
    site = new_site(supervisor)
    name = unique("\u8d75\u5c0f\u82b1")
    resident = a_resident(caseworker, "xinqi", name)
    moved = caseworker.post(f"/residents/{resident}/moves", {"site_id": site, "effective_date": "2026-11-20"})
    assert moved.status_code == 200, moved.text
    worker = web("caseworker")
    page = worker.page(f"/ui/residents/{resident}?after={moved.json()['position']}&lang={lang}")
    link = page.by_id["log-dispute"]["href"]
    assert link == f"/ui/cases/new?resident={resident}"
    raw = worker.client.get(f"{link}&lang={lang}").text
    form = Html(raw)
    assert form.by_id["f-party_resident_1"]["value"] == resident
    assert form.text("f-party_resident_1-name") == name  # who the id is, in words
    assert f'<option value="{site}" selected' in raw  # where they live
    logged = worker.post("/ui/cases/new", case_form(resident, site_id=site, party_name_2="Yuanda Dyeing Co.",
                                                    party_kind_2="employer"))
    assert logged.status_code == 303, Html(logged.text).problems
    case_id = logged.headers["location"].split("/ui/cases/")[1].split("?")[0]
    case = caseworker.get(f"/disputes/{case_id}").json()
    assert [{k: v for k, v in p.items() if v is not None} for p in case["parties"]] == [
        {"resident_id": resident}, {"name": "Yuanda Dyeing Co.", "kind": "employer"}]
    shown = worker.client.get(logged.headers["location"]).text
    assert name in shown and f'href="/ui/residents/{resident}"' in shown


def test_a_party_is_picked_by_a_name_only_one_resident_has(web: Any, caseworker: Api, services: Services) -> None:
    area = define_area(services, "\u5f53\u4e8b\u4eba")
    name = unique("\u94b1\u591a\u591a")
    resident = a_resident(caseworker, area, name)
    worker = web("caseworker")
    offered = worker.client.get("/ui/cases/resident-options", params={"party_resident_1": name[:3]})
    assert offered.status_code == 200 and f'value="{resident}"' in offered.text and name in offered.text
    logged = worker.post("/ui/cases/new", case_form(name, area=area))
    assert logged.status_code == 303, Html(logged.text).problems
    case_id = logged.headers["location"].split("/ui/cases/")[1].split("?")[0]
    assert caseworker.get(f"/disputes/{case_id}").json()["parties"][0]["resident_id"] == resident
    assert web("auditor").client.get("/ui/cases/resident-options", params={"party_resident_1": "x"}
                                     ).status_code == 403  # auditors log nothing


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_party_that_names_nobody_or_too_much_is_refused_on_its_field_and_nothing_is_stored(
        web: Any, caseworker: Api, services: Services, stored: Any, lang: str) -> None:
    area, elsewhere = define_area(services, "\u5f53\u4e8b\u4eba"), define_area(services, "\u522b\u5904")
    twin = unique("\u5b59\u4fe9")
    a_resident(caseworker, area, twin)
    a_resident(caseworker, area, twin)
    foreign = a_resident(caseworker, elsewhere, unique("\u5468\u8fdc"))
    user = unique("web-one-area")
    services.users.create(user_id=user, role="caseworker", areas=[area], password=WEB_PASSWORD,
                          created_by="test-admin")
    local = Staff(str(web("caseworker").client.base_url), user)
    try:
        before = stored()
        for session, form, rule in (
                (local, case_form("\u6ca1\u6709\u8fd9\u4e2a\u4eba", area=area), "resident_unknown"),
                (local, case_form(twin, area=area), "resident_ambiguous"),
                (local, case_form(foreign, area=area), "resident_unknown"),  # never says it exists
                (local, case_form(foreign, area=area, party_name_1="Room 12", party_kind_1="other"),
                 "party_resident_or_outside")):
            refused = session.client.post(f"/ui/cases/new?lang={lang}", data={**form, "csrf": session.csrf})
            shown = Html(refused.text)
            assert refused.status_code == 422, (rule, refused.status_code, shown.problems)
            assert shown.by_id["f-party_resident_1"].get("aria-invalid") == "true", (rule, shown.problems)
            error = shown.text("f-party_resident_1-error")
            assert error and "rule." not in error and "_" not in error, (rule, error)
            assert shown.by_id["f-party_resident_1"]["value"] == form["party_resident_1"]  # kept as typed
            assert not shown.untied_errors()
        assert before.unchanged()
    finally:
        local.client.close()


def test_the_residents_a_picker_or_the_active_members_list_names_are_logged_as_read(
        web: Any, caseworker: Api, services: Services) -> None:
    """Found by a review: the resident fields' options (one character listed up to twenty names),
    the active members' list and the identify form showed names in full and left no row in the
    access log, so a caseworker could look people up unaudited."""
    area = define_area(services, "\u65e5\u5fd7")
    name = unique("\u53f8\u9a6c\u5efa")
    resident = a_resident(caseworker, area, name)
    member = caseworker.post("/active-members", {"resident_id": resident, "identified_on": "2026-10-01"})
    assert member.status_code == 201, member.text
    worker = web("caseworker")

    def routes() -> list[str]:
        with services.pool.connection() as conn:
            rows = conn.execute("SELECT route FROM access_log WHERE resident_id = %s AND user_id = %s ORDER BY id",
                                (resident, "web-caseworker")).fetchall()
        return [r["route"] for r in rows]

    for path in (f"/ui/cases/resident-options?party_resident_1={name[:4]}",
                 f"/ui/committees/resident-options?member_resident_1={name[:4]}"):
        assert worker.client.get(path).status_code in (200, 403)
    assert "GET /ui/cases/resident-options" in routes()
    assert name in worker.client.get(f"/ui/active-members?area={area}&after={member.json()['position']}").text
    assert "GET /ui/active-members" in routes()
    worker.client.get(f"/ui/active-members?resident_id={resident}")
    assert routes().count("GET /ui/active-members") >= 2

