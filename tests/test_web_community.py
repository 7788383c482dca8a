"""Community work in the web application, over HTTP and in a real browser (headless Chromium):
a caseworker identifies a resident as an active member (骨干) and keeps their record (training,
appointment, role ending, the employer's agreement, the loss, after which no form is left); the
active members' page shows per site who is left, the losses of the last twelve months and the
roles nobody holds; on a resident's page the family card records dependants, school requests
and answers and services delivered, which the services page counts per site and month. A
refused form shows the rule in words, keeps what was typed and stores nothing; an auditor reads
every page without a single form; finance reads the services' figures only."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import httpx
import pytest

from application.services import Services
from domain.active_members import active_member_id
from domain.residents import Resident
from tests.conftest import Api, Browser
from tests.factories import resident_body, site_body, unique_area
from tests.test_web_sites import Html, web

__all__ = ["web"]  # the signed-in HTTP sessions' fixture, shared with the sites' pages
LANGS = ["zh-CN", "en"]
MEMBER_FORMS = {"training-form", "appointment-form", "role-end-form", "liaison-form", "loss-form"}
FAMILY_FORMS = {"dependant-form", "school-request-form", "school-answer-form", "service-form"}


def new_site(supervisor: Api, area: str) -> str:
    made = supervisor.post("/sites", site_body(area=area, capacity=50))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def new_resident(caseworker: Api, area: str, site: str | None = None, name: str | None = None) -> str:
    body = resident_body(area=area, registered_on="2025-06-01", **({"name": name} if name else {}))
    made = caseworker.post("/residents", body)
    assert made.status_code == 201, made.text
    rid = str(made.json()["id"])
    if site is not None:
        moved = caseworker.post(f"/residents/{rid}/moves", {"site_id": site, "effective_date": "2025-07-01"})
        assert moved.status_code == 200, moved.text
    return rid


def landed(response: httpx.Response, path: str) -> str:
    """A form that worked answers with the record's page, reading its own write."""
    assert response.status_code == 303, response.text[:3000]
    location = response.headers["location"]
    assert re.fullmatch(re.escape(path) + r"\?after=\d+(#family)?", location), location
    return location.split("#")[0]


def dependants_of(services: Services, rid: str) -> dict[str, dict[str, Any]]:
    return dict(services.app.load(Resident, UUID(rid)).dependants)


# -- active members over HTTP ------------------------------------------------------------------
def test_a_caseworker_identifies_a_resident_and_keeps_the_active_members_record(
        web: Any, caseworker: Api, supervisor: Api, services: Services) -> None:
    area = unique_area("CW")
    site = new_site(supervisor, area)
    rid = new_resident(caseworker, area, site, name="张伟")
    mid = str(active_member_id(UUID(rid)))
    worker = web("caseworker")

    resident_page = worker.page(f"/ui/residents/{rid}")
    link = resident_page.by_id["identify-active-member"]["href"]
    assert link == f"/ui/active-members?resident_id={rid}#identify"
    picking = worker.page(link.split("#")[0])
    assert "identify-form" in picking.post_forms() and picking.text("identify-picked").startswith("张伟")
    assert picking.value("identify-resident_id") == rid
    location = landed(worker.post("/ui/active-members", {"resident_id": rid, "site_id": "", "area": "",
                                                         "identified_on": "2025-09-01"}), f"/ui/active-members/{mid}")
    page = worker.page(location)
    assert page.text("member-name").startswith("张伟")
    assert page.post_forms() == MEMBER_FORMS - {"role-end-form"}  # no role held yet: nothing to end

    member = f"/ui/active-members/{mid}"
    for path, data in (("trainings", {"course": "人民调解基础", "trained_on": "2025-10-01"}),
                       ("appointments", {"role": "group_leader", "appointed_on": "2025-10-15"}),
                       ("appointments", {"role": "representative", "appointed_on": "2025-11-01"}),
                       ("role-endings", {"role": "representative", "ended_on": "2026-01-10"}),
                       ("employer-liaisons", {"employer": "恒力纺织", "agreed_on": "2025-10-20",
                                              "note": "周六例会安排白班"})):
        location = landed(worker.post(f"{member}/{path}", data), member)
    document = caseworker.get(f"/active-members/{mid}").json()
    assert (document["resident_id"], document["site_id"], document["area"]) == (rid, site, area)
    assert [r["role"] for r in document["roles"]] == ["group_leader"]
    assert document["trainings"] == [{"course": "人民调解基础", "trained_on": "2025-10-01"}]
    assert document["employer_liaisons"][0]["note"] == "周六例会安排白班"

    page = worker.page(f"{location}&lang=en")
    assert page.post_forms() == MEMBER_FORMS
    assert "group leader" in page.text("member-roles") and "representative" not in page.text("member-roles")
    assert "人民调解基础" in page.text("member-trainings") and "周六例会安排白班" in page.text("member-liaisons")
    listed = worker.page(f"/ui/active-members?area={area}&lang=en&after={location.split('=')[-1]}")
    summary = listed.text("member-sites")
    assert "group leader" in summary and "committee member" in summary  # held, and a gap
    assert "张伟" in listed.text("members")
    assert re.search(r'class="badge bad gap" data-role="representative"',
                     worker.client.get(f"/ui/active-members?area={area}&lang=zh-CN").text)

    lost = landed(worker.post(f"{member}/loss", {"reason": "moved_away", "lost_on": "2026-02-01", "confirm": "yes"}),
                  member)
    page = worker.page(f"{lost}&lang=zh-CN")
    assert page.post_forms() == set()  # lost: nothing more to record
    assert page.text("member-status") == "已流失" and "迁居他处" in page.text("member-lost")
    assert caseworker.get(f"/active-members/{mid}").json()["status"] == "lost"
    # The site's row: nobody active, one loss in the last twelve months, every role a gap.
    html = worker.client.get(f"/ui/active-members?site_id={site}&after={lost.split('=')[-1]}").text
    assert re.search(r'class="num active-count">0<', html) and re.search(r'class="badge warn">1<', html)
    assert len(re.findall(r'class="badge bad gap"', html)) == 3
    assert worker.page(f"/ui/residents/{rid}").by_id["active-member-record"]["href"] == member
    with services.pool.connection() as conn:  # the record shows a person (and a sealed note): each read is logged
        reads = conn.execute("SELECT user_id FROM access_log WHERE resident_id = %s AND route = %s",
                             (rid, f"GET {member}")).fetchall()
    assert reads and {r["user_id"] for r in reads} == {"web-caseworker"}


def test_the_identify_form_finds_residents_by_name(web: Any, caseworker: Api) -> None:
    area = unique_area("CW")
    rid = new_resident(caseworker, area, name="欧阳明")
    worker = web("caseworker")
    found = worker.client.get("/ui/active-members", params={"find": "欧阳"})
    assert found.status_code == 200
    assert f"/ui/active-members?resident_id={rid}#identify" in found.text
    nothing = Html(worker.client.get("/ui/active-members", params={"find": "无此人名"}).text)
    assert "found" in nothing.by_id and "identify-submit" in nothing.by_id


# -- the family card and the services page ---------------------------------------------------
def test_the_family_card_records_children_school_places_and_services(
        web: Any, caseworker: Api, supervisor: Api, services: Services) -> None:
    area = unique_area("CW")
    site = new_site(supervisor, area)
    rid = new_resident(caseworker, area, site)
    worker = web("caseworker")
    resident = f"/ui/residents/{rid}"
    assert {"dependant-form", "service-form"} <= worker.page(resident).post_forms()
    assert not {"school-request-form", "school-answer-form"} & worker.page(resident).post_forms()  # no child yet

    for name, born in (("李小明", "2017"), ("李小红", "2015"), ("李小宝", "2024")):
        landed(worker.post(f"{resident}/dependants", {"name": name, "birth_year": born, "relation": "child"}),
               resident)
    ids = {d["birth_year"]: key for key, d in dependants_of(services, rid).items()}
    assert set(ids) == {2017, 2015, 2024}
    page = worker.page(resident)
    assert "school-request-form" in page.post_forms() and "school-answer-form" not in page.post_forms()
    assert "李小明" in page.text("dependants") and "未申请入学" in page.text("dependants")

    for born in (2017, 2015):
        landed(worker.post(f"{resident}/school-requests", {"dependant_id": ids[born], "school": "银杏小学",
                                                           "requested_on": "2026-08-20"}), resident)
    landed(worker.post(f"{resident}/school-answers", {"dependant_id": ids[2017], "answer": "placed",
                                                      "school": "银杏小学", "answered_on": "2026-09-01"}), resident)
    landed(worker.post(f"{resident}/school-answers", {"dependant_id": ids[2015], "answer": "refused",
                                                      "school": "银杏小学", "answered_on": "2026-09-01",
                                                      "reason": "学位已满"}), resident)
    location = landed(worker.post(f"{resident}/services", {"kind": "health_check", "delivered_on": "2026-10-12",
                                                           "provider": "新桥社区卫生服务中心"}), resident)
    dependants = dependants_of(services, rid)
    assert (dependants[ids[2017]]["school_status"], dependants[ids[2015]]["school_status"]) == ("placed", "refused")
    assert dependants[ids[2024]]["school_status"] is None
    page = worker.page(f"{location}&lang=en")
    assert "placed at school" in page.text("dependants") and "place refused" in page.text("dependants")

    figures = worker.page(f"/ui/services?area={area}&year=2026&lang=zh-CN&after={location.split('=')[-1]}")
    assert figures.text("school-gaps-total") == "1"  # the refused one; the placed one and the toddler are not
    html = worker.client.get(f"/ui/services?site_id={site}&year=2026").text
    assert re.search(r'class="num refused">1<', html) and re.search(r'class="num not-requested">0<', html)
    assert figures.text("services-total") == "1" and "健康检查" in figures.text("services-monthly")
    assert "2026-10" in figures.text("services-monthly")


def test_refused_forms_show_the_rule_keep_the_typing_and_store_nothing(
        web: Any, caseworker: Api, supervisor: Api, stored: Any) -> None:
    area = unique_area("CW")
    site = new_site(supervisor, area)
    rid = new_resident(caseworker, area, site)
    made = caseworker.post("/active-members", {"resident_id": rid, "identified_on": "2025-09-01"})
    mid = made.json()["id"]
    assert caseworker.post(f"/active-members/{mid}/appointments",
                           {"role": "group_leader", "appointed_on": "2025-10-01"}).status_code == 200
    other = new_resident(caseworker, area, site)
    worker = web("caseworker")
    before = stored()

    both = worker.post("/ui/active-members?lang=en", {"resident_id": other, "site_id": site, "area": area,
                                                      "identified_on": "2025-09-02"})
    assert both.status_code == 422
    page = Html(both.text)
    assert page.problems[0] == ("site_or_area", "Give the site or the area they serve, not both.")
    assert page.errors.get("area") and page.value("identify-identified_on") == "2025-09-02"
    assert page.value("identify-resident_id") == other
    assert re.search(rf'<option value="{site}"\s+selected>', both.text)

    twice = worker.post("/ui/active-members?lang=zh-CN", {"resident_id": rid, "identified_on": "2025-09-03"})
    assert twice.status_code == 409
    rule, words = Html(twice.text).problems[0]
    assert rule == "already_identified" and words.startswith("该人员已是骨干")

    held = worker.post(f"/ui/active-members/{mid}/appointments?lang=en",
                       {"role": "group_leader", "appointed_on": "2026-01-05"})
    assert held.status_code == 409
    page = Html(held.text)
    assert page.problems[0] == ("role_already_held", "They hold this role already.")
    assert page.value("appointment-appointed_on") == "2026-01-05"

    early = worker.post(f"/ui/active-members/{mid}/trainings", {"course": "消防安全", "trained_on": "2025-08-01"})
    assert early.status_code == 409
    page = Html(early.text)
    assert page.problems[0][0] == "date_before_identification" and page.value("training-course") == "消防安全"

    future = worker.post(f"/ui/residents/{rid}/dependants?lang=zh-CN", {"name": "王小虎", "birth_year": "2030",
                                                            "relation": "child"})
    assert future.status_code == 422
    page = Html(future.text)
    assert page.problems[0][0] == "birth_year_out_of_range" and page.problems[0][1].startswith("出生年份须为四位数")
    assert page.errors.get("birth_year") and page.value("dependant-name") == "王小虎"
    assert page.value("dependant-birth_year") == "2030"

    no_request = worker.post(f"/ui/residents/{rid}/school-answers", {
        "dependant_id": "nobody", "answer": "placed", "school": "银杏小学", "answered_on": "2026-09-01"})
    assert no_request.status_code == 422 and Html(no_request.text).problems[0][0] == "unknown_dependant"
    assert before.unchanged()


def test_an_auditor_reads_every_page_without_a_form_and_finance_reads_the_figures(
        web: Any, caseworker: Api, supervisor: Api, stored: Any) -> None:
    area = unique_area("CW")
    rid = new_resident(caseworker, area, new_site(supervisor, area))
    mid = caseworker.post("/active-members", {"resident_id": rid, "identified_on": "2025-09-01"}).json()["id"]
    assert caseworker.post(f"/residents/{rid}/dependants", {"name": "李小明", "birth_year": 2017}).status_code == 200
    auditor = web("auditor")
    for path in ("/ui/active-members", f"/ui/active-members/{mid}", f"/ui/residents/{rid}", "/ui/services"):
        page = auditor.page(path)
        assert page.post_forms() == set(), path
    assert "identify-active-member" not in auditor.page(f"/ui/residents/{rid}").by_id
    assert "李小明" in auditor.page(f"/ui/residents/{rid}").text("dependants")
    before = stored()
    for path, data in (("/ui/active-members", {"resident_id": rid, "identified_on": "2025-09-01"}),
                       (f"/ui/active-members/{mid}/trainings", {"course": "x", "trained_on": "2025-10-01"}),
                       (f"/ui/residents/{rid}/dependants", {"name": "x", "birth_year": "2018", "relation": "child"}),
                       (f"/ui/residents/{rid}/services", {"kind": "legal_aid", "delivered_on": "2026-10-01",
                                                          "provider": "x"})):
        assert auditor.post(path, data).status_code == 403, path
    assert auditor.client.get(f"/ui/active-members/{UUID(int=7)}").status_code == 404
    assert before.unchanged()

    finance = web("finance")
    assert finance.client.get("/ui/services").status_code == 200
    assert finance.client.get("/ui/active-members").status_code == 403
    nav = finance.page("/ui/services").by_id
    assert "to-members" not in nav


# -- in the browser ------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
def test_a_caseworker_adds_a_child_asks_for_a_school_place_and_makes_the_parent_an_active_member(
        browser: Browser, staff: dict[str, str], caseworker: Api, supervisor: Api, services: Services,
        lang: str) -> None:
    area = unique_area("CW")
    site = new_site(supervisor, area)
    rid = new_resident(caseworker, area, site, name="陈秀英")
    journey = f"community-{lang}"
    browser.sign_in(staff["caseworker"], lang=lang)
    browser.go(f"/ui/residents/{rid}")
    assert browser.lang() == lang
    assert browser.find("#no-dependants")

    browser.fill("dependant-name", "陈小军")
    browser.fill("dependant-birth_year", "2018")
    browser.submit("add-dependant")
    assert "陈小军" in browser.find("#dependants").text
    browser.choose("dependant_id", next(iter(dependants_of(services, rid))))
    browser.fill("school-request-school", "银杏小学")
    browser.fill("school-request-requested_on", "2026-08-25")
    browser.submit("request-school")
    status = browser.find("#dependants .school-status").text
    assert ("已提交入学申请" if lang == "zh-CN" else "place requested") in status and "银杏小学" in status
    assert browser.find("#school-answer-form")
    browser.shot(f"{journey}-family")

    browser.click("identify-active-member")
    assert browser.find("#identify-picked").text.startswith("陈秀英")
    browser.fill("identify-identified_on", "2026-09-01")
    browser.shot(f"{journey}-identify")
    browser.submit("identify-submit")
    assert browser.find("#member-name").text.startswith("陈秀英")
    browser.fill("training-course", "矛盾纠纷调解")
    browser.fill("training-trained_on", "2026-10-10")
    browser.submit("record-training")
    assert "矛盾纠纷调解" in browser.find("#member-trainings").text
    browser.shot(f"{journey}-member")
    mid = str(active_member_id(UUID(rid)))
    document = caseworker.get(f"/active-members/{mid}").json()
    assert document["trainings"] == [{"course": "矛盾纠纷调解", "trained_on": "2026-10-10"}]
    assert document["site_id"] == site

    browser.go(f"/ui/active-members?area={area}")
    assert "陈秀英" in browser.find("#members").text
    assert len(browser.find_all("#member-sites .gap")) == 3
    browser.shot(f"{journey}-list")
    browser.go(f"/ui/services?area={area}&year=2026")
    assert browser.find("#school-gaps-total").text == "1"
    browser.shot(f"{journey}-services")
